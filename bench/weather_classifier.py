"""Accuracy and cost of the single-frame weather classifier on the synthetic street renderings.

Usage::

    python bench/weather_classifier.py [--seeds 0:40] [--size 256x512] [--compare-size 512x1024]
                                       [--stats] [--threads 1]

Renders every scene seed under the five conditions (``causal_tune_ros.synthetic.render_conditions``),
classifies each frame on its own (``classify_image``, no hysteresis) and prints the confusion matrix
(rows: rendered condition, columns: classifier output), the per-condition accuracy and the time per
frame (median over all frames, and as a ratio to a numpy copy of one frame measured in the same run: the
machine is shared and noisy, ratios travel better than milliseconds). ``--compare-size`` classifies the
same seeds at a second size and reports that confusion matrix and how many frames get the same answer at
both sizes. ``--stats`` adds min / median / max of every statistic per condition (for retuning).
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from causal_tune_ros.synthetic import CONDITIONS, render_conditions
from causal_tune_ros.weather import classify_statistics, compute_statistics


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` -> ``(H, W)``."""
    h, _, w = text.lower().partition("x")
    return int(h), int(w)


def parse_seeds(text: str) -> range:
    """``"a:b"`` -> ``range(a, b)``."""
    a, _, b = text.partition(":")
    return range(int(a), int(b))


def measure(seeds: range, size: tuple[int, int]) -> tuple[list[dict], float, float]:
    """Render and classify every (seed, condition).

    Returns:
        Per-frame records, the median seconds to classify one frame (statistics + decision, timed after
        all frames are rendered) and the median seconds of a numpy copy of one frame (reference).
    """
    frames = [
        (seed, c, f.image) for seed in seeds for c, f in render_conditions(seed, CONDITIONS, *size).items()
    ]
    records, times, copies = [], [], []
    for seed, condition, image in frames:
        start = time.perf_counter()
        stats = compute_statistics(image)
        predicted = classify_statistics(stats)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        image.copy()
        copies.append(time.perf_counter() - start)
        records.append({"seed": seed, "true": condition, "pred": predicted, "stats": stats.as_dict()})
    return records, statistics.median(times), statistics.median(copies)


def print_confusion(records: list[dict], title: str) -> None:
    """Confusion matrix, per-condition and overall accuracy."""
    counts = {(t, p): 0 for t in CONDITIONS for p in CONDITIONS}
    for r in records:
        counts[(r["true"], r["pred"])] += 1
    header = "true / predicted"
    print(f"\n{title}\n{header:>16} " + " ".join(f"{c:>6}" for c in CONDITIONS) + "  accuracy")
    for t in CONDITIONS:
        row = [counts[(t, p)] for p in CONDITIONS]
        print(f"{t:>16} " + " ".join(f"{n:6d}" for n in row) + f"  {counts[(t, t)] / max(1, sum(row)):8.3f}")
    overall = sum(counts[(c, c)] for c in CONDITIONS) / max(1, len(records))
    print(f"{'overall':>16} {'':>34}  {overall:8.3f}")
    wrong = [f"{r['true']}@{r['seed']}->{r['pred']}" for r in records if r["pred"] != r["true"]]
    if wrong:
        print(f"misclassified: {', '.join(wrong)}")


def print_stats(records: list[dict]) -> None:
    """min / median / max of every statistic per condition."""
    names = list(records[0]["stats"])
    print(f"\n{'statistic':>22} " + " ".join(f"{c + ' min/med/max':>24}" for c in CONDITIONS))
    for name in names:
        cells = []
        for c in CONDITIONS:
            v = np.array([r["stats"][name] for r in records if r["true"] == c])
            cells.append(f"{v.min():7.3f} {np.median(v):7.3f} {v.max():7.3f}")
        print(f"{name:>22} " + " ".join(f"{cell:>24}" for cell in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=parse_seeds, default=range(0, 40), help="scene seeds a:b (default 0:40)"
    )
    parser.add_argument("--size", type=parse_size, default=(256, 512), help="HxW (default 256x512)")
    parser.add_argument("--compare-size", type=parse_size, default=None, help="second HxW, e.g. 512x1024")
    parser.add_argument("--stats", action="store_true", help="print statistic ranges per condition")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (0 = OpenCV default)")
    args = parser.parse_args()
    if args.threads:
        cv2.setNumThreads(args.threads)

    seeds, (h, w) = args.seeds, args.size
    print(f"weather classifier: seeds {seeds.start}..{seeds.stop - 1} x {len(CONDITIONS)} conditions")
    records, seconds, copy = measure(seeds, (h, w))
    print_confusion(records, f"{h}x{w}: single-frame classification")
    if args.stats:
        print_stats(records)
    print(
        f"\ntime per frame at {h}x{w} (statistics + decision): {1e3 * seconds:.2f} ms "
        f"= {seconds / copy:.1f} x a numpy copy of the frame"
    )

    if args.compare_size:
        h2, w2 = args.compare_size
        other, seconds2, copy2 = measure(seeds, (h2, w2))
        print_confusion(other, f"{h2}x{w2}: single-frame classification")
        same = sum(a["pred"] == b["pred"] for a, b in zip(records, other, strict=True))
        print(f"same answer at {h}x{w} and {h2}x{w2}: {same}/{len(records)}")
        print(
            f"time per frame at {h2}x{w2}: {1e3 * seconds2:.2f} ms = {seconds2 / copy2:.1f} x a numpy copy, "
            f"{seconds2 / seconds:.2f} x the {h}x{w} time"
        )


if __name__ == "__main__":
    main()
