"""Helpers for the node tests: real rclpy nodes over loopback, no mocks.

A :class:`Probe` is "another node": it feeds the segmentation node's inputs, records its outputs and
calls its parameter / lifecycle services, exactly as a user's node would.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid
from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters, SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

#: Per-process prefix of every namespace, so concurrent test runs on one machine never cross-talk.
NS_PREFIX = f"/ct{os.getpid()}"
#: Tests use reliable QoS (best effort drops fragments of large images on a loaded loopback).
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
OUTPUT_TYPES = {
    "class_mask": Image,
    "overlay": Image,
    "confidence": Image,
    "drivable_mask": Image,
    "drivable_grid": OccupancyGrid,
}


def node_overrides(checkpoint: str, **extra: Any) -> list[Parameter]:
    """Parameter overrides for a fast test node: tiny model, eager CPU, reliable QoS, quick diagnostics."""
    values: dict[str, Any] = {
        "model.checkpoint": str(checkpoint),
        "model.input_height": 56,
        "model.input_width": 112,
        "backend": "eager",
        "device": "cpu",
        "cpu_threads": 1,
        "qos.reliability": "reliable",
        "diagnostics.period": 0.2,
        "drivable.camera.pitch": 0.3,
    }
    values.update({k.replace("__", "."): v for k, v in extra.items()})
    return [Parameter(k, value=v) for k, v in values.items()]


def stamp_of(msg: Any) -> int:
    """Header stamp in nanoseconds."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _header(msg: Any, stamp_ns: int, frame_id: str) -> None:
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg.header.frame_id = frame_id


def sample_rgb(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A textured RGB test picture (sky-ish top, road-ish bottom, noise)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    img[: height // 2] = (img[: height // 2] // 4 + np.array([90, 130, 180], np.uint8) // 2).astype(np.uint8)
    return img


def make_image(
    rgb: np.ndarray, encoding: str, stamp_ns: int, frame_id: str = "camera_optical_frame", pad: int = 0
) -> Image:
    """An Image of ``rgb`` in ``encoding`` (rgb8, bgr8, mono8, bayer_rggb8), rows padded by ``pad`` bytes."""
    if encoding == "rgb8":
        pixels = rgb
    elif encoding == "bgr8":
        pixels = rgb[..., ::-1]
    elif encoding == "mono8":
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif encoding == "bayer_rggb8":
        pixels = np.empty(rgb.shape[:2], np.uint8)
        pixels[0::2, 0::2] = rgb[0::2, 0::2, 0]
        pixels[0::2, 1::2] = rgb[0::2, 1::2, 1]
        pixels[1::2, 0::2] = rgb[1::2, 0::2, 1]
        pixels[1::2, 1::2] = rgb[1::2, 1::2, 2]
    else:
        raise ValueError(encoding)
    h, w = pixels.shape[:2]
    rows = np.ascontiguousarray(pixels).reshape(h, -1)
    if pad:
        rows = np.concatenate([rows, np.full((h, pad), 7, np.uint8)], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, step=rows.shape[1], data=rows.tobytes())
    _header(msg, stamp_ns, frame_id)
    return msg


def make_compressed(
    rgb: np.ndarray, fmt: str, stamp_ns: int, frame_id: str = "camera_optical_frame"
) -> CompressedImage:
    """A CompressedImage of ``rgb`` encoded as ``jpeg`` or ``png``."""
    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", rgb[..., ::-1])
    assert ok
    msg = CompressedImage(format=fmt, data=buf.tobytes())
    _header(msg, stamp_ns, frame_id)
    return msg


def make_camera_info(width: int = 64, height: int = 48, frame_id: str = "camera_optical_frame") -> CameraInfo:
    """Pinhole intrinsics for a ``width`` x ``height`` camera (f = width)."""
    msg = CameraInfo(width=width, height=height)
    msg.k = [float(width), 0.0, width / 2.0, 0.0, float(width), height / 2.0, 0.0, 0.0, 1.0]
    msg.header.frame_id = frame_id
    return msg


def image_array(msg: Image) -> np.ndarray:
    """An output Image as numpy (mono8 -> (H, W), rgb8 -> (H, W, 3), 32FC1 -> float32)."""
    dtype = np.float32 if msg.encoding == "32FC1" else np.uint8
    channels = 3 if msg.encoding == "rgb8" else 1
    arr = np.frombuffer(bytes(msg.data), dtype=dtype).reshape(msg.height, msg.width, channels)
    return arr[..., 0] if channels == 1 else arr


def diag_values(status: Any) -> dict[str, str]:
    """Key/values of a DiagnosticStatus as a dict."""
    return {kv.key: kv.value for kv in status.values}


class ParameterClient:
    """Calls another node's parameter services with plain service clients.

    (``rclpy.parameter_client.AsyncParameterClient`` is Jazzy-only; this works on Humble's rclpy too.)
    Each call returns the service's future.
    """

    def __init__(self, node: Node, target: str) -> None:
        self._set = node.create_client(SetParameters, f"{target}/set_parameters")
        self._list = node.create_client(ListParameters, f"{target}/list_parameters")
        self._describe = node.create_client(DescribeParameters, f"{target}/describe_parameters")
        self._get = node.create_client(GetParameters, f"{target}/get_parameters")

    def wait_for_services(self, timeout: float) -> bool:
        """Whether all four services appeared within ``timeout`` seconds each."""
        clients = (self._set, self._list, self._describe, self._get)
        return all(c.wait_for_service(timeout_sec=timeout) for c in clients)

    def get_parameters(self, names: list[str]) -> Any:
        """``GetParameters``; the response has ``values`` (ParameterValue messages, in order)."""
        return self._get.call_async(GetParameters.Request(names=list(names)))

    def set_parameters(self, params: list[Parameter]) -> Any:
        """``SetParameters`` with ``params``; the response has ``results``."""
        request = SetParameters.Request(parameters=[p.to_parameter_msg() for p in params])
        return self._set.call_async(request)

    def list_parameters(self) -> Any:
        """``ListParameters`` of everything; the response has ``result.names``."""
        return self._list.call_async(ListParameters.Request())

    def describe_parameters(self, names: list[str]) -> Any:
        """``DescribeParameters``; the response has ``descriptors``."""
        return self._describe.call_async(DescribeParameters.Request(names=list(names)))


class Probe:
    """A separate node that talks to one segmentation node in namespace ``ns``.

    Args:
        node: The probe's own rclpy node.
        ns: The segmentation node's namespace.
        node_name: The segmentation node's name.
        cameras: Camera names of a multi-camera node: per camera, publishers ``camera_pubs[name]`` and
            ``camera_info_pubs[name]``, outputs recorded as ``<name>/class_mask``, ... and the camera's
            diagnostics status as ``diagnostics/<name>``.
    """

    def __init__(
        self, node: Node, ns: str, node_name: str = "segmentation_node", cameras: tuple[str, ...] = ()
    ) -> None:
        self.node = node
        self.cameras = tuple(cameras)
        self.ns = ns
        self.target = f"{ns}/{node_name}"
        self._cond = threading.Condition()
        self.messages: dict[str, list[Any]] = defaultdict(list)
        self.image_pub = node.create_publisher(Image, f"{ns}/image", RELIABLE)
        self.compressed_pub = node.create_publisher(CompressedImage, f"{ns}/image/compressed", RELIABLE)
        self.info_pub = node.create_publisher(CameraInfo, f"{ns}/camera_info", RELIABLE)
        self.weather_pub = node.create_publisher(String, f"{ns}/weather", RELIABLE)
        for name, msg_type in OUTPUT_TYPES.items():
            node.create_subscription(msg_type, f"{self.target}/{name}", self._recorder(name), RELIABLE)
        self.camera_pubs = {c: node.create_publisher(Image, f"{ns}/{c}/image", RELIABLE) for c in cameras}
        self.camera_info_pubs = {
            c: node.create_publisher(CameraInfo, f"{ns}/{c}/camera_info", RELIABLE) for c in cameras
        }
        for camera in cameras:
            for name, msg_type in OUTPUT_TYPES.items():
                topic, key = f"{self.target}/{camera}/{name}", f"{camera}/{name}"
                node.create_subscription(msg_type, topic, self._recorder(key), RELIABLE)
        node.create_subscription(String, f"{self.target}/weather", self._recorder("weather"), LATCHED)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, RELIABLE)
        self.params = ParameterClient(node, self.target)

    def _recorder(self, name: str) -> Callable[[Any], None]:
        def record(msg: Any) -> None:
            with self._cond:
                self.messages[name].append(msg)
                self._cond.notify_all()

        return record

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self._cond:
            for status in msg.status:
                camera = status.name.removeprefix(f"{self.target}: camera ")
                if camera != status.name:
                    self.messages[f"diagnostics/{camera}"].append(status)
                elif status.name.startswith(self.target + ":"):
                    self.messages["diagnostics"].append(status)
            self._cond.notify_all()

    def wait_for(
        self,
        name: str,
        predicate: Callable[[Any], bool] = lambda m: True,
        timeout: float = 20.0,
        start: int = 0,
    ) -> Any:
        """The first message on output ``name`` (from index ``start``) that satisfies ``predicate``.

        Raises:
            AssertionError: On timeout, listing what arrived.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for msg in self.messages[name][start:]:
                    if predicate(msg):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching {name} message within {timeout} s ({len(self.messages[name])} received)"
                    )
                self._cond.wait(min(left, 0.1))

    def count(self, name: str) -> int:
        """Messages received on ``name`` so far."""
        with self._cond:
            return len(self.messages[name])

    def wait_for_stamp(self, name: str, stamp_ns: int, timeout: float = 20.0) -> Any:
        """The output ``name`` message whose header stamp is ``stamp_ns``."""
        return self.wait_for(name, lambda m: stamp_of(m) == stamp_ns, timeout)

    def wait_diagnostics(
        self, predicate: Callable[[dict[str, str], Any], bool], timeout: float = 20.0
    ) -> Any:
        """The first diagnostics status of the target whose values (dict) and status satisfy ``predicate``."""
        return self.wait_for("diagnostics", lambda s: predicate(diag_values(s), s), timeout)

    def wait_camera_diagnostics(
        self, camera: str, predicate: Callable[[dict[str, str], Any], bool], timeout: float = 20.0
    ) -> Any:
        """The first diagnostics status of ``camera`` (multi-camera node) that satisfies ``predicate``."""
        return self.wait_for(f"diagnostics/{camera}", lambda s: predicate(diag_values(s), s), timeout)

    def wait_connected(self, timeout: float = 20.0) -> None:
        """Wait until the node subscribes to our image topics and our recorders are matched."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            inputs = self.image_pub.get_subscription_count() + self.compressed_pub.get_subscription_count()
            outputs = self.node.count_publishers(f"{self.target}/class_mask")
            if self.cameras:
                inputs = min(p.get_subscription_count() for p in self.camera_pubs.values())
                outputs = min(
                    self.node.count_publishers(f"{self.target}/{c}/class_mask") for c in self.cameras
                )
            if inputs and outputs:
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.target} did not connect within {timeout} s")

    def set_parameters(self, timeout: float = 20.0, **values: Any) -> list[Any]:
        """Set parameters through the node's parameter service; names use ``__`` for dots.

        Returns:
            The ``SetParametersResult`` list.
        """
        assert self.params.wait_for_services(timeout), "parameter services not available"
        params = [Parameter(k.replace("__", "."), value=v) for k, v in values.items()]
        future = self.params.set_parameters(params)
        deadline = time.monotonic() + timeout
        while not future.done():
            assert time.monotonic() < deadline, "set_parameters timed out"
            time.sleep(0.01)
        return list(future.result().results)

    def get_parameter(self, name: str, timeout: float = 20.0) -> Any:
        """The value of one parameter, read through the node's ``get_parameters`` service."""
        assert self.params.wait_for_services(timeout), "parameter services not available"
        future = self.params.get_parameters([name])
        deadline = time.monotonic() + timeout
        while not future.done():
            assert time.monotonic() < deadline, "get_parameters timed out"
            time.sleep(0.01)
        (value,) = future.result().values
        return parameter_value_to_python(value)

    def next_diagnostics(self, timeout: float = 20.0) -> dict[str, str]:
        """The values of the first diagnostics report published after this call."""
        seen = self.count("diagnostics")
        return diag_values(self.wait_for("diagnostics", timeout=timeout, start=seen))


class Spinner:
    """A SingleThreadedExecutor spinning some nodes in a background thread."""

    def __init__(self, *nodes: Node) -> None:
        self.executor = SingleThreadedExecutor()
        for node in nodes:
            self.executor.add_node(node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def add(self, node: Node) -> None:
        """Spin one more node."""
        self.executor.add_node(node)

    def remove(self, node: Node) -> None:
        """Stop spinning a node."""
        self.executor.remove_node(node)

    def stop(self) -> None:
        """Stop spinning and join the thread."""
        self.executor.shutdown(timeout_sec=5.0)
        self._thread.join(5.0)
