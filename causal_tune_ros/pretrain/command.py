"""``causal-tune pretrain``: pretrain the pocket backbone on unlabelled synthetic scenes (no class labels)."""

from __future__ import annotations

import argparse

HELP = "pretrain a small ViT backbone (patch 14) on unlabelled synthetic scenes in five weathers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``causal-tune pretrain``."""
    parser.add_argument(
        "--config",
        "-c",
        default=None,
        help="pretrain YAML file, e.g. config/pretrain/pocket.yaml (default: built-in)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set optim.steps=20 (repeatable)",
    )
    parser.add_argument(
        "--output", "-o", default=None, help="backbone file to write (overrides the config's output)"
    )


def run(args: argparse.Namespace) -> int:
    """Pretrain and write the backbone.

    Returns:
        0 on success (errors raise ``CausalTuneError``, which the CLI maps to exit code 2).
    """
    from causal_tune_ros.pretrain.config import load_pretrain_config
    from causal_tune_ros.pretrain.trainer import pretrain

    overrides = list(args.set)
    if args.output:
        overrides.append(f"output={args.output}")
    cfg = load_pretrain_config(args.config, overrides)
    result = pretrain(cfg, log=lambda line: print(line, flush=True))
    print(
        f"pretrain: done in {result.render_seconds + result.train_seconds:.0f} s "
        f"(render {result.render_seconds:.0f} s, train {result.train_seconds:.0f} s) -> {result.path}"
    )
    return 0
