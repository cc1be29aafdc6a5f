"""``causal-tune demo``: the CLI of the demo (see :mod:`causal_tune_ros.demo`)."""

from __future__ import annotations

import argparse

from causal_tune_ros.demo.layout import DEFAULT_OUT, DEFAULT_SEGMENTS, DEMO_PRESETS, METRICS, parse_segments
from causal_tune_ros.demo.packaging import DEMO_TRAIN_COMMAND, package_demo_model
from causal_tune_ros.demo.ros import run_ros_demo
from causal_tune_ros.demo.run import run_demo

HELP = "synthesise a drive in five weathers, segment it with the shipped demo model, print mIoU per condition"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``causal-tune demo``."""
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: ./%(default)s)")
    parser.add_argument(
        "--ros",
        action="store_true",
        help="start the real segmentation node and play the drive to it on live topics (needs rclpy)",
    )
    parser.add_argument(
        "--frames",
        metavar="COND=N,...",
        help="frames per condition, e.g. clear=3,snow=6,night=6 (default: "
        + ",".join(f"{c}={n}" for c, n in DEFAULT_SEGMENTS)
        + ")",
    )
    parser.add_argument("--size", metavar="HxW", help="image size (default: the demo model's input size)")
    parser.add_argument("--checkpoint", help="model to demonstrate (default: the shipped demo model)")
    parser.add_argument(
        "--bands",
        metavar="YAML",
        help="band presets per condition, e.g. the output of `causal-tune calibrate` (default: "
        f"config/{DEMO_PRESETS} for the shipped model, else config/weather_bands.yaml)",
    )
    parser.add_argument(
        "--ablation",
        metavar="CKPT",
        help="a separately trained comparison model scored in the 'Rein-style model' column (default: the "
        "shipped Rein-style demo model with the shipped demo model; none otherwise)",
    )
    parser.add_argument("--seed", type=int, default=100, help="scene seed (default: 100, unseen in training)")
    parser.add_argument("--threads", type=int, help="CPU threads for inference")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--loop", action="store_true", help="with --ros: play the drive until Ctrl-C")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="with --ros: playback speed factor (default: 1.0)"
    )
    parser.add_argument(
        "--package-model",
        metavar="TRAINED",
        help="maintainers: turn a `causal-tune train` result (runs/synthetic_small/model.safetensors) into "
        "the shipped demo model (fp16, labelled; written to --package-to) and exit",
    )
    parser.add_argument(
        "--package-to",
        default="models/demo/causal_tune_demo.safetensors",
        help="with --package-model: output file (default: %(default)s)",
    )
    parser.add_argument(
        "--train-seconds", type=float, help="with --package-model: wall time of the training run, recorded"
    )
    parser.add_argument(
        "--train-command",
        help="with --package-model: the command that trained it, recorded (default: the demo recipe's)",
    )


def run(args: argparse.Namespace) -> int:
    """``causal-tune demo``: run the offline demo, or the live ROS demo with ``--ros``.

    Returns:
        0 on success (errors raise ``CausalTuneError``: exit code 2).
    """
    from causal_tune_ros.synthetic.bag import parse_image_size

    if args.package_model:
        path = package_demo_model(
            args.package_model,
            args.package_to,
            train_seconds=args.train_seconds,
            train_command=args.train_command or DEMO_TRAIN_COMMAND,
        )
        print(f"demo: packaged {args.package_model} -> {path} ({path.stat().st_size / 1e6:.2f} MB)")
        return 0
    segments = parse_segments(args.frames)
    size = parse_image_size(args.size) if args.size else None
    if args.ros:
        return run_ros_demo(args, segments, size)
    result = run_demo(
        args.out,
        checkpoint=args.checkpoint,
        bands=args.bands,
        ablation=args.ablation,
        segments=segments,
        size=size,
        seed=args.seed,
        threads=args.threads,
        progress=not args.quiet,
    )
    print()
    print("mIoU (%) against the synthetic ground truth; the demo model saw only clear scenes in training:")
    print(result.table())
    print()
    print(f"outputs in {result.out_dir}/:")
    for path in (
        result.drive_bag,
        result.segmented_bag,
        result.montage,
        result.video,
        result.out_dir / METRICS,
    ):
        if path is not None:
            print(f"  {path.name}")
    print(f"demo finished in {result.seconds:.1f} s")
    return 0
