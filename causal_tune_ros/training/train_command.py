"""``causal-tune train``: fine-tune Causal-Tune (tokens, projections, scale, head) on a frozen backbone.

Single process::

    causal-tune train --config config/train/synthetic_small.yaml

Several GPUs or nodes (PyTorch DDP; one process per GPU)::

    torchrun --nproc_per_node=4 -m causal_tune_ros.cli train --config config/train/cityscapes_to_acdc.yaml

Resume (same schedule, same data order)::

    causal-tune train --config ... --resume runs/cityscapes_to_acdc

A run folder that holds another run is refused unless the run resumes from it (``--resume``) or replaces
it (``--overwrite``).
"""

from __future__ import annotations

import argparse

from causal_tune_ros.resources import config_path

HELP = "fine-tune Causal-Tune on a frozen DINOv2 backbone (torchrun for multi-GPU)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``train`` options."""
    parser.add_argument(
        "--config",
        required=True,
        help="training YAML, e.g. config/train/synthetic_small.yaml (bare names: config/train/)",
    )
    parser.add_argument(
        "--resume",
        metavar="CKPT_DIR",
        help="continue from a checkpoint: a run folder, its checkpoints/ or a checkpoints/step_* folder",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (repeatable), e.g. --set optim.lr=1e-4 --set run.output_dir=runs/x",
    )
    parser.add_argument("-o", "--output-dir", help="run folder (same as --set run.output_dir=...)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run in a run folder that holds another one, deleting that run's model, "
        "checkpoints, metrics and logs (without it such a folder is refused)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or log lines")


def find_config(name: str) -> str:
    """A path as given, else ``config/train/<name>[.yaml]`` from the install's data folders.

    Raises:
        ConfigError: If neither exists.
    """
    from pathlib import Path

    from causal_tune_ros.errors import ConfigError

    if Path(name).exists():
        return name
    for candidate in (name, f"{name}.yaml"):
        try:
            return str(config_path(f"train/{Path(candidate).name}"))
        except ConfigError:
            continue
    raise ConfigError(f"config file {name} not found (nor in config/train/)")


def run(args: argparse.Namespace) -> int:
    """Train; returns 0 on success (errors are raised as ``CausalTuneError`` and reported by the CLI)."""
    from causal_tune_ros.training.config import load_train_config
    from causal_tune_ros.training.trainer import train

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"run.output_dir={args.output_dir}")
    cfg = load_train_config(find_config(args.config), overrides)
    result = train(cfg, resume=args.resume, quiet=args.quiet, overwrite=args.overwrite)
    if result.final_model is not None and not args.quiet:
        miou = "" if result.val_miou is None else f", val mIoU {100 * result.val_miou:.2f}"
        print(f"done: {result.step} steps{miou}; model {result.final_model}")
    return 0
