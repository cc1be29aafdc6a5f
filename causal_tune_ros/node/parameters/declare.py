"""The rclpy side of the parameters: descriptors, declaration, and what rclpy leaves unsaid.

rclpy is imported inside the functions, so that the rest of the package imports this without ROS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.node.parameters.table import ParamSpec, parameter_specs, spec_by_name

if TYPE_CHECKING:
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.node import Node


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
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


def declare_parameters(node: Node) -> dict[str, Any]:
    """Declare every parameter on ``node`` and return the values in force (overrides applied).

    Args:
        node: An ``rclpy.node.Node`` (or lifecycle node).

    Returns:
        Parameter name -> value.

    Raises:
        ConfigError: If an override (params file, ``-p``) has the wrong type or is out of range.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    from rclpy.parameter import Parameter

    values: dict[str, Any] = {}
    for spec in parameter_specs():
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        # rclpy cannot tell the type of an empty list (it guesses a byte array): declare those by type.
        empty_array = isinstance(spec.default, tuple) and not spec.default
        try:
            if empty_array:
                param = node.declare_parameter(spec.name, Parameter.Type.STRING_ARRAY, descriptor(spec))
                if param.value is None:  # no override (or an empty one): set the empty default
                    node.set_parameters([Parameter(spec.name, Parameter.Type.STRING_ARRAY, [])])
                    param = node.get_parameter(spec.name)
            else:
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


def unknown_overrides(node: Node) -> list[str]:
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
