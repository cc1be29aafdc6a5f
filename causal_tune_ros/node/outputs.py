"""The node's publishers (per camera and per node) and the messages it builds from a segmentation result.

Every output copies the input image's header (stamp and frame_id), except the drivable grid, which keeps
the stamp but lives in ``drivable.frame``. Optional outputs are computed and published only while someone
subscribes to them (like image_transport does), so an unwatched overlay costs nothing.
"""

from __future__ import annotations

import array

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from causal_tune_ros.drivable import GridSpec
from causal_tune_ros.imaging import numpy_to_image


def sensor_qos(reliability: str, depth: int) -> QoSProfile:
    """Image-stream QoS: keep-last ``depth``, volatile, best effort or reliable.

    REP-2003: sensor-data subscriptions use best effort (it matches reliable and best-effort publishers);
    publishers use reliable (so that both kinds of subscriber receive them).

    Args:
        reliability: ``best_effort`` or ``reliable``.
        depth: History depth.

    Returns:
        The profile.
    """
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE
        if reliability == "reliable"
        else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


#: ``~/weather`` is a state, not a stream: late joiners get the condition in force.
LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

#: ``/diagnostics``: what diagnostic_aggregator and rqt_robot_monitor expect.
DIAGNOSTICS_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
)


def confidence_image(confidence: np.ndarray, encoding: str) -> np.ndarray:
    """Confidence in [0, 1] as the array of the chosen encoding (``mono8``: x 255 rounded; ``32FC1``)."""
    if encoding == "32FC1":
        return confidence.astype(np.float32, copy=False)
    # One saturating, rounding SIMD pass (4x faster than clip * 255 + 0.5 in numpy at 1024 x 512).
    return cv2.convertScaleAbs(confidence, alpha=255.0)


def occupancy_grid(cells: np.ndarray, grid: GridSpec, frame_id: str, stamp: Time) -> OccupancyGrid:
    """A ``nav_msgs/OccupancyGrid`` of int8 cells (0 free, 100 occupied, -1 unknown).

    Args:
        cells: ``(rows, cols)`` int8 from :func:`~causal_tune_ros.drivable.project_to_grid`.
        grid: Its geometry.
        frame_id: The ground frame.
        stamp: ``builtin_interfaces/Time`` of the input image.

    Returns:
        The message.
    """
    msg = OccupancyGrid()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.info.map_load_time = stamp
    msg.info.resolution = float(grid.resolution)
    msg.info.width = grid.cols
    msg.info.height = grid.rows
    msg.info.origin.position.x = float(grid.origin_x)
    msg.info.origin.position.y = float(grid.origin_y)
    msg.info.origin.orientation.w = 1.0
    data = array.array("b")
    data.frombytes(np.ascontiguousarray(cells, dtype=np.int8))
    msg.data = data
    return msg


class StreamOutputs:
    """The image-rate publishers of one camera: ``~/[<camera>/]class_mask``, overlay, confidence, ...

    Args:
        node: The rclpy node (plain or managed: a managed node gets lifecycle publishers).
        qos: Their QoS.
        camera: Camera name ('' = the single-camera topics directly under ``~/``).
    """

    def __init__(self, node: Node, qos: QoSProfile, camera: str = "") -> None:
        self._node = node
        self.camera = camera
        self.managed = hasattr(node, "create_lifecycle_publisher")
        create = node.create_lifecycle_publisher if self.managed else node.create_publisher
        prefix = f"~/{camera}/" if camera else "~/"
        self.class_mask = create(Image, f"{prefix}class_mask", qos)
        self.overlay = create(Image, f"{prefix}overlay", qos)
        self.confidence = create(Image, f"{prefix}confidence", qos)
        self.drivable_mask = create(Image, f"{prefix}drivable_mask", qos)
        self.drivable_grid = create(OccupancyGrid, f"{prefix}drivable_grid", qos)

    @staticmethod
    def watched(publisher: Publisher) -> bool:
        """Whether any subscription is matched to ``publisher``."""
        return publisher.get_subscription_count() > 0

    @staticmethod
    def publish_image(publisher: Publisher, array_: np.ndarray, encoding: str, header: Header) -> None:
        """Publish a numpy image with the given header."""
        publisher.publish(numpy_to_image(array_, encoding, header=header, msg_cls=Image))

    def destroy(self) -> None:
        """Destroy the publishers."""
        for pub in (self.class_mask, self.overlay, self.confidence, self.drivable_mask, self.drivable_grid):
            if self.managed:
                self._node.destroy_lifecycle_publisher(pub)
            else:
                self._node.destroy_publisher(pub)


class Outputs:
    """Creates, owns and destroys the node's publishers.

    On a managed node (one with ``create_lifecycle_publisher``) the image and grid outputs are lifecycle
    publishers: they exist from ``configure`` on but only send while the node is active. ``~/weather``
    (latched) and ``/diagnostics`` are plain publishers, so they keep reporting while inactive.

    Args:
        node: The rclpy node (plain or managed).
        reliability: ``best_effort`` or ``reliable`` for the image-rate outputs.
        depth: Their history depth.
        cameras: Camera names; ``()`` = one unnamed camera with its outputs directly under ``~/``.

    Attributes:
        streams: One :class:`StreamOutputs` per camera, in order.
    """

    def __init__(self, node: Node, reliability: str, depth: int, cameras: tuple[str, ...] = ()) -> None:
        self._node = node
        qos = sensor_qos(reliability, depth)
        self.streams = [StreamOutputs(node, qos, camera) for camera in (cameras or ("",))]
        self.weather = node.create_publisher(String, "~/weather", LATCHED_QOS)
        self.diagnostics = node.create_publisher(DiagnosticArray, "/diagnostics", DIAGNOSTICS_QOS)

    def publish_weather(self, condition: str) -> None:
        """Publish the condition in force on ``~/weather``."""
        self.weather.publish(String(data=condition))

    def destroy(self) -> None:
        """Destroy every publisher."""
        for stream in self.streams:
            stream.destroy()
        self._node.destroy_publisher(self.weather)
        self._node.destroy_publisher(self.diagnostics)
