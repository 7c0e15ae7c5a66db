"""The store's side of replication (Java's ``getCommitLogData`` on a master,
``appendToCommitLog`` and the reput on a slave).

A master hands out raw commit-log bytes from a physical offset, never past
the end of the file holding it. A slave writes what its master sent at the
very same physical offsets (a file that is not there yet is created in a
worker thread first) and then dispatches every record the bytes completed
to its consume queue, as Java's reput service does; the bytes of a record
still incomplete are kept until the rest arrives. Bytes that do not form a
valid record are cut off the commit log again, so the slave asks for them
anew rather than keep what it cannot index.
"""

from __future__ import annotations

import logging
import struct
from typing import Final, NoReturn

import trio

from pyrocket.broker.store.append import StoreAppend
from pyrocket.broker.store.commitlog import DispatchRequest, FileNotReady, check_record
from pyrocket.broker.store.config import FlushDiskType
from pyrocket.broker.store.files import DataFile, FileQueue
from pyrocket.broker.store.index import is_indexed_type
from pyrocket.broker.store.storefiles import NOT_INDEXED
from pyrocket.errors import PyrocketError
from pyrocket.protocol.message import BLANK_MAGIC_CODE, MessageSysFlag

log = logging.getLogger("pyrocket.broker.store.store")

_HEAD: Final = struct.Struct(">ii")
#: Reads and writes from this size on go to a worker thread.
_THREAD_BYTES: Final = 64 * 1024
_TRANSACTION_TYPE_MASK: Final = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE


class ReplicaError(PyrocketError):
    """Replicated bytes do not continue the commit log where it ends, or are
    not valid records."""


class StoreReplica(StoreAppend):
    """Replication part of :class:`~pyrocket.broker.store.store.MessageStore`."""

    # -- master side ----------------------------------------------------------

    async def read_commit_log_data(self, offset: int, limit: int) -> bytes | None:
        """Up to ``limit`` commit-log bytes from ``offset``, not crossing the
        end of its file; None when nothing is there (yet, or any more).
        Large or probably uncached reads run in a worker thread."""
        data_file = self._commit_log.files.find(offset)
        if data_file is None or data_file.destroyed:
            return None
        position = offset - data_file.base
        size = min(data_file.wrote - position, limit)
        if size <= 0:
            return None
        behind = self._commit_log.max_offset - offset
        if size < _THREAD_BYTES and behind <= self._in_memory_bytes:
            return data_file.read(position, size)
        if not data_file.acquire():
            return None
        try:
            return await trio.to_thread.run_sync(data_file.read, position, size)
        finally:
            data_file.release()

    # -- slave side -----------------------------------------------------------

    async def append_replicated(self, offset: int, data: bytes) -> None:
        """Write ``data`` at physical ``offset`` (which must be where the
        commit log ends; an empty log starts at any file boundary) and index
        the records it completes.

        Raises ReplicaError when the offset does not fit or the bytes are
        not valid records (those are cut off again), OSError
        when the disk refused (the store then takes no more data)."""
        async with self._replica_lock:
            commit_log = self._commit_log
            files = commit_log.files
            file_size = commit_log.file_size
            end = commit_log.max_offset
            if offset != end and (files.last is not None or offset % file_size):
                raise ReplicaError(f"data at {offset} does not continue the commit log at {end}")
            if not self._running or self._write_error is not None:
                raise OSError(f"the store does not take data: {self._write_error or 'stopped'}")
            if self._replica_dispatched is None or not self._replica_tail:
                self._replica_dispatched = offset
            view = memoryview(data)
            position = offset
            try:
                while view:
                    data_file = await self._writable_file(files, position)
                    chunk = view[: data_file.size - data_file.wrote]
                    at = data_file.wrote
                    if len(chunk) >= _THREAD_BYTES:
                        await trio.to_thread.run_sync(data_file.write, at, chunk)
                    else:
                        data_file.write(at, chunk)
                    data_file.wrote = at + len(chunk)
                    position += len(chunk)
                    view = view[len(chunk) :]
            except OSError as exc:
                log.error("commit log write failed, the slave stops replicating: %s", exc)
                self._write_error = str(exc)
                raise
            self._replica_tail += data
            if self.config.flush_disk_type is FlushDiskType.SYNC_FLUSH:
                self._flush_wakeup.set()
            await self._dispatch_replicated()

    async def _writable_file(self, files: FileQueue, position: int) -> DataFile:
        last = files.last
        if last is not None and not last.is_full:
            return last
        base = position - position % files.file_size if last is None else last.end
        for _ in range(3):
            if files.has_file_ready(base):
                break
            await files.prepare_spare(base)
        data_file = files.create(base)
        self._allocator.request(files, data_file.end)
        return data_file

    async def _dispatch_replicated(self) -> None:
        tail = self._replica_tail
        file_size = self._commit_log.file_size
        while len(tail) >= _HEAD.size:
            dispatched = self._replica_dispatched
            assert dispatched is not None
            total, magic = _HEAD.unpack_from(tail, 0)
            if magic == BLANK_MAGIC_CODE:
                rest = file_size - dispatched % file_size
                if len(tail) < rest:
                    return  # the zeros after a blank record are still arriving
                del tail[:rest]
                self._replica_dispatched = dispatched + rest
                continue
            if total <= 0 or total > file_size - dispatched % file_size:
                self._reject_replicated(dispatched, f"record size {total}")
            if len(tail) < total:
                return
            found = check_record(
                memoryview(tail)[:total],
                0,
                dispatched,
                check_crc=False,
                deliver_time=self.schedule.deliver_timestamp,
            )
            if not isinstance(found, DispatchRequest):
                self._reject_replicated(dispatched, "not a valid record")
            await self._index_replicated(found)
            del tail[:total]
            self._replica_dispatched = dispatched + total

    def _reject_replicated(self, offset: int, why: str) -> NoReturn:
        log.error("replicated data at %d is not a valid commit log record (%s): cut", offset, why)
        self._replica_tail.clear()
        self._commit_log.files.truncate(offset)
        raise ReplicaError(f"replicated data at {offset}: {why}")

    async def _index_replicated(self, request: DispatchRequest) -> None:
        self._last_store_timestamp = request.store_timestamp
        index = self._files.index
        if index is not None and is_indexed_type(request.sys_flag):
            # The index files, as the put path builds them on a master.
            hashes = index.key_hashes(request.topic, request.properties)
            if not index.room_for(len(hashes)):
                await index.prepare_spare(len(hashes))
            index.build_hashes(hashes, request.commit_log_offset, request.store_timestamp)
        if request.sys_flag & _TRANSACTION_TYPE_MASK in NOT_INDEXED:
            return
        for _ in range(6):
            try:
                # The consume-queue file, and its extension file when kept.
                self._check_queue_file(request.topic, request.queue_id, request.queue_offset)
                break
            except FileNotReady as wanted:
                await wanted.files.prepare_spare(wanted.base)
        key = (request.topic, request.queue_id)
        table = self._files.topic_queue_table
        table[key] = max(table.get(key, 0), request.queue_offset + 1)
        self._index(
            request.topic,
            request.queue_id,
            request.commit_log_offset,
            request.size,
            request.tags_code,
            request.queue_offset,
            request.store_timestamp,
            request.properties,
        )
