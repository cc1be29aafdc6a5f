"""ROS 2 Humble's rclpy API: the node works with every Jazzy-only ``Node`` method removed from the class.

Humble's rclpy (3.3) has no post-set parameter callback (and none of the other methods listed below); the
node must feature-detect them. Removing them from ``rclpy.node.Node`` for the duration of a test runs the
Humble code path on this machine's Jazzy rclpy, with real nodes talking over loopback.
"""

from __future__ import annotations

import numpy as np
import pytest

from .node_support import (
    NS_PREFIX,
    Probe,
    Spinner,
    diag_values,
    image_array,
    make_image,
    node_overrides,
    sample_rgb,
)

pytestmark = pytest.mark.ros

#: Public ``rclpy.node.Node`` methods of Jazzy that Humble's rclpy lacks and that rclpy itself does not
#: call (``list_parameters`` and ``get_fully_qualified_node_names`` are Jazzy-only too, but Jazzy's own
#: parameter service and graph code call them, so they stay).
JAZZY_ONLY_NODE_METHODS = (
    "add_post_set_parameters_callback",
    "add_pre_set_parameters_callback",
    "remove_post_set_parameters_callback",
    "remove_pre_set_parameters_callback",
    "count_clients",
    "count_services",
    "wait_for_node",
)
STAMP = 1_710_000_000 * 10**9


@pytest.fixture
def humble_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """``rclpy.node.Node`` without its Jazzy-only methods (restored after the test)."""
    from rclpy.node import Node

    for name in JAZZY_ONLY_NODE_METHODS:
        if hasattr(Node, name):
            monkeypatch.delattr(Node, name)


def test_round_trip_and_live_parameters_without_post_set_callback(humble_api, make_node) -> None:
    node, probe, _ = make_node("humble")
    assert not hasattr(node, "add_post_set_parameters_callback")
    rgb = sample_rgb()

    probe.image_pub.publish(make_image(rgb, "rgb8", STAMP))
    assert probe.wait_for_stamp("class_mask", STAMP).width == rgb.shape[1]
    overlay = image_array(probe.wait_for_stamp("overlay", STAMP))
    assert not np.array_equal(overlay, rgb)  # alpha 0.5 blends the palette in

    # A live change goes through the parameter service and takes effect on the next frame.
    (result,) = probe.set_parameters(overlay_alpha=0.0)
    assert result.successful
    assert node.get_parameter("overlay_alpha").value == 0.0
    assert node.core.settings.overlay_alpha == 0.0
    probe.image_pub.publish(make_image(rgb, "rgb8", STAMP + 1))
    np.testing.assert_array_equal(image_array(probe.wait_for_stamp("overlay", STAMP + 1)), rgb)

    # The weather condition (and with it the model's band) switches at once.
    (result,) = probe.set_parameters(weather__condition="snow")
    assert result.successful
    snow = node.core.settings.band_for("snow")
    probe.wait_diagnostics(lambda v, s: v["condition"] == "snow" and v["band_low"] == f"{snow.low:.4f}")
    probe.wait_for("weather", lambda m: m.data == "snow")

    # Invalid and restart-only changes are refused and change nothing, on rclpy's side nor the node's.
    (bad,) = probe.set_parameters(overlay_alpha=2.0)
    assert not bad.successful
    (fixed,) = probe.set_parameters(model__input_height=70)
    assert not fixed.successful and "cannot change while the model is loaded" in fixed.reason
    assert node.get_parameter("overlay_alpha").value == 0.0 and node.core.settings.overlay_alpha == 0.0
    assert node.get_parameter("model.input_height").value == 56


def test_managed_node_autostarts_without_post_set_callback(humble_api, ros_context, tiny_checkpoint) -> None:
    from rclpy.lifecycle import LifecyclePublisher
    from rclpy.node import Node

    from causal_tune_ros.node.lifecycle_node import LifecycleSegmentationNode

    ns = f"{NS_PREFIX}/humble_managed"
    node = LifecycleSegmentationNode(
        namespace=ns, parameter_overrides=node_overrides(tiny_checkpoint, autostart=True)
    )
    probe_node = Node("probe_humble_managed", namespace=ns)
    probe = Probe(probe_node, ns)
    spinner = Spinner(node, probe_node)
    try:
        assert node.core.active and isinstance(node.core.outputs.class_mask, LifecyclePublisher)
        probe.wait_connected()
        probe.image_pub.publish(make_image(sample_rgb(), "rgb8", STAMP + 5))
        assert probe.wait_for_stamp("class_mask", STAMP + 5).height == 48
        (result,) = probe.set_parameters(weather__condition="night")
        assert result.successful
        status = probe.wait_diagnostics(lambda v, s: v["condition"] == "night")
        assert diag_values(status)["state"] == "active"
    finally:
        spinner.stop()
        node.destroy_node()
        probe_node.destroy_node()
