"""Street furniture and greenery: trees, parks, street lamps, traffic signs and traffic lights."""

from __future__ import annotations

import numpy as np

from causal_tune_ros.synthetic.labels import POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION
from causal_tune_ros.synthetic.primitives import (
    L_OBJECT,
    L_YARD,
    Builder,
    Color,
    Light,
    Placement,
    box,
    ellipse,
)
from causal_tune_ros.synthetic.street import Side


def tree(b: Builder, at: Placement, layer: int, scale: float = 1.0) -> None:
    """A trunk and a few leafy blobs (billboards facing the camera) standing at ``at``."""
    rng = b.rng
    x, y, z = at.x, at.y, at.z
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
        shape = ellipse(cx, cz, r, r * rng.uniform(0.8, 1.1), 14, rng.uniform(0.8, 1.15, 14))
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


def build_park(b: Builder, side: Side) -> None:
    """Trees and bushes beyond the sidewalk of a park ``side``."""
    rng = b.rng
    line = side.building_line
    for _ in range(int(rng.integers(10, 26))):
        x = rng.uniform(-5.0, 160.0)
        off = line + rng.uniform(1.5, 45.0)
        tree(
            b,
            Placement(x, side.y(off), 0.0 if off > line + 1 else side.curb_h),
            L_YARD,
            rng.uniform(0.9, 1.6),
        )
    for _ in range(int(rng.integers(3, 10))):  # bushes
        x = rng.uniform(0.0, 120.0)
        off = line + rng.uniform(0.5, 15.0)
        r = rng.uniform(0.5, 1.2)
        shape = ellipse(0.0, r * 0.6, r * 1.4, r * 0.8, 12, rng.uniform(0.85, 1.15, 12))
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


def street_lamp(b: Builder, x: float, side: Side) -> None:
    """A lamp post on ``side``'s curb at ``x``, its arm over the road; adds its light."""
    rng = b.rng
    y = side.y(0.6)
    dist = b.distance(x, y)
    h = rng.uniform(6.0, 9.0)
    col = b.jitter((0.42, 0.43, 0.45) if rng.random() < 0.7 else (0.15, 0.17, 0.16), 0.04)
    b.solid(
        box(x, y, 0.0, 0.16, 0.16, side.curb_h, h), POLE, {"default": col, "bottom": None}, L_OBJECT, dist
    )
    arm = rng.uniform(1.2, 2.2)
    ya = y - side.sign * arm
    ym = (y + ya) / 2
    b.solid(box(x, ym, 0.0, 0.1, arm, h - 0.12, h), POLE, {"default": col, "bottom": None}, L_OBJECT, dist)
    lamp_col = np.array([1.0, 0.72, 0.38]) if rng.random() < 0.5 else np.array([0.95, 0.95, 1.0])
    head = box(x, ya, 0.0, 0.35, 0.6, h - 0.3, h - 0.05)
    b.solid(
        head,
        POLE,
        {"default": col * 0.8, "bottom": np.array([0.9, 0.9, 0.85])},
        L_OBJECT,
        dist,
        emissive=lamp_col * 1.5,
    )
    b.lights.append(Light(np.array([x, ya, h - 0.4]), lamp_col, power=rng.uniform(6.0, 12.0)))


def traffic_sign(b: Builder, at: Placement) -> None:
    """A traffic sign (one of five kinds) on a pole at ``at``, facing oncoming traffic."""
    rng = b.rng
    x, y, z0 = at.x, at.y, at.z
    dist = b.distance(x, y)
    h = rng.uniform(2.1, 2.8)
    pole_col = b.jitter((0.55, 0.56, 0.58), 0.04)
    b.solid(
        box(x, y, 0.0, 0.07, 0.07, z0, z0 + h), POLE, {"default": pole_col, "bottom": None}, L_OBJECT, dist
    )
    r = rng.uniform(0.3, 0.42)
    zc = z0 + h + r * 0.9
    kind = rng.integers(5)
    red, white, blue = np.array([0.75, 0.08, 0.08]), np.array([0.92, 0.92, 0.9]), np.array([0.1, 0.3, 0.7])
    normal = np.array([-1.0, 0.0, 0.0])  # faces oncoming (our) traffic
    xs = x - 0.06

    def plate(shape2d: np.ndarray, color: Color, dx: float) -> None:
        verts = np.column_stack([np.full(len(shape2d), xs - dx), y + shape2d[:, 0], zc + shape2d[:, 1]])
        b.add(verts, TRAFFIC_SIGN, color, L_OBJECT, dist, normal=normal, fine=0.02, shade=False)

    if kind == 0:  # prohibition / speed limit: red ring, white disc
        plate(ellipse(0, 0, r, r, 20), red, 0.0)
        plate(ellipse(0, 0, r * 0.75, r * 0.75, 20), white, 0.01)
    elif kind == 1:  # warning triangle
        tri = np.array([[0.0, r * 1.1], [r * 1.1, -r * 0.8], [-r * 1.1, -r * 0.8]])
        plate(tri, red, 0.0)
        plate(tri * 0.7, white, 0.01)
    elif kind == 2:  # mandatory: blue disc with a white arrow-ish bar
        plate(ellipse(0, 0, r, r, 20), blue, 0.0)
        plate(np.array([[-0.05, -r * 0.6], [0.05, -r * 0.6], [0.05, r * 0.6], [-0.05, r * 0.6]]), white, 0.01)
    elif kind == 3:  # stop octagon
        plate(ellipse(0, 0, r, r, 8), red, 0.0)
        plate(np.array([[-r * 0.6, -0.06], [r * 0.6, -0.06], [r * 0.6, 0.06], [-r * 0.6, 0.06]]), white, 0.01)
    else:  # information rectangle
        w, hh = r * rng.uniform(1.2, 2.0), r * 0.8
        col = blue if rng.random() < 0.5 else np.array([0.1, 0.45, 0.2])
        plate(np.array([[-w, -hh], [w, -hh], [w, hh], [-w, hh]]), col, 0.0)
        plate(np.array([[-w * 0.8, -0.04], [w * 0.8, -0.04], [w * 0.8, 0.04], [-w * 0.8, 0.04]]), white, 0.01)


def traffic_light(b: Builder, at: Placement, over_road: float | None) -> None:
    """A traffic light on a pole at ``at``; with ``over_road`` (a lateral position) a second one on an arm."""
    rng = b.rng
    x, y, z0 = at.x, at.y, at.z
    dist = b.distance(x, y)
    h = rng.uniform(2.6, 3.4)
    pole_col = b.jitter((0.3, 0.31, 0.33), 0.05)
    b.solid(
        box(x, y, 0.0, 0.14, 0.14, z0, z0 + h + 0.9),
        POLE,
        {"default": pole_col, "bottom": None},
        L_OBJECT,
        dist,
    )
    housings = [(y, z0 + h)]
    if over_road is not None:
        zarm = z0 + h + 2.4
        b.solid(
            box(x, (y + over_road) / 2, 0.0, 0.12, abs(over_road - y), zarm, zarm + 0.15),
            POLE,
            {"default": pole_col, "bottom": None},
            L_OBJECT,
            dist,
        )
        b.solid(
            box(x, y, 0.0, 0.14, 0.14, z0 + h + 0.9, zarm + 0.15),
            POLE,
            {"default": pole_col},
            L_OBJECT,
            dist,
        )
        housings.append((over_road, zarm - 1.0))
    state = rng.integers(3)
    for yh, zh in housings:
        housing = box(x - 0.15, yh, 0.0, 0.25, 0.34, zh, zh + 0.95)
        b.solid(
            housing,
            TRAFFIC_LIGHT,
            {"default": np.array([0.07, 0.07, 0.08]), "bottom": None},
            L_OBJECT,
            dist,
            fine=0.02,
        )
        for k, lamp in enumerate(((0.9, 0.1, 0.05), (0.95, 0.65, 0.05), (0.1, 0.85, 0.35))):
            on = k == state
            zc = zh + 0.78 - k * 0.3
            disc = ellipse(yh, zc, 0.1, 0.1, 12)
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
