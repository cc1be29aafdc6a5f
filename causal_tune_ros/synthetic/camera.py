"""Pinhole camera on a vehicle: intrinsics, the camera-to-ground pose and world -> pixel projection.

Frames (REP-103 / REP-105 style):

* ground frame (the vehicle's ``base_link`` on the road surface): x forward, y left, z up;
* camera body frame: the same axes, rotated by the pose (roll about x, pitch about y, yaw about z, applied
  as ``R = Rz(yaw) Ry(pitch) Rx(roll)``), so a positive pitch tilts the camera *down* towards the road;
* camera optical frame: z forward, x right, y down (what ``K`` projects).

The scene generator builds geometry in a "world" frame attached to the street (x along the road, y to
the left, z up); :class:`Camera` folds the vehicle's place on the street and the camera pose into one
rigid transform ``world -> optical``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Rotation taking body-frame vectors (x fwd, y left, z up) to the optical frame (x right, y down, z fwd).
OPTICAL_FROM_BODY = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])

#: Nearest distance (m, along the optical axis) that is drawn; geometry closer than this is clipped.
NEAR_PLANE = 0.05


def rotation_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """``Rz(yaw) @ Ry(pitch) @ Rx(roll)`` (radians): body -> parent frame.

    Args:
        roll: Rotation about x (radians).
        pitch: Rotation about y (radians); positive tilts the x axis down (towards -z).
        yaw: Rotation about z (radians); positive turns the x axis to the left.

    Returns:
        ``(3, 3)`` float64 rotation matrix.
    """
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    return rz @ ry @ rx


def intrinsics(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """Pinhole ``K`` with square pixels and the principal point at the image centre.

    Args:
        width: Image width in pixels.
        height: Image height in pixels.
        hfov_deg: Horizontal field of view in degrees.

    Returns:
        ``(3, 3)`` float64 camera matrix.
    """
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
    # Pixel centres sit at integer coordinates (OpenCV convention), so the centre is (W - 1) / 2.
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Camera:
    """A camera placed in the street ("world") frame.

    Attributes:
        K: ``(3, 3)`` intrinsics.
        width: Image width.
        height: Image height.
        rotation: ``(3, 3)`` world -> optical rotation ``A``.
        translation: ``(3,)`` world -> optical offset ``b`` (``p_opt = A p_world + b``).
    """

    K: np.ndarray
    width: int
    height: int
    rotation: np.ndarray
    translation: np.ndarray

    @staticmethod
    def build(
        K: np.ndarray,
        width: int,
        height: int,
        pose: dict[str, float],
        vehicle_xy: tuple[float, float] = (0.0, 0.0),
        vehicle_heading: float = 0.0,
    ) -> Camera:
        """Compose street -> vehicle ground frame -> camera body -> optical.

        Args:
            K: Intrinsics.
            width: Image width.
            height: Image height.
            pose: Camera-to-ground pose with keys ``height, pitch, roll, yaw, x, y`` (metres, radians).
            vehicle_xy: Position of the ground-frame origin in the street frame.
            vehicle_heading: Heading of the vehicle's x axis in the street frame (radians, left positive).

        Returns:
            The camera.
        """
        # ground -> street: p_street = Rz(heading) p_ground + (vx, vy, 0)
        r_sg = rotation_rpy(0.0, 0.0, vehicle_heading)
        t_sg = np.array([vehicle_xy[0], vehicle_xy[1], 0.0])
        # camera body -> ground
        r_gb = rotation_rpy(pose["roll"], pose["pitch"], pose["yaw"])
        c_g = np.array([pose["x"], pose["y"], pose["height"]])
        # camera centre and body axes in the street frame
        r_sb = r_sg @ r_gb
        c_s = r_sg @ c_g + t_sg
        rot = OPTICAL_FROM_BODY @ r_sb.T
        return Camera(K=K, width=width, height=height, rotation=rot, translation=-rot @ c_s)

    @property
    def center(self) -> np.ndarray:
        """Camera centre in the world frame."""
        return -self.rotation.T @ self.translation

    def to_optical(self, points: np.ndarray) -> np.ndarray:
        """``(N, 3)`` world points -> ``(N, 3)`` optical-frame points."""
        return points @ self.rotation.T + self.translation

    def project(self, points_opt: np.ndarray) -> np.ndarray:
        """``(N, 3)`` optical-frame points with ``z > 0`` -> ``(N, 2)`` pixel coordinates (u, v)."""
        z = points_opt[:, 2:3]
        uv = points_opt[:, :2] / z
        return uv * np.array([self.K[0, 0], self.K[1, 1]]) + np.array([self.K[0, 2], self.K[1, 2]])

    def pixel_rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Normalised ray components ``rx = (u - cx) / fx`` (1, W) and ``ry = (v - cy) / fy`` (H, 1)."""
        rx = ((np.arange(self.width, dtype=np.float32) - self.K[0, 2]) / self.K[0, 0]).astype(np.float32)
        ry = ((np.arange(self.height, dtype=np.float32) - self.K[1, 2]) / self.K[1, 1]).astype(np.float32)
        return rx[None, :], ry[:, None]

    def horizon_rows(self) -> np.ndarray:
        """Row of the horizon (the ground plane's vanishing line) for every column, ``(W,)`` float32.

        A pixel's ray in the world frame is ``A^T r``; it is parallel to the ground where its z component
        vanishes: ``A[0, 2] rx + A[1, 2] ry + A[2, 2] = 0``.
        """
        a = self.rotation
        rx, _ = self.pixel_rays()
        ry = -(a[2, 2] + a[0, 2] * rx[0]) / a[1, 2]
        return (ry * self.K[1, 1] + self.K[1, 2]).astype(np.float32)


def clip_near(points_opt: np.ndarray, near: float = NEAR_PLANE) -> np.ndarray:
    """Clip a polygon (optical frame) against the plane ``z = near`` (Sutherland-Hodgman, one plane).

    Args:
        points_opt: ``(N, 3)`` polygon vertices in order.
        near: Clip distance.

    Returns:
        ``(M, 3)`` vertices of the part with ``z >= near`` (``M`` may be 0).
    """
    out: list[np.ndarray] = []
    n = len(points_opt)
    for i in range(n):
        cur = points_opt[i]
        nxt = points_opt[(i + 1) % n]
        cur_in = cur[2] >= near
        nxt_in = nxt[2] >= near
        if cur_in:
            out.append(cur)
        if cur_in != nxt_in:
            t = (near - cur[2]) / (nxt[2] - cur[2])
            out.append(cur + t * (nxt - cur))
    return np.array(out) if out else np.zeros((0, 3))
