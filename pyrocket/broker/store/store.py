"""The message store (Java's ``DefaultMessageStore``): puts, gets, flushing,
and the tasks that keep it (cleanup, delayed delivery), on Java 4.7.0's
on-disk formats.

Layout under ``storePathRootDir`` (Java's, so an operator recognises it)::

    commitlog/<20-digit offset>                  messages, rolled files
    consumequeue/<topic>/<queueId>/<offset>      20-byte index entries
    index/<yyyyMMddHHmmssSSS>                    message index by key (index.py)
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
it, and every later put queues behind it (FIFO) until the queue is appended
in one sweep, so appends keep the order in which puts arrived. Messages are indexed as they are
appended, so they are readable at once, as in Java (whose dispatcher thread
trails the commit log by about a millisecond).

Durability: with SYNC_FLUSH a put that waits for the store (the default;
property ``WAIT=false`` opts out) returns PUT_OK only after an fsync covering
it; concurrent puts share one fsync (group commit). With ASYNC_FLUSH a task
fsyncs every ``flushIntervalCommitLog`` ms. Consume queues are flushed every
``flushIntervalConsumeQueue`` ms and rebuilt from the commit log on recovery
(:mod:`pyrocket.broker.store.recovery`).

This module owns the store's lifecycle (lock, load and recovery, background
tasks, shutdown), its configuration and the cleanup entry points; the rest
is one class per responsibility, which :class:`MessageStore` combines:
:mod:`~pyrocket.broker.store.append` (puts), :mod:`~pyrocket.broker.store.replica`
(replicated commit-log bytes, both roles), :mod:`~pyrocket.broker.store.flush`
(fsync, group commit, checkpoint), :mod:`~pyrocket.broker.store.reads`
(``get_message``) and :mod:`~pyrocket.broker.store.queries` (offsets, times,
lookups by offset), over the fields declared in
:mod:`~pyrocket.broker.store.state`.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import trio

from pyrocket.broker.store.cleanup import FileCleaner, disk_used_ratio
from pyrocket.broker.store.config import BrokerRole, FlushDiskType, MessageStoreConfig
from pyrocket.broker.store.files import FileAllocator
from pyrocket.broker.store.flush import StoreFlush
from pyrocket.broker.store.model import ArrivalListener, BitMapCalculator, Replication, StoreError
from pyrocket.broker.store.queries import StoreQueries
from pyrocket.broker.store.reads import StoreReads
from pyrocket.broker.store.recovery import load as load_files
from pyrocket.broker.store.recovery import recover as recover_files
from pyrocket.broker.store.recovery import recover_index
from pyrocket.broker.store.replica import StoreReplica
from pyrocket.broker.store.schedule import ScheduleMessageService
from pyrocket.broker.store.storefiles import StoreFiles
from pyrocket.errors import PyrocketError
from pyrocket.persist import fsync_directory

__all__ = ["MessageStore", "open_message_store", "physical_memory_size", "wall_clock_ms"]

log = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    """The default store clock: wall time in milliseconds."""
    return time.time_ns() // 1_000_000


def physical_memory_size() -> int:
    """``StoreUtil.TOTAL_PHYSICAL_MEMORY_SIZE`` (24 GiB when unknown, as Java)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 24 * 1024 * 1024 * 1024


class MessageStore(StoreReplica, StoreFlush, StoreReads, StoreQueries):
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
        self._bit_map_calculator: BitMapCalculator | None = None
        self.bit_map_skips = 0
        self._stats_lock = threading.Lock()
        # The service gets what it calls, not the store.
        self.schedule = ScheduleMessageService(
            config,
            now_ms,
            put_message=self.put_message,
            consume_queue=self.consume_queue,
            queue_max_offset=self.queue_max_offset,
            max_offset_in_queue=self.get_max_offset_in_queue,
            look_message_by_offset=self.look_message_by_offset,
        )
        self._lock_fd: int | None = None
        self._running = False
        self._write_error: str | None = None
        self._last_store_timestamp = 0
        self._flush_waiters: collections.deque[tuple[int, Callable[[], None], float]] = (
            collections.deque()
        )
        self._flush_wakeup = trio.Event()
        self._flush_timer_wakeup = trio.Event()
        self._commit_log_flush_lock = trio.Lock()
        self._consume_queue_flush_lock = trio.Lock()
        self._allocator = FileAllocator()
        #: Puts waiting for a file to be created, and those queued behind them.
        self._append_backlog = collections.deque()
        #: Whether the previous run ended with a clean shutdown (known after start).
        self.last_exit_ok: bool | None = None
        #: The HA service a SYNC_MASTER's puts wait on (set by the broker).
        self.replication: Replication | None = None
        self._replica_tail = bytearray()
        self._replica_dispatched: int | None = None
        self._replica_lock = trio.Lock()

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
                    nursery.start_soon(self._flush_timeout_loop)
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
        if self._files.index is not None:
            try:
                self._files.index.flush_all()
            except OSError as exc:
                log.error("index flush failed: %s", exc)
                clean = False
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
            load_files(self._files)
            recover_files(self._files, self.schedule.deliver_timestamp, normal=self.last_exit_ok)
            recover_index(self._files, self.schedule.deliver_timestamp, normal=self.last_exit_ok)
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
