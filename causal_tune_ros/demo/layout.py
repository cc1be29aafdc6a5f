"""Names and defaults of the demo: output files, mIoU columns, the default drive."""

from __future__ import annotations

from causal_tune_ros.errors import ConfigError

DEFAULT_OUT = "causal_tune_demo_out"
#: The drive: a snowy and a night stretch, plus a few frames of the other conditions.
DEFAULT_SEGMENTS: tuple[tuple[str, int], ...] = (
    ("clear", 3),
    ("snow", 6),
    ("night", 6),
    ("fog", 3),
    ("rain", 3),
)
#: Render size when the checkpoint records none: a multiple of 14, so the network sees every pixel.
DEFAULT_SIZE = (168, 336)

DRIVE_BAG = "demo_drive.mcap"
SEGMENTED_BAG = "demo_segmented.mcap"
MONTAGE = "demo_montage.png"
VIDEO = "demo_overlay.mp4"
METRICS = "demo_metrics.json"

COLUMNS = ("preset", "train", "rein", "off")
COLUMN_TITLES = {
    "preset": "preset bands",
    "train": "training band",
    "rein": "Rein-style model",
    "off": "filter-off probe",
}
#: The Rein-style ablation shipped beside the demo model, and the demo model's calibrated presets.
DEMO_ABLATION = ("models", "demo", "rein_demo.safetensors")
DEMO_PRESETS = "weather_bands_demo.yaml"


def parse_segments(text: str | None) -> list[tuple[str, int]]:
    """``"clear=3,snow=6"`` -> ``[("clear", 3), ("snow", 6)]`` (``None``: the default drive).

    Raises:
        ConfigError: Malformed text, an unknown condition or a count below 1.
    """
    from causal_tune_ros.weather import CONDITIONS

    if not text:
        return list(DEFAULT_SEGMENTS)
    result = []
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, count = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in CONDITIONS:
            raise ConfigError(f"--frames: expected COND=N with COND in {', '.join(CONDITIONS)}, got {part!r}")
        try:
            n = int(count)
        except ValueError:
            raise ConfigError(f"--frames: {part!r}: N must be an integer") from None
        if n < 1:
            raise ConfigError(f"--frames: {part!r}: N must be >= 1")
        result.append((name, n))
    if not result:
        raise ConfigError("--frames: no segment given")
    return result
