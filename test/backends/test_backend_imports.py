"""backends/ has no import cycle, counting imports made inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import causal_tune_ros.backends as backends_package

PACKAGE = "causal_tune_ros.backends"


def _imports(path: Path) -> set[str]:
    """Modules of backends/ that ``path`` imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.startswith(PACKAGE + ".")}
    return {name.split(".")[2] for name in found}


def test_backends_modules_import_each_other_without_cycles() -> None:
    folder = Path(backends_package.__file__).parent
    graph = {
        path.stem: _imports(path) - {path.stem} for path in folder.glob("*.py") if path.stem != "__init__"
    }
    graph = {module: {dep for dep in deps if dep in graph} for module, deps in graph.items()}
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(module: str, stack: list[str]) -> None:
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join([*stack, module])}"
        state[module] = "open"
        for dep in sorted(graph[module]):
            visit(dep, [*stack, module])
        state[module] = "done"
        order.append(module)

    for module in sorted(graph):
        visit(module, [])
    assert order.index("segmenter") < order.index("onnx_export") < order.index("export")
