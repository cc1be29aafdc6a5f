"""Where the camera sits above the ground: from the ``drivable.camera.*`` parameters or from TF.

TF is used when ``drivable.use_tf`` is true and ``tf2_ros`` is importable (it comes with a ROS install,
not with the PyPI wheels): the transform ``drivable.frame <- image frame`` at the image's stamp is
turned into a :class:`~causal_tune_ros.drivable.GroundPose`. Whenever TF is unavailable or the lookup
fails, the parameters are used and the reason is returned so the node can warn about it.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from causal_tune_ros.drivable import GroundPose
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.node.parameters.settings import CameraMount

if TYPE_CHECKING:
    from rclpy.node import Node
    from std_msgs.msg import Header


def tf_available() -> bool:
    """Whether ``tf2_ros`` can be imported here."""
    return importlib.util.find_spec("tf2_ros") is not None


def pose_from_mount(mount: CameraMount) -> GroundPose:
    """The ground pose given by the ``drivable.camera.*`` parameters.

    Raises:
        ConfigError: For a non-positive height or a non-finite value.
    """
    return GroundPose(
        height=mount.height, pitch=mount.pitch, roll=mount.roll, yaw=mount.yaw, x=mount.x, y=mount.y
    )


class GroundPoseSource:
    """Provides the camera's ground pose per frame (TF when enabled and possible, else parameters).

    The TF listener is created on first use only, so a node that never asks for TF never subscribes to
    ``/tf``.

    Args:
        node: The rclpy node (used to create the TF listener).
    """

    def __init__(self, node: Node) -> None:
        self._node = node
        self._buffer = None
        self._listener = None

    def _ensure_listener(self) -> None:
        if self._buffer is None:
            import tf2_ros

            self._buffer = tf2_ros.Buffer()
            self._listener = tf2_ros.TransformListener(self._buffer, self._node, spin_thread=False)

    def pose(
        self, mount: CameraMount, use_tf: bool, target_frame: str, header: Header
    ) -> tuple[GroundPose, str]:
        """The pose for one image.

        Args:
            mount: The parameter extrinsic (fallback).
            use_tf: Whether TF was asked for.
            target_frame: The ground frame (``drivable.frame``).
            header: The image header (frame_id and stamp for the lookup).

        Returns:
            ``(pose, note)``: ``note`` is '' when the requested source was used, else why the
            parameters were used instead.

        Raises:
            ConfigError: If the parameter pose itself is invalid.
        """
        if not use_tf:
            return pose_from_mount(mount), ""
        if not tf_available():
            return pose_from_mount(mount), "drivable.use_tf is set but tf2_ros is not installed"
        if not header.frame_id:
            return pose_from_mount(mount), "image has no frame_id for the TF lookup"
        try:
            self._ensure_listener()
            from rclpy.duration import Duration
            from rclpy.time import Time

            stamp = Time.from_msg(header.stamp)
            tf = self._buffer.lookup_transform(
                target_frame, header.frame_id, stamp, timeout=Duration(seconds=0.0)
            )
        except Exception as exc:  # tf2 raises several unrelated exception types
            return pose_from_mount(mount), f"TF {target_frame} <- {header.frame_id}: {exc}"
        t, q = tf.transform.translation, tf.transform.rotation
        try:
            # REP-103: an image's frame_id is its optical frame (z forward, x right, y down).
            pose = GroundPose.from_transform((t.x, t.y, t.z), (q.x, q.y, q.z, q.w), optical=True)
        except ConfigError as exc:
            return pose_from_mount(mount), f"TF pose unusable: {exc}"
        return pose, ""

    def close(self) -> None:
        """Drop the TF listener (unsubscribes from /tf)."""
        if self._listener is not None:
            unregister = getattr(self._listener, "unregister", None)
            if unregister is not None:
                unregister()
        self._buffer = self._listener = None
