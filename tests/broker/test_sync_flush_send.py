"""SYNC_FLUSH sends over a real socket: each answer leaves only after an
fsync that covers the message (the group commit sends it), and a send whose
fsync takes longer than syncFlushTimeout is answered FLUSH_DISK_TIMEOUT
while the message stays stored."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio

from pyrocket.broker.store.files import DataFile
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import ResponseCode
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, running_broker, send_request

TOPIC = "SyncFlushed"


async def test_sync_flush_answers_follow_their_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = broker_settings(
        tmp_path,
        flushDiskType="SYNC_FLUSH",
        syncFlushTimeout=200,
        mappedFileSizeCommitLog=1024 * 1024,
    )
    original_sync = DataFile.sync
    gate = threading.Event()
    gate.set()
    #: How far the commit log was on disk after each fsync.
    durable: list[int] = []

    with trio.fail_after(30):
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            store = broker.store

            def sync(self: DataFile) -> None:
                gate.wait(10)
                # Everything appended so far was written before this fsync.
                covered = store.max_phy_offset
                original_sync(self)
                durable.append(covered)

            monkeypatch.setattr(DataFile, "sync", sync)
            addr = broker.broker_addr
            await broker.topic_config_manager.update_topic_config(
                TopicConfig(topic_name=TOPIC, read_queue_nums=2, write_queue_nums=2)
            )
            # Makes the queues' files: later sends need no file and go the
            # fast way.
            for queue_id in range(2):
                answer = await client.invoke_sync(addr, send_request(TOPIC, queue_id, b"w"), 5)
                assert answer.code == ResponseCode.SUCCESS

            answers = []

            async def send(queue_id: int, n: int) -> None:
                request = send_request(TOPIC, queue_id, b"m%d" % n)
                answer = await client.invoke_sync(addr, request, 5)
                ext = answer.ext_fields or {}
                answers.append((answer.code, max(durable, default=0), ext))

            async with trio.open_nursery() as nursery:
                for n in range(40):
                    nursery.start_soon(send, n % 2, n)
            assert len(answers) == 40
            for code, on_disk, ext in answers:
                assert code == ResponseCode.SUCCESS
                # The offset message id ends with the physical offset: an
                # fsync that covered the message had finished when it came.
                physical = int(ext["msgId"][-16:], 16)
                assert physical < on_disk, (physical, on_disk)
            stored = store.get_max_offset_in_queue(TOPIC, 0)
            stored += store.get_max_offset_in_queue(TOPIC, 1)
            assert stored == 42

            # An fsync held past syncFlushTimeout: FLUSH_DISK_TIMEOUT, and
            # the message is still stored.
            gate.clear()
            before = store.get_max_offset_in_queue(TOPIC, 0)
            late = await client.invoke_sync(addr, send_request(TOPIC, 0, b"late"), 5)
            assert late.code == ResponseCode.FLUSH_DISK_TIMEOUT
            assert store.get_max_offset_in_queue(TOPIC, 0) == before + 1
            gate.set()
            again = await client.invoke_sync(addr, send_request(TOPIC, 1, b"after"), 5)
            assert again.code == ResponseCode.SUCCESS
            monkeypatch.undo()
