"""The state one message store shares among its parts.

:class:`~pyrocket.broker.store.store.MessageStore` is composed of one class
per responsibility (appending, flushing, reading, queries; see its module);
this module owns the declaration of the fields they all read and write, so
that each part is typed on its own. The fields are set by
``MessageStore.__init__``; nothing here has behaviour.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from pyrocket.broker.store.cleanup import FileCleaner
from pyrocket.broker.store.commitlog import CommitLog
from pyrocket.broker.store.config import MessageStoreConfig
from pyrocket.broker.store.files import FileAllocator
from pyrocket.broker.store.model import (
    ArrivalListener,
    BitMapCalculator,
    PutMessageResult,
    Replication,
)
from pyrocket.broker.store.schedule import ScheduleMessageService
from pyrocket.broker.store.storefiles import StoreFiles


class StoreState:
    """Fields of a message store (declarations only)."""

    config: MessageStoreConfig
    #: The store clock (store timestamps, delayed delivery, file expiry).
    _now_ms: Callable[[], int]
    _disk_used_ratio: Callable[[str], float]
    #: Commit-log bytes behind the end that are probably still cached.
    _in_memory_bytes: int
    _root: Path
    _files: StoreFiles
    _commit_log: CommitLog
    _cleaner: FileCleaner
    _listeners: list[ArrivalListener]
    #: Entries a pull's SQL92 filter refused on their bit map, without
    #: reading the commit log (reads may run in worker threads: under the lock).
    bit_map_skips: int
    _stats_lock: threading.Lock
    #: Computes filter bit maps (``enableCalcFilterBitMap``), else None.
    _bit_map_calculator: BitMapCalculator | None
    schedule: ScheduleMessageService
    _lock_fd: int | None
    _running: bool
    #: Set by a failed write or fsync: the store takes no more messages.
    _write_error: str | None
    _last_store_timestamp: int
    #: SYNC_FLUSH puts waiting for an offset to be on disk, in offset order:
    #: (offset, what to call once it is or the wait is over, deadline on
    #: the trio clock).
    _flush_waiters: collections.deque[tuple[int, Callable[[], None], float]]
    _flush_wakeup: trio.Event
    #: Wakes the flush-timeout task when a first waiter arrives.
    _flush_timer_wakeup: trio.Event
    _commit_log_flush_lock: trio.Lock
    _consume_queue_flush_lock: trio.Lock
    _allocator: FileAllocator
    #: Puts waiting for a file to be created, and those queued behind them
    #: (FIFO; see ``StoreAppend._append``). Empty: puts append at once.
    _append_backlog: collections.deque[Any]
    #: Whether the previous run ended with a clean shutdown (known after start).
    last_exit_ok: bool | None
    #: The HA service a SYNC_MASTER waits on (None: no replication).
    replication: Replication | None
    #: Slave: commit-log bytes from :attr:`_replica_dispatched` on, not yet
    #: dispatched to consume queues (at most one incomplete record).
    _replica_tail: bytearray
    _replica_dispatched: int | None
    _replica_lock: trio.Lock
    #: Wait until the commit log is on disk up to an offset (the flushing part).
    _wait_flushed: Callable[[int], Awaitable[bool]]
    #: Whether an appended put's answer waits for a flush or a slave, and
    #: that wait (the flushing part).
    put_waits: Callable[[PutMessageResult, bool], bool]
    _after_append: Callable[[PutMessageResult, bool], Awaitable[PutMessageResult]]
    #: Call a function once the commit log is on disk up to an offset, or
    #: ``syncFlushTimeout`` passed, or an fsync failed (the flushing part).
    _when_flushed: Callable[[int, Callable[[], None]], None]
