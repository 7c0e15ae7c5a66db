"""Getting the store onto disk: what an appended put waits for (its flush,
or under SYNC_MASTER a slave), the SYNC_FLUSH group commit (puts wait in
``_wait_flushed``, or are called back through ``_when_flushed``, and share
one fsync), the ASYNC_FLUSH periodic commit-log
flush, the periodic consume-queue flush, and the checkpoint offsets and
timestamps they record. fsyncs run in worker threads.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable

import trio

from pyrocket.broker.store.checkpoint import StoreCheckpoint
from pyrocket.broker.store.config import BrokerRole, FlushDiskType
from pyrocket.broker.store.files import DataFile
from pyrocket.broker.store.index import IndexFile
from pyrocket.broker.store.model import PutMessageResult, PutMessageStatus
from pyrocket.broker.store.state import StoreState
from pyrocket.later import Later

#: Every part of the store logs as the store, so one logger name configures it.
log = logging.getLogger("pyrocket.broker.store.store")


def _wake(wake: Callable[[], None]) -> None:
    """Release one flush waiter; a failing one costs only its own answer."""
    try:
        wake()
    except Exception:
        log.exception("a put waiting for its flush could not be answered")


def _sync_all(files: list[DataFile]) -> None:
    for data_file in files:
        data_file.sync()


class StoreFlush(StoreState):
    """The flushing part of :class:`~pyrocket.broker.store.store.MessageStore`."""

    def put_waits(self, result: PutMessageResult, wait: bool) -> bool:
        """Whether the answer to an appended put (``wait``: the message's
        WAIT property) has to wait for a flush or a slave first."""
        appended = result.append_result
        if appended is None or not appended.is_ok:
            return False
        config = self.config
        return config.flush_disk_type is not FlushDiskType.ASYNC_FLUSH or (
            config.broker_role is BrokerRole.SYNC_MASTER and wait
        )

    def finish_put_later(
        self, result: PutMessageResult, wait: bool
    ) -> PutMessageResult | Later[PutMessageResult] | None:
        """:meth:`finish_put` without a task: the final result now when there
        is nothing to wait for after all, a :class:`Later` of it settled by
        the group commit (SYNC_FLUSH), or None when the put waits for a
        slave (SYNC_MASTER): :meth:`finish_put` then."""
        config = self.config
        if config.broker_role is BrokerRole.SYNC_MASTER and wait:
            return None
        if config.flush_disk_type is not FlushDiskType.SYNC_FLUSH:
            return result
        if not wait:
            self._flush_wakeup.set()
            return result
        appended = result.append_result
        assert appended is not None
        end = appended.wrote_offset + appended.wrote_bytes
        commit_log = self._commit_log
        if commit_log.flushed_where >= end:
            return result
        later: Later[PutMessageResult] = Later()

        def flushed() -> None:
            if commit_log.flushed_where >= end:
                later.settle(result)
            else:
                later.settle(PutMessageResult(PutMessageStatus.FLUSH_DISK_TIMEOUT, appended))

        self._when_flushed(end, flushed)
        return later

    async def finish_put(self, result: PutMessageResult, wait: bool) -> PutMessageResult:
        """The wait of a put appended by :meth:`try_put_message` for which
        :meth:`put_waits` is True: its final result."""
        return await self._after_append(result, wait)

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
            # CommitLog.handleHA: wait for a slave only when one is close enough.
            end = appended.wrote_offset + appended.wrote_bytes
            replication = self.replication
            if replication is None or not replication.is_slave_ok(end):
                status = PutMessageStatus.SLAVE_NOT_AVAILABLE
            elif not await replication.wait_replicated(end, self.config.sync_flush_timeout / 1000):
                status = PutMessageStatus.FLUSH_SLAVE_TIMEOUT
        if status is PutMessageStatus.PUT_OK:
            return result
        return PutMessageResult(status, appended)

    async def _wait_flushed(self, offset: int) -> bool:
        if self._commit_log.flushed_where >= offset:
            return True
        event = trio.Event()
        # No cancel scope per put: _flush_timeout_loop releases waiters whose
        # deadline passed, one task for all of them.
        self._when_flushed(offset, event.set)
        await event.wait()
        return self._commit_log.flushed_where >= offset

    def _when_flushed(self, offset: int, wake: Callable[[], None]) -> None:
        """Call ``wake()`` once the commit log is on disk up to ``offset``,
        or ``syncFlushTimeout`` passed, or an fsync failed (the caller tells
        which from ``flushed_where``), from the task that learns it."""
        waiters = self._flush_waiters
        if not waiters:
            # The timeout task sleeps until the first deadline, or forever.
            self._flush_timer_wakeup.set()
        deadline = trio.current_time() + self.config.sync_flush_timeout / 1000
        waiters.append((offset, wake, deadline))
        self._flush_wakeup.set()

    async def _group_commit_loop(self) -> None:
        while True:
            await self._flush_wakeup.wait()
            self._flush_wakeup = trio.Event()
            await self._flush_commit_log_logged()

    async def _flush_timeout_loop(self) -> None:
        """Release SYNC_FLUSH puts that waited ``syncFlushTimeout`` for their
        fsync (they answer FLUSH_DISK_TIMEOUT), even while an fsync hangs."""
        while True:
            waiters = self._flush_waiters
            now = trio.current_time()
            if waiters and min(entry[2] for entry in waiters) <= now:
                due = [entry for entry in waiters if entry[2] <= now]
                kept = [entry for entry in waiters if entry[2] > now]
                waiters.clear()
                waiters.extend(kept)
                for entry in due:
                    _wake(entry[1])
            self._flush_timer_wakeup = trio.Event()
            first = min((entry[2] for entry in waiters), default=math.inf)
            with trio.move_on_at(first):
                await self._flush_timer_wakeup.wait()

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
                _wake(waiters.popleft()[1])
            return flushed

    def _fail_flush_waiters(self) -> None:
        while self._flush_waiters:
            _wake(self._flush_waiters.popleft()[1])

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
                for f in queue.all_dirty_files()
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
            await self._flush_rolled_index_files(checkpoint)
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

    async def _flush_rolled_index_files(self, checkpoint: StoreCheckpoint) -> None:
        """fsync index files that filled up, then record the newest one's end
        time as the checkpoint's index timestamp (as Java's IndexService)."""
        index = self._files.index
        if index is None or not index.rolled:
            return
        rolled = index.take_rolled()
        index.readers += 1
        try:
            await trio.to_thread.run_sync(_flush_index_files, rolled)
        finally:
            index.readers -= 1
        checkpoint.index_msg_timestamp = max(
            checkpoint.index_msg_timestamp, max(f.end_timestamp for f in rolled)
        )

    async def flush(self) -> int:
        """Flush the commit log, then the consume queues and checkpoint."""
        flushed = await self.flush_commit_log()
        await self.flush_consume_queues()
        return flushed


def _flush_index_files(files: list[IndexFile]) -> None:
    for index_file in files:
        index_file.flush()
