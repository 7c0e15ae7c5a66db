"""consumerOffset.json: the periodic persist and the shutdown persist share
the table's one writer."""

from __future__ import annotations

from pathlib import Path

import trio

from pyrocket.broker.consumer_offset import ConsumerOffsetManager, consumer_offset_json_path


async def test_concurrent_persists_share_writes_and_each_sees_its_commits(
    tmp_path: Path,
) -> None:
    path = consumer_offset_json_path(tmp_path)
    offsets = ConsumerOffsetManager(path)
    count = 200

    async def commit_and_persist(queue_id: int) -> None:
        offsets.commit_offset("127.0.0.1", "G", "T", queue_id, queue_id * 10)
        await offsets.persist()
        reread = ConsumerOffsetManager(path)
        reread.load()
        assert reread.query_offset("G", "T", queue_id) == queue_id * 10

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            # A long interval: only the persists below write.
            await nursery.start(offsets.run, lambda: 3_600_000)
            async with trio.open_nursery() as persists:
                for queue_id in range(count):
                    persists.start_soon(commit_and_persist, queue_id)
            nursery.cancel_scope.cancel()
    assert 1 <= offsets.writer.rounds <= count // 10
    # After the writer task stopped (shutdown), a persist writes by itself.
    offsets.commit_offset("127.0.0.1", "G", "T", 0, 99)
    with trio.fail_after(10):
        await offsets.persist()
    reread = ConsumerOffsetManager(path)
    reread.load()
    assert reread.query_offset("G", "T", 0) == 99
    assert reread.query_offset("G", "T", count - 1) == (count - 1) * 10
