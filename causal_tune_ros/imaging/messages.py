"""Reading the fields of duck-typed image messages: byte buffers, integers, the pixel cap."""

from __future__ import annotations

from typing import Any

import numpy as np

from causal_tune_ros.errors import ImageConversionError
from causal_tune_ros.limits import DEFAULT_MAX_IMAGE_PIXELS

#: Largest ``width * height`` accepted by default: the one cap the node (``max_image_pixels``) and
#: the replay share, see :data:`causal_tune_ros.limits.DEFAULT_MAX_IMAGE_PIXELS`.
DEFAULT_MAX_PIXELS = DEFAULT_MAX_IMAGE_PIXELS


def as_bytes(data: Any, what: str) -> np.ndarray:
    """The message's ``data`` as a flat uint8 array, sharing memory whenever the type allows it."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageConversionError(f"{what} data must be uint8, got a {data.dtype} array")
        return data.reshape(-1)
    try:
        # bytes, bytearray, memoryview, array.array('B') (rclpy): a view, no copy.
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):
        pass
    try:
        return np.asarray(data, dtype=np.uint8).reshape(-1)  # a plain list of ints (slow, rare)
    except (TypeError, ValueError, OverflowError) as err:
        raise ImageConversionError(
            f"{what} data is not a byte buffer ({type(data).__name__}): {err}"
        ) from None


def message_field(msg: Any, name: str) -> Any:
    """``msg.<name>``.

    Raises:
        ImageConversionError: If the message has no such field.
    """
    try:
        return getattr(msg, name)
    except AttributeError:
        raise ImageConversionError(
            f"{type(msg).__name__} has no field {name!r}; expected a sensor_msgs Image/CompressedImage"
        ) from None


def int_field(msg: Any, name: str) -> int:
    value = message_field(msg, name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ImageConversionError(f"image {name} must be an integer, got {value!r}") from None


def check_pixels(height: int, width: int, max_pixels: int) -> None:
    """Refuse a zero size or more than ``max_pixels`` pixels.

    Raises:
        ImageConversionError: For either.
    """
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"image has zero size: {width}x{height}")
    if height * width > max_pixels:
        raise ImageConversionError(
            f"image of {width}x{height} = {height * width} pixels exceeds max_pixels={max_pixels}"
        )
