"""The weather condition in force, for the three ``weather.mode`` values (no rclpy here).

* ``fixed``: the ``weather.condition`` parameter.
* ``topic``: the last condition received on the ``weather`` topic (``weather.condition`` until then).
* ``auto``: :class:`~causal_tune_ros.weather.WeatherClassifier` on the frames, with hysteresis in
  seconds of the frames' header stamps (``weather.auto.min_seconds``).

Setting ``weather.condition`` at run time switches the condition immediately in every mode (in ``auto``
the classifier restarts from it). The band follows from the condition through the
``weather.bands.*`` presets; nothing here touches the model.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.weather import CONDITIONS, WeatherClassifier


def parse_condition(text: str) -> str:
    """A condition name from a topic message: case and surrounding blanks are ignored.

    Raises:
        ConfigError: For a name that is not one of :data:`~causal_tune_ros.weather.CONDITIONS`.
    """
    name = str(text).strip().lower()
    if name not in CONDITIONS:
        raise ConfigError(
            f"unknown weather condition {text!r} on the weather topic; known: {', '.join(CONDITIONS)}"
        )
    return name


class WeatherSelector:
    """Thread-safe holder of the current condition.

    Args:
        mode: ``fixed``, ``topic`` or ``auto``.
        condition: The ``weather.condition`` parameter.
        auto_knobs: Keyword arguments for :class:`~causal_tune_ros.weather.WeatherClassifier`
            (``every_n_frames``, ``min_seconds``).
    """

    def __init__(self, mode: str, condition: str, auto_knobs: Mapping[str, float]) -> None:
        self._lock = threading.Lock()
        self._mode = mode
        self._current = condition
        self._knobs = dict(auto_knobs)
        self._classifier = self._new_classifier(condition)

    def _new_classifier(self, initial: str) -> WeatherClassifier:
        return WeatherClassifier(initial=initial, **self._knobs)

    @property
    def mode(self) -> str:
        """The weather mode in force."""
        return self._mode

    @property
    def current(self) -> str:
        """The condition in force."""
        return self._current

    def reconfigure(
        self, mode: str, condition: str, auto_knobs: Mapping[str, float], condition_set: bool
    ) -> None:
        """Apply new parameter values.

        Args:
            mode: New ``weather.mode``.
            condition: New ``weather.condition``.
            auto_knobs: New classifier knobs.
            condition_set: True if ``weather.condition`` itself was just set (it then takes effect in
                every mode); otherwise the current condition is kept unless the mode became ``fixed``.
        """
        with self._lock:
            knobs_changed = dict(auto_knobs) != self._knobs
            self._knobs = dict(auto_knobs)
            mode_changed = mode != self._mode
            self._mode = mode
            if condition_set or mode == "fixed":
                self._current = condition
            if condition_set or knobs_changed or mode_changed:
                self._classifier = self._new_classifier(self._current)

    def on_topic(self, text: str) -> tuple[str, bool]:
        """Handle a ``weather`` topic message.

        Args:
            text: The message's ``data``.

        Returns:
            ``(condition in force, whether the message was used)``: messages only count in ``topic`` mode.

        Raises:
            ConfigError: For an unknown condition name.
        """
        condition = parse_condition(text)
        with self._lock:
            if self._mode != "topic":
                return self._current, False
            self._current = condition
            return condition, True

    def for_frame(self, rgb: np.ndarray, stamp_ns: int | None = None) -> str:
        """The condition for this frame (runs the classifier in ``auto`` mode).

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB frame.
            stamp_ns: The frame's header stamp in nanoseconds; ``None`` or 0 (a driver that does not
                stamp) times the hysteresis by the monotonic clock instead.

        Returns:
            The condition in force.
        """
        with self._lock:
            if self._mode == "auto":
                self._current = self._classifier.update(rgb, stamp_ns or None)
            return self._current
