"""On-the-fly synthetic data set: procedural street scenes under several weather conditions.

Item ``i`` is scene ``i // len(conditions)`` rendered under ``conditions[i % len(conditions)]``, so
consecutive items show the same scene in each condition (paired data: per-condition results compare like
with like). Scene seeds derive from ``(seed, split, scene index)``: ``train`` and ``val`` never share a
scene, and an item is the same image every time and in every worker process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from causal_tune_ros.errors import DatasetError
from causal_tune_ros.synthetic.scene import SceneGeometry, build_geometry
from causal_tune_ros.synthetic.weather import render_weather
from causal_tune_ros.training.datasets.acdc import parse_conditions
from causal_tune_ros.weather.conditions import CONDITIONS

_SPLITS = ("train", "val", "test")


class SyntheticDataset:
    """Synthetic weather scenes rendered on demand (``torch.utils.data.Dataset`` compatible).

    Args:
        num_samples: Number of items (scenes x conditions, counted in items); the default 100 is 20
            scenes in each of the five conditions.
        conditions: Conditions to render (``"clear,fog"``, a list, or ``None`` for all five).
        seed: Base seed of the scene stream.
        height: Image rows (>= 16). ``causal-tune eval`` passes the checkpoint's input size.
        width: Image columns (>= 16).
        split: ``train``, ``val`` or ``test``: each split has its own scenes.
        transform: Optional callable applied to each sample dict.

    Raises:
        DatasetError: ``num_samples < 1``, a bad size, an unknown split or condition.
    """

    dataset_name = "synthetic"

    def __init__(
        self,
        num_samples: int = 100,
        conditions: str | Sequence[str] | None = None,
        seed: int = 0,
        height: int = 512,
        width: int = 1024,
        split: str = "train",
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        if int(num_samples) < 1:
            raise DatasetError(f"synthetic: num_samples must be >= 1, got {num_samples}")
        if int(height) < 16 or int(width) < 16:
            raise DatasetError(f"synthetic: image size must be at least 16x16, got {height}x{width}")
        if split not in _SPLITS:
            raise DatasetError(f"synthetic: unknown split {split!r}; expected one of {', '.join(_SPLITS)}")
        self.num_samples = int(num_samples)
        self.condition_list = parse_conditions(conditions, CONDITIONS, self.dataset_name)
        self.seed = int(seed)
        self.height = int(height)
        self.width = int(width)
        self.split = split
        self.transform = transform
        # The last scene's geometry: consecutive items share it, so each is rendered only once.
        self._cached: tuple[int, SceneGeometry] | None = None

    def __len__(self) -> int:
        return self.num_samples

    @property
    def conditions(self) -> list[str]:
        """Conditions rendered, in item order."""
        return list(self.condition_list)

    def scene_seed(self, scene_index: int) -> int:
        """Seed of scene ``scene_index`` (what :func:`causal_tune_ros.synthetic.render_scene` takes)."""
        ss = np.random.SeedSequence([self.seed & 0xFFFFFFFF, _SPLITS.index(self.split), int(scene_index)])
        return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"synthetic: index {index} out of range for {len(self)} samples")
        index %= len(self)
        scene, k = divmod(index, len(self.condition_list))
        condition = self.condition_list[k]
        seed = self.scene_seed(scene)
        if self._cached is None or self._cached[0] != seed:
            self._cached = (seed, build_geometry(seed, self.height, self.width))
        geom = self._cached[1]
        item = {
            "image": render_weather(geom, condition),
            "labels": geom.labels.copy(),
            "condition": condition,
            "name": f"synthetic/{self.split}/{scene:06d}_{condition}",
        }
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        return (
            f"SyntheticDataset({self.num_samples} samples, conditions={self.condition_list}, "
            f"{self.height}x{self.width}, split={self.split})"
        )
