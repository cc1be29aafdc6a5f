"""Weather conditions: band-pass presets per condition and the automatic classifier (no torch, no ROS)."""

from causal_tune_ros.weather.classifier import (
    DEFAULT_MIN_SECONDS,
    ImageStatistics,
    WeatherClassifier,
    classify_image,
    classify_statistics,
    compute_statistics,
    condition_scores,
)
from causal_tune_ros.weather.conditions import CONDITIONS, check_condition
from causal_tune_ros.weather.presets import (
    load_band_presets,
    parse_band_presets,
    presets_from_parameters,
    presets_to_parameters,
)

__all__ = [
    "CONDITIONS",
    "DEFAULT_MIN_SECONDS",
    "ImageStatistics",
    "WeatherClassifier",
    "check_condition",
    "classify_image",
    "classify_statistics",
    "compute_statistics",
    "condition_scores",
    "load_band_presets",
    "parse_band_presets",
    "presets_from_parameters",
    "presets_to_parameters",
]
