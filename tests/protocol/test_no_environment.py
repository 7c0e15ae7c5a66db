"""The protocol layer is sans-I/O and reads no configuration of its own: no
module under ``pyrocket/protocol`` touches the process environment (the
serialize type is read where configuration is loaded)."""

from __future__ import annotations

import ast
from pathlib import Path

PROTOCOL = Path(__file__).resolve().parents[2] / "pyrocket" / "protocol"


def environment_reads(path: Path) -> list[int]:
    """Lines of ``path`` that name ``os.environ``, ``os.getenv`` or ``os.putenv``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ("environ", "getenv", "putenv", "environb")
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    ] + [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module == "os"
        and any(alias.name in ("environ", "getenv", "environb") for alias in node.names)
    ]


def test_the_check_sees_an_environment_read(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom os import getenv\nx = os.environ.get('A')\n")
    assert environment_reads(sample) == [3, 2]


def test_no_protocol_module_reads_the_environment() -> None:
    modules = sorted(PROTOCOL.rglob("*.py"))
    assert modules
    found = {
        str(path.relative_to(PROTOCOL)): lines
        for path in modules
        if (lines := environment_reads(path))
    }
    assert found == {}
