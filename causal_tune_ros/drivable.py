"""Drivable-area mask and its projection onto the ground plane as an occupancy grid (numpy only).

Frames and conventions
----------------------
* **Ground frame** (``base_link``-like, REP-103): x forward, y left, z up. The ground is the plane
  ``z = 0`` of this frame. If your frame's origin is not on the ground (e.g. a rear-axle ``base_link``),
  pass ``ground_z`` to :meth:`GroundPose.from_transform` and place the grid at that height.
* **Camera optical frame** (REP-103 ``*_optical_frame``): z forward along the optical axis, x right,
  y down. Pixel ``(u, v)`` (column, row; the centre of the top-left pixel is ``(0, 0)``, as in
  ``sensor_msgs/CameraInfo``) looks along the ray ``K^-1 [u, v, 1]``.
* :class:`GroundPose` places the camera's optical centre at ``(x, y, height)`` in the ground frame with
  body angles of a ``camera_link`` (x forward) frame: ``R = Rz(yaw) Ry(pitch) Rx(roll)`` (ZYX, the
  order of a TF ``rpy``), then the fixed optical rotation. All zero means a level camera looking along
  +x. Right-hand rotations: **pitch > 0 tilts the view down** toward the ground, yaw > 0 turns it left,
  roll > 0 lowers the camera's right side.
* :class:`GridSpec` follows ``nav_msgs/OccupancyGrid``: cell ``(row, col)`` covers
  ``x in origin_x + [col, col + 1) * resolution`` and ``y in origin_y + [row, row + 1) * resolution``;
  ``data`` is the grid in row-major order (rows along +y, columns along +x), and
  ``info.origin.position = (origin_x, origin_y, ground z)`` with identity orientation.

Projection (:class:`GroundProjector`, :func:`project_to_grid`): every ``stride``-th pixel in both
directions whose ray points below the horizon is intersected with the ground (inverse perspective
mapping) and votes for its cell: free if the mask says drivable, occupied otherwise. Far cells are
smaller than a pixel footprint, so the strided pixels alone would leave holes there; therefore every cell
whose centre is in view also gets the vote of the pixel its centre projects to. A cell is 0 (free) when
more than half its votes are drivable, 100 (occupied) otherwise (ties count as occupied: the
conservative side), -1 when no pixel sees it. Objects standing on the road are not on the ground plane,
so their pixels land *behind* them; they still count as occupied, which is the safe error.
Lens distortion is ignored: use the rectified image's intrinsics (``CameraInfo.P``) or accept the error
of a mildly distorted lens.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.limits import MAX_GRID_CELLS

FREE = 0
OCCUPIED = 100
UNKNOWN = -1

#: Rotation taking optical-frame vectors (x right, y down, z forward) into a camera body frame with
#: x forward, y left, z up: optical z -> body x, optical x -> body -y, optical y -> body -z.
OPTICAL_TO_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])

# drivable_mask: up to this many class ids use equality tests, more a 256-entry lookup table.
_MAX_COMPARISONS = 8

# Pixels cast onto the ground, or grid cells projected into the image, at once while a GroundProjector is
# built: bounds the float64 temporaries of both passes (about 120 B each) whatever the image or grid size.
_CELL_CHUNK = 1 << 17

# Rays within this much of the horizon (ground-frame z component of the unit-free ray) never hit the
# ground at a useful distance; treating them as sky avoids dividing by ~0.
_HORIZON_EPS = 1e-9


def drivable_mask(class_mask: np.ndarray, class_ids: Iterable[int]) -> np.ndarray:
    """Mark the pixels whose class is one of ``class_ids``.

    Args:
        class_mask: ``(H, W)`` integer train ids (any integer dtype; values outside 0..255 are never
            drivable).
        class_ids: Train ids that count as drivable (e.g. ``[classes.index("road")]``).

    Returns:
        ``(H, W)`` uint8, 255 where drivable, 0 elsewhere (``sensor_msgs`` ``mono8``).

    Raises:
        ConfigError: A class id outside 0..255 or a non-integer mask.
    """
    ids = [int(i) for i in class_ids]
    bad = [i for i in ids if not 0 <= i <= 255]
    if bad:
        raise ConfigError(f"drivable class ids must be in 0..255, got {bad}")
    mask = np.asarray(class_mask)
    if mask.dtype.kind not in "ui":
        raise ConfigError(f"class_mask must hold integer class ids, got dtype {mask.dtype}")
    ids = sorted(set(ids))
    if len(ids) > _MAX_COMPARISONS and mask.dtype == np.uint8:
        lut = np.zeros(256, dtype=np.uint8)
        lut[ids] = 255
        return np.take(lut, mask)
    # A few equality tests are ~10x faster than a numpy table lookup (which gathers byte by byte).
    hit = np.zeros(mask.shape, dtype=bool)
    for i in ids:
        hit |= mask == i
    out = hit.view(np.uint8)
    out *= np.uint8(255)
    return out


def _transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``points @ matrix.T`` for ``(..., 3)`` points, as 9 multiply-adds.

    Deliberately not ``@``: a BLAS call for an (N, 3) x (3, 3) product is no faster and, on a busy
    multi-threaded BLAS, ten times slower and erratic.
    """
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return np.stack([matrix[i, 0] * x + matrix[i, 1] * y + matrix[i, 2] * z for i in range(3)], axis=-1)


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def quaternion_to_matrix(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix of a quaternion in ROS order ``(x, y, z, w)`` (normalised first).

    Raises:
        ConfigError: A zero or non-finite quaternion.
    """
    x, y, z, w = (float(v) for v in q)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-12:
        raise ConfigError(f"invalid quaternion {tuple(q)}")
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass(frozen=True)
class GroundPose:
    """Pose of the camera's optical centre above the ground plane (conventions: module docstring).

    Attributes:
        height: Height of the optical centre above the ground plane, metres (> 0).
        pitch: Radians; > 0 tilts the view down.
        roll: Radians about the forward axis; > 0 lowers the camera's right side.
        yaw: Radians about the up axis; > 0 turns the view left.
        x: Forward position of the optical centre in the ground frame, metres.
        y: Leftward position of the optical centre in the ground frame, metres.

    Raises:
        ConfigError: A non-finite value or ``height <= 0``.
    """

    height: float
    pitch: float = 0.0
    roll: float = 0.0
    yaw: float = 0.0
    x: float = 0.0
    y: float = 0.0

    def __post_init__(self) -> None:
        values = (self.height, self.pitch, self.roll, self.yaw, self.x, self.y)
        if not all(math.isfinite(float(v)) for v in values):
            raise ConfigError(f"ground pose has a non-finite value: {self}")
        if self.height <= 0:
            raise ConfigError(f"camera height above the ground must be > 0, got {self.height}")

    def rotation(self) -> np.ndarray:
        """``(3, 3)`` rotation taking optical-frame vectors into the ground frame."""
        body = _rot_z(self.yaw) @ _rot_y(self.pitch) @ _rot_x(self.roll)
        return body @ OPTICAL_TO_BODY

    def translation(self) -> np.ndarray:
        """``(3,)`` optical centre in the ground frame: ``(x, y, height)``."""
        return np.array([self.x, self.y, self.height], dtype=np.float64)

    @classmethod
    def from_transform(
        cls,
        translation: Sequence[float],
        rotation: Sequence[float] | np.ndarray,
        optical: bool = True,
        ground_z: float = 0.0,
    ) -> GroundPose:
        """Build the pose from a TF-style transform of the camera frame in the ground frame.

        This is what ``tf2`` ``lookup_transform(ground_frame, camera_frame, t)`` returns: the camera
        frame's origin and orientation expressed in the ground frame.

        Args:
            translation: ``(x, y, z)`` of the camera origin in the ground frame.
            rotation: Quaternion ``(x, y, z, w)`` or a ``(3, 3)`` rotation matrix.
            optical: ``True`` if the camera frame is an optical frame (z forward, x right, y down),
                ``False`` for a body-style ``camera_link`` (x forward, y left, z up).
            ground_z: Height of the ground plane in the ground frame (0 for ``base_footprint``).

        Returns:
            The equivalent :class:`GroundPose` (exact up to float rounding; at pitch = ±90° the split
            between roll and yaw is not unique and roll is set to 0).

        Raises:
            ConfigError: Malformed rotation, or a camera that is not above the ground.
        """
        rot = np.asarray(rotation, dtype=np.float64)
        if rot.shape == (4,):
            rot = quaternion_to_matrix(rot)
        elif rot.shape != (3, 3) or not np.all(np.isfinite(rot)):
            raise ConfigError(f"rotation must be a quaternion (x, y, z, w) or a 3x3 matrix, got {rot.shape}")
        body = rot @ OPTICAL_TO_BODY.T if optical else rot
        # body = Rz(yaw) Ry(pitch) Rx(roll): body[2, 0] = -sin(pitch).
        pitch = math.asin(max(-1.0, min(1.0, -body[2, 0])))
        if math.cos(pitch) > 1e-9:
            roll = math.atan2(body[2, 1], body[2, 2])
            yaw = math.atan2(body[1, 0], body[0, 0])
        else:  # gimbal lock: only yaw - roll (or yaw + roll) is defined
            roll = 0.0
            yaw = math.atan2(-body[0, 1], body[1, 1])
        tx, ty, tz = (float(v) for v in translation)
        return cls(height=tz - ground_z, pitch=pitch, roll=roll, yaw=yaw, x=tx, y=ty)


@dataclass(frozen=True)
class GridSpec:
    """Geometry of the occupancy grid on the ground plane (``nav_msgs/OccupancyGrid`` layout).

    Attributes:
        resolution: Cell size in metres.
        length_m: Extent along x (forward), metres.
        width_m: Extent along y (lateral), metres.
        origin_x: x of the grid's corner (low-x edge of column 0). Default 0: the grid starts at the
            ground frame's origin.
        origin_y: y of the grid's corner (low-y edge of row 0). Default ``-width_m / 2``: centred.

    Raises:
        ConfigError: Non-positive or non-finite sizes, or a grid of more than
            :data:`~causal_tune_ros.limits.MAX_GRID_CELLS` cells (the reason names the cell count and
            the limit).
    """

    resolution: float = 0.1
    length_m: float = 30.0
    width_m: float = 20.0
    origin_x: float = 0.0
    origin_y: float | None = None
    _shape: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("resolution", "length_m", "width_m"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"grid {name} must be a positive number, got {value}")
        if self.origin_y is None:
            object.__setattr__(self, "origin_y", -self.width_m / 2.0)
        if not (math.isfinite(self.origin_x) and math.isfinite(self.origin_y)):
            raise ConfigError(f"grid origin must be finite, got ({self.origin_x}, {self.origin_y})")
        rows = max(1, round(self.width_m / self.resolution))
        cols = max(1, round(self.length_m / self.resolution))
        if rows * cols > MAX_GRID_CELLS:
            raise ConfigError(
                f"grid of {rows} x {cols} = {rows * cols} cells ({self.width_m:g} m x {self.length_m:g} m at "
                f"{self.resolution:g} m per cell) is too large: at most {MAX_GRID_CELLS} cells keep the "
                "projection's memory bounded; use a coarser resolution or a smaller extent"
            )
        object.__setattr__(self, "_shape", (int(rows), int(cols)))

    @property
    def rows(self) -> int:
        """Cells along y (``OccupancyGrid.info.height``)."""
        return self._shape[0]

    @property
    def cols(self) -> int:
        """Cells along x (``OccupancyGrid.info.width``)."""
        return self._shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return self._shape

    def cell_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x of each column centre (cols,), y of each row centre (rows,))`` in metres."""
        xs = self.origin_x + (np.arange(self.cols) + 0.5) * self.resolution
        ys = self.origin_y + (np.arange(self.rows) + 0.5) * self.resolution
        return xs, ys

    def cell_index(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat row-major cell index of ground points, -1 outside the grid (NaN counts as outside)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            col = np.floor((x - self.origin_x) / self.resolution)
            row = np.floor((y - self.origin_y) / self.resolution)
            inside = (col >= 0) & (col < self.cols) & (row >= 0) & (row < self.rows)
        index = np.full(np.broadcast(x, y).shape, -1, dtype=np.int64)
        index[inside] = row[inside].astype(np.int64) * self.cols + col[inside].astype(np.int64)
        return index


def _check_intrinsics(K: np.ndarray) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape == (9,):
        K = K.reshape(3, 3)  # CameraInfo.k is a flat 9-array
    if K.shape != (3, 3):
        raise ConfigError(f"camera matrix K must be a 3x3 matrix, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ConfigError("camera matrix K has NaN or infinite entries")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or abs(K[2, 2] - 1.0) > 1e-6 or np.any(K[2, :2] != 0):
        raise ConfigError(
            f"camera matrix K is not a pinhole intrinsic matrix (fx, fy > 0, last row 0 0 1): {K}"
        )
    return K


def pixel_to_ground(
    u: np.ndarray | float, v: np.ndarray | float, K: np.ndarray, pose: GroundPose
) -> tuple[np.ndarray, np.ndarray]:
    """Cast pixel rays onto the ground plane ``z = 0``.

    Args:
        u: Pixel column(s).
        v: Pixel row(s) (broadcast against ``u``).
        K: ``(3, 3)`` camera matrix (or ``CameraInfo.k`` as 9 values).
        pose: Camera pose above the ground.

    Returns:
        ``(x, y)`` ground-frame coordinates in metres, NaN where the ray does not hit the ground in
        front of the camera (at or above the horizon).

    Raises:
        ConfigError: An invalid camera matrix.
    """
    K = _check_intrinsics(K)
    u_arr, v_arr = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64))
    pixels = np.stack([u_arr, v_arr, np.ones_like(u_arr)], axis=-1)
    # Ray directions in the ground frame: R K^-1 [u v 1]^T, for all pixels at once.
    rays = _transform(pixels, pose.rotation() @ np.linalg.inv(K))
    t = pose.translation()
    down = rays[..., 2] < -_HORIZON_EPS
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(down, -t[2] / rays[..., 2], np.nan)
    return t[0] + s * rays[..., 0], t[1] + s * rays[..., 1]


class GroundProjector:
    """Precomputed pixel -> grid-cell votes for one camera, pose, grid and image size.

    Building costs a few milliseconds (ray casting); :meth:`project` is then two gathers and a
    ``bincount`` per frame. Rebuild it when ``K``, the pose, the grid or the image size changes
    (:func:`project_to_grid` caches the last one for you).

    Args:
        K: ``(3, 3)`` camera matrix for images of ``image_shape``.
        pose: Camera pose above the ground.
        grid: Grid geometry.
        image_shape: ``(height, width)`` of the masks that will be projected.
        stride: Use every ``stride``-th pixel in both directions (pixel centres at ``stride // 2 +
            k * stride``); 4 keeps 1/16 of the pixels. Cells whose centre is in view are always
            observed regardless of the stride (see the module docstring).

    Raises:
        ConfigError: Invalid ``K``, image shape or stride.
    """

    def __init__(
        self, K: np.ndarray, pose: GroundPose, grid: GridSpec, image_shape: tuple[int, int], stride: int = 4
    ) -> None:
        K = _check_intrinsics(K)
        height, width = (int(v) for v in image_shape[:2])
        if height <= 0 or width <= 0:
            raise ConfigError(f"image shape must be positive, got {image_shape}")
        if int(stride) < 1:
            raise ConfigError(f"stride must be >= 1, got {stride}")
        stride = int(stride)
        self.K, self.pose, self.grid = K, pose, grid
        self.image_shape = (height, width)
        self.stride = stride

        # 1. Strided pixels -> ground -> cell, a block of pixel rows at a time (bounded temporaries).
        us = np.arange(stride // 2, width, stride)
        vs = np.arange(stride // 2, height, stride)
        block = max(1, _CELL_CHUNK // max(1, us.size))
        pixel_indices, pixel_cells = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
        for first in range(0, vs.size, block):
            uu, vv = np.meshgrid(us, vs[first : first + block])
            gx, gy = pixel_to_ground(uu, vv, K, pose)
            cells = grid.cell_index(gx, gy)
            hit = cells >= 0
            pixel_indices.append((vv * width + uu)[hit])
            pixel_cells.append(cells[hit])
        pixel_index = np.concatenate(pixel_indices)
        pixel_cell = np.concatenate(pixel_cells)

        # 2. Visible cell centres -> pixel (nearest), so far cells narrower than a pixel step are seen.
        #    A block of grid rows at a time, so the temporaries stay small for any grid size.
        xs, ys = grid.cell_centers()
        rotation_t, origin = pose.rotation().T, pose.translation()
        block_rows = max(1, _CELL_CHUNK // grid.cols)
        center_cells, center_pixels = [], []
        for first in range(0, grid.rows, block_rows):
            gx2, gy2 = np.meshgrid(xs, ys[first : first + block_rows])
            points = np.stack([gx2.ravel(), gy2.ravel(), np.zeros(gx2.size)], axis=1)
            cam = _transform(points - origin, rotation_t)  # R^T (p - t)
            in_front = cam[:, 2] > 1e-6
            with np.errstate(divide="ignore", invalid="ignore"):
                uvw = _transform(cam, K)
                pu = np.rint(uvw[:, 0] / uvw[:, 2])
                pv = np.rint(uvw[:, 1] / uvw[:, 2])
                seen = in_front & (pu >= 0) & (pu < width) & (pv >= 0) & (pv < height)
            center_cells.append(np.flatnonzero(seen) + first * grid.cols)
            center_pixels.append(pv[seen].astype(np.int64) * width + pu[seen].astype(np.int64))
        center_cell = np.concatenate(center_cells)
        center_pixel = np.concatenate(center_pixels)

        self._pixels = np.concatenate([pixel_index, center_pixel]).astype(np.intp)
        self._cells = np.concatenate([pixel_cell, center_cell]).astype(np.intp)
        self._votes = np.bincount(self._cells, minlength=grid.rows * grid.cols)
        self._observed = self._votes > 0

    @property
    def observed(self) -> np.ndarray:
        """``(rows, cols)`` bool: cells some pixel of the image sees (the others stay -1)."""
        return self._observed.reshape(self.grid.shape)

    def project(self, mask: np.ndarray) -> np.ndarray:
        """Project a drivable mask to occupancy values.

        Args:
            mask: ``(H, W)`` with non-zero = drivable (e.g. :func:`drivable_mask` output), at the
                projector's ``image_shape``.

        Returns:
            ``(rows, cols)`` int8: 0 free, 100 occupied, -1 unobserved. ``.ravel()`` is
            ``OccupancyGrid.data``.

        Raises:
            ConfigError: A mask whose shape differs from ``image_shape``.
        """
        mask = np.asarray(mask)
        if mask.shape != self.image_shape:
            raise ConfigError(
                f"mask of shape {mask.shape} does not match the camera image shape {self.image_shape}"
            )
        drivable = mask.reshape(-1)[self._pixels] != 0
        free_votes = np.bincount(self._cells[drivable], minlength=self._votes.size)
        out = np.full(self._votes.size, UNKNOWN, dtype=np.int8)
        out[self._observed] = np.where(
            2 * free_votes[self._observed] > self._votes[self._observed], FREE, OCCUPIED
        )
        return out.reshape(self.grid.shape)


_cache_lock = threading.Lock()
_cache: tuple[tuple, GroundProjector] | None = None


def project_to_grid(
    mask: np.ndarray, K: np.ndarray, pose: GroundPose, grid: GridSpec, stride: int = 4
) -> np.ndarray:
    """Project a drivable mask onto the ground grid (see the module docstring for the rules).

    Keeps the last :class:`GroundProjector` (keyed by ``K``, pose, grid, image shape and stride), so
    calling this per frame with a fixed camera costs only the per-frame gathers.

    Args:
        mask: ``(H, W)``, non-zero = drivable.
        K: ``(3, 3)`` camera matrix for images of the mask's size (or ``CameraInfo.k``).
        pose: Camera pose above the ground.
        grid: Grid geometry.
        stride: Pixel subsampling step (see :class:`GroundProjector`).

    Returns:
        ``(rows, cols)`` int8 occupancy: 0 free, 100 occupied, -1 unobserved.

    Raises:
        ConfigError: Invalid camera matrix, mask, or stride.
    """
    global _cache
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ConfigError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    K = _check_intrinsics(K)
    key = (K.tobytes(), pose, grid, mask.shape, int(stride))
    with _cache_lock:
        cached = _cache
    if cached is not None and cached[0] == key:
        projector = cached[1]
    else:
        projector = GroundProjector(K, pose, grid, mask.shape, stride)
        with _cache_lock:
            _cache = (key, projector)
    return projector.project(mask)
