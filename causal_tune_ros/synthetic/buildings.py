"""Building blocks along the street front (facades, roofs, shop fronts, windows) and the taller row behind."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_tune_ros.synthetic.labels import BUILDING
from causal_tune_ros.synthetic.primitives import CAR_COLORS, L_BACK_ROW, L_BUILDING, Builder
from causal_tune_ros.synthetic.street import Side

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


@dataclass(frozen=True)
class _RowStyle:
    """What the blocks of one street front share.

    Attributes:
        storefronts: A shopping street: ground floors may be shops with a sign board.
        tall: Height factor of the blocks.
    """

    storefronts: bool
    tall: float


def _building(b: Builder, side: Side, s: float, length: float, style: _RowStyle) -> None:
    """One building block on the street front, from ``s`` to ``s + length`` along the road."""
    rng = b.rng
    line = side.building_line
    normal_road = np.array([0.0, -side.sign, 0.0])  # facade normal, towards the road
    setback = rng.uniform(0.0, 0.8) if rng.random() < 0.3 else 0.0
    y_face = side.y(line + setback)
    depth = rng.uniform(10.0, 20.0)
    height = float(np.clip(rng.uniform(6.0, 24.0) * style.tall, 4.0, 45.0))
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
    if style.storefronts and rng.random() < 0.7 and height > 5.0:
        ground_floor = rng.uniform(3.2, 4.2)
        glass = b.jitter((0.16, 0.19, 0.22), 0.05)
        sign_col = b.jitter(CAR_COLORS[rng.integers(len(CAR_COLORS))], 0.1)
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


def build_buildings(b: Builder, side: Side, far: float) -> None:
    """A row of blocks (with alleys) along ``side`` up to ``far - 20`` m, often a taller row behind."""
    rng = b.rng
    s = rng.uniform(-30.0, -5.0)
    line = side.building_line
    style = _RowStyle(storefronts=rng.random() < 0.5, tall=rng.uniform(0.6, 1.4))
    while s < far - 20.0:
        length = rng.uniform(8.0, 30.0)
        if rng.random() < 0.15:
            s += rng.uniform(3.0, 9.0)  # an alley: side walls and the row behind show through
        _building(b, side, s, length, style)
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
