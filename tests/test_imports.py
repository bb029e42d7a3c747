"""The import graph: no cycles, a domain free of adapters and I/O, errors that import
nothing of salesflow (not even for type checking)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "salesflow"

#: What the domain may not import: adapters, the application, storage and I/O.
FORBIDDEN_IN_DOMAIN = {
    "salesflow.app",
    "salesflow.memory",
    "salesflow.sqlite",
    "salesflow.postgres",
    "salesflow._sql",
    "salesflow.ports",
    "salesflow.serialization",
    "salesflow.unit_of_work",
    "salesflow.testing",
    "sqlite3",
    "psycopg",
    "psycopg_pool",
    "socket",
    "subprocess",
    "logging",
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, at any level, under TYPE_CHECKING too."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {imported for imported in _imports(path) if imported in modules and imported != name}
        for name, path in modules.items()
    }


def test_errors_import_nothing_of_salesflow() -> None:
    assert not [m for m in _imports(PACKAGE / "errors.py") if m.startswith("salesflow")]


def test_the_domain_imports_no_adapter_and_no_io() -> None:
    for path in (PACKAGE / "domain").glob("*.py"):
        found = {m for m in _imports(path) if m.split(".")[0] in {"sqlite3", "psycopg"}} | {
            m
            for m in _imports(path)
            if any(m == f or m.startswith(f + ".") for f in FORBIDDEN_IN_DOMAIN)
        }
        assert not found, f"{path.name} imports {sorted(found)}"


def test_the_import_graph_has_no_cycles() -> None:
    graph = _graph()
    # the package's __init__ re-exports everything; its submodules never import it back
    graph = {m: {i for i in imported if i != "salesflow"} for m, imported in graph.items()}
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                cycle = [*path[path.index(imported) :], imported]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
