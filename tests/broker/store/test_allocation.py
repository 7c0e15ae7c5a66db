"""Files are created ahead of need in worker threads: a running store never
creates a commit-log or consume-queue file, nor fsyncs, in the trio thread;
puts keep their arrival order while one waits for a file, and nothing is
lost across rolls."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from pyrocket.broker.store import (
    BrokerBatch,
    FlushDiskType,
    MessageStore,
    PutMessageStatus,
    open_message_store,
)
from pyrocket.broker.store.files import DataFile
from pyrocket.protocol.message import Message, decode_offset_message_id, encode_batch
from tests.broker.store.helpers import BORN, STORE, message, read_queue, small_config


class CreationLog:
    """Wraps ``DataFile.create``: records the thread of each creation and
    can hold creations up until released."""

    def __init__(self) -> None:
        self.threads: list[int] = []
        self.paths: list[Path] = []
        self.gate = threading.Event()
        self.gate.set()

    def wrap(self, original: Callable[[Path, int, int], DataFile]) -> Callable[..., DataFile]:
        def create(path: Path, base: int, size: int) -> DataFile:
            self.threads.append(threading.get_ident())
            self.paths.append(path)
            assert self.gate.wait(10)
            return original(path, base, size)

        return create


@pytest.fixture
def creations(monkeypatch: pytest.MonkeyPatch) -> Iterator[CreationLog]:
    log = CreationLog()
    monkeypatch.setattr(DataFile, "create", staticmethod(log.wrap(DataFile.create)))
    yield log
    log.gate.set()


def _in_worker_threads(log: CreationLog) -> None:
    trio_thread = threading.get_ident()
    assert log.threads, "no file was created"
    assert trio_thread not in log.threads, [
        path.name
        for path, ident in zip(log.paths, log.threads, strict=True)
        if ident == trio_thread
    ]


async def test_rolls_keep_order_and_content_and_create_files_in_threads(
    tmp_path: Path, creations: CreationLog
) -> None:
    queues = 6
    per_putter = 150
    acked: dict[int, list[tuple[int, bytes]]] = {q: [] for q in range(queues)}

    async def putter(queue_id: int, store: MessageStore) -> None:
        for number in range(per_putter):
            body = b"%d-%05d." % (queue_id, number) + b"x" * (300 + 37 * (number % 11))
            result = await store.put_message(message(queue_id=queue_id, body=body))
            assert result.status is PutMessageStatus.PUT_OK
            assert result.append_result is not None
            acked[queue_id].append((result.append_result.logics_offset, body))

    async with open_message_store(small_config(tmp_path)) as store:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for queue_id in range(queues):
                    nursery.start_soon(putter, queue_id, store)
            # Several commit-log and consume-queue files each.
            assert store.max_phy_offset > 5 * store.config.mapped_file_size_commit_log
            for queue_id in range(queues):
                offsets = [offset for offset, _ in acked[queue_id]]
                assert offsets == list(range(per_putter))
                stored = await read_queue(store, "TopicTest", queue_id)
                assert [m.body for m in stored] == [body for _, body in acked[queue_id]]
                assert [m.queue_offset for m in stored] == offsets
    _in_worker_threads(creations)
    # Shut down cleanly: no file made ahead of need is left behind.
    async with open_message_store(small_config(tmp_path)) as store:
        for queue_id in range(queues):
            stored = await read_queue(store, "TopicTest", queue_id)
            assert [m.body for m in stored] == [body for _, body in acked[queue_id]]


async def test_puts_wait_in_arrival_order_behind_one_waiting_for_a_file(
    tmp_path: Path, creations: CreationLog
) -> None:
    config = small_config(tmp_path)
    file_size = config.mapped_file_size_commit_log
    async with open_message_store(config) as store:
        with trio.fail_after(30):
            # Fill the first file to just short of its end, over two queues.
            number = 0
            while store.max_phy_offset < file_size - 3000:
                result = await store.put_message(message(queue_id=number % 2, body=b"." * 1000))
                assert result.status is PutMessageStatus.PUT_OK
                number += 1
            while store._commit_log.files.creating:  # noqa: ASYNC110
                await trio.sleep(0.01)
            # Hold the creation of every further file, and throw away the
            # next commit-log file made ahead of need.
            creations.gate.clear()
            spares = store._commit_log.files.spares
            for spare in spares.values():
                spare.destroy()
            spares.clear()
            order: list[tuple[str, int]] = []

            async def put(name: str, queue_id: int, size: int) -> None:
                result = await store.put_message(message(queue_id=queue_id, body=b"b" * size))
                assert result.status is PutMessageStatus.PUT_OK
                assert result.append_result is not None
                order.append((name, result.append_result.wrote_offset))

            async with trio.open_nursery() as nursery:
                # The first does not fit: it waits for the next file.
                nursery.start_soon(put, "first", 0, 4000)
                await trio.testing.wait_all_tasks_blocked()
                # These would fit in the current file; they must not overtake.
                nursery.start_soon(put, "second", 1, 10)
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(put, "third", 0, 10)
                await trio.testing.wait_all_tasks_blocked()
                assert order == []
                creations.gate.set()
            names = [name for name, _ in sorted(order, key=lambda item: item[1])]
            assert names == ["first", "second", "third"]
            assert min(offset for _, offset in order) == file_size
    _in_worker_threads(creations)


async def _block_next_commit_log_file(store: MessageStore, creations: CreationLog) -> int:
    """Fill the first commit-log file to near its end, then hold every
    further file creation (the next one made ahead of need thrown away);
    returns the file size."""
    file_size = store.config.mapped_file_size_commit_log
    number = 0
    while store.max_phy_offset < file_size - 3000:
        result = await store.put_message(message(queue_id=number % 2, body=b"." * 1000))
        assert result.status is PutMessageStatus.PUT_OK
        number += 1
    while store._commit_log.files.creating:  # noqa: ASYNC110
        await trio.sleep(0.01)
    creations.gate.clear()
    spares = store._commit_log.files.spares
    for spare in spares.values():
        spare.destroy()
    spares.clear()
    return file_size


async def test_queued_puts_are_appended_in_one_sweep_once_the_file_exists(
    tmp_path: Path, creations: CreationLog
) -> None:
    async with open_message_store(small_config(tmp_path)) as store:
        with trio.fail_after(30):
            file_size = await _block_next_commit_log_file(store, creations)
            ends: dict[str, int] = {}
            seen_at_first: list[int] = []

            async def put(name: str, queue_id: int, size: int) -> None:
                result = await store.put_message(message(queue_id=queue_id, body=b"b" * size))
                assert result.status is PutMessageStatus.PUT_OK
                assert result.append_result is not None
                appended = result.append_result
                ends[name] = appended.wrote_offset + appended.wrote_bytes
                if name == "first":
                    seen_at_first.append(store.max_phy_offset)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(put, "first", 0, 4000)
                await trio.testing.wait_all_tasks_blocked()
                for number in range(5):
                    nursery.start_soon(put, f"queued{number}", number % 2, 10)
                    await trio.testing.wait_all_tasks_blocked()
                assert len(store._append_backlog) == 6
                creations.gate.set()
            # When the first put came back, every queued one was already in
            # the commit log: the backlog was appended without task switches.
            assert seen_at_first == [max(ends.values())]
            assert sorted(ends, key=ends.__getitem__) == ["first"] + [
                f"queued{n}" for n in range(5)
            ]
            assert min(ends.values()) > file_size
            assert not store._append_backlog
            # The next put appends at once (no waiting on anything).
            before = store.max_phy_offset
            result = await store.put_message(message(body=b"after"))
            assert result.append_result is not None
            assert result.append_result.wrote_offset == before


async def test_cancelled_queued_puts_store_nothing_and_hand_over_the_wait(
    tmp_path: Path, creations: CreationLog
) -> None:
    async with open_message_store(small_config(tmp_path)) as store:
        with trio.fail_after(30):
            file_size = await _block_next_commit_log_file(store, creations)
            stored: dict[str, int] = {}

            async def put(name: str, size: int) -> None:
                result = await store.put_message(message(body=name.encode() * size))
                assert result.status is PutMessageStatus.PUT_OK
                assert result.append_result is not None
                stored[name] = result.append_result.wrote_offset

            async with trio.open_nursery() as nursery:
                # Someone else is making the file: the put waiting for it can
                # be cancelled (a creation of its own in a thread cannot).
                nursery.start_soon(store._commit_log.files.prepare_spare, file_size)
                await trio.testing.wait_all_tasks_blocked()
                scopes: dict[str, trio.CancelScope] = {}
                for name, size in (("a", 4000), ("b", 5), ("c", 5), ("d", 5)):
                    scope = scopes[name] = trio.CancelScope()

                    async def run(
                        name: str = name, size: int = size, scope: trio.CancelScope = scope
                    ) -> None:
                        with scope:
                            await put(name, size)

                    nursery.start_soon(run)
                    await trio.testing.wait_all_tasks_blocked()
                # "a" waits for the file, "b" behind it; cancel both: "c"
                # takes over, and it and "d" fit in the current file.
                scopes["b"].cancel()
                await trio.testing.wait_all_tasks_blocked()
                assert stored == {}
                assert len(store._append_backlog) == 4
                scopes["a"].cancel()
                await trio.testing.wait_all_tasks_blocked()
                assert sorted(stored, key=stored.__getitem__) == ["c", "d"]
                assert stored["d"] < file_size
                assert not store._append_backlog
                creations.gate.set()
            found = await read_queue(store, "TopicTest", 0)
            bodies = [m.body for m in found]
            assert b"c" * 5 in bodies and b"d" * 5 in bodies
            assert b"a" * 4000 not in bodies and b"b" * 5 not in bodies


async def test_a_batch_reaching_into_new_queue_files_waits_for_them(
    tmp_path: Path, creations: CreationLog
) -> None:
    # Eight entries per consume-queue file; a batch of 20 spans three files.
    config = small_config(tmp_path, mapped_file_size_consume_queue=20 * 8)
    async with open_message_store(config) as store:
        for round_number in range(3):
            items = [Message("TopicTest", b"%d-%d" % (round_number, n)) for n in range(20)]
            batch = BrokerBatch(
                "TopicTest", 0, encode_batch(items), born_host=BORN, store_host=STORE
            )
            result = await store.put_messages(batch)
            assert result.status is PutMessageStatus.PUT_OK
        stored = await read_queue(store, "TopicTest", 0)
        assert [m.body for m in stored] == [b"%d-%d" % (r, n) for r in range(3) for n in range(20)]
        assert [m.queue_offset for m in stored] == list(range(60))
    _in_worker_threads(creations)


async def test_event_loop_keeps_ticking_while_large_files_roll(
    tmp_path: Path, creations: CreationLog
) -> None:
    file_size = 64 * 1024 * 1024
    config = small_config(
        tmp_path,
        mapped_file_size_commit_log=file_size,
        max_message_size=4 * 1024 * 1024,
        flush_disk_type=FlushDiskType.ASYNC_FLUSH,
    )
    body = b"z" * (256 * 1024)
    worst_gap = 0.0
    done = trio.Event()

    async def ticker() -> None:
        nonlocal worst_gap
        last = time.perf_counter()
        while not done.is_set():
            await trio.sleep(0.001)
            now = time.perf_counter()
            worst_gap = max(worst_gap, now - last)
            last = now

    async with open_message_store(config) as store:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                offsets = []
                while store.max_phy_offset < 2 * file_size + len(body):
                    result = await store.put_message(message(body=body))
                    assert result.status is PutMessageStatus.PUT_OK
                    assert result.append_result is not None
                    offsets.append(decode_offset_message_id(result.append_result.msg_id)[1])
                done.set()
            assert offsets == sorted(offsets)
            assert {offset // file_size for offset in offsets} == {0, 1, 2}
    # Each 256 KiB pwrite runs in the trio thread too: a figure, not a bound.
    print(f"longest event-loop gap while rolling 64 MiB files: {worst_gap * 1000:.1f} ms")
    _in_worker_threads(creations)
    assert "commitlog" in {path.parent.name for path in creations.paths}


async def test_a_destroyed_queue_gets_no_file_made_after(tmp_path: Path) -> None:
    async with open_message_store(small_config(tmp_path)) as store:
        for number in range(40):  # past half of the first consume-queue file
            result = await store.put_message(message(topic="Gone", body=b"%d" % number))
            assert result.status is PutMessageStatus.PUT_OK
        store.clean_unused_topics(["TopicTest"])
        await trio.sleep(0.2)  # any creation in flight has finished
        assert not (tmp_path / "consumequeue" / "Gone" / "0").exists()
        assert store.get_max_offset_in_queue("Gone", 0) == 0


async def test_fsyncs_run_in_worker_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    for name in ("fsync", "fdatasync"):
        original = getattr(os, name)

        def synced(fd: int, original: Callable[[int], None] = original) -> None:
            threads.append(threading.get_ident())
            original(fd)

        monkeypatch.setattr(os, name, synced)
    config = small_config(tmp_path, flush_disk_type=FlushDiskType.SYNC_FLUSH)
    async with open_message_store(config) as store:
        for number in range(300):  # rolls files; every put waits for its fsync
            result = await store.put_message(message(queue_id=number % 3, body=b"." * 600))
            assert result.status is PutMessageStatus.PUT_OK
        await store.flush()
    assert threads
    assert threading.get_ident() not in threads
