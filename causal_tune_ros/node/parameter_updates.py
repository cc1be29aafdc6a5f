"""Parameter changes at run time: validated before rclpy stores them, applied once it has.

rclpy from Iron on (Jazzy) has a post-set callback; Humble's rclpy has only the on-set one, which runs
before the values are stored. There the change is validated and, if accepted, applied in the same
callback: rclpy checks ranges before calling it and stores the values right after it succeeds, and the
node reads values from its own copy, so both paths end in the same state.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

from rcl_interfaces.msg import SetParametersResult

from causal_tune_ros.classes import ClassSet, load_classes
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.node.diagnostics import clip_text
from causal_tune_ros.node.parameters.declare import plain_value
from causal_tune_ros.node.parameters.settings import (
    NodeSettings,
    restart_only_changes,
    settings_from_values,
)
from causal_tune_ros.node.parameters.table import spec_by_name

if TYPE_CHECKING:
    from rclpy.node import Node
    from rclpy.parameter import Parameter


class SettingsOwner(Protocol):
    """What :class:`ParameterUpdates` needs from the node's core."""

    settings: NodeSettings
    classes: ClassSet

    @property
    def configured(self) -> bool:
        """Whether a model is loaded (restart-only parameters are then refused)."""
        ...

    def apply_settings(self, new: NodeSettings, names: set[str]) -> None:
        """Take ``new`` into use; ``names`` are the parameters that were set."""
        ...


def load_class_set(settings: NodeSettings) -> ClassSet:
    """The class list ``settings`` names (``classes_file``, or the packaged one)."""
    return load_classes(settings.classes_file or None)


def drivable_class_ids(settings: NodeSettings, classes: ClassSet) -> tuple[int, ...]:
    """Train ids of ``drivable.classes`` (used to validate the names).

    Raises:
        ConfigError: Naming an unknown class.
    """
    try:
        return tuple(classes.index(name) for name in settings.drivable_classes)
    except ConfigError as exc:
        raise ConfigError(f"drivable.classes: {exc}") from None


class ParameterUpdates:
    """The parameter values in force, and the rclpy callbacks that change them.

    Args:
        node: The rclpy node the parameters are declared on.
        values: The declared values (name -> value), as :func:`declare_parameters` returned them.
        owner: The core that takes accepted settings into use.
    """

    def __init__(self, node: Node, values: dict[str, Any], owner: SettingsOwner) -> None:
        self.values = values
        self._owner = owner
        self._lock = threading.Lock()
        self._log = node.get_logger()
        post_set = getattr(node, "add_post_set_parameters_callback", None)
        if post_set is not None:
            node.add_on_set_parameters_callback(self.validate)
            post_set(self.apply)
        else:
            node.add_on_set_parameters_callback(self.validate_and_apply)

    def validate(self, params: list[Parameter]) -> SetParametersResult:
        """on-set callback: accept a change only if the whole resulting configuration is valid.

        Restart-only parameters are refused first, before any value is looked at or any file (the class
        list) is opened: any peer on the network can call the parameter service.
        """
        specs = spec_by_name()
        candidate = dict(self.values)
        for p in params:
            if p.name in specs:
                candidate[p.name] = plain_value(p.value)
        fixed = restart_only_changes(self.values, candidate)
        owner = self._owner
        if fixed and owner.configured:
            return SetParametersResult(
                successful=False,
                reason=f"{', '.join(fixed)} cannot change while the model is loaded; restart the node "
                "(lifecycle node: deactivate and clean up first)",
            )
        try:
            settings = settings_from_values(candidate)
            same_file = settings.classes_file == owner.settings.classes_file
            classes = owner.classes if same_file else load_class_set(settings)
            try:
                drivable_class_ids(settings, classes)
            except ConfigError:
                if same_file:
                    raise
                # The names come from a file a peer named: do not list them back.
                raise ConfigError(
                    f"drivable.classes names a class that {settings.classes_file} does not list"
                ) from None
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=clip_text(str(exc)))
        return SetParametersResult(successful=True)

    def validate_and_apply(self, params: list[Parameter]) -> SetParametersResult:
        """on-set callback where rclpy has no post-set callback (Humble): validate, then apply."""
        result = self.validate(params)
        if result.successful:
            self.apply(params)
        return result

    def apply(self, params: list[Parameter]) -> None:
        """post-set callback: store the values and hand the new settings to the core."""
        specs = spec_by_name()
        names = {p.name for p in params if p.name in specs}
        if not names:
            return
        with self._lock:
            for p in params:
                if p.name in specs:
                    self.values[p.name] = plain_value(p.value)
            self._owner.apply_settings(settings_from_values(self.values), names)
        self._log.info(
            clip_text("parameters set: " + ", ".join(f"{n}={self.values[n]!r}" for n in sorted(names)))
        )
