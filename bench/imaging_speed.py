"""Per-frame cost of the ROS-free perception utilities (imaging, weather statistics, drivable grid).

Usage::

    python bench/imaging_speed.py [--width 1024 --height 512] [--repeats 200] [--threads 1]

Times are medians in milliseconds; ``x copy`` is the ratio to copying one RGB frame with numpy in the
same run (the machine is shared and noisy, ratios travel better than absolute numbers).
"""

from __future__ import annotations

import argparse
import array
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace

import cv2
import numpy as np

from causal_tune_ros.drivable import GridSpec, GroundPose, GroundProjector, drivable_mask, project_to_grid
from causal_tune_ros.imaging import compressed_to_rgb, image_to_rgb, numpy_to_image
from causal_tune_ros.weather import compute_statistics


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (0 = OpenCV default)")
    args = parser.parse_args()
    if args.threads:
        cv2.setNumThreads(args.threads)
    h, w, n = args.height, args.width, args.repeats

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    rows: list[tuple[str, float]] = []

    def add(name: str, fn: Callable[[], object]) -> None:
        rows.append((name, median_ms(fn, n)))

    add("numpy copy of one RGB frame (reference)", rgb.copy)

    try:
        from sensor_msgs.msg import Image as RclpyImage
    except ImportError:
        RclpyImage = None

    def raw_msg(encoding: str, data: bytes, step: int) -> object:
        if RclpyImage is not None:
            msg = RclpyImage(height=h, width=w, encoding=encoding, step=step)
            msg.data = array.array("B", data)
            return msg
        return SimpleNamespace(height=h, width=w, encoding=encoding, is_bigendian=0, step=step, data=data)

    flavour = "rclpy" if RclpyImage is not None else "bytes"
    packed = {
        "rgb8": (rgb.tobytes(), 3 * w),
        "bgr8": (rgb.tobytes(), 3 * w),
        "rgba8": (rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8).tobytes(), 4 * w),
        "mono8": (rgb[..., 0].tobytes(), w),
        "mono16": (rng.integers(0, 65536, size=(h, w), dtype=np.uint16).tobytes(), 2 * w),
        "bayer_rggb8": (rgb[..., 1].tobytes(), w),
        "yuv422": (rgb[..., :2].tobytes(), 2 * w),
    }
    for encoding, (data, step) in packed.items():
        msg = raw_msg(encoding, data, step)
        add(f"image_to_rgb {encoding} ({flavour} msg)", lambda m=msg: image_to_rgb(m))
    padded = np.zeros((h, 3 * w + 64), np.uint8)
    padded[:, : 3 * w] = rgb.reshape(h, -1)
    msg = raw_msg("bgr8", padded.tobytes(), 3 * w + 64)
    add(f"image_to_rgb bgr8, padded step ({flavour} msg)", lambda: image_to_rgb(msg))
    msg = raw_msg("rgb8", packed["rgb8"][0], 3 * w)
    add(f"image_to_rgb rgb8 copy=True ({flavour} msg)", lambda: image_to_rgb(msg, copy=True))

    smooth = cv2.GaussianBlur(rgb, (0, 0), 3)
    jpeg = cv2.imencode(".jpg", smooth)[1].tobytes()
    cmsg = SimpleNamespace(format="jpeg", data=jpeg)
    add(f"compressed_to_rgb jpeg ({len(jpeg) // 1024} KiB)", lambda: compressed_to_rgb(cmsg))

    mask = (rgb[..., 0] // 14).astype(np.uint8)
    if RclpyImage is not None:
        add("numpy_to_image rgb8, rclpy (ours)", lambda: numpy_to_image(rgb, "rgb8", msg_cls=RclpyImage))
        add("numpy_to_image mono8, rclpy (ours)", lambda: numpy_to_image(mask, "mono8", msg_cls=RclpyImage))

        def setter_tobytes() -> object:
            m = RclpyImage(height=h, width=w, encoding="rgb8", step=3 * w)
            m.data = rgb.tobytes()
            return m

        def setter_array() -> object:
            m = RclpyImage(height=h, width=w, encoding="rgb8", step=3 * w)
            buf = array.array("B")
            buf.frombytes(rgb.reshape(-1))
            m.data = buf
            return m

        add("  alternative: msg.data = arr.tobytes()", setter_tobytes)
        add("  alternative: msg.data = array.array (setter)", setter_array)
    try:
        from rosbags.typesys import Stores, get_typestore

        rb_image = get_typestore(Stores.ROS2_JAZZY).types["sensor_msgs/msg/Image"]
        add("numpy_to_image rgb8, rosbags", lambda: numpy_to_image(rgb, "rgb8", msg_cls=rb_image))
    except ImportError:
        pass

    add("weather compute_statistics", lambda: compute_statistics(rgb))
    add("drivable_mask (2 class ids)", lambda: drivable_mask(mask, [0, 1]))
    fx = 0.5 * w / np.tan(np.radians(45))
    K = np.array([[fx, 0, w / 2], [0, fx, h / 2], [0, 0, 1.0]])
    pose = GroundPose(height=1.5, pitch=0.05)
    grid = GridSpec(resolution=0.1, length_m=30.0, width_m=20.0)
    drive = drivable_mask(mask, [0, 1])
    add("GroundProjector build (stride 4)", lambda: GroundProjector(K, pose, grid, (h, w), stride=4))
    add("project_to_grid, cached projector", lambda: project_to_grid(drive, K, pose, grid, stride=4))

    base = rows[0][1]
    print(f"{w}x{h}, OpenCV threads {cv2.getNumThreads()}, median of {n}")
    print(f"{'operation':52s} {'ms':>8s} {'x copy':>8s}")
    for name, ms in rows:
        print(f"{name:52s} {ms:8.3f} {ms / base:8.2f}")


if __name__ == "__main__":
    main()
