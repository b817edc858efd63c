"""The package's layout follows the flow io -> preprocess -> segment -> features -> models ->
study/report: no import cycle between its package-level units, and ``hybridrad.models``
depends on neither ``hybridrad.report`` nor ``hybridrad.study``.

A unit is ``hybridrad`` itself or ``hybridrad.<first part>`` (``hybridrad.models``,
``hybridrad.runner``, ...). Every import counts, function-level (lazy) ones included:
a lazy import is still a dependency, only a later one.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hybridrad"


def _unit(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def _import_graph() -> dict[str, set[str]]:
    """Unit -> the other units it imports anywhere in its source."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        source = _unit(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = module.split(".")
                if node.level:  # relative: resolved against the importing module's package
                    base = base[: len(base) - node.level + is_package]
                    names = [".".join([*base, *([node.module] if node.module else [])])]
                else:
                    names = [node.module] if node.module else []
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name == "hybridrad" or name.startswith("hybridrad."):
                    target = _unit(name)
                    if target != source:
                        edges[source].add(target)
    return edges


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or ``None`` when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_graph_is_read():
    edges = _import_graph()
    assert "hybridrad.runner" in edges["hybridrad.features"]
    assert "hybridrad.models" in edges["hybridrad.report"]


def test_no_import_cycle_between_units():
    cycle = _find_cycle(_import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_reports_the_path():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_models_import_neither_report_nor_study():
    bad = _import_graph()["hybridrad.models"] & {"hybridrad.report", "hybridrad.study"}
    assert not bad, f"hybridrad.models imports {sorted(bad)}"


def test_only_main_imports_the_cli():
    importers = {src for src, targets in _import_graph().items() if "hybridrad.cli" in targets}
    assert importers == {"hybridrad.__main__"}
