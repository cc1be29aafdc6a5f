"""What the demo measured: per-condition scores, the printed table, the montage PNG."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.demo.layout import COLUMN_TITLES, COLUMNS
from causal_tune_ros.errors import ConfigError


@dataclass
class ConditionScore:
    """Scores of one condition.

    Attributes:
        frames: Frames of that condition.
        miou: Column (``preset``, ``train``, ``rein``, ``off``) -> mIoU in [0, 1].
        auto_agree: Frames of this condition to which ``replay --weather auto`` applies this condition
            (the replay's weather stage with its hysteresis, see ``Replayer.weather_track``).
    """

    frames: int = 0
    miou: dict[str, float] = field(default_factory=dict)
    auto_agree: int = 0


@dataclass
class DemoResult:
    """Everything the demo produced.

    Attributes:
        out_dir: Output folder.
        drive_bag: The synthetic input bag.
        segmented_bag: The replay's output bag.
        montage: Montage PNG.
        video: Side-by-side MP4 (``None`` if OpenCV could not write one).
        scores: Condition -> :class:`ConditionScore` (plus ``"all"``).
        seconds: Wall time of the demo.
        model: Description of the model (from its metadata).
    """

    out_dir: Path
    drive_bag: Path
    segmented_bag: Path
    montage: Path
    video: Path | None
    scores: dict[str, ConditionScore]
    seconds: float
    model: str
    presets: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        """The per-condition mIoU table (percent), with the preset band of each condition."""
        columns = [c for c in COLUMNS if any(c in s.miou for s in self.scores.values())]
        head = f"{'condition':<10} {'frames':>6}  {'preset band':>11}  "
        head += "  ".join(f"{COLUMN_TITLES[c]:>16}" for c in columns) + f"  {'auto weather':>12}"
        lines = [head, "-" * len(head)]
        for name, score in self.scores.items():
            band = self.presets.get(name)
            preset = f"{band.low:g}-{band.high:g}" if band is not None else ""
            cells = f"{preset:>11}  " + "  ".join(
                f"{100 * score.miou.get(c, float('nan')):>16.1f}" for c in columns
            )
            auto = f"{score.auto_agree}/{score.frames}" if name != "all" else ""
            lines.append(f"{name:<10} {score.frames:>6}  {cells}  {auto:>12}")
        return "\n".join(lines)


def model_description(checkpoint: Path) -> tuple[str, tuple[int, int] | None]:
    from causal_tune_ros.model.checkpoint import read_checkpoint_metadata, recorded_input_size

    meta = read_checkpoint_metadata(checkpoint)
    user = meta.get("user") or {}
    description = str(user.get("description") or f"{meta.get('backbone', {}).get('arch', '?')} model")
    return description, recorded_input_size(checkpoint)


def confusion_matrix(num_classes: int) -> Any:
    from causal_tune_ros.training.metrics import ConfusionMatrix

    return ConfusionMatrix(num_classes, ignore_index=255)


#: Height of one line of the class-colour legend under the montage, pixels.
LEGEND_LINE = 18


def _legend(names: Sequence[str], colors: np.ndarray, width: int) -> np.ndarray:
    """A white strip with one colour swatch and name per class, wrapped to ``width`` pixels."""
    import cv2

    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    cells = [
        (name, color, 16 + cv2.getTextSize(name, font, scale, 1)[0][0] + 12)
        for name, color in zip(names, colors, strict=True)
    ]
    lines: list[list[tuple[str, np.ndarray, int]]] = [[]]
    used = 6
    for cell in cells:
        if lines[-1] and used + cell[2] > width:
            lines.append([])
            used = 6
        lines[-1].append(cell)
        used += cell[2]
    strip = np.full((LEGEND_LINE * len(lines) + 4, width, 3), 255, dtype=np.uint8)
    for row, line in enumerate(lines):
        x, y = 6, 4 + row * LEGEND_LINE
        for name, color, cell_width in line:
            strip[y + 2 : y + 14, x : x + 12] = color
            cv2.rectangle(strip, (x, y + 2), (x + 11, y + 13), (0, 0, 0), 1)
            cv2.putText(strip, name, (x + 16, y + 12), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
            x += cell_width
    return strip


def montage_image(
    rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    path: Path,
    legend: tuple[Sequence[str], np.ndarray] | None = None,
) -> Path:
    """Rows ``(label, input, overlay, ground-truth colours)`` -> one PNG with a title strip per row and,
    with ``legend = (class names, (K, 3) RGB colours)``, a class-colour legend at the bottom."""
    import cv2

    tiles = []
    for label, rgb, overlay, truth in rows:
        row = np.concatenate([rgb, overlay, truth], axis=1)
        strip = np.full((22, row.shape[1], 3), 255, dtype=np.uint8)
        w = rgb.shape[1]
        for i, title in enumerate((f"{label}: input", "overlay (prediction)", "ground truth")):
            cv2.putText(
                strip, title, (6 + i * w, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
            )
        tiles.extend([strip, row])
    if legend is not None:
        tiles.append(_legend(legend[0], legend[1], tiles[-1].shape[1]))
    image = np.concatenate(tiles, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise ConfigError(f"cannot write {path}")
    return path
