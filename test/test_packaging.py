"""The package installs both ways users install it: pip (venv) and colcon (ament_python)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_package_xml_is_ament_python_format_3() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.attrib["format"] == "3"
    assert root.findtext("name") == "causal_tune_ros"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    for needed in (
        "rclpy",
        "sensor_msgs",
        "std_msgs",
        "nav_msgs",
        "diagnostic_msgs",
        "python3-opencv",
        "python3-numpy",
    ):
        assert needed in deps, needed
    assert (ROOT / "resource" / "causal_tune_ros").is_file()


def test_console_script_is_on_the_venv_path() -> None:
    script = Path(sys.executable).parent / "causal-tune"
    assert script.is_file(), "pip install must put causal-tune in the venv's bin/"
    out = subprocess.run([str(script), "info"], capture_output=True, text=True, timeout=120, check=True)
    assert "causal_tune_ros:" in out.stdout and "torch:" in out.stdout


def test_unknown_subcommand_is_a_usage_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "causal_tune_ros.cli", "frobnicate"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "invalid choice" in out.stderr


def _colcon() -> str | None:
    found = shutil.which("colcon") or str(Path(sys.executable).parent / "colcon")
    return found if Path(found).exists() else None


@pytest.mark.skipif(_colcon() is None, reason="colcon not installed (pip install '.[dev]')")
def test_colcon_build_installs_scripts_launch_and_config(tmp_path: Path) -> None:
    src = tmp_path / "src" / "causal_tune_ros"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "install", "log", "*.egg-info", "__pycache__", "test"
        ),
    )
    out = subprocess.run(
        [_colcon(), "build", "--packages-select", "causal_tune_ros"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    prefix = tmp_path / "install" / "causal_tune_ros"
    for script in ("causal-tune", "segmentation_node", "lifecycle_segmentation_node"):
        assert (prefix / "lib" / "causal_tune_ros" / script).is_file(), script
    share = prefix / "share" / "causal_tune_ros"
    assert (share / "package.xml").is_file()
    assert (share / "config" / "classes.yaml").is_file()
    assert (share / "config" / "weather_bands.yaml").is_file()
    assert (share / "config" / "fastdds_large_images.xml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "causal_tune_ros").is_file()
    for launch_file in (ROOT / "launch").glob("*.py"):
        assert (share / "launch" / launch_file.name).is_file()


def _imported_names() -> set[str]:
    """Every dotted module name the package imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    import ast

    found: set[str] = set()
    for path in (ROOT / "causal_tune_ros").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_every_runtime_requirement_is_imported_by_the_package() -> None:
    """A dependency only tests use belongs in the dev extra, not in every install."""
    import ast
    import re

    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    requires = next(k.value for k in call.keywords if k.arg == "install_requires")
    names = [re.split(r"[<>=!\[ ]", ast.literal_eval(item))[0].lower() for item in requires.elts]
    modules = {"opencv-python-headless": "cv2", "pyyaml": "yaml", "rosbags-image": "rosbags.image"}
    imported = _imported_names()
    for name in names:
        module = modules.get(name, name.replace("-", "_"))
        assert any(m == module or m.startswith(module + ".") for m in imported), (
            f"{name} is a runtime requirement but causal_tune_ros never imports {module}"
        )
