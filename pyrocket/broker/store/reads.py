"""Reading messages out of the store (``DefaultMessageStore.getMessage``):
statuses and next offsets for a pull, the tags filter, transfer limits for
data in memory and on disk, and reads of data probably not cached in a
worker thread.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Awaitable
from typing import TypeAlias

import trio

from pyrocket.broker.store.config import CQ_STORE_UNIT_SIZE, BrokerRole
from pyrocket.broker.store.consumequeue_ext import ConsumeQueueExt, CqExtUnit, is_ext_addr
from pyrocket.broker.store.files import MAPPED_REGION_BITS, DataFile
from pyrocket.broker.store.model import GetMessageResult, GetMessageStatus, MessageFilter
from pyrocket.broker.store.state import StoreState

_ENTRY = struct.Struct(">qiq")
_ENTRY_ITER = _ENTRY.iter_unpack
_NEXT_START = struct.Struct(">q").unpack_from
#: The most a pull reads ahead in one run of adjacent records.
MAX_RUN_BYTES = 256 * 1024


def _run_end(entries: bytes, position: int, usable: int, start: int, end: int, room: int) -> int:
    """Where the run of records from ``start`` (the first one ending at
    ``end``) ends: the following entries (from ``position``) are taken while
    each record starts where the previous ended, up to ``room`` records in
    all and :data:`MAX_RUN_BYTES`."""
    taken = 1
    unpack = _ENTRY.unpack_from
    while taken < room and position < usable:
        physical, size, _ = unpack(entries, position)
        if physical != end or size <= 0 or end + size - start > MAX_RUN_BYTES:
            break
        end += size
        taken += 1
        position += CQ_STORE_UNIT_SIZE
    return end


log = logging.getLogger("pyrocket.broker.store.store")

#: :meth:`StoreReads._collect`'s arguments.
_CollectArgs: TypeAlias = tuple[
    ConsumeQueueExt | None, bytes, int, int, MessageFilter | None, int, int, int
]


class StoreReads(StoreState):
    """The reading part of :class:`~pyrocket.broker.store.store.MessageStore`."""

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
        read = self.get_message_nowait(group, topic, queue_id, offset, max_msg_nums, message_filter)
        if read is None or isinstance(read, GetMessageResult):
            return read
        return await read

    def get_message_nowait(
        self,
        group: str,
        topic: str,
        queue_id: int,
        offset: int,
        max_msg_nums: int,
        message_filter: MessageFilter | None = None,
    ) -> GetMessageResult | Awaitable[GetMessageResult] | None:
        """:meth:`get_message` done now, when what it reads is in memory (or
        there is nothing to read); else the awaitable of its read in a
        worker thread."""
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
            # Without a filter a pull takes the entries one after the other
            # until it has its messages: it reads just that many first, and
            # the whole scan only when some of them gave no message.
            wanted = (
                max(1, max_msg_nums) * CQ_STORE_UNIT_SIZE if message_filter is None else scan_bytes
            )
            entries = queue.read_entries(offset, wanted)
            if entries is None:
                status = GetMessageStatus.OFFSET_FOUND_NULL
                next_offset = self._correct(offset, queue.roll_next_file(offset))
            else:
                max_physical = self._commit_log.max_offset
                first_physical = int.from_bytes(entries[:8], "big", signed=True)
                args = (
                    queue.ext,
                    entries,
                    offset,
                    max_msg_nums,
                    message_filter,
                    max_physical,
                    min_offset,
                    max_offset,
                )
                partial = len(entries) == wanted < scan_bytes
                if max_physical - first_physical > self._in_memory_bytes or (
                    message_filter is not None and message_filter.reads_commit_log
                ):
                    if partial:
                        args = (
                            queue.ext,
                            queue.read_entries(offset, scan_bytes) or entries,
                            *args[2:],
                        )
                    return self._collect_off_loop(args)
                found = self._collect_in_loop(args)
                if (
                    partial
                    and found.message_count < max_msg_nums
                    and found.next_begin_offset == offset + len(entries) // CQ_STORE_UNIT_SIZE
                ):
                    # Every entry taken and messages still missing: scan on.
                    more = queue.read_entries(offset, scan_bytes)
                    if more is not None:
                        found = self._collect_in_loop((queue.ext, more, *args[2:]))
                return found
        return GetMessageResult(status, next_offset, min_offset, max_offset)

    def _collect_off_loop(self, args: _CollectArgs) -> Awaitable[GetMessageResult]:
        """:meth:`_collect` in a worker thread, with the files it reads
        acquired now (so none is closed before it runs) and released after."""
        queue_ext = args[0]
        files = [f for f in self._commit_log.files if f.acquire()]
        if queue_ext is not None:
            # Units are read in the thread too: keep their files open.
            files += [f for f in queue_ext.files if f.acquire()]
        return self._collect_in_thread(args, files)

    async def _collect_in_thread(
        self, args: _CollectArgs, files: list[DataFile]
    ) -> GetMessageResult:
        try:
            return await trio.to_thread.run_sync(self._collect, *args, False)
        finally:
            for data_file in files:
                data_file.release()

    def _correct(self, old: int, new: int) -> int:
        """``nextOffsetCorrection``: a slave keeps the client's offset."""
        if self.config.broker_role is not BrokerRole.SLAVE or self.config.offset_check_in_slave:
            return new
        return old

    def _collect_in_loop(self, args: _CollectArgs) -> GetMessageResult:
        """:meth:`_collect` in the store's trio thread: the usual pull (no
        filter, no extension files) through :meth:`_collect_mapped` when it
        can answer it."""
        ext, entries, offset, max_msg_nums, message_filter, max_physical, low, high = args
        if message_filter is None and ext is None:
            plain = self._collect_mapped(entries, offset, max_physical, low, high, max_msg_nums)
            if plain is not None:
                return plain
        return self._collect(*args, True)

    def _collect_mapped(
        self,
        entries: bytes,
        offset: int,
        max_physical: int,
        min_offset: int,
        max_offset: int,
        max_msg_nums: int,
    ) -> GetMessageResult | None:
        """:meth:`_collect` of the usual pull (no filter, no extension
        files, in the store's trio thread, data in memory) whose records all
        lie, in commit-log order, in one mapped commit-log file: each record
        sliced straight from the mapping. The same answer as
        :meth:`_collect`, or None for anything else (a first record counted
        as on disk, a record outside that file or not written or out of
        order, an entry without a record, no mapping): the scan then reads
        the pull from the start (the regions counted so far stay counted)."""
        usable = len(entries) - len(entries) % CQ_STORE_UNIT_SIZE
        if not usable:
            return None
        first = _NEXT_START(entries, 0)[0]
        current = self._commit_log.files.find(first)
        if current is None or current.destroyed:
            return None
        mapped = current.mapped
        reads = current.reads
        if mapped is None or reads is None:
            return None
        base = current.base
        wrote = current.wrote
        in_memory = self._in_memory_bytes
        if max_physical - first > in_memory:
            return None  # the limits of data on disk apply
        # Records further on lie further on in the commit log (checked as
        # they come), so all of them are in memory too: its limits apply.
        config = self.config
        count_limit = min(max_msg_nums, config.max_transfer_count_on_message_in_memory)
        bytes_limit = config.max_transfer_bytes_on_message_in_memory
        messages: list[bytes] = []
        append = messages.append
        total = taken = 0
        max_physical_pulling = previous = first
        for physical, size, _ in _ENTRY_ITER(entries[:usable]):
            max_physical_pulling = physical
            if taken and (taken >= count_limit or total + size > bytes_limit):
                break
            start = physical - base
            if size <= 0 or physical < previous or start + size > wrote:
                return None
            previous = physical
            region = physical >> MAPPED_REGION_BITS
            if region != reads.region or (physical + size - 1) >> MAPPED_REGION_BITS != region:
                reads.note(region, (physical + size - 1) >> MAPPED_REGION_BITS)
            append(mapped[start : start + size])
            total += size
            taken += 1
        return GetMessageResult(
            GetMessageStatus.FOUND,
            offset + taken,
            min_offset,
            max_offset,
            tuple(messages),
            max_physical - max_physical_pulling > in_memory,
        )

    def _collect(
        self,
        ext: ConsumeQueueExt | None,
        entries: bytes,
        offset: int,
        max_msg_nums: int,
        message_filter: MessageFilter | None,
        max_physical: int,
        min_offset: int,
        max_offset: int,
        in_loop: bool,
    ) -> GetMessageResult:
        """The read itself, entry by entry, for every case (filters,
        extension units, records in any file, runs of adjacent records read
        at once, entries whose record is gone); ``in_loop`` when it runs in
        the store's trio thread (which may read through the commit log's
        mappings)."""
        status = GetMessageStatus.NO_MATCHED_MESSAGE
        messages: list[bytes] = []
        total = 0
        next_file_start: int | None = None
        max_physical_pulling = 0
        consumed = 0
        skipped = 0
        usable = len(entries) - len(entries) % CQ_STORE_UNIT_SIZE
        config = self.config
        in_memory = self._in_memory_bytes
        disk_bytes = config.max_transfer_bytes_on_message_in_disk
        disk_count = config.max_transfer_count_on_message_in_disk
        memory_bytes = config.max_transfer_bytes_on_message_in_memory
        memory_count = config.max_transfer_count_on_message_in_memory
        # Records that lie back to back in the commit log are read with one
        # read (a run) and sliced; see _run_end.
        run = b""
        run_start = run_end = 0
        current: DataFile | None = None
        position = 0
        for physical, size, tags_code in _ENTRY_ITER(entries[:usable]):
            position += CQ_STORE_UNIT_SIZE
            max_physical_pulling = physical
            if next_file_start is not None and physical < next_file_start:
                consumed += 1
                continue
            if total and messages:
                taken = len(messages)
                if max_msg_nums <= taken:
                    break
                if max_physical - physical > in_memory:
                    if total + size > disk_bytes or taken > disk_count - 1:
                        break
                elif total + size > memory_bytes or taken > memory_count - 1:
                    break
            consumed += 1
            unit: CqExtUnit | None = None
            known_tags: int | None = tags_code
            if is_ext_addr(tags_code):
                unit = ext.get(tags_code) if ext is not None else None
                if unit is not None:
                    known_tags = unit.tags_code
                else:
                    log.error(
                        "consume queue ext: no unit at %d for the message at %d",
                        tags_code,
                        physical,
                    )
                    known_tags = None
            if message_filter is not None and not message_filter.is_matched_by_consume_queue(
                known_tags, unit
            ):
                if message_filter.reads_commit_log and unit is not None and unit.bit_map:
                    skipped += 1
                if not total:
                    status = GetMessageStatus.NO_MATCHED_MESSAGE
                continue
            record: bytes | None
            if size <= 0:
                record = None  # as the commit log's read answers it
            elif run_start <= physical and physical + size <= run_end:
                record = run[physical - run_start : physical - run_start + size]
            else:
                end = physical + size
                read: bytes | None = None
                if position < usable and _NEXT_START(entries, position)[0] == end:
                    room = max_msg_nums - len(messages)
                    run_end = _run_end(entries, position, usable, physical, end, room)
                    if run_end > end:
                        read = self._commit_log.read(physical, run_end - physical, in_loop=in_loop)
                if read is not None:
                    run, run_start = read, physical
                    record = read[:size]
                else:
                    run_end = 0
                    # The usual miss: a record in the file of the one before.
                    if (
                        current is not None
                        and current.base <= physical
                        and end - current.base <= current.wrote
                        and not current.destroyed
                    ):
                        record = (
                            current.read_in_loop(physical - current.base, size)
                            if in_loop
                            else current.read(physical - current.base, size)
                        )
                    else:
                        record = self._commit_log.read(physical, size, in_loop=in_loop)
                        current = self._commit_log.files.find(physical)
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
        if skipped:
            with self._stats_lock:
                self.bit_map_skips += skipped
        return GetMessageResult(
            status,
            offset + consumed,
            min_offset,
            max_offset,
            tuple(messages),
            suggest,
        )
