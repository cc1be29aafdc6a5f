"""Unlabelled pretraining scenes: every weather rendering of a scene, plus its geometry targets.

A pretraining scene is one procedural street (:mod:`causal_tune_ros.synthetic`) rendered under all five
conditions (the same geometry each time), with two dense targets computed from the renderer's depth and
camera matrix only:

* log depth along the optical axis (clipped to ``MAX_DEPTH``; the sky is "far", nothing more);
* the surface normal in the camera frame, from the back-projected depth by finite differences.

Neither target reads the label map, so no class id leaks into pretraining: two objects of different classes
at the same depth with the same orientation get the same targets. Scene seeds come from their own stream
(``pretrain_scene_seed``), disjoint from the training/validation scenes of
:class:`~causal_tune_ros.training.datasets.synthetic.SyntheticDataset` and from the demo's plain seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from causal_tune_ros.fileio import atomic_path
from causal_tune_ros.synthetic.scene import build_geometry
from causal_tune_ros.synthetic.weather import CONDITIONS, render_weather

#: Depth (metres) at which depth targets saturate; the renderer puts the sky at 1000 m.
MAX_DEPTH = 200.0
#: Stream index of pretraining scene seeds (``SyntheticDataset`` uses 0, 1, 2 for train, val, test).
PRETRAIN_STREAM = 3


def pretrain_scene_seed(seed: int, index: int) -> int:
    """Seed of pretraining scene ``index`` (what ``render_scene`` takes), hashed from ``(seed, index)``."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, PRETRAIN_STREAM, int(index)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def geometry_targets(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Dense geometry targets of one view from its depth map and camera matrix (no labels).

    Args:
        depth: ``(H, W)`` depth along the optical axis in metres.
        K: ``(3, 3)`` camera matrix.

    Returns:
        ``(4, H, W)`` float32: ``log(depth)`` clipped to ``[log 0.5, log MAX_DEPTH]``, then the unit surface
        normal ``(nx, ny, nz)`` in the camera frame (x right, y down, z forward), facing the camera; zero
        where the depth is saturated (sky) or undefined.
    """
    h, w = depth.shape
    d = np.clip(depth.astype(np.float32), 0.5, MAX_DEPTH)
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    u = (np.arange(w, dtype=np.float32) - cx) / fx
    v = (np.arange(h, dtype=np.float32) - cy) / fy
    points = np.stack([d * u[None, :], d * v[:, None], d], axis=0)  # (3, H, W)
    du = np.gradient(points, axis=2)
    dv = np.gradient(points, axis=1)
    normal = np.cross(du, dv, axis=0)
    norm = np.linalg.norm(normal, axis=0, keepdims=True)
    normal = np.where(norm > 1e-9, normal / np.maximum(norm, 1e-9), 0.0)
    # Face the camera: the normal points against the viewing ray.
    facing = np.sign(-(normal * points).sum(axis=0, keepdims=True))
    normal = normal * np.where(facing == 0, 1.0, facing)
    normal[:, depth >= MAX_DEPTH] = 0.0
    return np.concatenate([np.log(d)[None], normal.astype(np.float32)], axis=0).astype(np.float32)


@dataclass
class PretrainScenes:
    """Rendered pretraining scenes held in memory.

    Attributes:
        images: ``(N, V, H, W, 3)`` uint8 RGB, view ``v`` rendered under ``conditions[v]``.
        targets: ``(N, 4, H, W)`` float16 geometry targets (:func:`geometry_targets`).
        conditions: Condition of each view (``conditions[0]`` is ``"clear"``).
        seeds: Scene seed of each scene.
    """

    images: np.ndarray
    targets: np.ndarray
    conditions: tuple[str, ...]
    seeds: list[int]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def save(self, path: str | Path) -> Path:
        """Write the scenes to an ``.npz`` file (written beside, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                images=self.images,
                targets=self.targets,
                conditions=np.array(self.conditions),
                seeds=np.array(self.seeds, dtype=np.uint64),
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> PretrainScenes:
        """Read scenes written by :meth:`save`."""
        with np.load(path) as data:
            return cls(
                images=data["images"],
                targets=data["targets"],
                conditions=tuple(str(c) for c in data["conditions"]),
                seeds=[int(s) for s in data["seeds"]],
            )


def render_pretrain_scenes(
    num_scenes: int,
    height: int,
    width: int,
    seed: int = 0,
    conditions: tuple[str, ...] = CONDITIONS,
    progress: Callable[[int, int], None] | None = None,
) -> PretrainScenes:
    """Render ``num_scenes`` unlabelled scenes under every condition, with geometry targets.

    Args:
        num_scenes: Scenes to render (>= 1).
        height: Image rows (>= 16).
        width: Image columns (>= 16).
        seed: Seed of the scene stream (:func:`pretrain_scene_seed`).
        conditions: Conditions, ``"clear"`` first (the reference view of cross-condition objectives).
        progress: Called as ``progress(done, total)`` after each scene.

    Returns:
        The :class:`PretrainScenes`.

    Raises:
        ValueError: Fewer than one scene, an unknown condition, ``"clear"`` not first, or a bad size.
    """
    if int(num_scenes) < 1:
        raise ValueError(f"num_scenes must be >= 1, got {num_scenes}")
    conditions = tuple(conditions)
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or not conditions or conditions[0] != "clear":
        raise ValueError(f"conditions must start with 'clear' and be some of {CONDITIONS}, got {conditions}")
    n = int(num_scenes)
    images = np.empty((n, len(conditions), height, width, 3), np.uint8)
    targets = np.empty((n, 4, height, width), np.float16)
    seeds = []
    for i in range(n):
        s = pretrain_scene_seed(seed, i)
        geom = build_geometry(s, height, width)
        for v, condition in enumerate(conditions):
            images[i, v] = render_weather(geom, condition)
        targets[i] = geometry_targets(geom.depth, geom.K)
        seeds.append(s)
        if progress is not None:
            progress(i + 1, n)
    return PretrainScenes(images=images, targets=targets, conditions=conditions, seeds=seeds)
