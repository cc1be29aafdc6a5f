"""Fleet throughput: 2 workers vs 1 worker vs plain replay on the same bags, as ratios in one run.

    .venv/bin/python bench/fleet.py                        # shipped demo model, 6 bags x 60 frames, 240x320
    .venv/bin/python bench/fleet.py --bags 6 --frames 60 --repeats 2

Three timings over the same synthetic bags (best of ``--repeats`` interleaved rounds):

* ``replay``: one process, the model loaded once, ``Replayer.run`` over the bags one after the other
  (what a shell loop over ``causal-tune replay`` does, without reloading the model per bag);
* ``fleet x1`` / ``fleet x2``: ``run_fleet`` with 1 and 2 workers on a local Ray instance.

Every configuration uses one inference thread per worker. Frames per second count the time from the
models being loaded to the last bag done (Ray start and model loading excluded; they are printed apart).

Targets on a 2-core machine: fleet x2 >= 1.7 x fleet x1; fleet x1 >= 0.9 x replay.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="model (default: the shipped demo model)")
    parser.add_argument("--bags", type=int, default=6, help="input bags (default: 6)")
    parser.add_argument("--frames", type=int, default=60, help="frames per bag (default: 60)")
    parser.add_argument("--size", default="240x320", help="camera image size HxW (default: 240x320)")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds, best kept (default: 1)")
    args = parser.parse_args(argv)

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import numpy as np
    import ray

    from causal_tune_ros.fleet.runner import FleetSettings, run_fleet
    from causal_tune_ros.fleet.worker import ModelSettings
    from causal_tune_ros.replay.command import build_pipeline
    from causal_tune_ros.replay.replayer import Replayer, ReplayOptions
    from causal_tune_ros.synthetic.bag import (
        PERIOD_NS,
        START_NS,
        DriveFrame,
        drive_frames,
        parse_image_size,
        write_drive,
    )
    from causal_tune_ros.weather import CONDITIONS, load_band_presets

    h, w = parse_image_size(args.size)
    workdir = Path(tempfile.mkdtemp(prefix="fleet_bench_"))
    try:
        scenes = list(drive_frames(CONDITIONS, 2, h, w))
        bags = []
        for b in range(args.bags):
            order = islice(cycle(scenes[b:] + scenes[:b]), args.frames)
            drive = [DriveFrame(k, START_NS + k * PERIOD_NS, s.seed, s.frame) for k, s in enumerate(order)]
            path = workdir / "in" / f"drive{b}"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_drive(path, CONDITIONS, args.frames, size=(h, w), drive=drive)
            bags.append(path)
        total = args.bags * args.frames
        presets = load_band_presets()

        started = time.perf_counter()
        pipeline, _ = build_pipeline(checkpoint=args.checkpoint, backend="eager", threads=1)
        ph, pw = pipeline.input_size
        pipeline.process(np.zeros((ph, pw, 3), dtype=np.uint8))  # warm-up, as each fleet worker does
        replay_load = time.perf_counter() - started

        def plain_replay(round_: int) -> float:
            replayer = Replayer(pipeline, ReplayOptions(progress=False), band_presets=presets)
            t0 = time.perf_counter()
            for bag in bags:
                replayer.run(bag, workdir / f"replay{round_}" / bag.name)
            return time.perf_counter() - t0

        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, object_store_memory=128 * 1024**2)
        ray_start = time.perf_counter() - t0

        def fleet(workers: int, round_: int) -> tuple[float, float]:
            settings = FleetSettings(
                model=ModelSettings(checkpoint=args.checkpoint, backend="eager", threads=1),
                workers=workers,
                progress=False,
            )
            summary = run_fleet(bags, workdir / f"fleet{workers}_{round_}", settings)
            if summary.processed != total or not summary.ok:
                raise SystemExit(f"fleet x{workers} processed {summary.processed} of {total} frames")
            return summary.work_seconds, summary.seconds

        best: dict[str, float] = {}
        setup: dict[str, float] = {}
        for r in range(args.repeats):
            for name, fn in (
                ("replay", lambda r=r: (plain_replay(r), 0.0)),
                ("fleet x1", lambda r=r: fleet(1, r)),
                ("fleet x2", lambda r=r: fleet(2, r)),
            ):
                work, whole = fn()
                best[name] = min(best.get(name, float("inf")), work)
                setup[name] = whole - work if whole else replay_load
        ray.shutdown()

        fps = {k: total / v for k, v in best.items()}
        print(
            f"{args.bags} bags x {args.frames} frames of {h}x{w}, {os.cpu_count()} CPUs, 1 thread per worker"
        )
        print(f"{'':10} {'seconds':>9} {'fps':>8} {'start-up s':>11}")
        for name in ("replay", "fleet x1", "fleet x2"):
            print(f"{name:10} {best[name]:9.2f} {fps[name]:8.2f} {setup[name]:11.2f}")
        print(f"Ray local start: {ray_start:.2f} s")
        scale = fps["fleet x2"] / fps["fleet x1"]
        overhead = fps["fleet x1"] / fps["replay"]
        print(f"fleet x2 / fleet x1 = {scale:.2f}  (target >= 1.70)")
        print(f"fleet x1 / replay   = {overhead:.2f}  (target >= 0.90)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
