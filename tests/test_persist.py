"""Atomic config files with a .bak, and loads that refuse damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyrocket.errors import ConfigError
from pyrocket.persist import load_with_backup, write_atomically, write_atomically_async


def test_write_keeps_the_previous_version_as_bak(tmp_path: Path) -> None:
    target = tmp_path / "config" / "topics.json"
    write_atomically(target, '{"v":1}')
    assert target.read_text() == '{"v":1}'
    assert not (tmp_path / "config" / "topics.json.bak").exists()
    write_atomically(target, b'{"v":2}')
    assert target.read_text() == '{"v":2}'
    assert (tmp_path / "config" / "topics.json.bak").read_text() == '{"v":1}'
    assert sorted(p.name for p in target.parent.iterdir()) == ["topics.json", "topics.json.bak"]
    assert load_with_backup(target, json.loads) == {"v": 2}


def test_missing_or_empty_file_falls_back_to_bak(tmp_path: Path) -> None:
    target = tmp_path / "offsets.json"
    assert load_with_backup(target, json.loads) is None
    (tmp_path / "offsets.json.bak").write_text('{"v":1}')
    assert load_with_backup(target, json.loads) == {"v": 1}
    target.write_text("  \n")
    assert load_with_backup(target, json.loads) == {"v": 1}


def test_a_corrupt_file_is_reported_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "offsets.json"
    write_atomically(target, '{"v":1}')
    write_atomically(target, '{"v":2}')
    target.write_text('{"v":')
    with pytest.raises(ConfigError, match=r"offsets\.json: cannot be parsed .*offsets\.json\.bak"):
        load_with_backup(target, json.loads)
    assert target.read_text() == '{"v":'
    target.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_with_backup(target, json.loads)


def test_a_corrupt_bak_is_reported_by_its_name(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    (tmp_path / "x.json.bak").write_text("nope")
    with pytest.raises(ConfigError, match=r"x\.json\.bak: cannot be parsed"):
        load_with_backup(target, json.loads)


async def test_async_write(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    await write_atomically_async(target, "[1]")
    assert load_with_backup(target, json.loads) == [1]
