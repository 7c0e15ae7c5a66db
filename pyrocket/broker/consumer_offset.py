"""Consumer offsets (Java's ``ConsumerOffsetManager``): how far each consumer
group has consumed each queue.

The table maps ``topic@group`` to queue id -> next offset to consume, a
``ConcurrentHashMap(512)`` of ``ConcurrentHashMap(32)`` in Java, modelled here
with :class:`~pyrocket.protocol.javahash.JavaConcurrentHashMap` so that
GET_ALL_CONSUMER_OFFSET and the file list the entries in Java's order. It is
kept in ``<storePathRootDir>/config/consumerOffset.json`` in Java's layout
(fastjson's tab-indented ``{"offsetTable":{"t@g":{0:5,1:3}}}``), so a Java
broker reads pyrocket's file and the other way round. Commits only change
memory; the broker writes the file every ``flushConsumerOffsetInterval`` ms and
at shutdown (:meth:`ConsumerOffsetManager.run`, :meth:`persist`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import trio

from pyrocket.persist import PersistError, file_writer, load_with_backup
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies.admin import ConsumerOffsetSerializeWrapper
from pyrocket.protocol.javahash import JavaConcurrentHashMap, JavaHashSet, int_hash

log = logging.getLogger("pyrocket.broker")

TOPIC_GROUP_SEPARATOR: Final = "@"
#: Java starts the periodic persistence 10 s after start-up.
FIRST_PERSIST_DELAY: Final = 10.0

QueueOffsets = JavaConcurrentHashMap[int, int]


def consumer_offset_json_path(store_path_root_dir: str | Path) -> Path:
    """``BrokerPathConfigHelper.getConsumerOffsetPath``."""
    return Path(store_path_root_dir) / "config" / "consumerOffset.json"


def _queue_table(capacity: int | None = None) -> QueueOffsets:
    # Integer keys: hashed as Java Integers.
    return JavaConcurrentHashMap(capacity, hasher=int_hash)


def _parse(text: str) -> ConsumerOffsetSerializeWrapper:
    return ConsumerOffsetSerializeWrapper.from_json(fastjson.loads(text), "consumerOffset.json")


class ConsumerOffsetManager:
    """The offset table, its file and its persistence.

    ``min_offset_in_queue(topic, queue_id)`` is the store's oldest offset of
    a queue (for the queries that skip offsets of deleted messages).
    """

    def __init__(
        self,
        path: Path,
        *,
        min_offset_in_queue: Callable[[str, int], int] | None = None,
    ) -> None:
        self.path = path
        self._min_offset = min_offset_in_queue or (lambda topic, queue_id: 0)
        self.offset_table: JavaConcurrentHashMap[str, QueueOffsets] = JavaConcurrentHashMap(512)
        #: The table's one writer; the broker runs :meth:`CoalescingWriter.run`.
        self.writer = file_writer(str(path), lambda: self.encode(pretty=True), log)

    # -- loading and persisting ---------------------------------------------

    def load(self) -> None:
        """Read ``consumerOffset.json`` (or its ``.bak``). Blocking. Raises
        ConfigError naming a damaged file; the file is left as it is."""
        wrapper = load_with_backup(self.path, _parse)
        if wrapper is None:
            return
        # fastjson fills fresh default-capacity maps, which replace the table.
        table: JavaConcurrentHashMap[str, QueueOffsets] = JavaConcurrentHashMap()
        for key, offsets in wrapper.offset_table.items():
            queues = _queue_table()
            for queue_id, offset in offsets.items():
                queues[queue_id] = offset
            table[key] = queues
        self.offset_table = table

    def to_wrapper(self) -> ConsumerOffsetSerializeWrapper:
        return ConsumerOffsetSerializeWrapper(self.offset_table)

    def encode(self, pretty: bool = False) -> str:
        """The table as Java writes it (GET_ALL_CONSUMER_OFFSET's body; pretty
        for the file)."""
        wrapper = self.to_wrapper()
        if pretty:
            return fastjson.dumps_pretty(wrapper)
        return fastjson.dumps(wrapper.to_json())

    async def persist(self) -> None:
        """Return once the file (written atomically, the old one kept as
        ``.bak``) holds the table as it is now; concurrent calls share one
        write (:attr:`writer`). Failures are logged; the table in memory
        stays and the next persist writes it again."""
        with contextlib.suppress(PersistError):
            await self.writer.commit()

    async def run(
        self,
        interval_ms: Callable[[], int],
        *,
        first_delay: float = FIRST_PERSIST_DELAY,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the table's writer, and persist every ``interval_ms()``
        milliseconds until cancelled (read at each round:
        UPDATE_BROKER_CONFIG may change it)."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.writer.run)
            task_status.started()
            await trio.sleep(first_delay)
            while True:
                await self.persist()
                await trio.sleep(max(1, interval_ms()) / 1000)

    # -- offsets ------------------------------------------------------------

    @staticmethod
    def key(topic: str, group: str) -> str:
        return f"{topic}{TOPIC_GROUP_SEPARATOR}{group}"

    def commit_offset(
        self, client_host: str, group: str, topic: str, queue_id: int, offset: int
    ) -> None:
        """Record that ``group`` will next consume ``offset`` of the queue."""
        key = self.key(topic, group)
        queues = self.offset_table.get(key)
        if queues is None:
            queues = _queue_table(32)
            queues[queue_id] = offset
            self.offset_table[key] = queues
            return
        stored = queues.get(queue_id)
        queues[queue_id] = offset
        if stored is not None and offset < stored:
            log.warning(
                "[NOTIFYME]update consumer offset less than store. clientHost=%s, key=%s, "
                "queueId=%d, requestOffset=%d, storeOffset=%d",
                client_host,
                key,
                queue_id,
                offset,
                stored,
            )

    def query_offset(self, group: str, topic: str, queue_id: int) -> int:
        """The committed offset, -1 when there is none."""
        queues = self.offset_table.get(self.key(topic, group))
        if queues is None:
            return -1
        return queues.get(queue_id, -1)

    def query_offsets(self, group: str, topic: str) -> Mapping[int, int] | None:
        return self.offset_table.get(self.key(topic, group))

    def which_topic_by_consumer(self, group: str) -> JavaHashSet[str]:
        """Topics ``group`` has offsets for (a HashSet, Java's order)."""
        topics: JavaHashSet[str] = JavaHashSet()
        for key in self.offset_table:
            parts = key.split(TOPIC_GROUP_SEPARATOR)
            if len(parts) == 2 and parts[1] == group:
                topics.add(parts[0])
        return topics

    def which_group_by_topic(self, topic: str) -> JavaHashSet[str]:
        """Groups with offsets for ``topic`` (a HashSet, Java's order)."""
        groups: JavaHashSet[str] = JavaHashSet()
        for key in self.offset_table:
            parts = key.split(TOPIC_GROUP_SEPARATOR)
            if len(parts) == 2 and parts[0] == topic:
                groups.add(parts[1])
        return groups

    def clone_offset(self, src_group: str, dest_group: str, topic: str) -> None:
        offsets = self.offset_table.get(self.key(topic, src_group))
        if offsets is not None:
            copy = _queue_table()
            for queue_id, offset in offsets.items():
                copy[queue_id] = offset
            self.offset_table[self.key(topic, dest_group)] = copy

    def query_min_offset_in_all_group(
        self, topic: str, filter_groups: str | None
    ) -> dict[int, int]:
        """The smallest committed offset of each queue of ``topic`` over all
        groups except ``filter_groups`` (comma-separated), ignoring offsets
        below the queue's oldest message."""
        excluded = (
            set(filter_groups.split(",")) if filter_groups and filter_groups.strip() else set()
        )
        result: dict[int, int] = {}
        for key, offsets in self.offset_table.items():
            parts = key.split(TOPIC_GROUP_SEPARATOR)
            if len(parts) < 2 or parts[0] != topic or parts[1] in excluded:
                continue
            for queue_id, offset in offsets.items():
                if offset >= self._min_offset(topic, queue_id):
                    current = result.get(queue_id)
                    result[queue_id] = offset if current is None else min(offset, current)
        return result

    def scan_unsubscribed_topic(self, is_subscribed: Callable[[str, str], bool]) -> None:
        """Forget offsets of groups no longer subscribed to a topic whose
        every committed offset is at or below the queue's oldest message."""
        for key, offsets in list(self.offset_table.items()):
            parts = key.split(TOPIC_GROUP_SEPARATOR)
            if len(parts) != 2:
                continue
            topic, group = parts
            if is_subscribed(group, topic) or not offsets:
                continue
            if all(offset <= self._min_offset(topic, q) for q, offset in offsets.items()):
                del self.offset_table[key]
                log.warning("remove topic offset, %s", key)


__all__ = [
    "FIRST_PERSIST_DELAY",
    "TOPIC_GROUP_SEPARATOR",
    "ConsumerOffsetManager",
    "consumer_offset_json_path",
]
