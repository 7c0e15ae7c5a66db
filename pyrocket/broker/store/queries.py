"""Questions about what the store holds, answered without reading a pull's
worth of messages: queue offsets (min, max, by time, commit-log offset of an
entry), store timestamps, commit-log bounds, a record by commit-log offset
(VIEW_MESSAGE_BY_ID), messages by key through the index (QUERY_MESSAGE),
the queue table, topics and the running statistics.
"""

from __future__ import annotations

import trio
from trio_util import AsyncValue

from pyrocket.broker.store.consumequeue import ConsumeQueue
from pyrocket.broker.store.index import IndexService, QueryMessageResult
from pyrocket.broker.store.state import StoreState
from pyrocket.errors import ProtocolError
from pyrocket.protocol.message import MessageExt, decode_message


class StoreQueries(StoreState):
    """The query part of :class:`~pyrocket.broker.store.store.MessageStore`."""

    def consume_queue(self, topic: str, queue_id: int) -> ConsumeQueue | None:
        """The queue, if anything was ever stored in it."""
        return self._files.queue(topic, queue_id)

    def queue_max_offset(self, topic: str, queue_id: int) -> AsyncValue:
        """The queue's max offset as an ``AsyncValue[int]`` that changes as
        messages arrive: a held pull waits with
        ``await value.wait_value(lambda v: v > offset)``."""
        return self._files.find_or_create_queue(topic, queue_id).max_offset_value

    def get_max_offset_in_queue(self, topic: str, queue_id: int) -> int:
        """Next queue offset to be written (0 for an unknown queue)."""
        queue = self.consume_queue(topic, queue_id)
        return queue.max_offset_in_queue if queue is not None else 0

    def get_min_offset_in_queue(self, topic: str, queue_id: int) -> int:
        """Oldest readable queue offset (0 for an unknown queue, as Java answers)."""
        queue = self.consume_queue(topic, queue_id)
        return queue.min_offset_in_queue if queue is not None else 0

    def get_message_total_in_queue(self, topic: str, queue_id: int) -> int:
        return self.get_max_offset_in_queue(topic, queue_id) - self.get_min_offset_in_queue(
            topic, queue_id
        )

    def get_commit_log_offset_in_queue(self, topic: str, queue_id: int, queue_offset: int) -> int:
        """Commit-log offset of a queue entry, 0 when there is none."""
        queue = self.consume_queue(topic, queue_id)
        entry = queue.entry(queue_offset) if queue is not None else None
        return entry[0] if entry is not None else 0

    def get_offset_in_queue_by_time(self, topic: str, queue_id: int, timestamp: int) -> int:
        """SEARCH_OFFSET_BY_TIMESTAMP: the queue offset stored closest to
        ``timestamp`` (0 for an unknown queue)."""
        queue = self.consume_queue(topic, queue_id)
        if queue is None:
            return 0
        return queue.offset_by_time(
            timestamp, self._commit_log.min_offset, self._commit_log.store_timestamp_at
        )

    def get_message_store_timestamp(self, topic: str, queue_id: int, queue_offset: int) -> int:
        """Store time of a queue entry's message, -1 when unknown."""
        queue = self.consume_queue(topic, queue_id)
        entry = queue.entry(queue_offset) if queue is not None else None
        if entry is None:
            return -1
        return self._commit_log.store_timestamp_at(entry[0], entry[1])

    def get_earliest_message_time(self, topic: str, queue_id: int) -> int:
        """Store time of the queue's oldest readable message, -1 when none."""
        queue = self.consume_queue(topic, queue_id)
        if queue is None:
            return -1
        return self.get_message_store_timestamp(topic, queue_id, queue.min_offset_in_queue)

    def get_earliest_message_time_in_store(self) -> int:
        """Store time of the oldest message in the commit log, -1 when none."""
        minimum = self._commit_log.min_offset
        if minimum < 0:
            return -1
        head = self._commit_log.read_record(minimum)
        if head is None:
            return -1
        return self._commit_log.store_timestamp_at(minimum, len(head))

    @property
    def min_phy_offset(self) -> int:
        """First commit-log offset still on disk (-1 when there are no files)."""
        return self._commit_log.min_offset

    @property
    def max_phy_offset(self) -> int:
        """Commit-log offset the next message will get."""
        return self._commit_log.max_offset

    @property
    def flushed_phy_offset(self) -> int:
        return self._commit_log.flushed_where

    def select_one_message_by_offset(
        self, commit_log_offset: int, size: int | None = None
    ) -> bytes | None:
        """The stored record at a commit-log offset (VIEW_MESSAGE_BY_ID), if
        there is a whole, well-formed one."""
        record = self._commit_log.read_record(commit_log_offset, size)
        if record is None:
            return None
        try:
            _, end = decode_message(record)
        except ProtocolError:
            return None
        return record if end == len(record) else None

    def look_message_by_offset(
        self, commit_log_offset: int, size: int | None = None
    ) -> MessageExt | None:
        """The message at a commit-log offset, decoded (body as stored)."""
        record = self.select_one_message_by_offset(commit_log_offset, size)
        if record is None:
            return None
        return decode_message(record)[0]

    @property
    def index_enabled(self) -> bool:
        return self._files.index is not None

    async def query_message(
        self, topic: str, key: str, max_num: int, begin: int, end: int
    ) -> QueryMessageResult:
        """Messages indexed under ``topic#key`` stored in ``[begin, end]``,
        at most ``min(max_num, maxMsgsNumBatch)`` (``queryMessage``). Like
        Java it does not compare keys: a hash collision returns the other
        key's message too (clients filter). Runs in a worker thread."""
        index = self._files.index
        if index is None:
            return QueryMessageResult()
        max_num = min(max_num, self.config.max_msgs_num_batch)
        files = [f for f in self._commit_log.files if f.acquire()]
        index.readers += 1
        try:
            return await trio.to_thread.run_sync(
                self._query_message, index, topic, key, max_num, begin, end
            )
        finally:
            index.readers -= 1
            for data_file in files:
                data_file.release()

    def _query_message(
        self, index: IndexService, topic: str, key: str, max_num: int, begin: int, end: int
    ) -> QueryMessageResult:
        result = QueryMessageResult()
        last_query_time = end
        # Java's three rounds: when every offset found is gone from the
        # commit log, look again before the first one's store time.
        for _ in range(3):
            found = index.query_offset(topic, key, max_num, begin, last_query_time)
            if not found.phy_offsets:
                break
            result.index_last_update_timestamp = found.index_last_update_timestamp
            result.index_last_update_phyoffset = found.index_last_update_phyoffset
            for number, offset in enumerate(sorted(found.phy_offsets)):
                try:
                    record = self._commit_log.read_record(offset)
                except OSError:
                    record = None
                if record is None or len(record) < 80:
                    continue
                if number == 0:
                    last_query_time = self._commit_log.store_timestamp_at(offset, len(record))
                result.messages.append(record)
            if result.messages or last_query_time < begin:
                break
        return result

    def check_in_disk_by_consume_offset(
        self, topic: str, queue_id: int, consume_offset: int
    ) -> bool:
        """Whether the message at a queue offset is probably no longer cached."""
        queue = self.consume_queue(topic, queue_id)
        entry = queue.entry(consume_offset) if queue is not None else None
        if entry is None:
            return False
        return self._commit_log.max_offset - entry[0] > self._in_memory_bytes

    def queue_offset_table(self) -> dict[tuple[str, int], int]:
        """(topic, queue id) -> next queue offset, for every queue written to
        (Java's ``topicQueueTable``)."""
        return dict(self._files.topic_queue_table)

    def topics(self) -> list[str]:
        return list(self._files.queues)

    def queue_ids(self, topic: str) -> list[int]:
        return sorted(self._files.queues.get(topic, {}))

    def now(self) -> int:
        return self._now_ms()

    def dispatch_behind_bytes(self) -> int:
        """Always 0: messages are indexed as they are appended."""
        return 0

    def running_stats(self) -> dict[str, str]:
        """Part of GET_BROKER_RUNTIME_INFO: disk ratios, commit-log bounds,
        delayed-delivery progress."""
        stats = {
            "commitLogDiskRatio": str(self._disk_used_ratio(str(self.config.commit_log_dir))),
            "consumeQueueDiskRatio": str(
                self._disk_used_ratio(str(self._files.consume_queue_root))
            ),
            "commitLogMinOffset": str(self.min_phy_offset),
            "commitLogMaxOffset": str(self.max_phy_offset),
        }
        stats.update(self.schedule.running_stats())
        return stats
