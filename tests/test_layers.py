"""The layers of DESIGN.md, checked on the source: every import (at any depth
of a module, ``TYPE_CHECKING`` blocks included) of every module under
``pyrocket/`` is resolved to the pyrocket package it names, and each layer
may import only the layers above it.

protocol (sans-I/O) imports nothing of pyrocket but ``pyrocket.errors``;
remoting only protocol; the NameServer protocol and remoting; the broker
those and the NameServer; the clients protocol and remoting (not the servers
they talk to); the command line anything. The top-level helper modules
(``pyrocket.errors``, ``pyrocket.persist``, ...) are open to every layer but
protocol, and import no server, client or command-line package themselves.
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
    "remoting": frozenset({"protocol"}),
    "namesrv": frozenset({"protocol", "remoting"}),
    "broker": frozenset({"protocol", "remoting", "namesrv"}),
    "client": frozenset({"protocol", "remoting"}),
    "cli": frozenset({"protocol", "remoting", "namesrv", "broker", "client"}),
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
    if layer == "protocol":
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
