"""``sensor_msgs/CompressedImage`` (JPEG, PNG) -> RGB, with the size checked before decoding."""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np

from causal_tune_ros.errors import ImageConversionError
from causal_tune_ros.imaging.messages import DEFAULT_MAX_PIXELS, as_bytes, check_pixels, message_field

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
# JPEG start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_SOS = 0xDA
_JPEG_EOI = b"\xff\xd9"

# Decode PNG straight to RGB where OpenCV can (>= 4.10); never apply EXIF rotation to camera frames.
_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
_IMREAD_FLAGS = (_IMREAD_RGB if _IMREAD_RGB is not None else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION


def _png_size(raw: bytes) -> tuple[int, int]:
    # Signature (8 B), then the IHDR chunk: length (4), b"IHDR", width (4), height (4), big-endian.
    if len(raw) < 33 or raw[12:16] != b"IHDR":
        raise ImageConversionError("corrupt PNG: no IHDR header")
    width, height = struct.unpack(">II", raw[16:24])
    if raw.rfind(b"IEND", 33) < 0:
        raise ImageConversionError("corrupt PNG: truncated (no IEND chunk)")
    return height, width


def _jpeg_size(raw: bytes) -> tuple[int, int]:
    # Walk the marker segments from SOI to SOS: each is FF <marker> <2-byte length incl. itself> <payload>.
    size: tuple[int, int] | None = None
    i, n = 2, len(raw)
    while i + 4 <= n:
        if raw[i] != 0xFF:
            raise ImageConversionError(f"corrupt JPEG: expected a marker at byte {i}")
        marker = raw[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        seg_len = (raw[i + 2] << 8) | raw[i + 3]
        if seg_len < 2:
            raise ImageConversionError(f"corrupt JPEG: segment length {seg_len} at byte {i}")
        if marker in _JPEG_SOF:
            if i + 9 > n:
                break
            size = ((raw[i + 5] << 8) | raw[i + 6], (raw[i + 7] << 8) | raw[i + 8])
        elif marker == _JPEG_SOS:
            if size is None:
                raise ImageConversionError("corrupt JPEG: scan data before any frame header")
            # In entropy-coded data FF is always followed by 00 or a restart marker, so FF D9 after
            # the scan header can only be the end-of-image marker: without it the file is truncated.
            if raw.rfind(_JPEG_EOI, i) < 0:
                raise ImageConversionError("corrupt JPEG: truncated (no end-of-image marker)")
            return size
        i += 2 + seg_len
    raise ImageConversionError("corrupt JPEG: truncated header (no frame/scan header)")


def compressed_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG or PNG) to RGB.

    The codec is taken from the data's magic bytes; ``format`` (image_transport writes e.g.
    ``"jpeg"``, ``"rgb8; jpeg compressed bgr8"``, ``"png"``) may be empty but must not name another
    codec. The size in the JPEG frame header / PNG IHDR is checked against ``max_pixels`` before
    decoding, so a forged "20000x20000" header costs nothing. A JPEG that libjpeg can only decode
    by patching it up (a scan cut short, corrupt entropy-coded bytes) is refused, not returned with
    grey where the data was missing. EXIF orientation is ignored (camera frames are never rotated).
    16-bit PNGs are reduced to 8 bits, grey ones replicated to RGB.

    Args:
        msg: A CompressedImage message (fields ``format`` and ``data``).
        max_pixels: Reject images with more than this many pixels.

    Returns:
        ``(H, W, 3)`` uint8 RGB, a new array.

    Raises:
        ImageConversionError: Empty data, unknown or unsupported ``format`` (e.g. compressedDepth),
            data that is neither JPEG nor PNG, a truncated or corrupt file (including libjpeg's
            corrupt-data warnings), or too many pixels.
    """
    fmt = str(message_field(msg, "format")).strip().lower()
    if "compresseddepth" in fmt:
        raise ImageConversionError(f"compressed depth images are not supported (format {fmt!r})")
    if fmt and not any(name in fmt for name in ("jpeg", "jpg", "png")):
        raise ImageConversionError(f"unknown compressed image format {fmt!r}; supported: jpeg, png")
    buf = as_bytes(message_field(msg, "data"), "compressed image")
    if buf.size == 0:
        raise ImageConversionError("compressed image data is empty")
    raw = buf.tobytes()  # header parsing needs bytes; negligible next to decoding
    if raw.startswith(_JPEG_SOI):
        height, width = _jpeg_size(raw)
    elif raw.startswith(_PNG_SIGNATURE):
        height, width = _png_size(raw)
    else:
        raise ImageConversionError(f"compressed image data is neither JPEG nor PNG (starts {raw[:8]!r})")
    check_pixels(height, width, max_pixels)
    if raw.startswith(_JPEG_SOI):
        img = _decode_jpeg(raw)
    else:
        try:
            img = cv2.imdecode(buf, _IMREAD_FLAGS)
        except cv2.error as err:
            raise ImageConversionError(f"corrupt compressed image: {err.msg}") from None
        if img is not None and _IMREAD_RGB is None and img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img is None or img.ndim != 3 or img.shape != (height, width, 3):
        raise ImageConversionError(f"corrupt compressed image: could not decode {width}x{height}")
    return img


def _decode_jpeg(raw: bytes) -> np.ndarray:
    """JPEG -> RGB with libjpeg-turbo (``simplejpeg``), refusing data libjpeg had to patch up.

    libjpeg recovers from a scan cut short (it pads the rest of the frame with grey) or from bad
    entropy-coded bytes and only *warns*; OpenCV's decoder prints that warning and returns the damaged
    picture. ``strict=True`` turns every such warning into an error, so the frame is refused instead.
    """
    try:
        import simplejpeg
    except ImportError:
        raise ImageConversionError(
            "decoding JPEG needs the simplejpeg package (pip install simplejpeg)"
        ) from None
    try:
        return simplejpeg.decode_jpeg(raw, colorspace="RGB", strict=True)
    except (ValueError, RuntimeError) as err:
        raise ImageConversionError(f"corrupt JPEG: {err}") from None
