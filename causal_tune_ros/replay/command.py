"""``causal-tune replay``: segment every camera topic of a rosbag2 offline, with no ROS install.

    causal-tune replay drive.mcap -o drive_seg.mcap --video drive_seg.mp4

The output bag holds the input messages (copied raw) plus, per camera, ``<ns>/class_mask``,
``<ns>/overlay``, ``<ns>/drivable_mask`` (sensor_msgs/Image) and ``<ns>/weather`` (std_msgs/String) with
the input's timestamps and headers; ``ros2 bag play`` plays it on a vehicle (Humble or Jazzy: metadata
version 8 unless ``--bag-version 9``). ``-o drive_seg.mcap`` creates the bag folder ``drive_seg.mcap/``
holding ``metadata.yaml`` and ``drive_seg_0.mcap``.

Every check that needs no model (bag opens, topics exist, output path is safe to write) runs before the
model is loaded or exported. SIGTERM is handled like Ctrl-C: the replay stops, the bag written so far is
closed cleanly as ``<out>.partial`` and an existing output is left as it was (exit code 143; 130 for
Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from causal_tune_ros.backends.base import BACKEND_NAMES
from causal_tune_ros.bags import BAG_VERSIONS, DEFAULT_BAG_VERSION
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.replay.options import DEFAULT_BATCH_WAIT
from causal_tune_ros.weather.classifier import DEFAULT_MIN_SECONDS

if TYPE_CHECKING:
    from causal_tune_ros.replay.replayer import ReplayOptions

HELP = "segment the camera topics of a rosbag2 (sqlite3 or mcap) into a new bag, offline (no ROS needed)"

#: The shipped demo model (``models/demo/``), used when no ``--checkpoint`` is given.
DEMO_MODEL = ("models", "demo", "causal_tune_demo.safetensors")

LOG = logging.getLogger("causal_tune_ros.replay")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``causal-tune replay``."""
    parser.add_argument(
        "in_bag", metavar="IN_BAG", help="input rosbag2: a bag folder, or a .mcap / .db3 file"
    )
    parser.add_argument(
        "-o",
        "--out",
        required=True,
        metavar="OUT_BAG",
        help="output bag folder to create: -o drive_seg.mcap gives drive_seg.mcap/{metadata.yaml,"
        "drive_seg_0.mcap}; it appears only when complete, and must not be, contain or lie inside the input",
    )
    parser.add_argument(
        "--topics",
        nargs="+",
        metavar="TOPIC",
        help="image topics to segment (default: every sensor_msgs/Image and CompressedImage camera topic; "
        "outputs such as .../class_mask and label images such as .../ground_truth are skipped)",
    )
    parser.add_argument(
        "--weather",
        default="auto",
        help="band selection: auto (classify each frame), topic (std_msgs/String on --weather-topic in the "
        "bag), or a fixed condition: clear, snow, rain, fog, night (default: auto)",
    )
    parser.add_argument("--weather-topic", default="/weather", help="input topic for --weather topic")
    parser.add_argument(
        "--weather-every",
        type=int,
        default=1,
        metavar="N",
        help="with --weather auto: classify every N-th frame (default 1, as the node)",
    )
    parser.add_argument(
        "--weather-min-seconds",
        type=float,
        default=DEFAULT_MIN_SECONDS,
        metavar="S",
        help="with --weather auto: a new condition must hold this many seconds of message time (header "
        "stamps) before its band is used, as the node's weather.auto.min_seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--band", metavar="LOW,HIGH", help="force this band on every frame, e.g. 0.2,0.7 (overrides presets)"
    )
    parser.add_argument(
        "--bands", metavar="YAML", help="band presets file (default: config/weather_bands.yaml)"
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKEND_NAMES,
        help="inference backend (default: auto: tensorrt with CUDA and torch_tensorrt, else eager)",
    )
    parser.add_argument(
        "--checkpoint", help="Causal-Tune checkpoint (default: the shipped demo model, models/demo/)"
    )
    parser.add_argument(
        "--backbone", help="DINOv2 weights (.pth or HF folder) if the checkpoint does not embed them"
    )
    parser.add_argument(
        "--input-size",
        metavar="HxW",
        help="network input, multiples of 14 (default: the checkpoint's recorded size, else 518x1036)",
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="inference device")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"), help="precision")
    parser.add_argument("--threads", type=int, help="CPU threads for inference (default: library default)")
    parser.add_argument("--classes", metavar="YAML", help="class file (default: config/classes.yaml)")
    parser.add_argument(
        "--drivable-classes", default="road", help="comma-separated drivable classes (default: road)"
    )
    parser.add_argument("--video", metavar="PATH", help="also write a side-by-side MP4 (input | overlay)")
    parser.add_argument("--video-fps", type=float, help="video frame rate (default: the camera's rate)")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N processed frames")
    parser.add_argument(
        "--every", type=int, default=1, metavar="N", help="segment every N-th frame per topic"
    )
    parser.add_argument(
        "--storage",
        choices=("sqlite3", "mcap"),
        help="output storage (default: from OUT_BAG's suffix, else the input's)",
    )
    parser.add_argument(
        "--io-threads",
        choices=("on", "off"),
        default="on",
        help="read and write in background threads while the model runs (default: on)",
    )
    parser.add_argument("--no-overlay", action="store_true", help="do not write the overlay topics")
    parser.add_argument("--no-copy", action="store_true", help="do not copy the input messages")
    parser.add_argument(
        "--batch-cameras",
        action="store_true",
        help="run the frames of all replayed cameras that arrive within --batch-wait of each other in one "
        "forward pass (batch size = number of cameras); each camera keeps its own outputs and headers",
    )
    parser.add_argument(
        "--batch-wait",
        type=float,
        default=DEFAULT_BATCH_WAIT,
        metavar="S",
        help="with --batch-cameras: seconds of bag time a batch waits for the other cameras after its "
        "first frame; a late or missing camera holds the others back no longer (default: %(default)s)",
    )
    parser.add_argument(
        "--bag-version",
        type=int,
        choices=BAG_VERSIONS,
        default=DEFAULT_BAG_VERSION,
        help="rosbag2 metadata version of the output: 8 is read by ROS 2 Humble and Jazzy, 9 by Jazzy "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output bag (only a rosbag2 bag) and video (only an MP4); the old one is "
        "replaced only once the new one is complete",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def default_checkpoint() -> Path:
    """The shipped demo model.

    Raises:
        ConfigError: If the install does not contain it.
    """
    from causal_tune_ros.resources import data_path

    return data_path(*DEMO_MODEL)


def build_pipeline(
    checkpoint: str | Path | None = None,
    backbone: str | Path | None = None,
    backend: str = "auto",
    input_size: str | tuple[int, int] | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    threads: int | None = None,
    classes: str | Path | None = None,
    drivable_classes: str = "road",
) -> tuple[Any, str | None]:
    """Load a backend (with eager fallback) and wrap it in a ``SegmentationPipeline``.

    Args:
        checkpoint: Causal-Tune checkpoint (default: :func:`default_checkpoint`).
        backbone: DINOv2 weights when the checkpoint does not embed its backbone.
        backend: Backend name.
        input_size: Network input ``"HxW"`` (default: recorded in the checkpoint, else the backend default).
        device: ``cpu`` or ``cuda``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        threads: CPU inference threads.
        classes: Class YAML (default: the packaged Cityscapes classes).
        drivable_classes: Comma-separated class names counted as drivable.

    Returns:
        ``(pipeline, fallback warning or None)``.

    Raises:
        CausalTuneError: Bad options, unreadable checkpoint, backend that cannot load.
    """
    from causal_tune_ros.backends import (
        DEFAULT_INPUT_SIZE,
        BackendSpec,
        load_backend_with_fallback,
        parse_size,
        recorded_input_size_or_none,
    )
    from causal_tune_ros.classes import load_classes
    from causal_tune_ros.pipeline import SegmentationPipeline

    ckpt = Path(checkpoint) if checkpoint else default_checkpoint()
    if not ckpt.exists():
        raise ConfigError(f"checkpoint {ckpt} does not exist")
    size = parse_size(input_size) if input_size else (recorded_input_size_or_none(ckpt) or DEFAULT_INPUT_SIZE)
    spec = BackendSpec(
        name=backend,
        checkpoint=ckpt,
        backbone=backbone,
        input_size=size,
        device=device,
        precision=precision,
        num_threads=threads,
    )
    loaded, warning = load_backend_with_fallback(spec)
    names = tuple(n.strip() for n in drivable_classes.split(",") if n.strip())
    return SegmentationPipeline(loaded, load_classes(classes), drivable_classes=names), warning


class _Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so the replay closes its bag the same way."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While active (main thread only), SIGTERM raises :class:`_Terminated` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    """Replay the bag and print a summary.

    Returns:
        0 when frames were processed; 1 when the bag's frames were all skipped (corrupt or failed);
        143 after SIGTERM (the output is left as it was, see the module docstring).
        Errors (unreadable bag, bad option) raise ``CausalTuneError``: the CLI prints them, exit code 2.
        Ctrl-C raises ``KeyboardInterrupt`` (exit code 130).
    """
    try:
        with _sigterm_as_interrupt():
            return _run(args)
    except _Terminated:
        print("causal-tune replay: terminated (SIGTERM); the output was not written", file=sys.stderr)
        return 143


def options_from_args(args: argparse.Namespace, **overrides: Any) -> ReplayOptions:
    """:class:`ReplayOptions` from the parsed replay options (also used by ``causal-tune fleet``).

    Options the namespace lacks (``video``, ``overwrite``, ``quiet`` ...) keep their defaults;
    ``overrides`` replace fields.

    Raises:
        ConfigError: A malformed ``--band``.
    """
    from causal_tune_ros.band import parse_band
    from causal_tune_ros.replay.replayer import ReplayOptions

    values: dict[str, Any] = {
        "topics": args.topics,
        "weather": args.weather.strip().lower(),
        "weather_topic": args.weather_topic,
        "weather_every": args.weather_every,
        "weather_min_seconds": args.weather_min_seconds,
        "band": parse_band(args.band) if args.band else None,
        "max_frames": args.max_frames,
        "every": args.every,
        "video": getattr(args, "video", None),
        "video_fps": getattr(args, "video_fps", None),
        "overlay": not args.no_overlay,
        "copy_input": not args.no_copy,
        "storage": args.storage,
        "overwrite": getattr(args, "overwrite", False),
        "bag_version": args.bag_version,
        "batch_cameras": args.batch_cameras,
        "batch_wait": args.batch_wait,
        "progress": not getattr(args, "quiet", False),
        "threaded": args.io_threads == "on",
    }
    values.update(overrides)
    return ReplayOptions(**values)


def _run(args: argparse.Namespace) -> int:
    from causal_tune_ros.bags import BagReader
    from causal_tune_ros.errors import BagError
    from causal_tune_ros.replay.replayer import Replayer, plan_replay
    from causal_tune_ros.weather import load_band_presets

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    presets = load_band_presets(args.bands)
    options = options_from_args(args)
    # Open the input and check everything that needs no model (topics, output path) before the model
    # is loaded or exported, which can take many seconds; the replay reuses the open bag.
    with BagReader(args.in_bag) as bag:
        if not bag.image_topics():
            raise BagError(f"{args.in_bag} has no sensor_msgs/Image or CompressedImage topic")
        plan = plan_replay(bag, args.out, options)
        if plan.dropped:
            print(
                f"causal-tune replay: {args.in_bag} already holds outputs of an earlier replay on "
                f"{', '.join(sorted(plan.dropped))}; they are dropped and replaced by this run's",
                file=sys.stderr,
            )
        pipeline, warning = build_pipeline(
            checkpoint=args.checkpoint,
            backbone=args.backbone,
            backend=args.backend,
            input_size=args.input_size,
            device=args.device,
            precision=args.precision,
            threads=args.threads,
            classes=args.classes,
            drivable_classes=args.drivable_classes,
        )
        if warning:
            print(f"causal-tune replay: warning: {warning}", file=sys.stderr)
        summary = Replayer(pipeline, options, band_presets=presets).run(bag, args.out)
    print(summary.format())
    total = sum(s.frames for s in summary.topics.values())
    if total and not summary.processed:
        print("causal-tune replay: error: no frame could be processed", file=sys.stderr)
        return 1
    return 0
