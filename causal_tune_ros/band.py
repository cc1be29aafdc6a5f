"""The Causal-Tune frequency band: a pure value type shared by the model, weather presets and the node."""

from __future__ import annotations

from dataclasses import dataclass

from causal_tune_ros.errors import ConfigError

#: The paper's band (its ablation keeps r_low = 0.2, r_high = 0.7); training uses it.
DEFAULT_LOW = 0.2
DEFAULT_HIGH = 0.7


@dataclass(frozen=True)
class Band:
    """Cut-off radii of the Gaussian band-pass on the normalised frequency radius (docs/METHOD.md).

    Attributes:
        low: ``r_low``, the radius of the low-pass that is subtracted (removes the DC / coarse band).
        high: ``r_high``, the radius of the low-pass that is kept (attenuates the finest frequencies).

    Raises:
        ConfigError: Unless ``0 < low < high <= 1``.
    """

    low: float = DEFAULT_LOW
    high: float = DEFAULT_HIGH

    def __post_init__(self) -> None:
        if not (0.0 < self.low < self.high <= 1.0):
            raise ConfigError(f"band needs 0 < low < high <= 1, got low={self.low}, high={self.high}")

    def as_tuple(self) -> tuple[float, float]:
        """``(low, high)`` as plain floats, the form the backends take."""
        return (float(self.low), float(self.high))

    def __str__(self) -> str:
        return f"[{self.low:.3f}, {self.high:.3f}]"


DEFAULT_BAND = Band()


def parse_band(text: str) -> Band:
    """Parse ``"r_low,r_high"`` as given to ``--band`` (blanks ignored).

    Raises:
        ConfigError: If the text is not two numbers with ``0 < low < high <= 1``.
    """
    parts = [p.strip() for p in text.replace(" ", "").split(",")]
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"band {text!r}: expected r_low,r_high (e.g. 0.2,0.7)") from None
    return Band(low, high)
