"""The message store (Java's ``DefaultMessageStore``): puts, gets, flushing,
and the tasks that keep it (cleanup, delayed delivery), on Java 4.7.0's
on-disk formats.

Layout under ``storePathRootDir`` (Java's, so an operator recognises it)::

    commitlog/<20-digit offset>                  messages, rolled files
    consumequeue/<topic>/<queueId>/<offset>      20-byte index entries
    checkpoint                                   flush timestamps (and offsets)
    abort                                        present while running
    lock                                         held while running
    config/delayOffset.json                      delayed-delivery progress

Concurrency: all state lives in the trio thread. Appending a message is
synchronous (encode, ``pwrite`` to the commit log, ``pwrite`` to its consume
queue), so concurrent puts never interleave and need no lock. Blocking work
that may take long (fsync, recovery, file deletion, reads of data that is
probably not cached, file creation) runs in worker threads. Files are
created ahead of need (:class:`~pyrocket.broker.store.files.FileAllocator`);
an append that finds its next file missing waits for a worker thread to make
it, holding a FIFO lock that every later put queues on, so appends keep the
order in which puts arrived. Messages are indexed as they are
appended, so they are readable at once, as in Java (whose dispatcher thread
trails the commit log by about a millisecond).

Durability: with SYNC_FLUSH a put that waits for the store (the default;
property ``WAIT=false`` opts out) returns PUT_OK only after an fsync covering
it; concurrent puts share one fsync (group commit). With ASYNC_FLUSH a task
fsyncs every ``flushIntervalCommitLog`` ms. Consume queues are flushed every
``flushIntervalConsumeQueue`` ms and rebuilt from the commit log on recovery
(:mod:`pyrocket.broker.store.recovery`).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import logging
import os
import struct
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from typing import Any, Final, TypeVar

import trio
from trio_util import AsyncValue

from pyrocket.broker.store import recovery
from pyrocket.broker.store.cleanup import FileCleaner, disk_used_ratio
from pyrocket.broker.store.commitlog import SCHEDULE_TOPIC, FileNotReady
from pyrocket.broker.store.config import (
    CQ_STORE_UNIT_SIZE,
    BrokerRole,
    FlushDiskType,
    MessageStoreConfig,
)
from pyrocket.broker.store.consumequeue import ConsumeQueue
from pyrocket.broker.store.files import DataFile, FileAllocator
from pyrocket.broker.store.model import (
    AppendMessageResult,
    AppendMessageStatus,
    ArrivalListener,
    BrokerBatch,
    BrokerMessage,
    GetMessageResult,
    GetMessageStatus,
    MessageArrival,
    MessageFilter,
    PutMessageResult,
    PutMessageStatus,
    StoreError,
)
from pyrocket.broker.store.schedule import ScheduleMessageService, delay_level_to_queue_id
from pyrocket.broker.store.storefiles import NOT_INDEXED, StoreFiles
from pyrocket.errors import ProtocolError, PyrocketError
from pyrocket.persist import fsync_directory
from pyrocket.protocol.message import (
    MAX_PROPERTIES_BYTES,
    MAX_TOPIC_BYTES,
    MessageConst,
    MessageExt,
    MessageSysFlag,
    create_offset_message_id,
    decode_message,
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

log = logging.getLogger(__name__)

_ENTRY_ITER = struct.Struct(">qiq").iter_unpack
_TRANSACTION_TYPE_MASK: Final = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE
_Item = TypeVar("_Item")


def wall_clock_ms() -> int:
    """The default store clock: wall time in milliseconds."""
    return time.time_ns() // 1_000_000


def physical_memory_size() -> int:
    """``StoreUtil.TOTAL_PHYSICAL_MEMORY_SIZE`` (24 GiB when unknown, as Java)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 24 * 1024 * 1024 * 1024


def _safe_topic(topic: str) -> bool:
    """A topic is also a directory name: refuse anything that is not one."""
    return bool(topic) and topic not in (".", "..") and "/" not in topic and "\0" not in topic


class MessageStore:
    """A durable message store. Construct it, then run it in a nursery with
    :meth:`run` (or use :func:`open_message_store`); every other method is
    meant for the trio thread while it runs.

    ``now_ms`` is the store clock (store timestamps, delayed delivery, file
    expiry); ``disk_used_ratio`` reports the used fraction of a partition;
    both are injectable for tests.
    """

    def __init__(
        self,
        config: MessageStoreConfig,
        *,
        now_ms: Callable[[], int] = wall_clock_ms,
        disk_used_ratio: Callable[[str], float] = disk_used_ratio,
        total_physical_memory: int | None = None,
    ) -> None:
        self.config = config
        self._now_ms = now_ms
        self._disk_used_ratio = disk_used_ratio
        memory = (
            total_physical_memory if total_physical_memory is not None else physical_memory_size()
        )
        self._in_memory_bytes = int(memory * config.access_message_in_memory_max_ratio / 100)
        self._root = config.root_dir
        self._files = StoreFiles(config)
        self._commit_log = self._files.commit_log
        self._cleaner = FileCleaner(self._files, now_ms, disk_used_ratio)
        self._listeners: list[ArrivalListener] = []
        self.schedule = ScheduleMessageService(config, self, now_ms)
        self._lock_fd: int | None = None
        self._running = False
        self._write_error: str | None = None
        self._last_store_timestamp = 0
        self._flush_waiters: collections.deque[tuple[int, trio.Event]] = collections.deque()
        self._flush_wakeup = trio.Event()
        self._commit_log_flush_lock = trio.Lock()
        self._consume_queue_flush_lock = trio.Lock()
        self._allocator = FileAllocator()
        #: Held by a put waiting for a file to be created; later puts queue on it.
        self._append_lock = trio.Lock()
        #: Whether the previous run ended with a clean shutdown (known after start).
        self.last_exit_ok: bool | None = None

    # ======================================================================
    # Lifecycle

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Load and recover the store, run its background tasks (flush,
        cleanup, delayed delivery) and report ready through ``task_status``;
        on cancellation flush everything, write the checkpoint and remove the
        abort file. Raises StoreError / ConfigError when the data directory
        cannot be used."""
        await trio.to_thread.run_sync(self._load)
        try:
            async with trio.open_nursery() as nursery:
                if self.config.flush_disk_type is FlushDiskType.SYNC_FLUSH:
                    nursery.start_soon(self._group_commit_loop)
                else:
                    nursery.start_soon(self._async_flush_loop)
                nursery.start_soon(self._consume_queue_flush_loop)
                nursery.start_soon(self._cleaner.run)
                nursery.start_soon(self._allocator.run)
                commit_log_files = self._commit_log.files
                self._allocator.request(commit_log_files, commit_log_files.next_base() or 0)
                if self.config.broker_role is not BrokerRole.SLAVE:
                    await nursery.start(self.schedule.run)
                self._running = True
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._running = False
            with trio.CancelScope(shield=True):
                await self._shutdown()

    async def _shutdown(self) -> None:
        if self._files.checkpoint is None:
            self._release_lock()
            return
        clean = True
        try:
            await self.flush()
        except OSError as exc:
            log.error("final flush failed: %s", exc)
            clean = False
        if self._write_error is not None:
            clean = False
        try:
            await trio.to_thread.run_sync(self.schedule.persist)
        except (OSError, PyrocketError) as exc:
            log.error("persisting %s failed: %s", self.schedule.path, exc)
        await trio.to_thread.run_sync(self._close_files, clean)

    def _close_files(self, clean: bool) -> None:
        self._files.close()
        if clean:
            with contextlib.suppress(FileNotFoundError):
                (self._root / "abort").unlink()
            fsync_directory(self._root)
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def is_running(self) -> bool:
        return self._running

    def update_config(self, config: MessageStoreConfig) -> None:
        """Use ``config`` from now on (UPDATE_BROKER_CONFIG). Settings read at
        use time take effect (retention, disk ratio, message size, transfer
        limits, flush timeout); paths, file sizes, role and flush type are
        fixed at start and must not differ."""
        self.config = config
        self._files.config = config
        self._cleaner.update_config(config)

    # ======================================================================
    # Loading and recovery (blocking; runs in a worker thread before start)

    def _load(self) -> None:
        root = self._root
        root.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            abort = root / "abort"
            self.last_exit_ok = not abort.exists()
            self.schedule.load()
            recovery.load(self._files)
            recovery.recover(self._files, self.schedule.deliver_timestamp, normal=self.last_exit_ok)
            abort.touch()
            fsync_directory(root)
        except BaseException:
            self._files.close()
            self._release_lock()
            raise

    def _take_lock(self) -> None:
        path = self._root / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            # A POSIX record lock on the first byte: what Java's tryLock(0, 1) takes,
            # so a Java broker and pyrocket exclude each other too.
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"{path}: the store is in use by another process") from exc
        os.pwrite(fd, b"lock", 0)
        self._lock_fd = fd

    # ======================================================================
    # Putting messages

    def add_arrival_listener(self, listener: ArrivalListener) -> None:
        """Call ``listener`` after each message becomes readable (long polling)."""
        self._listeners.append(listener)

    def remove_arrival_listener(self, listener: ArrivalListener) -> None:
        self._listeners.remove(listener)

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
        SLAVE_NOT_AVAILABLE under SYNC_MASTER (pyrocket has no replication);
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
        refused = self._store_status()
        result = (
            PutMessageResult(refused) if refused is not None else await self._append(append, item)
        )
        if appended is not None:
            appended()
        if result.append_result is None or not result.append_result.is_ok:
            return result
        return await self._after_append(result, wait)

    async def _append(
        self, append: Callable[[_Item], PutMessageResult], item: _Item
    ) -> PutMessageResult:
        """Append at once when nothing waits for a file; else, or when this
        append needs a file not created yet, queue on the append lock (FIFO)
        and have the file made in a worker thread first."""
        wanted: FileNotReady | None = None
        if not self._append_lock.locked():
            try:
                return append(item)
            except FileNotReady as exc:
                wanted = exc
        # Acquiring a free lock does not yield first: nobody overtakes.
        async with self._append_lock:
            while True:
                if wanted is not None:
                    try:
                        await wanted.files.prepare_spare(wanted.base)
                    except OSError as exc:
                        log.error("cannot create a file in %s: %s", wanted.files.directory, exc)
                        return PutMessageResult(PutMessageStatus.CREATE_MAPEDFILE_FAILED)
                refused = self._store_status()
                if refused is not None:
                    return PutMessageResult(refused)
                try:
                    return append(item)
                except FileNotReady as exc:
                    wanted = exc

    async def _after_append(self, result: PutMessageResult, wait: bool) -> PutMessageResult:
        appended = result.append_result
        assert appended is not None
        status = PutMessageStatus.PUT_OK
        if self.config.flush_disk_type is FlushDiskType.SYNC_FLUSH:
            if wait:
                if not await self._wait_flushed(appended.wrote_offset + appended.wrote_bytes):
                    status = PutMessageStatus.FLUSH_DISK_TIMEOUT
            else:
                self._flush_wakeup.set()
        if self.config.broker_role is BrokerRole.SYNC_MASTER and wait:
            # Java answers this when no slave is connected; pyrocket has none.
            status = PutMessageStatus.SLAVE_NOT_AVAILABLE
        if status is PutMessageStatus.PUT_OK:
            return result
        return PutMessageResult(status, appended)

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
        if not _safe_topic(topic):
            return PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL)
        topic_bytes = topic.encode("utf-8")
        properties_bytes = properties_string.encode("utf-8")
        if len(topic_bytes) > MAX_TOPIC_BYTES or len(properties_bytes) > MAX_PROPERTIES_BYTES:
            return PutMessageResult(
                PutMessageStatus.MESSAGE_ILLEGAL,
                AppendMessageResult(AppendMessageStatus.PROPERTIES_SIZE_EXCEEDED),
            )
        sys_flag = message.sys_flag | host_flags(message.born_host, message.store_host)
        body = message.body
        length = stored_message_size(sys_flag, len(body), len(topic_bytes), len(properties_bytes))
        if length > self.config.max_message_size or length + 8 > self._commit_log.file_size:
            return PutMessageResult(
                PutMessageStatus.MESSAGE_ILLEGAL,
                AppendMessageResult(AppendMessageStatus.MESSAGE_SIZE_EXCEEDED),
            )
        key = (topic, queue_id)
        indexed = transaction not in NOT_INDEXED
        queue_offset = self._files.topic_queue_table.get(key, 0) if indexed else 0
        if indexed:
            self._check_queue_file(topic, queue_id, queue_offset)
        now = self._now_ms()
        try:
            data_file, position = self._reserve(length)
        except OSError as exc:
            return self._write_failed(exc)
        physical = data_file.base + position
        record = encode_stored_record(
            topic=topic_bytes,
            body=body,
            properties=properties_bytes,
            queue_id=queue_id,
            flag=message.flag,
            queue_offset=queue_offset,
            physical_offset=physical,
            sys_flag=sys_flag,
            born_timestamp=message.born_timestamp,
            born_host=message.born_host,
            store_timestamp=now,
            store_host=message.store_host,
            reconsume_times=message.reconsume_times,
            prepared_transaction_offset=message.prepared_transaction_offset,
            body_crc=java_crc32(body),
        )
        try:
            self._commit_log.commit(data_file, position, record)
        except OSError as exc:
            return self._write_failed(exc)
        self._last_store_timestamp = now
        if indexed:
            self._files.topic_queue_table[key] = queue_offset + 1
            tags_code = tags_hash_code(properties.get(MessageConst.PROPERTY_TAGS))
            if topic == SCHEDULE_TOPIC:
                tags_code = self.schedule.deliver_timestamp(queue_id + 1, now)
            self._index(topic, queue_id, physical, length, tags_code, queue_offset, now, properties)
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
        if not _safe_topic(topic):
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
        key = (topic, batch.queue_id)
        first_queue_offset = self._files.topic_queue_table.get(key, 0)
        # A batch's entries may straddle two queue files: both must exist.
        self._check_queue_file(topic, batch.queue_id, first_queue_offset, len(items))
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
        for number, (text, length) in enumerate(zip(texts, lengths, strict=True)):
            properties = decode_properties(text)
            tags_code = tags_hash_code(properties.get(MessageConst.PROPERTY_TAGS))
            self._index(
                topic,
                batch.queue_id,
                physical,
                length,
                tags_code,
                first_queue_offset + number,
                now,
                properties,
            )
            msg_ids.append(create_offset_message_id(batch.store_host, physical))
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
    ) -> None:
        """Raise FileNotReady when the entries from ``queue_offset`` on need
        a file that is not created yet."""
        queue = self._files.find_or_create_queue(topic, queue_id)
        base = queue.file_needed(queue_offset, count)
        if base is not None:
            raise FileNotReady(queue.files, base)

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
    ) -> None:
        queue = self._files.find_or_create_queue(topic, queue_id)
        try:
            queue.put(physical, size, tags_code, queue_offset)
        except OSError as exc:
            # The commit log has the message: recovery rebuilds the entry.
            log.error("consume queue %s/%d write failed: %s", topic, queue_id, exc)
            self._write_error = str(exc)
            return
        self._files.last_dispatch_timestamp = store_timestamp
        spare = queue.spare_wanted()
        if spare is not None:
            self._allocator.request(queue.files, spare)
        if self._listeners:
            arrival = MessageArrival(
                topic, queue_id, queue_offset + 1, tags_code, store_timestamp, properties
            )
            for listener in list(self._listeners):
                listener(arrival)

    # ======================================================================
    # Flushing

    async def _wait_flushed(self, offset: int) -> bool:
        if self._commit_log.flushed_where >= offset:
            return True
        event = trio.Event()
        self._flush_waiters.append((offset, event))
        self._flush_wakeup.set()
        with trio.move_on_after(self.config.sync_flush_timeout / 1000):
            await event.wait()
        return event.is_set() and self._commit_log.flushed_where >= offset

    async def _group_commit_loop(self) -> None:
        while True:
            await self._flush_wakeup.wait()
            self._flush_wakeup = trio.Event()
            await self._flush_commit_log_logged()

    async def _async_flush_loop(self) -> None:
        interval = self.config.flush_interval_commit_log / 1000
        while True:
            await trio.sleep(interval)
            await self._flush_commit_log_logged()

    async def _flush_commit_log_logged(self) -> None:
        # A failed fsync already stopped the store from taking messages; reads
        # go on, and waiting puts learn it as FLUSH_DISK_TIMEOUT.
        with contextlib.suppress(OSError):
            await self.flush_commit_log()

    async def flush_commit_log(self) -> int:
        """fsync everything appended so far; return the flushed offset.
        Puts waiting for an offset at or below it are released."""
        async with self._commit_log_flush_lock:
            target = self._commit_log.max_offset
            dirty = [f for f in self._commit_log.files.dirty_files() if f.acquire()]
            stamp = self._last_store_timestamp
            marks = [(f, f.wrote) for f in dirty]
            if dirty:
                try:
                    await trio.to_thread.run_sync(_sync_all, dirty)
                except OSError as exc:
                    log.critical(
                        "commit log fsync failed, the store stops accepting messages: %s", exc
                    )
                    self._write_error = str(exc)
                    self._fail_flush_waiters()
                    raise
                finally:
                    for data_file in dirty:
                        data_file.release()
                for data_file, mark in marks:
                    data_file.flushed = max(data_file.flushed, mark)
            self._commit_log.flushed_where = max(self._commit_log.flushed_where, target)
            if self._files.checkpoint is not None:
                if stamp:
                    self._files.checkpoint.physic_msg_timestamp = stamp
                self._files.checkpoint.physic_offset = self._commit_log.flushed_where
            flushed = self._commit_log.flushed_where
            waiters = self._flush_waiters
            while waiters and waiters[0][0] <= flushed:
                waiters.popleft()[1].set()
            return flushed

    def _fail_flush_waiters(self) -> None:
        while self._flush_waiters:
            self._flush_waiters.popleft()[1].set()

    async def _consume_queue_flush_loop(self) -> None:
        interval = self.config.flush_interval_consume_queue / 1000
        while True:
            await trio.sleep(interval)
            try:
                await self.flush_consume_queues()
            except OSError as exc:
                log.critical(
                    "consume queue flush failed, the store stops accepting messages: %s", exc
                )
                self._write_error = str(exc)

    async def flush_consume_queues(self) -> None:
        """fsync the consume queues, then record in the checkpoint how far
        they (and the commit log) are on disk."""
        async with self._consume_queue_flush_lock:
            stamp = self._files.last_dispatch_timestamp
            # Appending indexes at once: everything before this is dispatched.
            dispatched = self._commit_log.max_offset
            dirty = [
                f
                for queue in self._files.all_queues()
                for f in queue.files.dirty_files()
                if f.acquire()
            ]
            marks = [(f, f.wrote) for f in dirty]
            if dirty:
                try:
                    await trio.to_thread.run_sync(_sync_all, dirty)
                finally:
                    for data_file in dirty:
                        data_file.release()
                for data_file, mark in marks:
                    data_file.flushed = max(data_file.flushed, mark)
            checkpoint = self._files.checkpoint
            if checkpoint is None:
                return
            if stamp:
                checkpoint.logics_msg_timestamp = stamp
            if self._write_error is None:
                # After a failed write some entries may be missing: keep the
                # replay point where the queues were last known complete.
                checkpoint.logics_offset = dispatched
            if checkpoint.physic_offset < 0:
                checkpoint.physic_offset = self._commit_log.flushed_where
            if checkpoint.changed:
                await trio.to_thread.run_sync(checkpoint.flush)

    async def flush(self) -> int:
        """Flush the commit log, then the consume queues and checkpoint."""
        flushed = await self.flush_commit_log()
        await self.flush_consume_queues()
        return flushed

    # ======================================================================
    # Getting messages

    async def get_message(
        self,
        group: str,
        topic: str,
        queue_id: int,
        offset: int,
        max_msg_nums: int,
        message_filter: MessageFilter | None = None,
    ) -> GetMessageResult | None:
        """Read up to ``max_msg_nums`` messages of a queue from ``offset``
        (``DefaultMessageStore.getMessage``, same statuses, next offsets and
        transfer limits). None when the store is not running, as Java returns
        null. Data that is probably not cached is read in a worker thread."""
        await trio.lowlevel.checkpoint()
        if not self._running:
            return None
        del group  # Java uses it for statistics only
        queue = self._files.queue(topic, queue_id)
        if queue is None:
            # Java creates an empty queue object here and answers from it.
            return GetMessageResult(
                GetMessageStatus.NO_MESSAGE_IN_QUEUE, self._correct(offset, 0), 0, 0
            )
        min_offset = queue.min_offset_in_queue
        max_offset = queue.max_offset_in_queue
        if max_offset == 0:
            status, next_offset = GetMessageStatus.NO_MESSAGE_IN_QUEUE, self._correct(offset, 0)
        elif offset < min_offset:
            status, next_offset = (
                GetMessageStatus.OFFSET_TOO_SMALL,
                self._correct(offset, min_offset),
            )
        elif offset == max_offset:
            status, next_offset = (
                GetMessageStatus.OFFSET_OVERFLOW_ONE,
                self._correct(offset, offset),
            )
        elif offset > max_offset:
            target = min_offset if min_offset == 0 else max_offset
            status, next_offset = (
                GetMessageStatus.OFFSET_OVERFLOW_BADLY,
                self._correct(offset, target),
            )
        else:
            scan_bytes = max(16000, max_msg_nums * CQ_STORE_UNIT_SIZE)
            entries = queue.read_entries(offset, scan_bytes)
            if entries is None:
                status = GetMessageStatus.OFFSET_FOUND_NULL
                next_offset = self._correct(offset, queue.roll_next_file(offset))
            else:
                max_physical = self._commit_log.max_offset
                first_physical = int.from_bytes(entries[:8], "big", signed=True)
                args = (
                    entries,
                    offset,
                    max_msg_nums,
                    message_filter,
                    max_physical,
                    min_offset,
                    max_offset,
                )
                if max_physical - first_physical > self._in_memory_bytes:
                    files = [f for f in self._commit_log.files if f.acquire()]
                    try:
                        return await trio.to_thread.run_sync(self._collect, *args)
                    finally:
                        for data_file in files:
                            data_file.release()
                return self._collect(*args)
        return GetMessageResult(status, next_offset, min_offset, max_offset)

    def _correct(self, old: int, new: int) -> int:
        """``nextOffsetCorrection``: a slave keeps the client's offset."""
        if self.config.broker_role is not BrokerRole.SLAVE or self.config.offset_check_in_slave:
            return new
        return old

    def _collect(
        self,
        entries: bytes,
        offset: int,
        max_msg_nums: int,
        message_filter: MessageFilter | None,
        max_physical: int,
        min_offset: int,
        max_offset: int,
    ) -> GetMessageResult:
        status = GetMessageStatus.NO_MATCHED_MESSAGE
        messages: list[bytes] = []
        total = 0
        next_file_start: int | None = None
        max_physical_pulling = 0
        consumed = 0
        usable = len(entries) - len(entries) % CQ_STORE_UNIT_SIZE
        config = self.config
        for physical, size, tags_code in _ENTRY_ITER(entries[:usable]):
            max_physical_pulling = physical
            if next_file_start is not None and physical < next_file_start:
                consumed += 1
                continue
            in_disk = max_physical - physical > self._in_memory_bytes
            if total and messages:
                if max_msg_nums <= len(messages):
                    break
                if in_disk:
                    if total + size > config.max_transfer_bytes_on_message_in_disk:
                        break
                    if len(messages) > config.max_transfer_count_on_message_in_disk - 1:
                        break
                else:
                    if total + size > config.max_transfer_bytes_on_message_in_memory:
                        break
                    if len(messages) > config.max_transfer_count_on_message_in_memory - 1:
                        break
            consumed += 1
            if message_filter is not None and not message_filter.is_matched_by_consume_queue(
                tags_code
            ):
                if not total:
                    status = GetMessageStatus.NO_MATCHED_MESSAGE
                continue
            record = self._commit_log.read(physical, size)
            if record is None:
                if not total:
                    status = GetMessageStatus.MESSAGE_WAS_REMOVING
                next_file_start = self._commit_log.roll_next_file(physical)
                continue
            if message_filter is not None and not message_filter.is_matched_by_commit_log(record):
                if not total:
                    status = GetMessageStatus.NO_MATCHED_MESSAGE
                continue
            messages.append(record)
            total += len(record)
            status = GetMessageStatus.FOUND
            next_file_start = None
        suggest = max_physical - max_physical_pulling > self._in_memory_bytes
        return GetMessageResult(
            status,
            offset + consumed,
            min_offset,
            max_offset,
            tuple(messages),
            suggest,
        )

    # -- queries ------------------------------------------------------------

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

    # ======================================================================
    # Cleanup (see pyrocket.broker.store.cleanup)

    def execute_delete_files_manually(self) -> None:
        """Delete expired files on the next cleanup passes whatever the hour."""
        self._cleaner.execute_delete_files_manually()

    async def clean_expired_files(self) -> int:
        """Run one cleanup pass now; returns the commit-log files deleted."""
        return await self._cleaner.clean_expired_files()

    def clean_expired_consume_queues(self) -> None:
        """Destroy queues whose every message left the commit log; their
        offsets restart at 0 (``cleanExpiredConsumerQueue``)."""
        self._cleaner.clean_expired_consume_queues()

    def clean_unused_topics(self, topics: Collection[str]) -> int:
        """Destroy the queues of every topic not in ``topics`` (except the
        schedule topic), as DELETE_TOPIC_IN_BROKER does. Returns 0, as Java."""
        self._cleaner.clean_unused_topics(topics)
        return 0


def _sync_all(files: list[DataFile]) -> None:
    for data_file in files:
        data_file.sync()


@contextlib.asynccontextmanager
async def open_message_store(
    config: MessageStoreConfig,
    *,
    now_ms: Callable[[], int] = wall_clock_ms,
    disk_used_ratio: Callable[[str], float] = disk_used_ratio,
    total_physical_memory: int | None = None,
) -> AsyncIterator[MessageStore]:
    """Run a store for the duration of the block: recovered and accepting
    messages inside, cleanly shut down after."""
    store = MessageStore(
        config,
        now_ms=now_ms,
        disk_used_ratio=disk_used_ratio,
        total_physical_memory=total_physical_memory,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        try:
            yield store
        finally:
            nursery.cancel_scope.cancel()
