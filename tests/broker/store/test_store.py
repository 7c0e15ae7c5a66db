"""Putting and getting messages: file rolls, batches, filters, every status,
lookups, restart, flush modes, arrival notification."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
import trio

from pyrocket.broker.store import (
    BrokerBatch,
    BrokerMessage,
    BrokerRole,
    FlushDiskType,
    GetMessageStatus,
    MessageArrival,
    MessageStore,
    PutMessageStatus,
    TagsFilter,
    open_message_store,
)
from pyrocket.broker.store.files import DataFile
from pyrocket.protocol.message import (
    BLANK_MAGIC_CODE,
    Message,
    MessageSysFlag,
    decode_messages,
    decode_offset_message_id,
    encode_batch,
    java_properties,
    tags_hash_code,
)
from tests.broker.store.helpers import (
    BORN,
    SMALL_COMMIT_LOG,
    STORE,
    message,
    read_queue,
    small_config,
)

REPO = str(Path(__file__).resolve().parents[3])


async def _put_many(
    store: MessageStore, count: int, queues: int = 4, size: int = 700
) -> list[tuple[int, int, str]]:
    acked = []
    for number in range(count):
        queue_id = number % queues
        body = f"{number:06d}".encode() + b"." * size
        result = await store.put_message(message(queue_id=queue_id, body=body, keys=f"K{number}"))
        assert result.status is PutMessageStatus.PUT_OK
        assert result.append_result is not None
        acked.append((queue_id, result.append_result.logics_offset, result.append_result.msg_id))
    return acked


async def test_round_trip_across_file_rolls(tmp_path: Path) -> None:
    async with open_message_store(small_config(tmp_path)) as store:
        acked = await _put_many(store, 400)
        for queue_id in range(4):
            messages = await read_queue(store, "TopicTest", queue_id)
            assert [m.queue_offset for m in messages] == list(range(100))
            assert [int(m.body[:6]) for m in messages] == list(range(queue_id, 400, 4))
            assert all(m.topic == "TopicTest" and m.queue_id == queue_id for m in messages)
            assert all(
                m.tags == "TagA" and m.born_host == BORN and m.store_host == STORE for m in messages
            )
            ids = [a[2] for a in acked if a[0] == queue_id]
            assert [m.msg_id for m in messages] == ids
        assert store.get_max_offset_in_queue("TopicTest", 1) == 100
        assert store.queue_offset_table() == {("TopicTest", q): 100 for q in range(4)}
    commit_log = sorted((tmp_path / "commitlog").iterdir())
    assert len(commit_log) >= 4
    assert [int(p.name) for p in commit_log] == [
        n * SMALL_COMMIT_LOG for n in range(len(commit_log))
    ]
    assert all(len(p.name) == 20 and p.stat().st_size == SMALL_COMMIT_LOG for p in commit_log)
    for path in commit_log[:-1]:
        _assert_ends_with_blank(path.read_bytes())
    queue_files = sorted((tmp_path / "consumequeue" / "TopicTest" / "1").iterdir())
    assert [p.name for p in queue_files] == ["00000000000000000000", "00000000000000001280"]
    assert all(p.stat().st_size == 1280 for p in queue_files)


def _assert_ends_with_blank(data: bytes) -> None:
    position = 0
    while True:
        size = int.from_bytes(data[position : position + 4], "big")
        magic = int.from_bytes(data[position + 4 : position + 8], "big", signed=True)
        if magic == BLANK_MAGIC_CODE:
            assert position + size == len(data)
            assert size >= 8
            return
        decode_messages(data[position : position + size])
        position += size


async def test_stored_records_are_java_layout(tmp_path: Path) -> None:
    async with open_message_store(small_config(tmp_path)) as store:
        result = await store.put_message(
            message(body=b"payload", keys="K1", flag=3, reconsume_times=2, born_timestamp=1234)
        )
        assert result.append_result is not None
        record = store.select_one_message_by_offset(result.append_result.wrote_offset)
        assert record is not None
        stored = store.look_message_by_offset(result.append_result.wrote_offset)
        assert stored is not None
        assert (stored.body, stored.flag, stored.reconsume_times, stored.born_timestamp) == (
            b"payload",
            3,
            2,
            1234,
        )
        assert stored.properties == {"KEYS": "K1", "TAGS": "TagA"}
        assert stored.store_timestamp == result.append_result.store_timestamp
        assert decode_offset_message_id(result.append_result.msg_id) == (STORE, 0)
        assert store.select_one_message_by_offset(3) is None  # not a record boundary
        assert store.select_one_message_by_offset(10**6) is None
        assert store.look_message_by_offset(-1) is None


async def test_properties_string_is_stored_verbatim(tmp_path: Path) -> None:
    # What a producer sent, unusual entries included: the broker stores it as is.
    sent = "TAGS\x01T\x02odd\x01\x02KEYS\x01k\x02"
    async with open_message_store(small_config(tmp_path)) as store:
        msg = BrokerMessage.from_properties_string(
            "TopicTest", 0, b"b", sent, born_host=BORN, store_host=STORE
        )
        result = await store.put_message(msg)
        assert result.append_result is not None
        record = store.select_one_message_by_offset(result.append_result.wrote_offset)
        assert record is not None and record.endswith(sent.encode())
        got = await store.get_message("g", "TopicTest", 0, 0, 1, TagsFilter({tags_hash_code("T")}))
        assert got is not None and got.status is GetMessageStatus.FOUND


async def test_batches(tmp_path: Path) -> None:
    items = [
        Message(
            body=f"batch {n}".encode(),
            properties=java_properties([("KEYS", f"B{n}"), ("TAGS", "TagB")]),
        )
        for n in range(3)
    ]
    async with open_message_store(small_config(tmp_path)) as store:
        await store.put_message(message(queue_id=2))
        batch = BrokerBatch("TopicTest", 2, encode_batch(items), born_host=BORN, store_host=STORE)
        result = await store.put_messages(batch)
        assert result.status is PutMessageStatus.PUT_OK
        appended = result.append_result
        assert appended is not None
        assert (appended.logics_offset, appended.msg_num) == (1, 3)
        ids = appended.msg_id.split(",")
        assert len(ids) == 3
        messages = await read_queue(store, "TopicTest", 2)
        assert [m.msg_id for m in messages[1:]] == ids
        assert [(m.queue_offset, m.body, m.keys, m.tags) for m in messages[1:]] == [
            (1, b"batch 0", "B0", "TagB"),
            (2, b"batch 1", "B1", "TagB"),
            (3, b"batch 2", "B2", "TagB"),
        ]
        assert sum(m.store_size for m in messages[1:]) == appended.wrote_bytes
        bad = [
            BrokerBatch("TopicTest", 2, b"\0\0\0\x05garbage"),
            BrokerBatch("TopicTest", 2, encode_batch(items), properties={"DELAY": "2"}),
            BrokerBatch(
                "TopicTest",
                2,
                encode_batch(items),
                sys_flag=MessageSysFlag.TRANSACTION_PREPARED_TYPE,
            ),
            BrokerBatch("TopicTest", 2, encode_batch([Message(body=b"x" * 9000)] * 2)),
            BrokerBatch("TopicTest", 2, b""),
        ]
        for batch in bad:
            assert (await store.put_messages(batch)).status is PutMessageStatus.MESSAGE_ILLEGAL
        assert store.get_max_offset_in_queue("TopicTest", 2) == 4


async def test_tag_filtering(tmp_path: Path) -> None:
    async with open_message_store(small_config(tmp_path)) as store:
        for number in range(10):
            await store.put_message(
                message(body=bytes([number]), tags="TagA" if number % 3 == 0 else "TagB")
            )
        only_a = TagsFilter({tags_hash_code("TagA")})
        result = await store.get_message("g", "TopicTest", 0, 0, 32, only_a)
        assert result is not None and result.status is GetMessageStatus.FOUND
        assert [m.body[0] for m in decode_messages(result.body())] == [0, 3, 6, 9]
        assert result.next_begin_offset == 10
        none = await store.get_message(
            "g", "TopicTest", 0, 1, 32, TagsFilter({tags_hash_code("TagC")})
        )
        assert none is not None and none.status is GetMessageStatus.NO_MATCHED_MESSAGE
        assert none.next_begin_offset == 10 and none.messages == ()
        everything = await store.get_message("g", "TopicTest", 0, 0, 32, TagsFilter(None))
        assert everything is not None and everything.message_count == 10


async def test_every_get_status(tmp_path: Path) -> None:
    config = small_config(tmp_path, file_reserved_time=0, delete_when="04")
    async with open_message_store(config) as store:
        # No queue at all: Java answers from an empty queue (it never says NO_MATCHED_LOGIC_QUEUE).
        result = await store.get_message("g", "Nope", 0, 5, 32)
        assert result is not None
        assert (result.status, result.next_begin_offset, result.min_offset, result.max_offset) == (
            GetMessageStatus.NO_MESSAGE_IN_QUEUE,
            0,
            0,
            0,
        )
        await _put_many(store, 200, queues=1)
        found = await store.get_message("g", "TopicTest", 0, 10, 5)
        assert found is not None and found.status is GetMessageStatus.FOUND
        assert (found.next_begin_offset, found.message_count) == (15, 5)
        one = await store.get_message("g", "TopicTest", 0, 200, 5)
        assert one is not None and (one.status, one.next_begin_offset) == (
            GetMessageStatus.OFFSET_OVERFLOW_ONE,
            200,
        )
        badly = await store.get_message("g", "TopicTest", 0, 250, 5)
        assert badly is not None
        # min offset 0: Java sends the client back to 0.
        assert (badly.status, badly.next_begin_offset) == (
            GetMessageStatus.OFFSET_OVERFLOW_BADLY,
            0,
        )

        # A consume-queue file gone while offsets still point into it.
        queue = store.consume_queue("TopicTest", 0)
        assert queue is not None and len(queue.files) == 4
        gone = queue.files.files[1]
        queue.files.files.remove(gone)
        null = await store.get_message("g", "TopicTest", 0, gone.base // 20 + 6, 5)
        assert null is not None
        assert (null.status, null.next_begin_offset) == (
            GetMessageStatus.OFFSET_FOUND_NULL,
            gone.end // 20,
        )
        queue.files.files.insert(1, gone)

        # Delete the old commit-log files only (the consume queue not yet
        # corrected, as between Java's two cleanup services).
        store.execute_delete_files_manually()
        assert await store._cleaner.clean_commit_log() == 2
        first_kept = next(
            n
            for n in range(200)
            if store.get_commit_log_offset_in_queue("TopicTest", 0, n) >= store.min_phy_offset
        )
        assert first_kept > 64
        removing = await store.get_message("g", "TopicTest", 0, 0, 5)
        assert removing is not None
        # The whole first consume-queue file points at deleted data.
        assert (removing.status, removing.next_begin_offset) == (
            GetMessageStatus.MESSAGE_WAS_REMOVING,
            64,
        )
        # A pull starting a few entries before the kept data (in the same
        # consume-queue file) skips the deleted records and still brings
        # its five messages, as Java's scan does.
        start = max(first_kept - 3, first_kept - first_kept % 64)
        assert start < first_kept
        straddling = await store.get_message("g", "TopicTest", 0, start, 5)
        assert straddling is not None and straddling.status is GetMessageStatus.FOUND
        assert [m.queue_offset for m in decode_messages(straddling.body())] == list(
            range(first_kept, first_kept + 5)
        )
        assert straddling.next_begin_offset == first_kept + 5
        # Now the consume queue catches up: the old offsets are too small.
        await store._cleaner.clean_consume_queues()
        assert store.get_min_offset_in_queue("TopicTest", 0) == first_kept
        small = await store.get_message("g", "TopicTest", 0, 0, 5)
        assert small is not None
        assert (small.status, small.next_begin_offset, small.min_offset) == (
            GetMessageStatus.OFFSET_TOO_SMALL,
            first_kept,
            first_kept,
        )
        badly = await store.get_message("g", "TopicTest", 0, 250, 5)
        assert badly is not None and (badly.status, badly.next_begin_offset) == (
            GetMessageStatus.OFFSET_OVERFLOW_BADLY,
            200,
        )
        first = await store.get_message("g", "TopicTest", 0, first_kept, 5)
        assert first is not None and first.status is GetMessageStatus.FOUND
        assert decode_messages(first.body())[0].queue_offset == first_kept


async def test_transfer_limits_and_in_disk_reads(tmp_path: Path) -> None:
    config = small_config(tmp_path, max_transfer_bytes_on_message_in_memory=3000)
    async with open_message_store(config) as store:
        await _put_many(store, 40, queues=1, size=900)
        limited = await store.get_message("g", "TopicTest", 0, 0, 32)
        assert limited is not None and limited.message_count == 2  # a third would pass 3000 bytes
        assert not limited.suggest_pulling_from_slave
    # A machine with (almost) no memory: everything counts as on disk.
    async with open_message_store(config, total_physical_memory=100) as store:
        on_disk = await store.get_message("g", "TopicTest", 0, 0, 32)
        assert on_disk is not None and on_disk.status is GetMessageStatus.FOUND
        assert on_disk.suggest_pulling_from_slave
        assert on_disk.message_count == 8  # maxTransferCountOnMessageInDisk
        assert on_disk.buffer_total_size <= 65536
        assert [m.queue_offset for m in decode_messages(on_disk.body())] == list(
            range(on_disk.message_count)
        )


async def test_offsets_by_time_and_store_times(tmp_path: Path) -> None:
    clock = [1_700_000_000_000]

    def now() -> int:
        clock[0] += 1000
        return clock[0]

    async with open_message_store(small_config(tmp_path), now_ms=now) as store:
        stamps = []
        for number in range(10):
            result = await store.put_message(message(body=bytes([number])))
            assert result.append_result is not None
            stamps.append(result.append_result.store_timestamp)
        assert stamps == sorted(stamps) and len(set(stamps)) == 10
        for number, stamp in enumerate(stamps):
            assert store.get_offset_in_queue_by_time("TopicTest", 0, stamp) == number
            assert store.get_offset_in_queue_by_time("TopicTest", 0, stamp + 400) == number
            assert store.get_message_store_timestamp("TopicTest", 0, number) == stamp
        assert store.get_offset_in_queue_by_time("TopicTest", 0, stamps[0] - 10**6) == 0
        assert store.get_offset_in_queue_by_time("TopicTest", 0, stamps[-1] + 10**6) == 9
        assert store.get_offset_in_queue_by_time("Nope", 0, stamps[0]) == 0
        assert store.get_earliest_message_time("TopicTest", 0) == stamps[0]
        assert store.get_earliest_message_time("Nope", 0) == -1
        assert store.get_earliest_message_time_in_store() == stamps[0]
        assert store.get_message_store_timestamp("TopicTest", 0, 99) == -1
        assert store.get_commit_log_offset_in_queue("TopicTest", 0, 1) > 0
        assert store.min_phy_offset == 0 and store.max_phy_offset > 0


async def test_restart_keeps_everything(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    async with open_message_store(config) as store:
        acked = await _put_many(store, 150, queues=3)
        before = {q: await read_queue(store, "TopicTest", q) for q in range(3)}
        assert (tmp_path / "abort").exists()
    assert not (tmp_path / "abort").exists()
    checkpoint = (tmp_path / "checkpoint").read_bytes()
    assert len(checkpoint) == 4096
    physic = int.from_bytes(checkpoint[0:8], "big")
    logics = int.from_bytes(checkpoint[8:16], "big")
    assert physic == logics == max(m.store_timestamp for ms in before.values() for m in ms)
    async with open_message_store(config) as store:
        assert store.last_exit_ok is True
        assert store.queue_offset_table() == {("TopicTest", q): 50 for q in range(3)}
        for queue_id in range(3):
            assert await read_queue(store, "TopicTest", queue_id) == before[queue_id]
        result = await store.put_message(message(queue_id=1))
        assert result.append_result is not None and result.append_result.logics_offset == 50
        assert result.append_result.wrote_offset > max(
            decode_offset_message_id(a[2])[1] for a in acked
        )


async def test_put_refusals(tmp_path: Path) -> None:
    store = MessageStore(small_config(tmp_path))
    assert (await store.put_message(message())).status is PutMessageStatus.SERVICE_NOT_AVAILABLE
    assert await store.get_message("g", "TopicTest", 0, 0, 1) is None
    async with open_message_store(small_config(tmp_path)) as store:
        illegal = [
            message(topic="T" * 128),
            message(topic="Ω" * 64),  # 128 bytes of UTF-8
            message(topic=".."),
            message(body=b"x" * 17000),
            message(extra={"DELAY": "soon"}),
            message(extra={"big": "v" * 32767}),
        ]
        for bad in illegal:
            assert (await store.put_message(bad)).status is PutMessageStatus.MESSAGE_ILLEGAL, (
                bad.topic
            )
        assert store.max_phy_offset == 0


async def test_roles(tmp_path: Path) -> None:
    async with open_message_store(
        small_config(tmp_path / "s", broker_role=BrokerRole.SLAVE)
    ) as store:
        assert (await store.put_message(message())).status is PutMessageStatus.SERVICE_NOT_AVAILABLE
    async with open_message_store(
        small_config(tmp_path / "m", broker_role=BrokerRole.SYNC_MASTER)
    ) as store:
        waited = await store.put_message(message())
        assert waited.status is PutMessageStatus.SLAVE_NOT_AVAILABLE and waited.is_ok
        no_wait = await store.put_message(message(extra={"WAIT": "false"}))
        assert no_wait.status is PutMessageStatus.PUT_OK


async def test_transaction_prepared_messages_are_not_indexed(tmp_path: Path) -> None:
    async with open_message_store(small_config(tmp_path)) as store:
        await store.put_message(message())
        prepared = await store.put_message(
            message(sys_flag=MessageSysFlag.TRANSACTION_PREPARED_TYPE)
        )
        assert prepared.append_result is not None and prepared.append_result.logics_offset == 0
        assert store.get_max_offset_in_queue("TopicTest", 0) == 1
        committed = await store.put_message(
            message(sys_flag=MessageSysFlag.TRANSACTION_COMMIT_TYPE)
        )
        assert committed.append_result is not None and committed.append_result.logics_offset == 1


async def test_sync_flush_group_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    syncs: list[int] = []
    original = DataFile.sync

    def counting_sync(self: DataFile) -> None:
        syncs.append(self.wrote)
        original(self)

    monkeypatch.setattr(DataFile, "sync", counting_sync)
    config = small_config(tmp_path, flush_disk_type=FlushDiskType.SYNC_FLUSH)
    async with open_message_store(config) as store:
        ends: list[int] = []

        async def putter(queue_id: int) -> None:
            for _ in range(20):
                result = await store.put_message(message(queue_id=queue_id, body=b"x" * 100))
                assert result.status is PutMessageStatus.PUT_OK
                assert result.append_result is not None
                end = result.append_result.wrote_offset + result.append_result.wrote_bytes
                assert store.flushed_phy_offset >= end
                ends.append(end)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for queue_id in range(8):
                    nursery.start_soon(putter, queue_id)
        assert len(ends) == 160
        # Concurrent puts shared fsyncs.
        assert len(syncs) < 160
        before = len(syncs)
        result = await store.put_message(message(extra={"WAIT": "false"}))
        assert result.status is PutMessageStatus.PUT_OK
        assert len(syncs) == before  # returned without waiting for an fsync


async def test_sync_flush_answers_only_after_the_fsync_covering_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = DataFile.sync
    gate = threading.Event()
    synced: list[int] = []  # commit-log ends made durable, in order

    def held_sync(self: DataFile) -> None:
        mark = self.base + self.wrote
        assert gate.wait(10)
        original(self)
        if self.path.parent.name == "commitlog":
            synced.append(mark)

    config = small_config(tmp_path, flush_disk_type=FlushDiskType.SYNC_FLUSH)
    async with open_message_store(config) as store:
        monkeypatch.setattr(DataFile, "sync", held_sync)
        returned: list[tuple[int, int]] = []  # (end, durable end seen at return)

        async def putter(queue_id: int) -> None:
            for _ in range(5):
                result = await store.put_message(message(queue_id=queue_id, body=b"s" * 200))
                assert result.status is PutMessageStatus.PUT_OK
                assert result.append_result is not None
                end = result.append_result.wrote_offset + result.append_result.wrote_bytes
                returned.append((end, max(synced, default=0)))

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for queue_id in range(4):
                    nursery.start_soon(putter, queue_id)
                await trio.sleep(0.2)
                # Appended, but the fsync is held: nobody has its answer.
                assert store.max_phy_offset > 0
                assert returned == []
                gate.set()
        assert len(returned) == 20
        # Every put came back after an fsync that covered its bytes, and
        # fsyncs were shared (fewer than puts).
        assert all(end <= durable for end, durable in returned), returned
        assert len(synced) < 20
        monkeypatch.undo()


async def test_sync_flush_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = small_config(tmp_path, flush_disk_type=FlushDiskType.SYNC_FLUSH, sync_flush_timeout=50)
    async with open_message_store(config) as store:
        monkeypatch.setattr(DataFile, "sync", lambda self: __import__("time").sleep(0.3))
        with trio.fail_after(5):
            result = await store.put_message(message())
        assert result.status is PutMessageStatus.FLUSH_DISK_TIMEOUT
        assert result.is_ok  # stored, just not confirmed on disk in time
        monkeypatch.undo()


async def test_async_flush_bounds_the_window(tmp_path: Path) -> None:
    config = small_config(tmp_path, flush_interval_commit_log=50)
    async with open_message_store(config) as store:
        result = await store.put_message(message())
        assert result.status is PutMessageStatus.PUT_OK
        assert store.flushed_phy_offset == 0
        with trio.fail_after(2):
            # Nothing signals a flush; poll the offset the flush task moves.
            while store.flushed_phy_offset < store.max_phy_offset:  # noqa: ASYNC110
                await trio.sleep(0.01)


async def test_arrival_listener_and_long_poll_value(tmp_path: Path) -> None:
    arrivals: list[MessageArrival] = []
    async with open_message_store(small_config(tmp_path)) as store:
        store.add_arrival_listener(arrivals.append)
        woke: list[int] = []

        async def long_poll() -> None:
            value = store.queue_max_offset("TopicTest", 3)
            woke.append(await value.wait_value(lambda v: v > 1))

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(long_poll)
                await trio.testing.wait_all_tasks_blocked()
                await store.put_message(message(queue_id=3, tags="TagZ"))
                await trio.testing.wait_all_tasks_blocked()
                assert woke == []
                await store.put_message(message(queue_id=3, tags="TagZ"))
        assert woke == [2]
        assert [(a.topic, a.queue_id, a.logic_offset, a.tags_code) for a in arrivals] == [
            ("TopicTest", 3, 1, tags_hash_code("TagZ")),
            ("TopicTest", 3, 2, tags_hash_code("TagZ")),
        ]
        assert arrivals[0].properties["TAGS"] == "TagZ"
        store.remove_arrival_listener(arrivals.append)
        await store.put_message(message(queue_id=3))
        assert len(arrivals) == 2


async def test_second_process_cannot_open_a_running_store(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    async with open_message_store(config):
        script = (
            "import sys, trio\n"
            "from pyrocket.broker.store import MessageStore, MessageStoreConfig, StoreError\n"
            f"store = MessageStore(MessageStoreConfig(store_path_root_dir={str(tmp_path)!r}))\n"
            "try:\n"
            "    trio.run(store.run)\n"
            "except StoreError as exc:\n"
            "    print(exc); sys.exit(3)\n"
        )
        with trio.fail_after(30):
            done = await trio.run_process(
                [sys.executable, "-c", script],
                capture_stdout=True,
                check=False,
                env={**os.environ, "PYTHONPATH": REPO},
            )
        assert done.returncode == 3
        assert b"in use by another process" in done.stdout


async def test_a_pull_reads_adjacent_records_in_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[int, int]] = []
    original, original_in_loop = DataFile.read, DataFile.read_in_loop

    def counting_read(self: DataFile, position: int, length: int) -> bytes:
        reads.append((self.base + position, length))
        return original(self, position, length)

    def counting_read_in_loop(self: DataFile, position: int, length: int) -> bytes:
        reads.append((self.base + position, length))
        return original_in_loop(self, position, length)

    async with open_message_store(small_config(tmp_path)) as store:
        ends = []
        for number in range(40):
            # Queue 0 gets 0..30 back to back, then every other message.
            queue_id = 0 if number < 30 or number % 2 == 0 else 1
            result = await store.put_message(message(queue_id=queue_id, body=b"%03d" % number))
            assert result.append_result is not None
            ends.append(result.append_result.wrote_offset + result.append_result.wrote_bytes)
        plain = await store.get_message("group", "TopicTest", 0, 0, 32)
        monkeypatch.setattr(DataFile, "read", counting_read)
        monkeypatch.setattr(DataFile, "read_in_loop", counting_read_in_loop)
        # Runs are the entry-by-entry scan's: the plain read (each record
        # sliced from the mapping on its own) steps aside.
        monkeypatch.setattr(store, "_collect_mapped", lambda *args: None)
        got = await store.get_message("group", "TopicTest", 0, 0, 32)
        assert got is not None and got.status is GetMessageStatus.FOUND
        monkeypatch.undo()
        assert got == plain
        bodies = [m.body for m in decode_messages(got.body())]
        wanted = [b"%03d" % n for n in range(40) if n < 30 or n % 2 == 0][:32]
        assert bodies == wanted
        # Each record is exactly what the commit log holds at its offset.
        for record, decoded in zip(got.messages, decode_messages(got.body()), strict=True):
            assert record == store._commit_log.read(decoded.commit_log_offset, len(record))
        # The consume queue's entries, then one read for the 31 adjacent
        # records (0..30), one for the record after (32).
        assert reads[1:] == [(0, ends[30]), (ends[31], ends[32] - ends[31])], reads


async def test_an_ipv6_flag_for_an_ipv4_host_is_refused_and_stores_nothing(
    tmp_path: Path,
) -> None:
    """The record's host fields are laid out by the flags: a flag that says
    IPv6 for an IPv4 host would make a record that cannot be read back."""
    async with open_message_store(small_config(tmp_path)) as store:
        for bit in (MessageSysFlag.BORNHOST_V6_FLAG, MessageSysFlag.STOREHOSTADDRESS_V6_FLAG):
            refused = await store.put_message(message(sys_flag=bit))
            assert refused.status is PutMessageStatus.MESSAGE_ILLEGAL
        assert store._commit_log.max_offset == 0
        stored = await store.put_message(message())
        assert stored.status is PutMessageStatus.PUT_OK
        assert [m.body for m in await read_queue(store, "TopicTest", 0)] == [b"hello"]
