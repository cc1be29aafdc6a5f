"""``causal-tune node``: run the segmentation node from the package's own CLI.

Everything after ``node`` goes to rclpy unchanged, so ``causal-tune node --ros-args -p backend:=eager
-r image:=/cam/image_raw`` equals ``segmentation_node --ros-args ...``. ``--lifecycle`` (before
``--ros-args``) starts the managed variant instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

HELP = "run the ROS 2 segmentation node (arguments after --ros-args go to rclpy)"

_USAGE = """usage: causal-tune node [--lifecycle] [--ros-args ROS_ARGUMENTS...]

Run the segmentation node. ROS arguments: -p name:=value, --params-file FILE,
-r from:=to (e.g. -r image:=/cam/image_raw), -r __ns:=/ns, --log-level LEVEL.
Topics and parameters: docs/ros_interface.md.

options:
  --lifecycle  start the managed (lifecycle) node; it waits for configure/activate
               (ros2 lifecycle set), or add --ros-args -p autostart:=true to start it active
  -h, --help   show this help and exit
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``causal-tune node`` (for ``--help``; :func:`main` parses the real command line)."""
    parser.add_argument("--lifecycle", action="store_true", help="start the managed (lifecycle) node")
    parser.add_argument("ros_args", nargs=argparse.REMAINDER, help="--ros-args ... passed to rclpy")


def _own_args(argv: Sequence[str]) -> list[str]:
    """The arguments before ``--ros-args`` (ours); the rest belongs to rclpy."""
    args = list(argv)
    return args[: args.index("--ros-args")] if "--ros-args" in args else args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the node; ``argv`` are the arguments after ``node``.

    Args:
        argv: Command line after ``causal-tune node`` (None: ``sys.argv[2:]``).

    Returns:
        Process exit code (2 for usage and configuration errors).
    """
    argv = list(sys.argv[2:] if argv is None else argv)
    own = _own_args(argv)
    if "-h" in own or "--help" in own:
        sys.stdout.write(_USAGE)
        return 0
    unknown = [a for a in own if a != "--lifecycle"]
    if unknown:
        print(
            f"causal-tune node: error: unknown argument(s) {' '.join(unknown)} (ROS arguments go after "
            "--ros-args)",
            file=sys.stderr,
        )
        return 2
    rest = argv[len(own) :]  # --ros-args and everything after it
    if "--lifecycle" in own:
        from causal_tune_ros.node.lifecycle_node import main as lifecycle_main

        return lifecycle_main(rest)
    from causal_tune_ros.node.segmentation_node import main as node_main

    return node_main(rest)


def run(args: argparse.Namespace) -> int:
    """``cli`` entry for parsed arguments (the dispatcher normally calls :func:`main` directly)."""
    return main((["--lifecycle"] if args.lifecycle else []) + list(args.ros_args or []))
