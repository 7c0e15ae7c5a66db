"""Crash recovery: SIGKILL mid-storm under SYNC_FLUSH, torn tails, consume
queues behind or ahead of the commit log."""

from __future__ import annotations

import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrocket.broker.store import (
    MessageStoreConfig,
    PutMessageStatus,
    open_message_store,
)
from pyrocket.broker.store.checkpoint import StoreCheckpoint
from pyrocket.broker.store.commitlog import BLANK, INVALID, DispatchRequest, check_record
from pyrocket.protocol.message import (
    HostPort,
    MessageExt,
    MessageSysFlag,
    decode_offset_message_id,
    encode_message,
    java_crc32,
)
from tests.broker.store.crash_writer import QUEUES
from tests.broker.store.helpers import (
    SMALL_COMMIT_LOG,
    SMALL_CONSUME_QUEUE,
    message,
    read_queue,
    small_config,
)

REPO = Path(__file__).resolve().parents[3]


async def _run_writer_until_killed(
    root: Path, round_id: int, acks_wanted: int
) -> list[tuple[int, int, str, str]]:
    """Start the writer, let it acknowledge about ``acks_wanted`` messages,
    SIGKILL it and return every complete acknowledgement line it printed."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.broker.store.crash_writer", str(root), str(round_id)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    output = bytearray()
    try:
        with trio.fail_after(60):
            while output.count(b"\n") < acks_wanted + 1:  # + the "ready" line
                chunk = await process.stdout.receive_some()
                assert chunk, f"writer exited early: {bytes(output[-300:])!r}"
                output += chunk
    finally:
        process.send_signal(signal.SIGKILL)
        with trio.fail_after(30):
            # Lines printed before the kill are acknowledgements too.
            while chunk := await process.stdout.receive_some():
                output += chunk
            await process.wait()
    lines = bytes(output).split(b"\n")
    assert lines[0].startswith(b"ready"), lines[0]
    acked = []
    for line in lines[1:-1]:  # the last piece has no newline: cut off, not acknowledged
        fields = line.decode().split()
        assert fields[0] != "failed", line
        acked.append((int(fields[0]), int(fields[1]), fields[2], fields[3]))
    return acked


async def test_sigkill_never_loses_an_acknowledged_message(tmp_path: Path) -> None:
    rng = random.Random(20260607)
    acked: list[tuple[int, int, str, str]] = []
    for round_id in range(4):
        acked += await _run_writer_until_killed(tmp_path, round_id, rng.randint(40, 400))
    assert (tmp_path / "abort").exists()
    async with open_message_store(small_config(tmp_path)) as store:
        assert store.last_exit_ok is False
        for queue_id in range(QUEUES):
            stored = await read_queue(store, "TopicTest", queue_id)
            # Contiguous queue offsets, no duplicates, in order of the writes.
            assert [m.queue_offset for m in stored] == list(range(len(stored)))
            tags = [m.keys for m in stored]
            assert len(set(tags)) == len(tags)
            order = [tuple(int(x) for x in (t or "").split(":")) for t in tags]
            assert order == sorted(order)
            by_offset = {m.queue_offset: m for m in stored}
            for acked_queue, offset, msg_id, tag in acked:
                if acked_queue != queue_id:
                    continue
                stored_message = by_offset.get(offset)
                assert stored_message is not None, f"acknowledged {tag} at {offset} lost"
                assert stored_message.keys == tag
                assert stored_message.msg_id == msg_id
                assert stored_message.body.startswith(tag.encode())
        assert store.max_phy_offset > 4 * 64 * 1024  # the storm rolled files


def _overwrite(path: Path, position: int, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.seek(position)
        handle.write(data)


def _zero_from(path: Path, position: int) -> None:
    """Zero a file from ``position`` on, keeping its length."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(position)
        handle.truncate(size)


def _crashed_before_first_checkpoint(root: Path) -> None:
    """Make the directory look like a process that died before its first
    checkpoint: abort file present, checkpoint page all zeros."""
    (root / "abort").touch()
    (root / "checkpoint").write_bytes(bytes(4096))


def _last_record_offset(root: Path) -> tuple[Path, int, int]:
    """(file, position, size) of the last record in the commit log."""
    last = sorted((root / "commitlog").iterdir())[-1]
    data = last.read_bytes()
    position = 0
    previous = (0, 0)
    while True:
        size = int.from_bytes(data[position : position + 4], "big")
        if size == 0 or position + size > len(data):
            return last, previous[0], previous[1]
        previous = (position, size)
        position += size


async def test_torn_tail_is_cut_off(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    async with open_message_store(config) as store:
        for number in range(30):
            await store.put_message(message(queue_id=number % 2, body=b"m%03d" % number))
    path, position, size = _last_record_offset(tmp_path)
    # The last record's tail is torn, and junk follows it.
    _overwrite(path, position + size - 5, b"\xde\xad\xbe\xef\x00" + os.urandom(300))
    _crashed_before_first_checkpoint(tmp_path)
    async with open_message_store(config) as store:
        assert store.last_exit_ok is False
        assert store.max_phy_offset == int(path.name) + position
        queue1 = await read_queue(store, "TopicTest", 1)
        assert [m.body for m in queue1] == [b"m%03d" % n for n in range(1, 29, 2)]
        assert store.get_max_offset_in_queue("TopicTest", 1) == 14
        result = await store.put_message(message(queue_id=1, body=b"after"))
        assert result.append_result is not None
        assert result.append_result.logics_offset == 14
        assert result.append_result.wrote_offset == int(path.name) + position
    # The junk beyond the new end was zeroed: it can never pass for a record.
    data = path.read_bytes()
    end = position + result.append_result.wrote_bytes
    assert data[end : end + 400] == bytes(400)


async def test_torn_tail_is_cut_off_on_normal_restart_too(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    async with open_message_store(config) as store:
        for number in range(5):
            await store.put_message(message(body=b"m%03d" % number))
    path, position, _ = _last_record_offset(tmp_path)
    # Its physical offset field no longer matches where it is.
    _overwrite(path, position + 28, b"\x00\x00\x00\x00\x00\x00\xff\xff")
    async with open_message_store(config) as store:
        assert store.last_exit_ok is True
        assert [m.body for m in await read_queue(store, "TopicTest", 0)] == [
            b"m%03d" % n for n in range(4)
        ]


async def test_consume_queues_are_rebuilt_from_the_commit_log(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    async with open_message_store(config) as store:
        for number in range(300):
            await store.put_message(message(queue_id=number % 3, body=b"%04d" % number))
        expected = {q: await read_queue(store, "TopicTest", q) for q in range(3)}
    # Consume queues deleted by hand: a normal start indexes the commit log again.
    shutil.rmtree(tmp_path / "consumequeue")
    async with open_message_store(config) as store:
        for queue_id in range(3):
            assert await read_queue(store, "TopicTest", queue_id) == expected[queue_id]
    # A crash that lost queue 0's files and the end of queue 1's.
    for path in (tmp_path / "consumequeue" / "TopicTest" / "0").iterdir():
        path.unlink()
    queue1 = sorted((tmp_path / "consumequeue" / "TopicTest" / "1").iterdir())[-1]
    _zero_from(queue1, 100)
    _crashed_before_first_checkpoint(tmp_path)
    async with open_message_store(config) as store:
        for queue_id in range(3):
            assert await read_queue(store, "TopicTest", queue_id) == expected[queue_id]
        assert store.queue_offset_table() == {("TopicTest", q): 100 for q in range(3)}


async def test_consume_queue_entries_beyond_the_commit_log_are_dropped(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    async with open_message_store(config) as store:
        for number in range(20):
            await store.put_message(message(body=b"%04d" % number))
        tenth = store.get_commit_log_offset_in_queue("TopicTest", 0, 10)
    # Cut the commit log in the middle of the tenth record: the queue is ahead.
    last = sorted((tmp_path / "commitlog").iterdir())[-1]
    _zero_from(last, tenth - int(last.name) + 10)
    _crashed_before_first_checkpoint(tmp_path)
    async with open_message_store(config) as store:
        assert store.get_max_offset_in_queue("TopicTest", 0) == 10
        assert store.max_phy_offset == tenth
        assert [m.body for m in await read_queue(store, "TopicTest", 0)] == [
            b"%04d" % n for n in range(10)
        ]
        result = await store.put_message(message(body=b"new"))
        assert result.status is PutMessageStatus.PUT_OK
        assert result.append_result is not None and result.append_result.logics_offset == 10
        assert decode_offset_message_id(result.append_result.msg_id)[1] == tenth


async def test_recovery_with_no_commit_log_drops_stale_queues(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    async with open_message_store(config) as store:
        await store.put_message(message())
    for path in (tmp_path / "commitlog").iterdir():
        path.unlink()
    async with open_message_store(config) as store:
        assert store.get_max_offset_in_queue("TopicTest", 0) == 0
        assert store.queue_offset_table() == {}
        result = await store.put_message(message())
        assert result.append_result is not None and result.append_result.logics_offset == 0


async def test_replay_starts_where_the_checkpoint_says(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    async with open_message_store(config) as store:
        for number in range(200):
            await store.put_message(message(queue_id=number % 2, body=b"x" * 500))
        middle = store.get_commit_log_offset_in_queue("TopicTest", 0, 60)
    checkpoint = StoreCheckpoint(tmp_path / "checkpoint")
    assert checkpoint.replay_offset == checkpoint.physic_offset == checkpoint.logics_offset
    assert checkpoint.replay_offset == store.max_phy_offset
    # The consume queues were last flushed at the 60th message of queue 0.
    checkpoint.logics_offset = middle
    checkpoint.flush()
    checkpoint.close()
    for queue_id in (0, 1):
        for path in (tmp_path / "consumequeue" / "TopicTest" / str(queue_id)).iterdir():
            # Everything after the checkpoint was lost.
            _zero_from(path, max(0, min(1280, 60 * 20 - int(path.name))))
    (tmp_path / "abort").touch()
    async with open_message_store(config) as store:
        assert store.get_max_offset_in_queue("TopicTest", 0) == 100
        assert store.get_max_offset_in_queue("TopicTest", 1) == 100


def test_checkpoint_extension_is_ignored_after_java_wrote(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    checkpoint = StoreCheckpoint(path)
    assert (checkpoint.physic_msg_timestamp, checkpoint.replay_offset) == (0, None)
    checkpoint.physic_msg_timestamp = checkpoint.logics_msg_timestamp = 1000
    checkpoint.physic_offset, checkpoint.logics_offset = 700, 500
    checkpoint.flush()
    checkpoint.close()
    raw = path.read_bytes()
    assert len(raw) == 4096
    assert raw[:24] == (1000).to_bytes(8, "big") * 2 + bytes(8)
    assert raw[24:32] == b"PYRCKPT1"
    assert StoreCheckpoint(path).replay_offset == 500
    # A Java broker ran since and moved its timestamps: the offsets are stale.
    with open(path, "r+b") as handle:
        handle.write((2000).to_bytes(8, "big"))
    reopened = StoreCheckpoint(path)
    assert reopened.physic_msg_timestamp == 2000
    assert reopened.replay_offset is None
    assert reopened.min_timestamp == 0  # min(2000, 1000) - 3000, floored


def _deliver(level: int, stored: int) -> int:
    return stored + level


@given(st.binary(max_size=300), st.integers(0, 299))
def test_the_record_checker_never_raises(data: bytes, position: int) -> None:
    found = check_record(data, position, 0, check_crc=True, deliver_time=_deliver)
    assert found in (BLANK, INVALID) or isinstance(found, DispatchRequest)


@given(st.binary(min_size=1, max_size=6), st.integers(0, 200), st.booleans())
def test_a_damaged_record_is_rejected_or_still_consistent(
    garbage: bytes, where: int, v6: bool
) -> None:
    host = HostPort.of("::1" if v6 else "127.0.0.1", 10911)
    record = encode_message(
        MessageExt(
            topic="TopicTest",
            body=b"some body",
            properties={"TAGS": "A", "DELAY": "2"},
            store_host=host,
            sys_flag=MessageSysFlag.STOREHOSTADDRESS_V6_FLAG if v6 else 0,
            body_crc=java_crc32(b"some body"),
        )
    )
    assert isinstance(
        check_record(record, 0, 0, check_crc=True, deliver_time=_deliver), DispatchRequest
    )
    damaged = bytearray(record)
    where %= len(record)
    # Overwrite in place: the damage must not change the record's length.
    garbage = garbage[: len(record) - where]
    damaged[where : where + len(garbage)] = garbage
    found = check_record(bytes(damaged), 0, 0, check_crc=True, deliver_time=_deliver)
    if isinstance(found, DispatchRequest):
        # Whatever survived the checks describes a record that fits exactly.
        assert found.size == len(damaged) and found.commit_log_offset == 0


async def _store_numbered(config: MessageStoreConfig, count: int) -> list[int]:
    """Store ``count`` messages in one queue; return their commit-log offsets."""
    async with open_message_store(config) as store:
        offsets = []
        for number in range(count):
            result = await store.put_message(message(body=b"body-%04d" % number))
            assert result.append_result is not None
            offsets.append(result.append_result.wrote_offset)
    return offsets


def _commit_log_at(root: Path, offset: int, file_size: int = SMALL_COMMIT_LOG) -> tuple[Path, int]:
    base = offset - offset % file_size
    return root / "commitlog" / f"{base:020d}", offset - base


def _crash_with_checkpoint_at(root: Path, offset: int) -> None:
    """The process died after flushing everything up to ``offset`` (as the
    checkpoint records it) and writing, unflushed, what follows."""
    checkpoint = StoreCheckpoint(root / "checkpoint")
    checkpoint.physic_offset = checkpoint.logics_offset = offset
    checkpoint.flush()
    checkpoint.close()
    (root / "abort").touch()


async def _bodies(config: MessageStoreConfig) -> tuple[list[bytes], int]:
    async with open_message_store(config) as store:
        assert store.last_exit_ok is False
        bodies = [m.body for m in await read_queue(store, "TopicTest", 0)]
        return bodies, store.max_phy_offset


async def test_a_damaged_message_after_the_checkpoint_ends_the_log(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    offsets = await _store_numbered(config, 200)
    path, position = _commit_log_at(tmp_path, offsets[150])
    _overwrite(path, position + 4, b"\x00\x00\x00\x00")  # its magic code
    _crash_with_checkpoint_at(tmp_path, offsets[120])
    bodies, end = await _bodies(config)
    assert bodies == [b"body-%04d" % n for n in range(150)]
    assert end == offsets[150]


async def test_a_damaged_message_before_the_checkpoint_is_found_too(tmp_path: Path) -> None:
    # All messages are younger than the checkpoint's time minus 3 s, so Java
    # replays from the first file and meets the damage the checkpoint skips.
    config = small_config(tmp_path)
    offsets = await _store_numbered(config, 200)
    path, position = _commit_log_at(tmp_path, offsets[40])
    _overwrite(path, position, b"\x7f\x00\x00\x00")  # its size
    _crash_with_checkpoint_at(tmp_path, offsets[180])
    bodies, end = await _bodies(config)
    assert bodies == [b"body-%04d" % n for n in range(40)]
    assert end == offsets[40]


async def test_a_flipped_body_byte_counts_only_when_crcs_are_checked(tmp_path: Path) -> None:
    for check in (True, False):
        root = tmp_path / str(check)
        config = small_config(root, check_crc_on_recover=check)
        offsets = await _store_numbered(config, 100)
        path, _ = _commit_log_at(root, offsets[70])
        data = path.read_bytes()
        at = data.index(b"body-0070")
        _overwrite(path, at, b"B")
        _crash_with_checkpoint_at(root, offsets[50])
        bodies, end = await _bodies(config)
        if check:
            assert bodies == [b"body-%04d" % n for n in range(70)]
            assert end == offsets[70]
        else:
            changed = [b"body-%04d" % n for n in range(100)]
            changed[70] = b"Body-0070"
            assert bodies == changed


@given(
    garbage=st.sampled_from(["ones", "backwards", "tiny", "beyond"]),
    index=st.sampled_from([30, 64, 74]),
    crashed=st.booleans(),
)
@settings(max_examples=12, deadline=None)
def test_a_damaged_consume_queue_entry_is_rebuilt(garbage: str, index: int, crashed: bool) -> None:
    async def scenario(root: Path) -> None:
        config = small_config(root)
        async with open_message_store(config) as store:
            for number in range(150):
                await store.put_message(message(queue_id=number % 2, body=b"q-%04d" % number))
            expected = [m.body for m in await read_queue(store, "TopicTest", 0)]
            entry_3 = store.get_commit_log_offset_in_queue("TopicTest", 0, 3)
            end = store.max_phy_offset
        assert len(expected) == 75
        # An entry of queue 0 (64 per file): in the middle, the first of the
        # second file, the last. Queue 1 ends later in the commit log.
        entry = {
            "ones": b"\xff" * 20,
            "backwards": struct.pack(">qiq", entry_3, 120, 0),
            "tiny": struct.pack(">qiq", end - 200, 12, 0),
            "beyond": struct.pack(">qiq", end + 10 * SMALL_COMMIT_LOG, 120, 0),
        }[garbage]
        at = index * 20
        base = at - at % SMALL_CONSUME_QUEUE
        _overwrite(root / "consumequeue" / "TopicTest" / "0" / f"{base:020d}", at - base, entry)
        if crashed:
            (root / "abort").touch()
        async with open_message_store(config) as store:
            assert [m.body for m in await read_queue(store, "TopicTest", 0)] == expected
            assert store.get_max_offset_in_queue("TopicTest", 0) == 75
            result = await store.put_message(message(queue_id=0, body=b"next"))
            assert result.append_result is not None
            assert result.append_result.logics_offset == 75

    with tempfile.TemporaryDirectory() as root:
        trio.run(scenario, Path(root))
