"""``causal-tune fleet``: segment and index many bags on a Ray cluster (local by default).

    causal-tune fleet /data/drives -o /data/segmented --workers 2
    causal-tune fleet /data/drives -o /data/segmented --ray-address auto --gpus-per-worker 0.5
    causal-tune fleet query /data/segmented --where "condition == 'snow' and drivable < 0.3"

Each input bag gives the bag ``causal-tune replay`` writes, at ``OUT/<name>``; every frame gives a row of
``OUT/index.parquet``. Run the same command again to resume: complete bags are skipped.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from causal_tune_ros.backends.base import BACKEND_NAMES
from causal_tune_ros.bags import BAG_VERSIONS, DEFAULT_BAG_VERSION
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.replay.options import DEFAULT_BATCH_WAIT
from causal_tune_ros.weather.classifier import DEFAULT_MIN_SECONDS

if TYPE_CHECKING:
    from causal_tune_ros.fleet.runner import FleetSettings

HELP = "segment many bags on a Ray cluster (local by default) and index every frame; see also: fleet query"

EXIT_INTERRUPTED = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``causal-tune fleet``."""
    parser.epilog = (
        "Query the index: causal-tune fleet query OUT --where \"condition == 'snow'\" (see its --help)."
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="BAG_OR_FOLDER",
        help="input bags (folders with metadata.yaml, .mcap / .db3 files) or folders searched for them",
    )
    parser.add_argument("-o", "--out", required=True, metavar="OUT", help="output folder (created)")
    fleet = parser.add_argument_group("fleet")
    fleet.add_argument(
        "--workers", type=int, metavar="N", help="worker processes (default: as many as the cluster holds)"
    )
    fleet.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="join this Ray cluster (e.g. auto, 10.0.0.1:6379, ray://head:10001); default: a local instance",
    )
    fleet.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        metavar="F",
        help="GPUs per worker; 0.5 puts two workers on a GPU (default: 0, CPU; > 0 implies --device cuda)",
    )
    fleet.add_argument(
        "--cpus-per-worker", type=float, default=1.0, metavar="F", help="CPUs per worker (default: 1)"
    )
    fleet.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="retry a bag this many times when its worker dies (default: 2)",
    )
    fleet.add_argument(
        "--overwrite",
        action="store_true",
        help="redo bags whose outputs exist but came from other settings or a changed input",
    )
    fleet.add_argument("--quiet", action="store_true", help="no progress and no per-bag lines")
    replay = parser.add_argument_group("replay options (as causal-tune replay)")
    replay.add_argument("--topics", nargs="+", metavar="TOPIC", help="image topics (default: every camera)")
    replay.add_argument(
        "--weather",
        default="auto",
        help="auto, topic, or a fixed condition: clear, snow, rain, fog, night (default: auto)",
    )
    replay.add_argument("--weather-topic", default="/weather", help="input topic for --weather topic")
    replay.add_argument(
        "--weather-every",
        type=int,
        default=1,
        metavar="N",
        help="--weather auto: classify every N-th frame",
    )
    replay.add_argument(
        "--weather-min-seconds",
        type=float,
        default=DEFAULT_MIN_SECONDS,
        metavar="S",
        help="--weather auto: seconds of message time a new condition must hold (default: %(default)s)",
    )
    replay.add_argument("--band", metavar="LOW,HIGH", help="force this band on every frame, e.g. 0.2,0.7")
    replay.add_argument("--bands", metavar="YAML", help="band presets (default: config/weather_bands.yaml)")
    replay.add_argument(
        "--backend",
        default="auto",
        choices=BACKEND_NAMES,
        help="inference backend (default: auto: tensorrt with CUDA and torch_tensorrt, else eager)",
    )
    replay.add_argument("--checkpoint", help="Causal-Tune checkpoint (default: the shipped demo model)")
    replay.add_argument("--backbone", help="DINOv2 weights if the checkpoint does not embed them")
    replay.add_argument(
        "--input-size", metavar="HxW", help="network input (default: the checkpoint's recorded size)"
    )
    replay.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        help="inference device (default: cuda with --gpus-per-worker, else cpu)",
    )
    replay.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"), help="precision")
    replay.add_argument(
        "--threads", type=int, help="inference threads per worker (default: --cpus-per-worker, at least 1)"
    )
    replay.add_argument("--classes", metavar="YAML", help="class file (default: config/classes.yaml)")
    replay.add_argument("--drivable-classes", default="road", help="comma-separated drivable classes")
    replay.add_argument("--max-frames", type=int, metavar="N", help="stop each bag after N processed frames")
    replay.add_argument("--every", type=int, default=1, metavar="N", help="every N-th frame per topic")
    replay.add_argument("--storage", choices=("sqlite3", "mcap"), help="output storage (default: as input)")
    replay.add_argument(
        "--io-threads", choices=("on", "off"), default="on", help="overlap reading and writing (default: on)"
    )
    replay.add_argument("--no-overlay", action="store_true", help="do not write the overlay topics")
    replay.add_argument("--no-copy", action="store_true", help="do not copy the input messages")
    replay.add_argument(
        "--batch-cameras", action="store_true", help="one forward pass per camera batch (as replay)"
    )
    replay.add_argument(
        "--batch-wait",
        type=float,
        default=DEFAULT_BATCH_WAIT,
        metavar="S",
        help="bag seconds a camera batch waits for the others (default: %(default)s)",
    )
    replay.add_argument(
        "--bag-version",
        type=int,
        choices=BAG_VERSIONS,
        default=DEFAULT_BAG_VERSION,
        help="rosbag2 metadata version of the outputs: 8 (Humble and Jazzy) or 9 (default: %(default)s)",
    )


def settings_from_args(args: argparse.Namespace) -> FleetSettings:
    """:class:`~causal_tune_ros.fleet.runner.FleetSettings` from parsed arguments.

    Raises:
        ConfigError: Bad values.
    """
    from causal_tune_ros.fleet.cluster import Resources
    from causal_tune_ros.fleet.runner import FleetSettings
    from causal_tune_ros.fleet.worker import ModelSettings
    from causal_tune_ros.replay.command import options_from_args
    from causal_tune_ros.weather import load_band_presets

    for name in ("workers", "every", "weather_every", "max_frames", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.retries < 0:
        raise ConfigError(f"--retries must be 0 or more, got {args.retries}")
    if args.gpus_per_worker < 0 or args.cpus_per_worker <= 0:
        raise ConfigError("--gpus-per-worker must be >= 0 and --cpus-per-worker > 0")
    device = args.device or ("cuda" if args.gpus_per_worker > 0 else "cpu")
    if device == "cuda" and args.gpus_per_worker <= 0:
        raise ConfigError("--device cuda needs --gpus-per-worker > 0 (Ray gives GPUs only to workers asking)")
    threads = args.threads or max(1, int(args.cpus_per_worker))
    return FleetSettings(
        model=ModelSettings(
            checkpoint=args.checkpoint,
            backbone=args.backbone,
            backend=args.backend,
            input_size=args.input_size,
            device=device,
            precision=args.precision,
            threads=threads,
            classes=args.classes,
            drivable_classes=args.drivable_classes,
        ),
        # The fleet hands outputs over itself (never a per-bag overwrite) and writes no video.
        options=options_from_args(args, overwrite=False, progress=True, video=None, video_fps=None),
        presets=load_band_presets(args.bands),
        workers=args.workers,
        address=args.ray_address,
        resources=Resources(cpus=args.cpus_per_worker, gpus=args.gpus_per_worker),
        retries=args.retries,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )


def run(args: argparse.Namespace) -> int:
    """Run the fleet and print its summary.

    Returns:
        0 when every bag is complete; 1 when some bag failed; 130 when interrupted (run again to resume).
        Errors that stop the whole run raise ``CausalTuneError`` (the CLI prints them, exit code 2).
    """
    from causal_tune_ros.fleet.runner import run_fleet

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    summary = run_fleet(args.inputs, args.out, settings_from_args(args))
    print(summary.format())
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return 0 if summary.ok else 1
