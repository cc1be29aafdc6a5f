"""The layering rules of docs/ARCHITECTURE.md, checked on the source so they cannot silently erode."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "causal_tune_ros"
ROS_MODULES = set(
    [
        "rclpy",
        "sensor_msgs",
        "std_msgs",
        "nav_msgs",
        "diagnostic_msgs",
        "geometry_msgs",
        "lifecycle_msgs",
        "rosgraph_msgs",
        "tf2_ros",
        "rcl_interfaces",
        "launch",
        "launch_ros",
    ]
)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _files(sub: str = "") -> list[Path]:
    root = PACKAGE / sub if sub else PACKAGE
    return sorted(root.rglob("*.py")) if root.is_dir() else [root]


def test_only_the_node_package_imports_ros() -> None:
    offenders = {
        str(f.relative_to(PACKAGE)): sorted(m for m in _imports(f) if m.split(".")[0] in ROS_MODULES)
        for f in _files()
        if "node" not in f.relative_to(PACKAGE).parts
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("sub", ["model"])
def test_model_imports_nothing_above_it(sub: str) -> None:
    allowed = (
        "causal_tune_ros.model",
        "causal_tune_ros.band",
        "causal_tune_ros.errors",
        "causal_tune_ros.fileio",
    )
    for f in _files(sub):
        ours = {m for m in _imports(f) if m.startswith("causal_tune_ros")}
        assert all(m.startswith(allowed) for m in ours), (f.name, sorted(ours))


@pytest.mark.parametrize("sub", ["imaging", "drivable.py", "weather", "classes.py", "band.py"])
def test_numpy_utilities_import_no_torch(sub: str) -> None:
    for f in _files(sub):
        heavy = {m for m in _imports(f) if m.split(".")[0] in {"torch", "rclpy", "onnxruntime"}}
        assert not heavy, (f.name, sorted(heavy))
