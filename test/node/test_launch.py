"""The launch file: topic substitution into the RViz config (plain Python, tested here) and, where
``launch_ros`` imports, the actions it generates for the plain and the managed node."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.node.launch_support import (
    camera_remappings,
    multi_camera_remappings,
    parse_cameras,
    resolve_topic,
    rviz_config_text,
)

ROOT = Path(__file__).resolve().parents[2]
RVIZ = ROOT / "config" / "rviz" / "segmentation.rviz"
LAUNCH = ROOT / "launch" / "segmentation.launch.py"


def _topics(text: str) -> dict[str, str]:
    """RViz display name -> topic (and ``<name> updates`` -> update topic)."""
    out: dict[str, str] = {}
    for d in yaml.safe_load(text)["Visualization Manager"]["Displays"]:
        if "Topic" in d:
            out[d["Name"]] = d["Topic"]["Value"]
        if "Update Topic" in d:
            out[d["Name"] + " updates"] = d["Update Topic"]["Value"]
    return out


def test_shipped_rviz_config_names_the_launch_defaults() -> None:
    topics = _topics(RVIZ.read_text(encoding="utf-8"))
    assert topics["Camera"] == "/camera/image_raw"
    assert topics["Class overlay"] == "/segmentation_node/overlay"
    assert topics["Drivable grid"] == "/segmentation_node/drivable_grid"


def test_rviz_config_follows_camera_namespace_and_node_name() -> None:
    template = RVIZ.read_text(encoding="utf-8")
    # The README's first launch example: another camera, no namespace.
    topics = _topics(rviz_config_text(template, camera="/front/image_raw"))
    assert topics["Camera"] == "/front/image_raw"
    assert topics["Class overlay"] == "/segmentation_node/overlay"
    # namespace:=front, a relative camera topic and another node name.
    text = rviz_config_text(template, camera="image_raw", namespace="front", node_name="seg")
    topics = _topics(text)
    assert topics["Camera"] == "/front/image_raw"
    assert topics["Class overlay"] == "/front/seg/overlay"
    assert topics["Drivable mask"] == "/front/seg/drivable_mask"
    assert topics["Confidence"] == "/front/seg/confidence"
    assert topics["Drivable grid"] == "/front/seg/drivable_grid"
    assert topics["Drivable grid updates"] == "/front/seg/drivable_grid_updates"
    # Everything else of the layout is kept.
    original, generated = yaml.safe_load(template), yaml.safe_load(text)
    assert (
        generated["Visualization Manager"]["Global Options"]
        == original["Visualization Manager"]["Global Options"]
    )
    assert [d["Class"] for d in generated["Visualization Manager"]["Displays"]] == [
        d["Class"] for d in original["Visualization Manager"]["Displays"]
    ]


def test_topic_resolution_and_remappings() -> None:
    assert resolve_topic("/a/b/", "front") == "/a/b"
    assert resolve_topic("image_raw", "/front/") == "/front/image_raw"
    assert resolve_topic("image_raw", "") == "/image_raw"
    assert resolve_topic("~/overlay", "front", "seg") == "/front/seg/overlay"
    assert dict(camera_remappings("/front/image_raw", "weather")) == {
        "image": "/front/image_raw",
        "image/compressed": "/front/image_raw/compressed",
        "camera_info": "/front/camera_info",
        "weather": "weather",
    }
    for bad in ("", "/", "a b", "x\nFixed Frame: evil"):
        with pytest.raises(ConfigError):
            resolve_topic(bad, "front")
    with pytest.raises(ConfigError):
        rviz_config_text(RVIZ.read_text(encoding="utf-8"), node_name="a/b")
    with pytest.raises(ConfigError):
        rviz_config_text("not: [an rviz config")


def test_camera_list_argument_and_its_remappings() -> None:
    for text in ("front,rear", "front rear", "[front, rear]", " 'front', 'rear' "):
        assert parse_cameras(text) == ("front", "rear"), text
    assert parse_cameras("") == ()
    for bad in ("front,front", "1st", "front/left"):
        with pytest.raises(ConfigError):
            parse_cameras(bad)
    assert dict(multi_camera_remappings(["front", "rear"], "/{name}/image_raw", "weather")) == {
        "front/image": "/front/image_raw",
        "front/image/compressed": "/front/image_raw/compressed",
        "front/camera_info": "/front/camera_info",
        "rear/image": "/rear/image_raw",
        "rear/image/compressed": "/rear/image_raw/compressed",
        "rear/camera_info": "/rear/camera_info",
        "weather": "weather",
    }
    with pytest.raises(ConfigError):
        multi_camera_remappings(["front"], "/cam/image_raw", "weather")  # no {name}


def test_rviz_config_has_one_image_display_per_camera() -> None:
    template = RVIZ.read_text(encoding="utf-8")
    text = rviz_config_text(template, namespace="car", node_name="seg", cameras=["front", "rear"])
    topics = _topics(text)
    assert topics["Class overlay front"] == "/car/seg/front/overlay"
    assert topics["Class overlay rear"] == "/car/seg/rear/overlay"
    assert topics["Drivable grid rear"] == "/car/seg/rear/drivable_grid"
    assert topics["Drivable grid rear updates"] == "/car/seg/rear/drivable_grid_updates"
    displays = yaml.safe_load(text)["Visualization Manager"]["Displays"]
    images = [d["Name"] for d in displays if d["Class"] == "rviz_default_plugins/Image"]
    assert images == ["Class overlay front", "Class overlay rear"]
    kept = {
        d["Class"] for d in yaml.safe_load(template)["Visualization Manager"]["Displays"] if "Topic" not in d
    }
    assert kept <= {d["Class"] for d in displays}  # grid, TF: kept once


def _load_launch_module():
    # (``launch`` alone is no test: this repository's launch/ folder imports as a namespace package.)
    if importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch_ros is not installed here (PyPI ROS wheels); needs a ROS install")
    spec = importlib.util.spec_from_file_location("segmentation_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _context(**arguments: str):
    module = _load_launch_module()
    from launch import LaunchContext

    context = LaunchContext()
    description = module.generate_launch_description()
    for entity in description.entities:
        default = getattr(entity, "default_value", None)
        if hasattr(entity, "name") and default is not None:
            value = "".join(s.perform(context) for s in default)
            context.launch_configurations[entity.name] = arguments.get(entity.name, value)
    return module, context


def test_launch_plain_node_by_default() -> None:
    module, context = _context()
    from launch_ros.actions import LifecycleNode, Node

    (node,) = module._node(context)
    assert isinstance(node, Node) and not isinstance(node, LifecycleNode)
    assert node.node_executable == "segmentation_node"
    assert module._rviz(context) == []


def test_launch_multi_camera_node_gets_the_camera_list() -> None:
    module, context = _context(cameras="front,rear", camera_pattern="/cams/{name}/image_raw")
    from launch.utilities import perform_substitutions

    (node,) = module._node(context)
    remappings = {  # no public getter in launch_ros
        perform_substitutions(context, list(k)): perform_substitutions(context, list(v))
        for k, v in node._Node__remappings
    }
    assert remappings["front/image"] == "/cams/front/image_raw"
    assert remappings["rear/camera_info"] == "/cams/rear/camera_info"
    assert "image" not in remappings


def test_launch_lifecycle_drives_the_managed_node_to_active() -> None:
    module, context = _context(lifecycle="true", namespace="front", node_name="seg")
    from launch.actions import EmitEvent, RegisterEventHandler
    from launch_ros.actions import LifecycleNode
    from lifecycle_msgs.msg import Transition

    node, handler, configure = module._node(context)
    assert isinstance(node, LifecycleNode) and node.node_executable == "lifecycle_segmentation_node"
    assert isinstance(configure, EmitEvent)
    assert configure.event.transition_id == Transition.TRANSITION_CONFIGURE
    assert configure.event.lifecycle_node_matcher(node)
    assert isinstance(handler, RegisterEventHandler)
    (activate,) = handler.event_handler.entities
    assert activate.event.transition_id == Transition.TRANSITION_ACTIVATE


def test_launch_rviz_config_is_generated_for_the_arguments() -> None:
    module, context = _context(rviz="true", camera="/front/image_raw", namespace="front")
    (rviz,) = module._rviz(context)
    arguments = [str(a) for a in rviz._Node__arguments]  # no public getter in launch_ros
    path = Path(arguments[arguments.index("-d") + 1])
    topics = _topics(path.read_text(encoding="utf-8"))
    assert topics["Camera"] == "/front/image_raw"
    assert topics["Class overlay"] == "/front/segmentation_node/overlay"
