"""The files of a message store and the tables derived from them.

:class:`StoreFiles` holds the commit log, the consume queues by topic and
queue id, the next queue offset of every queue (Java's ``topicQueueTable``),
the message index and the checkpoint. Recovery, cleanup and the store itself work on it; only
the trio thread changes it once the store runs.
"""

from __future__ import annotations

from collections.abc import Iterator

from pyrocket.broker.store.checkpoint import StoreCheckpoint
from pyrocket.broker.store.commitlog import CommitLog, DispatchRequest
from pyrocket.broker.store.config import MessageStoreConfig
from pyrocket.broker.store.consumequeue import ConsumeQueue
from pyrocket.broker.store.consumequeue_ext import ConsumeQueueExt
from pyrocket.broker.store.index import IndexService
from pyrocket.protocol.message import MessageSysFlag

#: Transaction types whose messages get no consume-queue entry.
NOT_INDEXED = (
    MessageSysFlag.TRANSACTION_PREPARED_TYPE,
    MessageSysFlag.TRANSACTION_ROLLBACK_TYPE,
)


class StoreFiles:
    """Commit log, consume queues, queue offsets and checkpoint of one store."""

    def __init__(self, config: MessageStoreConfig) -> None:
        self.config = config
        self.root = config.root_dir
        self.consume_queue_root = self.root / "consumequeue"
        self.consume_queue_ext_root = self.root / "consumequeue_ext"
        self.commit_log = CommitLog(config.commit_log_dir, config.mapped_file_size_commit_log)
        self.queues: dict[str, dict[int, ConsumeQueue]] = {}
        #: (topic, queue id) -> the queue offset the next message gets.
        self.topic_queue_table: dict[tuple[str, int], int] = {}
        self.checkpoint: StoreCheckpoint | None = None
        #: Store time of the last message given a consume-queue entry.
        self.last_dispatch_timestamp = 0
        #: The message index (``messageIndexEnable``), None when disabled.
        self.index: IndexService | None = (
            IndexService(self.root / "index", config.max_hash_slot_num, config.max_index_num)
            if config.message_index_enable
            else None
        )

    def all_queues(self) -> Iterator[ConsumeQueue]:
        for queues in self.queues.values():
            yield from queues.values()

    def queue(self, topic: str, queue_id: int) -> ConsumeQueue | None:
        return self.queues.get(topic, {}).get(queue_id)

    def find_or_create_queue(self, topic: str, queue_id: int) -> ConsumeQueue:
        """The queue's object; a new one holds no file until its first entry."""
        queue = self.queue(topic, queue_id)
        return queue if queue is not None else self.new_queue(topic, queue_id)

    def new_queue(self, topic: str, queue_id: int) -> ConsumeQueue:
        ext = None
        if self.config.enable_consume_queue_ext:
            ext = ConsumeQueueExt(
                topic,
                queue_id,
                self.consume_queue_ext_root / topic / str(queue_id),
                self.config.mapped_file_size_consume_queue_ext,
            )
        queue = ConsumeQueue(
            topic,
            queue_id,
            self.consume_queue_root / topic / str(queue_id),
            self.config.consume_queue_file_size,
            ext,
        )
        self.queues.setdefault(topic, {})[queue_id] = queue
        return queue

    def dispatch(self, request: DispatchRequest) -> None:
        """Index a message a commit-log scan found (skipped when already indexed)."""
        if request.sys_flag & MessageSysFlag.TRANSACTION_ROLLBACK_TYPE in NOT_INDEXED:
            return
        queue = self.find_or_create_queue(request.topic, request.queue_id)
        if queue.put(
            request.commit_log_offset,
            request.size,
            request.tags_code,
            request.queue_offset,
            request.store_timestamp,
        ):
            self.last_dispatch_timestamp = max(
                self.last_dispatch_timestamp, request.store_timestamp
            )

    def close(self) -> None:
        """Close every file descriptor (blocking-free)."""
        for queue in self.all_queues():
            queue.files.close()
            if queue.ext is not None:
                queue.ext.files.close()
        self.commit_log.files.close()
        if self.index is not None:
            self.index.close()
        if self.checkpoint is not None:
            self.checkpoint.close()
            self.checkpoint = None
