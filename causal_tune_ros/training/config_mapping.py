"""Typed dataclasses from and to plain mappings (YAML), with errors that name the dotted key.

:func:`build_dataclass` checks every key and value type recursively against the dataclass's type hints
(unknown key, wrong type, null where none is allowed -> :class:`~causal_tune_ros.errors.ConfigError`
whose message starts with the key's dotted path). A dataclass may define ``normalise_raw(raw, path)``
(a classmethod run on its raw mapping first) and ``plain_inline(plain)`` (run on its plain form last).
:func:`apply_overrides` applies ``--set dotted.key=value`` to a raw mapping, the value parsed as YAML.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

import yaml

from causal_tune_ros.errors import ConfigError


def join_key(path: str, key: str) -> str:
    """``"optim"`` + ``"lr"`` -> ``"optim.lr"`` (the top level has no prefix)."""
    return f"{path}.{key}" if path else key


def build_dataclass(cls: type, raw: Any, path: str) -> Any:
    """Turn ``raw`` into dataclass ``cls``, checking keys and value types recursively."""
    where = path or "config"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__} {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    raw = dict(raw)
    normalise = getattr(cls, "normalise_raw", None)
    if normalise is not None:
        raw = normalise(raw, path)
    unknown = [k for k in raw if k not in names]
    if unknown:
        raise ConfigError(
            f"{join_key(path, str(unknown[0]))}: unknown key; known keys here: {', '.join(names)}"
        )
    values = {k: coerce(hints[k], raw[k], join_key(path, k)) for k in raw}
    return cls(**values)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def coerce(tp: Any, value: Any, path: str) -> Any:
    """Check / convert one value against a type hint; raise ConfigError naming ``path``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{path}: must not be null")
        inner = [a for a in args if a is not type(None)]
        errors = []
        for option in inner:
            try:
                return coerce(option, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is Literal:
        if value is False and "off" in args:
            value = "off"  # YAML 1.1 reads a bare `off` as false
        if value not in args:
            raise ConfigError(f"{path}: must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, path)
    if value is None:
        raise ConfigError(f"{path}: must not be null (expected {_type_name(tp)})")
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        (item_tp,) = args or (Any,)
        return [coerce(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
        return {str(k): v for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        # YAML 1.1 reads "1e-4" (no dot) as a string; accept it as the number it obviously is.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{path}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{path}: unsupported type {tp!r}")  # pragma: no cover - a bug in this module


def to_plain(obj: Any) -> Any:
    """A dataclass tree as plain mappings and lists (YAML-able), which :func:`build_dataclass` reads back."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        inline = getattr(obj, "plain_inline", None)
        return out if inline is None else inline(out)
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> None:
    """Apply ``dotted.key=value`` overrides to a raw config mapping in place.

    Raises:
        ConfigError: An override without ``=`` or one that descends into a non-mapping.
    """
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. optim.lr=1e-4")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {key}: value {text!r} is not valid YAML ({exc})") from exc
        node = raw
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(parts[: depth + 1])}: is not a section, cannot set {key}")
            node = child
        node[parts[-1]] = value
