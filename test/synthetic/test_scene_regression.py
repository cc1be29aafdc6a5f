"""Pinned renderings: the scene code may be reorganised, but a seed must keep giving the same bytes.

The digests were computed with the renderer as it was before ``synthetic/scene.py`` was split into
modules. They hold as long as numpy's ``Generator`` streams and OpenCV's float arithmetic stay the same
(both deterministic for a given build); after a deliberate change to the renderer, or a numpy/OpenCV
upgrade that changes floating-point results, recompute them and say why in the commit.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from causal_tune_ros.classes import load_classes
from causal_tune_ros.synthetic import render_conditions, render_scene
from causal_tune_ros.synthetic.raster import SKY_DEPTH

# (seed, condition, height, width, digest of labels + depth + K, digest of the image)
PINNED = [
    (0, "clear", 48, 64, "d2ef657b7c50433a1a526fec894a46e6", "827084172893227ecf03960bfb41bbea"),
    (0, "snow", 48, 64, "d2ef657b7c50433a1a526fec894a46e6", "2de4716038be97024b3e3686b7942861"),
    (0, "rain", 48, 64, "d2ef657b7c50433a1a526fec894a46e6", "2d2ad002c7ebf163fa40c8fd882fde37"),
    (0, "fog", 48, 64, "d2ef657b7c50433a1a526fec894a46e6", "fe581042449d21cc1b61a22747701bb2"),
    (0, "night", 48, 64, "d2ef657b7c50433a1a526fec894a46e6", "fc1f7c75f99204d5d07341ec810794d8"),
    (7, "night", 97, 131, "bbb7991f03c6882ba5cfaab4c349d51f", "71d12b2dc96e98652f6608567dfb7dba"),
    (12345, "fog", 128, 256, "7a1610bdc80ac0f417b86ea54afd6e5e", "270444693114a3a7883dfac46f2235cb"),
    (2**40 + 3, "snow", 128, 256, "b3fdb8f4ad10a3fcc3f68a632cbb33fe", "5012171d10118c32d23938c1f686661f"),
    (-5, "rain", 16, 16, "29fcd3f5b91a9a8b9694d1445360b44e", "01ea6b3fb5ac5ec742a14605d950aafd"),
]


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:32]


@pytest.mark.parametrize(("seed", "condition", "height", "width", "geometry", "image"), PINNED)
def test_render_scene_matches_pinned_bytes(
    seed: int, condition: str, height: int, width: int, geometry: str, image: str
) -> None:
    frame = render_scene(seed, condition, height, width)
    assert _digest(frame.labels, frame.depth, frame.K) == geometry, "labels, depth or camera changed"
    assert _digest(frame.image) == image, "the rendered image changed"


def test_render_conditions_matches_pinned_bytes() -> None:
    pinned = {c: (g, i) for s, c, h, w, g, i in PINNED if (s, h, w) == (0, 48, 64)}
    frames = render_conditions(0, tuple(pinned), 48, 64)
    got = {c: (_digest(f.labels, f.depth, f.K), _digest(f.image)) for c, f in frames.items()}
    assert got == pinned


def test_labels_follow_the_packaged_class_set() -> None:
    classes = load_classes()
    frame = render_scene(3, "clear", 96, 192)
    assert set(np.unique(frame.labels)) <= set(range(len(classes)))
    sky = frame.depth == np.float32(SKY_DEPTH)
    assert sky.any()
    assert (frame.labels[sky] == classes.index("sky")).all()
    assert (frame.labels[-1] == classes.index("road")).any()  # the road under the camera
