"""Road users: pedestrians and riders, bicycles and motorcycles, cars, trucks and buses."""

from __future__ import annotations

import math

import numpy as np

from causal_tune_ros.synthetic.labels import BICYCLE, BUS, CAR, MOTORCYCLE, PERSON, RIDER, ROAD, TRUCK
from causal_tune_ros.synthetic.primitives import (
    CAR_COLORS,
    L_MARKING,
    L_OBJECT,
    Builder,
    Cabin,
    Light,
    Placement,
    box,
    ellipse,
    frustum,
    local_to_world,
)

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


def person(
    b: Builder, at: Placement, cls: int = PERSON, riding: bool = False, dist: float | None = None
) -> None:
    """A pedestrian (or, with ``riding``, a rider's seated pose) standing at ``at``, facing the camera.

    Args:
        b: The scene's builder.
        at: Ground point (``at.heading`` is not used: people are camera-facing billboards).
        cls: Train id of its pixels (``RIDER`` for a rider).
        riding: Seated legs instead of a walking stride.
        dist: Drawing-order distance (default: the distance from the camera to ``at``).
    """
    rng = b.rng
    x, y, z0 = at.x, at.y, at.z
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
        hand = ellipse((0.265 + swing) * sign * s, hip - 0.14, 0.045, 0.06, 8)
        b.billboard(base, hand, cls, skin, L_OBJECT, dist, **kw)
    neck = np.array(
        [[-0.05, shoulder - 0.02], [0.05, shoulder - 0.02], [0.05, shoulder + 0.08], [-0.05, shoulder + 0.08]]
    )
    b.billboard(base, neck * [s, 1], cls, skin * 0.9, L_OBJECT, dist, **kw)
    head_c = shoulder + 0.18 * s
    b.billboard(base, ellipse(0, head_c, 0.095 * s, 0.12 * s, 14), cls, skin, L_OBJECT, dist, **kw)
    cap = ellipse(0, head_c + 0.035 * s, 0.1 * s, 0.095 * s, 14)
    cap[:, 1] = np.maximum(cap[:, 1], head_c + 0.02 * s)
    b.billboard(base, cap, cls, hair, L_OBJECT, dist, **kw)


def two_wheeler(b: Builder, at: Placement, *, motor: bool, rider: bool) -> None:
    """A motorcycle (``motor``) or a bicycle at ``at``, with a rider on it if ``rider``."""
    rng = b.rng
    x, y, heading, z0 = at.x, at.y, at.heading, at.z
    dist = b.distance(x, y)
    cls = MOTORCYCLE if motor else BICYCLE
    r = 0.32 if motor else rng.uniform(0.3, 0.35)
    wb = 0.72 if motor else 0.55
    tyre = np.array([0.06, 0.06, 0.07])
    frame_col = b.jitter(CAR_COLORS[rng.integers(len(CAR_COLORS))], 0.06)
    width = 0.11 if motor else 0.045
    ang = np.linspace(0.0, 2 * math.pi, 18, endpoint=False)
    for cx in (-wb, wb):
        ring = np.column_stack([cx + r * np.cos(ang), np.zeros_like(ang), r + r * np.sin(ang)])
        b.add(
            local_to_world(x, y, heading, ring) + np.array([0.0, 0.0, z0]),
            cls,
            tyre,
            L_OBJECT,
            dist,
            line_width=width,
            closed=True,
            fine=0.02,
        )
    if motor:
        body = box(0.0, 0.0, 0.0, 1.0, 0.36, r + 0.05, r + 0.55)
        body = local_to_world(x, y, heading, body) + np.array([0.0, 0.0, z0])
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
            seg = local_to_world(x, y, heading, np.array([pts[p0], pts[p1]])) + np.array([0.0, 0.0, z0])
            b.add(seg, cls, frame_col, L_OBJECT, dist, line_width=0.035, fine=0.02)
        lift = np.array([0.0, 0.0, z0])
        bar = (
            local_to_world(x, y, heading, np.array([[wb - 0.15, -0.25, 1.0], [wb - 0.15, 0.25, 1.0]])) + lift
        )
        b.add(bar, cls, np.array([0.1, 0.1, 0.1]), L_OBJECT, dist, line_width=0.03)
        saddle = local_to_world(x, y, heading, np.array([[-0.32, 0.0, 0.9], [-0.08, 0.0, 0.9]])) + np.array(
            [0.0, 0.0, z0]
        )
        b.add(saddle, cls, np.array([0.08, 0.08, 0.08]), L_OBJECT, dist, line_width=0.07)
    if rider:
        seat = Placement(x, y, z0 + (0.15 if motor else 0.05))
        person(b, seat, cls=RIDER, riding=True, dist=dist - 0.01)


def vehicle(
    b: Builder, at: Placement, kind: str, road: tuple[float, float], *, moving: bool, lights_on: bool
) -> None:
    """A car, truck or bus at ``at`` (``at.z`` is not used: vehicles stand on the road).

    Args:
        b: The scene's builder.
        at: Centre of the footprint and heading.
        kind: ``"car"``, ``"truck"`` or ``"bus"``.
        road: ``(right, left)`` lateral limits of the road, which its shadow is clipped to.
        moving: Rear lights glow at night (and brake lights sometimes); headlights light the road.
        lights_on: Headlights and rear lights glow at night.
    """
    rng = b.rng
    x, y, heading = at.x, at.y, at.heading
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
    color = b.jitter(CAR_COLORS[rng.integers(len(CAR_COLORS))], 0.03)
    if kind == "bus":
        color = b.jitter(
            [(0.9, 0.85, 0.2), (0.85, 0.85, 0.85), (0.7, 0.1, 0.1), (0.15, 0.35, 0.65)][rng.integers(4)]
        )
    glass = b.jitter((0.1, 0.12, 0.15), 0.04)
    dark = np.array([0.05, 0.05, 0.055])
    c, s = math.cos(heading), math.sin(heading)
    kw = dict(fine=0.02, coarse=0.03)

    # Shadow on the road (road class), clipped to the road so it never mislabels the sidewalk.
    fp = box(x, y, heading, length + 0.3, width + 0.3, 0.0, 0.0)[:4]
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
            box(wx, wy, heading, 2 * r, width - 0.06, 0.0, 2 * r),
            cls,
            {"default": dark},
            L_OBJECT,
            dist,
            **kw,
        )
    body = box(x, y, heading, length, width, body_z[0], body_z[1])
    b.solid(body, cls, {"default": color, "bottom": None}, L_OBJECT, dist, **kw)

    def face_quad(lx: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
        return local_to_world(
            x, y, heading, np.array([[lx, y0, z0], [lx, y1, z0], [lx, y1, z1], [lx, y0, z1]])
        )

    def side_quad(ly: float, x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
        return local_to_world(
            x, y, heading, np.array([[x0, ly, z0], [x1, ly, z0], [x1, ly, z1], [x0, ly, z1]])
        )

    fwd = np.array([c, s, 0.0])
    left = np.array([-s, c, 0.0])
    if kind == "car":
        cabin = Cabin(
            bottom_x=(-length / 2 + 0.45, length / 2 - 1.2),
            top_x=(-length / 2 + 0.9, length / 2 - 1.85),
            bottom_w=width - 0.1,
            top_w=width - 0.4,
            z0=body_z[1],
            z1=height,
        )
        cab = frustum(at, cabin)
        b.solid(cab, cls, {"default": glass, "top": color, "bottom": None}, L_OBJECT, dist, **kw)
    elif kind == "truck":
        # Cargo box behind a cab with a windscreen.
        cargo_len = length - 2.2
        b.solid(
            box(x - c * 1.1, y - s * 1.1, heading, cargo_len, width, body_z[0] + 0.2, height + 0.1),
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
            ring = ellipse(ax, r, r, r, 14)
            disc = local_to_world(x, y, heading, np.column_stack([ring[:, 0], np.full(14, ly), ring[:, 1]]))
            b.add(disc, cls, dark, L_OBJECT, dist, normal=n, **kw)
            hub = ellipse(ax, r, r * 0.5, r * 0.5, 10)
            disc = local_to_world(
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
            pos = local_to_world(x, y, heading, np.array([[length / 2 + 0.05, yy, zl - 0.13]]))[0]
            b.lights.append(Light(pos, np.array([1.0, 0.95, 0.85]), 8.0, direction=fwd, cone=0.93))
    plate_col = np.array([0.85, 0.85, 0.82])
    for quad, n in (  # rear plate (reversed: it faces backwards), then front plate
        (face_quad(-length / 2 - 0.012, -0.26, 0.26, 0.45, 0.56)[::-1], -fwd),
        (face_quad(length / 2 + 0.012, -0.26, 0.26, 0.35, 0.46), fwd),
    ):
        b.add(quad, cls, plate_col, L_OBJECT, dist, normal=n, shade=False, **kw)
