"""``segmentation_node``: the ROS 2 semantic segmentation node (SPEC section 4).

Run it as ``segmentation_node --ros-args --params-file config/segmentation.yaml -r image:=/cam/image_raw``
or ``causal-tune node --ros-args ...``. Topics, parameters and QoS are listed in ``docs/ros_interface.md``.
The behaviour lives in :class:`~causal_tune_ros.node.core.SegmentationCore`; this class only wires it
to a plain (always active) rclpy node.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from causal_tune_ros.errors import CausalTuneError
from causal_tune_ros.node.core import SegmentationCore

NODE_NAME = "segmentation_node"


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


def run_node(node_factory: Any, argv: Sequence[str] | None, prog: str) -> int:
    """Init rclpy with ``argv``, build a node, spin it until Ctrl-C / shutdown, clean up.

    Args:
        node_factory: Callable returning the node (called after ``rclpy.init``).
        argv: Command line including ROS arguments (``--ros-args ...``); None = ``sys.argv``.
        prog: Program name for error messages.

    Returns:
        Exit code: 0 on a normal stop, 2 for configuration or model errors.
    """
    args = list(sys.argv if argv is None else [prog, *argv])
    rclpy.init(args=args)
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
