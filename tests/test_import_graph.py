"""The import graph of the package: no circles, and every room imports only the floors below it.

Every ``import`` statement counts, at module level or inside a function (a lazy import that
hides a circle is still a circle); only ``if TYPE_CHECKING:`` blocks are left out, since they
never run. The floors are those of docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "prefloop"


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _type_checking_only(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def _targets(module: str, node: ast.Import | ast.ImportFrom, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = module.split(".") if is_package else module.split(".")[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, base] if base else parts)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    out = []
    for name in names:
        while name not in MODULES and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in MODULES and name != module:
            out.append(name)
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_only(tree)
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skip:
                deps.update(_targets(name, node, path.name == "__init__.py"))
        graph[name] = deps
    return graph


GRAPH = _graph()


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_is_read() -> None:
    assert "prefloop.loop.sync" in GRAPH and "prefloop.loop.sync_report" in GRAPH["prefloop.loop.sync"]
    assert "prefloop.model.debias_heads" in GRAPH["prefloop.model.head_training"]  # a lazy import counts too


def test_a_circle_is_found_when_there_is_one() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_the_package() -> None:
    assert _circles(GRAPH) == []


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "prefloop"


# room → rooms it must never import (docs/architecture.md: arrows point one way)
FORBIDDEN = {
    "types": {"config", "acquisition", "model", "backends", "store", "data", "annotators", "loop", "cli"},
    "errors": {"config", "acquisition", "model", "backends", "store", "data", "annotators", "loop", "cli"},
    "config": {"acquisition", "model", "backends", "store", "data", "annotators", "loop", "cli"},
    "acquisition": {"model", "backends", "store", "loop", "cli"},
    "model": {"backends", "store", "loop", "cli"},
    "backends": {"store", "model", "loop", "cli"},
    "store": {"backends", "model", "loop", "cli"},
    "data": {"loop", "cli"},
    "annotators": {"loop", "cli"},
    "loop": {"cli"},
}


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_a_room_imports_only_the_floors_below_it(room: str) -> None:
    wrong = sorted(
        f"{module} imports {dep}"
        for module, deps in GRAPH.items()
        if _room(module) == room
        for dep in deps
        if _room(dep) in FORBIDDEN[room]
    )
    assert wrong == []
