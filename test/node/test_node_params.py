"""Parameters: the YAML, the declarations, the docs and the launch file agree; bad values are refused."""

from __future__ import annotations

import importlib.util
import math
import py_compile
import subprocess
import sys
import time
from pathlib import Path

import pytest

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.node.parameters import (
    RCLPY_PARAMETERS,
    check_value,
    default_values,
    parameter_specs,
    parameters_markdown,
    parameters_yaml,
    settings_from_values,
    spec_by_name,
    unknown_overrides,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "segmentation.yaml"
DOC = ROOT / "docs" / "ros_interface.md"
LAUNCH = ROOT / "launch" / "segmentation.launch.py"


def _wait(future, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not future.done():
        assert time.monotonic() < deadline, "service call timed out"
        time.sleep(0.01)
    return future.result()


@pytest.mark.ros
def test_yaml_and_declared_parameters_match(make_node, ros_context) -> None:
    """Every parameter of config/segmentation.yaml is declared by the node and vice versa, same defaults."""
    from rcl_interfaces.msg import ParameterType
    from rclpy.node import Node

    node, probe, _ = make_node("params", overlay_alhpa=0.3)
    assert unknown_overrides(node) == ["overlay_alhpa"]  # a typo is reported, not silently dropped
    assert probe.params.wait_for_services(20.0)
    listed = _wait(probe.params.list_parameters()).result.names
    declared = set(listed) - RCLPY_PARAMETERS

    # Load the shipped file with rcl's own parser, in a namespace (the /**/ key must still apply).
    loader = Node(
        "segmentation_node",
        namespace=probe.ns + "/yaml",
        cli_args=["--ros-args", "--params-file", str(CONFIG)],
        automatically_declare_parameters_from_overrides=True,
    )
    try:
        from_yaml = {n: p.value for n, p in loader.get_parameters_by_prefix("").items()}
    finally:
        loader.destroy_node()
    for name in RCLPY_PARAMETERS:
        from_yaml.pop(name, None)
    # Empty-list defaults (cameras) are written as comments: rcl's parser cannot type an empty list.
    commented = {n for n, d in default_values().items() if d == ()}
    assert commented == {"cameras"}
    assert '# cameras: ["front", "rear"]' in CONFIG.read_text(encoding="utf-8")
    assert set(from_yaml) | commented == declared, (set(from_yaml) | commented) ^ declared
    assert _wait(probe.params.get_parameters(["cameras"])).values[0].string_array_value == []
    assert declared == set(default_values())
    for name, value in from_yaml.items():
        default = default_values()[name]
        expected = list(default) if isinstance(default, tuple) else default
        assert (list(value) if isinstance(value, tuple | list) else value) == expected, name

    # The node describes each one: a description, and a range or the allowed values.
    descriptors = _wait(probe.params.describe_parameters(sorted(declared))).descriptors
    for desc in descriptors:
        spec = spec_by_name()[desc.name]
        assert desc.description, desc.name
        if desc.type in (ParameterType.PARAMETER_DOUBLE, ParameterType.PARAMETER_INTEGER):
            ranges = desc.floating_point_range or desc.integer_range
            assert len(ranges) == 1 and ranges[0].from_value == spec.low, desc.name
        if spec.choices:
            assert all(c in desc.additional_constraints for c in spec.choices), desc.name
        if not spec.live:
            assert "fixed while running" in desc.additional_constraints
    assert node.get_parameter("weather.bands.snow.high").value == 0.55  # from config/weather_bands.yaml


def test_config_file_is_the_generated_one() -> None:
    assert CONFIG.read_text(encoding="utf-8") == parameters_yaml(), (
        "config/segmentation.yaml is stale: regenerate it with "
        "python -m causal_tune_ros.node.parameters --yaml > config/segmentation.yaml"
    )


def test_docs_list_every_parameter_and_topic() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert parameters_markdown() in text, "docs/ros_interface.md parameter table is stale"
    for spec in parameter_specs():
        assert f"`{spec.name}`" in text
    for topic in (
        "image",
        "image/compressed",
        "camera_info",
        "weather",
        "~/class_mask",
        "~/overlay",
        "~/confidence",
        "~/drivable_mask",
        "~/drivable_grid",
        "~/weather",
        "/diagnostics",
    ):
        assert f"`{topic}`" in text, topic


def test_launch_file_compiles_and_builds_where_launch_ros_exists(tmp_path: Path) -> None:
    py_compile.compile(str(LAUNCH), cfile=str(tmp_path / "launch.pyc"), doraise=True)
    if importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch_ros not installed here (PyPI ROS wheels have none); compiled only")
    spec = importlib.util.spec_from_file_location("segmentation_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {a.name for a in description.entities if hasattr(a, "name")}
    assert {"camera", "transport", "params_file", "use_sim_time", "rviz", "namespace"} <= names


def test_rviz_config_shows_overlay_and_grid() -> None:
    import yaml

    rviz = yaml.safe_load((ROOT / "config" / "rviz" / "segmentation.rviz").read_text(encoding="utf-8"))
    topics = {d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"] if "Topic" in d}
    assert {"/segmentation_node/overlay", "/segmentation_node/drivable_grid", "/camera/image_raw"} <= topics


def test_settings_validation_names_the_problem() -> None:
    settings = settings_from_values({})
    assert settings.band_for("snow").high == 0.55 and settings.input_size is None
    bad = {
        "weather.bands.fog.low": 0.8,  # above high
        "model.input_height": 28,  # without the width
        "drivable.classes": (),
        "overlay_alpha": math.nan,
        "nonsense": 1,
    }
    for name, value in bad.items():
        with pytest.raises(ConfigError, match=name.split(".")[0]):
            settings_from_values({name: value})
    assert "write 2.0" in check_value(spec_by_name()["drivable.camera.height"], 2)
    assert check_value(spec_by_name()["qos.depth"], 101) is not None
    assert check_value(spec_by_name()["device"], "cuda") is None


@pytest.mark.ros
def test_invalid_startup_parameters_exit_with_a_clear_error(ros_context) -> None:
    from rclpy.parameter import Parameter

    from causal_tune_ros.node.segmentation_node import SegmentationNode

    with pytest.raises(ConfigError, match=r"write 2\.0"):
        SegmentationNode(parameter_overrides=[Parameter("drivable.camera.height", value=2)])
    cmd = [sys.executable, "-m", "causal_tune_ros.cli", "node", "--ros-args", "-p", "overlay_alpha:=2.0",
           "-r", "__ns:=/bad_startup"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "overlay_alpha" in proc.stderr and "error" in proc.stderr


def test_node_command_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from causal_tune_ros import cli

    assert cli.main(["node", "--help"]) == 0
    assert "--ros-args" in capsys.readouterr().out
    assert cli.main(["node", "--bogus"]) == 2
    assert "ROS arguments go after --ros-args" in capsys.readouterr().err
