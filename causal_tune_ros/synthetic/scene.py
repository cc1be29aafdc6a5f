"""Procedural street scenes: layout, ground-anchored 3-D objects, exact labels, depth and the clear-day image.

A scene is a straight street seen from a car's front camera: lanes with markings, curbs and sidewalks,
verges, buildings with windows and roofs (or a park), street lamps, signs, traffic lights, trees, parked and
moving vehicles, pedestrians, cyclists and a distant skyline. Everything is a planar polygon (or polyline)
in a street frame (x along the road, y to the left, z up) projected through a pinhole camera; see
:mod:`causal_tune_ros.synthetic.raster` for how labels and depth stay pixel-exact. All randomness comes from
one ``numpy.random.Generator`` seeded by the scene seed, so a seed always gives the same scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from causal_tune_ros.synthetic.camera import Camera, intrinsics
from causal_tune_ros.synthetic.noise import noise_window
from causal_tune_ros.synthetic.raster import (
    SKY_DEPTH,
    Primitive,
    Raster,
    depth_map,
    rasterize,
)

# Train ids (config/classes.yaml, Cityscapes order).
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN = 0, 1, 2, 3, 4, 5, 6, 7
VEGETATION, TERRAIN, SKY, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = range(8, 19)
IGNORE = 255

# Drawing layers, far-to-near buckets in which long structures never hide nearer compact objects.
L_GROUND, L_MARKING, L_BACKDROP, L_BACK_ROW, L_BUILDING, L_YARD, L_EDGE, L_OBJECT = range(8)

_UP = np.array([0.0, 0.0, 1.0])
_HEXA_NAMES = ("bottom", "top", "s0", "s1", "s2", "s3")
_HEXA_FACES = np.array([[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]])

_CAR_COLORS = [
    (0.85, 0.85, 0.86),
    (0.08, 0.08, 0.09),
    (0.55, 0.56, 0.58),
    (0.32, 0.33, 0.35),
    (0.6, 0.08, 0.08),
    (0.1, 0.2, 0.5),
    (0.12, 0.3, 0.18),
    (0.7, 0.65, 0.5),
    (0.85, 0.6, 0.1),
    (0.25, 0.45, 0.7),
]
_FACADE_COLORS = [
    (0.82, 0.74, 0.6),
    (0.62, 0.32, 0.24),
    (0.62, 0.62, 0.6),
    (0.86, 0.85, 0.8),
    (0.8, 0.62, 0.38),
    (0.55, 0.6, 0.65),
    (0.7, 0.72, 0.6),
    (0.45, 0.42, 0.4),
    (0.78, 0.55, 0.5),
]
_CLOTHES = [
    (0.1, 0.1, 0.12),
    (0.15, 0.2, 0.4),
    (0.5, 0.1, 0.1),
    (0.8, 0.8, 0.78),
    (0.3, 0.35, 0.3),
    (0.6, 0.5, 0.35),
    (0.2, 0.3, 0.55),
    (0.7, 0.45, 0.1),
    (0.45, 0.45, 0.48),
]
_SKIN = [(0.87, 0.7, 0.58), (0.75, 0.55, 0.42), (0.55, 0.38, 0.27), (0.36, 0.24, 0.17)]


@dataclass
class Light:
    """A light source for night renderings.

    Attributes:
        position: World position (m).
        color: RGB colour.
        power: Relative strength (irradiance ``power / d^2``).
        direction: Unit beam axis for spot lights (``None``: omnidirectional).
        cone: Cosine of the spot's half angle.
    """

    position: np.ndarray
    color: np.ndarray
    power: float
    direction: np.ndarray | None = None
    cone: float = 0.0


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


class _Builder:
    """Collects primitives; helpers build common shapes in the street frame."""

    def __init__(self, rng: np.random.Generator, camera_center: np.ndarray) -> None:
        self.rng = rng
        self.prims: list[Primitive] = []
        self.lights: list[Light] = []
        self.cam_c = camera_center

    def add(self, verts: np.ndarray | list, cls: int, color, layer: int, dist: float = 0.0, **kw) -> None:
        """Append one primitive (see :class:`Primitive` for the keyword arguments).

        A one-sided primitive (``normal`` given) that faces away from the camera is dropped here already.
        """
        verts = np.asarray(verts, np.float64)
        normal = kw.get("normal")
        if normal is not None:
            n, v, c = normal, verts[0], self.cam_c
            if n[0] * (c[0] - v[0]) + n[1] * (c[1] - v[1]) + n[2] * (c[2] - v[2]) <= 0.0:
                return
        self.prims.append(
            Primitive(
                verts=verts,
                cls=cls,
                color=np.asarray(color, np.float32),
                layer=layer,
                dist=dist,
                seq=len(self.prims),
                **kw,
            )
        )

    def add_group(
        self, polys: list[np.ndarray], cls: int, color, layer: int, dist: float = 0.0, **kw
    ) -> None:
        """Append several coplanar polygons drawn with one id (same class, colour and plane)."""
        self.add(np.concatenate(polys), cls, color, layer, dist, sizes=tuple(len(p) for p in polys), **kw)

    def jitter(self, color, amount: float = 0.06) -> np.ndarray:
        """Colour with a small random per-channel and brightness variation."""
        c = np.asarray(color, np.float64)
        c = c * self.rng.uniform(1 - amount * 2, 1 + amount * 2) + self.rng.uniform(-amount, amount, 3)
        return np.clip(c, 0.0, 1.0)

    def distance(self, x: float, y: float) -> float:
        """Horizontal distance from the camera to a street-frame point (drawing order key)."""
        return math.hypot(x - self.cam_c[0], y - self.cam_c[1])

    def solid(self, v8: np.ndarray, cls: int, colors, layer: int, dist: float, **kw) -> None:
        """A convex hexahedron (bottom 4 then top 4 corners); only faces turned to the camera are kept.

        ``colors`` is one colour or a dict ``{face: colour}`` with faces ``bottom top s0 s1 s2 s3`` (and
        ``default``); a face whose colour is ``None`` is left out.
        """
        quads = v8[_HEXA_FACES]  # (6, 4, 3)
        e1 = quads[:, 1] - quads[:, 0]
        e2 = quads[:, 2] - quads[:, 0]
        normals = np.cross(e1, e2)
        lengths = np.linalg.norm(normals, axis=1)
        centroid = v8.mean(axis=0)
        outward = np.einsum("ij,ij->i", normals, quads.mean(axis=1) - centroid)
        normals *= np.where(outward < 0.0, -1.0, 1.0)[:, None] / np.maximum(lengths, 1e-12)[:, None]
        facing = np.einsum("ij,ij->i", normals, self.cam_c - quads[:, 0])
        for f in np.nonzero((facing > 0.0) & (lengths > 1e-9))[0]:
            name = _HEXA_NAMES[f]
            color = colors.get(name, colors.get("default")) if isinstance(colors, dict) else colors
            if color is None:
                continue
            face_kw = dict(kw)
            if normals[f, 2] > 0.5:
                face_kw.setdefault("snow", 0.9)  # snow settles on up-facing faces (roofs, car tops)
            self.add(quads[f], cls, color, layer, dist, normal=normals[f], **face_kw)

    def billboard(self, base: np.ndarray, shape: np.ndarray, cls: int, color, layer: int, dist: float, **kw):
        """A flat 2-D shape ``(a, z)`` standing at ``base``, turned to face the camera."""
        view = base[:2] - self.cam_c[:2]
        norm = float(np.hypot(*view)) or 1.0
        e = np.array([view[1], -view[0], 0.0]) / norm  # horizontal, perpendicular to the view direction
        verts = base + shape[:, :1] * e + shape[:, 1:2] * _UP
        self.add(verts, cls, color, layer, dist, **kw)


def _box(
    cx: float, cy: float, heading: float, length: float, width: float, z0: float, z1: float
) -> np.ndarray:
    """8 corners of an oriented box (bottom ccw from above, then top)."""
    c, s = math.cos(heading), math.sin(heading)
    local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * [length / 2, width / 2]
    xy = local @ np.array([[c, s], [-s, c]]) + [cx, cy]
    bottom = np.column_stack([xy, np.full(4, z0)])
    top = np.column_stack([xy, np.full(4, z1)])
    return np.vstack([bottom, top])


def _frustum(cx, cy, heading, bottom_x, top_x, bottom_w, top_w, z0, z1) -> np.ndarray:
    """8 corners of a car cabin: bottom rectangle [x0, x1] x +-w/2 at z0, smaller top at z1 (local x fwd)."""
    c, s = math.cos(heading), math.sin(heading)
    rot = np.array([[c, s], [-s, c]])

    def rect(xr, w, z):
        loc = np.array([[xr[0], -w / 2], [xr[1], -w / 2], [xr[1], w / 2], [xr[0], w / 2]])
        return np.column_stack([loc @ rot + [cx, cy], np.full(4, z)])

    return np.vstack([rect(bottom_x, bottom_w, z0), rect(top_x, top_w, z1)])


@lru_cache(maxsize=32)
def _unit_circle(n: int) -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    circle = np.column_stack([np.cos(t), np.sin(t)])
    circle.setflags(write=False)
    return circle


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 14, jitter=None) -> np.ndarray:
    """``(n, 2)`` points of an ellipse (radii optionally scaled per point by ``jitter``)."""
    pts = _unit_circle(n) * (rx, ry)
    if jitter is not None:
        pts = pts * np.asarray(jitter)[:, None]
    return pts + np.array([cx, cy])


def _local_to_world(cx, cy, heading, pts: np.ndarray) -> np.ndarray:
    """Local (x fwd, y left, z up) points of an object at (cx, cy) with a heading -> world points."""
    c, s = math.cos(heading), math.sin(heading)
    x = cx + c * pts[:, 0] - s * pts[:, 1]
    y = cy + s * pts[:, 0] + c * pts[:, 1]
    return np.column_stack([x, y, pts[:, 2]])


# --------------------------------------------------------------------------------------------- layout
@dataclass
class _Side:
    sign: float  # +1 left of the road, -1 right
    edge: float  # lateral position of the road edge (curb line)
    curb_h: float
    verge: float  # grass strip between curb and sidewalk (0: none)
    sidewalk: float
    yard: float  # terrain between sidewalk and buildings (0: none)
    kind: str  # "buildings" | "park"

    def y(self, offset: float) -> float:
        """Lateral position ``offset`` metres away from the road edge on this side."""
        return self.edge + self.sign * offset

    @property
    def walk(self) -> tuple[float, float]:
        a = 0.25 + self.verge
        return a, a + self.sidewalk

    @property
    def building_line(self) -> float:
        return self.walk[1] + self.yard


def _ground_quad(x0, x1, y0, y1, z=0.0) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])


def _build_ground(b: _Builder, road: tuple[float, float], sides: list[_Side], far: float) -> None:
    rng = b.rng
    x0, x1 = -40.0, far
    grass = b.jitter((0.33, 0.42, 0.2) if rng.random() < 0.7 else (0.48, 0.44, 0.3), 0.05)
    b.add(_ground_quad(x0, x1, -800, 800), TERRAIN, grass, L_GROUND, fine=0.12, coarse=0.18, snow=1.0)
    asphalt = b.jitter(np.full(3, rng.uniform(0.28, 0.42)) + np.array([0.0, 0.0, 0.015]), 0.02)
    b.add(_ground_quad(x0, x1, road[0], road[1]), ROAD, asphalt, L_GROUND, fine=0.07, coarse=0.06, snow=0.7)
    walk_col = b.jitter(
        (0.62, 0.6, 0.57) if rng.random() < 0.6 else (0.62, 0.52, 0.47), 0.05
    )  # grey concrete or reddish pavers
    curb_col = b.jitter((0.66, 0.66, 0.64), 0.03)

    def grass_strip(y0: float, y1: float, z: float) -> None:  # verge and yard: the same terrain
        b.add(_ground_quad(x0, x1, y0, y1, z), TERRAIN, grass, L_GROUND, fine=0.12, coarse=0.2, snow=1.0)

    for s in sides:
        h = s.curb_h
        # Curb: top strip and the vertical face towards the road (sidewalk class, as Cityscapes labels curbs).
        b.add(_ground_quad(x0, x1, s.y(0.0), s.y(0.25), h), SIDEWALK, curb_col, L_GROUND, fine=0.05, snow=0.9)
        face = np.array([[x0, s.edge, 0.0], [x1, s.edge, 0.0], [x1, s.edge, h], [x0, s.edge, h]])
        b.add(face, SIDEWALK, curb_col * 0.85, L_MARKING, normal=np.array([0.0, -s.sign, 0.0]), fine=0.05)
        if s.verge > 0:
            grass_strip(s.y(0.25), s.y(0.25 + s.verge), h)
        a, c = s.walk
        b.add(
            _ground_quad(x0, x1, s.y(a), s.y(c), h),
            SIDEWALK,
            walk_col,
            L_GROUND,
            fine=0.06,
            coarse=0.05,
            snow=0.95,
        )
        if s.yard > 0:
            grass_strip(s.y(c), s.y(c + s.yard), h)


def _build_markings(
    b: _Builder,
    lanes_right: int,
    lanes_left: int,
    lane_w: float,
    y_right: float,
    parking: tuple[float, float],
    crosswalk: float | None,
) -> None:
    rng = b.rng
    white = b.jitter((0.88, 0.88, 0.86), 0.03)
    yellow = np.array([0.86, 0.7, 0.18])
    kw = dict(fine=0.1, coarse=0.08, snow=0.7, shade=True)
    dash, gap = rng.uniform(2.5, 4.0), rng.uniform(5.0, 9.0)
    phase = rng.uniform(0, dash + gap)
    mw = rng.uniform(0.11, 0.16)
    lane_start = y_right + parking[0]

    def dashed(y: float, color) -> None:
        x = -phase
        while x < 160.0:
            b.add(_ground_quad(x, x + dash, y - mw / 2, y + mw / 2), ROAD, color, L_MARKING, **kw)
            x += dash + gap

    def solid(y: float, color) -> None:
        b.add(_ground_quad(-40.0, 260.0, y - mw / 2, y + mw / 2), ROAD, color, L_MARKING, **kw)

    for k in range(1, lanes_right):
        dashed(lane_start + k * lane_w, white)
    center = lane_start + lanes_right * lane_w
    if lanes_left > 0:
        style = rng.random()
        if style < 0.45:
            solid(center, white)
        elif style < 0.75:
            dashed(center, white)
        else:
            solid(center - 0.12, yellow)
            solid(center + 0.12, yellow)
        for k in range(1, lanes_left):
            dashed(center + k * lane_w, white)
    if rng.random() < 0.6:
        solid(lane_start + 0.3, white)
        solid(center + lanes_left * lane_w - 0.3, white)
    if crosswalk is not None:
        road_lo, road_hi = y_right, center + lanes_left * lane_w + parking[1]
        y = road_lo + 0.4
        stripe = rng.uniform(0.45, 0.6)
        length = rng.uniform(3.0, 4.0)
        while y + stripe < road_hi - 0.3:
            b.add(_ground_quad(crosswalk, crosswalk + length, y, y + stripe), ROAD, white, L_MARKING, **kw)
            y += 2 * stripe
        stop = crosswalk - rng.uniform(1.5, 3.0)
        b.add(_ground_quad(stop - 0.4, stop, lane_start, center), ROAD, white, L_MARKING, **kw)


# --------------------------------------------------------------------------------------------- buildings
def _building(
    b: _Builder, side: _Side, s: float, length: float, storefront_street: bool, tall: float
) -> None:
    """One building block on the street front, from ``s`` to ``s + length`` along the road."""
    rng = b.rng
    line = side.building_line
    normal_road = np.array([0.0, -side.sign, 0.0])  # facade normal, towards the road
    setback = rng.uniform(0.0, 0.8) if rng.random() < 0.3 else 0.0
    y_face = side.y(line + setback)
    depth = rng.uniform(10.0, 20.0)
    height = float(np.clip(rng.uniform(6.0, 24.0) * tall, 4.0, 45.0))
    facade = b.jitter(_FACADE_COLORS[rng.integers(len(_FACADE_COLORS))], 0.06)
    dist = b.distance(float(np.clip(b.cam_c[0], s, s + length)), y_face)  # nearest point: painter's key
    y_back = y_face + side.sign * depth
    v8 = np.array(
        [
            [s, y_face, 0.0],
            [s + length, y_face, 0.0],
            [s + length, y_back, 0.0],
            [s, y_back, 0.0],
            [s, y_face, height],
            [s + length, y_face, height],
            [s + length, y_back, height],
            [s, y_back, height],
        ]
    )
    b.solid(v8, BUILDING, {"default": facade, "bottom": None}, L_BUILDING, dist, fine=0.03, coarse=0.06)
    near = s < 130.0
    yw = y_face - side.sign * 0.03  # just in front of the facade, towards the road
    # Roof: a cornice band, or a pitched roof rising away from the street.
    if rng.random() < 0.4:
        rise = rng.uniform(2.0, 5.0)
        roof_col = b.jitter((0.5, 0.22, 0.16) if rng.random() < 0.6 else (0.25, 0.26, 0.28), 0.05)
        ridge = y_face + side.sign * depth / 2
        slope = np.array(
            [
                [s, y_face, height],
                [s + length, y_face, height],
                [s + length, ridge, height + rise],
                [s, ridge, height + rise],
            ]
        )
        n = np.array([0.0, -side.sign * rise, depth / 2])
        b.add(
            slope,
            BUILDING,
            roof_col,
            L_BUILDING,
            dist,
            normal=n / np.linalg.norm(n),
            fine=0.05,
            coarse=0.05,
            snow=1.0,
        )
    else:
        band = b.jitter(facade * 0.8, 0.03)
        quad = np.array(
            [[s, yw, height - 0.5], [s + length, yw, height - 0.5], [s + length, yw, height], [s, yw, height]]
        )
        b.add(quad, BUILDING, band, L_BUILDING, dist, normal=normal_road, fine=0.02)
    ground_floor = 0.0
    if storefront_street and rng.random() < 0.7 and height > 5.0:
        ground_floor = rng.uniform(3.2, 4.2)
        glass = b.jitter((0.16, 0.19, 0.22), 0.05)
        sign_col = b.jitter(_CAR_COLORS[rng.integers(len(_CAR_COLORS))], 0.1)
        x0, x1 = s + 0.5, s + length - 0.5
        shop = np.array(
            [[x0, yw, 0.3], [x1, yw, 0.3], [x1, yw, ground_floor - 0.9], [x0, yw, ground_floor - 0.9]]
        )
        lit = np.array([1.0, 0.9, 0.7]) * rng.uniform(0.5, 1.0) if rng.random() < 0.6 else None
        b.add(
            shop,
            BUILDING,
            glass,
            L_BUILDING,
            dist,
            normal=normal_road,
            fine=0.02,
            coarse=0.08,
            shade=False,
            emissive=lit,
        )
        board = np.array(
            [
                [x0, yw, ground_floor - 0.8],
                [x1, yw, ground_floor - 0.8],
                [x1, yw, ground_floor - 0.2],
                [x0, yw, ground_floor - 0.2],
            ]
        )
        b.add(board, BUILDING, sign_col, L_BUILDING, dist, normal=normal_road, fine=0.02)
    if not near:
        return
    floor_h = rng.uniform(2.8, 3.4)
    spacing = rng.uniform(2.2, 3.6)
    win_w = min(spacing * rng.uniform(0.4, 0.65), 1.6)
    win_h = floor_h * rng.uniform(0.4, 0.6)
    glass = b.jitter((0.18, 0.22, 0.27) if rng.random() < 0.7 else (0.35, 0.42, 0.5), 0.05)
    frame = rng.random() < 0.5
    z = max(ground_floor, 0.0) + floor_h * 0.35 + (0.0 if ground_floor else 0.5)
    ncols = int((length - 1.0) // spacing)
    if ncols <= 0:
        return
    x_first = s + (length - (ncols - 1) * spacing) / 2
    # Windows are drawn as a few multi-polygon primitives per facade (frames, two glass tints, lit
    # windows): one id each keeps the primitive count, and so the rasterising time, small.
    rows = np.arange(z, height - 0.8 - win_h, floor_h)
    if len(rows) == 0:
        return
    xc = np.repeat((x_first + np.arange(ncols) * spacing)[None, :], len(rows), axis=0).ravel()
    zc = np.repeat(rows, ncols)
    quads = np.empty((len(xc), 4, 3))
    quads[:, :, 1] = yw
    quads[:, [0, 3], 0] = (xc - win_w / 2)[:, None]
    quads[:, [1, 2], 0] = (xc + win_w / 2)[:, None]
    quads[:, [0, 1], 2] = zc[:, None]
    quads[:, [2, 3], 2] = (zc + win_h)[:, None]
    u = rng.random(len(xc))
    groups = {"lit": quads[u < 0.3], "glass0": quads[(u >= 0.3) & (u < 0.65)], "glass1": quads[u >= 0.65]}
    if frame:
        grow = np.array([[-0.1, 0, -0.1], [0.1, 0, -0.1], [0.1, 0, 0.1], [-0.1, 0, 0.1]])
        groups = {"frame": quads + grow, **groups}
    lit = np.array([1.0, 0.82, 0.5]) * rng.uniform(0.5, 0.9)
    for name, polys in groups.items():
        if not len(polys):
            continue
        col = facade * 1.15 if name == "frame" else glass * (1.2 if name == "glass1" else 1.0)
        b.add_group(
            list(polys),
            BUILDING,
            col,
            L_BUILDING,
            dist,
            normal=normal_road,
            fine=0.02,
            coarse=0.02 if name == "frame" else 0.12,
            shade=name == "frame",
            emissive=lit if name == "lit" else None,
        )


def _build_buildings(b: _Builder, side: _Side, far: float) -> None:
    rng = b.rng
    s = rng.uniform(-30.0, -5.0)
    line = side.building_line
    storefront_street = rng.random() < 0.5
    tall = rng.uniform(0.6, 1.4)
    while s < far - 20.0:
        length = rng.uniform(8.0, 30.0)
        if rng.random() < 0.15:
            s += rng.uniform(3.0, 9.0)  # an alley: side walls and the row behind show through
        _building(b, side, s, length, storefront_street, tall)
        s += length
    # Taller blocks behind the first row, seen above it and through alleys.
    if rng.random() < 0.6:
        s = rng.uniform(-10.0, 20.0)
        while s < far - 40.0:
            length = rng.uniform(15.0, 40.0)
            off = line + rng.uniform(22.0, 40.0)
            height = rng.uniform(15.0, 45.0)
            y0, y1 = side.y(off), side.y(off + rng.uniform(10.0, 20.0))
            v8 = np.array(
                [
                    [s, y0, 0],
                    [s + length, y0, 0],
                    [s + length, y1, 0],
                    [s, y1, 0],
                    [s, y0, height],
                    [s + length, y0, height],
                    [s + length, y1, height],
                    [s, y1, height],
                ],
                np.float64,
            )
            col = b.jitter(_FACADE_COLORS[rng.integers(len(_FACADE_COLORS))], 0.06) * 0.9
            b.solid(
                v8,
                BUILDING,
                {"default": col, "bottom": None},
                L_BACK_ROW,
                b.distance(float(np.clip(b.cam_c[0], s, s + length)), y0),
                coarse=0.05,
            )
            s += length + rng.uniform(0.0, 15.0)


def _tree(b: _Builder, x: float, y: float, z: float, layer: int, scale: float = 1.0) -> None:
    rng = b.rng
    dist = b.distance(x, y)
    trunk_h = rng.uniform(2.2, 3.5) * scale
    trunk_w = rng.uniform(0.18, 0.3) * scale
    bark = b.jitter((0.3, 0.23, 0.16), 0.05)
    base = np.array([x, y, z])
    trunk = np.array(
        [
            [-trunk_w / 2, 0],
            [trunk_w / 2, 0],
            [trunk_w * 0.35, trunk_h + 0.5],
            [-trunk_w * 0.35, trunk_h + 0.5],
        ]
    )
    b.billboard(base, trunk, VEGETATION, bark, layer, dist, fine=0.08, snow=0.2)
    radius = rng.uniform(1.4, 3.0) * scale
    leaf = b.jitter((0.2, 0.34, 0.1) if rng.random() < 0.6 else (0.3, 0.42, 0.14), 0.05)
    for _ in range(int(rng.integers(3, 6))):
        cx = rng.uniform(-0.5, 0.5) * radius
        cz = trunk_h + radius * rng.uniform(0.6, 1.2)
        r = radius * rng.uniform(0.55, 0.85)
        shape = _ellipse(cx, cz, r, r * rng.uniform(0.8, 1.1), 14, rng.uniform(0.8, 1.15, 14))
        b.billboard(
            base,
            shape,
            VEGETATION,
            leaf * rng.uniform(0.85, 1.15),
            layer,
            dist,
            fine=0.2,
            coarse=0.35,
            snow=0.6,
        )


def _build_park(b: _Builder, side: _Side) -> None:
    rng = b.rng
    line = side.building_line
    for _ in range(int(rng.integers(10, 26))):
        x = rng.uniform(-5.0, 160.0)
        off = line + rng.uniform(1.5, 45.0)
        _tree(b, x, side.y(off), 0.0 if off > line + 1 else side.curb_h, L_YARD, rng.uniform(0.9, 1.6))
    for _ in range(int(rng.integers(3, 10))):  # bushes
        x = rng.uniform(0.0, 120.0)
        off = line + rng.uniform(0.5, 15.0)
        r = rng.uniform(0.5, 1.2)
        shape = _ellipse(0.0, r * 0.6, r * 1.4, r * 0.8, 12, rng.uniform(0.85, 1.15, 12))
        shape[:, 1] = np.maximum(shape[:, 1], 0.0)
        b.billboard(
            np.array([x, side.y(off), 0.0]),
            shape,
            VEGETATION,
            b.jitter((0.22, 0.36, 0.12)),
            L_YARD,
            b.distance(x, side.y(off)),
            fine=0.2,
            coarse=0.3,
            snow=0.7,
        )


def _build_edge(b: _Builder, side: _Side, far: float) -> None:
    """Walls, fences and hedges along the outer edge of the sidewalk (front yards and parks)."""
    rng = b.rng
    kind = rng.choice(["wall", "fence", "hedge"])
    yl = side.y(side.walk[1] + 0.1)
    x = rng.uniform(-10.0, 20.0)
    normal = np.array([0.0, -side.sign, 0.0])
    while x < min(far, 200.0):
        length = rng.uniform(10.0, 40.0)
        h = {"wall": rng.uniform(0.6, 2.0), "fence": rng.uniform(1.0, 1.8), "hedge": rng.uniform(0.8, 1.8)}[
            kind
        ]
        dist = b.distance(float(np.clip(b.cam_c[0], x, x + length)), yl)
        if kind == "hedge":
            v8 = _box(x + length / 2, yl + side.sign * 0.4, 0.0, length, 0.8, side.curb_h, side.curb_h + h)
            b.solid(
                v8,
                VEGETATION,
                {"default": b.jitter((0.18, 0.32, 0.1)), "bottom": None},
                L_EDGE,
                dist,
                fine=0.2,
                coarse=0.3,
                snow=0.8,
            )
        elif kind == "wall":
            v8 = _box(x + length / 2, yl + side.sign * 0.15, 0.0, length, 0.3, side.curb_h, side.curb_h + h)
            b.solid(
                v8,
                WALL,
                {"default": b.jitter((0.6, 0.58, 0.55)), "bottom": None},
                L_EDGE,
                dist,
                fine=0.05,
                coarse=0.08,
            )
        else:
            quad = np.array(
                [
                    [x, yl, side.curb_h],
                    [x + length, yl, side.curb_h],
                    [x + length, yl, side.curb_h + h],
                    [x, yl, side.curb_h + h],
                ]
            )
            col = b.jitter((0.4, 0.38, 0.33) if rng.random() < 0.5 else (0.25, 0.3, 0.25))
            b.add(quad, FENCE, col, L_EDGE, dist, fine=0.25, coarse=0.05, snow=0.2)
            # Darker bars (still fence: Cityscapes labels the whole fence region).
            for xb in np.arange(x, x + length, rng.uniform(1.5, 2.5)):
                bar = np.array(
                    [
                        [xb, yl + normal[1] * 0.02, side.curb_h],
                        [xb + 0.08, yl + normal[1] * 0.02, side.curb_h],
                        [xb + 0.08, yl + normal[1] * 0.02, side.curb_h + h + 0.1],
                        [xb, yl + normal[1] * 0.02, side.curb_h + h + 0.1],
                    ]
                )
                b.add(bar, FENCE, col * 0.6, L_EDGE, dist, normal=normal, fine=0.03)
        x += length + (rng.uniform(2.0, 12.0) if rng.random() < 0.5 else 0.0)


def _build_backdrop(b: _Builder, x: float) -> None:
    """Distant skyline and tree line that close the street and hide the horizon gap."""
    rng = b.rng
    y = -900.0
    while y < 900.0:
        w = rng.uniform(15.0, 70.0)
        if rng.random() < 0.55:
            h = rng.uniform(10.0, 70.0)
            col = b.jitter((0.55, 0.57, 0.6), 0.08)
            quad = np.array([[x, y, 0.0], [x, y + w, 0.0], [x, y + w, h], [x, y, h]])
            b.add(quad, BUILDING, col, L_BACKDROP, x, fine=0.02, coarse=0.05, normal=np.array([-1.0, 0, 0]))
        else:
            n = 16
            ys = np.linspace(y, y + w, n)
            tops = rng.uniform(8.0, 20.0) + rng.uniform(-3.0, 3.0, n)
            poly = np.vstack([np.column_stack([ys, tops]), [[y + w, 0.0], [y, 0.0]]])
            verts = np.column_stack([np.full(len(poly), x + 5.0), poly])
            b.add(
                verts,
                VEGETATION,
                b.jitter((0.22, 0.32, 0.16)),
                L_BACKDROP,
                x + 5.0,
                fine=0.1,
                coarse=0.3,
                normal=np.array([-1.0, 0, 0]),
                snow=0.6,
            )
        y += w


# --------------------------------------------------------------------------------------------- objects
def _street_lamp(b: _Builder, x: float, side: _Side) -> None:
    rng = b.rng
    y = side.y(0.6)
    dist = b.distance(x, y)
    h = rng.uniform(6.0, 9.0)
    col = b.jitter((0.42, 0.43, 0.45) if rng.random() < 0.7 else (0.15, 0.17, 0.16), 0.04)
    b.solid(
        _box(x, y, 0.0, 0.16, 0.16, side.curb_h, h), POLE, {"default": col, "bottom": None}, L_OBJECT, dist
    )
    arm = rng.uniform(1.2, 2.2)
    ya = y - side.sign * arm
    ym = (y + ya) / 2
    b.solid(_box(x, ym, 0.0, 0.1, arm, h - 0.12, h), POLE, {"default": col, "bottom": None}, L_OBJECT, dist)
    lamp_col = np.array([1.0, 0.72, 0.38]) if rng.random() < 0.5 else np.array([0.95, 0.95, 1.0])
    head = _box(x, ya, 0.0, 0.35, 0.6, h - 0.3, h - 0.05)
    b.solid(
        head,
        POLE,
        {"default": col * 0.8, "bottom": np.array([0.9, 0.9, 0.85])},
        L_OBJECT,
        dist,
        emissive=lamp_col * 1.5,
    )
    b.lights.append(Light(np.array([x, ya, h - 0.4]), lamp_col, power=rng.uniform(6.0, 12.0)))


def _sign(b: _Builder, x: float, y: float, z0: float) -> None:
    rng = b.rng
    dist = b.distance(x, y)
    h = rng.uniform(2.1, 2.8)
    pole_col = b.jitter((0.55, 0.56, 0.58), 0.04)
    b.solid(
        _box(x, y, 0.0, 0.07, 0.07, z0, z0 + h), POLE, {"default": pole_col, "bottom": None}, L_OBJECT, dist
    )
    r = rng.uniform(0.3, 0.42)
    zc = z0 + h + r * 0.9
    kind = rng.integers(5)
    red, white, blue = np.array([0.75, 0.08, 0.08]), np.array([0.92, 0.92, 0.9]), np.array([0.1, 0.3, 0.7])
    normal = np.array([-1.0, 0.0, 0.0])  # faces oncoming (our) traffic
    xs = x - 0.06

    def plate(shape2d: np.ndarray, color, dx: float) -> None:
        verts = np.column_stack([np.full(len(shape2d), xs - dx), y + shape2d[:, 0], zc + shape2d[:, 1]])
        b.add(verts, TRAFFIC_SIGN, color, L_OBJECT, dist, normal=normal, fine=0.02, shade=False)

    if kind == 0:  # prohibition / speed limit: red ring, white disc
        plate(_ellipse(0, 0, r, r, 20), red, 0.0)
        plate(_ellipse(0, 0, r * 0.75, r * 0.75, 20), white, 0.01)
    elif kind == 1:  # warning triangle
        tri = np.array([[0.0, r * 1.1], [r * 1.1, -r * 0.8], [-r * 1.1, -r * 0.8]])
        plate(tri, red, 0.0)
        plate(tri * 0.7, white, 0.01)
    elif kind == 2:  # mandatory: blue disc with a white arrow-ish bar
        plate(_ellipse(0, 0, r, r, 20), blue, 0.0)
        plate(np.array([[-0.05, -r * 0.6], [0.05, -r * 0.6], [0.05, r * 0.6], [-0.05, r * 0.6]]), white, 0.01)
    elif kind == 3:  # stop octagon
        plate(_ellipse(0, 0, r, r, 8), red, 0.0)
        plate(np.array([[-r * 0.6, -0.06], [r * 0.6, -0.06], [r * 0.6, 0.06], [-r * 0.6, 0.06]]), white, 0.01)
    else:  # information rectangle
        w, hh = r * rng.uniform(1.2, 2.0), r * 0.8
        col = blue if rng.random() < 0.5 else np.array([0.1, 0.45, 0.2])
        plate(np.array([[-w, -hh], [w, -hh], [w, hh], [-w, hh]]), col, 0.0)
        plate(np.array([[-w * 0.8, -0.04], [w * 0.8, -0.04], [w * 0.8, 0.04], [-w * 0.8, 0.04]]), white, 0.01)


def _traffic_light(b: _Builder, x: float, y: float, z0: float, over_road: float | None) -> None:
    rng = b.rng
    dist = b.distance(x, y)
    h = rng.uniform(2.6, 3.4)
    pole_col = b.jitter((0.3, 0.31, 0.33), 0.05)
    b.solid(
        _box(x, y, 0.0, 0.14, 0.14, z0, z0 + h + 0.9),
        POLE,
        {"default": pole_col, "bottom": None},
        L_OBJECT,
        dist,
    )
    housings = [(y, z0 + h)]
    if over_road is not None:
        zarm = z0 + h + 2.4
        b.solid(
            _box(x, (y + over_road) / 2, 0.0, 0.12, abs(over_road - y), zarm, zarm + 0.15),
            POLE,
            {"default": pole_col, "bottom": None},
            L_OBJECT,
            dist,
        )
        b.solid(
            _box(x, y, 0.0, 0.14, 0.14, z0 + h + 0.9, zarm + 0.15),
            POLE,
            {"default": pole_col},
            L_OBJECT,
            dist,
        )
        housings.append((over_road, zarm - 1.0))
    state = rng.integers(3)
    for yh, zh in housings:
        box = _box(x - 0.15, yh, 0.0, 0.25, 0.34, zh, zh + 0.95)
        b.solid(
            box,
            TRAFFIC_LIGHT,
            {"default": np.array([0.07, 0.07, 0.08]), "bottom": None},
            L_OBJECT,
            dist,
            fine=0.02,
        )
        for k, lamp in enumerate(((0.9, 0.1, 0.05), (0.95, 0.65, 0.05), (0.1, 0.85, 0.35))):
            on = k == state
            zc = zh + 0.78 - k * 0.3
            disc = _ellipse(yh, zc, 0.1, 0.1, 12)
            verts = np.column_stack([np.full(12, x - 0.28), disc])
            col = np.array(lamp) * (1.0 if on else 0.25)
            b.add(
                verts,
                TRAFFIC_LIGHT,
                col,
                L_OBJECT,
                dist,
                normal=np.array([-1.0, 0, 0]),
                fine=0.01,
                shade=False,
                emissive=np.array(lamp) * 2.0 if on else None,
            )


def _person(
    b: _Builder,
    x: float,
    y: float,
    z0: float,
    cls: int = PERSON,
    riding: bool = False,
    dist: float | None = None,
) -> None:
    rng = b.rng
    dist = b.distance(x, y) if dist is None else dist
    s = rng.uniform(0.9, 1.1) * (1.0 if rng.random() > 0.08 else 0.7)
    base = np.array([x, y, z0])
    pants = b.jitter(_CLOTHES[rng.integers(len(_CLOTHES))], 0.05)
    top = b.jitter(_CLOTHES[rng.integers(len(_CLOTHES))], 0.08)
    skin = np.array(_SKIN[rng.integers(len(_SKIN))])
    hair = b.jitter((0.12, 0.09, 0.07), 0.05) if rng.random() < 0.8 else b.jitter((0.55, 0.42, 0.25))
    kw = dict(fine=0.05, coarse=0.04, snow=0.0)
    hip = 0.88 * s
    if riding:
        legs = [
            np.array([[-0.16, 0.35], [-0.02, 0.35], [-0.02, hip], [-0.18, hip]]) * [s, 1.0],
            np.array([[0.02, 0.45], [0.16, 0.45], [0.18, hip], [0.02, hip]]) * [s, 1.0],
        ]
    else:
        stride = rng.uniform(0.0, 0.18) * s
        legs = [
            np.array([[-0.17 - stride, 0.0], [-0.04 - stride * 0.5, 0.0], [-0.02, hip], [-0.17, hip]])
            * [s, 1],
            np.array([[0.04 + stride * 0.5, 0.0], [0.17 + stride, 0.0], [0.17, hip], [0.02, hip]]) * [s, 1],
        ]
    for leg in legs:
        b.billboard(base, leg, cls, pants, L_OBJECT, dist, **kw)
    shoulder = 1.43 * s
    torso = np.array([[-0.2, hip - 0.04], [0.2, hip - 0.04], [0.23, shoulder], [-0.23, shoulder]]) * [s, 1]
    b.billboard(base, torso, cls, top, L_OBJECT, dist, **kw)
    for sign in (-1.0, 1.0):
        swing = rng.uniform(-0.06, 0.06)
        arm = np.array(
            [[0.2, shoulder], [0.29, shoulder - 0.02], [0.3 + swing, hip - 0.1], [0.23 + swing, hip - 0.1]]
        )
        arm[:, 0] *= sign * s
        b.billboard(base, arm, cls, top * 0.92, L_OBJECT, dist, **kw)
        hand = _ellipse((0.265 + swing) * sign * s, hip - 0.14, 0.045, 0.06, 8)
        b.billboard(base, hand, cls, skin, L_OBJECT, dist, **kw)
    neck = np.array(
        [[-0.05, shoulder - 0.02], [0.05, shoulder - 0.02], [0.05, shoulder + 0.08], [-0.05, shoulder + 0.08]]
    )
    b.billboard(base, neck * [s, 1], cls, skin * 0.9, L_OBJECT, dist, **kw)
    head_c = shoulder + 0.18 * s
    b.billboard(base, _ellipse(0, head_c, 0.095 * s, 0.12 * s, 14), cls, skin, L_OBJECT, dist, **kw)
    cap = _ellipse(0, head_c + 0.035 * s, 0.1 * s, 0.095 * s, 14)
    cap[:, 1] = np.maximum(cap[:, 1], head_c + 0.02 * s)
    b.billboard(base, cap, cls, hair, L_OBJECT, dist, **kw)


def _two_wheeler(
    b: _Builder, x: float, y: float, heading: float, motor: bool, rider: bool, z0: float = 0.0
) -> None:
    rng = b.rng
    dist = b.distance(x, y)
    cls = MOTORCYCLE if motor else BICYCLE
    r = 0.32 if motor else rng.uniform(0.3, 0.35)
    wb = 0.72 if motor else 0.55
    tyre = np.array([0.06, 0.06, 0.07])
    frame_col = b.jitter(_CAR_COLORS[rng.integers(len(_CAR_COLORS))], 0.06)
    width = 0.11 if motor else 0.045
    ang = np.linspace(0.0, 2 * math.pi, 18, endpoint=False)
    for cx in (-wb, wb):
        ring = np.column_stack([cx + r * np.cos(ang), np.zeros_like(ang), r + r * np.sin(ang)])
        b.add(
            _local_to_world(x, y, heading, ring) + np.array([0.0, 0.0, z0]),
            cls,
            tyre,
            L_OBJECT,
            dist,
            line_width=width,
            closed=True,
            fine=0.02,
        )
    if motor:
        body = _box(0.0, 0.0, 0.0, 1.0, 0.36, r + 0.05, r + 0.55)
        body = _local_to_world(x, y, heading, body) + np.array([0.0, 0.0, z0])
        b.solid(body, cls, {"default": frame_col, "bottom": None}, L_OBJECT, dist, fine=0.03)
    else:
        pts = {
            "rear": (-wb, 0.0, r),
            "bb": (-0.02, 0.0, 0.3),
            "seat": (-0.2, 0.0, 0.85),
            "head": (wb - 0.12, 0.0, 0.85),
            "front": (wb, 0.0, r),
        }
        segs = [
            ("rear", "bb"),
            ("bb", "seat"),
            ("seat", "head"),
            ("bb", "head"),
            ("head", "front"),
            ("rear", "seat"),
        ]
        for p0, p1 in segs:
            seg = _local_to_world(x, y, heading, np.array([pts[p0], pts[p1]])) + np.array([0.0, 0.0, z0])
            b.add(seg, cls, frame_col, L_OBJECT, dist, line_width=0.035, fine=0.02)
        lift = np.array([0.0, 0.0, z0])
        bar = (
            _local_to_world(x, y, heading, np.array([[wb - 0.15, -0.25, 1.0], [wb - 0.15, 0.25, 1.0]])) + lift
        )
        b.add(bar, cls, np.array([0.1, 0.1, 0.1]), L_OBJECT, dist, line_width=0.03)
        saddle = _local_to_world(x, y, heading, np.array([[-0.32, 0.0, 0.9], [-0.08, 0.0, 0.9]])) + np.array(
            [0.0, 0.0, z0]
        )
        b.add(saddle, cls, np.array([0.08, 0.08, 0.08]), L_OBJECT, dist, line_width=0.07)
    if rider:
        _person(b, x, y, z0 + (0.15 if motor else 0.05), cls=RIDER, riding=True, dist=dist - 0.01)


def _vehicle(
    b: _Builder,
    x: float,
    y: float,
    heading: float,
    kind: str,
    lights_on: bool,
    road: tuple[float, float],
    moving: bool,
) -> None:
    rng = b.rng
    dist = b.distance(x, y)
    if kind == "car":
        length, width, height = rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.9), rng.uniform(1.4, 1.6)
        cls, body_z = CAR, (0.28, height * 0.62)
    elif kind == "truck":
        length, width, height = rng.uniform(6.5, 9.0), 2.45, rng.uniform(3.0, 3.8)
        cls, body_z = TRUCK, (0.5, height)
    else:
        length, width, height = rng.uniform(10.5, 12.5), 2.55, rng.uniform(3.0, 3.3)
        cls, body_z = BUS, (0.35, height)
    color = b.jitter(_CAR_COLORS[rng.integers(len(_CAR_COLORS))], 0.03)
    if kind == "bus":
        color = b.jitter(
            [(0.9, 0.85, 0.2), (0.85, 0.85, 0.85), (0.7, 0.1, 0.1), (0.15, 0.35, 0.65)][rng.integers(4)]
        )
    glass = b.jitter((0.1, 0.12, 0.15), 0.04)
    dark = np.array([0.05, 0.05, 0.055])
    c, s = math.cos(heading), math.sin(heading)
    kw = dict(fine=0.02, coarse=0.03)

    # Shadow on the road (road class), clipped to the road so it never mislabels the sidewalk.
    fp = _box(x, y, heading, length + 0.3, width + 0.3, 0.0, 0.0)[:4]
    fp[:, 1] = np.clip(fp[:, 1], road[0] + 0.01, road[1] - 0.01)
    b.add(fp, ROAD, np.array([0.1, 0.1, 0.11]), L_MARKING, fine=0.05, coarse=0.05, snow=0.3)

    # Tyres (seen below the body from behind), then body.
    axles = (
        [(-length / 2 + 0.8, 0.32), (length / 2 - 0.8, 0.32)]
        if kind == "car"
        else [(-length / 2 + 1.3, 0.48), (length / 2 - 1.4, 0.48)]
    )
    for ax, r in axles:  # one dark box per axle: the tyres (and the shadowed underside between them)
        wx, wy = x + c * ax, y + s * ax
        b.solid(
            _box(wx, wy, heading, 2 * r, width - 0.06, 0.0, 2 * r),
            cls,
            {"default": dark},
            L_OBJECT,
            dist,
            **kw,
        )
    body = _box(x, y, heading, length, width, body_z[0], body_z[1])
    b.solid(body, cls, {"default": color, "bottom": None}, L_OBJECT, dist, **kw)

    def face_quad(lx: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
        return _local_to_world(
            x, y, heading, np.array([[lx, y0, z0], [lx, y1, z0], [lx, y1, z1], [lx, y0, z1]])
        )

    def side_quad(ly: float, x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
        return _local_to_world(
            x, y, heading, np.array([[x0, ly, z0], [x1, ly, z0], [x1, ly, z1], [x0, ly, z1]])
        )

    fwd = np.array([c, s, 0.0])
    left = np.array([-s, c, 0.0])
    if kind == "car":
        cab = _frustum(
            x,
            y,
            heading,
            (-length / 2 + 0.45, length / 2 - 1.2),
            (-length / 2 + 0.9, length / 2 - 1.85),
            width - 0.1,
            width - 0.4,
            body_z[1],
            height,
        )
        b.solid(cab, cls, {"default": glass, "top": color, "bottom": None}, L_OBJECT, dist, **kw)
    elif kind == "truck":
        # Cargo box behind a cab with a windscreen.
        cargo_len = length - 2.2
        b.solid(
            _box(x - c * 1.1, y - s * 1.1, heading, cargo_len, width, body_z[0] + 0.2, height + 0.1),
            cls,
            {"default": b.jitter((0.85, 0.85, 0.85), 0.1), "bottom": None},
            L_OBJECT,
            dist,
            **kw,
        )
        ws = face_quad(length / 2 + 0.01, -width / 2 + 0.15, width / 2 - 0.15, 1.6, 2.5)
        b.add(ws, cls, glass, L_OBJECT, dist, normal=fwd, shade=False, **kw)
    else:
        for ly, n in ((width / 2 + 0.01, left), (-width / 2 - 0.01, -left)):
            band = side_quad(ly, -length / 2 + 0.4, length / 2 - 0.5, 1.25, height - 0.35)
            b.add(band, cls, glass, L_OBJECT, dist, normal=n, shade=False, **kw)
        for quad, n in (  # windscreen, then rear window (reversed: it faces backwards)
            (face_quad(length / 2 + 0.01, -width / 2 + 0.1, width / 2 - 0.1, 1.1, height - 0.25), fwd),
            (
                face_quad(-length / 2 - 0.01, -width / 2 + 0.3, width / 2 - 0.3, 1.8, height - 0.35)[::-1],
                -fwd,
            ),
        ):
            b.add(quad, cls, glass, L_OBJECT, dist, normal=n, shade=False, **kw)
    # Wheel discs on the sides.
    for ax, r in axles:
        for ly, n in ((width / 2 + 0.01, left), (-width / 2 - 0.01, -left)):
            ring = _ellipse(ax, r, r, r, 14)
            disc = _local_to_world(x, y, heading, np.column_stack([ring[:, 0], np.full(14, ly), ring[:, 1]]))
            b.add(disc, cls, dark, L_OBJECT, dist, normal=n, **kw)
            hub = _ellipse(ax, r, r * 0.5, r * 0.5, 10)
            disc = _local_to_world(
                x, y, heading, np.column_stack([hub[:, 0], np.full(10, ly * 1.003), hub[:, 1]])
            )
            b.add(disc, cls, np.array([0.55, 0.55, 0.57]), L_OBJECT, dist, normal=n, **kw)
    # Lights and plates.
    zl = min(body_z[1] - 0.12, 0.85) if kind == "car" else 0.9
    lw = 0.28 if kind == "car" else 0.3
    brake = rng.random() < 0.3
    for sgn in (-1.0, 1.0):
        yy = sgn * (width / 2 - 0.1 - lw / 2)
        rear = face_quad(-length / 2 - 0.01, yy - lw / 2, yy + lw / 2, zl - 0.14, zl)[::-1]
        b.add(
            rear,
            cls,
            np.array([0.55, 0.05, 0.05]),
            L_OBJECT,
            dist,
            normal=-fwd,
            shade=False,
            emissive=np.array([1.0, 0.08, 0.04]) * (1.6 if brake else 0.7) if (moving or lights_on) else None,
            **kw,
        )
        front = face_quad(length / 2 + 0.01, yy - lw / 2, yy + lw / 2, zl - 0.2, zl - 0.06)
        b.add(
            front,
            cls,
            np.array([0.85, 0.85, 0.82]),
            L_OBJECT,
            dist,
            normal=fwd,
            shade=False,
            emissive=np.array([1.0, 0.95, 0.8]) * 2.5 if lights_on else None,
            **kw,
        )
        if lights_on and moving:
            pos = _local_to_world(x, y, heading, np.array([[length / 2 + 0.05, yy, zl - 0.13]]))[0]
            b.lights.append(Light(pos, np.array([1.0, 0.95, 0.85]), 8.0, direction=fwd, cone=0.93))
    plate_col = np.array([0.85, 0.85, 0.82])
    for quad, n in (  # rear plate (reversed: it faces backwards), then front plate
        (face_quad(-length / 2 - 0.012, -0.26, 0.26, 0.45, 0.56)[::-1], -fwd),
        (face_quad(length / 2 + 0.012, -0.26, 0.26, 0.35, 0.46), fwd),
    ):
        b.add(quad, cls, plate_col, L_OBJECT, dist, normal=n, shade=False, **kw)


# --------------------------------------------------------------------------------------------- scene
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


def build_geometry(seed: int, height: int = 512, width: int = 1024) -> SceneGeometry:
    """Lay out, rasterise and colour one street scene (the weather-independent part).

    Args:
        seed: Scene seed; the same seed always gives the same scene.
        height: Image rows (>= 16).
        width: Image columns (>= 16).

    Returns:
        The :class:`SceneGeometry`.

    Raises:
        ValueError: For image sizes below 16 pixels.
    """
    if height < 16 or width < 16:
        raise ValueError(f"image size must be at least 16x16, got {height}x{width}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFF, 0x5CE7E]))

    # Street cross-section.
    lane_w = rng.uniform(3.0, 3.6)
    lanes_right = int(rng.integers(1, 3))
    lanes_left = 0 if rng.random() < 0.12 else int(rng.integers(1, 3))
    ego_lane = int(rng.integers(lanes_right))  # counted from the right
    parking = (
        rng.uniform(2.0, 2.5) if rng.random() < 0.55 else 0.0,
        rng.uniform(2.0, 2.5) if rng.random() < 0.4 else 0.0,
    )
    ego_y = rng.uniform(-0.35, 0.35)
    # Street frame: y = 0 at the centre of the ego lane.
    y_right = -(ego_lane + 0.5) * lane_w - parking[0]
    y_left = y_right + parking[0] + (lanes_right + lanes_left) * lane_w + parking[1]
    lanes = [y_right + parking[0] + (k + 0.5) * lane_w for k in range(lanes_right + lanes_left)]
    sides = []
    for sign, edge in ((-1.0, y_right), (1.0, y_left)):
        kind = "buildings" if rng.random() < 0.8 else "park"
        sides.append(
            _Side(
                sign=sign,
                edge=edge,
                curb_h=rng.uniform(0.1, 0.16),
                verge=rng.uniform(0.8, 2.5) if rng.random() < 0.3 else 0.0,
                sidewalk=rng.uniform(1.8, 4.5),
                yard=rng.uniform(2.0, 7.0) if (kind == "park" or rng.random() < 0.25) else 0.0,
                kind=kind,
            )
        )
    far = rng.uniform(300.0, 380.0)  # distance of the skyline that closes the street

    # Camera.
    pose = sample_pose(rng)
    heading = math.radians(rng.uniform(-2.5, 2.5))
    hfov = rng.uniform(50.0, 70.0)
    K = intrinsics(width, height, hfov)
    cam = Camera.build(K, width, height, pose, vehicle_xy=(0.0, ego_y), vehicle_heading=heading)
    sun_el, sun_az = math.radians(rng.uniform(20.0, 60.0)), rng.uniform(0.0, 2 * math.pi)
    sun = np.array(
        [math.cos(sun_el) * math.cos(sun_az), math.cos(sun_el) * math.sin(sun_az), math.sin(sun_el)]
    )

    b = _Builder(rng, cam.center)
    crosswalk = rng.uniform(15.0, 55.0) if rng.random() < 0.4 else None
    _build_ground(b, (y_right, y_left), sides, far + 60.0)
    _build_markings(b, lanes_right, lanes_left, lane_w, y_right, parking, crosswalk)
    _build_backdrop(b, far)
    for side in sides:
        if side.kind == "buildings":
            _build_buildings(b, side, far)
            if side.yard > 0 and rng.random() < 0.7:
                _build_edge(b, side, far)
            for _ in range(int(rng.integers(0, 3)) if side.yard > 0 else 0):
                _tree(b, rng.uniform(0, 100), side.y(side.walk[1] + side.yard / 2), side.curb_h, L_YARD)
        else:
            _build_park(b, side)
            if rng.random() < 0.6:
                _build_edge(b, side, far)

    # Street furniture.
    lamp_sides = [s for s in sides if rng.random() < 0.65]
    for side in lamp_sides:
        x = rng.uniform(3.0, 20.0)
        spacing = rng.uniform(22.0, 35.0)
        while x < 180.0:
            _street_lamp(b, x, side)
            x += spacing
    for side in sides:
        if rng.random() < 0.55:
            x = rng.uniform(2.0, 10.0)
            spacing = rng.uniform(7.0, 14.0)
            while x < 110.0:
                if rng.random() < 0.85:
                    _tree(b, x, side.y(side.walk[0] + 0.9), side.curb_h, L_OBJECT)
                x += spacing
    for _ in range(int(rng.integers(1, 5))):
        side = sides[int(rng.integers(2))]
        _sign(b, rng.uniform(6.0, 90.0), side.y(side.walk[0] + rng.uniform(0.2, 0.6)), side.curb_h)
    if crosswalk is not None or rng.random() < 0.3:
        xt = (crosswalk if crosswalk is not None else rng.uniform(20.0, 60.0)) - 0.8
        right = sides[0]
        over = lanes[int(rng.integers(lanes_right))] if rng.random() < 0.5 else None
        _traffic_light(b, xt, right.y(right.walk[0] + 0.3), right.curb_h, over)
        if rng.random() < 0.6:
            left = sides[1]
            _traffic_light(b, xt + rng.uniform(8.0, 14.0), left.y(left.walk[0] + 0.3), left.curb_h, None)

    # People on the sidewalks (and on the crosswalk).
    for _ in range(int(rng.integers(0, 12))):
        side = sides[int(rng.integers(2))]
        a, c = side.walk
        _person(b, rng.uniform(3.0, 70.0), side.y(rng.uniform(a + 0.3, c - 0.2)), side.curb_h)
    if crosswalk is not None:
        for _ in range(int(rng.integers(0, 4))):
            _person(b, crosswalk + rng.uniform(0.5, 3.0), rng.uniform(y_right + 1.0, y_left - 1.0), 0.0)

    # Vehicles: traffic in each lane, oncoming traffic, parked cars.
    for k, ly in enumerate(lanes):
        same_dir = k < lanes_right
        heading_v = 0.0 if same_dir else math.pi
        x = rng.uniform(9.0, 25.0) if abs(ly) < 0.5 else rng.uniform(-4.0, 20.0)
        while x < 130.0:
            if rng.random() < 0.75:
                u = rng.random()
                kind = "truck" if u < 0.08 else "bus" if u < 0.13 else "car"
                if kind == "car" and rng.random() < 0.06 and same_dir:
                    _two_wheeler(b, x, ly + rng.uniform(-0.5, 0.5), heading_v, motor=True, rider=True)
                else:
                    _vehicle(
                        b,
                        x,
                        ly + rng.uniform(-0.25, 0.25),
                        heading_v + rng.uniform(-0.03, 0.03),
                        kind,
                        True,  # moving vehicles drive with lights on (only the night rendering shows them)
                        (y_right, y_left),
                        moving=True,
                    )
            x += rng.uniform(10.0, 30.0)
    for side_k, width_p in enumerate(parking):
        if width_p <= 0:
            continue
        ly = y_right + width_p / 2 if side_k == 0 else y_left - width_p / 2
        x = rng.uniform(-6.0, 8.0)
        while x < 110.0:
            length = 4.6
            if rng.random() < 0.7:
                _vehicle(
                    b,
                    x + length / 2,
                    ly + rng.uniform(-0.15, 0.15),
                    rng.uniform(-0.03, 0.03) + (0.0 if side_k == 0 or rng.random() < 0.5 else math.pi),
                    "car",
                    False,
                    (y_right, y_left),
                    moving=False,
                )
            x += length + rng.uniform(0.6, 4.0)
    # Cyclists along the right edge, bicycles parked on the sidewalks.
    for _ in range(int(rng.integers(0, 3))):
        _two_wheeler(
            b,
            rng.uniform(8.0, 60.0),
            y_right + parking[0] + 0.7,
            rng.uniform(-0.05, 0.05),
            motor=False,
            rider=True,
        )
    for _ in range(int(rng.integers(0, 3))):
        side = sides[int(rng.integers(2))]
        _two_wheeler(
            b,
            rng.uniform(4.0, 40.0),
            side.y(side.walk[0] + 0.5),
            rng.uniform(0.6, 2.5),
            motor=False,
            rider=False,
            z0=side.curb_h,
        )
    # Our own headlights (used at night).
    ego = cam.center.copy()
    fwd = np.array([math.cos(heading), math.sin(heading), 0.0])
    for lat in (-0.7, 0.7):
        pos = np.array([ego[0] + 1.8 * fwd[0], ego[1] + lat + 1.8 * fwd[1], 0.7])
        b.lights.append(
            Light(
                pos, np.array([1.0, 0.96, 0.88]), 40.0, direction=fwd + np.array([0.0, 0.0, -0.06]), cone=0.95
            )
        )

    raster = rasterize(b.prims, cam, sun)
    return _finish(seed, height, width, K, pose, cam, raster, b, rng, lanes, (y_right, y_left), sun)


def _sky_colors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    horizon = np.array([0.78, 0.84, 0.9]) + rng.uniform(-0.05, 0.05, 3)
    zenith = np.array([0.27, 0.47, 0.78]) + rng.uniform(-0.06, 0.06, 3)
    return np.clip(horizon, 0, 1), np.clip(zenith, 0, 1)


def _finish(seed, height, width, K, pose, cam, raster, b, rng, lanes, road_edges, sun) -> SceneGeometry:
    ids = raster.ids
    labels = raster.gather(raster.cls)
    depth = depth_map(raster, cam)
    rx, ry = cam.pixel_rays()
    distance = depth * np.sqrt(rx * rx + ry * ry + 1.0, dtype=np.float32)
    # Colours: per-channel gathers are much faster than one (N, 3) fancy index.
    col = raster.color
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
        seed=int(seed),
        height=height,
        width=width,
        K=K,
        pose=pose,
        camera=cam,
        raster=raster,
        labels=labels,
        depth=depth,
        distance=distance,
        base=base,
        sky=sky,
        horizon=horizon,
        lights=b.lights,
        lanes=lanes,
        road_edges=road_edges,
        sun=sun,
        sky_colors=(sky_h, sky_z),
    )


__all__ = ["IGNORE", "SKY_DEPTH", "Light", "SceneGeometry", "build_geometry", "sample_pose"]
