"""The domain-generalisation experiment in miniature: three fine-tunings of one frozen backbone.

Usage::

    OMP_WAIT_POLICY=PASSIVE python bench/dg_experiment.py --config config/train/synthetic_small.yaml \\
        --iterations 2000 --seeds 0,1,2 --results docs/RESULTS.md

Source domain: clear synthetic scenes only, labelled (the config's ``data.train``). Targets: the unseen
snow, night, fog and rain renderings of held-out scenes (split ``test``: scenes neither training nor
calibration saw). Three fine-tunings of the same frozen backbone, with the same budget, data and seeds:

- ``head_only``: the decode head alone (the tuner frozen at identity, ``model.tuner.frozen``);
- ``rein``: Rein-style tokens on the patch tokens, no frequency domain (``model.tuner.operator: rein``);
- ``causal_tune``: the config's Causal-Tune tuner, evaluated at its training band, and with bands
  calibrated per condition on the ``val`` split (``causal_tune_ros.training.calibrate``) and scored on
  ``test``, plus the band-pass switched off at test time (a filter-off probe of the same model).

It reports the mIoU per condition and the paper's "mean" (mean of the per-condition mIoUs) as mean and
sample standard deviation over the seeds, writes every score to ``OUT/results.json`` and the tables
between the ``dg_experiment`` markers of ``--results`` (the rest of that file is kept). A finished run
(``OUT/<variant>_s<seed>/scores.json`` with the same settings) is reused, so an interrupted experiment
continues where it stopped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.weather import CONDITIONS

#: Variant -> training config overrides.
VARIANTS: dict[str, list[str]] = {
    "head_only": ["model.tuner.frozen=true"],
    "rein": ["model.tuner.operator=rein"],
    "causal_tune": [],
}
TITLES = {
    "head_only": "(a) decode head only",
    "rein": "(b) Rein-style tokens, no band-pass",
    "causal_tune": "(c) Causal-Tune, training band",
    "causal_tune_calibrated": "(c) Causal-Tune, calibrated bands",
    "causal_tune_filter_off": "(c) with the filter switched off (probe)",
}
#: Rows of the main table, in order (the last two only exist for ``causal_tune``).
ROWS = ("head_only", "rein", "causal_tune", "causal_tune_calibrated", "causal_tune_filter_off")
ADVERSE = tuple(c for c in CONDITIONS if c != "clear")
BEGIN, END = "<!-- dg_experiment:begin -->", "<!-- dg_experiment:end -->"


def _dataset(split: str, scenes: int, size: tuple[int, int]) -> Any:
    from causal_tune_ros.training.datasets import build_dataset

    return build_dataset(
        "synthetic",
        None,
        split,
        num_samples=scenes * len(CONDITIONS),
        conditions=list(CONDITIONS),
        height=size[0],
        width=size[1],
        seed=0,
    )


def _per_condition(result: Any) -> dict[str, float]:
    scores = {c: result.miou(c) for c in CONDITIONS if c in result.matrices}
    scores["mean"] = float(np.mean([scores[c] for c in CONDITIONS]))
    return scores


def run_one(
    config: str,
    variant: str,
    seed: int,
    settings: dict[str, Any],
    out_dir: Path,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one variant with one seed, then score it on the test split (and calibrate Causal-Tune).

    Args:
        config: Training YAML (the shared recipe).
        variant: A key of :data:`VARIANTS`.
        seed: ``run.seed`` (tuner/head initialisation and data order).
        settings: ``iterations``, ``train_scenes``, ``test_scenes``, ``calib_scenes``, ``overrides``,
            ``lows``, ``highs``.
        out_dir: Experiment folder; the run goes to ``out_dir/<variant>_s<seed>``.
        log: Status lines.

    Returns:
        ``{"scores": {row: {condition: mIoU}}, "train_seconds": ..., "bands": {...}}``.
    """
    from causal_tune_ros.band import Band
    from causal_tune_ros.classes import load_classes
    from causal_tune_ros.model.checkpoint import load_checkpoint
    from causal_tune_ros.training.calibrate import band_grid, calibrate_bands
    from causal_tune_ros.training.config import load_train_config
    from causal_tune_ros.training.evaluate import evaluate_bands
    from causal_tune_ros.training.trainer import train

    run_dir = out_dir / f"{variant}_s{seed}"
    done = run_dir / "scores.json"
    if done.is_file():
        previous = json.loads(done.read_text(encoding="utf-8"))
        if previous.get("settings") == settings:
            log(f"{variant} seed {seed}: reusing {done}")
            return previous
    overrides = [
        *settings["overrides"],
        *VARIANTS[variant],
        f"run.seed={seed}",
        f"optim.iterations={settings['iterations']}",
        f"run.output_dir={run_dir}",
        "run.val_every=0",
        "run.checkpoint_every=0",
        "data.val=null",
        f"data.train.num_samples={settings['train_scenes']}",
    ]
    cfg = load_train_config(config, overrides=overrides)
    size = (cfg.data.train.options["height"], cfg.data.train.options["width"])
    started = time.perf_counter()
    result = train(cfg, quiet=True, overwrite=True)
    train_seconds = time.perf_counter() - started
    assert result.final_model is not None  # the run reached its last iteration
    backbone = None
    if cfg.model.backbone.weights:  # a pretrained backbone is not embedded in the run's checkpoint
        from causal_tune_ros.model.dinov2 import DinoV2

        backbone = DinoV2.from_pretrained(cfg.model.backbone.weights)
    model = load_checkpoint(result.final_model, backbone=backbone)
    classes = load_classes()
    options = dict(class_names=classes.names, ignore_index=classes.ignore_id, device="cpu", batch_size=8)
    train_band = Band(*cfg.model.band)
    test = _dataset("test", settings["test_scenes"], size)
    record: dict[str, Any] = {"settings": settings, "train_seconds": round(train_seconds, 1), "scores": {}}
    if variant != "causal_tune":
        (res,) = evaluate_bands(model, test, [train_band], **options)
        record["scores"][variant] = _per_condition(res)
    else:
        val = _dataset("val", settings["calib_scenes"], size)
        grid = band_grid(settings["lows"], settings["highs"], train_band)
        calibration = calibrate_bands(model, val, grid, train_band, min_gain=0.001, **options)
        chosen = calibration.chosen
        bands = list(dict.fromkeys([train_band, *chosen.values()]))
        results = evaluate_bands(model, test, [*bands, None], **options)
        by_band = {r.band: r for r in results}
        record["scores"]["causal_tune"] = _per_condition(by_band[train_band])
        calibrated = {c: by_band[chosen[c]].miou(c) for c in CONDITIONS}
        calibrated["mean"] = float(np.mean([calibrated[c] for c in CONDITIONS]))
        record["scores"]["causal_tune_calibrated"] = calibrated
        record["scores"]["causal_tune_filter_off"] = _per_condition(by_band[None])
        record["bands"] = {c: list(chosen[c].as_tuple()) for c in CONDITIONS}
        record["calibration_val"] = {
            c: {f"{b.low:g}-{b.high:g}": v for b, v in table.items()}
            for c, table in calibration.scores.items()
        }
    tmp = done.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(done)
    mean = record["scores"][variant]["mean"]
    log(f"{variant} seed {seed}: trained in {train_seconds:.0f} s; test mean mIoU {100 * mean:.1f} %")
    return record


def _cell(values: Sequence[float]) -> str:
    if not values:
        return "-"
    mean = 100 * float(np.mean(values))
    if len(values) < 2:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {100 * float(np.std(values, ddof=1)):.1f}"


def format_tables(runs: dict[str, dict[int, dict[str, Any]]]) -> str:
    """Markdown: the three-way table (mean ± sample std over seeds) and the calibrated bands per seed.

    Args:
        runs: Variant -> seed -> record of :func:`run_one`.

    Returns:
        The tables.
    """
    columns = [*CONDITIONS, "mean", "adverse mean"]
    lines = [
        "| mIoU % (test scenes) | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for row in ROWS:
        records = [r["scores"][row] for v in runs.values() for r in v.values() if row in r["scores"]]
        if not records:
            continue
        cells = [_cell([r[c] for r in records]) for c in (*CONDITIONS, "mean")]
        cells.append(_cell([float(np.mean([r[c] for c in ADVERSE])) for r in records]))
        lines.append(f"| {TITLES[row]} | " + " | ".join(cells) + " |")
    calibrated = runs.get("causal_tune", {})
    if calibrated:
        lines += [
            "",
            "Bands chosen on the `val` scenes per seed (r_low-r_high; the training band where none beat it):",
            "",
            "| seed | " + " | ".join(CONDITIONS) + " |",
            "|---|" + "---|" * len(CONDITIONS),
        ]
        for seed, record in sorted(calibrated.items()):
            bands = record.get("bands", {})
            cells = [f"{bands[c][0]:g}-{bands[c][1]:g}" if c in bands else "-" for c in CONDITIONS]
            lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_description() -> str:
    """CPU model, cores, load and library versions, for the results header."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"{cpu}, {os.cpu_count()} cores, load average {load} at the end; Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )


def results_section(
    runs: dict[str, dict[int, dict[str, Any]]], settings: dict[str, Any], command: str, backbone: str
) -> str:
    """The generated part of the results file (date, machine, command, tables)."""
    seconds = [r["train_seconds"] for v in runs.values() for r in v.values()]
    seeds = sorted({s for v in runs.values() for s in v})
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            BEGIN,
            f"Generated by `bench/dg_experiment.py` on {date}.",
            "",
            f"- command: `{command}`",
            f"- machine: {machine_description()}",
            f"- backbone: {backbone}",
            f"- budget per run: {settings['iterations']} steps on {settings['train_scenes']} clear scenes "
            f"(seeds {', '.join(map(str, seeds))}); training wall time per run {min(seconds):.0f} to "
            f"{max(seconds):.0f} s on the shared machine",
            f"- scored on {settings['test_scenes']} held-out `test` scenes per condition; bands calibrated "
            f"on {settings['calib_scenes']} `val` scenes per condition",
            '- cells: mean ± sample standard deviation over the seeds; "mean" is the mean of the five '
            'per-condition mIoUs (the paper\'s "mean"), "adverse mean" that of snow, rain, fog, night',
            "",
            format_tables(runs),
            END,
        ]
    )


def write_results(path: Path, section: str) -> None:
    """Put ``section`` between the markers of ``path`` (created with a title if missing), atomically."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Results\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/train/synthetic_small.yaml", help="training recipe")
    parser.add_argument("--iterations", type=int, default=2000, help="optimizer steps per run")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated run seeds (default %(default)s)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="subset of %(default)s")
    parser.add_argument("--train-scenes", type=int, default=600, help="clear training scenes")
    parser.add_argument("--test-scenes", type=int, default=20, help="test scenes per condition")
    parser.add_argument("--calib-scenes", type=int, default=10, help="val scenes per condition to calibrate")
    parser.add_argument("--lows", type=_floats, default=[0.05, 0.1, 0.2, 0.3], help="r_low values swept")
    parser.add_argument("--highs", type=_floats, default=[0.5, 0.6, 0.7, 0.85, 1.0], help="r_high swept")
    parser.add_argument(
        "-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override"
    )
    parser.add_argument("--out", default="runs/dg_experiment", help="run folders and results.json")
    parser.add_argument("--results", default="docs/RESULTS.md", help="Markdown file to write the tables into")
    parser.add_argument("--backbone-note", default="", help="what the frozen backbone is, for the header")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: tabulate the runs already finished in --out with these settings",
    )
    args = parser.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    variants = [v for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    settings = {
        "config": args.config,
        "iterations": args.iterations,
        "train_scenes": args.train_scenes,
        "test_scenes": args.test_scenes,
        "calib_scenes": args.calib_scenes,
        "overrides": list(args.override),
        "lows": list(args.lows),
        "highs": list(args.highs),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[int, dict[str, Any]]] = {v: {} for v in variants}
    for seed in seeds:  # seed-major: an interrupted experiment has every variant at the first seeds
        for variant in variants:
            if args.report_only:
                done = out / f"{variant}_s{seed}" / "scores.json"
                record = json.loads(done.read_text(encoding="utf-8")) if done.is_file() else None
                if record is not None and record.get("settings") == settings:
                    runs[variant][seed] = record
                continue
            runs[variant][seed] = run_one(args.config, variant, seed, settings, out)
    (out / "results.json").write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")
    command = "OMP_WAIT_POLICY=PASSIVE python bench/dg_experiment.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    backbone = args.backbone_note or _backbone_note(args.config, args.override)
    section = results_section(runs, settings, command, backbone)
    write_results(Path(args.results), section)
    print(format_tables(runs))
    print(f"wrote {args.results} and {out / 'results.json'}")
    return 0


def _backbone_note(config: str, overrides: list[str]) -> str:
    from causal_tune_ros.training.config import load_train_config

    bb = load_train_config(config, overrides=overrides).model.backbone
    if bb.weights:
        return f"`{bb.weights}` (frozen)"
    shape = ", ".join(f"{k} {v}" for k, v in sorted(bb.overrides.items()))
    return f"random-init ViT ({shape}; seed {bb.init_seed}), frozen: no pretraining"


if __name__ == "__main__":
    sys.exit(main())
