"""Image and network sizes: one parser for every command, parameter and config that takes ``H x W``.

A size is written ``"HxW"`` (``"518x1036"``), ``"H,W"`` or given as a pair ``(H, W)``; where a square is
meant a single ``"N"`` may stand for ``N x N``. Callers state the rule their sizes follow (a multiple of
the patch size, a range), and every violation raises :class:`~causal_tune_ros.errors.ConfigError` whose
message names the value and the rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from causal_tune_ros.errors import ConfigError

#: Side of DINOv2's square patches: network input sides are multiples of it.
PATCH_SIZE = 14


def parse_size(
    value: str | Sequence[int],
    *,
    what: str = "size",
    multiple: int = 1,
    square: bool = False,
    min_side: int = 1,
    max_side: int | None = None,
) -> tuple[int, int]:
    """Read ``(H, W)`` from ``"HxW"``, ``"H,W"`` (blanks and case ignored), or a pair of integers.

    Args:
        value: The size as text or a pair.
        what: Name used in error messages (``"input size"``, ``"--window"``).
        multiple: Both sides must be multiples of this (e.g. :data:`PATCH_SIZE`).
        square: Also accept a single ``"N"`` (or ``[N]``) for ``N x N``.
        min_side: Smallest side allowed.
        max_side: Largest side allowed (``None``: no limit).

    Returns:
        ``(H, W)`` as ints.

    Raises:
        ConfigError: Not two integers (one with ``square``), or a side that breaks the rule.
    """
    shape = "'HxW' or N" if square else "'HxW' or (H, W)"
    try:
        if isinstance(value, str):
            parts = value.lower().replace(" ", "").replace(",", "x").split("x")
            sides = [int(p) for p in parts]
        else:
            sides = [int(v) for v in value]
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be {shape}, got {value!r}") from None
    if square and len(sides) == 1:
        sides = sides * 2
    if len(sides) != 2:
        raise ConfigError(f"{what} must be {shape}, got {value!r}")
    h, w = sides
    if max_side is not None and not (min_side <= h <= max_side and min_side <= w <= max_side):
        raise ConfigError(f"{what} {h}x{w}: each side must be in {min_side}..{max_side}")
    if multiple > 1 and (h <= 0 or w <= 0 or h % multiple or w % multiple):
        near = f"{max(1, round(h / multiple)) * multiple}x{max(1, round(w / multiple)) * multiple}"
        raise ConfigError(
            f"{what} {h}x{w}: both sides must be positive multiples of {multiple} (e.g. {near})"
        )
    if h < min_side or w < min_side:
        raise ConfigError(f"{what} {h}x{w}: each side must be at least {min_side}")
    return h, w


def parse_input_size(value: str | Sequence[int]) -> tuple[int, int]:
    """A network input size: ``"HxW"`` or ``(H, W)`` with both sides positive multiples of :data:`PATCH_SIZE`.

    Raises:
        ConfigError: Otherwise (the message suggests the nearest valid size).
    """
    return parse_size(value, what="input size", multiple=PATCH_SIZE)
