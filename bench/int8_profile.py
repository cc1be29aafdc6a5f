"""Where the time of an onnxruntime graph goes, by operator kind, and the int8 speed-up ceiling it implies.

Usage::

    python bench/int8_profile.py GRAPH.onnx [--reps 5] [--threads 2]

Runs the graph (as ``bench/backends.py`` exports it: inputs ``images`` and ``band``) with onnxruntime's
profiler and sums kernel time per operator type over ``--reps`` runs after one warm-up. Prints each
type's share and the share of the dynamically quantised MatMuls (``MatMulInteger`` and its
``DynamicQuantizeLinear`` / ``DynamicQuantizeMatMul`` companions): if those took no time at all the
graph would run ``1 / (1 - share)`` times faster, the ceiling of what better int8 kernels can give while
attention stays in fp32.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort

QUANTISED = ("MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul", "MatMulIntegerToFloat")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graph", type=Path)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="ort_profile_")) / "run")
    session = ort.InferenceSession(str(args.graph), options, providers=["CPUExecutionProvider"])
    shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
    feeds = {
        "images": np.random.default_rng(0).random(shape, dtype=np.float32),
        "band": np.array([0.2, 0.7], np.float32),
    }
    session.run(None, feeds)  # warm-up (not separable in the profile: subtracted below by run count)
    for _ in range(args.reps):
        session.run(None, feeds)
    events = json.loads(Path(session.end_profiling()).read_text())
    per_op: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"] / 1e3
    total = sum(per_op.values())
    runs = args.reps + 1
    print(
        f"{args.graph.name}: {total / runs:.1f} ms of kernel time per run "
        f"({runs} runs, {args.threads} threads)"
    )
    for op, ms in sorted(per_op.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {op:32s} {ms / runs:8.1f} ms  {100 * ms / total:5.1f} %")
    share = sum(ms for op, ms in per_op.items() if op in QUANTISED) / total
    print(
        f"quantised MatMuls: {100 * share:.1f} % of kernel time; "
        f"ceiling if they took no time: {1 / (1 - share):.2f}x"
    )


if __name__ == "__main__":
    main()
