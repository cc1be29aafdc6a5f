"""Weather switching changes the band (and so the model output) at run time, with no restart."""

from __future__ import annotations

import numpy as np
import pytest
from std_msgs.msg import String

from .node_support import image_array, make_image, sample_rgb

pytestmark = pytest.mark.ros

STAMP = 1_650_000_000 * 10**9


class _Frames:
    """Publishes the same picture with fresh stamps and returns the 32FC1 confidence output."""

    def __init__(self, probe, rgb: np.ndarray) -> None:
        self.probe, self.rgb, self.stamp = probe, rgb, STAMP

    def confidence(self) -> np.ndarray:
        self.stamp += 1
        self.probe.image_pub.publish(make_image(self.rgb, "rgb8", self.stamp))
        return image_array(self.probe.wait_for_stamp("confidence", self.stamp))


def _band_is(expected: str):
    return lambda values, status: values["band"] == expected


def test_parameter_and_topic_switch_band_live(make_node) -> None:
    node, probe, _ = make_node("weather", confidence_encoding="32FC1")
    backend = node.core.pipeline.backend
    frames = _Frames(probe, sample_rgb())

    clear = frames.confidence()
    probe.wait_diagnostics(lambda v, s: v["band"] == "0.200,0.700" and v["condition"] == "clear")
    np.testing.assert_array_equal(frames.confidence(), clear)  # deterministic for a fixed band

    # 1. A parameter service call from another node.
    (result,) = probe.set_parameters(weather__condition="snow")
    assert result.successful
    probe.wait_diagnostics(lambda v, s: v["band"] == "0.200,0.550" and v["condition"] == "snow")
    probe.wait_for("weather", lambda m: m.data == "snow")
    snow = frames.confidence()
    assert np.abs(snow - clear).max() > 1e-4, "the band must change the model output"

    # Editing the preset in force applies at once as well.
    (result,) = probe.set_parameters(weather__bands__snow__high=0.4)
    assert result.successful
    probe.wait_diagnostics(_band_is("0.200,0.400"))
    assert np.abs(frames.confidence() - snow).max() > 1e-4

    # 2. The weather topic (after switching the mode at run time).
    (result,) = probe.set_parameters(weather__mode="topic")
    assert result.successful
    probe.weather_pub.publish(String(data=" FOG "))  # case and blanks are tolerated
    probe.wait_diagnostics(lambda v, s: v["condition"] == "fog" and v["band"] == "0.250,0.700")
    probe.wait_for("weather", lambda m: m.data == "fog")
    fog = frames.confidence()
    assert np.abs(fog - clear).max() > 1e-4

    # An unknown condition is a warning, not a switch.
    probe.weather_pub.publish(String(data="hail"))
    status = probe.wait_diagnostics(lambda v, s: "hail" in v["last_error"])
    assert status.level == b"\x01"
    assert node.core.weather.current == "fog"

    # Back to clear: exactly the first output again. Same model object throughout: no rebuild.
    probe.weather_pub.publish(String(data="clear"))
    probe.wait_diagnostics(_band_is("0.200,0.700"))
    np.testing.assert_array_equal(frames.confidence(), clear)
    assert node.core.pipeline.backend is backend


def test_auto_mode_follows_the_image_with_hysteresis(make_node) -> None:
    # Hysteresis in seconds of header stamps (not wall time): frames stamped 1 s apart, 1.5 s needed.
    node, probe, _ = make_node("weather_auto", weather__mode="auto", weather__auto__min_seconds=1.5)
    dark = (sample_rgb() // 12).astype(np.uint8)  # a night-time frame
    for i in range(2):
        probe.image_pub.publish(make_image(dark, "rgb8", STAMP + i * 10**9))
        probe.wait_for_stamp("class_mask", STAMP + i * 10**9)
    assert node.core.weather.current == "clear"  # night for 1 s of stamps is not enough (1.5 s)
    probe.image_pub.publish(make_image(dark, "rgb8", STAMP + 2 * 10**9))
    probe.wait_for_stamp("class_mask", STAMP + 2 * 10**9)
    probe.wait_diagnostics(lambda v, s: v["condition"] == "night" and v["band"] == "0.250,0.600")
    probe.wait_for("weather", lambda m: m.data == "night")
