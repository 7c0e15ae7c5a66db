"""The pull read of the usual case (no filter, no extension files, records
in one mapped commit-log file) gives exactly what the general entry-by-entry
scan gives, and gives way to it for everything it does not cover."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from pyrocket.broker.store import (
    GetMessageStatus,
    MessageStore,
    PutMessageStatus,
    open_message_store,
)
from pyrocket.broker.store.config import CQ_STORE_UNIT_SIZE
from pyrocket.broker.store.model import GetMessageResult, TagsFilter
from pyrocket.protocol.message import decode_messages
from tests.broker.store.helpers import message, small_config

TOPIC = "TopicTest"
QUEUES = 3
#: Rolled a few times by what the tests store.
COMMIT_LOG = 192 * 1024


def _reads(
    store: MessageStore, queue_id: int, offset: int, count: int
) -> tuple[GetMessageResult | None, GetMessageResult]:
    """(the plain read, the scan) of ``count`` messages from ``offset``, on
    the entries a pull without a filter reads."""
    queue = store._files.queue(TOPIC, queue_id)
    assert queue is not None
    entries = queue.read_entries(offset, max(1, count) * CQ_STORE_UNIT_SIZE)
    assert entries is not None
    max_physical = store._commit_log.max_offset
    low, high = queue.min_offset_in_queue, queue.max_offset_in_queue
    plain = store._collect_mapped(entries, offset, max_physical, low, high, count)
    scan = store._collect(None, entries, offset, count, None, max_physical, low, high, True)
    return plain, scan


async def _fill(store: MessageStore, seed: int) -> None:
    rng = random.Random(seed)
    for number in range(300):
        # Mostly small bodies, some large enough to fill a transfer limit.
        size = rng.choice([5, 40, 700, 3000]) if rng.random() < 0.9 else 9000
        put = await store.put_message(
            message(queue_id=rng.randrange(QUEUES), body=b"%06d" % number + bytes(size))
        )
        assert put.status is PutMessageStatus.PUT_OK


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    "limits",
    [
        {},
        {
            "max_transfer_count_on_message_in_memory": 5,
            "max_transfer_bytes_on_message_in_memory": 8000,
        },
        # Everything counts as on disk: the disk limits apply, and only the
        # scan reads.
        {
            "access_message_in_memory_max_ratio": 0,
            "max_transfer_count_on_message_in_disk": 3,
            "max_transfer_bytes_on_message_in_disk": 5000,
        },
    ],
)
async def test_the_plain_read_answers_as_the_scan_does(
    tmp_path: Path, seed: int, limits: dict[str, int]
) -> None:
    """Every queue, every start offset, several counts, over commit-log
    files small enough to roll many times: where the plain read answers, its
    answer is the scan's; it answers most reads, and gives way exactly for
    those whose records are not all in the first record's file."""
    config = small_config(tmp_path, mapped_file_size_commit_log=COMMIT_LOG, **limits)
    async with open_message_store(config) as store:
        await _fill(store, seed)
        on_disk = limits.get("access_message_in_memory_max_ratio") == 0
        answered = given_way = 0
        for queue_id in range(QUEUES):
            queue = store._files.queue(TOPIC, queue_id)
            assert queue is not None
            for offset in range(queue.min_offset_in_queue, queue.max_offset_in_queue):
                for count in (1, 2, 7, 32):
                    plain, scan = _reads(store, queue_id, offset, count)
                    assert scan.status is GetMessageStatus.FOUND
                    if on_disk:
                        # In memory or not is decided by the first record.
                        assert plain is None
                        continue
                    if plain is None:
                        given_way += 1
                        files = {
                            store._commit_log.files.find(
                                int.from_bytes(record[28:36], "big")  # its physical offset
                            )
                            for record in scan.messages
                        }
                        # Given way only where the answer spans files.
                        assert len(files) > 1
                        continue
                    answered += 1
                    assert plain == scan
                    bodies = [m.body[:6] for m in decode_messages(plain.body())]
                    assert len(bodies) == plain.message_count >= 1
        assert on_disk or (given_way and answered > 2 * given_way)


async def test_the_plain_read_gives_way_to_the_scan_for_a_filter_and_for_worker_threads(
    tmp_path: Path,
) -> None:
    """Only the trio thread's unfiltered reads take the plain path; a pull
    through the store's API answers the same either way."""
    async with open_message_store(small_config(tmp_path)) as store:
        await _fill(store, 7)
        calls: list[int] = []
        original = store._collect_mapped

        def counting(*args: Any) -> GetMessageResult | None:
            calls.append(1)
            return original(*args)

        store._collect_mapped = counting  # type: ignore[method-assign,assignment]
        queue = store._files.queue(TOPIC, 0)
        assert queue is not None
        entries = queue.read_entries(0, 32 * CQ_STORE_UNIT_SIZE)
        assert entries is not None
        high = queue.max_offset_in_queue
        max_physical = store._commit_log.max_offset
        threaded = store._collect(None, entries, 0, 32, None, max_physical, 0, high, False)
        assert calls == []
        in_loop = store._collect_in_loop((None, entries, 0, 32, None, max_physical, 0, high))
        assert calls == [1]
        assert threaded == in_loop
        everything = TagsFilter()  # "*": a filter, though it lets every message through
        filtered = store._collect_in_loop((None, entries, 0, 32, everything, max_physical, 0, high))
        assert calls == [1]
        assert filtered.messages == in_loop.messages
        pulled = await store.get_message("g", TOPIC, 0, 0, 32)
        assert pulled is not None and pulled.messages == in_loop.messages


async def test_entries_out_of_commit_log_order_go_to_the_scan(tmp_path: Path) -> None:
    """The plain read counts every record as in memory because the first one
    is and the others lie after it: entries that do not are left to the scan."""
    async with open_message_store(small_config(tmp_path)) as store:
        for number in range(3):
            put = await store.put_message(message(body=b"%06d" % number))
            assert put.status is PutMessageStatus.PUT_OK
        queue = store._files.queue(TOPIC, 0)
        assert queue is not None
        entries = queue.read_entries(0, 3 * CQ_STORE_UNIT_SIZE)
        assert entries is not None and len(entries) == 3 * CQ_STORE_UNIT_SIZE
        unit = CQ_STORE_UNIT_SIZE
        swapped = entries[:unit] + entries[2 * unit :] + entries[unit : 2 * unit]
        max_physical = store._commit_log.max_offset
        assert store._collect_mapped(entries, 0, max_physical, 0, 3, 32) is not None
        assert store._collect_mapped(swapped, 0, max_physical, 0, 3, 32) is None
        scan = store._collect(None, swapped, 0, 32, None, max_physical, 0, 3, True)
        assert [m.body for m in decode_messages(scan.body())] == [b"000000", b"000002", b"000001"]
