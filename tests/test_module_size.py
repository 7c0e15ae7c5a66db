"""No module of pyrocket grows past about 600 lines.

A module that long usually holds more than one responsibility: split it.
"""

from __future__ import annotations

from pathlib import Path

import pyrocket

MAX_LINES = 600

PACKAGE = Path(pyrocket.__file__).resolve().parent


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _modules() -> dict[str, int]:
    return {
        path.relative_to(PACKAGE).as_posix(): _line_count(path)
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_no_module_is_over_the_limit() -> None:
    over = {name: lines for name, lines in _modules().items() if lines > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}; split them"


def test_the_limit_sees_every_module() -> None:
    # The walk must reach into subpackages, or the limit checks nothing there.
    modules = _modules()
    assert "protocol/message/record.py" in modules
    assert "namesrv/routeinfo.py" in modules
    assert all(lines > 0 for name, lines in modules.items() if not name.endswith("__init__.py"))
