"""End-to-end latency of the segmentation node against a bare rclpy echo, measured in one run.

    python bench/node_latency.py                     # 200 frames each, 1024 x 512 rgb8, tiny random model
    python bench/node_latency.py --frames 400 --checkpoint models/demo/causal_tune_demo.safetensors

Three processes on loopback (reliable QoS, ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, a domain of
its own):

* this one publishes ``rgb8`` frames stamped with the send time and records when the answers arrive;
* the **node** (``python -m causal_tune_ros.node.segmentation_node``) with every output on and
  subscribed here (class mask, overlay, confidence, drivable mask, drivable grid), logging per-frame
  timings at DEBUG so that the model time of *each* frame can be subtracted;
* a **bare echo** (this file with ``--echo``): an rclpy node that turns the Image into numpy and publishes
  a ``mono8`` Image of the same size.

Frames are sent one at a time (the next after every answer of the previous one arrived), alternating
blocks of node and echo frames so that machine load drifts hit both alike. Latency is
``receive time - header.stamp`` of the class mask (the first output the node publishes) or of the echo.

Reported, median and p95 in ms:

* ``echo``: the bare round trip (conversion + publish + transport both ways);
* ``node e2e``: the node's round trip;
* ``node - model``: minus that frame's model-only (backend inference) time;
* ``node - pipeline``: minus that frame's whole pipeline call (resize, inference, upsampling, overlay,
  confidence): what is left is conversion, hand-off to the worker, building and publishing messages and
  transport, the part comparable to the echo. The target is at most 1.5x the echo.

The model here is a tiny random ViT (model time is subtracted anyway) on a synthetic street scene;
``--checkpoint`` runs a real one.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

WIDTH, HEIGHT = 1024, 512
_FRAME_LINE = re.compile(
    r"frame (\d+)\.(\d+): convert ([\d.]+) ms, model ([\d.]+) ms, pipeline ([\d.]+) ms, publish ([\d.]+) ms"
)


def _isolate_ros() -> None:
    """Loopback-only discovery in a domain of our own, logs in a temp folder (before importing rclpy)."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(110 + os.getpid() % 90))
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="node_latency_log_"))
    os.environ.pop("RMW_IMPLEMENTATION", None)


def _reliable(depth: int = 1):
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)


# ----------------------------------------------------------------------------------------------------
# the bare echo process
# ----------------------------------------------------------------------------------------------------


def run_echo(ros_args: list[str]) -> int:
    """Bare rclpy echo: Image -> numpy -> one channel as a mono8 Image of the same size."""
    import array

    import numpy as np
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    rclpy.init(args=["bare_echo", *ros_args])
    node = Node("bare_echo")
    pub = node.create_publisher(Image, "echo/mask", _reliable())

    def on_image(msg: Image) -> None:
        rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)
        rgb = rows[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
        mono = np.ascontiguousarray(rgb[..., 1])
        out = Image(header=msg.header, height=msg.height, width=msg.width, encoding="mono8", step=msg.width)
        data = array.array("B")
        data.frombytes(mono)
        out.data = data
        pub.publish(out)

    node.create_subscription(Image, "echo/image", on_image, _reliable())
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


# ----------------------------------------------------------------------------------------------------
# the measuring process
# ----------------------------------------------------------------------------------------------------


def _tiny_checkpoint(folder: Path) -> Path:
    """A random 2-block ViT whose head favours road and sky, so class regions are large as in real use."""
    import torch

    from causal_tune_ros.classes import load_classes
    from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
    from causal_tune_ros.model.checkpoint import save_checkpoint
    from causal_tune_ros.model.dinov2 import DinoV2
    from causal_tune_ros.model.heads import LightHead

    torch.manual_seed(0)
    backbone = DinoV2("vits14", embed_dim=32, depth=2, num_heads=2, img_size=56)
    head = LightHead(32, 19, num_inputs=2, channels=16)
    model = CausalTuneSegmenter(backbone, head, num_tokens=8, rank=4)
    with torch.no_grad():
        head.classifier.bias[0] = 0.05
        head.classifier.bias[10] = 0.04
    return save_checkpoint(folder / "bench_tiny.safetensors", model, include_backbone=True,
                           class_names=load_classes().names)  # fmt: skip


def _frame(height: int, width: int):
    """A synthetic street scene (the package's renderer), or noise where it is unavailable."""
    import numpy as np

    try:
        from causal_tune_ros.synthetic.render import render_scene

        return np.ascontiguousarray(render_scene(0, "clear", height, width).image)
    except ImportError:
        return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _stats(values: list[float]) -> tuple[float, float]:
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


class _Collector:
    """Receive times of every answer, keyed by (output, stamp)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.times: dict[tuple[str, int], int] = {}

    def callback(self, name: str):
        def record(msg) -> None:
            now = time.time_ns()
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            with self.cond:
                self.times[(name, stamp)] = now
                self.cond.notify_all()

        return record

    def wait(self, names: list[str], stamp: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all((n, stamp) in self.times for n in names):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--echo``, be the echo process)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--echo"]:
        return run_echo(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="measured frames per side")
    parser.add_argument("--block", type=int, default=20, help="frames per alternating block")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--width", type=int, default=WIDTH)
    parser.add_argument("--height", type=int, default=HEIGHT)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: a tiny random model")
    parser.add_argument("--input-size", default="56x112", help="network input HxW (multiples of 14)")
    args = parser.parse_args(argv)

    _isolate_ros()
    import rclpy
    import yaml
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import OccupancyGrid
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image

    work = Path(tempfile.mkdtemp(prefix="node_latency_"))
    checkpoint = args.checkpoint or _tiny_checkpoint(work)
    in_h, in_w = (int(v) for v in args.input_size.lower().split("x"))
    ns = f"/bench{os.getpid()}"
    params = {
        "backend": "eager",
        "device": "cpu",
        "cpu_threads": 1,
        "model": {"checkpoint": str(checkpoint), "input_height": in_h, "input_width": in_w},
        "qos": {"reliability": "reliable", "depth": 1},
        "publish": {"overlay": True, "confidence": True},
        "drivable": {"grid": {"enabled": True}, "camera": {"pitch": 0.2}},
        "diagnostics": {"period": 1.0},
    }
    params_file = work / "params.yaml"
    params_file.write_text(yaml.safe_dump({"/**/segmentation_node": {"ros__parameters": params}}))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    logger = f"{ns.strip('/')}.segmentation_node"
    node_cmd = [sys.executable, "-m", "causal_tune_ros.node.segmentation_node", "--ros-args", "--params-file",
                str(params_file), "-r", f"__ns:={ns}", "--log-level", f"{logger}:=debug"]  # fmt: skip
    echo_cmd = [sys.executable, str(Path(__file__).resolve()), "--echo", "--ros-args", "-r", f"__ns:={ns}"]
    node_proc = subprocess.Popen(
        node_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    echo_proc = subprocess.Popen(echo_cmd, env=env)
    # stamp -> (convert, model, pipeline, publish) ms, from the node's DEBUG log
    timings: dict[int, tuple[float, float, float, float]] = {}

    def read_node_log() -> None:
        assert node_proc.stdout is not None
        for line in node_proc.stdout:
            match = _FRAME_LINE.search(line)
            if match:
                stamp = int(match.group(1)) * 1_000_000_000 + int(match.group(2))
                timings[stamp] = tuple(float(match.group(i)) for i in range(3, 7))
            elif "DEBUG" not in line:
                sys.stderr.write("node: " + line)

    threading.Thread(target=read_node_log, daemon=True).start()

    rclpy.init()
    bench = Node("latency_bench", namespace=ns)
    collect = _Collector()
    target = f"{ns}/segmentation_node"
    outputs = {"class_mask": Image, "overlay": Image, "confidence": Image, "drivable_mask": Image,
               "drivable_grid": OccupancyGrid}  # fmt: skip
    for name, msg_type in outputs.items():
        bench.create_subscription(msg_type, f"{target}/{name}", collect.callback(name), _reliable())
    bench.create_subscription(Image, f"{ns}/echo/mask", collect.callback("echo"), _reliable())
    diagnostics: list = []
    bench.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, _reliable(10))
    node_in = bench.create_publisher(Image, f"{ns}/image", _reliable())
    echo_in = bench.create_publisher(Image, f"{ns}/echo/image", _reliable())
    info_pub = bench.create_publisher(CameraInfo, f"{ns}/camera_info", _reliable())
    executor = SingleThreadedExecutor()
    executor.add_node(bench)
    threading.Thread(target=executor.spin, daemon=True).start()

    rgb = _frame(args.height, args.width)
    frame = Image(height=args.height, width=args.width, encoding="rgb8", step=args.width * 3)
    frame.header.frame_id = "bench_camera"
    frame.data = rgb.tobytes()
    info = CameraInfo(width=args.width, height=args.height)
    f = float(args.width)
    info.k = [f, 0.0, args.width / 2, 0.0, f, args.height / 2, 0.0, 0.0, 1.0]

    def send(pub, names: list[str]) -> tuple[int, int] | None:
        stamp = time.time_ns()
        frame.header.stamp.sec, frame.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        pub.publish(frame)
        if not collect.wait(names, stamp, timeout=30.0):
            return None
        time.sleep(0.005)
        return stamp, collect.times[(names[0], stamp)] - stamp

    try:
        deadline = time.monotonic() + 120
        while (node_in.get_subscription_count() == 0 or echo_in.get_subscription_count() == 0
               or any(bench.count_publishers(f"{target}/{n}") == 0 for n in outputs)
               or bench.count_publishers(f"{ns}/echo/mask") == 0):  # fmt: skip
            if node_proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the node did not come up (exit code {node_proc.poll()})")
            info_pub.publish(info)
            time.sleep(0.2)
        time.sleep(1.0)  # let the node match our subscriptions
        node_names = list(outputs)
        for _ in range(3):
            info_pub.publish(info)
            time.sleep(0.1)
        for _ in range(args.warmup):
            if send(node_in, node_names) is None or send(echo_in, ["echo"]) is None:
                raise SystemExit("no answer during warm-up")
        node_lat: dict[int, float] = {}
        echo_lat: list[float] = []
        done = 0
        while done < args.frames:
            n = min(args.block, args.frames - done)
            for _ in range(n):
                got = send(node_in, node_names)
                if got is not None:
                    node_lat[got[0]] = got[1] * 1e-6
            for _ in range(n):
                got = send(echo_in, ["echo"])
                if got is not None:
                    echo_lat.append(got[1] * 1e-6)
            done += n
        time.sleep(1.5)  # last debug lines and a diagnostics report
    finally:
        node_proc.terminate()
        echo_proc.terminate()
        for proc in (node_proc, echo_proc):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        executor.shutdown()
        bench.destroy_node()
        rclpy.try_shutdown()

    paired = [s for s in node_lat if s in timings]
    if not paired:
        raise SystemExit("no per-frame timings parsed from the node's DEBUG log")
    e2e = [node_lat[s] for s in paired]
    minus_model = [node_lat[s] - timings[s][1] for s in paired]
    minus_pipeline = [node_lat[s] - timings[s][2] for s in paired]
    rows = [
        ("echo (bare rclpy)", echo_lat),
        ("node e2e", e2e),
        ("  convert (node)", [timings[s][0] for s in paired]),
        ("  model only", [timings[s][1] for s in paired]),
        ("  pipeline", [timings[s][2] for s in paired]),
        ("  publish all (node)", [timings[s][3] for s in paired]),
        ("node - model", minus_model),
        ("node - pipeline", minus_pipeline),
    ]
    print(f"\n{args.width}x{args.height} rgb8, {len(echo_lat)} echo / {len(paired)} node frames, "
          f"network input {in_h}x{in_w}, all outputs subscribed")  # fmt: skip
    print(f"{'':20s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for label, values in rows:
        p50, p95 = _stats(values)
        print(f"{label:20s} {p50:8.2f} {p95:8.2f}")
    echo50, echo95 = _stats(echo_lat)
    for label, values in (("node - pipeline", minus_pipeline), ("node - model", minus_model)):
        p50, p95 = _stats(values)
        print(f"ratio {label} / echo: median {p50 / echo50:.2f}x, p95 {p95 / echo95:.2f}x")
    print("target: node - pipeline <= 1.5x echo (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
