"""Cheap weather / lighting classification from image statistics, with hysteresis.

The frame is area-averaged by an integer factor to about :data:`DETAIL_WIDTH` px wide for the
fine-detail cues and from there to :data:`SMALL_WIDTH` px for global statistics; rain streaks are measured
on a grey frame about :data:`STREAK_FINE_WIDTH` px wide. All of it costs about 1 ms at 512 x 256 and
2 ms (cache-warm) to 6 ms (a fresh frame, busy machine) at 1024 x 512 on one CPU core
(``bench/weather_classifier.py``), 10-20 % more than the first version of this module. Values are in
[0, 1] unless noted (``Y`` is Rec. 601 luma of RGB / 255).

========================  ========================================================================
statistic                 definition
========================  ========================================================================
``mean_luma``             mean of Y
``contrast``              RMS contrast: standard deviation of Y
``dark_channel``          mean of the dark channel: per-pixel min over R, G, B, then a 3 x 3 min
                          filter (He et al.'s haze prior: near 0 in clear daylight, raised by
                          airlight in fog)
``saturation``            mean HSV saturation ``(max - min) / max``
``white_fraction``        share of pixels with Y > WHITE_MIN_LUMA and saturation < WHITE_MAX_SATURATION
``texture``               mean absolute fine detail ``|Y - blur3x3(Y)|`` at DETAIL_WIDTH, in bright
                          low-saturation pixels only
``streak_ratio``          thin near-vertical over thin horizontal bright-line energy (ridges higher
                          than STREAK_MIN_HEIGHT after 1 x STREAK_ELONGATION block averages), median
                          of the per-tile ratios over a STREAK_TILES grid (``_streak_ratio``);
                          ~0.9-1.2 for street scenes, higher with visible rain streaks
``upper_dark_fraction``   share of the top third of the frame (sky, facades) with Y < DARK_MAX_LUMA:
                          the dark sky of night
``lower_white_fraction``  ``white_fraction`` of the lower half (snow-covered road and ground)
``edge_contrast``         Weber edge contrast: mean gradient magnitude of Y (Sobel / 8) at
                          DETAIL_WIDTH over the mean of Y; airlight lowers it
``speckle``               share of DETAIL_WIDTH pixels whose white top-hat ``Y - open3x3(Y)`` exceeds
                          SPECKLE_MIN_HEIGHT: small bright specks (snowflakes)
========================  ========================================================================

Each condition gets a score in [0, 1]; a soft AND is the minimum of linear ramps ``ramp(x: a -> b)``
(0 at ``a``, 1 at ``b``, either direction), a soft OR the maximum. ``clear`` has the fixed score
``CLEAR_SCORE`` = 0.5: the best other condition wins only if it scores *more* than that (ties between
the others go to the earlier row). The thresholds are module constants named
``<CONDITION>_<STAT>_START`` / ``_FULL``:

=========  =========================================================================================
condition  score (constant values)
=========  =========================================================================================
night      min(ramp(upper_dark_fraction: 0.24 -> 0.32), ramp(mean_luma: 0.40 -> 0.32))
           (dark sky; the mean keeps a dark facade or tree over a bright street out)
fog        min(ramp(dark_channel: 0.31 -> 0.37), ramp(saturation: 0.16 -> 0.12),
           ramp(edge_contrast: 0.068 -> 0.056), ramp(speckle: 0.14 -> 0.10))
           (bright grey airlight veil, flat, no flakes)
snow       min(ramp(saturation: 0.16 -> 0.12), ramp(lower_white_fraction: 0.05 -> 0.11),
           max(ramp(speckle: 0.10 -> 0.14), ramp(edge_contrast: 0.085 -> 0.10)))
           (white unsaturated ground, with falling flakes or strong structure)
rain       min(ramp(mean_luma: 0.16 -> 0.22), max(ramp(streak_ratio: 1.6 -> 2.0),
           min(ramp(streak_ratio: 1.20 -> 1.35), ramp(saturation: 0.21 -> 0.17))))
           (not dark, and unmistakable streaks, or fainter streaks in dull overcast light)
=========  =========================================================================================

White pixels: Y > ``WHITE_MIN_LUMA`` = 0.65 and saturation < ``WHITE_MAX_SATURATION`` = 0.15; dark
pixels: Y < ``DARK_MAX_LUMA`` = 0.15; specks: white top-hat > ``SPECKLE_MIN_HEIGHT`` = 0.03.
``contrast``, ``white_fraction`` and ``texture`` are reported (diagnostics) but no longer scored.

The thresholds were set on the procedural street renderings of :mod:`causal_tune_ros.synthetic`
(scene seeds 0-39 at 256 x 512; ``bench/weather_classifier.py`` prints the confusion matrix) and checked
on other seeds and sizes (``test/synthetic/test_weather_synthetic.py``) and on the simple frames of
``test/weather/test_weather.py``. Honest limits: night (dark sky) and fog (airlight: high dark channel, low
Weber contrast) have strong, well-known cues. Snow relies on a white, unsaturated lower image plus
flakes or strong structure; bright overcast concrete can imitate it. Rain is the weak one: streaks are
thin, often motion-blurred away or invisible at low resolution, and wet roads look like clear ones, so
faint streaks only count in dull (unsaturated) light. On the renderings every condition is right on
held-out scenes at 256 x 512 and above, but rain drops to ~88 % at 168 x 336 (too few, too short streaks),
and it is the first cue to miss on real footage. The values were not fitted on real bad-weather
data (ACDC); prefer ``weather.mode: topic`` when a better signal (a rain sensor, wipers, a weather
service) exists. :class:`WeatherClassifier` adds hysteresis, in seconds of message time, so a borderline frame
sequence does not flap the band.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.weather.conditions import CONDITIONS

#: Width of the frame used for global statistics (area-averaged).
SMALL_WIDTH = 64
#: Width of the frame used for fine detail (texture, speckle, edge contrast).
DETAIL_WIDTH = 192

#: Rain streaks are measured on a grey frame about this wide ...
STREAK_FINE_WIDTH = 512
#: ... averaged over blocks this many rows tall (and, for the horizontal reference, this many columns).
STREAK_ELONGATION = 4
#: ... with the line energies pooled over this (rows, columns) grid of tiles, whose median ratio counts.
STREAK_TILES = (8, 16)
#: Bright ridges count only by their height above this (luma, after the block averaging) ...
STREAK_MIN_HEIGHT = 4.0 / 255.0
#: ... and a tile's mean ridge energies get this offset before their ratio is taken.
STREAK_TILE_FLOOR = 0.05 / 255.0

#: A detail pixel is a bright speck when it stands this much above its 3 x 3 morphological opening.
SPECKLE_MIN_HEIGHT = 0.03

#: A pixel of the top third counts as dark (night sky) below this luma.
DARK_MAX_LUMA = 0.15

#: A pixel is "white" (snow) above this luma ...
WHITE_MIN_LUMA = 0.65
#: ... and below this saturation.
WHITE_MAX_SATURATION = 0.15

#: Score of "clear": the bar every other condition must beat.
CLEAR_SCORE = 0.5

NIGHT_UPPER_DARK_START = 0.24
NIGHT_UPPER_DARK_FULL = 0.32
NIGHT_LUMA_START = 0.40
NIGHT_LUMA_FULL = 0.32

FOG_DARK_START = 0.31
FOG_DARK_FULL = 0.37
FOG_SATURATION_START = 0.16
FOG_SATURATION_FULL = 0.12
FOG_EDGE_START = 0.068
FOG_EDGE_FULL = 0.056
FOG_SPECKLE_START = 0.14
FOG_SPECKLE_FULL = 0.10

SNOW_SATURATION_START = 0.16
SNOW_SATURATION_FULL = 0.12
SNOW_LOWER_WHITE_START = 0.05
SNOW_LOWER_WHITE_FULL = 0.11
SNOW_SPECKLE_START = 0.10
SNOW_SPECKLE_FULL = 0.14
SNOW_EDGE_START = 0.085
SNOW_EDGE_FULL = 0.10

RAIN_STREAK_START = 1.20
RAIN_STREAK_FULL = 1.35
RAIN_STRONG_STREAK_START = 1.6
RAIN_STRONG_STREAK_FULL = 2.0
RAIN_SATURATION_START = 0.21
RAIN_SATURATION_FULL = 0.17
RAIN_LUMA_START = 0.16
RAIN_LUMA_FULL = 0.22


@dataclass(frozen=True)
class ImageStatistics:
    """The cheap per-frame statistics the classifier uses (definitions: module docstring).

    The last four fields were added after the first release; their defaults are neutral values (a
    mid-grey daylight frame) so that code constructing the first seven fields keeps working.
    """

    mean_luma: float
    contrast: float
    dark_channel: float
    saturation: float
    white_fraction: float
    texture: float
    streak_ratio: float
    upper_dark_fraction: float = 0.0
    lower_white_fraction: float = 0.0
    edge_contrast: float = 0.1
    speckle: float = 0.0

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


def _bright_ridges(a: np.ndarray, axis: int, floor: float) -> np.ndarray:
    """Height above ``floor`` of bright one-pixel ridges across ``axis`` (centre minus neighbours' mean)."""
    lo, mid, hi = (a[:, :-2], a[:, 1:-1], a[:, 2:]) if axis == 1 else (a[:-2], a[1:-1], a[2:])
    return np.maximum(mid - 0.5 * (lo + hi) - floor, 0.0)


def _streak_ratio(rgb: np.ndarray) -> float:
    """Thin-vertical over thin-horizontal bright-line energy, median over tiles (rain streaks).

    Rain streaks are bright, one or two pixels wide, many pixels long and nearly vertical. Averaging the
    grey frame over tall thin blocks (1 x STREAK_ELONGATION) keeps them while it averages down noise and
    isotropic detail (snowflakes, texture); the same blocks turned on their side give the horizontal
    reference. Only ridge height above STREAK_MIN_HEIGHT counts, so sensor noise (a few grey levels)
    drops out and a visible streak on flat road or sky stands against nothing. The ratio of the two
    energies is taken per tile of the STREAK_TILES grid and the median reported: streaks fall everywhere,
    while a scene's own vertical lines (poles, facades) fill only some tiles and its horizontal ones
    (kerbs, window rows) balance them. ~0.9-1.2 for street scenes, higher with visible streaks.
    """
    grey = cv2.cvtColor(_shrink(rgb, STREAK_FINE_WIDTH), cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    long = STREAK_ELONGATION
    rows, cols = STREAK_TILES
    if h // long < rows + 2 or w // long < cols + 2:
        return 1.0  # too small to tell
    grey = grey[: h - h % long, : w - w % long].astype(np.float32) * np.float32(1.0 / 255.0)
    h, w = grey.shape
    tall = cv2.resize(grey, (w, h // long), interpolation=cv2.INTER_AREA)
    wide = cv2.resize(grey, (w // long, h), interpolation=cv2.INTER_AREA)
    floor = STREAK_MIN_HEIGHT
    across_x = cv2.resize(_bright_ridges(tall, 1, floor), (cols, rows), interpolation=cv2.INTER_AREA)
    across_y = cv2.resize(_bright_ridges(wide, 0, floor), (cols, rows), interpolation=cv2.INTER_AREA)
    # The small offset makes tiles without any line count as 1 (neutral) instead of 0 / 0.
    eps = np.float32(STREAK_TILE_FLOOR)
    return float(np.median((across_x + eps) / (across_y + eps)))


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
    # For frames of one to two rows the "top third" and "lower half" fall back to the whole frame.
    top = y[: y.shape[0] // 3 or None]
    lower_white = white[y.shape[0] // 2 :]

    yd = _luma(detail)
    fine = yd - cv2.blur(yd, (3, 3), borderType=cv2.BORDER_REFLECT)
    bright_grey = (yd > WHITE_MIN_LUMA) & (_saturation(detail)[0] < WHITE_MAX_SATURATION)
    texture = float(np.abs(fine)[bright_grey].sum() / fine.size)
    kernel = np.ones((3, 3), np.uint8)
    # A count above a height, not a mean: sensor noise (which depends on the downscaling factor) barely
    # reaches the height, so the value means the same at every input resolution.
    tophat = yd - cv2.morphologyEx(yd, cv2.MORPH_OPEN, kernel)
    speckle = float(np.count_nonzero(tophat > SPECKLE_MIN_HEIGHT)) / tophat.size
    gx = cv2.Sobel(yd, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(yd, cv2.CV_32F, 0, 1)
    # Sobel sums 8 pixel differences; Weber contrast (relative to the mean) so that airlight, which
    # lifts the mean and scales the differences down, is what lowers it, not exposure.
    edge = float(cv2.magnitude(gx, gy).mean()) / 8.0 / max(float(yd.mean()), 1e-3)
    return ImageStatistics(
        mean_luma=float(y.mean()),
        contrast=float(y.std()),
        dark_channel=float(dark.mean()),
        saturation=float(sat.mean()),
        white_fraction=float(white.mean()),
        texture=texture,
        streak_ratio=_streak_ratio(rgb),
        upper_dark_fraction=float(np.count_nonzero(top < DARK_MAX_LUMA)) / top.size,
        lower_white_fraction=float(lower_white.mean()),
        edge_contrast=edge,
        speckle=speckle,
    )


def _ramp(value: float, start: float, full: float) -> float:
    """0 at ``start``, 1 at ``full``, linear between (either direction), clipped."""
    return float(np.clip((value - start) / (full - start), 0.0, 1.0))


def condition_scores(stats: ImageStatistics) -> dict[str, float]:
    """Score every condition of :data:`CONDITIONS` in [0, 1] (rules: module docstring).

    Args:
        stats: Output of :func:`compute_statistics`.

    Returns:
        ``{condition: score}`` in :data:`CONDITIONS` order; ``clear`` is always ``CLEAR_SCORE``.
    """
    night = min(
        _ramp(stats.upper_dark_fraction, NIGHT_UPPER_DARK_START, NIGHT_UPPER_DARK_FULL),
        _ramp(stats.mean_luma, NIGHT_LUMA_START, NIGHT_LUMA_FULL),
    )
    fog = min(
        _ramp(stats.dark_channel, FOG_DARK_START, FOG_DARK_FULL),
        _ramp(stats.saturation, FOG_SATURATION_START, FOG_SATURATION_FULL),
        _ramp(stats.edge_contrast, FOG_EDGE_START, FOG_EDGE_FULL),
        _ramp(stats.speckle, FOG_SPECKLE_START, FOG_SPECKLE_FULL),
    )
    snow = min(
        _ramp(stats.saturation, SNOW_SATURATION_START, SNOW_SATURATION_FULL),
        _ramp(stats.lower_white_fraction, SNOW_LOWER_WHITE_START, SNOW_LOWER_WHITE_FULL),
        max(
            _ramp(stats.speckle, SNOW_SPECKLE_START, SNOW_SPECKLE_FULL),
            _ramp(stats.edge_contrast, SNOW_EDGE_START, SNOW_EDGE_FULL),
        ),
    )
    # Faint streaks also occur in clear scenes (fences, railings, facades): they count only under the
    # dull light of an overcast sky; streaks beyond anything a dry scene shows count on their own.
    rain = min(
        _ramp(stats.mean_luma, RAIN_LUMA_START, RAIN_LUMA_FULL),
        max(
            _ramp(stats.streak_ratio, RAIN_STRONG_STREAK_START, RAIN_STRONG_STREAK_FULL),
            min(
                _ramp(stats.streak_ratio, RAIN_STREAK_START, RAIN_STREAK_FULL),
                _ramp(stats.saturation, RAIN_SATURATION_START, RAIN_SATURATION_FULL),
            ),
        ),
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


#: Default hysteresis: a new condition must hold this many seconds of message time (header stamps).
#: Weather and light change over seconds; 0.2 s follows a change within about 3 frames at 10 Hz (7 at
#: 30 Hz) while a single odd frame, or frames alternating between two conditions, never switch the band.
DEFAULT_MIN_SECONDS = 0.2


class WeatherClassifier:
    """Per-frame condition with hysteresis in seconds of message time, for ``weather.mode: auto``.

    A candidate condition different from the current one replaces it once consecutive classifications
    have named it over at least ``min_seconds`` seconds of message time, measured between the header
    stamps of its first and its latest win. Any other result in between (including the current
    condition) restarts the candidate. With ``min_seconds > 0`` a switch always needs at least two
    agreeing classifications, so one odd frame never switches the band, whatever the frame rate;
    ``min_seconds = 0`` switches on the first win (no hysteresis). Because the dwell is measured on the
    stamps, the switch lags the weather by the same time at 5, 10 or 30 Hz and with frames skipped
    (``every_n_frames``, replay's ``--every``).

    Frames given without a stamp are timed by the monotonic clock instead; a stamp going backwards
    (a bag played in a loop) restarts the pending candidate's timing.

    Args:
        min_seconds: Seconds a new condition must hold before it is applied (>= 0).
        every_n_frames: Classify only every n-th call of :meth:`update`; the calls in between return
            the current condition at no cost (>= 1).
        initial: Condition in force before the first switch.

    Raises:
        ConfigError: Out-of-range values or an unknown initial condition.
    """

    def __init__(
        self,
        min_seconds: float = DEFAULT_MIN_SECONDS,
        every_n_frames: int = 1,
        initial: str = "clear",
    ) -> None:
        if not float(min_seconds) >= 0.0 or not math.isfinite(float(min_seconds)):
            raise ConfigError(f"min_seconds must be a finite number >= 0, got {min_seconds}")
        if int(every_n_frames) < 1:
            raise ConfigError(f"every_n_frames must be >= 1, got {every_n_frames}")
        if initial not in CONDITIONS:
            raise ConfigError(f"unknown initial condition {initial!r}; known: {', '.join(CONDITIONS)}")
        self.min_seconds = float(min_seconds)
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
        self._since: int | None = None  # stamp (ns) of the candidate's first win
        self._last: int | None = None  # stamp (ns) of the latest classification
        self._calls = 0
        self.last_statistics: ImageStatistics | None = None
        self.last_scores: dict[str, float] = {}
        self.last_raw: str | None = None

    @property
    def current(self) -> str:
        """The condition in force."""
        return self._current

    @property
    def pending(self) -> tuple[str | None, float]:
        """``(candidate, seconds it has held so far)``; ``(None, 0.0)`` when nothing is pending."""
        if self._candidate is None or self._since is None or self._last is None:
            return None, 0.0
        return self._candidate, (self._last - self._since) / 1e9

    def update(self, rgb: np.ndarray, stamp_ns: int | None = None) -> str:
        """Classify a frame (every ``every_n_frames``-th call) and return the condition in force.

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB.
            stamp_ns: The frame's header stamp in nanoseconds (``None``: the monotonic clock).

        Returns:
            One of :data:`CONDITIONS`.

        Raises:
            ConfigError: Not an ``(H, W, 3)`` uint8 image.
        """
        self._calls += 1
        if (self._calls - 1) % self.every_n_frames:
            return self._current
        return self.update_statistics(compute_statistics(rgb), stamp_ns)

    def update_statistics(self, stats: ImageStatistics, stamp_ns: int | None = None) -> str:
        """Feed precomputed statistics (one classification) and return the condition in force."""
        self.last_statistics = stats
        self.last_scores = condition_scores(stats)
        raw = classify_statistics(stats)
        self.last_raw = raw
        return self.observe(raw, stamp_ns)

    def observe(self, raw: str, stamp_ns: int | None = None) -> str:
        """Apply the hysteresis to one single-frame result and return the condition in force.

        Args:
            raw: Single-frame condition.
            stamp_ns: Its header stamp in nanoseconds (``None``: the monotonic clock).

        Raises:
            ConfigError: Unknown condition.
        """
        if raw not in CONDITIONS:
            raise ConfigError(f"unknown condition {raw!r}; known: {', '.join(CONDITIONS)}")
        now = time.monotonic_ns() if stamp_ns is None else int(stamp_ns)
        if self._last is not None and now < self._last and self._candidate is not None:
            self._since = now  # time went backwards (looped bag): time the candidate afresh
        self._last = now
        if raw == self._current:
            self._candidate, self._since = None, None
        elif raw != self._candidate:
            self._candidate, self._since = raw, now
        held = None if self._since is None else now - self._since
        if self._candidate is not None and held is not None and held >= round(self.min_seconds * 1e9):
            self._current = self._candidate
            self._candidate, self._since = None, None
        return self._current


__all__ = [
    "CLEAR_SCORE",
    "DEFAULT_MIN_SECONDS",
    "ImageStatistics",
    "WeatherClassifier",
    "classify_image",
    "classify_statistics",
    "compute_statistics",
    "condition_scores",
]
