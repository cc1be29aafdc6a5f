"""``segmentation_node``: the ROS 2 semantic segmentation node.

Run it as ``segmentation_node --ros-args --params-file config/segmentation.yaml -r image:=/cam/image_raw``
or ``causal-tune node --ros-args ...``. Topics, parameters and QoS are listed in ``docs/ros_interface.md``.
The behaviour lives in :class:`~causal_tune_ros.node.core.SegmentationCore`; this class only wires it
to a plain (always active) rclpy node.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from causal_tune_ros.errors import CausalTuneError
from causal_tune_ros.node.core import SegmentationCore

NODE_NAME = "segmentation_node"

_USAGE = """usage: {prog} [-h] [--ros-args ROS_ARGUMENTS...]

{what}

ROS arguments (after --ros-args): -p name:=value, --params-file FILE, -r from:=to
(e.g. -r image:=/cam/image_raw -r camera_info:=/cam/camera_info), -r __ns:=/ns,
-r __node:=name, --log-level LEVEL.
Topics, parameters and lifecycle services: docs/ros_interface.md.

options:
  -h, --help  show this help and exit
"""

_WHAT = {
    False: "Run the segmentation node: it loads the model and starts segmenting at once.",
    True: "Run the managed (lifecycle) segmentation node. It starts unconfigured; drive it with\n"
    "ros2 lifecycle set <node> configure / activate, or start it with -p autostart:=true.",
}


def usage(prog: str, managed: bool = False) -> str:
    """The ``--help`` text of the node executables."""
    return _USAGE.format(prog=prog, what=_WHAT[managed])


def _argument_error(args: Sequence[str]) -> str | None:
    """A one-line reason why rclpy would refuse ``args`` (a missing params file), or None.

    rclpy reports these as a raw ``RCLError`` traceback; checking first gives the user one clear line.
    """
    ros = list(args[args.index("--ros-args") + 1 :]) if "--ros-args" in args else []
    for i, arg in enumerate(ros):
        if arg == "--params-file":
            if i + 1 >= len(ros):
                return "--params-file needs a file name"
            path = Path(ros[i + 1])
            if not path.is_file():
                what = "is not a file" if path.exists() else "does not exist"
                return f"--params-file {path} {what}"
    return None


class SegmentationNode(Node):
    """The segmentation node: loads the model and starts processing on construction.

    Args:
        node_name: Default node name (remappable with ``-r __node:=...``).
        **kwargs: Passed to ``rclpy.node.Node`` (``context``, ``parameter_overrides``, ...).

    Raises:
        ConfigError: Invalid parameters.
        CausalTuneError: The model cannot be loaded (``CheckpointError``, ``BackendError``, ...).
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        try:
            self.core = SegmentationCore(self)
        except BaseException:
            super().destroy_node()
            raise
        try:
            self.core.configure()
            self.core.activate()
        except BaseException:
            self.destroy_node()
            raise

    def destroy_node(self) -> None:
        """Stop the worker, free the model and destroy the node."""
        core = getattr(self, "core", None)
        if core is not None:
            core.shutdown()
        super().destroy_node()


def run_node(
    node_factory: Callable[[], Node], argv: Sequence[str] | None, prog: str, managed: bool = False
) -> int:
    """Init rclpy with ``argv``, build a node, spin it until Ctrl-C / shutdown, clean up.

    ``-h`` / ``--help`` before ``--ros-args`` prints the usage and returns without starting anything.

    Args:
        node_factory: Callable returning the node (called after ``rclpy.init``).
        argv: Command line including ROS arguments (``--ros-args ...``); None = ``sys.argv``.
        prog: Program name for help and error messages.
        managed: Whether the node is the managed variant (for the help text).

    Returns:
        Exit code: 0 on a normal stop or after ``--help``, 2 for argument, configuration or model errors.
    """
    args = list(sys.argv if argv is None else [prog, *argv])
    own = args[1 : args.index("--ros-args")] if "--ros-args" in args else args[1:]
    if "-h" in own or "--help" in own:
        sys.stdout.write(usage(prog, managed))
        return 0
    reason = _argument_error(args)
    if reason is None:
        try:
            rclpy.init(args=args)
        except RuntimeError as exc:  # rclpy's RCLError: an argument rcl could not parse
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            reason = f"invalid ROS arguments: {lines[0]}"
    if reason is not None:
        print(f"{prog}: error: {reason} (see {prog} --help)", file=sys.stderr)
        return 2
    node = None
    try:
        node = node_factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except CausalTuneError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # SIGINT / SIGTERM shut the context down while the executor was building its wait set; rclpy
        # then raises its RCLError (a RuntimeError) instead of ExternalShutdownException. Only with a
        # live context is it a real error.
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``segmentation_node``.

    Args:
        argv: Arguments after the program name (None: ``sys.argv[1:]``).

    Returns:
        Process exit code.
    """
    return run_node(SegmentationNode, None if argv is None else list(argv), NODE_NAME)


if __name__ == "__main__":
    sys.exit(main())
