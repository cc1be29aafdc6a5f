"""Plain-Python helpers of ``launch/segmentation.launch.py`` (no rclpy, no launch), tested without ROS.

- :func:`resolve_topic`: a topic name as ROS resolves it for a node in a namespace.
- :func:`camera_remappings`: the node's input remappings from the ``camera`` launch argument.
- :func:`rviz_config_text`: ``config/rviz/segmentation.rviz`` with its topics rewritten to follow the
  ``camera``, ``namespace`` and ``node_name`` launch arguments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from causal_tune_ros.errors import ConfigError

#: The topics the shipped RViz file names (the launch defaults): camera input and node outputs.
DEFAULT_CAMERA = "/camera/image_raw"
DEFAULT_NODE = "segmentation_node"
_NAME_CHARS = re.compile(r"[~/A-Za-z0-9_]+")


def _clean_namespace(namespace: str) -> str:
    """``''`` / ``'/'`` -> ``''``; ``'front'`` / ``'/front/'`` -> ``'/front'``."""
    parts = [p for p in namespace.strip().split("/") if p]
    return "".join(f"/{p}" for p in parts)


def resolve_topic(name: str, namespace: str = "", node_name: str = DEFAULT_NODE) -> str:
    """The fully qualified name of ``name`` for a node ``node_name`` in ``namespace``.

    Absolute names stay; relative ones go under the namespace; ``~/x`` goes under the node.

    Args:
        name: Topic name (``/a/b``, ``a/b`` or ``~/a``).
        namespace: The node's namespace (with or without the leading slash; ``''`` for the root).
        node_name: The node's name (for ``~``).

    Returns:
        The absolute topic name.

    Raises:
        ConfigError: For an empty name.
    """
    name = name.strip()
    if name in ("/", "~") or not _NAME_CHARS.fullmatch(name) or not _NAME_CHARS.fullmatch(namespace or "/"):
        raise ConfigError(f"not a topic name in namespace {namespace!r}: {name!r}")
    ns = _clean_namespace(namespace)
    if name.startswith("/"):
        return "/" + name.strip("/")
    if name.startswith("~"):
        return f"{ns}/{node_name}/{name[1:].strip('/')}"
    return f"{ns}/{name.strip('/')}"


def camera_info_topic(camera: str) -> str:
    """The ``camera_info`` beside an image topic: ``/front/image_raw`` -> ``/front/camera_info``.

    ``/image_raw`` -> ``/camera_info``; a bare relative name -> ``camera_info``.
    """
    head, _, _ = camera.rstrip("/").rpartition("/")
    return f"{head}/camera_info" if head or camera.startswith("/") else "camera_info"


def camera_remappings(camera: str, weather_topic: str) -> list[tuple[str, str]]:
    """The node's input remappings for the ``camera`` and ``weather_topic`` launch arguments.

    Raises:
        ConfigError: For an empty camera topic.
    """
    if not camera.strip().strip("/"):
        raise ConfigError(f"camera must name an image topic, got {camera!r}")
    return [
        ("image", camera),
        ("image/compressed", f"{camera.rstrip('/')}/compressed"),
        ("camera_info", camera_info_topic(camera)),
        ("weather", weather_topic),
    ]


def _retopic(value: str, camera: str, outputs: str) -> str:
    """One RViz topic value with the shipped defaults replaced by the launch's names."""
    if value == DEFAULT_CAMERA:
        return camera
    prefix = f"/{DEFAULT_NODE}/"
    if value.startswith(prefix):
        return outputs + "/" + value[len(prefix) :]
    return value


def _walk_topics(display: Mapping[str, Any], camera: str, outputs: str) -> None:
    for key in ("Topic", "Update Topic"):
        topic = display.get(key)
        if isinstance(topic, dict) and isinstance(topic.get("Value"), str):
            topic["Value"] = _retopic(topic["Value"], camera, outputs)
    for child in display.get("Displays", []) or []:  # display groups
        if isinstance(child, dict):
            _walk_topics(child, camera, outputs)


def rviz_config_text(
    template: str, camera: str = DEFAULT_CAMERA, namespace: str = "", node_name: str = DEFAULT_NODE
) -> str:
    """The RViz config ``template`` with its topics following the launch arguments.

    The template names the launch defaults (``/camera/image_raw``, ``/segmentation_node/...``); the camera
    display gets the camera topic as the node resolves it, every output display the node's own topics
    (``/<namespace>/<node_name>/overlay``, ...). Everything else is kept.

    Args:
        template: Text of ``config/rviz/segmentation.rviz``.
        camera: The ``camera`` launch argument (absolute, or relative to ``namespace``).
        namespace: The ``namespace`` launch argument.
        node_name: The ``node_name`` launch argument.

    Returns:
        The rewritten config (YAML, as RViz reads it).

    Raises:
        ConfigError: If the template is not an RViz config or a name is empty.
    """
    try:
        doc = yaml.safe_load(template)
        displays = doc["Visualization Manager"]["Displays"]
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise ConfigError(f"not an RViz config ({type(exc).__name__})") from None
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", node_name):
        raise ConfigError(f"node_name must be a plain node name, got {node_name!r}")
    camera_topic = resolve_topic(camera, namespace, node_name)
    outputs = f"{_clean_namespace(namespace)}/{node_name}"
    for display in displays:
        if isinstance(display, dict):
            _walk_topics(display, camera_topic, outputs)
    header = (
        "# Generated by segmentation.launch.py from config/rviz/segmentation.rviz for camera "
        f"{camera_topic}, node {outputs}.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000)
