"""Band calibration: sweep ``(r_low, r_high)`` per weather condition on labelled validation images.

:func:`calibrate_bands` scores every band of a grid on every condition in one pass over the data
(:func:`~causal_tune_ros.training.evaluate.evaluate_bands`), and :func:`choose_bands` picks per condition
the band with the best mIoU, keeping the training band unless another band scores strictly higher (by
more than ``min_gain``). :func:`presets_text` writes the choice as band presets with every score beside
it, in a ROS 2 parameters layout that the node takes as ``--params-file`` and that
:func:`causal_tune_ros.weather.load_band_presets` (``causal-tune replay --bands``, ``causal-tune demo
--bands``) reads.

The scores come from the images the bands were chosen on, so the best band's gain is optimistic (a
maximum over many bands); judge it on other images (the demo's drive uses scenes no calibration set has).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from causal_tune_ros.band import Band
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.fileio import atomic_path
from causal_tune_ros.training.evaluate import evaluate_bands
from causal_tune_ros.weather import CONDITIONS

#: Default sweep: every ``(low, high)`` pair of these with ``low < high``.
DEFAULT_LOWS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4)
DEFAULT_HIGHS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 1.0)


def band_grid(lows: Iterable[float], highs: Iterable[float], train_band: Band) -> list[Band]:
    """Every valid band ``low < high`` of two edge lists, the training band first (ties keep it).

    Args:
        lows: Candidate ``r_low`` values.
        highs: Candidate ``r_high`` values.
        train_band: The model's training band, always part of the grid.

    Returns:
        Distinct bands, the training band first, the rest in ``(low, high)`` order.

    Raises:
        ConfigError: An edge outside ``(0, 1]``.
    """
    bands = [train_band]
    for low in sorted({float(v) for v in lows}):
        for high in sorted({float(v) for v in highs}):
            if not (0.0 < low <= 1.0 and 0.0 < high <= 1.0):
                raise ConfigError(f"band edges must lie in (0, 1], got low {low:g}, high {high:g}")
            if low < high:
                band = Band(low, high)
                if band not in bands:
                    bands.append(band)
    return bands


@dataclass
class Calibration:
    """Scores of a band sweep and the presets chosen from them.

    Attributes:
        train_band: The model's training band (the fallback of every condition).
        bands: The swept bands, training band first.
        scores: Condition -> band -> mIoU in [0, 1] (only conditions with validation images).
        images: Condition -> number of validation images.
        chosen: Condition -> chosen band, for every condition of :data:`CONDITIONS`.
        min_gain: The mIoU margin (fraction) another band had to beat the training band by.
    """

    train_band: Band
    bands: list[Band]
    scores: dict[str, dict[Band, float]]
    images: dict[str, int]
    chosen: dict[str, Band] = field(default_factory=dict)
    min_gain: float = 0.0

    def gain(self, condition: str) -> float:
        """mIoU of the chosen band minus the training band's on ``condition`` (0 without images)."""
        if condition not in self.scores:
            return 0.0
        table = self.scores[condition]
        return table[self.chosen[condition]] - table[self.train_band]


def choose_bands(
    scores: Mapping[str, Mapping[Band, float]],
    train_band: Band,
    conditions: Sequence[str] = CONDITIONS,
    min_gain: float = 0.0,
) -> dict[str, Band]:
    """Per condition, the band with the highest score if it beats the training band by more than
    ``min_gain``; otherwise (ties included, and conditions without scores) the training band.

    Args:
        scores: Condition -> band -> score (higher is better); each table must hold ``train_band``.
        train_band: The fallback band.
        conditions: Conditions to choose for.
        min_gain: Margin (same unit as the scores) a band must beat the training band by.

    Returns:
        Condition -> band for every entry of ``conditions``.

    Raises:
        ConfigError: A score table without the training band, or a negative ``min_gain``.
    """
    if min_gain < 0 or math.isnan(min_gain):
        raise ConfigError(f"min_gain must be >= 0, got {min_gain!r}")
    chosen: dict[str, Band] = {}
    for condition in conditions:
        table = scores.get(condition)
        if not table:
            chosen[condition] = train_band
            continue
        if train_band not in table:
            raise ConfigError(f"{condition}: the sweep holds no score for the training band {train_band}")
        base = table[train_band]
        best = train_band
        for band, value in table.items():  # first best wins; the training band is compared first
            if not math.isnan(value) and value > table[best]:
                best = band
        chosen[condition] = best if table[best] > base + min_gain else train_band
    return chosen


def calibrate_bands(
    model: nn.Module,
    dataset: Any,
    bands: Sequence[Band],
    train_band: Band,
    *,
    min_gain: float = 0.0,
    **eval_options: Any,
) -> Calibration:
    """Score every band on every condition of ``dataset`` in one pass and choose a preset per condition.

    Args:
        model: A ``CausalTuneSegmenter`` (or anything :func:`evaluate_bands` scores).
        dataset: Labelled items ``dict(image, labels, condition)``.
        bands: Bands to sweep (e.g. :func:`band_grid`); the training band is added first if missing.
        train_band: The model's training band.
        min_gain: mIoU margin (fraction) a band must beat the training band by.
        **eval_options: Passed to :func:`evaluate_bands` (``class_names``, ``batch_size``, ``device``, ...).

    Returns:
        The :class:`Calibration`.

    Raises:
        ConfigError: Bad options. DatasetError: An empty data set or a malformed sample.
    """
    swept = [train_band, *(b for b in bands if b != train_band)]
    results = evaluate_bands(model, dataset, swept, **eval_options)
    known = [c for c in results[0].conditions if c in CONDITIONS]
    scores = {c: {r.band: r.miou(c) for r in results if r.band is not None} for c in known}
    images = {c: results[0].num_images.get(c, 0) for c in known}
    chosen = choose_bands(scores, train_band, CONDITIONS, min_gain)
    return Calibration(train_band, swept, scores, images, chosen, min_gain)


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100.0 * value:.1f}"


def presets_text(calibration: Calibration, source: str = "") -> str:
    """The chosen bands as a band-presets / ROS 2 parameters YAML, with every score in comments.

    Args:
        calibration: The result of :func:`calibrate_bands`.
        source: What was calibrated (checkpoint, data), written into the header.

    Returns:
        YAML text readable by :func:`~causal_tune_ros.weather.load_band_presets` and by rcl as a
        ``--params-file`` (the ``/**`` section applies to every node name and namespace).
    """
    c = calibration
    tb = c.train_band
    lines = [
        "# Weather band presets calibrated by `causal-tune calibrate`"
        + (f": {source}" if source else "")
        + ".",
        f"# Training band ({tb.low:g}, {tb.high:g}); {len(c.bands)} bands swept. A condition keeps the "
        "training band",
        f"# unless another band scores a higher mIoU on its validation images (by more than "
        f"{100 * c.min_gain:g} points);",
        "# ties keep the training band. Scores (mIoU %) are on the images the bands were chosen on:",
        "# the gain of a chosen band is optimistic there. Use this file as the node's --params-file,",
        "# or as `causal-tune replay --bands FILE` / `causal-tune demo --bands FILE`.",
        "#",
        "# Sweep, mIoU % per condition:",
        "#   " + f"{'band':<11}" + "".join(f"{cond:>8}" for cond in c.scores),
    ]
    for band in c.bands:
        cells = "".join(f"{_pct(c.scores[cond].get(band, math.nan)):>8}" for cond in c.scores)
        lines.append("#   " + f"{band.low:g}-{band.high:g}".ljust(11) + cells)
    lines += ["/**:", "  ros__parameters:", "    weather:", "      bands:"]
    for cond in CONDITIONS:
        band = c.chosen[cond]
        entry = f"        {cond}: {{low: {band.low:g}, high: {band.high:g}}}"
        if cond in c.scores:
            table = c.scores[cond]
            verdict = "training band kept" if band == tb else f"+{100 * c.gain(cond):.1f} points"
            note = (
                f"mIoU {_pct(table[band])} % (training band {_pct(table[tb])} %) on {c.images[cond]} "
                f"images: {verdict}"
            )
        else:
            note = "no validation images: training band"
        lines.append(f"{entry.ljust(48)}# {note}")
    return "\n".join(lines) + "\n"


def write_presets(path: str | Path, calibration: Calibration, source: str = "") -> Path:
    """Write :func:`presets_text` to ``path`` (complete or not at all).

    Raises:
        ConfigError: The file cannot be written.
    """
    target = Path(path)
    try:
        with atomic_path(target) as tmp:
            tmp.write_text(presets_text(calibration, source), encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot write band presets {target}: {err.strerror or err}") from None
    return target
