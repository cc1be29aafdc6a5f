"""Scene assembly: lay out a street, place everything on it, rasterise, and colour the clear-day image.

A scene is a straight street seen from a car's front camera: lanes with markings, curbs and sidewalks,
verges, buildings with windows and roofs (or a park), street lamps, signs, traffic lights, trees, parked and
moving vehicles, pedestrians, cyclists and a distant skyline. Everything is a planar polygon (or polyline)
in a street frame (x along the road, y to the left, z up) projected through a pinhole camera; see
:mod:`causal_tune_ros.synthetic.raster` for how labels and depth stay pixel-exact. All randomness comes from
one ``numpy.random.Generator`` seeded by the scene seed, drawn in a fixed order, so a seed always gives the
same scene. The parts live in :mod:`.primitives` (builder, shapes), :mod:`.street` (layout, ground,
markings, walls, skyline), :mod:`.buildings`, :mod:`.props` (trees, lamps, signs, traffic lights) and
:mod:`.road_users` (people, two-wheelers, vehicles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.synthetic.buildings import build_buildings
from causal_tune_ros.synthetic.camera import Camera, intrinsics
from causal_tune_ros.synthetic.labels import IGNORE
from causal_tune_ros.synthetic.noise import noise_window
from causal_tune_ros.synthetic.primitives import L_OBJECT, L_YARD, Builder, Light, Placement
from causal_tune_ros.synthetic.props import build_park, street_lamp, traffic_light, traffic_sign, tree
from causal_tune_ros.synthetic.raster import SKY_DEPTH, Raster, depth_map, rasterize
from causal_tune_ros.synthetic.road_users import person, two_wheeler, vehicle
from causal_tune_ros.synthetic.street import (
    StreetLayout,
    build_backdrop,
    build_edge,
    build_ground,
    build_markings,
    sample_layout,
)

#: Smallest image side :func:`build_geometry` renders.
MIN_SIZE = 16


@dataclass
class SceneGeometry:
    """Everything the weather renderers need about one scene; computed once per seed and size.

    Attributes:
        seed: Scene seed.
        height: Image rows.
        width: Image columns.
        K: ``(3, 3)`` intrinsics.
        pose: Camera-to-ground pose ``height, pitch, roll, yaw, x, y`` (metres, radians).
        camera: World -> optical camera.
        raster: Primitive-id map and per-id tables.
        labels: ``(H, W)`` uint8 train ids (255 ignore).
        depth: ``(H, W)`` float32 depth along the optical axis (m); sky is ``SKY_DEPTH``.
        distance: ``(H, W)`` float32 distance along each pixel's ray (m), for fog.
        base: ``(H, W, 3)`` float32 clear-day colours in [0, 1] (no haze, no sensor effects).
        sky: ``(H, W)`` bool sky mask.
        horizon: ``(W,)`` float32 horizon row per column.
        lights: Street lamps and vehicle lights (world frame).
        lanes: Lateral positions (street frame) of the lane centres, for tyre tracks.
        road_edges: ``(right, left)`` lateral limits of the road surface.
        sun: Unit vector towards the sun.
        sky_colors: ``(horizon RGB, zenith RGB)`` used for the clear sky.
    """

    seed: int
    height: int
    width: int
    K: np.ndarray
    pose: dict[str, float]
    camera: Camera
    raster: Raster
    labels: np.ndarray
    depth: np.ndarray
    distance: np.ndarray
    base: np.ndarray
    sky: np.ndarray
    horizon: np.ndarray
    lights: list[Light] = field(default_factory=list)
    lanes: list[float] = field(default_factory=list)
    road_edges: tuple[float, float] = (0.0, 0.0)
    sun: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    sky_colors: tuple[np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.array([0.75, 0.82, 0.9]), np.array([0.3, 0.5, 0.8]))
    )

    def world_points(self) -> np.ndarray:
        """``(H, W, 3)`` float32 world (street-frame) point seen at every pixel (sky: at ``SKY_DEPTH``)."""
        rx, ry = self.camera.pixel_rays()
        a = self.camera.rotation.astype(np.float32)
        c = self.camera.center.astype(np.float32)
        out = np.empty((self.height, self.width, 3), np.float32)
        for k in range(3):
            # world = A^T (z r) + c with r = (rx, ry, 1)
            out[..., k] = self.depth * (a[0, k] * rx + a[1, k] * ry + a[2, k]) + c[k]
        return out


@dataclass(frozen=True)
class _Shot:
    """The camera of one scene and its light.

    Attributes:
        seed: Scene seed.
        height: Image rows.
        width: Image columns.
        K: ``(3, 3)`` intrinsics.
        pose: Camera-to-ground pose (:func:`sample_pose`).
        heading: Ego vehicle heading in the street frame (radians).
        camera: World -> optical camera.
        sun: Unit vector towards the sun.
    """

    seed: int
    height: int
    width: int
    K: np.ndarray
    pose: dict[str, float]
    heading: float
    camera: Camera
    sun: np.ndarray


def sample_pose(rng: np.random.Generator) -> dict[str, float]:
    """Camera-to-ground pose of a front camera: about 1.5 m high, pitched slightly down.

    Args:
        rng: Random generator.

    Returns:
        ``{height, pitch, roll, yaw, x, y}`` in metres and radians.
    """
    return {
        "height": float(rng.uniform(1.35, 1.65)),
        "pitch": float(math.radians(rng.uniform(0.5, 3.0))),
        "roll": float(math.radians(rng.uniform(-1.0, 1.0))),
        "yaw": float(math.radians(rng.uniform(-1.0, 1.0))),
        "x": 0.0,
        "y": 0.0,
    }


def _sample_shot(rng: np.random.Generator, seed: int, height: int, width: int, ego_y: float) -> _Shot:
    pose = sample_pose(rng)
    heading = math.radians(rng.uniform(-2.5, 2.5))
    hfov = rng.uniform(50.0, 70.0)
    K = intrinsics(width, height, hfov)
    cam = Camera.build(K, width, height, pose, vehicle_xy=(0.0, ego_y), vehicle_heading=heading)
    sun_el, sun_az = math.radians(rng.uniform(20.0, 60.0)), rng.uniform(0.0, 2 * math.pi)
    sun = np.array(
        [math.cos(sun_el) * math.cos(sun_az), math.cos(sun_el) * math.sin(sun_az), math.sin(sun_el)]
    )
    return _Shot(seed=seed, height=height, width=width, K=K, pose=pose, heading=heading, camera=cam, sun=sun)


def build_geometry(seed: int, height: int = 512, width: int = 1024) -> SceneGeometry:
    """Lay out, rasterise and colour one street scene (the weather-independent part).

    Args:
        seed: Scene seed; the same seed always gives the same scene.
        height: Image rows (>= 16).
        width: Image columns (>= 16).

    Returns:
        The :class:`SceneGeometry`.

    Raises:
        ConfigError: For image sizes below 16 pixels.
    """
    if height < MIN_SIZE or width < MIN_SIZE:
        raise ConfigError(f"image size must be at least {MIN_SIZE}x{MIN_SIZE}, got {height}x{width}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFF, 0x5CE7E]))
    # The order of the steps below is the order of the draws from rng: keep it, or every scene changes.
    layout = sample_layout(rng)
    shot = _sample_shot(rng, seed, height, width, layout.ego_y)
    b = Builder(rng, shot.camera.center)
    crosswalk = rng.uniform(15.0, 55.0) if rng.random() < 0.4 else None
    build_ground(b, layout)
    build_markings(b, layout, crosswalk)
    build_backdrop(b, layout.far)
    _place_roadside(b, layout)
    _place_furniture(b, layout, crosswalk)
    _place_people(b, layout, crosswalk)
    _place_traffic(b, layout)
    _place_two_wheelers(b, layout)
    _add_ego_headlights(b, shot)
    raster = rasterize(b.prims, shot.camera, shot.sun)
    return _finish(shot, layout, raster, b.lights, rng)


def _place_roadside(b: Builder, layout: StreetLayout) -> None:
    """Buildings (with front-yard walls and trees) or a park on each side."""
    rng = b.rng
    for side in layout.sides:
        if side.kind == "buildings":
            build_buildings(b, side, layout.far)
            if side.yard > 0 and rng.random() < 0.7:
                build_edge(b, side, layout.far)
            for _ in range(int(rng.integers(0, 3)) if side.yard > 0 else 0):
                at = Placement(rng.uniform(0, 100), side.y(side.walk[1] + side.yard / 2), side.curb_h)
                tree(b, at, L_YARD)
        else:
            build_park(b, side)
            if rng.random() < 0.6:
                build_edge(b, side, layout.far)


def _place_furniture(b: Builder, layout: StreetLayout, crosswalk: float | None) -> None:
    """Street lamps, sidewalk trees, signs and traffic lights (at the crosswalk, if any)."""
    rng = b.rng
    sides = layout.sides
    lamp_sides = [s for s in sides if rng.random() < 0.65]
    for side in lamp_sides:
        x = rng.uniform(3.0, 20.0)
        spacing = rng.uniform(22.0, 35.0)
        while x < 180.0:
            street_lamp(b, x, side)
            x += spacing
    for side in sides:
        if rng.random() < 0.55:
            x = rng.uniform(2.0, 10.0)
            spacing = rng.uniform(7.0, 14.0)
            while x < 110.0:
                if rng.random() < 0.85:
                    tree(b, Placement(x, side.y(side.walk[0] + 0.9), side.curb_h), L_OBJECT)
                x += spacing
    for _ in range(int(rng.integers(1, 5))):
        side = sides[int(rng.integers(2))]
        x = rng.uniform(6.0, 90.0)
        traffic_sign(b, Placement(x, side.y(side.walk[0] + rng.uniform(0.2, 0.6)), side.curb_h))
    if crosswalk is not None or rng.random() < 0.3:
        xt = (crosswalk if crosswalk is not None else rng.uniform(20.0, 60.0)) - 0.8
        right = sides[0]
        over = layout.lanes[int(rng.integers(layout.lanes_right))] if rng.random() < 0.5 else None
        traffic_light(b, Placement(xt, right.y(right.walk[0] + 0.3), right.curb_h), over)
        if rng.random() < 0.6:
            left = sides[1]
            xl = xt + rng.uniform(8.0, 14.0)
            traffic_light(b, Placement(xl, left.y(left.walk[0] + 0.3), left.curb_h), None)


def _place_people(b: Builder, layout: StreetLayout, crosswalk: float | None) -> None:
    """Pedestrians on the sidewalks and on the crosswalk."""
    rng = b.rng
    for _ in range(int(rng.integers(0, 12))):
        side = layout.sides[int(rng.integers(2))]
        a, c = side.walk
        x = rng.uniform(3.0, 70.0)
        person(b, Placement(x, side.y(rng.uniform(a + 0.3, c - 0.2)), side.curb_h))
    if crosswalk is not None:
        for _ in range(int(rng.integers(0, 4))):
            x = crosswalk + rng.uniform(0.5, 3.0)
            person(b, Placement(x, rng.uniform(layout.y_right + 1.0, layout.y_left - 1.0), 0.0))


def _place_traffic(b: Builder, layout: StreetLayout) -> None:
    """Traffic in each lane (ours and oncoming; now and then a motorcycle), then parked cars."""
    rng = b.rng
    for k, ly in enumerate(layout.lanes):
        same_dir = k < layout.lanes_right
        heading_v = 0.0 if same_dir else math.pi
        x = rng.uniform(9.0, 25.0) if abs(ly) < 0.5 else rng.uniform(-4.0, 20.0)
        while x < 130.0:
            if rng.random() < 0.75:
                u = rng.random()
                kind = "truck" if u < 0.08 else "bus" if u < 0.13 else "car"
                if kind == "car" and rng.random() < 0.06 and same_dir:
                    at = Placement(x, ly + rng.uniform(-0.5, 0.5), heading=heading_v)
                    two_wheeler(b, at, motor=True, rider=True)
                else:
                    y = ly + rng.uniform(-0.25, 0.25)
                    at = Placement(x, y, heading=heading_v + rng.uniform(-0.03, 0.03))
                    # Moving vehicles drive with lights on (only the night rendering shows them).
                    vehicle(b, at, kind, layout.road, moving=True, lights_on=True)
            x += rng.uniform(10.0, 30.0)
    for side_k, width_p in enumerate(layout.parking):
        if width_p <= 0:
            continue
        ly = layout.y_right + width_p / 2 if side_k == 0 else layout.y_left - width_p / 2
        x = rng.uniform(-6.0, 8.0)
        while x < 110.0:
            length = 4.6
            if rng.random() < 0.7:
                y = ly + rng.uniform(-0.15, 0.15)
                heading = rng.uniform(-0.03, 0.03) + (0.0 if side_k == 0 or rng.random() < 0.5 else math.pi)
                vehicle(
                    b,
                    Placement(x + length / 2, y, heading=heading),
                    "car",
                    layout.road,
                    moving=False,
                    lights_on=False,
                )
            x += length + rng.uniform(0.6, 4.0)


def _place_two_wheelers(b: Builder, layout: StreetLayout) -> None:
    """Cyclists along the right edge of the road, bicycles parked on the sidewalks."""
    rng = b.rng
    for _ in range(int(rng.integers(0, 3))):
        x = rng.uniform(8.0, 60.0)
        at = Placement(x, layout.y_right + layout.parking[0] + 0.7, heading=rng.uniform(-0.05, 0.05))
        two_wheeler(b, at, motor=False, rider=True)
    for _ in range(int(rng.integers(0, 3))):
        side = layout.sides[int(rng.integers(2))]
        x = rng.uniform(4.0, 40.0)
        at = Placement(x, side.y(side.walk[0] + 0.5), side.curb_h, heading=rng.uniform(0.6, 2.5))
        two_wheeler(b, at, motor=False, rider=False)


def _add_ego_headlights(b: Builder, shot: _Shot) -> None:
    """Our own headlights (used at night)."""
    ego = shot.camera.center.copy()
    fwd = np.array([math.cos(shot.heading), math.sin(shot.heading), 0.0])
    for lat in (-0.7, 0.7):
        pos = np.array([ego[0] + 1.8 * fwd[0], ego[1] + lat + 1.8 * fwd[1], 0.7])
        b.lights.append(
            Light(
                pos, np.array([1.0, 0.96, 0.88]), 40.0, direction=fwd + np.array([0.0, 0.0, -0.06]), cone=0.95
            )
        )


def _sky_colors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    horizon = np.array([0.78, 0.84, 0.9]) + rng.uniform(-0.05, 0.05, 3)
    zenith = np.array([0.27, 0.47, 0.78]) + rng.uniform(-0.06, 0.06, 3)
    return np.clip(horizon, 0, 1), np.clip(zenith, 0, 1)


def _finish(
    shot: _Shot, layout: StreetLayout, raster: Raster, lights: list[Light], rng: np.random.Generator
) -> SceneGeometry:
    """Labels, depth and the textured clear-day colours (with a graded, cloudy sky) of a rasterised scene."""
    height, width, cam = shot.height, shot.width, shot.camera
    ids = raster.ids
    labels = raster.gather(raster.cls)
    depth = depth_map(raster, cam)
    rx, ry = cam.pixel_rays()
    distance = depth * np.sqrt(rx * rx + ry * ry + 1.0, dtype=np.float32)
    # Colours: per-channel gathers are much faster than one (N, 3) fancy index.
    amp = raster.gather(np.column_stack([raster.fine, raster.coarse]))
    tex = amp[..., 0] * noise_window("fine", height, width, rng)
    tex += amp[..., 1] * noise_window("coarse", height, width, rng)
    tex += 1.0
    base = raster.gather(raster.color)
    base = cv2.multiply(base, cv2.merge([tex, tex, tex]))  # numpy broadcasting over 3 channels is slow
    sky = ids == 0
    horizon = cam.horizon_rows()
    sky_h, sky_z = _sky_colors(rng)
    rows_with_sky = np.flatnonzero(sky.any(axis=1))
    if rows_with_sky.size:
        # Only the band of rows that holds sky is shaded (the sky is in the upper part of the image).
        r1 = int(rows_with_sky[-1]) + 1
        rows = np.arange(r1, dtype=np.float32)[:, None]
        t = np.clip((horizon[None, :] - rows) / np.float32(0.9 * height), 0.0, 1.0) ** np.float32(0.6)
        clouds = noise_window("coarse", height, width, rng)[:r1] * np.float32(0.5) - np.float32(
            rng.uniform(0.0, 0.6)
        )
        np.clip(clouds, 0.0, 1.0, out=clouds)
        clouds *= np.float32(rng.uniform(0.3, 1.0))
        band = base[:r1]
        mask = sky[:r1]
        cloud_col = np.array([0.93, 0.93, 0.95], np.float32)
        for k in range(3):
            col = (sky_h[k] + (sky_z[k] - sky_h[k]) * t) * (1.0 - clouds) + cloud_col[k] * clouds
            np.copyto(band[..., k], col.astype(np.float32), where=mask)
    np.clip(base, 0.0, 1.0, out=base)
    return SceneGeometry(
        seed=int(shot.seed),
        height=height,
        width=width,
        K=shot.K,
        pose=shot.pose,
        camera=cam,
        raster=raster,
        labels=labels,
        depth=depth,
        distance=distance,
        base=base,
        sky=sky,
        horizon=horizon,
        lights=lights,
        lanes=list(layout.lanes),
        road_edges=layout.road,
        sun=shot.sun,
        sky_colors=(sky_h, sky_z),
    )


__all__ = ["IGNORE", "SKY_DEPTH", "Light", "SceneGeometry", "build_geometry", "sample_pose"]
