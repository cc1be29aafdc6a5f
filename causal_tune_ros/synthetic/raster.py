"""Painter's-algorithm rasteriser for planar 3-D primitives, with exact per-pixel labels and depth.

Every primitive is drawn into one integer *primitive-id* map (far to near, later wins), so the label map,
the colour and the depth of a pixel all come from the same primitive: the labels are exact by
construction. Per-pixel values are then table look-ups indexed by that id; depth is the intersection of the
pixel's ray with the primitive's plane, so long surfaces (road, facades) get a true per-pixel depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from causal_tune_ros.synthetic.camera import NEAR_PLANE, Camera, clip_near
from causal_tune_ros.synthetic.labels import SKY

#: Depth given to sky pixels and the largest depth stored (metres).
SKY_DEPTH = 1000.0
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_SCALE = float(1 << _SHIFT)


@dataclass
class Primitive:
    """One planar polygon or polyline in the world frame.

    Attributes:
        verts: ``(N, 3)`` world vertices, in order.
        cls: Train id of every pixel it covers.
        color: RGB in [0, 1] before shading.
        layer: Coarse drawing order (lower first).
        dist: Within a layer, larger distances are drawn first.
        seq: Tie-break (insertion order): within one object, parts drawn later cover earlier ones.
        normal: Outward world normal for back-face culling, or ``None`` for a two-sided primitive.
        fine: Amplitude of fine (per-pixel) texture noise.
        coarse: Amplitude of coarse (blotchy) texture noise.
        emissive: RGB light it emits at night (``None``: none).
        snow: How readily snow settles on it, 0..1.
        line_width: 0 for a filled polygon, else the width (metres) of a polyline.
        closed: Whether a polyline is closed.
        shade: Whether sunlight shading by the normal applies (False for markings and glass-like flats).
        sizes: For a primitive made of several coplanar polygons drawn with one id (windows of a facade),
            the vertex count of each polygon; ``None`` for a single polygon.
    """

    verts: np.ndarray
    cls: int
    color: np.ndarray
    layer: int
    dist: float
    seq: int
    normal: np.ndarray | None = None
    fine: float = 0.03
    coarse: float = 0.0
    emissive: np.ndarray | None = None
    snow: float = 0.0
    line_width: float = 0.0
    closed: bool = False
    shade: bool = True
    sizes: tuple[int, ...] | None = None


@dataclass
class Raster:
    """Result of rasterising a primitive list.

    Attributes:
        ids: ``(H, W)`` int32 primitive id per pixel (0 = nothing drawn, i.e. sky).
        cls: ``(N + 1,)`` uint8 train id per id (id 0 -> sky).
        color: ``(N + 1, 3)`` float32 shaded colour per id.
        fine: ``(N + 1,)`` float32 fine-noise amplitude per id.
        coarse: ``(N + 1,)`` float32 coarse-noise amplitude per id.
        emissive: ``(N + 1, 3)`` float32 night emission per id.
        snow: ``(N + 1,)`` float32 snow propensity per id.
        normal: ``(N + 1, 3)`` float32 world normal per id, facing the camera.
        plane: ``(N + 1, 4)`` float32 optical-frame plane ``(nx, ny, nz, d)`` with ``n . p = d``.
        zmean: ``(N + 1,)`` float32 mean vertex depth per id (fallback where a ray misses the plane).
        drawn: Indices (into the input list) of the primitives that were drawn, in drawing order.
    """

    ids: np.ndarray
    cls: np.ndarray
    color: np.ndarray
    fine: np.ndarray
    coarse: np.ndarray
    emissive: np.ndarray
    snow: np.ndarray
    normal: np.ndarray
    plane: np.ndarray
    zmean: np.ndarray
    drawn: list[int] = field(default_factory=list)
    _maps: np.ndarray | None = field(default=None, repr=False)

    def gather(self, table: np.ndarray) -> np.ndarray:
        """Per-pixel look-up ``table[ids]`` for a ``(N + 1,)`` or ``(N + 1, C)`` table (C <= 4).

        OpenCV's nearest-neighbour ``remap`` over a one-row table image gathers all channels in one pass,
        two to three times faster than numpy fancy indexing per channel.
        """
        table = np.ascontiguousarray(table)
        if table.shape[0] >= 32000 or (table.ndim == 2 and table.shape[1] > 4) or table.dtype == np.float64:
            return table[self.ids]
        if self._maps is None:
            self._maps = cv2.convertMaps(
                self.ids.astype(np.float32), np.zeros(self.ids.shape, np.float32), cv2.CV_16SC2
            )[0]
        src = table[None] if table.ndim == 2 else table[None, :]
        return cv2.remap(src, self._maps, None, cv2.INTER_NEAREST)


def polygon_normal(verts: np.ndarray) -> np.ndarray:
    """Unnormalised normal of a planar polygon from three well-spread vertices (zero if degenerate)."""
    n = len(verts)
    if n < 3:
        return np.zeros(3)
    k = max(1, n // 3)
    return np.cross(verts[k] - verts[0], verts[min(2 * k, n - 1)] - verts[0])


def _clip_rect(uv: np.ndarray, lo: float, hi_u: float, hi_v: float) -> np.ndarray:
    """Clip a 2-D polygon to ``[lo, hi_u] x [lo, hi_v]`` so cv2 never sees huge coordinates."""
    poly = uv
    for axis, bound, keep_above in ((0, lo, True), (0, hi_u, False), (1, lo, True), (1, hi_v, False)):
        if len(poly) == 0:
            break
        out = []
        n = len(poly)
        for i in range(n):
            cur, nxt = poly[i], poly[(i + 1) % n]
            cin = cur[axis] >= bound if keep_above else cur[axis] <= bound
            nin = nxt[axis] >= bound if keep_above else nxt[axis] <= bound
            if cin:
                out.append(cur)
            if cin != nin:
                t = (bound - cur[axis]) / (nxt[axis] - cur[axis])
                out.append(cur + t * (nxt - cur))
        poly = np.array(out) if out else np.zeros((0, 2))
    return poly


def rasterize(prims: list[Primitive], cam: Camera, sun: np.ndarray) -> Raster:
    """Draw primitives far to near into a primitive-id map and build the per-id tables.

    Everything that does not need the drawing order (projection, culling, planes, shading) is computed for
    all primitives at once; the Python loop only clips the few primitives that cross the near plane and
    calls OpenCV.

    Args:
        prims: Primitives in the world frame.
        cam: The camera.
        sun: Unit vector towards the sun (world frame), for flat shading.

    Returns:
        The :class:`Raster`.
    """
    h, w = cam.height, cam.width
    ids = np.zeros((h, w), np.int32)
    n = len(prims)
    if n == 0:
        return _tables(ids, [], {}, np.zeros(0, np.int64))

    counts = np.array([len(p.verts) for p in prims])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    world = np.concatenate([p.verts for p in prims]).astype(np.float64)
    opt = cam.to_optical(world)
    z = opt[:, 2]
    zmin = np.minimum.reduceat(z, offsets[:-1])
    zmax = np.maximum.reduceat(z, offsets[:-1])
    zmean = np.add.reduceat(z, offsets[:-1]) / counts
    fx, fy, cx, cy = cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = np.where(z >= NEAR_PLANE, z, 1.0)  # vertices behind the near plane are clipped below anyway
        u = opt[:, 0] / zs * fx + cx
        v = opt[:, 1] / zs * fy + cy
    umin, umax = np.minimum.reduceat(u, offsets[:-1]), np.maximum.reduceat(u, offsets[:-1])
    vmin, vmax = np.minimum.reduceat(v, offsets[:-1]), np.maximum.reduceat(v, offsets[:-1])
    limit = 4.0 * max(h, w)
    in_front = zmin >= NEAR_PLANE
    on_screen = (umax >= -2) & (umin <= w + 1) & (vmax >= -2) & (vmin <= h + 1)
    small_coords = np.maximum(np.abs(u), np.abs(v)).astype(np.float64)
    big = np.maximum.reduceat(small_coords, offsets[:-1]) > limit
    fast = in_front & ~big
    pts = np.round(np.column_stack([u, v]) * _SCALE)
    pts = np.clip(np.nan_to_num(pts), -(2**30), 2**30).astype(np.int32)

    # Normals: given ones, else from three spread vertices; back-face culling on the given ones.
    first = world[offsets[:-1]]
    k = np.maximum(1, counts // 3)
    a = world[offsets[:-1] + k] - first
    bvec = world[offsets[:-1] + np.minimum(2 * k, counts - 1)] - first
    normals = np.cross(a, bvec)
    given = np.array([p.normal is not None for p in prims])
    if given.any():
        normals[given] = np.array([p.normal for p in prims if p.normal is not None], np.float64)
    center = cam.center
    facing = np.einsum("ij,ij->i", normals, center - first)
    visible = (zmax >= NEAR_PLANE) & (~given | (facing > 0.0))
    is_line = np.array([p.line_width > 0.0 for p in prims])
    visible &= ~(is_line & ~in_front)

    order = sorted(range(n), key=lambda i: (prims[i].layer, -prims[i].dist, prims[i].seq))
    focal = float(fx)
    drawn: list[int] = []
    next_id = 1
    for i in order:
        if not visible[i] or (in_front[i] and not on_screen[i]):
            continue
        p = prims[i]
        o0, o1 = offsets[i], offsets[i + 1]
        if fast[i]:
            polys = np.split(pts[o0:o1], np.cumsum(p.sizes)[:-1]) if p.sizes else [pts[o0:o1]]
        else:
            polys = _clipped(opt[o0:o1], p.sizes, cam, limit)
            if not polys:
                continue
        if is_line[i]:
            thickness = max(1, round(p.line_width * focal / float(zmean[i])))
            cv2.polylines(ids, polys, p.closed, next_id, thickness, cv2.LINE_8, _SHIFT)
        else:
            cv2.fillPoly(ids, polys, next_id, cv2.LINE_8, _SHIFT)
        next_id += 1
        drawn.append(i)

    sel = np.array(drawn, np.int64)
    geo = {
        "normals": normals,
        "facing": facing,
        "first_opt": opt[offsets[:-1]],
        "zmean": zmean,
        "is_line": is_line,
        "sun": sun,
        "rotation": cam.rotation,
    }
    return _tables(ids, prims, geo, sel)


def _clipped(opt: np.ndarray, sizes, cam: Camera, limit: float) -> list[np.ndarray]:
    """Slow path: clip each polygon to the near plane and a generous screen rectangle."""
    out = []
    for q in np.split(opt, np.cumsum(sizes)[:-1]) if sizes else (opt,):
        if q[:, 2].min() < NEAR_PLANE:
            q = clip_near(q)
            if len(q) < 3:
                continue
        uv = cam.project(q)
        if np.abs(uv).max() > limit:
            uv = _clip_rect(uv, -limit / 4, cam.width + limit / 4, cam.height + limit / 4)
            if len(uv) < 3:
                continue
        out.append(np.round(uv * _SCALE).astype(np.int32))
    return out


def _tables(ids: np.ndarray, prims: list[Primitive], geo: dict, sel: np.ndarray) -> Raster:
    """Per-id tables (row 0 = sky, row k = k-th drawn primitive)."""
    m = len(sel) + 1
    cls = np.full(m, SKY, np.uint8)
    color = np.zeros((m, 3), np.float32)
    fine = np.zeros(m, np.float32)
    coarse = np.zeros(m, np.float32)
    emissive = np.zeros((m, 3), np.float32)
    snow = np.zeros(m, np.float32)
    normal = np.zeros((m, 3), np.float32)
    normal[0] = (0.0, 0.0, -1.0)
    plane = np.zeros((m, 4), np.float32)
    plane[0] = (0.0, 0.0, 1.0, SKY_DEPTH)
    zmean = np.full(m, SKY_DEPTH, np.float32)
    if m == 1:
        return Raster(ids, cls, color, fine, coarse, emissive, snow, normal, plane, zmean, [])
    drawn = [prims[i] for i in sel]
    cls[1:] = [p.cls for p in drawn]
    fine[1:] = [p.fine for p in drawn]
    coarse[1:] = [p.coarse for p in drawn]
    snow[1:] = [p.snow for p in drawn]
    for row, p in enumerate(drawn, start=1):
        if p.emissive is not None:
            emissive[row] = p.emissive
    nw = geo["normals"][sel]
    norm = np.linalg.norm(nw, axis=1)
    degenerate = (norm < 1e-9) | geo["is_line"][sel]
    nw = nw / np.where(norm < 1e-9, 1.0, norm)[:, None]
    # Two-sided primitives: use the side that faces the camera (for shading and snow).
    nw *= np.where(geo["facing"][sel] < 0.0, -1.0, 1.0)[:, None]
    rot = geo["rotation"]
    toward_cam = -(rot.T @ np.array([0.0, 0.0, 1.0]))
    nw[degenerate] = toward_cam
    n_opt = nw @ rot.T
    d = np.einsum("ij,ij->i", n_opt, geo["first_opt"][sel])
    zm = np.maximum(geo["zmean"][sel], NEAR_PLANE)
    plane[1:, :3] = n_opt
    plane[1:, 3] = d
    plane[1:][degenerate] = np.column_stack(
        [np.zeros(degenerate.sum()), np.zeros(degenerate.sum()), np.ones(degenerate.sum()), zm[degenerate]]
    )
    normal[1:] = nw
    zmean[1:] = zm
    shade_on = np.array([p.shade for p in drawn])
    shade = np.where(shade_on, 0.62 + 0.45 * np.maximum(0.0, nw @ geo["sun"]), 1.0)
    color[1:] = np.clip(np.array([p.color for p in drawn], np.float32), 0.0, 1.0) * shade[:, None]
    return Raster(ids, cls, color, fine, coarse, emissive, snow, normal, plane, zmean, list(sel))


def depth_map(raster: Raster, cam: Camera) -> np.ndarray:
    """Per-pixel depth along the optical axis (metres) from each pixel's primitive plane.

    Args:
        raster: Rasterised scene.
        cam: Its camera.

    Returns:
        ``(H, W)`` float32 depth, clipped to ``[NEAR_PLANE, SKY_DEPTH]``; sky pixels are ``SKY_DEPTH``.
    """
    rx, ry = cam.pixel_rays()
    ids = raster.ids
    pl = raster.plane
    px = raster.gather(pl)  # (H, W, 4)
    denom = px[..., 0] * rx + px[..., 1] * ry + px[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = px[..., 3] / denom
    # A rim pixel's ray can graze or miss its primitive's plane (rounding at polygon edges): fall back to the
    # primitive's mean depth there, then clamp to the drawable range.
    bad = ~(depth > 0.0) | ~np.isfinite(depth)
    if bad.any():
        depth[bad] = raster.zmean[ids[bad]]
    np.clip(depth, NEAR_PLANE, SKY_DEPTH, out=depth)
    depth[ids == 0] = SKY_DEPTH
    return depth.astype(np.float32, copy=False)
