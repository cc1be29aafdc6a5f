"""package.xml names a rosdep key for everything the package imports that rosdep can install."""

from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Python module -> rosdep key (keys checked in rosdistro's rosdep/python.yaml, present for Humble and
#: Jazzy's Ubuntu releases).
PYTHON_KEYS = {
    "cv2": "python3-opencv",
    "numpy": "python3-numpy",
    "yaml": "python3-yaml",
    "scipy": "python3-scipy",
    "tqdm": "python3-tqdm",
    "rosbags": "python3-rosbags-pip",
}
#: Modules that ROS packages of the same name provide.
ROS_PACKAGES = {
    "rclpy",
    "rcl_interfaces",
    "builtin_interfaces",
    "tf2_ros",
    "ament_index_python",
    "launch",
    "launch_ros",
}
#: Imported, but not installable through rosdep (documented in the README's "On a vehicle"): torch for
#: the platform (JetPack's CUDA wheel on Orin), safetensors, simplejpeg (strict JPEG decoding), PyAV
#: (H.264 video), and the optional backends.
PIP_ONLY = {
    "torch",
    "safetensors",
    "simplejpeg",
    "av",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "torch_tensorrt",
    "huggingface_hub",
}


def _imported_modules() -> set[str]:
    found: set[str] = set()
    files = [*(ROOT / "causal_tune_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"causal_tune_ros"}


def test_every_import_has_a_rosdep_key_or_is_documented_as_pip_only() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    deps = {e.text for e in root.findall("exec_depend")}
    for module in sorted(_imported_modules()):
        if module in PYTHON_KEYS:
            assert PYTHON_KEYS[module] in deps, module
        elif module.endswith("_msgs") or module in ROS_PACKAGES:
            assert module in deps, module
        else:
            assert module in PIP_ONLY, f"{module}: add a rosdep key to package.xml or document it"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## On a vehicle\n" in readme
    vehicle = readme.split("\n## On a vehicle\n", 1)[1].split("\n## ", 1)[0]
    for module in (
        "torch",
        "safetensors",
        "simplejpeg",
        " av",
        "--system-site-packages",
        "rosdep install",
    ):
        assert module in vehicle, module


def test_rviz2_is_optional() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    assert "rviz2" not in {e.text for e in root.iter() if e.tag.endswith("depend")}
