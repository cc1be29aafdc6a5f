"""Synthetic weather scenes: determinism, exact labels, geometry consistent with the pose, weather effects."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from causal_tune_ros.classes import load_classes
from causal_tune_ros.drivable import GroundPose
from causal_tune_ros.synthetic import CONDITIONS, SyntheticFrame, render_conditions, render_scene

H, W = 96, 192
SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def scenes() -> dict[int, dict[str, SyntheticFrame]]:
    return {seed: render_conditions(seed, CONDITIONS, H, W) for seed in SEEDS}


def _class(name: str) -> int:
    return load_classes().index(name)


def _luma(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def test_same_seed_same_bytes_and_different_seeds_differ() -> None:
    a = render_scene(5, "rain", H, W)
    b = render_scene(5, "rain", H, W)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.labels.tobytes() == b.labels.tobytes()
    assert a.depth.tobytes() == b.depth.tobytes()
    np.testing.assert_array_equal(a.K, b.K)
    assert a.ground_pose == b.ground_pose
    c = render_scene(6, "rain", H, W)
    assert not np.array_equal(a.labels, c.labels)
    assert not np.array_equal(a.image, c.image)


def test_render_conditions_equals_render_scene(scenes) -> None:
    for cond in ("snow", "night"):
        single = render_scene(1, cond, H, W)
        np.testing.assert_array_equal(single.image, scenes[1][cond].image)
        np.testing.assert_array_equal(single.labels, scenes[1][cond].labels)


def test_frame_contents_and_valid_labels(scenes) -> None:
    valid = set(range(len(load_classes()))) | {255}
    for frames in scenes.values():
        for cond, f in frames.items():
            assert f.condition == cond
            assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8
            assert f.labels.shape == (H, W) and f.labels.dtype == np.uint8
            assert set(np.unique(f.labels).tolist()) <= valid
            assert f.depth.shape == (H, W) and f.depth.dtype == np.float32
            assert np.isfinite(f.depth).all() and f.depth.min() > 0 and f.depth.max() <= 1000.0
            assert isinstance(f.ground_pose, GroundPose) and 1.2 < f.ground_pose.height < 1.8
            assert f.K.shape == (3, 3) and f.K[2, 2] == 1.0


def test_main_classes_present(scenes) -> None:
    seen: set[int] = set()
    for frames in scenes.values():
        labels = frames["clear"].labels
        present = set(np.unique(labels).tolist())
        assert {_class("road"), _class("sky")} <= present
        assert (labels == _class("road")).mean() > 0.1
        seen |= present
    wanted = ["road", "sidewalk", "building", "pole", "traffic sign", "vegetation", "sky", "person", "car"]
    assert {_class(n) for n in wanted} <= seen


def test_sky_is_far_and_road_lies_on_the_ground_plane(scenes) -> None:
    f = scenes[2]["clear"]
    sky = f.labels == _class("sky")
    assert (f.depth[sky] == 1000.0).all()
    # Back-project road pixels with K and the ground pose: they must land on z = 0 (the road surface).
    v, u = np.nonzero(f.labels == _class("road"))
    rays = np.linalg.inv(f.K) @ np.stack([u, v, np.ones_like(u)]).astype(np.float64)
    points = (f.ground_pose.rotation() @ (rays * f.depth[v, u])).T + f.ground_pose.translation()
    assert np.abs(points[:, 2]).max() < 1e-3
    assert points[:, 0].min() > 0.0  # in front of the camera
    # Nearer rows of the road are closer: depth decreases towards the bottom of the image.
    col = W // 2
    rows = np.nonzero(f.labels[:, col] == _class("road"))[0]
    assert np.all(np.diff(f.depth[rows, col]) <= 1e-3)


def test_weather_keeps_labels_and_changes_the_image_as_expected(scenes) -> None:
    for frames in scenes.values():
        clear = frames["clear"]
        for cond, f in frames.items():
            np.testing.assert_array_equal(f.labels, clear.labels)
            np.testing.assert_array_equal(f.depth, clear.depth)
            if cond != "clear":
                assert np.abs(f.image.astype(int) - clear.image).mean() > 5
        lum = {c: _luma(f.image) for c, f in frames.items()}
        # Night: much darker.
        assert lum["night"].mean() < 0.7 * lum["clear"].mean()
        # Fog: lower contrast (relative spread and edge strength), brighter airlight.
        cv = {c: lum[c].std() / lum[c].mean() for c in ("clear", "fog")}
        grad = {c: np.abs(np.diff(lum[c], axis=1)).mean() for c in ("clear", "fog")}
        assert cv["fog"] < 0.85 * cv["clear"] and grad["fog"] < 0.8 * grad["clear"]
        # Snow: brighter and less saturated.
        sat = {c: cv2.cvtColor(frames[c].image, cv2.COLOR_RGB2HSV)[..., 1].mean() for c in ("clear", "snow")}
        assert lum["snow"].mean() > lum["clear"].mean() + 0.05
        assert sat["snow"] < 0.6 * sat["clear"]
        # Rain: wet scene darker than the dry one (sky excluded: overcast is a colour change).
        ground = clear.labels != _class("sky")
        assert lum["rain"][ground].mean() < lum["clear"][ground].mean()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown condition"):
        render_scene(0, "hail", H, W)
    with pytest.raises(ValueError, match="at least 16x16"):
        render_scene(0, "clear", 8, 8)
    with pytest.raises(ValueError, match="unknown condition"):
        render_conditions(0, ["clear", "sunny"], H, W)
