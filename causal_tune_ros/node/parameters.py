"""Every parameter of the segmentation node, in one table, and the validated settings built from them.

The table (:func:`parameter_specs`) is the single source for the node's declarations (with
``ParameterDescriptor`` description, range and constraints), for run-time validation, for
``config/segmentation.yaml`` (a test checks that the file and the table agree) and for the parameter
table in ``docs/ros_interface.md`` (``python -m causal_tune_ros.node.parameters`` prints it).

Everything above :func:`declare_parameters` is ROS-free so that documentation and validation can be
tested without rclpy.
"""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from causal_tune_ros.backends.base import BACKEND_NAMES, PRECISIONS
from causal_tune_ros.band import Band
from causal_tune_ros.drivable import GridSpec
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.limits import DEFAULT_MAX_IMAGE_PIXELS, MAX_GRID_CELLS
from causal_tune_ros.weather import CONDITIONS, DEFAULT_MIN_SECONDS, load_band_presets

Value = bool | int | float | str | tuple[str, ...]

TRANSPORTS = ("raw", "compressed")
RELIABILITIES = ("best_effort", "reliable")
BACKENDS = BACKEND_NAMES
DEVICES = ("auto", "cpu", "cuda")
CONFIDENCE_ENCODINGS = ("mono8", "32FC1")
WEATHER_MODES = ("fixed", "topic", "auto")


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
            text = f"[{_num(self.low)}, {_num(self.high)}]"
            return f"{text}, step {self.step}" if self.step else text
        return ""


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# The hysteresis knobs of the automatic weather classifier (weather.auto.*), documented here and passed to
# WeatherClassifier by keyword.
_AUTO_KNOBS: tuple[ParamSpec, ...] = (
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
    specs.extend(_AUTO_KNOBS)
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


@dataclass(frozen=True)
class CameraMount:
    """Camera-to-ground extrinsic from the drivable.camera.* parameters (metres, radians)."""

    height: float
    pitch: float
    roll: float
    yaw: float
    x: float
    y: float


@dataclass(frozen=True)
class NodeSettings:
    """The validated, typed view of all parameters; an immutable value the worker reads per frame.

    Build it with :func:`settings_from_values`; field meanings are those of the parameter table.
    """

    input_transport: str
    reliability: str
    qos_depth: int
    output_reliability: str
    max_image_pixels: int
    backend: str
    device: str
    precision: str
    cpu_threads: int
    checkpoint: str
    backbone: str
    input_size: tuple[int, int] | None
    engine_cache_dir: str
    engine_force_rebuild: bool
    classes_file: str
    publish_overlay: bool
    publish_confidence: bool
    confidence_encoding: str
    overlay_alpha: float
    drivable_classes: tuple[str, ...]
    grid_enabled: bool
    grid_frame: str
    grid_resolution: float
    grid_width: float
    grid_length: float
    camera: CameraMount
    use_tf: bool
    weather_mode: str
    weather_condition: str
    bands: Mapping[str, Band]
    auto_knobs: Mapping[str, float] = field(default_factory=dict)
    diagnostics_period: float = 1.0
    autostart: bool = False

    def band_for(self, condition: str) -> Band:
        """The band preset of ``condition``."""
        return self.bands[condition]


def settings_from_values(values: Mapping[str, Any]) -> NodeSettings:
    """Validate a full set of parameter values and build :class:`NodeSettings`.

    Args:
        values: Parameter name -> value, for every declared parameter (missing ones take defaults;
            unknown names are an error).

    Returns:
        The settings.

    Raises:
        ConfigError: Naming the first invalid parameter and why.
    """
    specs = spec_by_name()
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ConfigError(f"unknown parameter(s): {', '.join(unknown)}")
    v: dict[str, Any] = {**default_values(), **values}
    for name, spec in specs.items():
        reason = check_value(spec, v[name])
        if reason:
            raise ConfigError(reason)
    classes = tuple(v["drivable.classes"])
    if not classes:
        raise ConfigError("drivable.classes must name at least one class")
    bands: dict[str, Band] = {}
    for cond in CONDITIONS:
        low, high = v[f"weather.bands.{cond}.low"], v[f"weather.bands.{cond}.high"]
        try:
            bands[cond] = Band(low, high)
        except ConfigError as exc:
            raise ConfigError(f"weather.bands.{cond}: {exc}") from None
    try:  # the grid's cell count is bounded: refuse a too fine or too large grid now, not every frame
        GridSpec(
            resolution=v["drivable.grid.resolution"],
            length_m=v["drivable.grid.length"],
            width_m=v["drivable.grid.width"],
        )
    except ConfigError as exc:
        raise ConfigError(f"drivable.grid.resolution / width / length: {exc}") from None
    height, width = v["model.input_height"], v["model.input_width"]
    if (height == 0) != (width == 0):
        raise ConfigError("model.input_height and model.input_width must both be 0 or both be set")
    return NodeSettings(
        input_transport=v["input_transport"],
        reliability=v["qos.reliability"],
        qos_depth=v["qos.depth"],
        output_reliability=v["qos.output_reliability"],
        max_image_pixels=v["max_image_pixels"],
        backend=v["backend"],
        device=v["device"],
        precision=v["precision"],
        cpu_threads=v["cpu_threads"],
        checkpoint=v["model.checkpoint"],
        backbone=v["model.backbone"],
        input_size=(height, width) if height else None,
        engine_cache_dir=v["engine.cache_dir"],
        engine_force_rebuild=v["engine.force_rebuild"],
        classes_file=v["classes_file"],
        publish_overlay=v["publish.overlay"],
        publish_confidence=v["publish.confidence"],
        confidence_encoding=v["confidence_encoding"],
        overlay_alpha=v["overlay_alpha"],
        drivable_classes=classes,
        grid_enabled=v["drivable.grid.enabled"],
        grid_frame=v["drivable.frame"],
        grid_resolution=v["drivable.grid.resolution"],
        grid_width=v["drivable.grid.width"],
        grid_length=v["drivable.grid.length"],
        camera=CameraMount(
            height=v["drivable.camera.height"],
            pitch=v["drivable.camera.pitch"],
            roll=v["drivable.camera.roll"],
            yaw=v["drivable.camera.yaw"],
            x=v["drivable.camera.x"],
            y=v["drivable.camera.y"],
        ),
        use_tf=v["drivable.use_tf"],
        weather_mode=v["weather.mode"],
        weather_condition=v["weather.condition"],
        bands=bands,
        auto_knobs={s.name.rsplit(".", 1)[1]: v[s.name] for s in _AUTO_KNOBS},
        diagnostics_period=v["diagnostics.period"],
        autostart=v["autostart"],
    )


def restart_only_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Names of parameters that differ between ``old`` and ``new`` but cannot change while running."""
    specs = spec_by_name()
    return [n for n, val in new.items() if n in specs and not specs[n].live and old.get(n) != val]


# ----------------------------------------------------------------------------------------------------
# rclpy side
# ----------------------------------------------------------------------------------------------------


def descriptor(spec: ParamSpec):
    """The ``rcl_interfaces/ParameterDescriptor`` of one parameter (description, range, constraints)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    constraints = [c for c in (spec.constraints, spec.range_text()) if c]
    if not spec.live:
        constraints.append("fixed while running (restart, or lifecycle cleanup + configure)")
    desc = ParameterDescriptor(
        name=spec.name,
        description=spec.description + (f" [{spec.unit}]" if spec.unit else ""),
        additional_constraints="; ".join(dict.fromkeys(constraints)),
    )
    if spec.low is not None and spec.high is not None:
        if spec.type_name == "integer":
            desc.integer_range = [
                IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=spec.step)
            ]
        else:
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)
            ]
    return desc


def declare_parameters(node) -> dict[str, Any]:
    """Declare every parameter on ``node`` and return the values in force (overrides applied).

    Args:
        node: An ``rclpy.node.Node`` (or lifecycle node).

    Returns:
        Parameter name -> value.

    Raises:
        ConfigError: If an override (params file, ``-p``) has the wrong type or is out of range.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    values: dict[str, Any] = {}
    for spec in parameter_specs():
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        try:
            param = node.declare_parameter(spec.name, default, descriptor(spec))
        except InvalidParameterTypeException:
            got = node._parameter_overrides.get(spec.name)  # only way to show the offending value
            raise ConfigError(
                f"parameter {spec.name} must be of type {spec.type_name}"
                + (" (write 2.0, not 2)" if spec.type_name == "double" else "")
                + (f"; got {got.value!r}" if got is not None else "")
            ) from None
        except InvalidParameterValueException as exc:
            raise ConfigError(f"parameter {spec.name}: {exc}") from None
        values[spec.name] = _plain(param.value)
    return values


#: Parameters rclpy declares on every node by itself.
RCLPY_PARAMETERS = frozenset({"use_sim_time", "start_type_description_service"})


def unknown_overrides(node) -> list[str]:
    """Names given to the node (params file, ``-p``) that it does not declare: usually typos.

    rclpy silently ignores them, so the node warns about them instead.
    """
    given = set(getattr(node, "_parameter_overrides", {}))  # no public accessor in rclpy
    return sorted(given - set(spec_by_name()) - RCLPY_PARAMETERS)


def _plain(value: Any) -> Any:
    """rclpy returns arrays as lists (or array.array); compare and store them as tuples."""
    if isinstance(value, list | tuple):
        return tuple(value)
    return value


def plain_value(value: Any) -> Any:
    """Public form of :func:`_plain` for values coming out of ``rclpy.parameter.Parameter``."""
    return _plain(value)


# ----------------------------------------------------------------------------------------------------
# documentation
# ----------------------------------------------------------------------------------------------------


def _default_text(spec: ParamSpec) -> str:
    if isinstance(spec.default, tuple):
        return "[" + ", ".join(f"'{d}'" for d in spec.default) + "]"
    if isinstance(spec.default, bool):
        return str(spec.default).lower()
    if isinstance(spec.default, str):
        return f"'{spec.default}'"
    return _num(spec.default)


def _cell(text: str) -> str:
    """Escape a Markdown table cell."""
    return text.replace("|", "\\|")


def parameters_markdown() -> str:
    """The parameter table of ``docs/ros_interface.md`` (Markdown)."""
    lines = [
        "| parameter | type | default | range / choices | live | description |",
        "|---|---|---|---|---|---|",
    ]
    for s in parameter_specs():
        rng = "; ".join(dict.fromkeys(c for c in (s.range_text(), s.constraints) if c))
        desc = s.description + (f" [{s.unit}]" if s.unit else "")
        lines.append(
            f"| `{s.name}` | {s.type_name} | `{_default_text(s)}` | {_cell(rng)} | "
            f"{'yes' if s.live else 'restart'} | {_cell(desc)} |"
        )
    return "\n".join(lines) + "\n"


def _yaml_scalar(value: Value) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def parameters_yaml(node_key: str = "/**/segmentation_node") -> str:
    """``config/segmentation.yaml``: every parameter at its default, nested by dots, a comment each.

    Args:
        node_key: The node-name key (``/**/`` lets the file apply under any namespace).

    Returns:
        The YAML text.
    """
    lines = [
        "# Parameters of the causal_tune_ros segmentation node, every one at its default.",
        "# Generated by `python -m causal_tune_ros.node.parameters --yaml`; docs/ros_interface.md lists",
        "# the ranges. The /**/ prefix makes the file apply whatever namespace the node runs in.",
        f"{node_key}:",
        "  ros__parameters:",
    ]
    opened: list[str] = []
    for spec in parameter_specs():
        *groups, leaf = spec.name.split(".")
        common = 0
        while common < min(len(groups), len(opened)) and groups[common] == opened[common]:
            common += 1
        for depth in range(common, len(groups)):
            lines.append("    " + "  " * depth + f"{groups[depth]}:")
        opened = groups
        indent = "    " + "  " * len(groups)
        rng = spec.range_text()
        comment = (
            spec.description + (f" [{spec.unit}]" if spec.unit else "") + (f" Range: {rng}." if rng else "")
        )
        if not spec.live:
            comment += " Fixed while running."
        for text in textwrap.wrap(comment, width=108 - len(indent), break_on_hyphens=False):
            lines.append(f"{indent}# {text}")
        lines.append(f"{indent}{leaf}: {_yaml_scalar(spec.default)}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the Markdown parameter table, or with ``--yaml`` the default parameter file."""
    args = list(sys.argv[1:] if argv is None else argv)
    sys.stdout.write(parameters_yaml() if "--yaml" in args else parameters_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
