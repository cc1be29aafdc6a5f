"""The node executables' command lines: ``--help`` and argument errors, as a user types them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MODULES = {
    "segmentation_node": "causal_tune_ros.node.segmentation_node",
    "lifecycle_segmentation_node": "causal_tune_ros.node.lifecycle_node",
}


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    # Without the fix, --help starts the node, which never exits: the timeout turns that into a failure.
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=90)


@pytest.mark.parametrize("prog", sorted(MODULES))
def test_help_prints_usage_and_exits(prog: str) -> None:
    proc = _run(MODULES[prog], "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {prog}") and "--params-file" in proc.stdout
    if prog == "lifecycle_segmentation_node":
        assert "autostart" in proc.stdout


def test_missing_params_file_is_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    proc = _run(MODULES["segmentation_node"], "--ros-args", "--params-file", str(missing))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"--params-file {missing} does not exist" in lines[0]


def test_unparsable_ros_arguments_are_one_clear_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("/**/segmentation_node: {ros__parameters: [unclosed\n")
    proc = _run(MODULES["lifecycle_segmentation_node"], "--ros-args", "--params-file", str(broken))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "invalid ROS arguments" in proc.stderr, proc.stderr
