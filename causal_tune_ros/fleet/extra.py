"""The optional ``fleet`` extra (Ray, pyarrow, pandas): imported on demand, one clear message if absent."""

from __future__ import annotations

import importlib
from types import ModuleType

from causal_tune_ros.errors import FleetError

#: What ``pip install 'causal_tune_ros[fleet]'`` brings, module -> what it is used for.
FLEET_MODULES = {
    "ray": "runs the workers",
    "pyarrow": "writes the Parquet frame index",
    "pandas": "evaluates causal-tune fleet query --where",
}

INSTALL_HINT = "pip install 'causal_tune_ros[fleet]' (or: pip install -e '.[fleet]' in a checkout)"


def require(name: str) -> ModuleType:
    """Import a module of the ``fleet`` extra.

    Args:
        name: Module name, one of :data:`FLEET_MODULES`.

    Returns:
        The imported module.

    Raises:
        FleetError: If it is not installed, naming the extra to install.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        use = FLEET_MODULES.get(name.split(".")[0], "is needed")
        raise FleetError(
            f"causal-tune fleet needs {name.split('.')[0]} ({use}), which is not installed: {exc}. "
            f"Install the fleet extra: {INSTALL_HINT}"
        ) from None
