"""Band-pass presets per weather condition, read from ``config/weather_bands.yaml``.

File layout (the node's parameters ``weather.bands.<condition>.low/high`` mirror it)::

    weather:
      bands:
        clear: {low: 0.2, high: 0.7}
        snow:  {low: 0.2, high: 0.55}
        ...

Every condition of :data:`CONDITIONS` must be present, and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from causal_tune_ros.band import Band
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.resources import config_path
from causal_tune_ros.weather.conditions import CONDITIONS

#: Prefix of the node's band parameters: ``weather.bands.<condition>.low`` / ``.high``.
PARAMETER_PREFIX = "weather.bands"

DEFAULT_FILE = "weather_bands.yaml"


def parse_band_presets(data: Any, source: str = "band presets") -> dict[str, Band]:
    """Validate an already-loaded ``{"weather": {"bands": {...}}}`` mapping.

    Args:
        data: The parsed YAML document.
        source: Name used in error messages (usually the file path).

    Returns:
        Condition -> :class:`~causal_tune_ros.band.Band`, in :data:`CONDITIONS` order.

    Raises:
        ConfigError: Wrong structure, unknown or missing conditions, non-numeric values, or a band
            that breaks ``0 < low < high <= 1``.
    """
    weather = data.get("weather") if isinstance(data, Mapping) else None
    bands = weather.get("bands") if isinstance(weather, Mapping) else None
    if not isinstance(bands, Mapping):
        raise ConfigError(f"{source}: expected a 'weather: bands: <condition>: {{low, high}}' mapping")
    unknown = sorted(str(c) for c in bands if c not in CONDITIONS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown condition(s) {', '.join(unknown)}; known: {', '.join(CONDITIONS)}"
        )
    missing = [c for c in CONDITIONS if c not in bands]
    if missing:
        raise ConfigError(f"{source}: missing band preset(s) for {', '.join(missing)}")
    presets: dict[str, Band] = {}
    for condition in CONDITIONS:
        entry = bands[condition]
        if not isinstance(entry, Mapping) or set(entry) != {"low", "high"}:
            raise ConfigError(f"{source}: weather.bands.{condition} must be {{low: <float>, high: <float>}}")
        try:
            low, high = _number(entry["low"]), _number(entry["high"])
            presets[condition] = Band(low, high)
        except (ConfigError, TypeError, ValueError) as err:
            raise ConfigError(f"{source}: weather.bands.{condition}: {err}") from None
    return presets


def _number(value: Any) -> float:
    # YAML gives bool for "yes"/"true": refuse it rather than reading True as 1.0.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"band edges must be numbers, got {value!r}")
    return float(value)


def load_band_presets(path: str | Path | None = None) -> dict[str, Band]:
    """Read band presets from YAML.

    Args:
        path: A YAML file in the layout of the module docstring; default the packaged
            ``config/weather_bands.yaml``.

    Returns:
        Condition -> :class:`~causal_tune_ros.band.Band` for every condition of :data:`CONDITIONS`.

    Raises:
        ConfigError: The file is missing, is not valid YAML, or fails :func:`parse_band_presets`.
    """
    file = Path(path) if path is not None else config_path(DEFAULT_FILE)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read band presets {file}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{file}: invalid YAML: {err}") from None
    return parse_band_presets(data, str(file))


def presets_to_parameters(presets: Mapping[str, Band]) -> dict[str, float]:
    """Flatten presets to node parameter values: ``{"weather.bands.clear.low": 0.2, ...}``."""
    flat: dict[str, float] = {}
    for condition, band in presets.items():
        flat[f"{PARAMETER_PREFIX}.{condition}.low"] = float(band.low)
        flat[f"{PARAMETER_PREFIX}.{condition}.high"] = float(band.high)
    return flat


def presets_from_parameters(values: Mapping[str, Any]) -> dict[str, Band]:
    """Rebuild presets from flat node parameter values (inverse of :func:`presets_to_parameters`).

    Args:
        values: Parameter name -> value; other parameters are ignored.

    Returns:
        Condition -> Band for every condition of :data:`CONDITIONS`.

    Raises:
        ConfigError: A missing edge or an invalid band, naming the parameter.
    """
    bands: dict[str, dict[str, Any]] = {}
    prefix = PARAMETER_PREFIX + "."
    for name, value in values.items():
        if name.startswith(prefix):
            condition, _, edge = name[len(prefix) :].rpartition(".")
            bands.setdefault(condition, {})[edge] = value
    return parse_band_presets({"weather": {"bands": bands}}, "parameters")
