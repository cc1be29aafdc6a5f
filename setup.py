"""Build script for causal_tune_ros: works for `pip install -e .` and for `colcon build` (ament_python)."""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "causal_tune_ros"
HERE = Path(__file__).parent


def _share(folder: str, pattern: str = "*") -> tuple[str, list[str]]:
    """One data_files entry installing ``folder/pattern`` under share/<package>/<folder>."""
    return (f"share/{PACKAGE}/{folder}", sorted(p for p in glob(f"{folder}/{pattern}") if Path(p).is_file()))


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Weather-robust semantic segmentation for ROS 2 with DINOv2 + Causal-Tune",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(exclude=["test", "test.*", "bench"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        _share("launch", "*.py"),
        _share("config", "*.yaml"),
        _share("config", "*.xml"),
        _share("config/rviz", "*.rviz"),
        _share("config/train", "*.yaml"),
        _share("config/pretrain", "*.yaml"),
        _share("models/demo"),
        _share("models/pocket"),
    ],
    install_requires=[
        "torch>=2.1,<3",
        "numpy>=1.24",
        "safetensors>=0.4",
        # Hungarian matching of the Mask2Former head's set loss (training only, but small and common).
        "scipy>=1.10",
        "opencv-python-headless>=4.8",
        # JPEG decoding that reports libjpeg's corrupt-data warnings (OpenCV only prints them).
        "simplejpeg>=1.6",
        "pyyaml>=6",
        "rosbags>=0.10",
        "tqdm>=4.60",
        # H.264 MP4 (browser-playable) replay videos: PyAV's wheels bundle FFmpeg with libx264.
        "av>=12",
    ],
    extras_require={
        # ROS 2 Jazzy from PyPI, for machines without an apt ROS install (see the README).
        "ros": [
            "ros-jazzy-rclpy[fastrtps]",
            "ros-jazzy-sensor-msgs",
            "ros-jazzy-std-msgs",
            "ros-jazzy-nav-msgs",
            "ros-jazzy-diagnostic-msgs",
            "ros-jazzy-geometry-msgs",
            "ros-jazzy-visualization-msgs",
            "ros-jazzy-lifecycle-msgs",
        ],
        "onnx": ["onnx>=1.15", "onnxruntime>=1.17", "onnxscript>=0.1"],
        # `causal-tune fleet`: Ray runs the workers, pyarrow writes the Parquet index, pandas queries it.
        "fleet": ["ray>=2.9", "pyarrow>=14", "pandas>=2"],
        "dev": [
            "colcon-common-extensions>=0.3",
            # ARCHITECTURE.md's layering, checked by test/test_architecture.py (setup.cfg [importlinter]).
            "import-linter>=2.17",
            "pytest>=7",
            "pytest-timeout>=2",
            "ruff>=0.5",
            # Reference conversions that test/test_imaging.py checks imaging.py against (tests only).
            "rosbags-image>=0.9",
            "transformers>=4.40",
        ],
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "causal-tune = causal_tune_ros.cli:main",
            "segmentation_node = causal_tune_ros.node.segmentation_node:main",
            "lifecycle_segmentation_node = causal_tune_ros.node.lifecycle_node:main",
        ],
    },
)
