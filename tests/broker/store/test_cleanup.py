"""Expired-file cleanup: fileReservedTime at the deleteWhen hour, the disk
ratio triggers, consume-queue minimum offsets, queue removal."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from pyrocket.broker.store import (
    GetMessageStatus,
    MessageStore,
    PutMessageStatus,
    open_message_store,
)
from tests.broker.store.helpers import message, small_config

HOUR_MS = 3600 * 1000


class Clock:
    """A settable store clock."""

    def __init__(self) -> None:
        self.now = time.time_ns() // 1_000_000

    def __call__(self) -> int:
        return self.now

    def hour(self, later_ms: int = 0) -> str:
        return f"{time.localtime((self.now + later_ms) / 1000).tm_hour:02d}"

    def other_hour(self) -> str:
        return f"{(int(self.hour()) + 12) % 24:02d}"


class Disk:
    def __init__(self, ratio: float = 0.3) -> None:
        self.ratio = ratio

    def __call__(self, path: str) -> float:
        return self.ratio


async def _fill(store: MessageStore, files: int) -> None:
    """Put messages over two queues until the commit log has ``files`` files."""
    number = 0
    while store.max_phy_offset < (files - 1) * 64 * 1024 + 1000:
        result = await store.put_message(
            message(queue_id=number % 2, body=b"%05d" % number + b"." * 900)
        )
        assert result.status is PutMessageStatus.PUT_OK
        number += 1


def _commit_log_files(root: Path, store: MessageStore) -> list[str]:
    """The commit-log files holding data (not the next one, made ahead of need)."""
    names = sorted(p.name for p in (root / "commitlog").iterdir())
    return [name for name in names if int(name) < store.max_phy_offset]


async def test_files_older_than_the_reserved_time_go_at_the_delete_hour(tmp_path: Path) -> None:
    clock, disk = Clock(), Disk()
    hours = f"{clock.hour(71 * HOUR_MS)};{clock.hour(73 * HOUR_MS)}"
    config = small_config(tmp_path, file_reserved_time=72, delete_when=hours)
    async with open_message_store(config, now_ms=clock, disk_used_ratio=disk) as store:
        await _fill(store, 5)
        for number in range(20):  # both queues have messages in the last file
            await store.put_message(message(queue_id=number % 2))
        names = _commit_log_files(tmp_path, store)
        assert len(names) >= 5
        clock.now += 71 * HOUR_MS
        assert await store.clean_expired_files() == 0
        clock.now += 2 * HOUR_MS
        deleted = await store.clean_expired_files()
        assert deleted == len(names) - 1
        assert _commit_log_files(tmp_path, store) == names[-1:]  # the last file always stays
        assert store.min_phy_offset == int(names[-1])
        # Consume queues followed: their old files are gone, their minimum moved.
        for queue_id in (0, 1):
            minimum = store.get_min_offset_in_queue("TopicTest", queue_id)
            assert minimum > 0
            assert (
                store.get_commit_log_offset_in_queue("TopicTest", queue_id, minimum)
                >= store.min_phy_offset
            )
            assert (
                store.get_commit_log_offset_in_queue("TopicTest", queue_id, minimum - 1)
                < store.min_phy_offset
            )
            small = await store.get_message("g", "TopicTest", queue_id, 0, 8)
            assert small is not None and small.status is GetMessageStatus.OFFSET_TOO_SMALL
            first = await store.get_message("g", "TopicTest", queue_id, minimum, 8)
            assert first is not None and first.status is GetMessageStatus.FOUND
            queue_dir = tmp_path / "consumequeue" / "TopicTest" / str(queue_id)
            assert min(int(p.name) for p in queue_dir.iterdir()) > 0


async def test_nothing_goes_outside_the_delete_hour_unless_the_disk_fills(tmp_path: Path) -> None:
    clock, disk = Clock(), Disk(0.5)
    config = small_config(tmp_path, file_reserved_time=1, delete_when=clock.other_hour())
    async with open_message_store(config, now_ms=clock, disk_used_ratio=disk) as store:
        await _fill(store, 4)
        clock.now += 2 * HOUR_MS
        assert await store.clean_expired_files() == 0
        disk.ratio = 0.80  # above diskMaxUsedSpaceRatio (75%): expired files go
        assert await store.clean_expired_files() == 3
        assert len(_commit_log_files(tmp_path, store)) == 1


async def test_a_nearly_full_disk_deletes_even_unexpired_files(tmp_path: Path) -> None:
    clock, disk = Clock(), Disk(0.5)
    config = small_config(tmp_path, file_reserved_time=72, delete_when=clock.other_hour())
    async with open_message_store(config, now_ms=clock, disk_used_ratio=disk) as store:
        await _fill(store, 4)
        disk.ratio = 0.80
        assert await store.clean_expired_files() == 0  # nothing has expired
        disk.ratio = 0.87  # past 85%: clean at once, reserved time or not
        assert await store.clean_expired_files() == 3


async def test_a_full_disk_stops_puts_until_it_recovers(tmp_path: Path) -> None:
    clock, disk = Clock(), Disk(0.5)
    config = small_config(tmp_path, delete_when=clock.other_hour())
    async with open_message_store(config, now_ms=clock, disk_used_ratio=disk) as store:
        await _fill(store, 2)
        disk.ratio = 0.95
        await store.clean_expired_files()
        refused = await store.put_message(message())
        assert refused.status is PutMessageStatus.SERVICE_NOT_AVAILABLE
        disk.ratio = 0.5
        await store.clean_expired_files()
        assert (await store.put_message(message())).status is PutMessageStatus.PUT_OK


async def test_manual_delete_and_batch_limit(tmp_path: Path) -> None:
    clock, disk = Clock(), Disk()
    config = small_config(tmp_path, file_reserved_time=0, delete_when=clock.other_hour())
    async with open_message_store(config, now_ms=clock, disk_used_ratio=disk) as store:
        await _fill(store, 13)
        clock.now += HOUR_MS
        assert await store.clean_expired_files() == 0
        store.execute_delete_files_manually()
        assert await store.clean_expired_files() == 10  # at most ten per pass
        assert await store.clean_expired_files() == 2
        assert len(_commit_log_files(tmp_path, store)) == 1


async def test_queues_wholly_expired_are_destroyed(tmp_path: Path) -> None:
    clock, disk = Clock(), Disk()
    config = small_config(tmp_path, file_reserved_time=0, delete_when=clock.hour(HOUR_MS))
    async with open_message_store(config, now_ms=clock, disk_used_ratio=disk) as store:
        for _ in range(3):
            await store.put_message(message(topic="Old"))
        await _fill(store, 3)
        clock.now += HOUR_MS
        assert await store.clean_expired_files() == 2
        assert store.get_max_offset_in_queue("Old", 0) == 3
        # Every message of the queue is gone: nothing is left to read.
        assert store.get_min_offset_in_queue("Old", 0) == 3
        store.clean_expired_consume_queues()
        assert store.consume_queue("Old", 0) is None
        assert not (tmp_path / "consumequeue" / "Old" / "0").exists()
        assert store.consume_queue("TopicTest", 0) is not None
        restarted = await store.put_message(message(topic="Old"))
        assert restarted.append_result is not None and restarted.append_result.logics_offset == 0
        store.clean_unused_topics({"Old"})
        assert store.topics() == ["Old"]
        assert ("TopicTest", 0) not in store.queue_offset_table()


async def test_cleanup_runs_by_itself(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    clock, disk = Clock(), Disk()
    clock.now += 100 * HOUR_MS
    config = small_config(tmp_path, file_reserved_time=1, delete_when=clock.hour())
    async with open_message_store(config, now_ms=clock, disk_used_ratio=disk) as store:
        await _fill(store, 3)
        with trio.fail_after(600):
            # The first pass comes a minute after start, then every 10 s.
            while len(_commit_log_files(tmp_path, store)) > 1:  # noqa: ASYNC110
                await trio.sleep(5)
        assert trio.current_time() >= 60
        assert store.min_phy_offset > 0
