"""``causal-tune``: thin entry point; each subcommand lives in its own module and is imported lazily.

A subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Lazy imports keep ``causal-tune replay`` free of rclpy and ``causal-tune node`` free of training code.
``causal-tune --help`` reads each module's ``HELP`` from its source text, so listing the commands
imports none of them (no torch, no rclpy).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from causal_tune_ros import __version__
from causal_tune_ros.errors import CausalTuneError

#: subcommand -> module implementing it
SUBCOMMANDS: dict[str, str] = {
    "demo": "causal_tune_ros.demo.command",
    "info": "causal_tune_ros.info_command",
    "node": "causal_tune_ros.node.command",
    "replay": "causal_tune_ros.replay.command",
    "synth": "causal_tune_ros.synthetic.command",
    "train": "causal_tune_ros.training.train_command",
    "eval": "causal_tune_ros.training.eval_command",
    "calibrate": "causal_tune_ros.training.calibrate_command",
    "pretrain": "causal_tune_ros.pretrain.command",
    "export": "causal_tune_ros.backends.export_command",
    "fleet": "causal_tune_ros.fleet.command",
}

#: Second-level subcommands, ``(command, sub) -> module``: ``causal-tune fleet query ...``.
NESTED: dict[tuple[str, str], str] = {
    ("fleet", "query"): "causal_tune_ros.fleet.query_command",
}

DESCRIPTION = """\
Weather-robust road segmentation for ROS 2: a frozen DINOv2 with Causal-Tune blocks.
Run the ROS 2 node, segment recorded bags offline, synthesise weather drives, and train,
evaluate and export models.
"""

EPILOG = """\
start here:
  causal-tune demo                 segment a synthetic drive in five weathers with the shipped model
  causal-tune info                 versions, CUDA and the optional backends on this machine
  causal-tune COMMAND --help       the options of one command
"""

EXIT_USAGE = 2


def command_help(module_name: str) -> str:
    """The ``HELP`` string a subcommand module assigns, read from its source without importing it.

    Args:
        module_name: Dotted module name, e.g. ``causal_tune_ros.replay.command``.

    Returns:
        The one-line help.

    Raises:
        LookupError: If the module is missing or assigns no string literal to ``HELP``.
    """
    # Located by path: find_spec would import the parent packages, and some import numpy or torch.
    package_dir = Path(__file__).resolve().parent
    top, *parts = module_name.split(".")
    path = package_dir.joinpath(*parts).with_suffix(".py")
    if top != "causal_tune_ros" or not parts or not path.is_file():
        raise LookupError(f"{module_name}: not a module file of causal_tune_ros")
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "HELP" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise LookupError(f"{module_name}: no HELP = '...' string at module level")


def build_parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, dict[str, object]]:
    """Parser with every subcommand; only the chosen one's module is imported."""
    parser = argparse.ArgumentParser(
        prog="causal-tune",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"causal-tune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    modules: dict[str, object] = {}
    for name, module_name in SUBCOMMANDS.items():
        if name == chosen:
            module = importlib.import_module(module_name)
            modules[name] = module
            p = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(p)
        else:
            sub.add_parser(name, help=command_help(module_name), add_help=False)
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``causal-tune``; returns the process exit code (2 for usage and input errors)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # `causal-tune node --ros-args ...` hands everything after `node` to rclpy untouched.
    if argv[:1] == ["node"]:
        module = importlib.import_module(SUBCOMMANDS["node"])
        return int(module.main(argv[1:]) or 0)
    nested = NESTED.get((argv[0], argv[1])) if len(argv) >= 2 else None
    if nested is not None:
        module = importlib.import_module(nested)
        name = f"{argv[0]} {argv[1]}"
        sub_parser = argparse.ArgumentParser(prog=f"causal-tune {name}", description=module.HELP)
        module.add_arguments(sub_parser)
        return _run(module, name, sub_parser.parse_args(argv[2:]))
    parser, modules = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return _run(modules[args.command], args.command, args)


def _run(module: object, name: str, args: argparse.Namespace) -> int:
    """Run a subcommand module, turning its deliberate errors into ``error: ...`` and exit code 2."""
    try:
        return int(module.run(args) or 0)  # type: ignore[attr-defined]
    except CausalTuneError as exc:
        print(f"causal-tune {name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
