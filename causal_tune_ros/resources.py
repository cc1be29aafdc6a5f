"""Locate the package's data folders (config/, launch/, models/) in every way the package is installed.

Order: a source checkout or editable install (folders beside the package), then a wheel or colcon
install (``<prefix>/share/causal_tune_ros``), then the ament index when ROS is sourced. Nothing here
needs ROS.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from causal_tune_ros.errors import ConfigError

PACKAGE = "causal_tune_ros"


def _candidate_roots() -> list[Path]:
    roots = [Path(__file__).resolve().parent.parent, Path(sys.prefix) / "share" / PACKAGE]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            roots.append(Path(prefix) / "share" / PACKAGE)
    return roots


def data_path(*parts: str) -> Path:
    """Return the first existing ``<root>/<parts...>`` among the install locations.

    Args:
        parts: Path components below the share root, e.g. ``("config", "classes.yaml")``.

    Raises:
        ConfigError: If no install location holds that path.
    """
    for root in _candidate_roots():
        path = root.joinpath(*parts)
        if path.exists():
            return path
    raise ConfigError(f"cannot find {'/'.join(parts)} in any of: {', '.join(map(str, _candidate_roots()))}")


def config_path(name: str) -> Path:
    """Path of a file under ``config/`` (see :func:`data_path`)."""
    return data_path("config", name)
