"""Deleting expired files (Java's ``CleanCommitLogService`` and
``CleanConsumeQueueService``).

A pass deletes the oldest commit-log files (never the last, at most ten) whose
modification time is more than ``fileReservedTime`` hours ago, when it is one
of the ``deleteWhen`` hours, the disk is fuller than ``diskMaxUsedSpaceRatio``
or a manual delete is pending; past 85 % disk use it deletes them whatever
their age, and past 90 % the store refuses new messages until the disk
recovers. Consume-queue files whose entries all point before the new start of
the commit log follow, and each queue's minimum offset moves up, and so do
index files whose last entry is before it (never the last index file). The clock and
the disk-usage probe are injectable.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection
from typing import Final

import trio

from pyrocket.broker.store.commitlog import SCHEDULE_TOPIC
from pyrocket.broker.store.config import MessageStoreConfig
from pyrocket.broker.store.files import DataFile
from pyrocket.broker.store.index import delete_index_files
from pyrocket.broker.store.storefiles import StoreFiles

log = logging.getLogger(__name__)

#: Java's CleanCommitLogService thresholds (system properties there).
DISK_SPACE_WARNING_LEVEL_RATIO: Final = 0.90
DISK_SPACE_CLEAN_FORCIBLY_RATIO: Final = 0.85
#: At most this many files are deleted per pass (DELETE_FILES_BATCH_MAX).
DELETE_FILES_BATCH_MAX: Final = 10
#: The first pass comes this long after the store starts (Java: one minute).
CLEAN_FIRST_DELAY_S: Final = 60.0
#: How many passes a manual delete request covers (MAX_MANUAL_DELETE_FILE_TIMES).
MAX_MANUAL_DELETE_FILE_TIMES: Final = 20


def disk_used_ratio(path: str) -> float:
    """``UtilAll.getDiskPartitionSpaceUsedPercent``: (total - free) / total of
    the partition holding ``path``, -1 when it cannot be told."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return -1.0
    total = stats.f_blocks * stats.f_frsize
    if total <= 0:
        return -1.0
    return (total - stats.f_bfree * stats.f_frsize) / total


async def delete_files(files: list[DataFile]) -> None:
    """Delete files already taken out of their queue: references are settled
    in the trio thread, the unlinking (slow for big files) in a worker thread."""
    closable = [data_file.mark_destroyed() for data_file in files]

    def unlink_all() -> None:
        for data_file, close in zip(files, closable, strict=True):
            data_file.unlink(close=close)

    await trio.to_thread.run_sync(unlink_all)


class FileCleaner:
    """The cleanup passes of one store, and the disk-full state they find."""

    def __init__(
        self,
        files: StoreFiles,
        now_ms: Callable[[], int],
        disk_used_ratio: Callable[[str], float],
    ) -> None:
        self._files = files
        self._config = files.config
        self._now_ms = now_ms
        self._disk_used_ratio = disk_used_ratio
        #: True while the disk is above the warning level: puts are refused.
        self.disk_full = False
        self._clean_immediately = False
        self._manual_delete_times = 0
        self._last_physical_min_offset = 0

    def update_config(self, config: MessageStoreConfig) -> None:
        """Read retention settings from ``config`` from now on."""
        self._config = config

    async def run(self) -> None:
        """Clean periodically (every ``cleanResourceInterval`` ms) until cancelled."""
        await trio.sleep(CLEAN_FIRST_DELAY_S)
        interval = self._config.clean_resource_interval / 1000
        while True:
            try:
                await self.clean_expired_files()
            except OSError as exc:
                log.error("cleanup failed: %s", exc)
            await trio.sleep(interval)

    def execute_delete_files_manually(self) -> None:
        """Delete expired files on the next passes whatever the hour."""
        self._manual_delete_times = MAX_MANUAL_DELETE_FILE_TIMES

    async def clean_expired_files(self) -> int:
        """One pass over the commit log, then the consume queues. Returns the
        number of commit-log files deleted."""
        deleted = await self.clean_commit_log()
        await self.clean_consume_queues()
        return deleted

    def _is_time_to_delete(self) -> bool:
        hour = time.localtime(self._now_ms() / 1000).tm_hour
        return hour in self._config.delete_when_hours

    def _is_space_to_delete(self) -> bool:
        limit = self._config.disk_max_used_space_ratio_clamped / 100
        self._clean_immediately = False
        full = over = False
        for path in (str(self._config.commit_log_dir), str(self._files.consume_queue_root)):
            used = self._disk_used_ratio(path)
            if used > DISK_SPACE_WARNING_LEVEL_RATIO:
                full = self._clean_immediately = True
            elif used > DISK_SPACE_CLEAN_FORCIBLY_RATIO:
                self._clean_immediately = True
            if used < 0 or used > limit:
                over = True
        if full and not self.disk_full:
            log.error(
                "disk above %.0f%% full: the store refuses messages",
                DISK_SPACE_WARNING_LEVEL_RATIO * 100,
            )
        self.disk_full = full
        return over

    async def clean_commit_log(self) -> int:
        """Delete expired commit-log files (``CleanCommitLogService``)."""
        time_up = self._is_time_to_delete()
        space_full = self._is_space_to_delete()
        manual = self._manual_delete_times > 0
        if not (time_up or space_full or manual):
            return 0
        if manual:
            self._manual_delete_times -= 1
        clean_at_once = self._config.clean_file_forcibly_enable and self._clean_immediately
        reserved_ms = self._config.file_reserved_time * 60 * 60 * 1000
        now = self._now_ms()
        queue = self._files.commit_log.files
        count = 0
        for data_file in queue.files[:-1]:
            if count >= DELETE_FILES_BATCH_MAX:
                break
            if not (clean_at_once or now >= data_file.mtime_ms() + reserved_ms):
                break
            count += 1
        if not count:
            return 0
        removed = queue.remove_first(count)
        log.info(
            "deleting %d expired commit-log files: %s",
            count,
            ", ".join(f.path.name for f in removed),
        )
        await delete_files(removed)
        return count

    async def clean_consume_queues(self) -> None:
        """Drop consume-queue files wholly before the commit log's start and
        move each queue's minimum offset (``CleanConsumeQueueService``)."""
        minimum = self._files.commit_log.min_offset
        # The index first: a pass skipped while a query ran is retried.
        index = self._files.index
        if index is not None:
            expired_index = index.take_expired(minimum)
            if expired_index:
                log.info(
                    "deleting %d expired index files: %s",
                    len(expired_index),
                    ", ".join(f.path.name for f in expired_index),
                )
                await trio.to_thread.run_sync(delete_index_files, expired_index)
        if minimum <= self._last_physical_min_offset:
            return
        self._last_physical_min_offset = minimum
        for queue in list(self._files.all_queues()):
            expired = queue.expired_files(minimum)
            expired += queue.correct_min_offset(minimum)
            if expired:
                await delete_files(expired)

    def clean_expired_consume_queues(self) -> None:
        """Destroy queues whose every message left the commit log
        (``cleanExpiredConsumerQueue``); their offsets restart at 0."""
        files = self._files
        minimum = files.commit_log.min_offset
        for topic, queues in list(files.queues.items()):
            if topic == SCHEDULE_TOPIC:
                continue
            for queue_id, queue in list(queues.items()):
                last = queue.last_offset()
                if last != -1 and last < minimum:
                    log.info("consume queue %s/%d expired, destroyed", topic, queue_id)
                    files.topic_queue_table.pop((topic, queue_id), None)
                    queue.destroy()
                    del queues[queue_id]
            if not queues:
                del files.queues[topic]

    def clean_unused_topics(self, topics: Collection[str]) -> None:
        """Destroy the queues of every topic not in ``topics`` (except the
        schedule topic), as DELETE_TOPIC_IN_BROKER does."""
        files = self._files
        for topic in list(files.queues):
            if topic in topics or topic == SCHEDULE_TOPIC:
                continue
            for queue_id, queue in files.queues.pop(topic).items():
                log.info("consume queue %s/%d of an unused topic destroyed", topic, queue_id)
                files.topic_queue_table.pop((topic, queue_id), None)
                queue.destroy()
