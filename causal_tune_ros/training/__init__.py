"""Fine-tuning and evaluation: data sets, augmentation, the train loop (single process or torchrun + DDP),
evaluation with per-condition tables, and the ``causal-tune train`` / ``causal-tune eval`` commands.

The public names below are imported lazily, so ``import causal_tune_ros.training.datasets`` (numpy and
OpenCV only) does not pull in torch.

- :func:`load_train_config` / :class:`TrainConfig`: typed YAML configuration (errors name the key).
- :class:`Trainer` / :func:`train`: the training loop; :class:`TrainResult`.
- :func:`evaluate` / :func:`evaluate_bands` -> :class:`EvalResult`; :func:`write_tables`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "causal_tune_ros.training.config",
    "load_train_config": "causal_tune_ros.training.config",
    "Trainer": "causal_tune_ros.training.trainer",
    "TrainResult": "causal_tune_ros.training.run_log",
    "build_model": "causal_tune_ros.training.model_setup",
    "train": "causal_tune_ros.training.trainer",
    "EvalResult": "causal_tune_ros.training.evaluate",
    "evaluate": "causal_tune_ros.training.evaluate",
    "evaluate_bands": "causal_tune_ros.training.evaluate",
    "write_tables": "causal_tune_ros.training.evaluate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
