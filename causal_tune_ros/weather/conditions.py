"""The weather conditions the package knows: one definition for classifier, presets and renderer."""

from __future__ import annotations

from causal_tune_ros.errors import ConfigError

#: The weather conditions, in the order of ACDC's splits plus clear weather. The order is part of the
#: contract: the synthetic renderer seeds each condition by its index.
CONDITIONS: tuple[str, ...] = ("clear", "snow", "rain", "fog", "night")


def check_condition(name: str) -> str:
    """Return ``name`` if it is one of :data:`CONDITIONS`.

    Raises:
        ConfigError: For any other value, naming the known conditions.
    """
    if name not in CONDITIONS:
        raise ConfigError(f"unknown condition {name!r}; expected one of {', '.join(CONDITIONS)}")
    return name
