"""The layering of docs/ARCHITECTURE.md, checked on the source so it cannot silently erode.

The table is written as import-linter contracts in setup.cfg (``[importlinter]``); grimp reads every
import statement, including those inside functions, so a lazy import counts like any other.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from causal_tune_ros import cli

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "causal_tune_ros"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the package under ``root`` with ``root``'s setup.cfg contracts."""
    if not LINT_IMPORTS.is_file():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the dev extra (pip install -e '.[dev]')")
    return subprocess.run(
        [str(LINT_IMPORTS), str(root / "setup.cfg"), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},  # the package under root, not the installed one
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_row_of_the_layering_table_holds() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_the_check_fails_on_wrong_imports_made_inside_functions(tmp_path: Path) -> None:
    """A copy of the package with three deliberately wrong lazy imports and a module in no row."""
    shutil.copytree(PACKAGE, tmp_path / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", tmp_path / "setup.cfg")
    wrong = {
        "model/dct.py": "from causal_tune_ros.pipeline import SegmentationPipeline",  # model reaching up
        "weather/presets.py": "import torch",  # torch in a numpy-only folder
        "replay/video.py": "import rclpy",  # rclpy outside node/
    }
    for name, statement in wrong.items():
        with (tmp_path / PACKAGE.name / name).open("a", encoding="utf-8") as f:
            f.write(f"\n\ndef _deliberately_wrong() -> None:\n    {statement}  # noqa\n")
    (tmp_path / PACKAGE.name / "stray.py").write_text('"""A module no row of the table names."""\n')
    result = _lint_imports(tmp_path)
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert "causal_tune_ros.model.dct -> causal_tune_ros.pipeline" in report
    assert "causal_tune_ros.weather.presets -> torch" in report
    assert "causal_tune_ros.replay.video -> rclpy" in report
    assert "not listed as layers:\n\n- causal_tune_ros.stray" in report
    assert "4 broken" in report  # the model contract breaks too: pipeline imports classes


def _cycle_through(graph: grimp.ImportGraph, importer: str, imported: str) -> list[str] | None:
    """The shortest cycle that uses the import ``importer -> imported``, as a module list, or None."""
    back = graph.find_shortest_chain(importer=imported, imported=importer)
    return None if back is None else [importer, *back]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE.name)


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    cycles: dict[tuple[str, str], list[str]] = {}
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            cycle = _cycle_through(graph, module, imported)
            if cycle is not None:
                cycles[(module, imported)] = cycle
    assert cycles == {}, "\n".join(" -> ".join(c) for c in cycles.values())


def test_weights_code_never_imports_the_model_class(graph: grimp.ImportGraph) -> None:
    """``DinoV2.from_pretrained`` hands its class to ``model.weights``; nothing there imports it back."""
    assert graph.find_shortest_chain("causal_tune_ros.model.weights", "causal_tune_ros.model.dinov2") is None


# ------------------------------------------------------------------------------------------ CLI modules


def _defines_command(path: Path) -> bool:
    """True if a module assigns ``HELP`` and defines ``add_arguments`` and ``run`` at module level."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {"HELP", "add_arguments", "run"} <= names


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_cli_command_modules_follow_one_naming_rule() -> None:
    """``causal-tune SUB`` lives in ``<folder>/command.py`` or ``<folder>/SUB_command.py``."""
    named = {**{(sub,): module for sub, module in cli.SUBCOMMANDS.items()}, **cli.NESTED}
    for words, module in named.items():
        assert module.rsplit(".", 1)[1] in ("command", f"{words[-1]}_command"), (words, module)
    command_files = {_module_name(p) for p in PACKAGE.rglob("*command.py")}
    defining = {_module_name(p) for p in PACKAGE.rglob("*.py") if _defines_command(p)}
    assert command_files == set(named.values()), "a *command.py module that cli.py does not dispatch to"
    assert defining == set(named.values()), "a module shaped like a command outside the naming rule"


# ------------------------------------------------------------------------------------------ module size

#: Longest module, in lines: one job per file keeps files short (split along the seams, don't raise this).
MAX_MODULE_LINES = 520


def test_no_module_is_longer_than_the_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in sorted(PACKAGE.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines (split them along their seams): {long}"
