"""``causal-tune synth``: write synthetic weather scenes as a rosbag2 drive (no data set, no ROS needed)."""

from __future__ import annotations

import argparse

HELP = "write synthetic weather scenes (images, ground truth, camera_info, tf) as a rosbag2 drive"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``causal-tune synth``."""
    parser.add_argument("--out", "-o", required=True, help="bag folder to create (e.g. drive.mcap)")
    parser.add_argument(
        "--conditions",
        default="clear,snow,rain,fog,night",
        help="comma-separated weather segments, in order (default: %(default)s)",
    )
    parser.add_argument("--frames", type=int, default=10, help="frames per condition (default: %(default)s)")
    parser.add_argument("--size", default="240x320", help="image size HxW (default: %(default)s)")
    parser.add_argument(
        "--compressed",
        action="store_true",
        help="write JPEG sensor_msgs/CompressedImage on /camera/image_raw/compressed instead of raw rgb8",
    )
    parser.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality 1..100 (default: 90)")
    parser.add_argument(
        "--storage",
        choices=("mcap", "sqlite3"),
        default=None,
        help="bag storage (default: from the --out suffix, else mcap)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the first scene (default: 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag")


def run(args: argparse.Namespace) -> int:
    """Write the bag and print what it holds.

    Returns:
        0 on success (errors raise ``CausalTuneError``, which the CLI maps to exit code 2).
    """
    from causal_tune_ros.synthetic.bag import parse_conditions, parse_image_size, write_drive

    summary = write_drive(
        args.out,
        parse_conditions(args.conditions),
        frames=args.frames,
        size=parse_image_size(args.size),
        compressed=args.compressed,
        storage=args.storage,
        seed=args.seed,
        overwrite=args.overwrite,
        jpeg_quality=args.jpeg_quality,
    )
    n = sum(summary.conditions.values())
    print(f"synth: wrote {summary.path} ({summary.storage}), {n} frames in {summary.seconds:.1f} s")
    for condition, count in summary.conditions.items():
        print(f"  {condition}: {count} frames")
    for topic, count in summary.counts.items():
        print(f"  {topic}: {count} messages")
    return 0
