"""Atomic config files with a .bak, loads that refuse damaged files, and the
coalescing writer that serves a table's changes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import trio
import trio.testing

from pyrocket.errors import ConfigError
from pyrocket.persist import (
    CoalescingWriter,
    PersistError,
    file_writer,
    load_with_backup,
    write_atomically,
    write_atomically_async,
)

log = logging.getLogger("tests.persist")


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


class Table:
    """A dict table with a file writer, counting the writes that reach disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, int] = {}
        self.encodings = 0
        self.writer = file_writer(path, self.encode, log)

    def encode(self) -> str:
        self.encodings += 1
        return json.dumps(self.entries)

    def on_disk(self) -> dict[str, int]:
        loaded: dict[str, int] = json.loads(self.path.read_text())
        return loaded


async def change_and_check(table: Table, key: str, value: int, seen: list[str]) -> None:
    table.entries[key] = value
    await table.writer.commit()
    # On return the file already holds this change.
    assert table.on_disk()[key] == value
    seen.append(key)


@pytest.mark.parametrize("with_writer_task", [True, False])
async def test_a_flood_of_commits_shares_few_writes_and_each_sees_its_change(
    tmp_path: Path, with_writer_task: bool
) -> None:
    table = Table(tmp_path / "table.json")
    seen: list[str] = []
    count = 500
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            if with_writer_task:
                await nursery.start(table.writer.run)
            async with trio.open_nursery() as changes:
                for i in range(count):
                    changes.start_soon(change_and_check, table, f"k{i}", i, seen)
            nursery.cancel_scope.cancel()
    assert sorted(seen) == sorted(f"k{i}" for i in range(count))
    assert table.on_disk() == {f"k{i}": i for i in range(count)}
    # One encoding per round, and far fewer rounds than changes.
    assert table.encodings == table.writer.rounds
    assert 1 <= table.writer.rounds <= count // 10
    assert not table.writer.dirty


async def test_changes_made_during_a_write_get_the_next_round(tmp_path: Path) -> None:
    started = trio.Event()
    release = trio.Event()
    snapshots: list[int] = []
    state = {"value": 0}

    async def write_round() -> None:
        snapshots.append(state["value"])
        started.set()
        await release.wait()

    writer = CoalescingWriter("slow", write_round, log)
    done: list[str] = []

    async def wait(generation: int, name: str) -> None:
        await writer.wait(generation)
        done.append(name)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            state["value"] = 1
            nursery.start_soon(wait, writer.request(), "first")
            await started.wait()
            state["value"] = 2
            nursery.start_soon(wait, writer.request(), "second")
            state["value"] = 3
            nursery.start_soon(wait, writer.request(), "third")
            await trio.testing.wait_all_tasks_blocked()
            assert done == []  # the first waits for its round, the others for the next
            release.set()
            await writer.finished.wait_value(3)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    # Round one saw the first change only; round two the last state.
    assert snapshots == [1, 3]
    assert done[0] == "first"
    assert sorted(done[1:]) == ["second", "third"]
    assert writer.rounds == 2


async def test_an_idle_writer_does_not_write(tmp_path: Path) -> None:
    table = Table(tmp_path / "idle.json")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(table.writer.run)
            await trio.sleep(0.05)
            await table.writer.flush()  # nothing changed: nothing to write
            nursery.cancel_scope.cancel()
    assert table.writer.rounds == 0
    assert not table.path.exists()


async def test_a_failed_write_fails_its_waiters_and_the_next_change_retries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the table's directory should be")
    table = Table(blocker / "table.json")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(table.writer.run)
            table.entries["a"] = 1
            with pytest.raises(PersistError, match=r"table\.json: .*Errno"):
                await table.writer.commit()
            assert table.writer.dirty
            assert any("the next change retries" in r.getMessage() for r in caplog.records)
            blocker.unlink()
            table.entries["b"] = 2
            await table.writer.commit()
            assert table.on_disk() == {"a": 1, "b": 2}
            assert not table.writer.dirty
            nursery.cancel_scope.cancel()


async def test_waiters_fall_back_to_writing_when_the_writer_task_stops(tmp_path: Path) -> None:
    table = Table(tmp_path / "stop.json")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()

            async def writer_task() -> None:
                with scope:
                    await table.writer.run()

            nursery.start_soon(writer_task)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
            table.entries["late"] = 1
            await table.writer.commit()
    assert table.on_disk() == {"late": 1}


async def test_only_one_writer_task_per_table(tmp_path: Path) -> None:
    table = Table(tmp_path / "one.json")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(table.writer.run)
            with pytest.raises(RuntimeError, match="already running"):
                await table.writer.run()
            nursery.cancel_scope.cancel()
