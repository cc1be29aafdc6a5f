"""weather/: band presets from YAML and the statistics classifier with hysteresis on synthesised frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from causal_tune_ros.band import Band
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.resources import config_path
from causal_tune_ros.weather import (
    CONDITIONS,
    DEFAULT_MIN_SECONDS,
    WeatherClassifier,
    classify_image,
    classify_statistics,
    compute_statistics,
    condition_scores,
    load_band_presets,
    parse_band_presets,
    presets_from_parameters,
    presets_to_parameters,
)

# --------------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------------


def test_packaged_presets_match_the_yaml_file() -> None:
    presets = load_band_presets()
    assert tuple(presets) == CONDITIONS == ("clear", "snow", "rain", "fog", "night")
    raw = yaml.safe_load(config_path("weather_bands.yaml").read_text())["weather"]["bands"]
    for condition, band in presets.items():
        assert isinstance(band, Band)
        assert band.as_tuple() == (raw[condition]["low"], raw[condition]["high"])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bands.yaml"
    path.write_text(text)
    return path


FULL = "\n".join(f"    {c}: {{low: 0.2, high: 0.6}}" for c in CONDITIONS)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("weather:\n  bands:\n" + FULL + "\n    hail: {low: 0.2, high: 0.6}\n", "unknown condition.*hail"),
        ("weather:\n  bands:\n" + FULL.replace("    night: {low: 0.2, high: 0.6}", ""), "missing .*night"),
        (
            "weather:\n  bands:\n" + FULL.replace("fog: {low: 0.2", "fog: {low: 0.8"),
            "weather.bands.fog: band",
        ),
        (
            "weather:\n  bands:\n" + FULL.replace("snow: {low: 0.2", "snow: {low: yes"),
            "snow: band edges must be",
        ),
        ("weather:\n  bands:\n" + FULL.replace("rain: {low: 0.2, high: 0.6}", "rain: 0.4"), "rain must be"),
        ("weather:\n  bands:\n" + FULL.replace("clear: {low: 0.2", "clear: {lo: 0.2"), "clear must be"),
        ("bands:\n" + FULL, "expected a 'weather: bands"),
        ("weather: [1, 2]\n", "expected a 'weather: bands"),
        ("weather: {bands: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_preset_files_raise(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_band_presets(write(tmp_path, text))


def test_custom_file_and_missing_file(tmp_path: Path) -> None:
    presets = load_band_presets(write(tmp_path, "weather:\n  bands:\n" + FULL))
    assert all(b == Band(0.2, 0.6) for b in presets.values())
    with pytest.raises(ConfigError, match="cannot read"):
        load_band_presets(tmp_path / "nope.yaml")


def test_parameter_round_trip() -> None:
    presets = load_band_presets()
    flat = presets_to_parameters(presets)
    assert len(flat) == 2 * len(CONDITIONS)
    assert flat["weather.bands.snow.high"] == presets["snow"].high
    assert presets_from_parameters({**flat, "weather.mode": "auto"}) == presets
    flat["weather.bands.night.low"] = 0.9
    with pytest.raises(ConfigError, match=r"weather\.bands\.night"):
        presets_from_parameters(flat)
    with pytest.raises(ConfigError, match="missing"):
        parse_band_presets({"weather": {"bands": {"clear": {"low": 0.1, "high": 0.5}}}})


# --------------------------------------------------------------------------------------------------
# Synthesised frames (float RGB in [0, 1] -> uint8)
# --------------------------------------------------------------------------------------------------


def street(seed: int, h: int = 240, w: int = 480) -> np.ndarray:
    """A colourful daylight street: sky, coloured facades with windows, grass, road, cars, sensor noise."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    hz = int(h * 0.45)
    t = np.linspace(0, 1, hz, dtype=np.float32)[:, None, None]
    img[:hz] = np.array([0.35, 0.55, 0.9]) * (1 - t) + np.array([0.65, 0.75, 0.9]) * t
    x = 0
    while x < w:
        bw, bh = int(rng.integers(w // 16, w // 6)), int(rng.integers(hz // 3, hz))
        colour = rng.uniform(0.2, 0.8, 3)
        img[hz - bh : hz + h // 24, x : x + bw] = colour
        for wy in range(hz - bh + 5, hz, max(6, h // 20)):
            for wx in range(x + 4, x + bw - 6, max(5, w // 48)):
                img[wy : wy + h // 40 + 1, wx : wx + w // 96 + 1] = colour * 0.4
        x += bw + int(rng.integers(0, 10))
    img[hz:] = (0.25, 0.45, 0.2)
    road = np.array([[w * 0.45, hz], [w * 0.55, hz], [w, h], [0, h]], np.int32)
    cv2.fillPoly(img, [road], (0.33, 0.33, 0.35))
    cv2.line(img, (w // 2, hz), (w // 2, h), (0.95, 0.95, 0.95), max(1, w // 240))
    for _ in range(4):
        cx, cy = int(rng.integers(20, w - w // 8)), int(rng.integers(hz, h - h // 8))
        cv2.rectangle(
            img, (cx, cy), (cx + w // 10, cy + h // 10), tuple(float(c) for c in rng.uniform(0, 1, 3)), -1
        )
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)


def to_u8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def render(condition: str, seed: int, h: int = 240, w: int = 480) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    scene = street(seed, h, w)
    if condition == "night":  # very dark, a few street lights
        out = scene * 0.08
        for _ in range(6):
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h // 2)))
            cv2.circle(out, centre, max(2, w // 120), (1.0, 0.9, 0.6), -1)
    elif condition == "fog":  # Koschmieder: J t + A (1 - t), heavy veil
        out = scene * 0.3 + 0.78 * 0.7
    elif condition == "snow":  # overcast, snow-covered ground, falling flakes
        grey = scene.mean(axis=2, keepdims=True)
        out = 0.4 * scene + 0.6 * grey
        out[: int(h * 0.45)] = 0.3 * out[: int(h * 0.45)] + 0.7 * 0.85
        out[int(h * 0.45) :] = 0.5 * out[int(h * 0.45) :] + 0.5 * 0.92
        for _ in range(int(h * w * 0.02)):
            cv2.circle(
                out,
                (int(rng.integers(0, w)), int(rng.integers(0, h))),
                int(rng.integers(1, 3)),
                (1, 1, 1),
                -1,
            )
        out = out + rng.normal(0, 0.02, out.shape)
    elif condition == "rain":  # dull, darker, thin near-vertical streaks
        grey = scene.mean(axis=2, keepdims=True)
        out = (0.5 * scene + 0.5 * grey) * 0.75
        streaks = np.zeros((h, w), np.float32)
        for _ in range(int(h * w * 0.004)):
            x0, y0, length = (
                int(rng.integers(0, w)),
                int(rng.integers(0, h)),
                int(rng.integers(h // 24, h // 8)),
            )
            cv2.line(streaks, (x0, y0), (x0 + int(rng.integers(-2, 3)), y0 + length), 1.0, 1)
        out = out + 0.35 * streaks[..., None]
    else:
        out = scene
    return to_u8(out)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("condition", CONDITIONS)
def test_single_frame_classification(condition: str, seed: int) -> None:
    frame = render(condition, seed)
    stats = compute_statistics(frame)
    scores = condition_scores(stats)
    assert classify_statistics(stats) == condition, (stats, scores)
    assert classify_image(frame) == condition
    assert set(scores) == set(CONDITIONS)


@pytest.mark.parametrize("condition", ["clear", "rain", "snow"])
def test_classification_holds_at_camera_resolution(condition: str) -> None:
    # Rain streaks and snow flakes are thin: check they survive the downscaling of a 1024 x 512 frame.
    assert classify_image(render(condition, 3, 512, 1024)) == condition


def test_statistics_move_the_expected_way() -> None:
    clear, fog, night, snow = (compute_statistics(render(c, 5)) for c in ("clear", "fog", "night", "snow"))
    assert fog.dark_channel > clear.dark_channel + 0.2 and fog.contrast < clear.contrast / 2
    assert night.mean_luma < clear.mean_luma / 4
    assert snow.white_fraction > 0.5 > clear.white_fraction
    assert snow.texture > 3 * fog.texture
    assert compute_statistics(render("rain", 5)).streak_ratio > 1.5 * clear.streak_ratio


def test_statistics_accept_views_and_tiny_frames() -> None:
    frame = render("clear", 0)
    flipped = frame[:, ::-1, ::-1]  # negative strides (a BGR view)
    assert compute_statistics(flipped).mean_luma > 0
    tiny = compute_statistics(frame[:4, :4])
    assert tiny.streak_ratio == 1.0  # too small to measure streaks: neutral
    with pytest.raises(ConfigError, match=r"\(H, W, 3\) uint8"):
        compute_statistics(frame.astype(np.float32))
    with pytest.raises(ConfigError):
        compute_statistics(frame[..., 0])


# --------------------------------------------------------------------------------------------------
# Hysteresis
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    return {c: render(c, 7, 120, 240) for c in ("clear", "fog", "night")}


#: 10 Hz stamps (ns) from an arbitrary start.
T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def stamps(n: int, period_ms: int = 100, start: int = T0) -> list[int]:
    return [start + i * period_ms * MS for i in range(n)]


def test_hysteresis_ignores_alternating_frames(frames: dict[str, np.ndarray]) -> None:
    clf = WeatherClassifier(min_seconds=0.25)
    t = iter(stamps(24))
    for _ in range(6):
        assert clf.update(frames["night"], next(t)) == "clear"
        assert clf.update(frames["clear"], next(t)) == "clear"
        assert clf.update(frames["fog"], next(t)) == "clear"
        assert clf.update(frames["fog"], next(t)) == "clear"  # fog for 0.1 s is not enough
    assert clf.last_raw == "fog" and clf.last_scores["fog"] > 0.5


def test_hysteresis_switches_after_min_seconds_of_message_time(frames: dict[str, np.ndarray]) -> None:
    clf = WeatherClassifier(min_seconds=0.3)
    history = [clf.update(frames["night"], t) for t in stamps(6)]
    # Night first seen at 0.0 s, held 0.3 s at the fourth frame: the switch happens there.
    assert history == ["clear", "clear", "clear", "night", "night", "night"]
    assert clf.pending == (None, 0.0)
    # Back to clear needs 0.3 s of clear too; one night frame in between restarts the timing.
    sequence = ["clear"] * 3 + ["night"] + ["clear"] * 4
    history = [clf.update(frames[c], t) for c, t in zip(sequence, stamps(8, start=T0 + 10**9), strict=True)]
    assert history == ["night"] * 7 + ["clear"]
    assert clf.current == "clear"


def test_the_lag_is_the_same_in_seconds_at_any_frame_rate(frames: dict[str, np.ndarray]) -> None:
    # 30 Hz, 10 Hz and 5 Hz: the switch comes once 0.2 s of night have been seen, whatever the rate
    # (with frames frame counts it came after 10 frames: 0.33 s at 30 Hz, 2 s at 5 Hz).
    for period_ms in (33, 100, 200):
        clf = WeatherClassifier()  # the default, shared by the node and replay
        assert clf.min_seconds == DEFAULT_MIN_SECONDS == 0.2
        times = stamps(12, period_ms)
        switched = next(t for t in times if clf.update(frames["night"], t) == "night")
        lag = (switched - T0) / 1e9
        assert DEFAULT_MIN_SECONDS <= lag < DEFAULT_MIN_SECONDS + period_ms / 1000 + 1e-9, (period_ms, lag)


def test_a_single_odd_frame_never_switches_even_when_frames_are_far_apart(
    frames: dict[str, np.ndarray],
) -> None:
    clf = WeatherClassifier(min_seconds=0.2)
    # 1 Hz: one night frame between clear ones is never enough, although it lasts "a second".
    for i, c in enumerate(["clear", "night", "clear", "night", "clear"]):
        assert clf.update(frames[c], T0 + i * 10**9) == "clear"
    # Two night frames in a row, 1 s apart, are.
    assert clf.update(frames["night"], T0 + 5 * 10**9) == "clear"
    assert clf.update(frames["night"], T0 + 6 * 10**9) == "night"


def test_time_going_backwards_restarts_the_candidate(frames: dict[str, np.ndarray]) -> None:
    clf = WeatherClassifier(min_seconds=0.2)
    assert clf.update(frames["night"], T0 + 5 * 10**9) == "clear"
    # A looped bag: the stamp jumps back 5 s; the candidate is timed afresh from there.
    assert clf.update(frames["night"], T0) == "clear"
    assert clf.pending == ("night", 0.0)
    assert clf.update(frames["night"], T0 + 200 * MS) == "night"


def test_every_n_frames(frames: dict[str, np.ndarray]) -> None:
    clf = WeatherClassifier(min_seconds=0.2, every_n_frames=3)
    results = [clf.update(frames["fog"], t) for t in stamps(6)]
    # Classified on calls 1 (0.0 s) and 4 (0.3 s) only: the second classification switches.
    assert results == ["clear"] * 3 + ["fog"] * 3


def test_min_seconds_zero_follows_every_frame_and_reset(frames: dict[str, np.ndarray]) -> None:
    clf = WeatherClassifier(min_seconds=0, initial="night")
    assert clf.current == "night"
    assert clf.update(frames["fog"], T0) == "fog"
    assert clf.update(frames["clear"], T0) == "clear"
    clf.reset("snow")
    assert clf.current == "snow" and clf.pending == (None, 0.0)
    clf.reset()
    assert clf.current == "night"


def test_frames_without_stamps_use_the_monotonic_clock(frames: dict[str, np.ndarray]) -> None:
    clf = WeatherClassifier(min_seconds=3600)
    assert clf.update(frames["night"]) == "clear"
    assert clf.update(frames["night"]) == "clear"  # far less than an hour of wall time has passed
    candidate, held = clf.pending
    assert candidate == "night" and 0 <= held < 3600


def test_classifier_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="min_seconds"):
        WeatherClassifier(min_seconds=-0.1)
    with pytest.raises(ConfigError, match="min_seconds"):
        WeatherClassifier(min_seconds=float("nan"))
    with pytest.raises(ConfigError, match="every_n_frames"):
        WeatherClassifier(every_n_frames=0)
    with pytest.raises(ConfigError, match="unknown initial condition 'hail'"):
        WeatherClassifier(initial="hail")
    with pytest.raises(ConfigError, match="unknown condition"):
        WeatherClassifier().observe("sunny")
