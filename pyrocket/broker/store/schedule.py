"""Delayed delivery (Java's ``ScheduleMessageService``).

A message with delay level ``L`` (property ``DELAY``) is stored in topic
``SCHEDULE_TOPIC_XXXX``, queue ``L - 1``, with ``REAL_TOPIC`` / ``REAL_QID``
added; its consume-queue tags code is the time it is due. One task per level
walks that queue in order: when an entry is due it puts the message back
into its real topic and queue (``DELAY`` dropped from the map but, as in
Java, still in the stored properties string), otherwise it sleeps until the
entry is due. The next queue offset per level is kept in
``<root>/config/delayOffset.json`` in Java's layout.

A message the store refuses for what it is (MESSAGE_ILLEGAL: say
``maxMessageSize`` was lowered since it was stored) is moved aside: one
error log names it, its level goes on with the next message, and it stays
in the schedule topic for an operator to find. Java retries such a message
every 10 s for ever, holding back every later message of its level. A
refusal that says the store cannot take any message now (not running, disk
full, a failed write) is retried, as in Java, since the next message would
fare no better.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final

import trio
from trio_util import AsyncValue

from pyrocket.broker.store.commitlog import SCHEDULE_TOPIC
from pyrocket.broker.store.config import MessageStoreConfig
from pyrocket.broker.store.consumequeue import ConsumeQueue
from pyrocket.broker.store.model import BrokerMessage, PutMessageResult, PutMessageStatus
from pyrocket.errors import PyrocketError
from pyrocket.persist import load_with_backup, write_atomically, write_atomically_async
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies import DelayOffsetSerializeWrapper
from pyrocket.protocol.javahash import JavaConcurrentHashMap, int_hash
from pyrocket.protocol.message import MessageConst, MessageExt, encode_properties, java_properties

log = logging.getLogger(__name__)

#: Transaction half messages are never delivered from here (Java skips them).
RMQ_SYS_TRANS_HALF_TOPIC: Final = "RMQ_SYS_TRANS_HALF_TOPIC"
#: Wait before retrying a delivery the store refused (Java's DELAY_FOR_A_PERIOD).
RETRY_DELAY_S: Final = 10.0
#: Java waits this long before the first pass over each level.
FIRST_DELAY_S: Final = 1.0
#: The store refused the message itself: retrying cannot help.
_REFUSED_FOR_GOOD: Final = frozenset(
    {PutMessageStatus.MESSAGE_ILLEGAL, PutMessageStatus.PROPERTIES_SIZE_EXCEEDED}
)
#: Stored, only the wait for a flush or a slave was not confirmed.
_STORED: Final = frozenset(
    {
        PutMessageStatus.PUT_OK,
        PutMessageStatus.FLUSH_DISK_TIMEOUT,
        PutMessageStatus.FLUSH_SLAVE_TIMEOUT,
        PutMessageStatus.SLAVE_NOT_AVAILABLE,
    }
)


def queue_id_to_delay_level(queue_id: int) -> int:
    return queue_id + 1


def delay_level_to_queue_id(level: int) -> int:
    return level - 1


def _parse_offsets(text: str) -> dict[int, int]:
    document = fastjson.loads(text)
    if not isinstance(document, dict):
        raise ValueError("expected a JSON object")
    table = document.get("offsetTable", {})
    if not isinstance(table, dict):
        raise ValueError("offsetTable is not an object")
    offsets: dict[int, int] = {}
    for key, value in table.items():
        level = int(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"offset of level {key} is not an integer")
        offsets[level] = value
    return offsets


class ScheduleMessageService:
    """Delay levels, per-level offsets and the delivery tasks.

    It reaches the store only through the callables it is given:
    ``put_message`` (deliver a due message), ``consume_queue`` and
    ``queue_max_offset`` (walk and wait on a level's queue),
    ``max_offset_in_queue`` (statistics) and ``look_message_by_offset``
    (read a due message); ``now_ms`` is the store clock.
    """

    def __init__(
        self,
        config: MessageStoreConfig,
        now_ms: Callable[[], int],
        *,
        put_message: Callable[[BrokerMessage], Awaitable[PutMessageResult]],
        consume_queue: Callable[[str, int], ConsumeQueue | None],
        queue_max_offset: Callable[[str, int], AsyncValue],
        max_offset_in_queue: Callable[[str, int], int],
        look_message_by_offset: Callable[[int, int], MessageExt | None],
    ) -> None:
        self._put_message = put_message
        self._consume_queue = consume_queue
        self._queue_max_offset = queue_max_offset
        self._max_offset_in_queue = max_offset_in_queue
        self._look_message_by_offset = look_message_by_offset
        self._now_ms = now_ms
        self.delay_levels_ms = config.delay_levels_ms
        self.max_delay_level = len(self.delay_levels_ms)
        self.path = Path(config.store_path_root_dir) / "config" / "delayOffset.json"
        self._persist_interval = config.flush_delay_offset_interval / 1000
        # Java keeps it in a ConcurrentHashMap(32): fastjson writes that order.
        self.offset_table: JavaConcurrentHashMap[int, int] = JavaConcurrentHashMap(
            32, hasher=int_hash
        )
        self._persisted: dict[int, int] = {}
        #: Messages moved aside since start (see the module docstring).
        self.moved_aside = 0

    def delay_ms(self, level: int) -> int | None:
        if 1 <= level <= self.max_delay_level:
            return self.delay_levels_ms[level - 1]
        return None

    def deliver_timestamp(self, level: int, store_timestamp: int) -> int:
        """``computeDeliverTimestamp``: due time of a message of ``level``."""
        level = min(level, self.max_delay_level)
        delay = self.delay_ms(level)
        return store_timestamp + (delay if delay is not None else 1000)

    # -- persistence --------------------------------------------------------

    def load(self) -> None:
        """Read delayOffset.json (blocking). Raises ConfigError for a damaged file."""
        offsets = load_with_backup(self.path, _parse_offsets)
        if offsets:
            for level, offset in offsets.items():
                self.offset_table[level] = offset
        self._persisted = dict(self.offset_table)

    def encode(self, pretty: bool = False) -> str:
        """The offset table as fastjson writes ``DelayOffsetSerializeWrapper``:
        compact for GET_ALL_DELAY_OFFSET answers, pretty for the file."""
        wrapper = DelayOffsetSerializeWrapper(offset_table=self.offset_table)
        if pretty:
            return fastjson.dumps_pretty(wrapper)
        return wrapper.encode().decode("utf-8")

    def persist(self) -> None:
        """Write delayOffset.json if it changed (blocking)."""
        current = dict(self.offset_table)
        if current != self._persisted:
            write_atomically(self.path, self.encode(pretty=True))
            self._persisted = current

    def running_stats(self) -> dict[str, str]:
        """``buildRunningStats``: ``scheduleMessageOffset_<level>`` ->
        ``"<delivered offset>,<max offset>"``."""
        stats: dict[str, str] = {}
        for level, offset in self.offset_table.items():
            max_offset = self._max_offset_in_queue(SCHEDULE_TOPIC, delay_level_to_queue_id(level))
            stats[f"scheduleMessageOffset_{level}"] = f"{offset},{max_offset}"
        return stats

    # -- delivery -----------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver due messages of every level, and persist offsets, until cancelled."""
        async with trio.open_nursery() as nursery:
            for level in range(1, self.max_delay_level + 1):
                nursery.start_soon(self._deliver_level, level)
            nursery.start_soon(self._persist_periodically)
            task_status.started()

    async def _persist_periodically(self) -> None:
        # The one writer of delayOffset.json while delivering. The table is
        # read on the event loop (the delivery tasks change it there) and
        # only the bytes go to the thread.
        while True:
            await trio.sleep(self._persist_interval)
            current = dict(self.offset_table)
            if current == self._persisted:
                continue
            try:
                await write_atomically_async(self.path, self.encode(pretty=True))
            except OSError as exc:
                log.error("writing %s failed (retried next period): %s", self.path, exc)
                continue
            self._persisted = current

    async def _deliver_level(self, level: int) -> None:
        await trio.sleep(FIRST_DELAY_S)
        queue_id = delay_level_to_queue_id(level)
        delay = self.delay_levels_ms[level - 1]
        queue_max = self._queue_max_offset(SCHEDULE_TOPIC, queue_id)
        offset = self.offset_table.get(level, 0)
        retrying = False
        while True:
            queue = self._consume_queue(SCHEDULE_TOPIC, queue_id)
            if queue is not None and offset < queue.min_offset_in_queue:
                offset = queue.min_offset_in_queue
            entry = queue.entry(offset) if queue is not None else None
            if entry is None:
                await queue_max.wait_value(lambda value, at=offset: value > at)
                continue
            physical, size, due = entry
            now = self._now_ms()
            if due > now + delay:
                due = now  # the clock went back: deliver rather than wait too long
            if due > now:
                await trio.sleep((due - now) / 1000)
                continue
            delivered = await self._deliver(level, offset, physical, size, retrying)
            if not delivered:
                retrying = True
                await trio.sleep(RETRY_DELAY_S)
                continue
            retrying = False
            offset += 1
            self.offset_table[level] = offset

    def _move_aside(self, level: int, offset: int, physical: int, why: str) -> bool:
        self.moved_aside += 1
        log.error(
            "delayed message of level %d at queue offset %d (commit-log offset %d) %s;"
            " moved aside, it stays in %s",
            level,
            offset,
            physical,
            why,
            SCHEDULE_TOPIC,
        )
        return True

    async def _deliver(
        self, level: int, offset: int, physical: int, size: int, retrying: bool
    ) -> bool:
        """Put one due message back into its real queue; False to retry
        later. Logs a failure once, however often it is retried."""
        message = self._look_message_by_offset(physical, size)
        if message is None:
            log.error("delayed message at %d (%d bytes) is unreadable, skipped", physical, size)
            return True
        try:
            inner = message_time_up(message)
        except (KeyError, ValueError) as exc:
            log.error("delayed message %s cannot be delivered (%s), dropped", message.msg_id, exc)
            return True
        if inner.topic == RMQ_SYS_TRANS_HALF_TOPIC:
            log.error("delayed message %s targets %s, skipped", message.msg_id, inner.topic)
            return True
        try:
            result = await self._put_message(inner)
        except PyrocketError as exc:
            return self._move_aside(
                level, offset, physical, f"could not be put back into {inner.topic}: {exc}"
            )
        if result.status in _STORED:
            return True
        if result.status in _REFUSED_FOR_GOOD:
            return self._move_aside(
                level,
                offset,
                physical,
                f"({message.msg_id}) was refused by {inner.topic} ({result.status.name})",
            )
        log.log(
            logging.DEBUG if retrying else logging.ERROR,
            "delayed message %s could not be put back into %s (%s), retrying every %g s",
            message.msg_id,
            inner.topic,
            result.status.name,
            RETRY_DELAY_S,
        )
        return False


def message_time_up(message: MessageExt) -> BrokerMessage:
    """The message to put back when it is due (``messageTimeup``). Raises
    KeyError / ValueError when REAL_TOPIC / REAL_QID are missing or bad."""
    properties = java_properties(message.properties)
    # Java computes the string before WAIT=false and dropping DELAY: both only
    # change the map, which decides the put.
    stored = encode_properties(properties)
    properties[MessageConst.PROPERTY_WAIT_STORE_MSG_OK] = "false"
    properties.pop(MessageConst.PROPERTY_DELAY_TIME_LEVEL, None)
    topic = properties[MessageConst.PROPERTY_REAL_TOPIC]
    queue_id = int(properties[MessageConst.PROPERTY_REAL_QUEUE_ID])
    mapping: Mapping[str, str] = properties
    return BrokerMessage(
        topic=topic,
        queue_id=queue_id,
        body=message.body,
        properties=mapping,
        properties_string=stored,
        flag=message.flag,
        sys_flag=message.sys_flag,
        born_timestamp=message.born_timestamp,
        born_host=message.born_host,
        store_host=message.store_host,
        reconsume_times=message.reconsume_times,
    )
