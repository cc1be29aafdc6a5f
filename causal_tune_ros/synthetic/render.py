"""Public entry points: render one synthetic frame, or every weather rendering of one scene."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from causal_tune_ros.drivable import GroundPose
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.synthetic.scene import MIN_SIZE, SceneGeometry, build_geometry
from causal_tune_ros.synthetic.weather import render_weather
from causal_tune_ros.weather.conditions import CONDITIONS, check_condition


@dataclass(frozen=True)
class SyntheticFrame:
    """One rendered frame with exact ground truth.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        labels: ``(H, W)`` uint8 train ids (config/classes.yaml order), 255 = ignore.
        depth: ``(H, W)`` float32 depth along the optical axis in metres (sky: 1000 m, the largest value).
        condition: ``"clear" | "snow" | "rain" | "fog" | "night"``.
        K: ``(3, 3)`` float64 camera matrix (pixel centres at integer coordinates).
        ground_pose: Camera-to-ground pose (:class:`causal_tune_ros.drivable.GroundPose`); the ground frame
            is the vehicle's (x forward, y left, z up) on the road surface.
        seed: Scene seed.
    """

    image: np.ndarray
    labels: np.ndarray
    depth: np.ndarray
    condition: str
    K: np.ndarray
    ground_pose: GroundPose
    seed: int = 0


def _check(seed: int, height: int, width: int) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if int(height) < MIN_SIZE or int(width) < MIN_SIZE:
        raise ConfigError(f"image size must be at least {MIN_SIZE}x{MIN_SIZE}, got {height}x{width}")


def _frame(geom: SceneGeometry, condition: str) -> SyntheticFrame:
    return SyntheticFrame(
        image=render_weather(geom, condition),
        labels=geom.labels,
        depth=geom.depth,
        condition=condition,
        K=geom.K.copy(),
        ground_pose=GroundPose(**geom.pose),
        seed=geom.seed,
    )


def render_scene(seed: int, condition: str = "clear", height: int = 512, width: int = 1024) -> SyntheticFrame:
    """Render one street scene under one weather condition.

    The same ``seed`` gives the same scene (geometry, labels, depth, camera) for every condition, and the
    same bytes every time.

    Args:
        seed: Scene seed (any integer).
        condition: One of ``clear, snow, rain, fog, night``.
        height: Image rows (>= 16).
        width: Image columns (>= 16).

    Returns:
        The :class:`SyntheticFrame`.

    Raises:
        ConfigError: For an unknown condition, a non-integer seed or an image smaller than 16x16.
    """
    _check(seed, height, width)
    check_condition(condition)
    return _frame(build_geometry(int(seed), int(height), int(width)), condition)


def render_conditions(
    seed: int, conditions: Iterable[str] = CONDITIONS, height: int = 512, width: int = 1024
) -> dict[str, SyntheticFrame]:
    """Render one scene under several conditions, computing its geometry once.

    Each rendering equals ``render_scene(seed, condition, height, width)`` byte for byte; the frames share
    one (read-only) ``labels`` and ``depth`` array.

    Args:
        seed: Scene seed.
        conditions: Conditions to render (default: all five), in the order wanted.
        height: Image rows (>= 16).
        width: Image columns (>= 16).

    Returns:
        ``{condition: frame}`` in the given order.

    Raises:
        ConfigError: For an unknown condition, a non-integer seed or an image smaller than 16x16.
    """
    _check(seed, height, width)
    conditions = list(conditions)
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ConfigError(f"unknown condition(s) {unknown}; expected some of {', '.join(CONDITIONS)}")
    geom = build_geometry(int(seed), int(height), int(width))
    geom.labels.setflags(write=False)
    geom.depth.setflags(write=False)
    return {c: _frame(geom, c) for c in conditions}
