"""``lifecycle_segmentation_node``: the segmentation node as a managed (lifecycle) node.

Transitions (driven with ``ros2 lifecycle set`` or the ``<node>/change_state`` service):

===============  ====================================================================================
configure        read parameters, load the backend (and build an engine if needed)
activate         create publishers, subscriptions, the diagnostics timer and the worker; start
deactivate       stop: destroy subscriptions, publishers and timer, join the worker
cleanup          free the model; parameters that need a reload can be changed again
shutdown         all of the above
===============  ====================================================================================

Model, backend and QoS parameters can only change while unconfigured; everything else is live.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from causal_tune_ros.errors import CausalTuneError
from causal_tune_ros.node.core import SegmentationCore
from causal_tune_ros.node.segmentation_node import NODE_NAME, run_node


class LifecycleSegmentationNode(LifecycleNode):
    """Managed segmentation node: starts unconfigured; nothing is loaded until ``configure``.

    Args:
        node_name: Default node name (the same as the plain node's, so one params file serves both).
        **kwargs: Passed to ``rclpy.lifecycle.LifecycleNode``.

    Raises:
        ConfigError: Invalid parameters.
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.core = SegmentationCore(self)
        self.get_logger().info(
            f"unconfigured; waiting for configure ({self.get_fully_qualified_name()}/change_state)"
        )

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model; FAILURE (back to unconfigured) if it cannot be loaded."""
        try:
            self.core.configure()
        except CausalTuneError as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self.core.cleanup()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start processing frames."""
        self.core.activate()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop processing frames (the model stays loaded)."""
        self.core.deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the model."""
        self.core.cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop and free everything."""
        if self.core.active:
            self.core.deactivate()
        self.core.cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Recover to unconfigured after an exception in a transition."""
        if self.core.active:
            self.core.deactivate()
        self.core.cleanup()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        """Stop the worker, free the model and destroy the node."""
        self.core.shutdown()
        super().destroy_node()


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``lifecycle_segmentation_node``.

    Args:
        argv: Arguments after the program name (None: ``sys.argv[1:]``).

    Returns:
        Process exit code.
    """
    return run_node(
        LifecycleSegmentationNode, None if argv is None else list(argv), "lifecycle_segmentation_node"
    )


if __name__ == "__main__":
    sys.exit(main())
