"""The parameter table of the segmentation node: one :class:`ParamSpec` per parameter, and value checks.

:func:`parameter_specs` is the single source for the declarations, for run-time validation, for
``config/segmentation.yaml`` and for the table in ``docs/ros_interface.md``. ROS-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from causal_tune_ros.backends.base import BACKEND_NAMES, PRECISIONS
from causal_tune_ros.backends.base import DEVICES as BACKEND_DEVICES
from causal_tune_ros.limits import DEFAULT_MAX_IMAGE_PIXELS, MAX_GRID_CELLS
from causal_tune_ros.weather import CONDITIONS, DEFAULT_MIN_SECONDS, load_band_presets

Value = bool | int | float | str | tuple[str, ...]

TRANSPORTS = ("raw", "compressed")
RELIABILITIES = ("best_effort", "reliable")
#: Backend names and precisions are the backends' own (one definition, in ``backends/base.py``).
BACKENDS = BACKEND_NAMES
#: ``auto`` (CUDA when PyTorch sees a GPU) plus the backends' devices.
DEVICES = ("auto", *BACKEND_DEVICES)
CONFIDENCE_ENCODINGS = ("mono8", "32FC1")
WEATHER_MODES = ("fixed", "topic", "auto")
#: Most cameras one multi-camera node batches.
MAX_CAMERAS = 16

__all__ = [
    "AUTO_KNOBS",
    "BACKENDS",
    "CONFIDENCE_ENCODINGS",
    "DEVICES",
    "MAX_CAMERAS",
    "PRECISIONS",
    "RELIABILITIES",
    "TRANSPORTS",
    "WEATHER_MODES",
    "ParamSpec",
    "Value",
    "check_value",
    "default_values",
    "format_number",
    "parameter_specs",
    "spec_by_name",
]


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter.

    Attributes:
        name: Full dotted name (as in the YAML under ``ros__parameters``).
        default: Default value; its Python type is the parameter type (tuple = string array).
        description: What it does (shown by ``ros2 param describe``).
        constraints: Extra rules in words (``additional_constraints``).
        choices: Allowed strings, for enumerations.
        low: Inclusive lower bound for numbers.
        high: Inclusive upper bound for numbers.
        step: Integer step (e.g. 14 for model input sides); 0 for none.
        live: True if it can change while the node runs; False if it needs a restart (or, for the
            lifecycle node, a cleanup and configure).
        unit: Unit shown in the documentation.
    """

    name: str
    default: Value
    description: str
    constraints: str = ""
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    step: int = 0
    live: bool = True
    unit: str = ""

    @property
    def type_name(self) -> str:
        """The ROS parameter type as ``ros2 param`` names it."""
        if isinstance(self.default, bool):
            return "bool"
        if isinstance(self.default, int):
            return "integer"
        if isinstance(self.default, float):
            return "double"
        if isinstance(self.default, tuple):
            return "string_array"
        return "string"

    def range_text(self) -> str:
        """Allowed values in words, for documentation and error messages."""
        if self.choices:
            return " | ".join(self.choices)
        if self.low is not None and self.high is not None:
            text = f"[{format_number(self.low)}, {format_number(self.high)}]"
            return f"{text}, step {self.step}" if self.step else text
        return ""


def format_number(value: float) -> str:
    """A number as the docs show it (``0.1``, ``20``, ``1.5708``)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


# The hysteresis knobs of the automatic weather classifier (weather.auto.*), documented here and passed to
# WeatherClassifier by keyword.
AUTO_KNOBS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "weather.auto.every_n_frames",
        1,
        "Classify every n-th processed frame (image statistics are cheap but not free).",
        low=1,
        high=1000,
    ),
    ParamSpec(
        "weather.auto.min_seconds",
        DEFAULT_MIN_SECONDS,
        "A new condition must win every classification over this many seconds of message time (header "
        "stamps) before the band switches: hysteresis against flapping, the same lag at any frame rate. "
        "0 switches on the first frame.",
        low=0.0,
        high=3600.0,
        unit="s",
    ),
)


@lru_cache(maxsize=1)
def parameter_specs() -> tuple[ParamSpec, ...]:
    """The full, ordered parameter table (band defaults come from ``config/weather_bands.yaml``)."""
    presets = load_band_presets()
    # Both network input sides: 0 (backend default) or a whole number of ViT patches, restart only.
    input_side: dict[str, Any] = dict(
        constraints="0 or a multiple of 14", low=0, high=4088, step=14, live=False, unit="px"
    )
    specs: list[ParamSpec] = [
        # --- input -------------------------------------------------------------------------------------
        ParamSpec(
            "input_transport",
            "raw",
            "Subscribe to 'image' (sensor_msgs/Image) or 'image/compressed' (sensor_msgs/CompressedImage).",
            choices=TRANSPORTS,
            live=False,
        ),
        ParamSpec(
            "cameras",
            (),
            "Camera names of the multi-camera node: per name, <name>/image (or <name>/image/compressed) "
            "and <name>/camera_info in, ~/<name>/class_mask, overlay, confidence, drivable_mask and "
            "drivable_grid out; one model, the newest frame of every camera batched into one forward. "
            "[] = one camera on image / camera_info, outputs directly under ~/.",
            constraints=f"at most {MAX_CAMERAS} distinct names of letters, digits and _, each starting with "
            "a letter",
            live=False,
        ),
        ParamSpec(
            "cameras_max_wait_ms",
            30.0,
            "Multi-camera node: once a frame waits, how long to wait for the other cameras' frames before "
            "the batch runs without them (a missing camera's place is filled so the batch shape stays the "
            "same; it gets no outputs for that step). Bounds the delay a late camera adds to the others.",
            low=0.0,
            high=1000.0,
            unit="ms",
        ),
        ParamSpec(
            "qos.reliability",
            "best_effort",
            "QoS reliability of the image subscription (REP-2003: subscribers use the sensor-data "
            "profile, best effort, which matches reliable and best-effort cameras alike).",
            choices=RELIABILITIES,
            live=False,
        ),
        ParamSpec(
            "qos.output_reliability",
            "reliable",
            "QoS reliability of the image and grid outputs (REP-2003: publishers reliable, so that "
            "reliable subscribers such as RViz's default and best-effort ones both receive them); "
            "best_effort never blocks on a slow link.",
            choices=RELIABILITIES,
            live=False,
        ),
        ParamSpec(
            "qos.depth",
            1,
            "QoS history depth (keep last) of inputs and outputs.",
            low=1,
            high=100,
            live=False,
        ),
        ParamSpec(
            "max_image_pixels",
            DEFAULT_MAX_IMAGE_PIXELS,
            "Reject images with more pixels than this, checked on the message or JPEG/PNG header before "
            "anything is decoded; 'causal-tune replay' uses the same default.",
            low=1,
            high=268_435_456,
            unit="pixels",
        ),
        # --- model and backend ----------------------------------------------------------------------
        ParamSpec(
            "backend",
            "auto",
            "Inference backend; 'auto' picks tensorrt when CUDA and torch_tensorrt are present, else eager; "
            "'compiled' runs eager through torch.compile (CUDA graphs on CUDA), for GPUs without TensorRT. "
            "A non-eager artefact that fails to load falls back to eager with a diagnostics warning.",
            choices=BACKENDS,
            live=False,
        ),
        ParamSpec(
            "device",
            "auto",
            "Inference device: 'auto' (CUDA when PyTorch sees a GPU, else CPU), 'cpu' or 'cuda'.",
            choices=DEVICES,
            live=False,
        ),
        ParamSpec(
            "precision",
            "fp32",
            "Inference precision: fp16 needs CUDA (eager, tensorrt, onnxruntime CUDA); int8 is onnxruntime "
            "dynamic quantisation.",
            choices=PRECISIONS,
            live=False,
        ),
        ParamSpec(
            "cpu_threads",
            0,
            "CPU threads for inference (torch's are process wide); 0 = the library default.",
            low=0,
            high=256,
            live=False,
        ),
        ParamSpec(
            "model.checkpoint",
            "",
            "Causal-Tune checkpoint (.safetensors); '' = the shipped demo model "
            "(models/demo/causal_tune_demo.safetensors).",
            live=False,
        ),
        ParamSpec(
            "model.backbone",
            "",
            "DINOv2 backbone weights (official .pth or Hugging Face folder); '' = the backbone stored in "
            "the checkpoint.",
            live=False,
        ),
        ParamSpec(
            "model.input_height",
            0,
            "Network input height; 0 = the size recorded in the checkpoint, else 518. Images are resized "
            "to the network input and outputs scaled back to the camera resolution.",
            **input_side,
        ),
        ParamSpec(
            "model.input_width",
            0,
            "Network input width; 0 = the size recorded in the checkpoint, else 1036.",
            **input_side,
        ),
        ParamSpec(
            "engine.cache_dir",
            "",
            "Where exported ONNX / TensorRT engines are cached; '' = $CAUSAL_TUNE_CACHE if set, else "
            "$XDG_CACHE_HOME/causal_tune_ros (~/.cache/causal_tune_ros).",
            live=False,
        ),
        ParamSpec(
            "engine.force_rebuild",
            False,
            "Rebuild the ONNX / TensorRT artefact even if a cached one matches.",
            live=False,
        ),
        ParamSpec(
            "classes_file",
            "",
            "Class list YAML (names, colours); '' = the packaged 19 Cityscapes classes.",
            live=False,
        ),
        # --- outputs --------------------------------------------------------------------------------
        ParamSpec("publish.overlay", True, "Publish ~/overlay (palette blended over the input, rgb8)."),
        ParamSpec("publish.confidence", True, "Publish ~/confidence (max softmax probability per pixel)."),
        ParamSpec(
            "confidence_encoding",
            "mono8",
            "Encoding of ~/confidence: mono8 (probability * 255) or 32FC1 (probability).",
            choices=CONFIDENCE_ENCODINGS,
        ),
        ParamSpec("overlay_alpha", 0.5, "Weight of the class colours in ~/overlay.", low=0.0, high=1.0),
        # --- drivable area --------------------------------------------------------------------------
        ParamSpec(
            "drivable.classes",
            ("road",),
            "Class names that count as drivable in ~/drivable_mask and ~/drivable_grid.",
            constraints="non-empty; every name must be in the class list",
        ),
        ParamSpec("drivable.frame", "base_link", "Frame of the ground plane and of ~/drivable_grid."),
        ParamSpec(
            "drivable.grid.enabled",
            True,
            "Publish ~/drivable_grid (needs camera_info).",
        ),
        ParamSpec(
            "drivable.grid.resolution",
            0.1,
            "Grid cell size.",
            constraints=f"at most {MAX_GRID_CELLS} cells: (width / resolution) x (length / resolution)",
            low=0.01,
            high=5.0,
            unit="m/cell",
        ),
        ParamSpec(
            "drivable.grid.width",
            20.0,
            "Grid extent across the vehicle (centred on drivable.frame's x axis).",
            low=0.5,
            high=500.0,
            unit="m",
        ),
        ParamSpec(
            "drivable.grid.length",
            30.0,
            "Grid extent ahead of drivable.frame's origin.",
            low=0.5,
            high=500.0,
            unit="m",
        ),
        ParamSpec(
            "drivable.camera.height",
            1.5,
            "Height of the camera's optical centre above the ground.",
            low=0.01,
            high=50.0,
            unit="m",
        ),
        ParamSpec(
            "drivable.camera.pitch",
            0.0,
            "Camera tilt about its horizontal axis; positive looks down toward the ground.",
            low=-math.pi / 2,
            high=math.pi / 2,
            unit="rad",
        ),
        ParamSpec(
            "drivable.camera.roll",
            0.0,
            "Camera rotation about its optical axis.",
            low=-math.pi,
            high=math.pi,
            unit="rad",
        ),
        ParamSpec(
            "drivable.camera.yaw",
            0.0,
            "Camera heading relative to drivable.frame's x axis; positive turns left.",
            low=-math.pi,
            high=math.pi,
            unit="rad",
        ),
        ParamSpec(
            "drivable.camera.x",
            0.0,
            "Camera position along drivable.frame's x axis (forward).",
            low=-100.0,
            high=100.0,
            unit="m",
        ),
        ParamSpec(
            "drivable.camera.y",
            0.0,
            "Camera position along drivable.frame's y axis (left).",
            low=-100.0,
            high=100.0,
            unit="m",
        ),
        ParamSpec(
            "drivable.use_tf",
            False,
            "Look the camera-to-ground transform up in TF (drivable.frame <- image frame) instead of "
            "drivable.camera.*; falls back to the parameters when tf2_ros is missing or the lookup fails.",
        ),
        # --- weather --------------------------------------------------------------------------------
        ParamSpec(
            "weather.mode",
            "fixed",
            "fixed: use weather.condition; topic: follow the 'weather' topic (std_msgs/String); "
            "auto: classify each frame from image statistics with hysteresis.",
            choices=WEATHER_MODES,
        ),
        ParamSpec(
            "weather.condition",
            "clear",
            "Condition in force (fixed mode), or the starting condition (topic / auto modes). Setting it "
            "at run time switches the band immediately.",
            choices=tuple(CONDITIONS),
        ),
    ]
    for cond in CONDITIONS:
        band = presets[cond]
        for edge, value in (("low", band.low), ("high", band.high)):
            specs.append(
                ParamSpec(
                    f"weather.bands.{cond}.{edge}",
                    float(value),
                    f"Band-pass cut-off radius r_{edge} used under '{cond}'.",
                    constraints="0 < low < high <= 1",
                    low=0.0,
                    high=1.0,
                )
            )
    specs.extend(AUTO_KNOBS)
    specs.append(
        ParamSpec(
            "autostart",
            False,
            "Managed node only: configure and activate right after start, with no lifecycle manager or "
            "ros2 CLI (the plain node always starts active).",
            live=False,
        )
    )
    specs.append(
        ParamSpec(
            "diagnostics.period",
            1.0,
            "Seconds between /diagnostics reports (and ~/weather re-publications).",
            low=0.05,
            high=60.0,
            unit="s",
        )
    )
    return tuple(specs)


def spec_by_name() -> dict[str, ParamSpec]:
    """The table keyed by parameter name."""
    return {s.name: s for s in parameter_specs()}


def default_values() -> dict[str, Value]:
    """Every parameter's default."""
    return {s.name: s.default for s in parameter_specs()}


def check_value(spec: ParamSpec, value: Any) -> str | None:
    """Validate one value against its declaration.

    Args:
        spec: The parameter's declaration.
        value: Candidate value.

    Returns:
        None if valid, else the reason it is not.
    """
    expected = spec.type_name
    if expected == "bool" and not isinstance(value, bool):
        return f"{spec.name} must be a bool, got {value!r}"
    if expected == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{spec.name} must be an integer, got {value!r}"
    if expected == "double" and (isinstance(value, bool) or not isinstance(value, float)):
        return f"{spec.name} must be a double (write 2.0, not 2), got {value!r}"
    if expected == "string" and not isinstance(value, str):
        return f"{spec.name} must be a string, got {value!r}"
    if expected == "string_array" and not (
        isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    ):
        return f"{spec.name} must be a list of strings, got {value!r}"
    if spec.choices and value not in spec.choices:
        return f"{spec.name} must be one of {', '.join(spec.choices)}; got {value!r}"
    if spec.low is not None and spec.high is not None:
        if isinstance(value, float) and not math.isfinite(value):
            return f"{spec.name} must be finite, got {value!r}"
        if not spec.low <= value <= spec.high:
            return f"{spec.name} must be in {spec.range_text()}; got {value!r}"
        if spec.step and (value - spec.low) % spec.step:
            return f"{spec.name} must be a multiple of {spec.step}; got {value!r}"
    return None
