"""drivable.py: mask LUT, pinhole ground geometry against hand-computed cases, occupancy grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from causal_tune_ros.drivable import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    GridSpec,
    GroundPose,
    GroundProjector,
    drivable_mask,
    pixel_to_ground,
    project_to_grid,
    quaternion_to_matrix,
)
from causal_tune_ros.errors import ConfigError

# fx = fy = 500, principal point (320, 240), 640 x 480 images.
K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
H_CAM = 1.5


def test_drivable_mask_lut() -> None:
    classes = np.array([[0, 1, 2], [255, 0, 13]], dtype=np.uint8)
    out = drivable_mask(classes, [0, 13])
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[255, 0, 0], [0, 255, 255]])
    np.testing.assert_array_equal(drivable_mask(classes.astype(np.int64), [0, 13]), out)
    np.testing.assert_array_equal(drivable_mask(classes, []), np.zeros_like(classes))
    with pytest.raises(ConfigError, match=r"0\.\.255"):
        drivable_mask(classes, [256])
    with pytest.raises(ConfigError, match="integer class ids"):
        drivable_mask(classes.astype(np.float32), [0])


@pytest.mark.parametrize("d", [3.0, 5.0, 10.0, 25.0])
@pytest.mark.parametrize("y", [0.0, 1.2, -2.0])
def test_level_camera_hand_computed_rows(d: float, y: float) -> None:
    # A point at distance d, lateral y (left) on the ground is seen at v = cy + fy h / d, u = cx - fx y / d.
    u = 320.0 - 500.0 * y / d
    v = 240.0 + 500.0 * H_CAM / d
    gx, gy = pixel_to_ground(u, v, K, GroundPose(height=H_CAM))
    assert gx == pytest.approx(d, rel=1e-9)
    assert gy == pytest.approx(y, abs=1e-9)


def test_rays_at_or_above_the_horizon_miss_the_ground() -> None:
    gx, gy = pixel_to_ground(
        np.array([320.0, 320.0, 100.0]), np.array([240.0, 100.0, 239.0]), K, GroundPose(1.0)
    )
    assert np.isnan(gx).all() and np.isnan(gy).all()


def test_pitch_yaw_and_offset_hand_computed() -> None:
    # Pitched down by atan(h / 10): the optical axis (principal point) meets the ground 10 m ahead.
    pitch = math.atan2(H_CAM, 10.0)
    gx, gy = pixel_to_ground(320.0, 240.0, K, GroundPose(height=H_CAM, pitch=pitch))
    assert (gx, gy) == pytest.approx((10.0, 0.0), abs=1e-9)
    # Same pitch, turned 90 deg left and mounted at (x=2, y=-1): the point is 10 m to the left.
    gx, gy = pixel_to_ground(
        320.0, 240.0, K, GroundPose(height=H_CAM, pitch=pitch, yaw=math.pi / 2, x=2, y=-1)
    )
    assert (gx, gy) == pytest.approx((2.0, 9.0), abs=1e-9)
    # Pitched up: the principal ray never meets the ground.
    gx, _ = pixel_to_ground(320.0, 240.0, K, GroundPose(height=H_CAM, pitch=-0.1))
    assert np.isnan(gx)


def test_roll_lowers_the_right_side() -> None:
    # Roll > 0 lowers the camera's right side, so the image's right half sees the ground nearer.
    pose = GroundPose(height=H_CAM, pitch=0.2, roll=0.1)
    left_x, _ = pixel_to_ground(120.0, 300.0, K, pose)
    right_x, _ = pixel_to_ground(520.0, 300.0, K, pose)
    assert right_x < left_x


def test_rotation_matches_scipy_and_tf_round_trip() -> None:
    pose = GroundPose(height=1.3, pitch=0.15, roll=-0.05, yaw=0.4, x=1.7, y=0.2)
    body = Rotation.from_euler("ZYX", [pose.yaw, pose.pitch, pose.roll]).as_matrix()
    optical_axes = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)  # optical x, y, z in body
    np.testing.assert_allclose(pose.rotation(), body @ optical_axes, atol=1e-12)
    # TF of the optical frame (what tf2 returns for *_optical_frame) -> the same pose.
    quat = Rotation.from_matrix(pose.rotation()).as_quat()  # x, y, z, w
    back = GroundPose.from_transform((1.7, 0.2, 1.3), quat, optical=True)
    for name in ("height", "pitch", "roll", "yaw", "x", "y"):
        assert getattr(back, name) == pytest.approx(getattr(pose, name), abs=1e-9)
    # TF of a body-style camera_link, ground plane 0.3 m below the frame origin.
    back = GroundPose.from_transform(
        (1.7, 0.2, 1.0), Rotation.from_matrix(body).as_quat(), optical=False, ground_z=-0.3
    )
    assert back.height == pytest.approx(1.3)
    assert back.pitch == pytest.approx(0.15)
    np.testing.assert_allclose(quaternion_to_matrix(quat), pose.rotation(), atol=1e-12)


def test_from_transform_looking_straight_down() -> None:
    pose = GroundPose(height=3.0, pitch=math.pi / 2, yaw=0.3)
    back = GroundPose.from_transform((0, 0, 3.0), pose.rotation())
    np.testing.assert_allclose(back.rotation(), pose.rotation(), atol=1e-9)
    gx, gy = pixel_to_ground(320.0, 240.0, K, back)
    assert (gx, gy) == pytest.approx((0.0, 0.0), abs=1e-9)


def test_invalid_geometry_raises() -> None:
    with pytest.raises(ConfigError, match="height"):
        GroundPose(height=0.0)
    with pytest.raises(ConfigError, match="non-finite"):
        GroundPose(height=1.0, pitch=math.nan)
    with pytest.raises(ConfigError, match="resolution"):
        GridSpec(resolution=0.0)
    with pytest.raises(ConfigError, match="too large"):
        GridSpec(resolution=0.001, length_m=500, width_m=500)
    with pytest.raises(ConfigError, match="pinhole"):
        pixel_to_ground(0, 0, np.diag([500.0, -500.0, 1.0]), GroundPose(1.0))
    with pytest.raises(ConfigError, match="3x3"):
        pixel_to_ground(0, 0, np.eye(2), GroundPose(1.0))
    with pytest.raises(ConfigError, match="quaternion"):
        GroundPose.from_transform((0, 0, 1), (0, 0, 0, 0))
    with pytest.raises(ConfigError, match="stride"):
        GroundProjector(K, GroundPose(1.0), GridSpec(), (480, 640), stride=0)


def test_grid_layout_follows_occupancy_grid() -> None:
    grid = GridSpec(resolution=0.5, length_m=20.0, width_m=10.0)
    assert grid.shape == (20, 40) and (grid.rows, grid.cols) == (20, 40)
    assert grid.origin_y == -5.0
    xs, ys = grid.cell_centers()
    assert xs[0] == 0.25 and ys[0] == -4.75 and xs[-1] == 19.75 and ys[-1] == 4.75
    # Row index runs along +y, column along +x, flat index row-major.
    np.testing.assert_array_equal(
        grid.cell_index(np.array([0.1, 19.9, 3.2, -0.1, np.nan]), np.array([-4.9, 4.9, 0.1, 0, 0])),
        [0, 19 * 40 + 39, 10 * 40 + 6, -1, -1],
    )


def test_project_to_grid_hand_computed_cells() -> None:
    # Drivable (road) up to 10 m ahead, not drivable beyond: rows v >= cy + fy h / 10 = 315 are road.
    mask = np.zeros((480, 640), dtype=np.uint8)
    mask[315:] = 255
    grid = GridSpec(resolution=0.5, length_m=20.0, width_m=10.0)
    occ = project_to_grid(mask, K, GroundPose(height=H_CAM), grid, stride=4)
    assert occ.shape == (20, 40) and occ.dtype == np.int8

    def cell(x: float, y: float) -> int:
        return int(occ.reshape(-1)[grid.cell_index(np.array(x), np.array(y))])

    assert cell(5.1, 0.1) == FREE  # ahead, inside 10 m
    assert cell(9.6, -1.1) == FREE
    assert cell(10.4, 0.1) == OCCUPIED  # just beyond 10 m
    assert cell(15.1, 2.1) == OCCUPIED
    # The nearest ground seen is h fy / (479 - cy) = 3.14 m away; the view is +-cx/fx = +-0.64 d wide.
    assert cell(2.6, 0.1) == UNKNOWN
    assert cell(3.6, 0.1) == FREE
    assert cell(5.1, 4.6) == UNKNOWN  # 4.6 m left at 5 m: outside the field of view
    assert cell(19.6, 4.6) == OCCUPIED  # wide enough at 19.6 m (+-12.5 m)
    # Every observed cell lies inside the camera's frustum on the ground.
    xs, ys = grid.cell_centers()
    gx, gy = np.meshgrid(xs, ys)
    inside = (gx > 3.14 + 0.5) & (np.abs(gy) < 0.64 * gx - 0.5)
    assert (occ[inside] != UNKNOWN).all()
    outside = (gx < 3.14 - 0.5) | (np.abs(gy) > 0.64 * gx + 0.5)
    assert (occ[outside] == UNKNOWN).all()


def test_far_cells_have_no_holes_and_projector_is_reused() -> None:
    # With a coarse stride far cells fall between sampled pixels; the cell-centre votes fill them.
    mask = np.full((480, 640), 255, dtype=np.uint8)
    grid = GridSpec(resolution=0.2, length_m=60.0, width_m=8.0, origin_x=20.0)
    pose = GroundPose(height=H_CAM)
    projector = GroundProjector(K, pose, grid, (480, 640), stride=16)
    occ = projector.project(mask)
    xs, ys = grid.cell_centers()
    gx, gy = np.meshgrid(xs, ys)
    visible = np.abs(gy) < 0.64 * gx - 0.2
    assert (occ[visible] == FREE).all()
    np.testing.assert_array_equal(projector.observed, occ != UNKNOWN)
    np.testing.assert_array_equal(project_to_grid(mask, K, pose, grid, stride=16), occ)
    with pytest.raises(ConfigError, match="does not match"):
        projector.project(np.zeros((240, 320), np.uint8))


def test_cells_take_the_majority_of_their_pixels() -> None:
    # Columns drivable in a 1-in-4 pattern: every cell sees both kinds; the majority decides.
    mask = np.zeros((480, 640), dtype=np.uint8)
    mask[:, ::4] = 255
    grid = GridSpec(resolution=1.0, length_m=10.0, width_m=4.0, origin_x=4.0, origin_y=-2.0)
    occ = project_to_grid(mask, K, GroundPose(height=H_CAM), grid, stride=1)
    assert (occ != UNKNOWN).sum() > 20
    assert set(np.unique(occ[occ != UNKNOWN])) == {OCCUPIED}
    occ = project_to_grid(255 - mask, K, GroundPose(height=H_CAM), grid, stride=1)  # 3 in 4 drivable
    assert set(np.unique(occ[occ != UNKNOWN])) == {FREE}


def test_grid_cell_cap_names_the_count_and_the_limit() -> None:
    from causal_tune_ros.limits import MAX_GRID_CELLS

    GridSpec(resolution=0.1, length_m=100.0, width_m=100.0)  # exactly the cap: 1000 x 1000
    with pytest.raises(ConfigError, match=f"1000 x 1001 = 1001000 cells .* at most {MAX_GRID_CELLS}"):
        GridSpec(resolution=0.1, length_m=100.1, width_m=100.0)


def test_projector_built_in_blocks_of_rows_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both passes (pixels to cells, cell centres to pixels) run in row blocks; any size gives the same."""
    import causal_tune_ros.drivable as drivable

    grid = GridSpec(resolution=0.25, length_m=40.0, width_m=12.0, origin_x=2.0)
    pose = GroundPose(height=H_CAM, pitch=0.1, yaw=0.05)
    mask = np.zeros((480, 640), dtype=np.uint8)
    mask[300:, 100:500] = 255
    whole = GroundProjector(K, pose, grid, (480, 640), stride=8)
    monkeypatch.setattr(drivable, "_CELL_CHUNK", 7)  # blocks of one row (fewer cells than a row)
    rows = GroundProjector(K, pose, grid, (480, 640), stride=8)
    monkeypatch.setattr(drivable, "_CELL_CHUNK", 3 * grid.cols + 5)  # blocks of three rows
    three = GroundProjector(K, pose, grid, (480, 640), stride=8)
    for other in (rows, three):
        np.testing.assert_array_equal(other.project(mask), whole.project(mask))
        np.testing.assert_array_equal(other.observed, whole.observed)
    assert (whole.project(mask) == FREE).any() and (whole.project(mask) == OCCUPIED).any()


def test_projector_on_an_image_thinner_than_the_stride() -> None:
    # No strided pixel row at all (height 1, first sample row at 2): only the cell-centre votes remain.
    projector = GroundProjector(K, GroundPose(height=H_CAM), GridSpec(), (1, 640), stride=4)
    assert projector.project(np.zeros((1, 640), np.uint8)).shape == GridSpec().shape
