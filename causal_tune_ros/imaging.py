"""``sensor_msgs/Image`` and ``sensor_msgs/CompressedImage`` <-> numpy, with no ROS import.

Messages are duck-typed: anything with the ``sensor_msgs/Image`` fields (``height``, ``width``,
``encoding``, ``is_bigendian``, ``step``, ``data``) works, so the same code serves rclpy messages in the
node (``data`` is an ``array.array('B')``) and ``rosbags`` messages in the offline replay (``data`` is a
``numpy.uint8`` array). ``bytes``, ``bytearray`` and ``memoryview`` data work too.

Supported raw encodings (``image_to_array`` / ``image_to_rgb``):

============================  ==========  =====================================================
encoding                      bytes/px    to RGB
============================  ==========  =====================================================
``rgb8``                      3           zero-copy view of the message buffer
``bgr8``                      3           one OpenCV channel swap
``rgba8`` / ``bgra8``         4           alpha dropped
``rgb16`` / ``bgr16``         6           top byte kept (``value >> 8``), then as the 8-bit
                                          encoding; ``is_bigendian`` honoured
``rgba16`` / ``bgra16``       8           likewise, alpha dropped
``mono8`` / ``8UC1``          1           grey replicated to 3 channels
``mono16``                    2           top byte kept (``value >> 8``), then as ``mono8``;
                                          ``is_bigendian`` honoured
``bayer_rggb8`` ...           1           OpenCV bilinear demosaicing (see ``_BAYER_TO_RGB``)
``bayer_{bggr,gbrg,grbg}8``
``bayer_rggb16`` ...          2           OpenCV bilinear demosaicing at 16 bits, then the top
``bayer_{bggr,gbrg,grbg}16``              byte; ``is_bigendian`` honoured
``uyvy`` / ``yuv422``         2           OpenCV YUV 4:2:2, video-range BT.601 (even width)
``yuyv`` / ``yuv422_yuy2``    2           OpenCV YUV 4:2:2, video-range BT.601 (even width)
``nv12`` / ``nv21``           1.5         OpenCV YUV 4:2:0 semi-planar, video-range BT.601: a
                                          Y plane of ``height`` rows, then ``height / 2`` rows of
                                          interleaved UV (nv12) or VU (nv21), both ``step``
                                          bytes apart (even width and height)
``8UC3``, ``16UC1``,          3, 2, 4     ``image_to_array`` only (not camera images: masks,
``32FC1``                                 depth, confidence); ``image_to_rgb`` refuses them
============================  ==========  =====================================================

16-bit encodings keep the 8 most significant bits: a full-range 16-bit camera maps linearly onto 0..255;
a 12-bit camera stored in the low bits comes out dark (scale it yourself via ``image_to_array`` if so).
``nv24`` (4:4:4 semi-planar) has no OpenCV conversion and is refused as unsupported.

Rows may be padded (``step > width * bytes_per_pixel``): arrays are strided views of the message
buffer, never re-packed unless a conversion needs a copy anyway. Data longer than the layout needs is
accepted (the extra bytes are ignored) with one warning per layout on the ``causal_tune_ros.imaging``
logger. Every bad input raises :class:`~causal_tune_ros.errors.ImageConversionError` with the reason,
and sizes are checked before anything is allocated. JPEG is decoded by libjpeg-turbo through
``simplejpeg`` with its corrupt-data warnings treated as errors, so a damaged frame is refused rather
than returned half grey.
"""

from __future__ import annotations

import array as pyarray
import dataclasses
import logging
import struct
import sys
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from causal_tune_ros.errors import ImageConversionError
from causal_tune_ros.limits import DEFAULT_MAX_IMAGE_PIXELS

#: Largest ``width * height`` accepted by default: the one cap the node (``max_image_pixels``) and
#: the replay share, see :data:`causal_tune_ros.limits.DEFAULT_MAX_IMAGE_PIXELS`.
DEFAULT_MAX_PIXELS = DEFAULT_MAX_IMAGE_PIXELS


_log = logging.getLogger(__name__)


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

# Encodings numpy_to_image writes: encoding -> (numpy dtype kind/size, channels).
_OUTPUT_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "8UC3": (np.dtype(np.uint8), 3),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
# JPEG start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_SOS = 0xDA
_JPEG_EOI = b"\xff\xd9"

# Decode PNG straight to RGB where OpenCV can (>= 4.10); never apply EXIF rotation to camera frames.
_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
_IMREAD_FLAGS = (_IMREAD_RGB if _IMREAD_RGB is not None else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION


def _as_bytes(data: Any, what: str) -> np.ndarray:
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


def _field(msg: Any, name: str) -> Any:
    try:
        return getattr(msg, name)
    except AttributeError:
        raise ImageConversionError(
            f"{type(msg).__name__} has no field {name!r}; expected a sensor_msgs Image/CompressedImage"
        ) from None


def _int_field(msg: Any, name: str) -> int:
    value = _field(msg, name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ImageConversionError(f"image {name} must be an integer, got {value!r}") from None


def _encoding_of(msg: Any) -> str:
    # Tolerate "RGB8" or stray spaces from hand-written publishers.
    encoding = str(_field(msg, "encoding"))
    return encoding if encoding in _ENCODINGS else _BY_LOWER.get(encoding.strip().lower(), encoding)


def _check_pixels(height: int, width: int, max_pixels: int) -> None:
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"image has zero size: {width}x{height}")
    if height * width > max_pixels:
        raise ImageConversionError(
            f"image of {width}x{height} = {height * width} pixels exceeds max_pixels={max_pixels}"
        )


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
    height, width, step = _int_field(msg, "height"), _int_field(msg, "width"), _int_field(msg, "step")
    _check_pixels(height, width, max_pixels)
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
    buf = _as_bytes(_field(msg, "data"), "image")
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
        dtype = np.dtype(spec.dtype).newbyteorder(">" if bool(_field(msg, "is_bigendian")) else "<")
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
    fmt = str(_field(msg, "format")).strip().lower()
    if "compresseddepth" in fmt:
        raise ImageConversionError(f"compressed depth images are not supported (format {fmt!r})")
    if fmt and not any(name in fmt for name in ("jpeg", "jpg", "png")):
        raise ImageConversionError(f"unknown compressed image format {fmt!r}; supported: jpeg, png")
    buf = _as_bytes(_field(msg, "data"), "compressed image")
    if buf.size == 0:
        raise ImageConversionError("compressed image data is empty")
    raw = buf.tobytes()  # header parsing needs bytes; negligible next to decoding
    if raw.startswith(_JPEG_SOI):
        height, width = _jpeg_size(raw)
    elif raw.startswith(_PNG_SIGNATURE):
        height, width = _png_size(raw)
    else:
        raise ImageConversionError(f"compressed image data is neither JPEG nor PNG (starts {raw[:8]!r})")
    _check_pixels(height, width, max_pixels)
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


def _required_fields(cls: Any) -> list[dataclasses.Field]:
    # Skip fields with defaults, e.g. the ``__msgtype__`` class constant rosbags declares as a field.
    missing = dataclasses.MISSING
    return [f for f in dataclasses.fields(cls) if f.default is missing and f.default_factory is missing]


def _rosbags_default(cls: Any, field: dataclasses.Field) -> Any:
    # rosbags message classes are dataclasses without defaults whose annotations name sibling classes
    # in the same generated module (e.g. "std_msgs__msg__Header"); build a zero value recursively.
    annotation = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    if annotation in ("int", "float"):
        return 0
    if annotation == "str":
        return ""
    if annotation == "bool":
        return False
    sub = getattr(sys.modules[cls.__module__], annotation, None)
    if sub is None or not dataclasses.is_dataclass(sub):
        raise ImageConversionError(f"cannot build a default {annotation} for {cls.__name__}; pass header=")
    return sub(**{f.name: _rosbags_default(sub, f) for f in _required_fields(sub)})


def numpy_to_image(array: np.ndarray, encoding: str, header: Any = None, msg_cls: Any = None) -> Any:
    """Build a ``sensor_msgs/Image`` of the given message class from a numpy array.

    The message owns a copy of the pixels. For rclpy messages ``data`` becomes an ``array.array('B')``
    filled with one ``frombytes`` copy and stored without the generated setter's second copy (the
    rosidl setter re-copies even an ``array.array``, and ``bytes`` cost a ``tobytes`` copy first): one
    copy instead of two, about 2x faster at 1024x512 rgb8 (``bench/imaging_speed.py``). Messages
    without the rosidl ``_data`` slot go through the public setter. For ``rosbags`` classes
    (dataclasses) ``data`` is a new uint8 array.

    Args:
        array: ``(H, W)`` for ``mono8``/``8UC1`` (uint8), ``mono16``/``16UC1`` (uint16), ``32FC1``
            (float32; other float dtypes are cast), ``(H, W, 3)`` uint8 for ``rgb8``/``bgr8``/``8UC3``,
            ``(H, W, 4)`` uint8 for ``rgba8``/``bgra8``. Non-contiguous arrays are packed.
        encoding: The ROS encoding string to write.
        header: ``std_msgs/Header`` of the message class's family (copy the input image's header so
            stamp and frame_id carry over). ``None``: the class's default (zero stamp, empty frame).
        msg_cls: The Image class to instantiate: rclpy's ``sensor_msgs.msg.Image`` or a rosbags
            ``sensor_msgs__msg__Image``. Required: this module imports no ROS package.

    Returns:
        A ``msg_cls`` instance with ``height``, ``width``, ``encoding``, ``is_bigendian`` (the array's
        byte order), ``step`` (unpadded rows) and ``data`` set.

    Raises:
        ImageConversionError: ``msg_cls`` missing, unsupported encoding, or an array whose shape or
            dtype does not fit the encoding.
    """
    if msg_cls is None:
        raise ImageConversionError("numpy_to_image needs msg_cls (the Image message class to build)")
    if encoding not in _OUTPUT_ENCODINGS:
        raise ImageConversionError(
            f"numpy_to_image cannot write encoding {encoding!r}; supported: {', '.join(_OUTPUT_ENCODINGS)}"
        )
    dtype, channels = _OUTPUT_ENCODINGS[encoding]
    arr = np.asarray(array)
    expected = "(H, W)" if channels == 1 else f"(H, W, {channels})"
    if arr.ndim != (2 if channels == 1 else 3) or (channels > 1 and arr.shape[2] != channels):
        raise ImageConversionError(f"{encoding} needs a {expected} array, got shape {arr.shape}")
    if dtype.kind == "f" and arr.dtype.kind == "f":
        arr = arr.astype(dtype.newbyteorder(arr.dtype.byteorder), copy=False)
    if arr.dtype.kind != dtype.kind or arr.dtype.itemsize != dtype.itemsize:
        raise ImageConversionError(
            f"{encoding} needs a {dtype} array, got {arr.dtype}; cast it explicitly (.astype(np.{dtype}))"
        )
    height, width = int(arr.shape[0]), int(arr.shape[1])
    if height == 0 or width == 0:
        raise ImageConversionError(f"cannot build an image of zero size {width}x{height}")
    arr = np.ascontiguousarray(arr)
    order = arr.dtype.byteorder
    is_bigendian = int(order == ">" or (order == "=" and sys.byteorder == "big"))
    step = width * channels * dtype.itemsize
    fields = {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": is_bigendian,
        "step": step,
    }
    if dataclasses.is_dataclass(msg_cls):  # rosbags: every field is a constructor argument
        if header is None:
            header = _rosbags_default(
                msg_cls, next(f for f in dataclasses.fields(msg_cls) if f.name == "header")
            )
        return msg_cls(header=header, data=arr.reshape(-1).view(np.uint8).copy(), **fields)
    msg = msg_cls()
    if header is not None:
        msg.header = header
    for name, value in fields.items():
        setattr(msg, name, value)
    data = pyarray.array("B")
    data.frombytes(arr.reshape(-1).view(np.uint8))  # one copy, straight from the array's buffer
    if "_data" in getattr(msg_cls, "__slots__", ()):
        msg._data = data  # rosidl-generated class: skip the setter's redundant re-copy
    else:
        msg.data = data
    return msg
