"""imaging.py on real rclpy and rosbags messages: every encoding, padding, byte order, bad input."""

from __future__ import annotations

import array
import struct
import zlib
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from causal_tune_ros.errors import ImageConversionError
from causal_tune_ros.imaging import (
    compressed_to_rgb,
    image_to_array,
    image_to_rgb,
    numpy_to_image,
)

rosbags_typesys = pytest.importorskip("rosbags.typesys")
rosbags_image = pytest.importorskip("rosbags.image")
TYPESTORE = rosbags_typesys.get_typestore(rosbags_typesys.Stores.ROS2_JAZZY)
RB_IMAGE = TYPESTORE.types["sensor_msgs/msg/Image"]
RB_COMPRESSED = TYPESTORE.types["sensor_msgs/msg/CompressedImage"]
RB_HEADER = TYPESTORE.types["std_msgs/msg/Header"]
RB_TIME = TYPESTORE.types["builtin_interfaces/msg/Time"]

KINDS = [pytest.param("rclpy", marks=pytest.mark.ros), "rosbags", "bytes"]


def rb_header(sec: int = 0, frame: str = "") -> object:
    return RB_HEADER(stamp=RB_TIME(sec=sec, nanosec=0), frame_id=frame)


def make_image(kind: str, encoding: str, height: int, width: int, step: int, data: bytes, big: int = 0):
    """An Image message of the requested flavour holding exactly ``data``."""
    if kind == "rclpy":
        from sensor_msgs.msg import Image

        msg = Image(height=height, width=width, encoding=encoding, is_bigendian=big, step=step)
        msg.data = array.array("B", data)
        return msg
    if kind == "rosbags":
        return RB_IMAGE(
            header=rb_header(),
            height=height,
            width=width,
            encoding=encoding,
            is_bigendian=big,
            step=step,
            data=np.frombuffer(data, dtype=np.uint8).copy(),
        )
    return SimpleNamespace(
        height=height, width=width, encoding=encoding, is_bigendian=big, step=step, data=data
    )


def make_compressed(kind: str, fmt: str, data: bytes):
    if kind == "rclpy":
        from sensor_msgs.msg import CompressedImage

        msg = CompressedImage(format=fmt)
        msg.data = array.array("B", data)
        return msg
    if kind == "rosbags":
        return RB_COMPRESSED(header=rb_header(), format=fmt, data=np.frombuffer(data, dtype=np.uint8).copy())
    return SimpleNamespace(format=fmt, data=data)


def pack(rows: np.ndarray, pad: int) -> tuple[bytes, int]:
    """Serialise ``(H, row_bytes)`` uint8 rows with ``pad`` junk bytes after each row."""
    h = rows.shape[0]
    junk = np.full((h, pad), 0xAB, dtype=np.uint8)
    full = np.concatenate([rows.reshape(h, -1), junk], axis=1)
    return full.tobytes(), full.shape[1]


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(6, 10, 3), dtype=np.uint8)


# --------------------------------------------------------------------------------------------------
# Raw encodings
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pad", [0, 7])
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_encodings(kind: str, pad: int, encoding: str, rgb: np.ndarray) -> None:
    h, w, _ = rgb.shape
    src = rgb[..., ::-1] if encoding.startswith("bgr") else rgb
    if encoding.endswith("a8"):
        alpha = np.full((h, w, 1), 77, dtype=np.uint8)
        src = np.concatenate([src, alpha], axis=2)
    data, step = pack(np.ascontiguousarray(src).reshape(h, -1), pad)
    out = image_to_rgb(make_image(kind, encoding, h, w, step, data))
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)
    native = image_to_array(make_image(kind, encoding, h, w, step, data))
    np.testing.assert_array_equal(native, src)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pad", [0, 5])
def test_mono8(kind: str, pad: int) -> None:
    grey = np.arange(60, dtype=np.uint8).reshape(6, 10) * 4
    data, step = pack(grey, pad)
    out = image_to_rgb(make_image(kind, "mono8", 6, 10, step, data))
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, axis=2))
    np.testing.assert_array_equal(image_to_array(make_image(kind, "mono8", 6, 10, step, data)), grey)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("big", [0, 1])
@pytest.mark.parametrize("pad", [0, 3])  # odd padding: 16-bit rows start unaligned
def test_mono16_byte_order_and_scaling(kind: str, big: int, pad: int) -> None:
    values = np.array([[0, 255, 256, 4095], [32768, 40000, 65280, 65535]], dtype=np.uint16)
    raw = values.astype(">u2" if big else "<u2").view(np.uint8)
    data, step = pack(raw, pad)
    native = image_to_array(make_image(kind, "mono16", 2, 4, step, data, big))
    assert native.dtype == np.uint16 and native.dtype.isnative
    np.testing.assert_array_equal(native, values)
    out = image_to_rgb(make_image(kind, "mono16", 2, 4, step, data, big))
    expected8 = np.array([[0, 0, 1, 15], [128, 156, 255, 255]], dtype=np.uint8)  # value >> 8
    np.testing.assert_array_equal(out, np.repeat(expected8[..., None], 3, axis=2))


def test_rgb8_is_a_zero_copy_read_only_view(rgb: np.ndarray) -> None:
    h, w, _ = rgb.shape
    data, step = pack(rgb.reshape(h, -1), 4)
    msg = make_image("rosbags", "rgb8", h, w, step, data)
    view = image_to_rgb(msg)
    assert np.shares_memory(view, msg.data)
    assert not view.flags.writeable
    owned = image_to_rgb(msg, copy=True)
    assert owned.flags.writeable and owned.flags.c_contiguous
    assert not np.shares_memory(owned, msg.data)
    np.testing.assert_array_equal(owned, view)
    # bgr8 needs a channel swap: a new array, never an alias of the message.
    assert not np.shares_memory(image_to_rgb(make_image("rosbags", "bgr8", h, w, step, data)), msg.data)


BAYER_LAYOUT = {  # ROS pattern -> colour index (0 R, 1 G, 2 B) at (row % 2, col % 2)
    "bayer_rggb8": ((0, 1), (1, 2)),
    "bayer_bggr8": ((2, 1), (1, 0)),
    "bayer_gbrg8": ((1, 2), (0, 1)),
    "bayer_grbg8": ((1, 0), (2, 1)),
}


def mosaic(scene: np.ndarray, pattern: str) -> np.ndarray:
    """Sample an RGB scene through a colour filter array the way a sensor with that pattern does."""
    h, w, _ = scene.shape
    out = np.empty((h, w), dtype=np.uint8)
    for dy in range(2):
        for dx in range(2):
            out[dy::2, dx::2] = scene[dy::2, dx::2, BAYER_LAYOUT[pattern][dy][dx]]
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pattern", sorted(BAYER_LAYOUT))
def test_bayer_patterns_recover_known_colours(kind: str, pattern: str) -> None:
    # Left half orange, right half teal: distinct R, G and B, so a swapped pattern cannot pass.
    scene = np.zeros((8, 16, 3), dtype=np.uint8)
    scene[:, :8] = (200, 100, 30)
    scene[:, 8:] = (20, 140, 210)
    raw = mosaic(scene, pattern)
    data, step = pack(raw, 2)
    out = image_to_rgb(make_image(kind, pattern, 8, 16, step, data))
    # Demosaicing is exact on flat colour away from the borders and the colour edge.
    np.testing.assert_array_equal(out[2:6, 2:5], np.broadcast_to(scene[0, 0], (4, 3, 3)))
    np.testing.assert_array_equal(out[2:6, 11:14], np.broadcast_to(scene[0, 15], (4, 3, 3)))


@pytest.mark.parametrize("encoding", ["uyvy", "yuv422", "yuyv", "yuv422_yuy2"])
def test_yuv422_grey_and_reference(encoding: str) -> None:
    # Neutral chroma (U = V = 128) gives grey; OpenCV reads video-range BT.601: 16..235 -> 0..255.
    ys = np.array([[16, 60, 128, 235]], dtype=np.uint8)
    uv = np.full_like(ys, 128)
    pairs = np.stack([uv, ys], axis=2) if encoding in ("uyvy", "yuv422") else np.stack([ys, uv], axis=2)
    msg = make_image("rosbags", encoding, 1, 4, 8, pairs.tobytes())
    out = image_to_rgb(msg)
    expected = np.clip((ys.astype(float) - 16) * 255 / 219, 0, 255)
    np.testing.assert_allclose(out[..., 0], expected, atol=1)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    np.testing.assert_array_equal(out[..., 0], out[..., 1])


REFERENCE_ENCODINGS = [
    *("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16"),
    *sorted(BAYER_LAYOUT),
    *("uyvy", "yuyv"),
]


@pytest.mark.parametrize(("encoding", "big"), [(e, 0) for e in REFERENCE_ENCODINGS] + [("mono16", 1)])
def test_matches_rosbags_image_reference(encoding: str, big: int) -> None:
    rng = np.random.default_rng(1)
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "uyvy": 2, "yuyv": 2}.get(encoding, 1)
    if encoding == "mono16":
        values = rng.integers(0, 65536, size=(12, 16), dtype=np.uint16)
        data = values.astype(">u2" if big else "<u2").tobytes()
        step = 32
    else:
        data = rng.integers(0, 256, size=(12, 16 * channels), dtype=np.uint8).tobytes()
        step = 16 * channels
    msg = make_image("rosbags", encoding, 12, 16, step, data, big)
    ours = image_to_rgb(msg)
    reference = rosbags_image.message_to_cvimage(msg, "rgb8")
    if encoding == "mono16":
        # rosbags scales by 255/65535 and truncates; we keep the top byte: at most 1 apart.
        assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1
    else:
        np.testing.assert_array_equal(ours, reference)


# The encodings whose reference is OpenCV's own conversion: ROS name -> (code, bytes per value).
OPENCV_YUV = {
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,  # ROS's older name of UYVY
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,  # ROS's older name of YUYV
}
OPENCV_BAYER16 = {  # ROS names the top-left 2x2 block, OpenCV the second row: see imaging.raw._BAYER_TO_RGB
    "bayer_rggb16": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr16": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg16": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg16": cv2.COLOR_BayerGB2RGB,
}
OPENCV_COLOUR16 = {"bgr16": cv2.COLOR_BGR2RGB, "rgba16": cv2.COLOR_RGBA2RGB, "bgra16": cv2.COLOR_BGRA2RGB}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pad", [0, 6])
@pytest.mark.parametrize("encoding", ["nv12", "nv21"])
def test_nv12_nv21_match_opencv(kind: str, pad: int, encoding: str) -> None:
    # A Y plane of 6 rows, then 3 rows of interleaved chroma, every row ``step`` bytes apart.
    height, width = 6, 10
    planes = np.random.default_rng(11).integers(0, 256, (height * 3 // 2, width), dtype=np.uint8)
    data, step = pack(planes, pad)
    out = image_to_rgb(make_image(kind, encoding, height, width, step, data))
    code = cv2.COLOR_YUV2RGB_NV12 if encoding == "nv12" else cv2.COLOR_YUV2RGB_NV21
    np.testing.assert_array_equal(out, cv2.cvtColor(planes, code))
    assert out.shape == (height, width, 3)
    native = image_to_array(make_image(kind, encoding, height, width, step, data))
    np.testing.assert_array_equal(native, planes)


@pytest.mark.parametrize("pad", [0, 4])
@pytest.mark.parametrize("encoding", sorted(OPENCV_YUV))
def test_yuv422_matches_opencv(pad: int, encoding: str) -> None:
    pairs = np.random.default_rng(12).integers(0, 256, (5, 8 * 2), dtype=np.uint8)  # 5 x 8 px
    data, step = pack(pairs, pad)
    out = image_to_rgb(make_image("rosbags", encoding, 5, 8, step, data))
    np.testing.assert_array_equal(out, cv2.cvtColor(pairs.reshape(5, 8, 2), OPENCV_YUV[encoding]))


@pytest.mark.parametrize("big", [0, 1])
@pytest.mark.parametrize("encoding", sorted(OPENCV_BAYER16))
def test_bayer16_matches_opencv(big: int, encoding: str) -> None:
    # Odd size and odd padding (16-bit rows start unaligned): demosaiced at 16 bits, then the top byte.
    raw = np.random.default_rng(13).integers(0, 65536, (7, 9), dtype=np.uint16)
    data, step = pack(raw.astype(">u2" if big else "<u2").view(np.uint8), 3)
    out = image_to_rgb(make_image("bytes", encoding, 7, 9, step, data, big))
    expected = (cv2.cvtColor(raw, OPENCV_BAYER16[encoding]) >> 8).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("pattern", sorted(BAYER_LAYOUT))
def test_bayer16_patterns_recover_known_colours(pattern: str) -> None:
    scene = np.zeros((8, 16, 3), dtype=np.uint8)
    scene[:, :8] = (200, 100, 30)
    scene[:, 8:] = (20, 140, 210)
    raw16 = mosaic(scene, pattern).astype(np.uint16) * 257  # full-range 16-bit values
    encoding = pattern[:-1] + "16"
    out = image_to_rgb(make_image("rosbags", encoding, 8, 16, 32, raw16.tobytes()))
    np.testing.assert_array_equal(out[2:6, 2:5], np.broadcast_to(scene[0, 0], (4, 3, 3)))
    np.testing.assert_array_equal(out[2:6, 11:14], np.broadcast_to(scene[0, 15], (4, 3, 3)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("big", [0, 1])
@pytest.mark.parametrize("encoding", ["rgb16", "bgr16", "rgba16", "bgra16"])
def test_colour16_matches_opencv(kind: str, big: int, encoding: str) -> None:
    channels = 4 if encoding.endswith("a16") else 3
    values = np.random.default_rng(14).integers(0, 65536, (4, 5, channels), dtype=np.uint16)
    data, step = pack(values.astype(">u2" if big else "<u2").view(np.uint8).reshape(4, -1), 5)
    out = image_to_rgb(make_image(kind, encoding, 4, 5, step, data, big))
    rgb16 = values if encoding == "rgb16" else cv2.cvtColor(values, OPENCV_COLOUR16[encoding])
    np.testing.assert_array_equal(out, (rgb16 >> 8).astype(np.uint8))
    assert out.flags.writeable and out.dtype == np.uint8
    np.testing.assert_array_equal(image_to_array(make_image(kind, encoding, 4, 5, step, data, big)), values)


def test_data_longer_than_the_layout_is_used_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data = grey.tobytes() + b"trailing junk"
    caplog.set_level("WARNING", logger="causal_tune_ros.imaging")
    for _ in range(3):
        out = image_to_rgb(make_image("bytes", "mono8", 3, 4, 4, data))
        np.testing.assert_array_equal(out[..., 0], grey)
    warnings = [r for r in caplog.records if "more than its layout needs" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "13 B more" in warnings[0].getMessage() and "4x3 mono8" in warnings[0].getMessage()
    # An exactly sized message says nothing.
    caplog.clear()
    image_to_rgb(make_image("bytes", "mono8", 3, 4, 4, grey.tobytes()))
    assert not caplog.records


def test_native_only_encodings_round_trip() -> None:
    conf = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    msg = numpy_to_image(conf, "32FC1", msg_cls=RB_IMAGE)
    np.testing.assert_array_equal(image_to_array(msg), conf)
    with pytest.raises(ImageConversionError, match="not a colour or grey camera image"):
        image_to_rgb(msg)
    big = make_image("bytes", "32FC1", 3, 4, 16, conf.astype(">f4").tobytes(), big=1)
    np.testing.assert_array_equal(image_to_array(big), conf)


def test_encoding_names_are_tolerant_of_case() -> None:
    msg = make_image("bytes", "RGB8 ", 1, 1, 3, bytes([1, 2, 3]))
    np.testing.assert_array_equal(image_to_rgb(msg)[0, 0], [1, 2, 3])


# --------------------------------------------------------------------------------------------------
# Bad raw input
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("encoding", "height", "width", "step", "size", "reason"),
    [
        ("yuv420", 2, 2, 6, 12, "unsupported image encoding 'yuv420'"),
        ("", 2, 2, 6, 12, "unsupported image encoding ''"),
        ("rgb8", 0, 2, 6, 12, "zero size"),
        ("rgb8", 2, 0, 6, 12, "zero size"),
        ("rgb8", 2, 2, 5, 12, "step 5 is shorter than one row"),
        ("mono16", 2, 3, 5, 12, "step 5 is shorter than one row"),
        ("rgb8", 2, 2, 6, 11, "expected step \\* height"),
        ("rgb8", 2, 2, 6, 0, "expected step \\* height"),
        ("uyvy", 2, 3, 6, 12, "even width"),
        ("nv12", 3, 4, 4, 24, "even width and height"),
        ("nv21", 2, 3, 3, 24, "even width and height"),
        ("nv12", 2, 4, 4, 11, "step \\* height \\* 3 / 2 = 4 \\* 2 \\* 3 / 2 = 12 B"),
        ("nv24", 2, 2, 2, 12, "unsupported image encoding 'nv24'"),
        ("bayer_rggb16", 2, 2, 3, 12, "step 3 is shorter than one row"),
        ("rgb16", 2, 2, 12, 23, "expected step \\* height"),
    ],
)
def test_bad_raw_input_raises(
    kind: str, encoding: str, height: int, width: int, step: int, size: int, reason: str
) -> None:
    msg = make_image(kind, encoding, height, width, step, bytes(size))
    with pytest.raises(ImageConversionError, match=reason):
        image_to_rgb(msg)


def test_pixel_limit_is_checked_before_the_data() -> None:
    # A 100000 x 100000 claim with 3 bytes of data: the size is refused, nothing is allocated.
    msg = make_image("bytes", "rgb8", 100_000, 100_000, 300_000, bytes(3))
    with pytest.raises(ImageConversionError, match="exceeds max_pixels"):
        image_to_rgb(msg)
    small = make_image("bytes", "mono8", 4, 4, 4, bytes(16))
    with pytest.raises(ImageConversionError, match="max_pixels=15"):
        image_to_rgb(small, max_pixels=15)
    assert image_to_rgb(small, max_pixels=16).shape == (4, 4, 3)


def test_non_buffer_data_and_non_messages_raise() -> None:
    with pytest.raises(ImageConversionError, match="not a byte buffer"):
        image_to_rgb(make_image("bytes", "mono8", 1, 2, 2, ["a", "b"]))  # type: ignore[arg-type]
    with pytest.raises(ImageConversionError, match="no field 'encoding'"):
        image_to_rgb(object())
    # A plain list of ints is accepted (slow path), values must fit a byte.
    assert image_to_rgb(make_image("bytes", "mono8", 1, 2, 2, [5, 6]))[0, 1, 0] == 6  # type: ignore[arg-type]
    with pytest.raises(ImageConversionError):
        image_to_rgb(make_image("bytes", "mono8", 1, 2, 2, [5, 600]))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Compressed
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smooth_rgb() -> np.ndarray:
    y, x = np.mgrid[0:48, 0:64]
    return np.stack([x * 4, y * 5, 255 - x * 2], axis=2).astype(np.uint8)


def encode(img_rgb: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, img_rgb[..., ::-1] if img_rgb.ndim == 3 else img_rgb, params or [])
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", ["png", "rgb8; png compressed bgr8", ""])
def test_png_is_lossless(kind: str, fmt: str, smooth_rgb: np.ndarray) -> None:
    msg = make_compressed(kind, fmt, encode(smooth_rgb, ".png"))
    np.testing.assert_array_equal(compressed_to_rgb(msg), smooth_rgb)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", ["jpeg", "rgb8; jpeg compressed bgr8", "jpg"])
def test_jpeg_decodes_to_rgb(kind: str, fmt: str, smooth_rgb: np.ndarray) -> None:
    data = encode(smooth_rgb, ".jpg")
    out = compressed_to_rgb(make_compressed(kind, fmt, data))
    assert out.shape == smooth_rgb.shape
    assert np.abs(out.astype(int) - smooth_rgb.astype(int)).mean() < 3  # RGB order, lossy
    reference = rosbags_image.message_to_cvimage(make_compressed("rosbags", fmt, data), "rgb8")
    np.testing.assert_array_equal(out, reference)


def test_grey_and_16bit_png_become_rgb8() -> None:
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    out = compressed_to_rgb(make_compressed("bytes", "png", encode(grey, ".png")))
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, axis=2))
    deep = grey.astype(np.uint16) * 257
    out16 = compressed_to_rgb(make_compressed("bytes", "png", encode(deep, ".png")))
    np.testing.assert_array_equal(out16[..., 1], grey)


def forge_jpeg_size(data: bytes, height: int, width: int) -> bytes:
    raw = bytearray(data)
    i = 2
    while raw[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + (raw[i + 2] << 8 | raw[i + 3])
    raw[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(raw)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_compressed_input_raises(kind: str, smooth_rgb: np.ndarray) -> None:
    jpeg, png = encode(smooth_rgb, ".jpg"), encode(smooth_rgb, ".png")
    cases = [
        ("jpeg", b"", "empty"),
        ("jpeg", b"hello world, not an image", "neither JPEG nor PNG"),
        ("jpeg", jpeg[: len(jpeg) // 2], "truncated"),
        ("jpeg", jpeg[:40], "corrupt JPEG"),
        ("png", png[: len(png) // 2], "truncated"),
        ("png", png[:20], "corrupt PNG"),
        ("h264", jpeg, "unknown compressed image format 'h264'"),
        ("16UC1; compressedDepth png", png, "compressed depth"),
        ("jpeg", forge_jpeg_size(jpeg, 20000, 20000), "exceeds max_pixels"),
        ("png", png[:16] + struct.pack(">II", 20000, 20000) + png[24:], "exceeds max_pixels"),
    ]
    for fmt, data, reason in cases:
        with pytest.raises(ImageConversionError, match=reason):
            compressed_to_rgb(make_compressed(kind, fmt, data))


def _textured(height: int = 96, width: int = 128) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([x * 2, y * 2, 255 - x], axis=2)
    noise = np.random.default_rng(9).integers(-20, 21, img.shape)
    return (img + noise).clip(0, 255).astype(np.uint8)


def _scan_bounds(jpeg: bytes) -> tuple[int, int]:
    """Start and end of the entropy-coded data of a baseline JPEG's only scan."""
    sos = jpeg.find(b"\xff\xda")
    return sos + 2 + (jpeg[sos + 2] << 8 | jpeg[sos + 3]), len(jpeg) - 2


def corrupt_jpegs() -> dict[str, bytes]:
    """JPEGs libjpeg decodes only by patching them up (OpenCV returns them with a grey or garbled part)."""
    good = encode(_textured(), ".jpg")
    start, end = _scan_bounds(good)
    mid = start + (end - start) // 3
    noise = np.random.default_rng(0).integers(0, 255, 200, dtype=np.uint8)  # no 0xFF: no new marker
    progressive = encode(_textured(), ".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    return {
        "scan cut, EOI appended": good[:mid] + b"\xff\xd9",
        "random scan bytes": good[:mid] + noise.tobytes() + good[mid + 200 :],
        "zeroed scan bytes": good[:mid] + bytes(64) + good[mid + 64 :],
        "stray restart marker": good[:mid] + b"\xff\xd3" + good[mid + 2 :],
        "progressive, cut, EOI appended": progressive[: len(progressive) // 2] + b"\xff\xd9",
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", sorted(corrupt_jpegs()))
def test_corrupt_jpeg_scan_is_refused(kind: str, case: str) -> None:
    data = corrupt_jpegs()[case]
    # OpenCV alone would hand back a whole, plausible-looking frame (libjpeg only warns on stderr).
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (96, 128, 3)
    with pytest.raises(ImageConversionError, match="corrupt JPEG: Corrupt JPEG data"):
        compressed_to_rgb(make_compressed(kind, "jpeg", data))


def test_intact_jpegs_still_decode_like_opencv() -> None:
    for extra in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_QUALITY, 30]):
        data = encode(_textured(), ".jpg", extra)
        reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        np.testing.assert_array_equal(compressed_to_rgb(make_compressed("bytes", "jpeg", data)), reference)
    grey = encode(_textured()[..., 0], ".jpg")
    out = compressed_to_rgb(make_compressed("bytes", "jpeg", grey))
    assert out.shape == (96, 128, 3)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_corrupt_png_data_is_refused() -> None:
    good = encode(_textured(), ".png")
    idat = good.find(b"IDAT") - 4
    length = struct.unpack(">I", good[idat : idat + 4])[0]
    half = good[idat + 8 : idat + 8 + length // 2]
    short_idat = struct.pack(">I", len(half)) + b"IDAT" + half + struct.pack(">I", zlib.crc32(b"IDAT" + half))
    iend = good[good.find(b"IEND") - 4 :]
    flipped = bytearray(good)
    flipped[idat + 8 + length // 2] ^= 0x55  # the IDAT chunk's CRC no longer matches
    for data in (good[:idat] + short_idat + iend, bytes(flipped)):
        with pytest.raises(ImageConversionError, match="corrupt compressed image"):
            compressed_to_rgb(make_compressed("bytes", "png", data))


def test_compressed_pixel_limit_argument(smooth_rgb: np.ndarray) -> None:
    msg = make_compressed("bytes", "png", encode(smooth_rgb, ".png"))
    with pytest.raises(ImageConversionError, match="max_pixels=100"):
        compressed_to_rgb(msg, max_pixels=100)


# --------------------------------------------------------------------------------------------------
# numpy -> Image
# --------------------------------------------------------------------------------------------------


def rclpy_image_cls():
    from sensor_msgs.msg import Image

    return Image


CLASSES = [
    pytest.param(rclpy_image_cls, marks=pytest.mark.ros, id="rclpy"),
    pytest.param(lambda: RB_IMAGE, id="rosbags"),
]


@pytest.mark.parametrize("get_cls", CLASSES)
@pytest.mark.parametrize(
    ("encoding", "array"),
    [
        ("mono8", np.arange(35, dtype=np.uint8).reshape(5, 7)),
        ("8UC1", np.arange(35, dtype=np.uint8).reshape(5, 7)),
        ("rgb8", np.arange(105, dtype=np.uint8).reshape(5, 7, 3)),
        ("bgr8", np.arange(105, dtype=np.uint8).reshape(5, 7, 3)),
        ("rgba8", np.arange(140, dtype=np.uint8).reshape(5, 7, 4)),
        ("mono16", np.arange(35, dtype=np.uint16).reshape(5, 7) * 1800),
        ("16UC1", np.arange(35, dtype=np.uint16).reshape(5, 7) * 1800),
        ("32FC1", np.linspace(-1, 1, 35, dtype=np.float32).reshape(5, 7)),
    ],
)
def test_numpy_to_image_round_trip(get_cls, encoding: str, array: np.ndarray) -> None:
    cls = get_cls()
    msg = numpy_to_image(array, encoding, msg_cls=cls)
    assert isinstance(msg, cls)
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    assert msg.step == 7 * array.itemsize * (array.shape[2] if array.ndim == 3 else 1)
    assert msg.is_bigendian == 0  # little-endian host
    assert len(msg.data) == msg.step * msg.height
    back = image_to_array(msg)
    np.testing.assert_array_equal(back, array)
    assert not np.shares_memory(back, array)  # the message owns its pixels


@pytest.mark.ros
def test_rclpy_message_serialises_and_keeps_header() -> None:
    from builtin_interfaces.msg import Time
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    header = Header(stamp=Time(sec=12, nanosec=345), frame_id="cam")
    overlay = np.random.default_rng(2).integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
    msg = numpy_to_image(overlay, "rgb8", header=header, msg_cls=Image)
    assert isinstance(msg.data, array.array) and msg.data.typecode == "B"
    again = deserialize_message(serialize_message(msg), Image)
    assert (again.header.stamp.sec, again.header.stamp.nanosec, again.header.frame_id) == (12, 345, "cam")
    np.testing.assert_array_equal(image_to_rgb(again), overlay)


def test_rosbags_message_serialises_and_keeps_header() -> None:
    header = rb_header(sec=7, frame="front")
    mask = np.random.default_rng(3).integers(0, 19, size=(6, 8), dtype=np.uint8)
    msg = numpy_to_image(mask, "mono8", header=header, msg_cls=RB_IMAGE)
    msgtype = RB_IMAGE.__msgtype__
    again = TYPESTORE.deserialize_cdr(TYPESTORE.serialize_cdr(msg, msgtype), msgtype)
    assert (again.header.stamp.sec, again.header.frame_id) == (7, "front")
    np.testing.assert_array_equal(image_to_array(again), mask)
    # Without a header the message still gets a valid, zero one.
    bare = numpy_to_image(mask, "mono8", msg_cls=RB_IMAGE)
    assert (bare.header.stamp.sec, bare.header.stamp.nanosec, bare.header.frame_id) == (0, 0, "")
    TYPESTORE.serialize_cdr(bare, RB_IMAGE.__msgtype__)


def test_numpy_to_image_packs_views_and_keeps_byte_order() -> None:
    base = np.arange(2 * 8 * 3, dtype=np.uint8).reshape(2, 8, 3)
    strided = base[:, ::2]
    msg = numpy_to_image(strided, "rgb8", msg_cls=RB_IMAGE)
    assert msg.step == 12
    np.testing.assert_array_equal(image_to_rgb(msg), strided)
    big = (np.arange(6, dtype=np.uint16).reshape(2, 3) * 9000).astype(">u2")
    msg16 = numpy_to_image(big, "mono16", msg_cls=RB_IMAGE)
    assert msg16.is_bigendian == 1
    np.testing.assert_array_equal(image_to_array(msg16), big.astype(np.uint16))
    as64 = numpy_to_image(np.ones((2, 2)), "32FC1", msg_cls=RB_IMAGE)  # float64 confidence is cast
    assert as64.step == 8


@pytest.mark.parametrize(
    ("array", "encoding", "cls", "reason"),
    [
        (np.zeros((2, 2), np.uint8), "mono8", None, "needs msg_cls"),
        (np.zeros((2, 2), np.uint8), "yuv422", RB_IMAGE, "cannot write encoding"),
        (np.zeros((2, 2), np.int64), "mono8", RB_IMAGE, "needs a uint8 array"),
        (np.zeros((2, 2), np.uint8), "mono16", RB_IMAGE, "needs a uint16 array"),
        (np.zeros((2, 2, 3), np.uint8), "mono8", RB_IMAGE, "needs a \\(H, W\\) array"),
        (np.zeros((2, 2), np.uint8), "rgb8", RB_IMAGE, "needs a \\(H, W, 3\\) array"),
        (np.zeros((2, 2, 4), np.uint8), "rgb8", RB_IMAGE, "needs a \\(H, W, 3\\) array"),
        (np.zeros((0, 2), np.uint8), "mono8", RB_IMAGE, "zero size"),
    ],
)
def test_numpy_to_image_rejects_bad_input(array: np.ndarray, encoding: str, cls, reason: str) -> None:
    with pytest.raises(ImageConversionError, match=reason):
        numpy_to_image(array, encoding, msg_cls=cls)


def test_non_integer_size_fields_raise() -> None:
    msg = make_image("bytes", "mono8", 1, 2, 2, bytes(2))
    msg.height = None
    with pytest.raises(ImageConversionError, match="height must be an integer"):
        image_to_rgb(msg)
