"""Getting the store onto disk: the SYNC_FLUSH group commit (puts wait in
``_wait_flushed`` and share one fsync), the ASYNC_FLUSH periodic commit-log
flush, the periodic consume-queue flush, and the checkpoint offsets and
timestamps they record. fsyncs run in worker threads.
"""

from __future__ import annotations

import contextlib
import logging
import math

import trio

from pyrocket.broker.store.checkpoint import StoreCheckpoint
from pyrocket.broker.store.files import DataFile
from pyrocket.broker.store.index import IndexFile
from pyrocket.broker.store.state import StoreState

#: Every part of the store logs as the store, so one logger name configures it.
log = logging.getLogger("pyrocket.broker.store.store")


def _sync_all(files: list[DataFile]) -> None:
    for data_file in files:
        data_file.sync()


class StoreFlush(StoreState):
    """The flushing part of :class:`~pyrocket.broker.store.store.MessageStore`."""

    async def _wait_flushed(self, offset: int) -> bool:
        if self._commit_log.flushed_where >= offset:
            return True
        event = trio.Event()
        waiters = self._flush_waiters
        if not waiters:
            # The timeout task sleeps until the first deadline, or forever.
            self._flush_timer_wakeup.set()
        deadline = trio.current_time() + self.config.sync_flush_timeout / 1000
        waiters.append((offset, event, deadline))
        self._flush_wakeup.set()
        # No cancel scope per put: _flush_timeout_loop sets the events of
        # waiters whose deadline passed, one task for all of them.
        await event.wait()
        return self._commit_log.flushed_where >= offset

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
                for entry in [entry for entry in waiters if entry[2] <= now]:
                    entry[1].set()
                kept = [entry for entry in waiters if entry[2] > now]
                waiters.clear()
                waiters.extend(kept)
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
