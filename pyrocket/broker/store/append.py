"""Putting messages into the store (Java's ``asyncPutMessage(s)`` and the
commit log's append): the checks that refuse a message, the delay-level
rewrite into the schedule topic, encoding and writing the record, indexing
it in its consume queue, arrival callbacks, and the FIFO append lock taken
while a file created ahead of need is still missing.

Appending never awaits (hence puts never interleave); the wait for a flush
under SYNC_FLUSH is the flushing part's (:mod:`pyrocket.broker.store.flush`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

import trio

from pyrocket.broker.store.backlog import Waiting, finish_waiting, safe_topic
from pyrocket.broker.store.commitlog import SCHEDULE_TOPIC, FileNotReady
from pyrocket.broker.store.config import BrokerRole
from pyrocket.broker.store.consumequeue import ConsumeQueue
from pyrocket.broker.store.consumequeue_ext import MIN_EXT_UNIT_SIZE
from pyrocket.broker.store.files import DataFile
from pyrocket.broker.store.index import is_indexed_type
from pyrocket.broker.store.model import (
    AppendMessageResult,
    AppendMessageStatus,
    ArrivalListener,
    BitMapCalculator,
    BrokerBatch,
    BrokerMessage,
    MessageArrival,
    PutMessageResult,
    PutMessageStatus,
)
from pyrocket.broker.store.schedule import delay_level_to_queue_id
from pyrocket.broker.store.state import StoreState
from pyrocket.broker.store.storefiles import NOT_INDEXED
from pyrocket.errors import ProtocolError
from pyrocket.protocol.message import (
    MAX_PROPERTIES_BYTES,
    MAX_TOPIC_BYTES,
    MessageConst,
    MessageSysFlag,
    create_offset_message_id,
    decode_properties,
    encode_properties,
    encode_stored_record,
    host_flags,
    java_crc32,
    java_properties,
    split_batch,
    stored_message_size,
    tags_hash_code,
)

#: Every part of the store logs as the store, so one logger name configures it.
log = logging.getLogger("pyrocket.broker.store.store")

_TRANSACTION_TYPE_MASK: Final = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE
_Item = TypeVar("_Item")


CREATE_MAPEDFILE_FAILED: Final = PutMessageStatus.CREATE_MAPEDFILE_FAILED


class StoreAppend(StoreState):
    """The putting part of :class:`~pyrocket.broker.store.store.MessageStore`."""

    def add_arrival_listener(self, listener: ArrivalListener) -> None:
        """Call ``listener`` after each message becomes readable (long polling)."""
        self._listeners.append(listener)

    def remove_arrival_listener(self, listener: ArrivalListener) -> None:
        self._listeners.remove(listener)

    def set_bit_map_calculator(self, calculator: BitMapCalculator | None) -> None:
        """Compute each message's filter bit map with ``calculator`` (Java's
        ``CommitLogDispatcherCalcBitMap``); kept only in consume-queue
        extension files (``enableConsumeQueueExt``)."""
        self._bit_map_calculator = calculator

    def _store_status(self) -> PutMessageStatus | None:
        if not self._running:
            return PutMessageStatus.SERVICE_NOT_AVAILABLE
        if self.config.broker_role is BrokerRole.SLAVE:
            return PutMessageStatus.SERVICE_NOT_AVAILABLE
        if self._cleaner.disk_full or self._write_error is not None:
            return PutMessageStatus.SERVICE_NOT_AVAILABLE
        return None

    async def put_message(
        self, message: BrokerMessage, *, appended: Callable[[], None] | None = None
    ) -> PutMessageResult:
        """Store one message (``asyncPutMessage``).

        Returns PUT_OK with where it landed; FLUSH_DISK_TIMEOUT when it was
        stored but SYNC_FLUSH could not confirm it within ``syncFlushTimeout``;
        under SYNC_MASTER, SLAVE_NOT_AVAILABLE when no slave is connected or
        the best is over ``haSlaveFallbehindMax`` behind, FLUSH_SLAVE_TIMEOUT
        when none acknowledged it within ``syncFlushTimeout``;
        MESSAGE_ILLEGAL for a message the layout cannot hold or a bad DELAY;
        SERVICE_NOT_AVAILABLE when the store is not running, is a slave, the
        disk is full or a write failed; CREATE_MAPEDFILE_FAILED / UNKNOWN_ERROR
        when the disk refused.

        ``appended``, when given, is called as soon as the message is in the
        commit log (or refused), before any wait for a flush: a caller that
        keeps puts in order may start the next one then. Such a caller also
        keeps its own loop fair, so the put does not yield before appending.
        """
        return await self._put(self._append_message, message, message.wait_store_msg_ok, appended)

    async def put_messages(
        self, batch: BrokerBatch, *, appended: Callable[[], None] | None = None
    ) -> PutMessageResult:
        """Store a batch (``asyncPutMessages``): all its messages go to one
        queue, consecutively, in one commit-log file. MESSAGE_ILLEGAL for a
        transactional or delayed batch, a malformed body or one over
        ``maxMessageSize``; otherwise as :meth:`put_message`."""
        return await self._put(self._append_batch, batch, batch.wait_store_msg_ok, appended)

    async def _put(
        self,
        append: Callable[[_Item], PutMessageResult],
        item: _Item,
        wait: bool,
        appended: Callable[[], None] | None,
    ) -> PutMessageResult:
        if appended is None:
            # A schedule point before anything is stored: a cancelled put
            # stores nothing, and a loop of puts cannot starve other tasks.
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
        # The usual case inline (no coroutine per layer): nothing waits for a
        # file, so this put appends at once.
        result = self._append_now(append, item)
        if result is None:
            result = await self._append(append, item)
        if appended is not None:
            appended()
        if not self.put_waits(result, wait):
            return result  # nothing to wait for
        return await self._after_append(result, wait)

    def try_put_message(self, message: BrokerMessage) -> PutMessageResult | None:
        """:meth:`put_message` without waiting: ``message`` appended (or
        refused) now, or None, having stored nothing, when its append has to
        wait for a file (then :meth:`put_message` stores it). A result for
        which :meth:`put_waits` is True still has its flush (or slave) to
        wait for: :meth:`finish_put` does that."""
        return self._append_now(self._append_message, message)

    def _append_now(
        self, append: Callable[[_Item], PutMessageResult], item: _Item
    ) -> PutMessageResult | None:
        """``item`` appended (or refused) now, or None, having stored
        nothing, when a put waits for a file or this append needs one."""
        refused = self._store_status()
        if refused is not None:
            return PutMessageResult(refused)
        if self._append_backlog:
            return None
        try:
            return append(item)
        except FileNotReady:
            return None

    async def _append(
        self, append: Callable[[_Item], PutMessageResult], item: _Item
    ) -> PutMessageResult:
        """Append at once when no put waits for a file; else, or when this
        append needs a file not created yet, queue behind the puts already
        waiting (FIFO) and have the file made in a worker thread first."""
        if not self._append_backlog:
            try:
                return append(item)
            except FileNotReady as exc:
                entry = Waiting(append, item)
                self._append_backlog.append(entry)
                return await self._drive_backlog(entry, exc)
        entry = Waiting(append, item)
        self._append_backlog.append(entry)
        try:
            await entry.event.wait()
        except BaseException:
            # Still queued (a woken put is never cancelled): nothing stored.
            entry.cancelled = True
            raise
        if entry.result is not None:
            return entry.result
        # The put ahead handed over the backlog: this one drives it now.
        return await self._drive_backlog(entry, None)

    async def _drive_backlog(self, own: Waiting, wanted: FileNotReady | None) -> PutMessageResult:
        """Append the queued puts in order, ``own`` first (the head of the
        backlog), making each missing file in a worker thread. Queued puts
        are appended in one synchronous sweep, so the backlog empties and
        later puts take the direct path again, rather than each being handed
        the turn through a task switch. When a later put needs a file after
        ``own`` is done, that put is handed the backlog to drive."""
        backlog = self._append_backlog
        try:
            while backlog:
                head = backlog[0]
                if head.cancelled:
                    backlog.popleft()
                    continue
                if wanted is not None:
                    if own.result is not None:
                        head.event.set()  # result None: head drives from here
                        return own.result
                    try:
                        await wanted.files.prepare_spare(wanted.base)
                    except OSError as exc:
                        log.error("cannot create a file in %s: %s", wanted.files.directory, exc)
                        finish_waiting(backlog.popleft(), PutMessageResult(CREATE_MAPEDFILE_FAILED))
                    wanted = None
                    continue
                refused = self._store_status()
                if refused is not None:
                    finish_waiting(backlog.popleft(), PutMessageResult(refused))
                    continue
                try:
                    result = head.append(head.item)
                except FileNotReady as exc:
                    wanted = exc
                    continue
                finish_waiting(backlog.popleft(), result)
        except BaseException:
            if own.result is None:
                own.cancelled = True
            # Hand the rest to the next live put, which takes over the wait.
            while backlog and backlog[0].cancelled:
                backlog.popleft()
            if backlog and not backlog[0].event.is_set():
                backlog[0].event.set()
            raise
        assert own.result is not None
        return own.result

    def _append_message(self, message: BrokerMessage) -> PutMessageResult:
        """Everything of a put that does not wait: checks, delay rewrite,
        append, dispatch. Never awaits, hence atomic. Raises FileNotReady,
        having changed nothing, when a file it needs is not created yet."""
        topic = message.topic
        properties_string = message.stored_properties()
        if len(topic) > MAX_TOPIC_BYTES or len(properties_string) > MAX_PROPERTIES_BYTES:
            return PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL)
        queue_id = message.queue_id
        properties = message.properties
        transaction = message.sys_flag & _TRANSACTION_TYPE_MASK
        if transaction in (
            MessageSysFlag.TRANSACTION_NOT_TYPE,
            MessageSysFlag.TRANSACTION_COMMIT_TYPE,
        ):
            try:
                level = message.delay_time_level
            except ValueError:
                return PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL)
            if level > 0:
                rewritten = java_properties(properties)
                if level > self.schedule.max_delay_level:
                    level = self.schedule.max_delay_level
                    rewritten[MessageConst.PROPERTY_DELAY_TIME_LEVEL] = str(level)
                rewritten[MessageConst.PROPERTY_REAL_TOPIC] = topic
                rewritten[MessageConst.PROPERTY_REAL_QUEUE_ID] = str(queue_id)
                properties = rewritten
                properties_string = encode_properties(rewritten)
                topic = SCHEDULE_TOPIC
                queue_id = delay_level_to_queue_id(level)
        if not safe_topic(topic):
            return PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL)
        topic_bytes = topic.encode("utf-8")
        properties_bytes = properties_string.encode("utf-8")
        if len(topic_bytes) > MAX_TOPIC_BYTES or len(properties_bytes) > MAX_PROPERTIES_BYTES:
            return PutMessageResult(
                PutMessageStatus.MESSAGE_ILLEGAL,
                AppendMessageResult(AppendMessageStatus.PROPERTIES_SIZE_EXCEEDED),
            )
        flags = host_flags(message.born_host, message.store_host)
        if message.sys_flag & MessageSysFlag.HOST_V6_FLAGS & ~flags:
            # An IPv6 bit for an IPv4 host: the record's layout would not
            # match its flags.
            return PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL)
        sys_flag = message.sys_flag | flags
        body = message.body
        length = stored_message_size(sys_flag, len(body), len(topic_bytes), len(properties_bytes))
        if length > self.config.max_message_size or length + 8 > self._commit_log.file_size:
            return PutMessageResult(
                PutMessageStatus.MESSAGE_ILLEGAL,
                AppendMessageResult(AppendMessageStatus.MESSAGE_SIZE_EXCEEDED),
            )
        index = self._files.index
        index_keys = (
            index.key_hashes(topic, properties)
            if index is not None and is_indexed_type(sys_flag)
            else []
        )
        if index is not None and not index.room_for(len(index_keys)):
            raise FileNotReady(index, len(index_keys))
        key = (topic, queue_id)
        indexed = transaction not in NOT_INDEXED
        queue_offset = self._files.topic_queue_table.get(key, 0) if indexed else 0
        queue = self._check_queue_file(topic, queue_id, queue_offset) if indexed else None
        now = self._now_ms()
        try:
            data_file, position = self._reserve(length)
        except OSError as exc:
            return self._write_failed(exc)
        physical = data_file.base + position
        record = encode_stored_record(
            topic_bytes,
            body,
            properties_bytes,
            queue_id,
            message.flag,
            queue_offset,
            physical,
            sys_flag,
            message.born_timestamp,
            message.born_host,
            now,
            message.store_host,
            message.reconsume_times,
            message.prepared_transaction_offset,
            java_crc32(body),
            checked=False,  # made above
        )
        try:
            self._commit_log.commit(data_file, position, record)
        except OSError as exc:
            return self._write_failed(exc)
        self._last_store_timestamp = now
        if index is not None:
            index.build_hashes(index_keys, physical, now)
        if queue is not None:
            self._files.topic_queue_table[key] = queue_offset + 1
            tags_code = tags_hash_code(properties.get(MessageConst.PROPERTY_TAGS))
            if topic == SCHEDULE_TOPIC:
                tags_code = self.schedule.deliver_timestamp(queue_id + 1, now)
            self._index(
                topic, queue_id, physical, length, tags_code, queue_offset, now, properties, queue
            )
        return PutMessageResult(
            PutMessageStatus.PUT_OK,
            AppendMessageResult(
                AppendMessageStatus.PUT_OK,
                wrote_offset=physical,
                wrote_bytes=length,
                msg_id=create_offset_message_id(message.store_host, physical),
                store_timestamp=now,
                logics_offset=queue_offset,
            ),
        )

    def _append_batch(self, batch: BrokerBatch) -> PutMessageResult:
        illegal = PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL)
        topic = batch.topic
        if len(topic) > MAX_TOPIC_BYTES or len(batch.body) > self.config.max_message_size:
            return illegal
        if batch.sys_flag & _TRANSACTION_TYPE_MASK != MessageSysFlag.TRANSACTION_NOT_TYPE:
            return illegal
        try:
            if batch.delay_time_level > 0:
                return illegal
        except ValueError:
            return illegal
        if not safe_topic(topic):
            return illegal
        try:
            items = split_batch(batch.body)
        except ProtocolError as exc:
            log.info("malformed batch for %s: %s", topic, exc)
            return illegal
        if not items:
            return illegal
        topic_bytes = topic.encode("utf-8")
        if len(topic_bytes) > MAX_TOPIC_BYTES:
            return illegal
        sys_flag = batch.sys_flag | host_flags(batch.born_host, batch.store_host)
        lengths = [
            stored_message_size(sys_flag, len(item.body), len(topic_bytes), len(item.properties))
            for item in items
        ]
        total = sum(lengths)
        if max(lengths) > self.config.max_message_size or total > self.config.max_message_size:
            return PutMessageResult(
                PutMessageStatus.MESSAGE_ILLEGAL,
                AppendMessageResult(AppendMessageStatus.MESSAGE_SIZE_EXCEEDED),
            )
        if total + 8 > self._commit_log.file_size:
            return illegal
        try:
            texts = [item.properties.decode("utf-8") for item in items]
        except UnicodeDecodeError:
            return illegal
        index = self._files.index
        item_properties = [decode_properties(text) for text in texts]
        index_keys = (
            [index.key_hashes(topic, props) for props in item_properties]
            if index is not None
            else []
        )
        needed = sum(len(keys) for keys in index_keys)
        if index is not None and not index.room_for(needed):
            raise FileNotReady(index, needed)
        key = (topic, batch.queue_id)
        first_queue_offset = self._files.topic_queue_table.get(key, 0)
        # A batch's entries may straddle two queue files: both must exist.
        queue = self._check_queue_file(topic, batch.queue_id, first_queue_offset, len(items))
        now = self._now_ms()
        try:
            data_file, position = self._reserve(total)
        except OSError as exc:
            return self._write_failed(exc)
        records: list[bytes] = []
        physical = data_file.base + position
        for number, (item, length) in enumerate(zip(items, lengths, strict=True)):
            records.append(
                encode_stored_record(
                    topic=topic_bytes,
                    body=item.body,
                    properties=item.properties,
                    queue_id=batch.queue_id,
                    flag=item.flag,
                    queue_offset=first_queue_offset + number,
                    physical_offset=physical,
                    sys_flag=sys_flag,
                    born_timestamp=batch.born_timestamp,
                    born_host=batch.born_host,
                    store_timestamp=now,
                    store_host=batch.store_host,
                    reconsume_times=batch.reconsume_times,
                    prepared_transaction_offset=0,
                    body_crc=java_crc32(item.body),
                )
            )
            physical += length
        try:
            self._commit_log.commit(data_file, position, b"".join(records))
        except OSError as exc:
            return self._write_failed(exc)
        self._last_store_timestamp = now
        self._files.topic_queue_table[key] = first_queue_offset + len(items)
        physical = data_file.base + position
        msg_ids: list[str] = []
        for number, length in enumerate(lengths):
            if index is not None:
                index.build_hashes(index_keys[number], physical, now)
            msg_ids.append(create_offset_message_id(batch.store_host, physical))
            physical += length
        tags = [tags_hash_code(p.get(MessageConst.PROPERTY_TAGS)) for p in item_properties]
        try:
            # The batch's entries in one write when they fit the last file.
            written = queue.put_batch(data_file.base + position, lengths, tags, first_queue_offset)
        except OSError as exc:
            # The commit log has the messages: recovery rebuilds the entries.
            log.error("consume queue %s/%d write failed: %s", topic, batch.queue_id, exc)
            self._write_error = str(exc)
        else:
            physical = data_file.base + position
            for number, (props, length) in enumerate(zip(item_properties, lengths, strict=True)):
                self._index(
                    topic,
                    batch.queue_id,
                    physical,
                    length,
                    tags[number],
                    first_queue_offset + number,
                    now,
                    props,
                    queue,
                    indexed=written,
                )
                physical += length
        return PutMessageResult(
            PutMessageStatus.PUT_OK,
            AppendMessageResult(
                AppendMessageStatus.PUT_OK,
                wrote_offset=data_file.base + position,
                wrote_bytes=total,
                msg_id=",".join(msg_ids),
                store_timestamp=now,
                logics_offset=first_queue_offset,
                msg_num=len(items),
            ),
        )

    def _check_queue_file(
        self, topic: str, queue_id: int, queue_offset: int, count: int = 1
    ) -> ConsumeQueue:
        """The queue, ready for the entries from ``queue_offset`` on; raises
        FileNotReady when they need a file that is not created yet."""
        queue = self._files.find_or_create_queue(topic, queue_id)
        base = queue.file_needed(queue_offset, count)
        if base is not None:
            raise FileNotReady(queue.files, base)
        if queue.ext is not None:
            unit = MIN_EXT_UNIT_SIZE
            if self._bit_map_calculator is not None:
                unit += self.config.bit_map_length_consume_queue_ext // 8
            base = queue.ext.file_needed(unit, count)
            if base is not None:
                raise FileNotReady(queue.ext.files, base)
        return queue

    def _reserve(self, length: int) -> tuple[DataFile, int]:
        """:meth:`CommitLog.reserve`, asking for the next spare after a roll."""
        data_file, position = self._commit_log.reserve(length)
        if position == 0:
            self._allocator.request(self._commit_log.files, data_file.end)
        return data_file, position

    def _write_failed(self, exc: OSError) -> PutMessageResult:
        log.error("commit log write failed, the store stops accepting messages: %s", exc)
        self._write_error = str(exc)
        return PutMessageResult(PutMessageStatus.UNKNOWN_ERROR)

    def _index(
        self,
        topic: str,
        queue_id: int,
        physical: int,
        size: int,
        tags_code: int,
        queue_offset: int,
        store_timestamp: int,
        properties: Mapping[str, str],
        queue: ConsumeQueue | None = None,
        *,
        indexed: bool = False,
    ) -> None:
        """Write the message's consume-queue entry (unless ``indexed``: a
        batch wrote it already), then ask for spare files and tell the
        arrival listeners. ``queue``: the consume queue of ``topic`` and
        ``queue_id``, when the caller has looked it up already."""
        if queue is None:
            queue = self._files.find_or_create_queue(topic, queue_id)
        bit_map: bytes | None = None
        calculator = self._bit_map_calculator
        if calculator is not None and queue.ext is not None:
            bit_map = calculator(topic, properties)
        try:
            if not indexed:
                queue.put(physical, size, tags_code, queue_offset, store_timestamp, bit_map)
        except OSError as exc:
            # The commit log has the message: recovery rebuilds the entry.
            log.error("consume queue %s/%d write failed: %s", topic, queue_id, exc)
            self._write_error = str(exc)
            return
        self._files.last_dispatch_timestamp = store_timestamp
        spare = queue.spare_wanted()
        if spare is not None:
            self._allocator.request(queue.files, spare)
        if queue.ext is not None:
            spare = queue.ext.spare_wanted()
            if spare is not None:
                self._allocator.request(queue.ext.files, spare)
        if self._listeners:
            arrival = MessageArrival(
                topic, queue_id, queue_offset + 1, tags_code, store_timestamp, properties
            )
            for listener in list(self._listeners):
                listener(arrival)
