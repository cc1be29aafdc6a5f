"""Raw ``sensor_msgs/Image`` -> numpy: every supported encoding as an array, and to RGB."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from causal_tune_ros.errors import ImageConversionError
from causal_tune_ros.imaging.messages import (
    DEFAULT_MAX_PIXELS,
    as_bytes,
    check_pixels,
    int_field,
    message_field,
)

# The package's name, not this module's: the warnings are documented on ``causal_tune_ros.imaging``.
_log = logging.getLogger("causal_tune_ros.imaging")


@dataclass(frozen=True)
class _Encoding:
    channels: int  # values per pixel in the message
    dtype: str  # numpy type of one value, little-endian spelling (byte order comes from is_bigendian)
    yuv420: bool = False  # semi-planar 4:2:0: height rows of Y, then height / 2 rows of chroma

    @property
    def depth(self) -> int:
        """Bytes per value."""
        return np.dtype(self.dtype).itemsize


_ENCODINGS: dict[str, _Encoding] = {
    "rgb8": _Encoding(3, "u1"),
    "bgr8": _Encoding(3, "u1"),
    "rgba8": _Encoding(4, "u1"),
    "bgra8": _Encoding(4, "u1"),
    "mono8": _Encoding(1, "u1"),
    "8UC1": _Encoding(1, "u1"),
    "mono16": _Encoding(1, "<u2"),
    "rgb16": _Encoding(3, "<u2"),
    "bgr16": _Encoding(3, "<u2"),
    "rgba16": _Encoding(4, "<u2"),
    "bgra16": _Encoding(4, "<u2"),
    "bayer_rggb8": _Encoding(1, "u1"),
    "bayer_bggr8": _Encoding(1, "u1"),
    "bayer_gbrg8": _Encoding(1, "u1"),
    "bayer_grbg8": _Encoding(1, "u1"),
    "bayer_rggb16": _Encoding(1, "<u2"),
    "bayer_bggr16": _Encoding(1, "<u2"),
    "bayer_gbrg16": _Encoding(1, "<u2"),
    "bayer_grbg16": _Encoding(1, "<u2"),
    "uyvy": _Encoding(2, "u1"),
    "yuv422": _Encoding(2, "u1"),
    "yuyv": _Encoding(2, "u1"),
    "yuv422_yuy2": _Encoding(2, "u1"),
    "nv12": _Encoding(1, "u1", yuv420=True),
    "nv21": _Encoding(1, "u1", yuv420=True),
    # Not images to look at: image_to_array only (depth, confidence, masks).
    "8UC3": _Encoding(3, "u1"),
    "16UC1": _Encoding(1, "<u2"),
    "32FC1": _Encoding(1, "<f4"),
}
_BY_LOWER = {name.lower(): name for name in _ENCODINGS}

#: The encodings :func:`image_to_array` accepts.
ARRAY_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)
#: The encodings :func:`image_to_rgb` accepts.
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(e for e in _ENCODINGS if e not in ("8UC3", "16UC1", "32FC1"))

# OpenCV names a Bayer pattern after the 2nd and 3rd pixels of its *second* row, not after the top-left
# 2x2 block as ROS does: ROS "rggb" (row 0 = R G, row 1 = G B) is OpenCV "BG". The two-letter constants
# exist in OpenCV 3, 4 and 5 (5 adds RGGB-style aliases with the same values). test_imaging checks every
# pattern on a synthetic mosaic of known colours.
_BAYER_TO_RGB: dict[str, int] = {
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
}
_BAYER_TO_RGB.update({name[:-1] + "16": code for name, code in _BAYER_TO_RGB.items()})

# 16-bit colour and grey encodings: the top byte of each value, then the 8-bit encoding's conversion.
_SIXTEEN_TO_EIGHT: dict[str, str] = {
    "mono16": "mono8",
    "rgb16": "rgb8",
    "bgr16": "bgr8",
    "rgba16": "rgba8",
    "bgra16": "bgra8",
}

_YUV422 = frozenset({"uyvy", "yuv422", "yuyv", "yuv422_yuy2"})

_TO_RGB: dict[str, int] = {
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
    "8UC1": cv2.COLOR_GRAY2RGB,
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,
    "nv12": cv2.COLOR_YUV2RGB_NV12,
    "nv21": cv2.COLOR_YUV2RGB_NV21,
    **_BAYER_TO_RGB,
}


def _encoding_of(msg: Any) -> str:
    # Tolerate "RGB8" or stray spaces from hand-written publishers.
    encoding = str(message_field(msg, "encoding"))
    return encoding if encoding in _ENCODINGS else _BY_LOWER.get(encoding.strip().lower(), encoding)


# Layouts already warned about for carrying more data than they need (bounded: a hostile stream of
# ever-new sizes cannot grow it without limit).
_long_data_warned: set[tuple[str, int, int, int, int]] = set()
_long_data_lock = threading.Lock()
_MAX_WARNED_LAYOUTS = 64


def _warn_long_data(encoding: str, height: int, width: int, step: int, size: int, needed: int) -> None:
    key = (encoding, height, width, step, size)
    with _long_data_lock:
        if key in _long_data_warned or len(_long_data_warned) >= _MAX_WARNED_LAYOUTS:
            return
        _long_data_warned.add(key)
    _log.warning(
        f"{width}x{height} {encoding} image (step {step}) carries {size} B of data, {size - needed} B "
        f"more than its layout needs ({needed} B); the extra bytes are ignored (said once per layout)"
    )


def image_to_array(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """View a ``sensor_msgs/Image`` as a numpy array in its own encoding, without copying when possible.

    Args:
        msg: An Image message (rclpy, rosbags, or any object with the same fields).
        max_pixels: Reject images with more than this many pixels (checked before touching the data).

    Returns:
        ``(H, W)`` for single-channel encodings (mono, Bayer mosaic, ``16UC1``, ``32FC1``),
        ``(H * 3 / 2, W)`` for ``nv12`` / ``nv21`` (the Y plane above the chroma plane, as OpenCV
        takes them), ``(H, W, C)`` otherwise; uint8, native-endian uint16 (``mono16``, ``rgb16``,
        ``bayer_*16``, ...) or float32 (``32FC1``). The array is a (possibly row-strided) view of
        ``msg.data``, except for multi-byte data in the other byte order or with a ``step`` that is
        not a whole number of values, which is copied into a new array. Views of the message are
        read-only so the message cannot be changed through them by accident. Data beyond what the
        layout needs is ignored, with one warning per layout.

    Raises:
        ImageConversionError: Unsupported encoding, zero size, too many pixels, ``step`` shorter than a
            row, odd width or height for ``nv12`` / ``nv21``, or ``data`` shorter than the layout
            (``step * height``; ``step * height * 3 / 2`` for ``nv12`` / ``nv21``).
    """
    encoding = _encoding_of(msg)
    spec = _ENCODINGS.get(encoding)
    if spec is None:
        raise ImageConversionError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(ARRAY_ENCODINGS)}"
        )
    height, width, step = int_field(msg, "height"), int_field(msg, "width"), int_field(msg, "step")
    check_pixels(height, width, max_pixels)
    row_bytes = width * spec.channels * spec.depth
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is shorter than one row of {width} px x {spec.channels * spec.depth} B "
            f"({row_bytes} B) for {encoding}"
        )
    rows_total = height
    if spec.yuv420:
        if height % 2 or width % 2:
            raise ImageConversionError(f"{encoding} needs an even width and height, got {width}x{height}")
        rows_total = height + height // 2  # the chroma plane: one row of UV pairs per two Y rows
    buf = as_bytes(message_field(msg, "data"), "image")
    needed = step * rows_total
    if buf.size < needed:
        layout = f"step * height = {step} * {height}"
        if spec.yuv420:
            layout = f"step * height * 3 / 2 = {step} * {height} * 3 / 2"
        raise ImageConversionError(f"image data has {buf.size} B, expected {layout} = {needed} B")
    if buf.size > needed:
        _warn_long_data(encoding, height, width, step, int(buf.size), needed)
    # Row-strided view: (rows, step) then drop the padding columns. No copy.
    rows = buf[:needed].reshape(rows_total, step)[:, :row_bytes]
    if spec.depth > 1:
        dtype = np.dtype(spec.dtype).newbyteorder(">" if bool(message_field(msg, "is_bigendian")) else "<")
        rows = rows.view(dtype)
        if not rows.dtype.isnative or step % spec.depth:
            # A new, writable array: OpenCV and torch need native byte order, and OpenCV misreads (or
            # refuses) rows whose stride is not a whole number of values.
            rows = np.ascontiguousarray(rows, dtype=rows.dtype.newbyteorder("="))
            return rows if spec.channels == 1 else rows.reshape(height, width, spec.channels)
    out = rows if spec.channels == 1 else rows.reshape(height, width, spec.channels)
    out.flags.writeable = False  # a view of the message: do not let callers edit it by accident
    return out


def image_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS, copy: bool = False) -> np.ndarray:
    """Convert a ``sensor_msgs/Image`` of any supported encoding to RGB.

    Args:
        msg: An Image message (rclpy, rosbags, or any object with the same fields).
        max_pixels: Reject images with more than this many pixels (checked before allocating).
        copy: Always return a new, writable, C-contiguous array. Without it ``rgb8`` input comes back as a
            read-only (row-strided if padded) view of ``msg.data``, with no copy at all.

    Returns:
        ``(H, W, 3)`` uint8 RGB.

    Raises:
        ImageConversionError: Every bad input (see :func:`image_to_array`), odd width for YUV 4:2:2, or
            a conversion OpenCV rejects.
    """
    native = image_to_array(msg, max_pixels)
    encoding = _encoding_of(msg)
    if encoding not in SUPPORTED_ENCODINGS:
        raise ImageConversionError(
            f"{encoding} is not a colour or grey camera image; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    if encoding == "rgb8":
        return np.array(native, order="C", copy=True) if copy else native
    if encoding in _SIXTEEN_TO_EIGHT:
        native = (native >> 8).astype(np.uint8)  # a new array
        encoding = _SIXTEEN_TO_EIGHT[encoding]
        if encoding == "rgb8":
            return native
    if encoding in _YUV422 and native.shape[1] % 2:
        raise ImageConversionError(f"{encoding} needs an even width, got {native.shape[1]}")
    try:
        rgb = cv2.cvtColor(native, _TO_RGB[encoding])
    except cv2.error as err:
        raise ImageConversionError(
            f"cannot convert {native.shape[1]}x{native.shape[0]} {msg.encoding} to rgb8: {err.msg}"
        ) from None
    if rgb.dtype == np.uint16:  # 16-bit Bayer: demosaiced at full depth, then the top byte
        rgb = (rgb >> 8).astype(np.uint8)
    return rgb
