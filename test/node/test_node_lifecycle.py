"""The managed node, driven through the standard lifecycle services from another node."""

from __future__ import annotations

import time

import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.lifecycle import LifecyclePublisher
from rclpy.node import Node

from .node_support import (
    NS_PREFIX,
    Probe,
    Spinner,
    diag_values,
    make_image,
    node_overrides,
    sample_rgb,
)

pytestmark = pytest.mark.ros

STAMP = 1_690_000_000 * 10**9


def _call(client, request, timeout: float = 30.0):
    assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} not available"
    future = client.call_async(request)
    deadline = time.monotonic() + timeout
    while not future.done():
        assert time.monotonic() < deadline, f"{client.srv_name} timed out"
        time.sleep(0.01)
    return future.result()


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_lifecycle_transitions_through_services(ros_context, tiny_checkpoint, tmp_path) -> None:
    from causal_tune_ros.node.lifecycle_node import LifecycleSegmentationNode

    ns = f"{NS_PREFIX}/managed"
    node = LifecycleSegmentationNode(namespace=ns, parameter_overrides=node_overrides(tiny_checkpoint))
    manager = Node("lifecycle_manager", namespace=ns)
    probe = Probe(manager, ns)
    change = manager.create_client(ChangeState, f"{probe.target}/change_state")
    get = manager.create_client(GetState, f"{probe.target}/get_state")
    spinner = Spinner(node, manager)

    def state() -> int:
        return _call(get, GetState.Request()).current_state.id

    def transition(transition_id: int) -> bool:
        return _call(change, ChangeState.Request(transition=Transition(id=transition_id))).success

    try:
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert node.core.pipeline is None and probe.image_pub.get_subscription_count() == 0

        # Unconfigured: model parameters may change; a missing checkpoint makes configure fail cleanly.
        (result,) = probe.set_parameters(model__checkpoint=str(tmp_path / "missing.safetensors"))
        assert result.successful
        assert not transition(Transition.TRANSITION_CONFIGURE)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED and node.core.pipeline is None
        (result,) = probe.set_parameters(model__checkpoint=str(tiny_checkpoint))
        assert result.successful

        # configure: model loaded; output topics exist (lifecycle publishers, not sending yet); nothing
        # subscribed; the latched ~/weather and /diagnostics already report.
        assert transition(Transition.TRANSITION_CONFIGURE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        assert node.core.pipeline is not None
        assert probe.image_pub.get_subscription_count() == 0
        _wait(lambda: manager.count_publishers(f"{probe.target}/class_mask") == 1)
        assert isinstance(node.core.outputs.class_mask, LifecyclePublisher)
        assert not node.core.outputs.class_mask.is_activated
        assert probe.wait_for("weather").data == "clear"
        probe.wait_diagnostics(lambda v, s: v["state"] == "inactive" and v["backend"] == "eager")
        (result,) = probe.set_parameters(model__input_height=70)
        assert not result.successful and "cannot change while the model is loaded" in result.reason

        # activate: frames flow.
        assert transition(Transition.TRANSITION_ACTIVATE)
        assert state() == State.PRIMARY_STATE_ACTIVE
        _wait(lambda: probe.image_pub.get_subscription_count() == 1)
        _wait(lambda: manager.count_publishers(f"{probe.target}/class_mask") == 1)
        time.sleep(0.2)
        probe.image_pub.publish(make_image(sample_rgb(), "rgb8", STAMP))
        assert probe.wait_for_stamp("class_mask", STAMP).width == 64
        probe.wait_diagnostics(lambda v, s: v["backend"] == "eager")

        assert node.core.outputs.class_mask.is_activated

        # deactivate: subscriptions gone, publishers kept but disabled, model kept, diagnostics go on.
        assert transition(Transition.TRANSITION_DEACTIVATE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        _wait(lambda: probe.image_pub.get_subscription_count() == 0)
        assert manager.count_publishers(f"{probe.target}/class_mask") == 1
        assert not node.core.outputs.class_mask.is_activated
        assert node.core.pipeline is not None and not node.core.active
        seen = probe.count("diagnostics")
        probe.wait_for("diagnostics", lambda s: diag_values(s)["state"] == "inactive", start=seen)

        # cleanup: model and publishers freed; now a reload parameter may change; configure + activate.
        assert transition(Transition.TRANSITION_CLEANUP)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED and node.core.pipeline is None
        _wait(lambda: manager.count_publishers(f"{probe.target}/class_mask") == 0)
        (result,) = probe.set_parameters(model__input_height=70)
        assert result.successful
        assert transition(Transition.TRANSITION_CONFIGURE)
        assert node.core.backend_info.input_size == (70, 112)
        assert transition(Transition.TRANSITION_ACTIVATE)
        _wait(lambda: probe.image_pub.get_subscription_count() == 1)
        _wait(lambda: manager.count_publishers(f"{probe.target}/class_mask") == 1)
        time.sleep(0.2)
        probe.image_pub.publish(make_image(sample_rgb(), "rgb8", STAMP + 1))
        assert probe.wait_for_stamp("class_mask", STAMP + 1).height == 48

        # shutdown from active: everything released.
        assert transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
        assert state() == State.PRIMARY_STATE_FINALIZED
        assert node.core.pipeline is None and not node.core.active
    finally:
        spinner.stop()
        node.destroy_node()
        manager.destroy_node()


def test_autostart_with_a_bad_model_stays_unconfigured(ros_context, tiny_checkpoint, tmp_path) -> None:
    from causal_tune_ros.node.lifecycle_node import LifecycleSegmentationNode

    overrides = node_overrides(tiny_checkpoint, autostart=True)
    overrides = [p for p in overrides if p.name != "model.checkpoint"]
    from rclpy.parameter import Parameter

    overrides.append(Parameter("model.checkpoint", value=str(tmp_path / "missing.safetensors")))
    node = LifecycleSegmentationNode(namespace=f"{NS_PREFIX}/autostart_bad", parameter_overrides=overrides)
    try:
        assert not node.core.configured and not node.core.active and node.core.outputs is None
        assert not node.autostart()  # still refuses, and still no exception
    finally:
        node.destroy_node()
