"""``causal-tune demo --ros``: the live demo with the real segmentation node (needs rclpy)."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from causal_tune_ros.demo.layout import DEFAULT_SIZE, DRIVE_BAG
from causal_tune_ros.demo.report import model_description
from causal_tune_ros.demo.run import default_presets
from causal_tune_ros.errors import ConfigError


def _require_rclpy() -> None:
    # Only a presence check: all rclpy code lives in causal_tune_ros.node.
    if importlib.util.find_spec("rclpy") is None:
        raise ConfigError(
            "--ros needs ROS 2's rclpy: source a ROS 2 install (Jazzy/Humble), or pip install "
            "'causal_tune_ros[ros]' into a venv (see the README); the offline demo needs no ROS"
        )


def _node_command(checkpoint: Path, size: tuple[int, int], params_file: Path | None = None) -> list[str]:
    """Command line that starts the real segmentation node on the demo topics (band presets from
    ``params_file``, a ROS 2 parameters file, when given)."""
    h, w = size
    extra = ["--params-file", str(params_file)] if params_file is not None else []
    return [
        sys.executable,
        "-m",
        "causal_tune_ros.node.segmentation_node",
        "--ros-args",
        "-r",
        "image:=/camera/image_raw",
        "-r",
        "camera_info:=/camera/camera_info",
        "-r",
        "weather:=/weather",
        "-p",
        "use_sim_time:=true",
        "-p",
        "backend:=eager",
        "-p",
        f"model.checkpoint:={checkpoint}",
        "-p",
        f"model.input_height:={h - h % 14 or 14}",
        "-p",
        f"model.input_width:={w - w % 14 or 14}",
        "-p",
        "weather.mode:=topic",
        "-p",
        "qos.reliability:=reliable",
        *extra,
    ]


def run_ros_demo(
    args: argparse.Namespace, segments: Sequence[tuple[str, int]], size: tuple[int, int] | None
) -> int:
    """Start the segmentation node and play the synthetic drive to it on live topics.

    The player publishes every bag message as raw CDR at its recorded time (scaled by ``--rate``) and
    ``/clock`` (the node runs with ``use_sim_time``), like ``ros2 bag play --clock``. It counts what the
    node publishes and prints it at the end.

    Returns:
        0 when the node produced outputs, 1 otherwise.

    Raises:
        ConfigError: rclpy is missing.
    """
    _require_rclpy()
    from causal_tune_ros.replay.command import default_checkpoint
    from causal_tune_ros.synthetic.bag import drive_frames, write_drive

    ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    _, recorded = model_description(ckpt)
    height, width = size or recorded or DEFAULT_SIZE
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    conditions = [c for c, _ in segments]
    drive = list(drive_frames(conditions, dict(segments), height, width, seed=args.seed))
    bag = out / DRIVE_BAG
    write_drive(bag, conditions, dict(segments), size=(height, width), overwrite=True, drive=drive)
    import yaml

    from causal_tune_ros.weather import load_band_presets

    chosen = args.bands if args.bands else default_presets(not args.checkpoint)
    params_file = None
    if chosen is not None:
        # The presets as a ROS 2 parameters file, whatever layout the given file has.
        bands = {c: {"low": b.low, "high": b.high} for c, b in load_band_presets(chosen).items()}
        params_file = out / "demo_bands.yaml"
        document = {"/**": {"ros__parameters": {"weather": {"bands": bands}}}}
        params_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    command = _node_command(ckpt, (height, width), params_file)
    print("demo --ros: starting the node:\n  " + " ".join(command))
    node = subprocess.Popen(command)
    try:
        from causal_tune_ros.node.bag_player import play_bag_to_node

        counts = play_bag_to_node(bag, rate=args.rate, loop=args.loop, node_process=node)
    finally:
        node.terminate()
        try:
            node.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.kill()
    print("demo --ros: messages the node published during the drive:")
    for topic, n in sorted(counts.items()):
        print(f"  {topic}: {n}")
    return 0 if any(n for t, n in counts.items() if t.endswith("class_mask")) else 1
