"""``lifecycle_segmentation_node``: the segmentation node as a managed (lifecycle) node.

Transitions (driven with ``ros2 lifecycle set`` or the ``<node>/change_state`` service):

===============  ====================================================================================
configure        load the backend (and build an engine if needed); create the output publishers
                 (lifecycle publishers: they send only while active), ``~/weather``, ``/diagnostics``
                 and the diagnostics timer
activate         enable the outputs, create the subscriptions and the worker; frames flow
deactivate       stop: destroy the subscriptions, join the worker, disable the outputs
cleanup          free the model and the publishers; parameters that need a reload can change again
shutdown         all of the above
===============  ====================================================================================

With the ``autostart`` parameter the node configures and activates itself at start, so that it runs
without a lifecycle manager or the ``ros2`` CLI. Model, backend and QoS parameters can only change while
unconfigured; everything else is live.
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
        try:
            self.core = SegmentationCore(self)
        except BaseException:
            super().destroy_node()
            raise
        if self.core.settings.autostart:
            self.autostart()
        else:
            self.get_logger().info(
                f"unconfigured; waiting for configure ({self.get_fully_qualified_name()}/change_state)"
            )

    def autostart(self) -> bool:
        """Configure and activate now, as a lifecycle manager would.

        Returns:
            True if the node is active; False if a transition failed (the reason is logged and the node
            stays where the failure left it, normally unconfigured, still serving lifecycle requests).
        """
        for name, trigger in (("configure", self.trigger_configure), ("activate", self.trigger_activate)):
            if trigger() != TransitionCallbackReturn.SUCCESS:
                self.get_logger().error(f"autostart: {name} failed; the node stays inactive")
                return False
        self.get_logger().info("autostart: configured and active")
        return True

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
        """Enable the lifecycle publishers, then start processing frames."""
        result = super().on_activate(state)
        if result == TransitionCallbackReturn.SUCCESS:
            self.core.activate()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop processing frames, then disable the lifecycle publishers (the model stays loaded)."""
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
        core = getattr(self, "core", None)
        if core is not None:
            core.shutdown()
        super().destroy_node()


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``lifecycle_segmentation_node``.

    Args:
        argv: Arguments after the program name (None: ``sys.argv[1:]``).

    Returns:
        Process exit code.
    """
    return run_node(
        LifecycleSegmentationNode,
        None if argv is None else list(argv),
        "lifecycle_segmentation_node",
        managed=True,
    )


if __name__ == "__main__":
    sys.exit(main())
