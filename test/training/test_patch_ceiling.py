"""bench/patch_ceiling.py: the patch-majority oracle paints each 14 x 14 patch with its majority class."""

from __future__ import annotations

import numpy as np

from ..bench_support import load_bench


def _module():
    return load_bench("patch_ceiling")


def test_patch_majority_paints_each_patch_with_its_majority_class() -> None:
    pc = _module()
    labels = np.zeros((28, 30), np.uint8)  # 2 x 2 patches; the last 2 columns fall outside the grid
    labels[:14, :14] = 5
    labels[:3, :3] = 7  # a minority inside the first patch: lost, as at the patch grid
    labels[:14, 14:28] = 255  # ignored pixels do not vote...
    labels[:2, 14:28] = 11  # ...so 28 pixels of class 11 win that patch
    labels[14:, :28] = 2
    oracle = pc.patch_majority(labels)
    assert oracle.shape == (28, 28)
    assert (oracle[:14, :14] == 5).all() and (oracle[:14, 14:] == 11).all() and (oracle[14:] == 2).all()


def test_a_label_map_constant_per_patch_is_its_own_oracle() -> None:
    pc = _module()
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 19, size=(3, 4)).astype(np.uint8)
    labels = np.repeat(np.repeat(cells, 14, 0), 14, 1)
    assert np.array_equal(pc.patch_majority(labels), labels)
