"""Stage 1 of a replay: a bag message -> decoded RGB frame with its header, condition and band.

:class:`WeatherSource` picks each frame's condition as :attr:`ReplayOptions.weather` says (classified
per camera with hysteresis, read from a String topic of the bag, or fixed).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from causal_tune_ros.bags import (
    IMAGE_TYPE,
    STRING_TYPE,
    BagMessage,
    BagReader,
    deserialize,
    stamp_to_ns,
)
from causal_tune_ros.band import Band
from causal_tune_ros.errors import BagError, ConfigError, ImageConversionError
from causal_tune_ros.limits import DEFAULT_MAX_IMAGE_PIXELS
from causal_tune_ros.replay.options import ReplayOptions
from causal_tune_ros.weather import CONDITIONS

LOG = logging.getLogger(__name__)


def check_weather_topic(bag: BagReader, topic: str) -> None:
    """Check that ``bag`` has ``topic`` as std_msgs/String (the conditions of ``--weather topic``).

    Raises:
        BagError: The topic is missing or of another type.
    """
    if topic not in bag.topics:
        raise BagError(f"--weather topic: the bag has no {topic} topic")
    if bag.topics[topic] != STRING_TYPE:
        raise BagError(f"{topic} is {bag.topics[topic]}, not {STRING_TYPE}")


@dataclass
class Frame:
    """One camera frame on its way through the stages (``error`` set: skipped, with the reason).

    ``result`` is the pipeline's ``SegmentationResult`` once the model stage ran (``None`` before, or when
    the model failed on it).
    """

    topic: str
    stamp: int  # log time, ns
    header: Any
    rgb: np.ndarray | None
    condition: str
    band: Band
    error: str | None = None
    result: Any = None


@dataclass
class Item:
    """One unit of work through the stages: the input messages to copy, and the frames to segment
    together (one, or one camera batch; none when only messages are carried).

    Messages between two processed frames travel together with the second one, so the queues carry
    one item per frame (or batch), not one per message (camera_info, tf, ... would otherwise each wake
    every stage).
    """

    messages: list[BagMessage] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)


#: Called after each processed frame is written (in the writing thread):
#: ``(topic, stamp_ns, rgb, result, condition)``.
FrameCallback = Callable[[str, int, np.ndarray, Any, str], None]
#: ``on_skip(topic, stamp, reason)`` for a frame that was not segmented (corrupt, or the model failed).
SkipCallback = Callable[[str, int, str], None]


class WeatherSource:
    """Picks the condition and band of each frame according to :attr:`ReplayOptions.weather`."""

    def __init__(self, options: ReplayOptions, presets: dict[str, Band], bag: BagReader) -> None:
        self.mode = options.weather
        self.every = options.weather_every
        self.min_seconds = options.weather_min_seconds
        self.presets = presets
        self.forced = options.band
        self._classifiers: dict[str, Any] = {}
        self._times: list[int] = []
        self._values: list[str] = []
        if self.mode == "topic":
            check_weather_topic(bag, options.weather_topic)
            # One cheap pass over the small String messages, so a frame logged at the same instant as
            # its weather message gets it whatever order the storage returns ties in.
            for m in bag.messages([options.weather_topic]):
                value = str(deserialize(m.data, STRING_TYPE).data).strip().lower()
                if value not in presets:
                    LOG.warning("ignoring unknown condition %r on %s", value, options.weather_topic)
                    continue
                self._times.append(m.timestamp)
                self._values.append(value)
        elif self.mode != "auto" and self.mode not in presets:
            raise ConfigError(
                f"unknown weather {self.mode!r}; expected auto, topic or one of {', '.join(CONDITIONS)}"
            )

    def pick(self, topic: str, stamp: int, rgb: np.ndarray, header_stamp: int = 0) -> tuple[str, Band]:
        """Condition and band of a frame logged at ``stamp`` (ns) with header stamp ``header_stamp``."""
        if self.mode == "auto":
            if topic not in self._classifiers:
                from causal_tune_ros.weather import WeatherClassifier

                self._classifiers[topic] = WeatherClassifier(
                    min_seconds=self.min_seconds, every_n_frames=self.every
                )
            # Hysteresis on the camera's clock (header stamps); the log time if the driver sets none.
            condition = str(self._classifiers[topic].update(rgb, header_stamp or stamp))
        elif self.mode == "topic":
            i = bisect.bisect_right(self._times, stamp) - 1
            condition = self._values[i] if i >= 0 else "clear"
        else:
            condition = self.mode
        band = self.forced or self.presets.get(condition) or self.presets["clear"]
        return condition, band


def decode_image(msg: BagMessage) -> tuple[Any, np.ndarray]:
    """CDR bytes of an Image / CompressedImage -> (header, RGB view).

    Raises:
        BagError: Bad CDR.
        ImageConversionError: An image that cannot be decoded (or is over the pixel limit).
    """
    from causal_tune_ros.imaging import compressed_to_rgb, image_to_rgb

    ros_msg = deserialize(msg.data, msg.msgtype)
    cap = DEFAULT_MAX_IMAGE_PIXELS  # the node's max_image_pixels default: one limit for both
    if msg.msgtype == IMAGE_TYPE:
        rgb = image_to_rgb(ros_msg, max_pixels=cap)
    else:
        rgb = compressed_to_rgb(ros_msg, max_pixels=cap)
    return ros_msg.header, rgb


def prepare_frame(msg: BagMessage, weather: WeatherSource) -> Frame:
    """Decode an image message and pick its condition and band (undecodable: a frame with ``error``)."""
    try:
        header, rgb = decode_image(msg)
    except (BagError, ImageConversionError) as exc:
        return Frame(msg.topic, msg.timestamp, None, None, "", weather.presets["clear"], error=str(exc))
    condition, band = weather.pick(msg.topic, msg.timestamp, rgb, stamp_to_ns(header.stamp))
    return Frame(msg.topic, msg.timestamp, header, rgb, condition, band)
