"""Argument and input checks shared by the segmentation heads (:mod:`.heads`, :mod:`.mask2former_head`).

Each check names the head in its message (``owner``) so a bad value is reported the same way by every head.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from causal_tune_ros.errors import ConfigError


def check_positive_ints(owner: str, values: Iterable[tuple[str, object]]) -> None:
    """Require every named constructor argument to be a positive ``int`` (``bool`` excluded).

    Args:
        owner: Head class name used in the message.
        values: ``(argument name, value)`` pairs, checked in order.

    Raises:
        ConfigError: For the first value that is not a positive integer.
    """
    for name, value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{owner} {name} must be a positive integer, got {value!r}")


def check_dropout(owner: str, dropout: float) -> None:
    """Require a dropout probability in ``[0, 1)``.

    Args:
        owner: Head class name used in the message.
        dropout: The probability.

    Raises:
        ConfigError: If ``dropout`` is outside ``[0, 1)``.
    """
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"{owner} dropout must be in [0, 1), got {dropout!r}")


def check_feature_grids(
    owner: str, features: Sequence[torch.Tensor], num_inputs: int, in_channels: int
) -> None:
    """Require ``num_inputs`` feature grids of one shape ``(B, in_channels, h, w)``.

    Args:
        owner: Head class name used in the message.
        features: The backbone feature grids given to the head.
        num_inputs: How many grids the head takes.
        in_channels: Channels each grid must have.

    Raises:
        ValueError: For the wrong number of grids or mismatched / wrongly sized grids.
    """
    if len(features) != num_inputs:
        raise ValueError(f"{owner} expects {num_inputs} feature grids, got {len(features)}")
    shape = features[0].shape
    for f in features:
        if f.ndim != 4 or f.shape[1] != in_channels or f.shape != shape:
            raise ValueError(
                f"{owner} needs {num_inputs} grids of equal shape (B, {in_channels}, h, w), "
                f"got {[tuple(t.shape) for t in features]}"
            )
