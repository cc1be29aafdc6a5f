"""Two cameras in one multi-camera node against two single-camera nodes: peak memory, frame rate, masks.

    python bench/multi_camera.py                          # demo model, 720 x 1280 frames, 40 frame pairs
    python bench/multi_camera.py --pairs 100 --threads 1  # each node process with 1 CPU thread
    python bench/multi_camera.py --pairs 5 --no-fps       # peak RSS and mask equality only (any machine)

Processes on loopback (reliable QoS, ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, a domain of its own,
the package's Fast DDS profile ``config/fastdds_large_images.xml`` as the launch file applies it),
each node started as ``python -m causal_tune_ros.node.segmentation_node``:

* **multi**: one node with ``cameras: [front, rear]`` (one model, both frames in one forward);
* **singles**: two single-camera nodes, one per camera (two models, two processes), run side by side.

This process publishes the same synthetic street scenes to both set-ups, one pair of frames at a time (the
next pair once both class masks of the previous one arrived: synchronised cameras), and subscribes to the
class masks only (overlay and confidence are computed only while watched, in both set-ups alike).

Reported: peak RSS (``VmHWM`` of each node process, summed for the singles) and its ratio multi / singles
(target at most 0.6); frames per second over the timed pairs and the ratio multi / singles (target at
least 1.0; measure it on a quiet machine); whether every class mask of the multi node equals the single
node's for the same frame. ``--json`` writes the figures to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CAMERAS = ("front", "rear")


def _isolate_ros() -> None:
    """Loopback-only discovery in a domain of our own, logs in a temp folder (before importing rclpy)."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(110 + os.getpid() % 90))
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="multi_camera_log_"))
    os.environ.pop("RMW_IMPLEMENTATION", None)
    # The Fast DDS profile the launch file applies: without it, a lost fragment of a 2.7 MB frame stalls
    # its topic, which hits one process receiving two cameras harder than two processes with one each.
    profile = Path(__file__).resolve().parent.parent / "config" / "fastdds_large_images.xml"
    os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(profile))


def _frames(count: int, height: int, width: int) -> list:
    """``count`` distinct synthetic street scenes (the package's renderer)."""
    import numpy as np

    from causal_tune_ros.synthetic.render import render_scene

    return [np.ascontiguousarray(render_scene(seed, "clear", height, width).image) for seed in range(count)]


def _start_node(ns: str, params: list[str], log: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "causal_tune_ros.node.segmentation_node", "--ros-args", "-r", f"__ns:={ns}"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _peak_rss_mb(pid: int) -> float:
    """Peak resident set size (``VmHWM``) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


class _Masks:
    """Class masks received, keyed by (topic, stamp)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.masks: dict[tuple[str, int], object] = {}

    def callback(self, topic: str):
        import numpy as np

        def record(msg) -> None:
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            mask = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width)
            with self.cond:
                self.masks[(topic, stamp)] = mask
                self.cond.notify_all()

        return record

    def wait(self, topics: list[str], stamp: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all((t, stamp) in self.masks for t in topics):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [t for t in topics if (t, stamp) not in self.masks]
                    raise RuntimeError(f"no class mask on {missing} for stamp {stamp} within {timeout} s")
                self.cond.wait(left)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints the figures (and writes them with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40, help="timed frame pairs per set-up")
    parser.add_argument("--warmup", type=int, default=5, help="untimed pairs first")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--checkpoint", default="", help="default: the shipped demo model")
    parser.add_argument("--input-size", default="", help="network input HxW; default: the checkpoint's")
    parser.add_argument("--threads", type=int, default=0, help="cpu_threads of each node (0: default)")
    parser.add_argument("--no-fps", action="store_true", help="only peak RSS and mask equality")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one pair")
    args = parser.parse_args(argv)

    _isolate_ros()
    import numpy as np
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from causal_tune_ros.imaging import numpy_to_image

    common = ["backend:=eager", "device:=cpu", "qos.reliability:=reliable", f"cpu_threads:={args.threads}"]
    if args.checkpoint:
        common.append(f"model.checkpoint:={args.checkpoint}")
    if args.input_size:
        h, w = args.input_size.lower().split("x")
        common += [f"model.input_height:={int(h)}", f"model.input_width:={int(w)}"]
    frames = _frames(4, args.height, args.width)
    logs = Path(tempfile.mkdtemp(prefix="multi_camera_nodes_"))
    tag = f"mc{os.getpid()}"
    # Set-up -> [(input topic, class mask topic)] per camera, and the processes.
    setups = {
        "multi": [
            (f"/{tag}/multi/{c}/image", f"/{tag}/multi/segmentation_node/{c}/class_mask") for c in CAMERAS
        ],
        "singles": [(f"/{tag}/{c}/image", f"/{tag}/{c}/segmentation_node/class_mask") for c in CAMERAS],
    }
    procs = {
        "multi": [
            _start_node(f"/{tag}/multi", [*common, f"cameras:=[{', '.join(CAMERAS)}]"], logs / "multi.log")
        ],
        "singles": [_start_node(f"/{tag}/{c}", common, logs / f"single_{c}.log") for c in CAMERAS],
    }
    rclpy.init()
    node = Node("multi_camera_bench")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    masks = _Masks()
    pubs = {
        name: [node.create_publisher(Image, t, qos) for t, _ in topics] for name, topics in setups.items()
    }
    for topics in setups.values():
        for _, out in topics:
            node.create_subscription(Image, out, masks.callback(out), qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    results: dict[str, dict[str, float]] = {}
    stamp = 1_000_000_000
    try:
        deadline = time.monotonic() + 300
        while any(p.get_subscription_count() == 0 for ps in pubs.values() for p in ps) or any(
            node.count_publishers(out) == 0 for topics in setups.values() for _, out in topics
        ):
            if time.monotonic() > deadline or any(p.poll() is not None for ps in procs.values() for p in ps):
                raise RuntimeError(f"the nodes did not come up; logs in {logs}")
            time.sleep(0.1)
        time.sleep(1.0)
        stamps: list[int] = []
        for name in ("multi", "singles"):  # the same frames and stamps for both set-ups
            outs = [out for _, out in setups[name]]
            timed_start = None
            for i in range(args.warmup + args.pairs):
                if i == args.warmup:
                    timed_start = time.perf_counter()
                s = stamp + i
                for k, pub in enumerate(pubs[name]):
                    rgb = frames[(i + k) % len(frames)]
                    msg = numpy_to_image(rgb, "rgb8", msg_cls=Image)
                    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(s, 1_000_000_000)
                    msg.header.frame_id = CAMERAS[k]
                    pub.publish(msg)
                masks.wait(outs, s, args.timeout)
                if name == "multi":
                    stamps.append(s)
            elapsed = time.perf_counter() - (timed_start or time.perf_counter())
            rss = sum(_peak_rss_mb(p.pid) for p in procs[name])
            results[name] = {
                "peak_rss_mb": rss,
                "fps": len(CAMERAS) * args.pairs / elapsed if elapsed else 0.0,
            }
        equal = all(
            np.array_equal(masks.masks[(m_out, s)], masks.masks[(s_out, s)])
            for s in stamps
            for (_, m_out), (_, s_out) in zip(setups["multi"], setups["singles"], strict=True)
        )
    finally:
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()
        rclpy.try_shutdown()
        for ps in procs.values():
            for p in ps:
                p.terminate()
        for ps in procs.values():
            for p in ps:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
    figures = {
        "frames": f"{args.height}x{args.width}",
        "pairs": args.pairs,
        "threads": args.threads,
        "multi": results["multi"],
        "singles": results["singles"],
        "peak_rss_ratio": results["multi"]["peak_rss_mb"] / results["singles"]["peak_rss_mb"],
        "fps_ratio": results["multi"]["fps"] / results["singles"]["fps"]
        if results["singles"]["fps"]
        else 0.0,
        "masks_identical": equal,
    }
    print(
        f"peak RSS: multi {results['multi']['peak_rss_mb']:.0f} MiB, two singles "
        f"{results['singles']['peak_rss_mb']:.0f} MiB: ratio {figures['peak_rss_ratio']:.2f} (target <= 0.6)"
    )
    if not args.no_fps:
        print(
            f"frames/s: multi {results['multi']['fps']:.2f}, two singles {results['singles']['fps']:.2f}: "
            f"ratio {figures['fps_ratio']:.2f} (target >= 1.0)"
        )
    print(f"class masks identical: {equal} ({len(CAMERAS) * (args.warmup + args.pairs)} frames)")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
