"""The street itself: cross-section layout, ground, lane markings, walls and fences, skyline.

:func:`sample_layout` draws the cross-section (lanes, parking strips, curbs, sidewalks, what lines each
side); the ``build_*`` functions add the structures along the street to a
:class:`~causal_tune_ros.synthetic.primitives.Builder` (buildings: :mod:`.buildings`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_tune_ros.synthetic.labels import BUILDING, FENCE, ROAD, SIDEWALK, TERRAIN, VEGETATION, WALL
from causal_tune_ros.synthetic.primitives import (
    L_BACKDROP,
    L_EDGE,
    L_GROUND,
    L_MARKING,
    Builder,
    box,
    ground_quad,
)


@dataclass(frozen=True)
class Side:
    """One side of the street, from the curb line outwards.

    Attributes:
        sign: +1 left of the road, -1 right.
        edge: Lateral position of the road edge (curb line).
        curb_h: Curb height (m); the sidewalk, verge and yard lie at this height.
        verge: Width of the grass strip between curb and sidewalk (0: none).
        sidewalk: Sidewalk width.
        yard: Width of the terrain between sidewalk and buildings (0: none).
        kind: ``"buildings"`` or ``"park"``.
    """

    sign: float
    edge: float
    curb_h: float
    verge: float
    sidewalk: float
    yard: float
    kind: str

    def y(self, offset: float) -> float:
        """Lateral position ``offset`` metres away from the road edge on this side."""
        return self.edge + self.sign * offset

    @property
    def walk(self) -> tuple[float, float]:
        """``(inner, outer)`` offsets of the sidewalk from the road edge."""
        a = 0.25 + self.verge
        return a, a + self.sidewalk

    @property
    def building_line(self) -> float:
        """Offset of the building fronts from the road edge."""
        return self.walk[1] + self.yard


@dataclass(frozen=True)
class StreetLayout:
    """Cross-section of a straight street; the street frame has ``y = 0`` at the centre of the ego lane.

    Attributes:
        lane_w: Lane width (m).
        lanes_right: Lanes in the ego direction (on the right).
        lanes_left: Oncoming lanes (0 for a one-way street).
        parking: Widths of the parking strips ``(right, left)`` (0: none).
        ego_y: Lateral offset of the ego vehicle within its lane.
        y_right: Lateral position of the right road edge.
        y_left: Lateral position of the left road edge.
        lanes: Lateral positions of the lane centres, right to left.
        sides: ``(right, left)`` :class:`Side`.
        far: Distance of the skyline that closes the street.
    """

    lane_w: float
    lanes_right: int
    lanes_left: int
    parking: tuple[float, float]
    ego_y: float
    y_right: float
    y_left: float
    lanes: tuple[float, ...]
    sides: tuple[Side, Side]
    far: float

    @property
    def road(self) -> tuple[float, float]:
        """``(right, left)`` lateral limits of the road surface."""
        return self.y_right, self.y_left


def sample_layout(rng: np.random.Generator) -> StreetLayout:
    """Draw a street cross-section (the first draws of a scene from its generator).

    Args:
        rng: The scene's random generator.

    Returns:
        The :class:`StreetLayout`.
    """
    lane_w = rng.uniform(3.0, 3.6)
    lanes_right = int(rng.integers(1, 3))
    lanes_left = 0 if rng.random() < 0.12 else int(rng.integers(1, 3))
    ego_lane = int(rng.integers(lanes_right))  # counted from the right
    parking = (
        rng.uniform(2.0, 2.5) if rng.random() < 0.55 else 0.0,
        rng.uniform(2.0, 2.5) if rng.random() < 0.4 else 0.0,
    )
    ego_y = rng.uniform(-0.35, 0.35)
    y_right = -(ego_lane + 0.5) * lane_w - parking[0]
    y_left = y_right + parking[0] + (lanes_right + lanes_left) * lane_w + parking[1]
    lanes = tuple(y_right + parking[0] + (k + 0.5) * lane_w for k in range(lanes_right + lanes_left))
    sides = []
    for sign, edge in ((-1.0, y_right), (1.0, y_left)):
        kind = "buildings" if rng.random() < 0.8 else "park"
        sides.append(
            Side(
                sign=sign,
                edge=edge,
                curb_h=rng.uniform(0.1, 0.16),
                verge=rng.uniform(0.8, 2.5) if rng.random() < 0.3 else 0.0,
                sidewalk=rng.uniform(1.8, 4.5),
                yard=rng.uniform(2.0, 7.0) if (kind == "park" or rng.random() < 0.25) else 0.0,
                kind=kind,
            )
        )
    far = rng.uniform(300.0, 380.0)
    return StreetLayout(
        lane_w=lane_w,
        lanes_right=lanes_right,
        lanes_left=lanes_left,
        parking=parking,
        ego_y=ego_y,
        y_right=y_right,
        y_left=y_left,
        lanes=lanes,
        sides=(sides[0], sides[1]),
        far=far,
    )


def build_ground(b: Builder, layout: StreetLayout) -> None:
    """Terrain, asphalt, curbs, verges, sidewalks and yards, from behind the camera to past the skyline."""
    rng = b.rng
    road, sides = layout.road, layout.sides
    x0, x1 = -40.0, layout.far + 60.0
    grass = b.jitter((0.33, 0.42, 0.2) if rng.random() < 0.7 else (0.48, 0.44, 0.3), 0.05)
    b.add(ground_quad(x0, x1, -800, 800), TERRAIN, grass, L_GROUND, fine=0.12, coarse=0.18, snow=1.0)
    asphalt = b.jitter(np.full(3, rng.uniform(0.28, 0.42)) + np.array([0.0, 0.0, 0.015]), 0.02)
    b.add(ground_quad(x0, x1, road[0], road[1]), ROAD, asphalt, L_GROUND, fine=0.07, coarse=0.06, snow=0.7)
    walk_col = b.jitter(
        (0.62, 0.6, 0.57) if rng.random() < 0.6 else (0.62, 0.52, 0.47), 0.05
    )  # grey concrete or reddish pavers
    curb_col = b.jitter((0.66, 0.66, 0.64), 0.03)

    def grass_strip(y0: float, y1: float, z: float) -> None:  # verge and yard: the same terrain
        b.add(ground_quad(x0, x1, y0, y1, z), TERRAIN, grass, L_GROUND, fine=0.12, coarse=0.2, snow=1.0)

    for s in sides:
        h = s.curb_h
        # Curb: top strip and the vertical face towards the road (sidewalk class, as Cityscapes labels curbs).
        b.add(ground_quad(x0, x1, s.y(0.0), s.y(0.25), h), SIDEWALK, curb_col, L_GROUND, fine=0.05, snow=0.9)
        face = np.array([[x0, s.edge, 0.0], [x1, s.edge, 0.0], [x1, s.edge, h], [x0, s.edge, h]])
        b.add(face, SIDEWALK, curb_col * 0.85, L_MARKING, normal=np.array([0.0, -s.sign, 0.0]), fine=0.05)
        if s.verge > 0:
            grass_strip(s.y(0.25), s.y(0.25 + s.verge), h)
        a, c = s.walk
        b.add(
            ground_quad(x0, x1, s.y(a), s.y(c), h),
            SIDEWALK,
            walk_col,
            L_GROUND,
            fine=0.06,
            coarse=0.05,
            snow=0.95,
        )
        if s.yard > 0:
            grass_strip(s.y(c), s.y(c + s.yard), h)


def build_markings(b: Builder, layout: StreetLayout, crosswalk: float | None) -> None:
    """Lane lines, edge lines and (at ``crosswalk`` metres ahead, if given) a crosswalk and a stop line."""
    rng = b.rng
    lanes_right, lanes_left, lane_w = layout.lanes_right, layout.lanes_left, layout.lane_w
    y_right, parking = layout.y_right, layout.parking
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
            b.add(ground_quad(x, x + dash, y - mw / 2, y + mw / 2), ROAD, color, L_MARKING, **kw)
            x += dash + gap

    def solid(y: float, color) -> None:
        b.add(ground_quad(-40.0, 260.0, y - mw / 2, y + mw / 2), ROAD, color, L_MARKING, **kw)

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
            b.add(ground_quad(crosswalk, crosswalk + length, y, y + stripe), ROAD, white, L_MARKING, **kw)
            y += 2 * stripe
        stop = crosswalk - rng.uniform(1.5, 3.0)
        b.add(ground_quad(stop - 0.4, stop, lane_start, center), ROAD, white, L_MARKING, **kw)


def build_edge(b: Builder, side: Side, far: float) -> None:
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
            v8 = box(x + length / 2, yl + side.sign * 0.4, 0.0, length, 0.8, side.curb_h, side.curb_h + h)
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
            v8 = box(x + length / 2, yl + side.sign * 0.15, 0.0, length, 0.3, side.curb_h, side.curb_h + h)
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


def build_backdrop(b: Builder, x: float) -> None:
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
