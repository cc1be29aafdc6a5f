"""Every parameter of the segmentation node: the table, the settings built from it, the rclpy declarations
and the generated documentation.

- ``table``: one :class:`ParamSpec` per parameter (name, default, range, description) and value checks;
  the single source for everything below.
- ``settings``: :class:`NodeSettings`, the validated, typed view the node reads per frame.
- ``declare``: the rclpy side (descriptors, declaration, unknown overrides); rclpy is imported lazily.
- ``docs``: the table of ``docs/ros_interface.md`` and ``config/segmentation.yaml``
  (``python -m causal_tune_ros.node.parameters [--yaml]`` prints them).

Everything works without rclpy except the functions of ``declare`` that take a node.
"""

from causal_tune_ros.node.parameters.declare import (
    RCLPY_PARAMETERS,
    declare_parameters,
    descriptor,
    plain_value,
    unknown_overrides,
)
from causal_tune_ros.node.parameters.docs import parameters_markdown, parameters_yaml
from causal_tune_ros.node.parameters.settings import (
    CameraMount,
    NodeSettings,
    restart_only_changes,
    settings_from_values,
)
from causal_tune_ros.node.parameters.table import (
    ParamSpec,
    check_value,
    default_values,
    parameter_specs,
    spec_by_name,
)

__all__ = [
    "RCLPY_PARAMETERS",
    "CameraMount",
    "NodeSettings",
    "ParamSpec",
    "check_value",
    "declare_parameters",
    "default_values",
    "descriptor",
    "parameter_specs",
    "parameters_markdown",
    "parameters_yaml",
    "plain_value",
    "restart_only_changes",
    "settings_from_values",
    "spec_by_name",
    "unknown_overrides",
]
