"""Cheap weather / lighting classification from image statistics, with hysteresis.

The frame is area-averaged by an integer factor to about :data:`DETAIL_WIDTH` px wide for the
fine-texture cues and from there to :data:`SMALL_WIDTH` px for global statistics; the whole thing costs
about 1.5 ms at 1024 x 512 on one CPU core (see ``bench/imaging_speed.py``). Values are in [0, 1]
(``Y`` is Rec. 601 luma of RGB / 255).

=====================  ===========================================================================
statistic              definition
=====================  ===========================================================================
``mean_luma``          mean of Y
``contrast``           RMS contrast: standard deviation of Y
``dark_channel``       mean of the dark channel: per-pixel min over R, G, B, then a 3 x 3 min filter
                       (He et al.'s haze prior: near 0 in clear daylight, raised by airlight in fog)
``saturation``         mean HSV saturation ``(max - min) / max``
``white_fraction``     share of pixels with Y > WHITE_MIN_LUMA and saturation < WHITE_MAX_SATURATION
``texture``            mean absolute fine detail ``|Y - blur3x3(Y)|`` at DETAIL_WIDTH, in bright
                       low-saturation pixels only (snowflakes, snow-covered clutter)
``streak_ratio``       thin vertical vs thin horizontal line energy: mean ``|d2Y/dx2|`` of Y averaged
                       over tall blocks (STREAK_FINE_WIDTH px wide frame, STREAK_ELONGATION x taller
                       blocks) over mean ``|d2Y/dy2|`` of Y averaged over the same blocks on their
                       side; near-vertical rain streaks raise it
=====================  ===========================================================================

Each condition gets a score in [0, 1]; a soft AND is the minimum of linear ramps ``ramp(x: a -> b)``
(0 at ``a``, 1 at ``b``, either direction). ``clear`` has the fixed score ``CLEAR_SCORE`` = 0.5: the
best other condition wins only if it scores *more* than that (ties between the others go to the
earlier row). The thresholds are module constants named ``<CONDITION>_<STAT>_START`` / ``_FULL``:

=========  =========================================================================================
condition  score (constant values)
=========  =========================================================================================
night      ramp(mean_luma: 0.28 -> 0.14)                                   (dark frame)
fog        min(ramp(dark_channel: 0.30 -> 0.45), ramp(contrast: 0.16 -> 0.08),
           ramp(texture: 0.020 -> 0.010))                                  (bright, flat, veiled)
snow       min(ramp(white_fraction: 0.15 -> 0.35), ramp(saturation: 0.25 -> 0.12),
           max(ramp(texture: 0.010 -> 0.025), ramp(contrast: 0.10 -> 0.18)))  (white with structure)
rain       min(ramp(streak_ratio: 1.6 -> 2.2), ramp(saturation: 0.35 -> 0.20),
           ramp(mean_luma: 0.20 -> 0.30))                                  (streaky, dull, not dark)
=========  =========================================================================================

White pixels: Y > ``WHITE_MIN_LUMA`` = 0.65 and saturation < ``WHITE_MAX_SATURATION`` = 0.15.

Honest limits: night (low luminance) and dense fog (airlight: high dark channel, low contrast) have
strong, well-known cues. Snow relies on a large white, unsaturated area with texture, which bright
overcast concrete can imitate. Rain is the weak one: streaks are thin, often motion-blurred away, and
wet roads look like clear ones, so rain is only reported when streaks are strong. The thresholds were
set by hand on synthesised street frames (``test/test_weather.py``) and typical daylight statistics,
not fitted on real bad-weather data (ACDC); prefer ``weather.mode: topic`` when a better signal (a
rain sensor, wipers, a weather service) exists. :class:`WeatherClassifier` adds hysteresis so a
borderline frame sequence does not flap the band.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.weather.presets import CONDITIONS

#: Width of the frame used for global statistics (area-averaged).
SMALL_WIDTH = 64
#: Width of the frame used for fine texture and streaks.
DETAIL_WIDTH = 192

#: Rain streaks are measured at about this width (thin side of the averaging blocks) ...
STREAK_FINE_WIDTH = 512
#: ... with blocks this many times taller than wide.
STREAK_ELONGATION = 4

#: A pixel is "white" (snow) above this luma ...
WHITE_MIN_LUMA = 0.65
#: ... and below this saturation.
WHITE_MAX_SATURATION = 0.15

#: Score of "clear": the bar every other condition must beat.
CLEAR_SCORE = 0.5

NIGHT_LUMA_START = 0.28
NIGHT_LUMA_FULL = 0.14

FOG_DARK_START = 0.30
FOG_DARK_FULL = 0.45
FOG_CONTRAST_START = 0.16
FOG_CONTRAST_FULL = 0.08
FOG_TEXTURE_START = 0.020
FOG_TEXTURE_FULL = 0.010

SNOW_WHITE_START = 0.15
SNOW_WHITE_FULL = 0.35
SNOW_SATURATION_START = 0.25
SNOW_SATURATION_FULL = 0.12
SNOW_TEXTURE_START = 0.010
SNOW_TEXTURE_FULL = 0.025
SNOW_CONTRAST_START = 0.10
SNOW_CONTRAST_FULL = 0.18

RAIN_STREAK_START = 1.6
RAIN_STREAK_FULL = 2.2
RAIN_SATURATION_START = 0.35
RAIN_SATURATION_FULL = 0.2
RAIN_LUMA_START = 0.2
RAIN_LUMA_FULL = 0.3


@dataclass(frozen=True)
class ImageStatistics:
    """The cheap per-frame statistics the classifier uses (definitions: module docstring)."""

    mean_luma: float
    contrast: float
    dark_channel: float
    saturation: float
    white_fraction: float
    texture: float
    streak_ratio: float

    def as_dict(self) -> dict[str, float]:
        """Plain dict, e.g. for diagnostics."""
        return asdict(self)


def _resize(rgb: np.ndarray, width: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if w <= width:
        return np.ascontiguousarray(rgb)
    height = max(1, round(h * width / w))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def _shrink(rgb: np.ndarray, width: int) -> np.ndarray:
    """Area-average by the integer factor that brings the width nearest ``width``.

    OpenCV's area resize has a fast path for exact integer factors (about 2x faster than 1024 -> 192);
    cropping the < factor leftover pixels at the right and bottom edges does not change the statistics.
    """
    h, w = rgb.shape[:2]
    f = max(1, min(round(w / width), h))
    if f == 1:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb[: h - h % f, : w - w % f], (w // f, h // f), interpolation=cv2.INTER_AREA)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # Rec. 601 weights, float32 in -> float32 out


def _saturation(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(saturation, per-pixel channel minimum)``; channel-wise maxima beat ``max(axis=2)`` by ~10x."""
    r, g, b = cv2.split(rgb)
    hi = np.maximum(np.maximum(r, g), b)
    lo = np.minimum(np.minimum(r, g), b)
    return (hi - lo) / np.maximum(hi, 1e-3), lo


def _streak_ratio(rgb: np.ndarray) -> float:
    """Thin-vertical-line energy over thin-horizontal-line energy (rain streaks, see the docstring).

    Rain streaks are one or two pixels wide and many pixels long: averaging the grey frame over tall
    thin blocks keeps them while it averages away noise and isotropic texture; the same blocks turned
    on their side keep the horizontal counterpart. The ratio of the second differences across the lines
    is ~1.1-1.4 for street scenes (poles and facades are vertical) and well above 2 with dense streaks.
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    thin = max(1, round(w / STREAK_FINE_WIDTH))
    long = thin * STREAK_ELONGATION
    if h < 3 * long or w < 3 * long:
        return 1.0  # too small to tell
    grey = grey[: h - h % long, : w - w % long]
    h, w = grey.shape
    tall = cv2.resize(grey, (w // thin, h // long), interpolation=cv2.INTER_AREA).astype(np.float32)
    wide = cv2.resize(grey, (w // long, h // thin), interpolation=cv2.INTER_AREA).astype(np.float32)
    across_x = float(np.abs(tall[:, :-2] - 2.0 * tall[:, 1:-1] + tall[:, 2:]).mean())
    across_y = float(np.abs(wide[:-2] - 2.0 * wide[1:-1] + wide[2:]).mean())
    return across_x / max(across_y, 1e-3)


def compute_statistics(rgb: np.ndarray) -> ImageStatistics:
    """Measure :class:`ImageStatistics` of an RGB frame.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB (any strides; views of messages are fine).

    Returns:
        The statistics.

    Raises:
        ConfigError: Not an ``(H, W, 3)`` uint8 image.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ConfigError(
            f"weather statistics need an (H, W, 3) uint8 RGB image, got {rgb.dtype} {rgb.shape}"
        )
    detail = _shrink(rgb, DETAIL_WIDTH).astype(np.float32) * np.float32(1.0 / 255.0)
    small = _resize(detail, SMALL_WIDTH)

    y = _luma(small)
    sat, lo = _saturation(small)
    dark = cv2.erode(lo, np.ones((3, 3), np.uint8))
    white = (y > WHITE_MIN_LUMA) & (sat < WHITE_MAX_SATURATION)

    yd = _luma(detail)
    fine = yd - cv2.blur(yd, (3, 3), borderType=cv2.BORDER_REFLECT)
    bright_grey = (yd > WHITE_MIN_LUMA) & (_saturation(detail)[0] < WHITE_MAX_SATURATION)
    # Texture averaged over the whole frame but only from snow-like pixels: a white, flake-strewn
    # frame scores high, flat fog and colourful clutter score low.
    texture = float(np.abs(fine)[bright_grey].sum() / fine.size)
    return ImageStatistics(
        mean_luma=float(y.mean()),
        contrast=float(y.std()),
        dark_channel=float(dark.mean()),
        saturation=float(sat.mean()),
        white_fraction=float(white.mean()),
        texture=texture,
        streak_ratio=_streak_ratio(rgb),
    )


def _ramp(value: float, start: float, full: float) -> float:
    """0 at ``start``, 1 at ``full``, linear between (either direction), clipped."""
    return float(np.clip((value - start) / (full - start), 0.0, 1.0))


def condition_scores(stats: ImageStatistics) -> dict[str, float]:
    """Score every condition of :data:`CONDITIONS` in [0, 1] (rules: module docstring)."""
    night = _ramp(stats.mean_luma, NIGHT_LUMA_START, NIGHT_LUMA_FULL)
    fog = min(
        _ramp(stats.dark_channel, FOG_DARK_START, FOG_DARK_FULL),
        _ramp(stats.contrast, FOG_CONTRAST_START, FOG_CONTRAST_FULL),
        _ramp(stats.texture, FOG_TEXTURE_START, FOG_TEXTURE_FULL),
    )
    snow = min(
        _ramp(stats.white_fraction, SNOW_WHITE_START, SNOW_WHITE_FULL),
        _ramp(stats.saturation, SNOW_SATURATION_START, SNOW_SATURATION_FULL),
        max(
            _ramp(stats.texture, SNOW_TEXTURE_START, SNOW_TEXTURE_FULL),
            _ramp(stats.contrast, SNOW_CONTRAST_START, SNOW_CONTRAST_FULL),
        ),
    )
    rain = min(
        _ramp(stats.streak_ratio, RAIN_STREAK_START, RAIN_STREAK_FULL),
        _ramp(stats.saturation, RAIN_SATURATION_START, RAIN_SATURATION_FULL),
        _ramp(stats.mean_luma, RAIN_LUMA_START, RAIN_LUMA_FULL),
    )
    scores = {"clear": CLEAR_SCORE, "snow": snow, "rain": rain, "fog": fog, "night": night}
    return {c: scores[c] for c in CONDITIONS}


# Tie-break order among the non-clear conditions: the more reliable cue wins.
_PRIORITY = ("night", "fog", "snow", "rain")


def classify_statistics(stats: ImageStatistics) -> str:
    """The single-frame condition: the best-scoring condition if it beats ``CLEAR_SCORE``, else clear.

    Args:
        stats: Output of :func:`compute_statistics`.

    Returns:
        One of :data:`CONDITIONS`.
    """
    scores = condition_scores(stats)
    best = max(_PRIORITY, key=lambda c: (scores[c], -_PRIORITY.index(c)))
    return best if scores[best] > CLEAR_SCORE else "clear"


def classify_image(rgb: np.ndarray) -> str:
    """Single-frame condition of an RGB image, without hysteresis (see :class:`WeatherClassifier`)."""
    return classify_statistics(compute_statistics(rgb))


class WeatherClassifier:
    """Per-frame condition with hysteresis, for ``weather.mode: auto``.

    A candidate condition different from the current one must win ``min_dwell_frames`` consecutive
    classifications before it replaces the current one; any other result in between (including the
    current condition) restarts the count. Frames alternating between two conditions therefore never
    switch the band.

    Args:
        min_dwell_frames: Consecutive wins needed to switch (>= 1; 1 disables hysteresis).
        every_n_frames: Classify only every n-th call of :meth:`update`; the calls in between return
            the current condition at no cost (>= 1).
        initial: Condition in force before the first switch.
        min_frames: Alias of ``min_dwell_frames`` (the node's ``weather.auto.min_frames``); wins if given.

    Raises:
        ConfigError: Out-of-range counts or an unknown initial condition.
    """

    def __init__(
        self,
        min_dwell_frames: int = 10,
        every_n_frames: int = 1,
        initial: str = "clear",
        min_frames: int | None = None,
    ) -> None:
        if min_frames is not None:
            min_dwell_frames = min_frames
        if int(min_dwell_frames) < 1:
            raise ConfigError(f"min_dwell_frames must be >= 1, got {min_dwell_frames}")
        if int(every_n_frames) < 1:
            raise ConfigError(f"every_n_frames must be >= 1, got {every_n_frames}")
        if initial not in CONDITIONS:
            raise ConfigError(f"unknown initial condition {initial!r}; known: {', '.join(CONDITIONS)}")
        self.min_dwell_frames = int(min_dwell_frames)
        self.every_n_frames = int(every_n_frames)
        self._initial = initial
        self.reset()

    def reset(self, condition: str | None = None) -> None:
        """Forget the pending candidate and set the current condition (default: the initial one).

        Raises:
            ConfigError: Unknown condition.
        """
        condition = self._initial if condition is None else condition
        if condition not in CONDITIONS:
            raise ConfigError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
        self._current = condition
        self._candidate: str | None = None
        self._count = 0
        self._calls = 0
        self.last_statistics: ImageStatistics | None = None
        self.last_scores: dict[str, float] = {}
        self.last_raw: str | None = None

    @property
    def current(self) -> str:
        """The condition in force."""
        return self._current

    @property
    def pending(self) -> tuple[str | None, int]:
        """``(candidate, consecutive wins so far)``; ``(None, 0)`` when nothing is pending."""
        return self._candidate, self._count

    def update(self, rgb: np.ndarray) -> str:
        """Classify a frame (every ``every_n_frames``-th call) and return the condition in force.

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB.

        Returns:
            One of :data:`CONDITIONS`.

        Raises:
            ConfigError: Not an ``(H, W, 3)`` uint8 image.
        """
        self._calls += 1
        if (self._calls - 1) % self.every_n_frames:
            return self._current
        return self.update_statistics(compute_statistics(rgb))

    def update_statistics(self, stats: ImageStatistics) -> str:
        """Feed precomputed statistics (one classification) and return the condition in force."""
        self.last_statistics = stats
        self.last_scores = condition_scores(stats)
        raw = classify_statistics(stats)
        self.last_raw = raw
        return self.observe(raw)

    def observe(self, raw: str) -> str:
        """Apply the hysteresis to one single-frame result and return the condition in force.

        Raises:
            ConfigError: Unknown condition.
        """
        if raw not in CONDITIONS:
            raise ConfigError(f"unknown condition {raw!r}; known: {', '.join(CONDITIONS)}")
        if raw == self._current:
            self._candidate, self._count = None, 0
        elif raw == self._candidate:
            self._count += 1
        else:
            self._candidate, self._count = raw, 1
        if self._candidate is not None and self._count >= self.min_dwell_frames:
            self._current = self._candidate
            self._candidate, self._count = None, 0
        return self._current


__all__ = [
    "CLEAR_SCORE",
    "ImageStatistics",
    "WeatherClassifier",
    "classify_image",
    "classify_statistics",
    "compute_statistics",
    "condition_scores",
]
