"""Peak memory of one frame through the segmentation node's processing path (not a timing benchmark).

    python bench/frame_memory.py                       # every case, each in a fresh process
    python bench/frame_memory.py --case png4096        # one case
    python bench/frame_memory.py --upsampler           # upsample_argmax alone, worst case
    python bench/frame_memory.py --input-size 518 1036 # a larger network input (more class boundaries)

Each case runs in its own Python process: it starts a real ``SegmentationNode`` (rclpy, eager backend
on the CPU, the shipped demo model, default parameters otherwise), processes a small warm-up frame,
resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), hands one big frame to the node's frame
handler (``SegmentationCore._process``: decode, weather, pipeline, build and publish every output) and
reads the peak back (``VmHWM`` in ``/proc/self/status``), twice: the first big frame also builds the
drivable grid's projection for the new image size, the second is the steady state. Reported per frame:
peak minus the resident memory before it, i.e. the frame's own working memory. Every optional output
(overlay, confidence, drivable grid) is forced on, as if RViz watched them all.

Cases:

* ``png4096``: a 4096 x 4096 PNG (a few tens of KB: flat regions) on ``image/compressed``;
* ``raw4k``: a 3840 x 2160 ``rgb8`` Image of a noisy street-like picture (many class boundaries).

``--upsampler`` measures ``pipeline.upsample_argmax`` alone on random logits (every low-resolution
cell a class boundary, the upsampler's worst case) for 4096 x 4096 and 3840 x 2160 outputs.

Linux only (``/proc``). Memory, unlike time, does not depend on machine load: any machine will do.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

CASES = ("png4096", "raw4k")


def _rss_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        match = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    assert match, field
    return int(match.group(1))


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)


def _picture(height: int, width: int, noisy: bool):
    import numpy as np

    img = np.empty((height, width, 3), np.uint8)
    img[: height // 2] = (120, 160, 210)  # sky
    img[height // 2 :] = (90, 90, 95)  # road
    img[height // 2 :, : width // 5] = (60, 120, 50)  # verge
    if noisy:
        rng = np.random.default_rng(0)
        img = (img.astype(np.int16) + rng.integers(-60, 61, img.shape, dtype=np.int16)).clip(0, 255)
        img = img.astype(np.uint8)
    return img


def _message(case: str, height: int, width: int):
    """The case's message: a PNG CompressedImage or a noisy rgb8 Image of ``height`` x ``width``."""
    import cv2
    from sensor_msgs.msg import CompressedImage, Image

    if case == "png4096":
        ok, buf = cv2.imencode(".png", _picture(height, width, noisy=False))
        assert ok
        msg = CompressedImage(format="png", data=buf.tobytes())
    else:
        msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
        msg.data = _picture(height, width, noisy=True).tobytes()
    msg.header.stamp.sec = 1
    msg.header.frame_id = "camera_optical_frame"
    return msg


def _camera_info(height: int, width: int):
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=width, height=height)
    info.k = [float(width), 0.0, width / 2, 0.0, float(width), height / 2, 0.0, 0.0, 1.0]
    return info


def _run_case(case: str, input_size: tuple[int, int] | None) -> dict:
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(110 + os.getpid() % 90))
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="frame_memory_log_"))
    import rclpy
    from rclpy.parameter import Parameter

    from causal_tune_ros.node.outputs import Outputs
    from causal_tune_ros.node.segmentation_node import SegmentationNode

    Outputs.watched = staticmethod(lambda publisher: True)  # every optional output on
    rclpy.init()
    params = [
        Parameter("backend", value="eager"),
        Parameter("device", value="cpu"),
        Parameter("input_transport", value="compressed" if case == "png4096" else "raw"),
        Parameter("drivable.camera.pitch", value=0.2),
    ]
    if input_size:
        params += [
            Parameter("model.input_height", value=input_size[0]),
            Parameter("model.input_width", value=input_size[1]),
        ]
    node = SegmentationNode(parameter_overrides=params)
    core = node.core
    height, width = (4096, 4096) if case == "png4096" else (2160, 3840)
    msg = _message(case, height, width)
    # Warm-up (lazy allocations of torch, OpenCV, rclpy) on a small frame with its own camera_info.
    core._on_camera_info(_camera_info(480, 640))
    core._process(_message(case, 480, 640))
    core._on_camera_info(_camera_info(height, width))
    failed_before = core.stats.failed
    result: dict = {
        "case": case,
        "input_bytes": len(msg.data),
        "network_input": core.backend_info["input_size"],
    }
    # The first big frame also builds the drivable grid's projection for the new image size; the
    # second shows the steady state.
    for frame in ("first", "next"):
        _reset_peak()
        before = _rss_kb("VmRSS")
        core._process(msg)
        peak = _rss_kb("VmHWM")
        result[f"{frame}_frame_mb"] = round((peak - before) / 1024)
    result["rss_before_mb"] = round(before / 1024)
    result["failed_frames"] = core.stats.failed - failed_before
    node.destroy_node()
    rclpy.try_shutdown()
    return result


def _run_upsampler() -> list[dict]:
    import numpy as np

    from causal_tune_ros.pipeline import upsample_argmax

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((19, 129, 259)).astype(np.float32)  # 518 x 1036 input, 19 classes
    out = []
    for size in ((4096, 4096), (2160, 3840)):
        _reset_peak()
        before = _rss_kb("VmRSS")
        upsample_argmax(logits, size)
        peak = _rss_kb("VmHWM")
        out.append({"case": f"upsampler {size[1]}x{size[0]}", "frame_mb": round((peak - before) / 1024)})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES, help="run one case in this process")
    parser.add_argument("--upsampler", action="store_true", help="upsample_argmax alone, worst case")
    parser.add_argument(
        "--input-size", type=int, nargs=2, metavar=("H", "W"), help="network input (default: the model's)"
    )
    args = parser.parse_args()
    if args.upsampler:
        for row in _run_upsampler():
            print(json.dumps(row))
        return 0
    if args.case:
        print(json.dumps(_run_case(args.case, args.input_size)))
        return 0
    size = ["--input-size", *map(str, args.input_size)] if args.input_size else []
    for case in CASES:
        subprocess.run([sys.executable, __file__, "--case", case, *size], check=True)
    subprocess.run([sys.executable, __file__, "--upsampler"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
