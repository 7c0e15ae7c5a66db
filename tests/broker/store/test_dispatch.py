"""Consume-queue dispatch of a batch: one write for the entries of a
SEND_BATCH_MESSAGE when they continue the queue's last file, the very bytes
one put per message would write; every other case falls back to those puts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pyrocket.broker.store import BrokerBatch, PutMessageStatus, open_message_store
from pyrocket.broker.store.consumequeue import ConsumeQueue
from pyrocket.broker.store.files import DataFile
from pyrocket.protocol.message import Message, encode_batch, java_properties
from tests.broker.store.helpers import BORN, STORE, message, read_queue, small_config

ENTRY = 20


def _queue(root: Path) -> ConsumeQueue:
    return ConsumeQueue("T", 0, root / "consumequeue" / "T" / "0", ENTRY * 8)


def _bytes(queue: ConsumeQueue) -> list[bytes]:
    return [f.read(0, f.wrote) for f in queue.files.files]


def test_put_batch_writes_what_puts_one_by_one_write(tmp_path: Path) -> None:
    one_by_one = _queue(tmp_path / "a")
    batched = _queue(tmp_path / "b")
    for queue in (one_by_one, batched):
        assert queue.put(0, 100, 7, 0)  # the first entry makes the file
    sizes, tags = [110, 120, 130], [1, 2, 3]
    physical = 100
    for number, (size, tag) in enumerate(zip(sizes, tags, strict=True)):
        assert one_by_one.put(physical, size, tag, 1 + number)
        physical += size
    assert batched.put_batch(100, sizes, tags, 1)
    assert _bytes(batched) == _bytes(one_by_one)
    assert batched.max_offset_in_queue == one_by_one.max_offset_in_queue == 4
    assert batched.max_physic_offset == one_by_one.max_physic_offset == physical
    assert batched.max_offset_value.value == 4
    before = _bytes(batched)
    # Already indexed, not where the queue ends, past the file's end,
    # or no file yet: nothing written, the caller puts one by one.
    assert not batched.put_batch(100, sizes, tags, 1)
    assert not batched.put_batch(physical, [10], [0], 6)
    assert not batched.put_batch(physical, [10] * 5, [0] * 5, 4)
    assert not _queue(tmp_path / "c").put_batch(0, [10], [0], 0)
    assert _bytes(batched) == before


async def test_batches_index_as_single_puts_do_across_queue_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches (some straddling a consume-queue file) give consume queues
    byte-identical to the same records put one at a time."""
    one_write: list[bool] = []
    original = ConsumeQueue.put_batch

    def counting(self: ConsumeQueue, *args: Any) -> bool:
        one_write.append(original(self, *args))
        return one_write[-1]

    monkeypatch.setattr(ConsumeQueue, "put_batch", counting)
    items = [
        Message(body=b"m%03d" % n, properties=java_properties([("TAGS", f"T{n % 3}")]))
        for n in range(100)
    ]
    queues: dict[str, list[bytes]] = {}
    for name in ("batched", "single"):
        config = small_config(tmp_path / name)
        async with open_message_store(config) as store:
            if name == "batched":
                for start in range(0, len(items), 9):
                    batch = BrokerBatch(
                        "TopicTest",
                        0,
                        encode_batch(items[start : start + 9]),
                        born_host=BORN,
                        store_host=STORE,
                    )
                    result = await store.put_messages(batch)
                    assert result.status is PutMessageStatus.PUT_OK
                    assert result.append_result is not None
                    assert result.append_result.logics_offset == start
            else:
                for number, item in enumerate(items):
                    single = message(body=item.body, tags=f"T{number % 3}")
                    result = await store.put_message(single)
                    assert result.append_result is not None
                    assert result.append_result.logics_offset == number
            stored = await read_queue(store, "TopicTest", 0)
            assert [m.body for m in stored] == [item.body for item in items]
            assert [m.queue_offset for m in stored] == list(range(len(items)))
            queue = store.consume_queue("TopicTest", 0)
            assert queue is not None
            # 100 entries over files of 64: the batch of 63..71 straddles two.
            assert config.mapped_file_size_consume_queue == 64 * ENTRY
            assert len(queue.files.files) == 2
            queues[name] = [DataFile.read(f, 0, f.wrote) for f in queue.files.files]
    # Records of both runs have the same sizes, hence the same entries.
    assert queues["batched"] == queues["single"]
    # The first batch makes the queue's file and the straddling one needs
    # two files: those two were put one by one, the other ten in one write.
    assert one_write.count(True) == 10 and one_write.count(False) == 2
