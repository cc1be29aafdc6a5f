"""Replay throughput vs model-only inference on the same frames, in one run (ratios; the machine is noisy).

    .venv/bin/python bench/replay_throughput.py                      # shipped demo model, 30 raw frames
    .venv/bin/python bench/replay_throughput.py --compressed --frames 60 --size 480x640

Three timings over the same decoded frames, interleaved ``--repeats`` times (best of each kept):

* ``backend``: ``backend.infer`` only (the network);
* ``pipeline``: ``SegmentationPipeline.process`` on pre-decoded RGB frames (network + resize, argmax,
  overlay, drivable mask): what any consumer of the model must run, the "model-only" reference;
* ``replay``: ``causal-tune replay`` end to end (read, decode, weather, model, serialise, write a bag),
  with its reader / writer threads and, for comparison, all in one thread.

Overhead = replay time / pipeline time - 1 (target <= 15 %); also shown against backend-only time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="model (default: the shipped demo model)")
    parser.add_argument("--input-size", help="network input HxW (default: recorded in the checkpoint)")
    parser.add_argument("--frames", type=int, default=30, help="frames in the bag (default: 30)")
    parser.add_argument("--size", default="240x320", help="camera image size HxW (default: 240x320)")
    parser.add_argument("--compressed", action="store_true", help="JPEG CompressedImage input")
    parser.add_argument("--storage", default="mcap", choices=("mcap", "sqlite3"))
    parser.add_argument("--weather", default="auto", help="replay --weather mode (default: auto)")
    parser.add_argument("--weather-every", type=int, default=1, help="replay --weather-every (default: 1)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (default: 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from causal_tune_ros.bags import BagReader
    from causal_tune_ros.band import Band
    from causal_tune_ros.replay.command import build_pipeline
    from causal_tune_ros.replay.reading import decode_image
    from causal_tune_ros.replay.replayer import Replayer, ReplayOptions
    from causal_tune_ros.synthetic.bag import parse_image_size, write_drive
    from causal_tune_ros.weather import load_band_presets
    from causal_tune_ros.worker_thread import run_in_worker

    h, w = parse_image_size(args.size)
    workdir = Path(tempfile.mkdtemp(prefix="replay_bench_"))
    try:
        in_bag = workdir / "in"
        conditions = ["clear", "snow", "night"]
        per = -(-args.frames // len(conditions))
        write_drive(in_bag, conditions, per, size=(h, w), compressed=args.compressed, storage=args.storage)
        pipeline, warning = build_pipeline(
            checkpoint=args.checkpoint, backend="eager", input_size=args.input_size, threads=args.threads
        )
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        with BagReader(in_bag) as bag:
            topic = bag.image_topics()[0]
            frames = [decode_image(m)[1].copy() for m in bag.messages([topic])]
        band = Band()
        presets = load_band_presets()
        # Warm-up: first calls allocate and pick kernels.
        for rgb in frames[:3]:
            pipeline.process(rgb, band, overlay=True, confidence=False)
        batches = [pipeline.preprocess(rgb) for rgb in frames]

        backend_t, pipeline_t, replay_t, serial_t = [], [], [], []

        # Every timing runs its model calls off the main thread, as the replay does (see run_in_worker).
        in_thread = run_in_worker

        model_share = []

        def backend_only() -> float:
            t0 = time.perf_counter()
            for batch in batches:
                pipeline.backend.infer(batch, band)
            return time.perf_counter() - t0

        def pipeline_only() -> float:
            t0 = time.perf_counter()
            for rgb in frames:
                pipeline.process(rgb, band, overlay=True, confidence=False)
            return time.perf_counter() - t0

        def replay(threaded: bool, out: Path) -> object:
            options = ReplayOptions(
                weather=args.weather, weather_every=args.weather_every, progress=False, threaded=threaded
            )
            return Replayer(pipeline, options, band_presets=presets).run(in_bag, out)

        for r in range(args.repeats):
            backend_t.append(in_thread(backend_only))
            pipeline_t.append(in_thread(pipeline_only))
            for threaded, times in ((True, replay_t), (False, serial_t)):
                out = workdir / f"out{r}_{threaded}"
                summary = replay(threaded, out)
                assert summary.processed == len(frames), summary.format()
                times.append(summary.seconds)
                if threaded:
                    model_share.append(summary.model_seconds / summary.seconds)
                shutil.rmtree(out)

        n = len(frames)
        best_b, best_p, best_r, best_s = (min(x) for x in (backend_t, pipeline_t, replay_t, serial_t))
        med_b, med_p, med_r, med_s = (
            statistics.median(x) for x in (backend_t, pipeline_t, replay_t, serial_t)
        )
        print(
            f"replay throughput: {n} frames {w}x{h} "
            f"({'jpeg' if args.compressed else 'rgb8'}, {args.storage}), network input "
            f"{pipeline.input_size[1]}x{pipeline.input_size[0]}, torch threads {torch.get_num_threads()}, "
            f"{args.repeats} interleaved repeats"
        )
        print(f"{'stage':<30} {'best fps':>9} {'median fps':>11}")
        print(f"{'backend.infer only':<30} {n / best_b:>9.2f} {n / med_b:>11.2f}")
        print(f"{'pipeline.process (model-only)':<30} {n / best_p:>9.2f} {n / med_p:>11.2f}")
        print(f"{'replay, I/O threads':<30} {n / best_r:>9.2f} {n / med_r:>11.2f}")
        print(f"{'replay, one thread':<30} {n / best_s:>9.2f} {n / med_s:>11.2f}")
        for label, best, med in (("I/O threads", best_r, med_r), ("one thread", best_s, med_s)):
            print(
                f"replay overhead ({label}) vs pipeline.process: best {100 * (best / best_p - 1):+.1f} %, "
                f"median {100 * (med / med_p - 1):+.1f} %; vs backend.infer: best "
                f"{100 * (best / best_b - 1):+.1f} %"
            )
        print("default: I/O threads (--io-threads on); target <= 15 %")
        share = 100 * statistics.median(model_share)
        print(f"model stage share of the threaded replay's wall time: {share:.0f} %")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
