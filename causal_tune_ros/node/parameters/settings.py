"""The validated, typed view of the node's parameters (:class:`NodeSettings`), ROS-free."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from causal_tune_ros.band import Band
from causal_tune_ros.drivable import GridSpec
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.node.parameters.table import (
    AUTO_KNOBS,
    MAX_CAMERAS,
    check_value,
    default_values,
    spec_by_name,
)
from causal_tune_ros.weather import CONDITIONS

_CAMERA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class CameraMount:
    """Camera-to-ground extrinsic from the drivable.camera.* parameters (metres, radians)."""

    height: float
    pitch: float
    roll: float
    yaw: float
    x: float
    y: float


@dataclass(frozen=True)
class NodeSettings:
    """The validated, typed view of all parameters; an immutable value the worker reads per frame.

    Build it with :func:`settings_from_values`; field meanings are those of the parameter table.
    """

    input_transport: str
    cameras: tuple[str, ...]
    cameras_max_wait_s: float
    reliability: str
    qos_depth: int
    output_reliability: str
    max_image_pixels: int
    backend: str
    device: str
    precision: str
    cpu_threads: int
    checkpoint: str
    backbone: str
    input_size: tuple[int, int] | None
    engine_cache_dir: str
    engine_force_rebuild: bool
    classes_file: str
    publish_overlay: bool
    publish_confidence: bool
    confidence_encoding: str
    overlay_alpha: float
    drivable_classes: tuple[str, ...]
    grid_enabled: bool
    grid_frame: str
    grid_resolution: float
    grid_width: float
    grid_length: float
    camera: CameraMount
    use_tf: bool
    weather_mode: str
    weather_condition: str
    bands: Mapping[str, Band]
    auto_knobs: Mapping[str, float] = field(default_factory=dict)
    diagnostics_period: float = 1.0
    autostart: bool = False

    def band_for(self, condition: str) -> Band:
        """The band preset of ``condition``."""
        return self.bands[condition]


def settings_from_values(values: Mapping[str, Any]) -> NodeSettings:
    """Validate a full set of parameter values and build :class:`NodeSettings`.

    Args:
        values: Parameter name -> value, for every declared parameter (missing ones take defaults;
            unknown names are an error).

    Returns:
        The settings.

    Raises:
        ConfigError: Naming the first invalid parameter and why.
    """
    specs = spec_by_name()
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ConfigError(f"unknown parameter(s): {', '.join(unknown)}")
    v: dict[str, Any] = {**default_values(), **values}
    for name, spec in specs.items():
        reason = check_value(spec, v[name])
        if reason:
            raise ConfigError(reason)
    classes = tuple(v["drivable.classes"])
    if not classes:
        raise ConfigError("drivable.classes must name at least one class")
    bands: dict[str, Band] = {}
    for cond in CONDITIONS:
        low, high = v[f"weather.bands.{cond}.low"], v[f"weather.bands.{cond}.high"]
        try:
            bands[cond] = Band(low, high)
        except ConfigError as exc:
            raise ConfigError(f"weather.bands.{cond}: {exc}") from None
    try:  # the grid's cell count is bounded: refuse a too fine or too large grid now, not every frame
        GridSpec(
            resolution=v["drivable.grid.resolution"],
            length_m=v["drivable.grid.length"],
            width_m=v["drivable.grid.width"],
        )
    except ConfigError as exc:
        raise ConfigError(f"drivable.grid.resolution / width / length: {exc}") from None
    cameras = camera_names(v["cameras"])
    height, width = v["model.input_height"], v["model.input_width"]
    if (height == 0) != (width == 0):
        raise ConfigError("model.input_height and model.input_width must both be 0 or both be set")
    return NodeSettings(
        input_transport=v["input_transport"],
        cameras=cameras,
        cameras_max_wait_s=v["cameras_max_wait_ms"] * 1e-3,
        reliability=v["qos.reliability"],
        qos_depth=v["qos.depth"],
        output_reliability=v["qos.output_reliability"],
        max_image_pixels=v["max_image_pixels"],
        backend=v["backend"],
        device=v["device"],
        precision=v["precision"],
        cpu_threads=v["cpu_threads"],
        checkpoint=v["model.checkpoint"],
        backbone=v["model.backbone"],
        input_size=(height, width) if height else None,
        engine_cache_dir=v["engine.cache_dir"],
        engine_force_rebuild=v["engine.force_rebuild"],
        classes_file=v["classes_file"],
        publish_overlay=v["publish.overlay"],
        publish_confidence=v["publish.confidence"],
        confidence_encoding=v["confidence_encoding"],
        overlay_alpha=v["overlay_alpha"],
        drivable_classes=classes,
        grid_enabled=v["drivable.grid.enabled"],
        grid_frame=v["drivable.frame"],
        grid_resolution=v["drivable.grid.resolution"],
        grid_width=v["drivable.grid.width"],
        grid_length=v["drivable.grid.length"],
        camera=CameraMount(
            height=v["drivable.camera.height"],
            pitch=v["drivable.camera.pitch"],
            roll=v["drivable.camera.roll"],
            yaw=v["drivable.camera.yaw"],
            x=v["drivable.camera.x"],
            y=v["drivable.camera.y"],
        ),
        use_tf=v["drivable.use_tf"],
        weather_mode=v["weather.mode"],
        weather_condition=v["weather.condition"],
        bands=bands,
        auto_knobs={s.name.rsplit(".", 1)[1]: v[s.name] for s in AUTO_KNOBS},
        diagnostics_period=v["diagnostics.period"],
        autostart=v["autostart"],
    )


def camera_names(names: Sequence[str]) -> tuple[str, ...]:
    """The ``cameras`` parameter checked: distinct plain names, at most :data:`MAX_CAMERAS`.

    Raises:
        ConfigError: Naming the offending entry.
    """
    names = tuple(names)
    if len(names) > MAX_CAMERAS:
        raise ConfigError(f"cameras: at most {MAX_CAMERAS} cameras, got {len(names)}")
    for name in names:
        if not _CAMERA_NAME.fullmatch(name):
            raise ConfigError(
                f"cameras: {name!r} is not a camera name (letters, digits and _, starting with a letter)"
            )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"cameras: {', '.join(repeated)} named more than once")
    return names


def restart_only_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Names of parameters that differ between ``old`` and ``new`` but cannot change while running."""
    specs = spec_by_name()
    return [n for n, val in new.items() if n in specs and not specs[n].live and old.get(n) != val]
