"""Building blocks of the street scenes: drawing layers, lights, shape helpers and the primitive builder.

Everything lives in the street frame (x along the road, y to the left, z up). :class:`Builder` collects
:class:`~causal_tune_ros.synthetic.raster.Primitive` objects (dropping faces turned away from the camera);
the shape helpers return vertex arrays for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from causal_tune_ros.synthetic.raster import Primitive

#: An RGB colour in [0, 1]: an array or a sequence of three floats.
Color = np.ndarray | Sequence[float]
#: One colour for every face of a solid, or ``{face: colour}`` (faces ``bottom top s0 s1 s2 s3``, and
#: ``default``); a face whose colour is ``None`` is left out.
FaceColors = Color | Mapping[str, Color | None]

# Drawing layers, far-to-near buckets in which long structures never hide nearer compact objects.
L_GROUND, L_MARKING, L_BACKDROP, L_BACK_ROW, L_BUILDING, L_YARD, L_EDGE, L_OBJECT = range(8)

#: Vehicle paints (also used for shop signs).
CAR_COLORS = [
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

_UP = np.array([0.0, 0.0, 1.0])
_HEXA_NAMES = ("bottom", "top", "s0", "s1", "s2", "s3")
_HEXA_FACES = np.array([[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]])


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


@dataclass(frozen=True)
class Placement:
    """Where an object stands: a street-frame ground point and a heading.

    Attributes:
        x: Position along the road (m).
        y: Lateral position (m, left positive).
        z: Height of the surface it stands on (m; a curb's height on the sidewalk).
        heading: Direction of the object's forward axis (radians from +x, counter-clockwise).
    """

    x: float
    y: float
    z: float = 0.0
    heading: float = 0.0


class Builder:
    """Collects primitives and lights; helpers build common shapes in the street frame.

    Args:
        rng: The scene's random generator (every random choice of the scene draws from it, in order).
        camera_center: Camera position in the street frame, for back-face culling and drawing order.
    """

    def __init__(self, rng: np.random.Generator, camera_center: np.ndarray) -> None:
        self.rng = rng
        self.prims: list[Primitive] = []
        self.lights: list[Light] = []
        self.cam_c = camera_center

    def add(
        self, verts: np.ndarray | list, cls: int, color: Color, layer: int, dist: float = 0.0, **kw: Any
    ) -> None:
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
        self, polys: list[np.ndarray], cls: int, color: Color, layer: int, dist: float = 0.0, **kw: Any
    ) -> None:
        """Append several coplanar polygons drawn with one id (same class, colour and plane)."""
        self.add(np.concatenate(polys), cls, color, layer, dist, sizes=tuple(len(p) for p in polys), **kw)

    def jitter(self, color: Color, amount: float = 0.06) -> np.ndarray:
        """Colour with a small random per-channel and brightness variation."""
        c = np.asarray(color, np.float64)
        c = c * self.rng.uniform(1 - amount * 2, 1 + amount * 2) + self.rng.uniform(-amount, amount, 3)
        return np.clip(c, 0.0, 1.0)

    def distance(self, x: float, y: float) -> float:
        """Horizontal distance from the camera to a street-frame point (drawing order key)."""
        return math.hypot(x - self.cam_c[0], y - self.cam_c[1])

    def solid(self, v8: np.ndarray, cls: int, colors: FaceColors, layer: int, dist: float, **kw: Any) -> None:
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
            color = colors.get(name, colors.get("default")) if isinstance(colors, Mapping) else colors
            if color is None:
                continue
            face_kw = dict(kw)
            if normals[f, 2] > 0.5:
                face_kw.setdefault("snow", 0.9)  # snow settles on up-facing faces (roofs, car tops)
            self.add(quads[f], cls, color, layer, dist, normal=normals[f], **face_kw)

    def billboard(
        self, base: np.ndarray, shape: np.ndarray, cls: int, color: Color, layer: int, dist: float, **kw: Any
    ) -> None:
        """A flat 2-D shape ``(a, z)`` standing at ``base``, turned to face the camera."""
        view = base[:2] - self.cam_c[:2]
        norm = float(np.hypot(*view)) or 1.0
        e = np.array([view[1], -view[0], 0.0]) / norm  # horizontal, perpendicular to the view direction
        verts = base + shape[:, :1] * e + shape[:, 1:2] * _UP
        self.add(verts, cls, color, layer, dist, **kw)


def box(
    cx: float, cy: float, heading: float, length: float, width: float, z0: float, z1: float
) -> np.ndarray:
    """8 corners of an oriented box (bottom ccw from above, then top)."""
    c, s = math.cos(heading), math.sin(heading)
    local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * [length / 2, width / 2]
    xy = local @ np.array([[c, s], [-s, c]]) + [cx, cy]
    bottom = np.column_stack([xy, np.full(4, z0)])
    top = np.column_stack([xy, np.full(4, z1)])
    return np.vstack([bottom, top])


@dataclass(frozen=True)
class Cabin:
    """A car cabin in the car's local frame (x forward): a rectangle at ``z0`` and a smaller one at ``z1``.

    Attributes:
        bottom_x: ``(x0, x1)`` extent of the bottom rectangle along the car.
        top_x: ``(x0, x1)`` extent of the top rectangle.
        bottom_w: Width of the bottom rectangle.
        top_w: Width of the top rectangle.
        z0: Height of the bottom rectangle.
        z1: Height of the top rectangle.
    """

    bottom_x: tuple[float, float]
    top_x: tuple[float, float]
    bottom_w: float
    top_w: float
    z0: float
    z1: float


def frustum(at: Placement, cabin: Cabin) -> np.ndarray:
    """8 corners of a car cabin placed at ``at`` (``at.z`` is ignored: the cabin's heights are absolute)."""
    c, s = math.cos(at.heading), math.sin(at.heading)
    rot = np.array([[c, s], [-s, c]])

    def rect(xr: tuple[float, float], w: float, z: float) -> np.ndarray:
        loc = np.array([[xr[0], -w / 2], [xr[1], -w / 2], [xr[1], w / 2], [xr[0], w / 2]])
        return np.column_stack([loc @ rot + [at.x, at.y], np.full(4, z)])

    return np.vstack(
        [rect(cabin.bottom_x, cabin.bottom_w, cabin.z0), rect(cabin.top_x, cabin.top_w, cabin.z1)]
    )


@lru_cache(maxsize=32)
def _unit_circle(n: int) -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    circle = np.column_stack([np.cos(t), np.sin(t)])
    circle.setflags(write=False)
    return circle


def ellipse(
    cx: float, cy: float, rx: float, ry: float, n: int = 14, jitter: np.ndarray | None = None
) -> np.ndarray:
    """``(n, 2)`` points of an ellipse (radii optionally scaled per point by ``jitter``)."""
    pts = _unit_circle(n) * (rx, ry)
    if jitter is not None:
        pts = pts * np.asarray(jitter)[:, None]
    return pts + np.array([cx, cy])


def local_to_world(cx: float, cy: float, heading: float, pts: np.ndarray) -> np.ndarray:
    """Local (x fwd, y left, z up) points of an object at (cx, cy) with a heading -> world points."""
    c, s = math.cos(heading), math.sin(heading)
    x = cx + c * pts[:, 0] - s * pts[:, 1]
    y = cy + s * pts[:, 0] + c * pts[:, 1]
    return np.column_stack([x, y, pts[:, 2]])


def ground_quad(x0: float, x1: float, y0: float, y1: float, z: float = 0.0) -> np.ndarray:
    """A horizontal rectangle ``[x0, x1] x [y0, y1]`` at height ``z``."""
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])
