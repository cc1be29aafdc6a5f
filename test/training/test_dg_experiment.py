"""bench/dg_experiment.py runs the three-way experiment end to end on a tiny budget and writes its table."""

from __future__ import annotations

import json
from pathlib import Path

from causal_tune_ros.weather import CONDITIONS

from ..bench_support import load_bench

ROOT = Path(__file__).resolve().parents[2]

#: Shrinks the demo recipe to a few seconds: a 2-block, 24-wide ViT, 2 steps on 4 scenes of 28 x 42.
TINY = [
    "model.backbone.overrides={embed_dim: 24, depth: 2, num_heads: 2, mlp_ratio: 2.0, patch_size: 14}",
    "model.tuner.num_tokens=4",
    "model.tuner.rank=2",
    "model.head.options={channels: 8, norm: bn, dropout: 0.0}",
    "data.train.height=28",
    "data.train.width=42",
    "data.cache=false",
    "augment.crop_size=[28, 42]",
    "optim.batch_size=2",
    "optim.warmup_iters=0",
]


def _module():
    return load_bench("dg_experiment")


def test_experiment_runs_end_to_end_and_writes_the_table(tmp_path: Path, capsys) -> None:
    dg = _module()
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nhand-written notes stay\n")
    args = [
        "--config",
        str(ROOT / "config/train/synthetic_small.yaml"),
        "--iterations",
        "2",
        "--seeds",
        "0,1",
    ]
    args += ["--train-scenes", "4", "--test-scenes", "1", "--calib-scenes", "1", "--lows", "0.1,0.2"]
    args += ["--highs", "0.7", "--out", str(tmp_path / "runs"), "--results", str(results)]
    for item in TINY:
        args += ["-o", item]
    assert dg.main(args) == 0

    runs = json.loads((tmp_path / "runs" / "results.json").read_text())
    assert set(runs) == {"head_only", "rein", "causal_tune"} and all(
        set(v) == {"0", "1"} for v in runs.values()
    )
    tuned = runs["causal_tune"]["0"]
    assert set(tuned["scores"]) == {"causal_tune", "causal_tune_calibrated", "causal_tune_filter_off"}
    for scores in tuned["scores"].values():
        assert set(scores) == {*CONDITIONS, "mean"}
        assert abs(scores["mean"] - sum(scores[c] for c in CONDITIONS) / 5) < 1e-9
    assert set(tuned["bands"]) == set(CONDITIONS)

    text = results.read_text()
    assert text.startswith("# Results\n\nhand-written notes stay\n")
    table = text[text.index(dg.BEGIN) : text.index(dg.END)]
    assert "--iterations 2 --seeds 0,1" in table and "machine:" in table
    for title in (
        "(a) decode head only",
        "(b) Rein-style tokens, no band-pass",
        "(c) Causal-Tune, training band",
    ):
        row = next(line for line in table.splitlines() if line.startswith(f"| {title} |"))
        assert row.count("±") == 7  # 5 conditions, mean, adverse mean: mean ± spread over 2 seeds

    # A second call reuses the finished runs and rewrites the section in place (still one section).
    assert dg.main(args) == 0
    assert "reusing" in capsys.readouterr().out
    assert results.read_text().count(dg.BEGIN) == 1
    # --report-only tabulates what is finished and trains nothing: a third seed adds no row data.
    assert dg.main([*args[:5], "0,1,2", *args[6:], "--report-only"]) == 0
    assert not (tmp_path / "runs" / "head_only_s2").exists()
    assert json.loads((tmp_path / "runs" / "results.json").read_text()) == runs
