"""``causal-tune eval``: per-class IoU, mIoU and pixel accuracy per condition, under one or more bands.

Examples::

    causal-tune eval --checkpoint runs/synthetic_small/model.safetensors --data synthetic::val \\
        --data-option num_samples=50 --band 0.2,0.7 --band 0.1,0.5 --no-band-pass -o eval_out

    causal-tune eval --checkpoint runs/cs2acdc/model.safetensors --backbone dinov2_vitl14_pretrain.pth \\
        --data acdc:/data/acdc:val --sliding-window --window 512 --stride 341 --input-size 1024,2048

    torchrun --nproc_per_node=4 -m causal_tune_ros.cli eval ...   # samples sharded, matrices all-reduced

``--data NAME[:ROOT[:SPLIT]]`` (repeatable); ``--config`` takes the data sets and inference settings
listed in a training config's ``eval`` section instead. Tables are printed and written to ``OUTDIR`` as
``<name>_<split>.md`` / ``.csv``, plus ``summary.json`` with everything.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HELP = "evaluate a checkpoint: per-class IoU, mIoU, pixel accuracy, per-condition tables, several bands"


def _pair(text: str) -> tuple[int, int]:
    """``512`` -> (512, 512); ``512,1024`` or ``512x1024`` -> (512, 1024) (argparse's type)."""
    from causal_tune_ros.sizes import parse_size

    try:
        return parse_size(text, what="size", square=True)
    except ValueError as exc:  # ConfigError: shown by argparse as a usage error
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``eval`` options."""
    parser.add_argument(
        "--checkpoint", required=True, help="a Causal-Tune .safetensors checkpoint, or a training run folder"
    )
    parser.add_argument(
        "--backbone",
        help="backbone weights (official .pth or HF folder) when the checkpoint does not embed one",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME[:ROOT[:SPLIT]]",
        help="data set to evaluate (repeatable), e.g. acdc:/data/acdc:val or synthetic::val",
    )
    parser.add_argument(
        "--data-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument for the data-set readers (repeatable), e.g. num_samples=50",
    )
    parser.add_argument("--config", help="training YAML whose eval.sets / eval settings to use")
    parser.add_argument("--sliding-window", action="store_true", help="sliding-window inference")
    parser.add_argument("--window", type=_pair, default=None, help="window N or H,W (default 512)")
    parser.add_argument("--stride", type=_pair, default=None, help="stride N or H,W (default 341)")
    parser.add_argument(
        "--input-size",
        type=_pair,
        default=None,
        help="resize images into an H,W box (aspect ratio kept) before inference (default: native size)",
    )
    parser.add_argument(
        "--band",
        action="append",
        default=[],
        metavar="R_LOW,R_HIGH",
        help="band setting to evaluate (repeatable; default: the checkpoint's training band)",
    )
    parser.add_argument(
        "--no-band-pass",
        action="store_true",
        help="also evaluate with the band-pass off (the paper's ablation)",
    )
    parser.add_argument(
        "--conditions", nargs="+", help="only these conditions, in this order (e.g. fog night)"
    )
    parser.add_argument(
        "-o", "--output-dir", default="eval_results", help="folder for the tables (default %(default)s)"
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off", help="autocast on CUDA")
    parser.add_argument(
        "--batch-size", type=int, default=1, help="images per forward pass (whole-image mode)"
    )
    parser.add_argument("--max-samples", type=int, default=None, help="evaluate the first N samples only")
    parser.add_argument("--workers", type=int, default=0, help="data loading worker processes")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_data_spec(text: str) -> tuple[str, str | None, str]:
    """Split ``NAME[:ROOT[:SPLIT]]`` (split defaults to ``val``; an empty root means none).

    Raises:
        ConfigError: For an empty name.
    """
    from causal_tune_ros.errors import ConfigError

    name, _, rest = text.partition(":")
    root, split = rest, "val"
    if ":" in rest:
        root, split = rest.rsplit(":", 1)
    if not name:
        raise ConfigError(f"--data {text!r}: expected NAME[:ROOT[:SPLIT]], e.g. acdc:/data/acdc:val")
    return name, (root or None), (split or "val")


def _parse_options(items: list[str]) -> dict[str, Any]:
    import yaml

    from causal_tune_ros.errors import ConfigError

    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--data-option {item!r}: expected KEY=VALUE")
        options[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return options


def _restrict_conditions(ds_cfg: Any, conditions: list[str]) -> None:
    """Let readers that select conditions (ACDC, synthetic) skip the others instead of reading them."""
    import inspect

    from causal_tune_ros.training.datasets import DATASETS

    reader = DATASETS.get(ds_cfg.name.lower())
    if reader is not None and "conditions" in inspect.signature(reader).parameters:
        ds_cfg.options["conditions"] = list(conditions)


def _default_synthetic_size(ds_cfg: Any, checkpoint: Path) -> None:
    """Render synthetic scenes at the checkpoint's own input size unless the set gives a size.

    Args:
        ds_cfg: A ``DatasetConfig``; changed in place (``options`` gains ``height`` and ``width``).
        checkpoint: The checkpoint being evaluated.

    Raises:
        CheckpointError: If the checkpoint cannot be read.
    """
    from causal_tune_ros.model.checkpoint import recorded_input_size

    if ds_cfg.name.lower() != "synthetic" or {"height", "width"} & set(ds_cfg.options):
        return
    size = recorded_input_size(checkpoint)
    if size is not None:
        ds_cfg.options["height"], ds_cfg.options["width"] = size


def _describe_set(dataset: Any, max_samples: int | None) -> str:
    """``"100 images at 168x336"`` (the size only where the reader has a fixed one)."""
    count = len(dataset) if max_samples is None else min(len(dataset), max_samples)
    size = ""
    if isinstance(getattr(dataset, "height", None), int) and isinstance(getattr(dataset, "width", None), int):
        size = f" at {dataset.height}x{dataset.width}"
    return f"{count} images{size}"


def _resolve_checkpoint(path: str) -> Path:
    from causal_tune_ros.errors import CheckpointError
    from causal_tune_ros.training.run_state import MODEL_FILE, resolve_resume

    p = Path(path)
    if p.is_dir():
        if (p / MODEL_FILE).is_file():
            return p / MODEL_FILE
        try:
            return resolve_resume(p) / MODEL_FILE
        except CheckpointError:
            raise CheckpointError(f"{p} holds no {MODEL_FILE} and no training checkpoint") from None
    return p


def run(args: argparse.Namespace) -> int:
    """Evaluate; returns 0 on success (errors raise ``CausalTuneError`` and the CLI reports them)."""
    from causal_tune_ros.band import Band, parse_band
    from causal_tune_ros.classes import load_classes
    from causal_tune_ros.errors import ConfigError
    from causal_tune_ros.model.checkpoint import load_checkpoint, read_checkpoint_metadata
    from causal_tune_ros.training.config import DatasetConfig, EvalConfig, load_train_config
    from causal_tune_ros.training.distributed import cleanup, init_distributed
    from causal_tune_ros.training.evaluate import evaluate_bands, format_markdown, write_tables
    from causal_tune_ros.training.samples import build_dataset_from_config

    eval_cfg = EvalConfig()
    sets: list[DatasetConfig] = []
    if args.config:
        from causal_tune_ros.training.train_command import find_config

        eval_cfg = load_train_config(find_config(args.config)).eval
        sets = list(eval_cfg.sets)
    options = _parse_options(args.data_option)
    if args.data:
        sets = []
        for spec in args.data:
            name, root, split = parse_data_spec(spec)
            sets.append(DatasetConfig(name=name, root=root, split=split, options=dict(options)))
    elif options:
        for s in sets:
            s.options.update(options)
    if args.conditions:
        for s in sets:
            _restrict_conditions(s, args.conditions)
    if not sets:
        raise ConfigError("nothing to evaluate: give --data NAME[:ROOT[:SPLIT]] or --config with eval.sets")

    ckpt = _resolve_checkpoint(args.checkpoint)
    meta = read_checkpoint_metadata(ckpt)
    for s in sets:
        _default_synthetic_size(s, ckpt)
    bands: list[Band | None] = [parse_band(b) for b in args.band]
    bands += [Band(*b) for b in eval_cfg.bands if not args.band]
    if not bands:
        train_band = meta.get("train_band")
        bands.append(Band(*train_band) if train_band else Band())
    if args.no_band_pass:
        bands.append(None)
    bands = list(dict.fromkeys(bands))  # drop repeats, keep order

    names = meta.get("class_names")
    classes = load_classes() if names is None else None
    class_names = tuple(names) if names is not None else classes.names
    ignore = 255 if classes is None else classes.ignore_id

    info = init_distributed(args.device)
    try:
        backbone = None
        if args.backbone:
            from causal_tune_ros.model.dinov2 import DinoV2

            backbone = DinoV2.from_pretrained(args.backbone)
        model = load_checkpoint(ckpt, backbone=backbone).to(info.device)
        sliding = args.sliding_window or eval_cfg.sliding_window
        window = args.window or tuple(eval_cfg.window)
        stride = args.stride or tuple(eval_cfg.stride)
        default_size = args.input_size or (tuple(eval_cfg.input_size) if eval_cfg.input_size else None)
        summary: dict[str, Any] = {
            "checkpoint": str(ckpt),
            "sliding_window": {"window": list(window), "stride": list(stride)} if sliding else None,
            "input_size": None if default_size is None else list(default_size),
            "datasets": {},
        }
        out_dir = Path(args.output_dir)
        for ds_cfg in sets:
            dataset = build_dataset_from_config(ds_cfg, f"--data {ds_cfg.describe()}")
            # --input-size beats a set's own size, which beats eval.input_size.
            input_size = args.input_size or (tuple(ds_cfg.input_size) if ds_cfg.input_size else default_size)
            if info.is_main and not args.quiet:
                what = _describe_set(dataset, args.max_samples)
                print(f"{ds_cfg.describe()}: {what} x {len(bands)} band setting(s)")
            results = evaluate_bands(
                model,
                dataset,
                bands,
                class_names=class_names,
                ignore_index=ignore,
                sliding_window=sliding,
                window=window,
                stride=stride,
                input_size=input_size,
                batch_size=args.batch_size,
                max_samples=args.max_samples,
                conditions=args.conditions,
                device=info.device,
                amp=args.amp,
                num_workers=args.workers,
                progress=not args.quiet,
                dist_info=info,
                dataset_name=f"{ds_cfg.name} ({ds_cfg.split})",
            )
            if info.is_main:
                stem = f"{ds_cfg.name}_{ds_cfg.split}".replace("/", "_")
                paths = write_tables(results, out_dir, stem=stem)
                print(format_markdown(results))
                print(f"wrote {paths['markdown']} and {paths['csv']}")
                summary["datasets"][ds_cfg.describe()] = [r.summary() | {"label": r.label} for r in results]
        if info.is_main:
            (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    finally:
        cleanup(info)
    return 0
