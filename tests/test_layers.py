"""The layers of DESIGN.md, checked on the source: every import (at any depth
of a module, ``TYPE_CHECKING`` blocks included) of every module under
``pyrocket/`` is resolved to the pyrocket package it names, and each layer
may import only the layers above it.

protocol (sans-I/O) imports nothing of pyrocket but ``pyrocket.errors``, nor
does filter (the sans-I/O SQL92 selectors);
remoting only protocol; acl (sans-I/O access control) only protocol; the
NameServer protocol, remoting and acl; the broker those and the NameServer;
the clients protocol, remoting and acl (not the servers they talk to); the
command line anything. The top-level helper modules
(``pyrocket.errors``, ``pyrocket.persist``, ...) are open to every layer but
protocol, and import no server, client or command-line package themselves.

The same imports make a module graph that has no cycle at all.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "pyrocket"

#: Each layer package and the pyrocket packages it may import besides itself.
ALLOWED: dict[str, frozenset[str]] = {
    "protocol": frozenset(),
    "filter": frozenset(),
    "remoting": frozenset({"protocol"}),
    "acl": frozenset({"protocol"}),
    "namesrv": frozenset({"protocol", "remoting", "acl"}),
    "broker": frozenset({"protocol", "remoting", "namesrv", "acl", "filter"}),
    "client": frozenset({"protocol", "remoting", "acl", "filter"}),
    "cli": frozenset({"protocol", "remoting", "acl", "namesrv", "broker", "client", "filter"}),
}

#: What the top-level helper modules may not import.
HELPERS_FORBIDDEN = frozenset({"namesrv", "broker", "client", "cli"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of each pyrocket module that ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:
                # ``from pyrocket import protocol`` names a package, not an attribute.
                if f"{target}.{alias.name}" in known:
                    yield node.lineno, f"{target}.{alias.name}"


def top(module: str) -> str | None:
    """The part of pyrocket ``module`` belongs to (``"broker"``,
    ``"errors"``), or None outside pyrocket or for ``pyrocket`` itself."""
    parts = module.split(".")
    if parts[0] != "pyrocket" or len(parts) < 2:
        return None
    return parts[1]


@functools.cache
def layer_imports() -> list[tuple[str, int, str]]:
    """``(module, line, imported)`` of every import from one part of pyrocket
    into another."""
    table = modules()
    known = set(table)
    found = []
    for name, path in table.items():
        for line, target in imported(name, path, known):
            mine, theirs = top(name), top(target)
            if theirs is not None and theirs != mine:
                found.append((name, line, target))
    return found


def test_the_source_is_found() -> None:
    table = modules()
    for layer in ALLOWED:
        assert any(top(name) == layer for name in table), f"no modules of pyrocket.{layer}"
    # The resolver sees what a layer really imports (as a check of the test).
    imports = layer_imports()
    assert any(top(m) == "remoting" and top(t) == "protocol" for m, _, t in imports)
    assert any(top(m) == "cli" and top(t) == "client" for m, _, t in imports)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_above_it(layer: str) -> None:
    helpers = {
        top(name)
        for name, path in modules().items()
        if path.parent == ROOT and path.name != "__init__.py" and top(name) is not None
    }
    allowed = set(ALLOWED[layer]) | {layer}
    if layer in ("protocol", "filter"):
        allowed.add("errors")
    else:
        allowed |= helpers - {"__main__"}
    wrong = [
        f"{module}:{line} imports {target}"
        for module, line, target in layer_imports()
        if top(module) == layer and top(target) not in allowed
    ]
    assert wrong == []


def test_top_level_helpers_import_no_server_client_or_cli() -> None:
    helper_modules = {
        module_name(path)
        for path in ROOT.glob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    }
    assert "pyrocket.errors" in helper_modules
    wrong = [
        f"{module}:{line} imports {target}"
        for module, line, target in layer_imports()
        if module in helper_modules and top(target) in HELPERS_FORBIDDEN
    ]
    assert wrong == []


def import_graph() -> dict[str, set[str]]:
    """Each pyrocket module and the pyrocket modules it imports (at any depth,
    ``TYPE_CHECKING`` blocks included). ``from pkg import name`` counts as an
    import of ``pkg`` (whose ``__init__`` runs) and of ``pkg.name`` when that is
    a module."""
    table = modules()
    known = set(table)
    graph: dict[str, set[str]] = {}
    for name, path in table.items():
        edges = graph.setdefault(name, set())
        for _, target in imported(name, path, known):
            if target in known and target != name:
                edges.add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph`` (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
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
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    components = sorted(strongly_connected(graph))
    assert components == [["a", "b", "c"], ["d"], ["e"]]


def test_the_import_graph_sees_imports_inside_functions_and_type_checking(
    tmp_path: Path,
) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from pyrocket.broker.app import Broker\n"
        "def late() -> None:\n"
        "    from pyrocket.broker import dataplane\n",
        encoding="utf-8",
    )
    known = set(modules())
    targets = {target for _, target in imported("pyrocket.broker.probe", module, known)}
    assert {"pyrocket.broker.app", "pyrocket.broker.dataplane"} <= targets
    assert "pyrocket.broker.dataplane" in import_graph()["pyrocket.broker.app"]


def test_no_import_cycle() -> None:
    cycles = [component for component in strongly_connected(import_graph()) if len(component) > 1]
    assert cycles == []
