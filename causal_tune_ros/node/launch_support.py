"""Plain-Python helpers of ``launch/segmentation.launch.py`` (no rclpy, no launch), tested without ROS.

- :func:`resolve_topic`: a topic name as ROS resolves it for a node in a namespace.
- :func:`camera_remappings`: the node's input remappings from the ``camera`` launch argument.
- :func:`parse_cameras` and :func:`multi_camera_remappings`: the ``cameras`` and ``camera_pattern``
  launch arguments of the multi-camera node.
- :func:`rviz_config_text`: ``config/rviz/segmentation.rviz`` with its topics rewritten to follow the
  ``camera`` (or ``cameras``), ``namespace`` and ``node_name`` launch arguments.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.node.parameters.settings import camera_names

#: The topics the shipped RViz file names (the launch defaults): camera input and node outputs.
DEFAULT_CAMERA = "/camera/image_raw"
DEFAULT_NODE = "segmentation_node"
#: Where each camera of the ``cameras`` launch argument publishes, ``{name}`` standing for its name.
DEFAULT_CAMERA_PATTERN = "/{name}/image_raw"
#: The displays the multi-camera RViz config repeats per camera (the others it keeps once or drops).
_PER_CAMERA_DISPLAYS = {"Class overlay": "overlay", "Drivable grid": "drivable_grid"}
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


def parse_cameras(text: str) -> tuple[str, ...]:
    """The ``cameras`` launch argument as names: ``"front,rear"``, ``"front rear"`` or ``"[front, rear]"``.

    Returns:
        The names in order; ``()`` for an empty argument (the single-camera node).

    Raises:
        ConfigError: For a name the node would refuse (see the ``cameras`` parameter).
    """
    names = [n.strip("'\"") for n in re.split(r"[\s,]+", text.strip().strip("[]")) if n.strip("'\"")]
    return camera_names(names)


def camera_topic(pattern: str, name: str) -> str:
    """The image topic of camera ``name`` from ``camera_pattern`` (``/{name}/image_raw``).

    Raises:
        ConfigError: If the pattern has no ``{name}`` or another placeholder.
    """
    if "{name}" not in pattern:
        raise ConfigError(f"camera_pattern must contain {{name}}, got {pattern!r}")
    try:
        return pattern.format(name=name)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"camera_pattern {pattern!r}: {exc}") from None


def multi_camera_remappings(
    cameras: Sequence[str], pattern: str, weather_topic: str
) -> list[tuple[str, str]]:
    """The multi-camera node's input remappings: ``<name>/image`` -> the pattern's topic, and so on.

    Raises:
        ConfigError: For a bad pattern or an empty topic.
    """
    remaps: list[tuple[str, str]] = []
    for name in cameras:
        for source, target in camera_remappings(camera_topic(pattern, name), weather_topic)[:3]:
            remaps.append((f"{name}/{source}", target))
    remaps.append(("weather", weather_topic))
    return remaps


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


def _per_camera_displays(
    displays: list[Any], cameras: Sequence[str], pattern: str, namespace: str, node_name: str
) -> list[Any]:
    """The display list for several cameras: per camera one overlay image and one grid; the raw camera,
    mask and confidence images (one each per camera would crowd the window) are left out."""
    outputs = f"{_clean_namespace(namespace)}/{node_name}"
    result: list[Any] = []
    for display in displays:
        if not isinstance(display, dict):
            result.append(display)
            continue
        output = _PER_CAMERA_DISPLAYS.get(str(display.get("Name")))
        if output is None:
            if "Topic" not in display:
                result.append(display)  # grid, TF, ...: no topic, kept once
            continue
        for name in cameras:
            copy_ = copy.deepcopy(display)
            copy_["Name"] = f"{display['Name']} {name}"
            _walk_topics(copy_, resolve_topic(camera_topic(pattern, name), namespace, node_name), outputs)
            for key in ("Topic", "Update Topic"):
                topic = copy_.get(key)
                if isinstance(topic, dict) and isinstance(topic.get("Value"), str):
                    topic["Value"] = topic["Value"].replace(f"{outputs}/", f"{outputs}/{name}/", 1)
            result.append(copy_)
    return result


def rviz_config_text(
    template: str,
    camera: str = DEFAULT_CAMERA,
    namespace: str = "",
    node_name: str = DEFAULT_NODE,
    cameras: Sequence[str] = (),
    camera_pattern: str = DEFAULT_CAMERA_PATTERN,
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
        cameras: The ``cameras`` launch argument as names; when given, one overlay image display and one
            grid display per camera (``<outputs>/<name>/overlay``, ...) replace the single-camera ones.
        camera_pattern: The ``camera_pattern`` launch argument (``{name}`` = camera name).

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
    outputs = f"{_clean_namespace(namespace)}/{node_name}"
    if cameras:
        doc["Visualization Manager"]["Displays"] = _per_camera_displays(
            displays, camera_names(cameras), camera_pattern, namespace, node_name
        )
        what = f"cameras {', '.join(cameras)}"
    else:
        input_topic = resolve_topic(camera, namespace, node_name)
        for display in displays:
            if isinstance(display, dict):
                _walk_topics(display, input_topic, outputs)
        what = f"camera {input_topic}"
    header = (
        f"# Generated by segmentation.launch.py from config/rviz/segmentation.rviz for {what}, "
        f"node {outputs}.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000)
