"""Frames per second of the synthetic scene generator, single core.

Usage::

    python bench/synthetic_fps.py [--height 512] [--width 1024] [--scenes 12]

Prints, for the same scenes: geometry only (layout, rasterising, depth, clear colours), each weather
rendering alone on a ready geometry, each full ``render_scene`` call (geometry + weather), and
``render_conditions`` of all five conditions; with ratios to the geometry time, which are the stable
figures on a busy machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time

import cv2

from causal_tune_ros.synthetic import CONDITIONS, render_conditions, render_scene
from causal_tune_ros.synthetic.scene import build_geometry
from causal_tune_ros.synthetic.weather import render_weather


def _rate(fn, seeds) -> float:
    """Calls per CPU second of ``fn(seed)`` over ``seeds`` (best of two passes).

    CPU time of this process, not wall time: on a shared machine other jobs stretch wall time, while a
    single-threaded process's CPU time is what one core spends on it.
    """
    best = float("inf")
    for _ in range(2):
        t0 = time.process_time()
        for s in seeds:
            fn(s)
        best = min(best, time.process_time() - t0)
    return len(seeds) / best


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--scenes", type=int, default=12)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    h, w = args.height, args.width
    seeds = list(range(args.scenes))
    render_scene(0, "clear", h, w)  # warm-up: noise caches

    geo_fps = _rate(lambda s: build_geometry(s, h, w), seeds)
    geoms = {s: build_geometry(s, h, w) for s in seeds}
    print(f"synthetic scenes {h}x{w}, {len(seeds)} scenes, single thread, per CPU second")
    print(f"{'stage':<28}{'frames/s':>10}{'ms/frame':>10}{'x geometry time':>17}")
    print(f"{'geometry only':<28}{geo_fps:>10.1f}{1000 / geo_fps:>10.1f}{1.0:>17.2f}")
    for cond in CONDITIONS:
        fps = _rate(lambda s, c=cond: render_weather(geoms[s], c), seeds)
        print(f"{'weather only: ' + cond:<28}{fps:>10.1f}{1000 / fps:>10.1f}{geo_fps / fps:>17.2f}")
    for cond in CONDITIONS:
        fps = _rate(lambda s, c=cond: render_scene(s, c, h, w), seeds)
        print(f"{'render_scene: ' + cond:<28}{fps:>10.1f}{1000 / fps:>10.1f}{geo_fps / fps:>17.2f}")
    fps = _rate(lambda s: render_conditions(s, CONDITIONS, h, w), seeds) * len(CONDITIONS)
    print(f"{'render_conditions (all 5)':<28}{fps:>10.1f}{1000 / fps:>10.1f}{geo_fps / fps:>17.2f}")


if __name__ == "__main__":
    main()
