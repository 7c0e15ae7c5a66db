"""Consume queues: per topic and queue id, the positions of its messages in
the commit log (Java's ``ConsumeQueue``).

``<root>/consumequeue/<topic>/<queueId>/<20-digit offset>`` holds 20-byte
entries: commit-log offset i64, size i32, tags code i64. Entry ``n`` is the
message with queue offset ``n``; a file of ``F`` bytes holds entries
``[base/20, (base+F)/20)``. ``min_logic_offset`` is in bytes as in Java; the
queue offsets the API speaks of are entries.

With ``enableConsumeQueueExt`` a queue has extension files
(:mod:`~pyrocket.broker.store.consumequeue_ext`): each entry's tags code is
then the address of a unit holding the real tags code, the store time and
the message's filter bit map.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from trio_util import AsyncValue

from pyrocket.broker.store.config import CQ_STORE_UNIT_SIZE
from pyrocket.broker.store.consumequeue_ext import (
    ConsumeQueueExt,
    CqExtUnit,
    is_ext_addr,
)
from pyrocket.broker.store.files import DataFile, FileQueue

log = logging.getLogger(__name__)

_ENTRY = struct.Struct(">qiq")
#: What Java writes before the first real entry of a queue whose first file
#: starts mid-way (``fillPreBlank``).
_PRE_BLANK_SIZE: Final = 0x7FFFFFFF
_PRE_BLANK: Final = _ENTRY.pack(0, _PRE_BLANK_SIZE, 0)
#: The shortest stored record (IPv4 hosts, nothing else).
_MIN_RECORD: Final = 91
#: Bytes looked at after an invalid entry to tell damage from the end.
_DAMAGE_PROBE: Final = 4096


class ConsumeQueue:
    """One queue's index files and counters."""

    def __init__(
        self,
        topic: str,
        queue_id: int,
        directory: Path,
        file_size: int,
        ext: ConsumeQueueExt | None = None,
    ) -> None:
        self.topic = topic
        self.queue_id = queue_id
        self.files = FileQueue(directory, file_size)
        self.file_size = file_size
        #: End (offset + size) of the last message indexed, -1 for none.
        self.max_physic_offset = -1
        #: First valid entry, in bytes.
        self.min_logic_offset = 0
        #: The max offset (entries), for tasks waiting for new messages.
        self.max_offset_value: AsyncValue = AsyncValue(0)
        #: Set by :meth:`recover` when an entry was damaged (not a clean end):
        #: recovery then rebuilds the queue from the commit log.
        self.damaged = False
        #: The extension files (``enableConsumeQueueExt``), else None.
        self.ext = ext

    def all_dirty_files(self) -> list[DataFile]:
        """Dirty files of the queue and of its extension."""
        dirty = self.files.dirty_files()
        if self.ext is not None:
            dirty += self.ext.files.dirty_files()
        return dirty

    def load(self) -> None:
        self.files.load()
        if self.ext is not None:
            self.ext.load()

    # -- reading ------------------------------------------------------------

    @property
    def max_offset_in_queue(self) -> int:
        return self.files.max_offset // CQ_STORE_UNIT_SIZE

    @property
    def min_offset_in_queue(self) -> int:
        return self.min_logic_offset // CQ_STORE_UNIT_SIZE

    def roll_next_file(self, index: int) -> int:
        per_file = self.file_size // CQ_STORE_UNIT_SIZE
        return index + per_file - index % per_file

    def read_entries(self, index: int, max_bytes: int) -> bytes | None:
        """Entries from ``index`` to the end of the written part of its file
        (at most ``max_bytes``), or None (``getIndexBuffer``)."""
        offset = index * CQ_STORE_UNIT_SIZE
        if offset < self.min_logic_offset:
            return None
        data_file = self.files.find(offset)
        if data_file is None:
            return None
        position = offset - data_file.base
        available = data_file.wrote - position
        if available <= 0:
            return None
        return data_file.read(position, min(available, max_bytes))

    def entry(self, index: int) -> tuple[int, int, int] | None:
        """(commit-log offset, size, tags code) of entry ``index``; the tags
        code is the extension unit's when the entry points at one (the
        address itself when the unit is missing)."""
        found = self.read_entries(index, CQ_STORE_UNIT_SIZE)
        if found is None or len(found) < CQ_STORE_UNIT_SIZE:
            return None
        offset, size, tags = _ENTRY.unpack_from(found)
        if self.ext is not None and is_ext_addr(tags):
            unit = self.ext.get(tags)
            if unit is not None:
                tags = unit.tags_code
        return int(offset), int(size), int(tags)

    def last_offset(self) -> int:
        """End of the last indexed message per the files (``getLastOffset``), -1 for none."""
        last = self.files.last
        if last is None or last.wrote < CQ_STORE_UNIT_SIZE:
            return -1
        offset, size, _ = _ENTRY.unpack(
            last.read(last.wrote - CQ_STORE_UNIT_SIZE, CQ_STORE_UNIT_SIZE)
        )
        return int(offset + size) if offset >= 0 and size > 0 else -1

    # -- writing ------------------------------------------------------------

    def file_needed(self, queue_offset: int, count: int = 1) -> int | None:
        """Base of a file that entries ``queue_offset`` to ``queue_offset +
        count - 1`` need and that has not been created yet (see
        :meth:`FileQueue.prepare_spare`), else None (for the
        extension files: :meth:`ConsumeQueueExt.file_needed`)."""
        files = self.files
        last = files.last
        start = queue_offset * CQ_STORE_UNIT_SIZE
        if last is None:
            base = start - start % self.file_size
            if not files.has_file_ready(base):
                return base
        else:
            base = last.base
            start = max(start, base + last.wrote)
        end = start + count * CQ_STORE_UNIT_SIZE
        # Every further file the entries reach into.
        base += self.file_size
        while base < end:
            if not files.has_file_ready(base):
                return base
            base += self.file_size
        return None

    def spare_wanted(self) -> int | None:
        """Base of the next file once the last is half full and no spare is
        there or being made: the time to create it ahead of need."""
        last = self.files.last
        if last is None or last.wrote * 2 < last.size:
            return None
        files = self.files
        if files.creating or files.has_file_ready(last.end):
            return None
        return last.end

    def put(
        self,
        physical_offset: int,
        size: int,
        tags_code: int,
        queue_offset: int,
        store_timestamp: int = 0,
        bit_map: bytes | None = None,
    ) -> bool:
        """Index one message (``putMessagePositionInfoWrapper``). Skips a
        message already indexed, so re-dispatching after a crash is
        harmless. With extension files the tags code, store time and bit map
        go to a unit whose address the entry holds (the plain tags code when
        the unit could not be stored, as Java). Returns whether an entry was
        written. Raises OSError."""
        if physical_offset + size <= self.max_physic_offset:
            return False
        expect = queue_offset * CQ_STORE_UNIT_SIZE
        data_file = self.files.last
        first_in_queue = data_file is None
        if data_file is None:
            data_file = self.files.create(expect - expect % self.file_size)
        elif data_file.is_full:
            data_file = self.files.create(data_file.end)
        if first_in_queue and queue_offset != 0 and data_file.wrote == 0:
            # The queue's history before this file is gone: pad up to the entry.
            self.min_logic_offset = expect
            padding = expect - data_file.base
            if padding:
                data_file.write(0, _PRE_BLANK * (padding // CQ_STORE_UNIT_SIZE))
                data_file.wrote = data_file.flushed = padding
        if queue_offset != 0:
            current = data_file.base + data_file.wrote
            if expect < current:
                return False
            if expect != current:
                log.warning(
                    "consume queue %s/%d: entry %d written at %d, the queue has a gap",
                    self.topic,
                    self.queue_id,
                    queue_offset,
                    current // CQ_STORE_UNIT_SIZE,
                )
        if self.ext is not None:
            address = self.ext.put(CqExtUnit(tags_code, store_timestamp, bit_map))
            if is_ext_addr(address):
                tags_code = address
            else:
                log.warning(
                    "consume queue ext %s/%d: unit not stored, keeping the tags code",
                    self.topic,
                    self.queue_id,
                )
        data_file.write(data_file.wrote, _ENTRY.pack(physical_offset, size, tags_code))
        data_file.wrote += CQ_STORE_UNIT_SIZE
        self.max_physic_offset = physical_offset + size
        self.max_offset_value.value = (data_file.base + data_file.wrote) // CQ_STORE_UNIT_SIZE
        return True

    def put_batch(
        self,
        physical_offset: int,
        sizes: Sequence[int],
        tags_codes: Sequence[int],
        queue_offset: int,
    ) -> bool:
        """Index consecutive records (a batch, from ``physical_offset`` on)
        with one write, when that is what :meth:`put` one by one would write:
        no extension files, entries that continue the last file and fit in
        it, none indexed yet. Returns False, having written nothing, for
        anything else (the caller then uses :meth:`put`). Raises OSError."""
        data_file = self.files.last
        count = len(sizes)
        if (
            self.ext is not None
            or data_file is None
            or not count
            or physical_offset + sizes[0] <= self.max_physic_offset
            or queue_offset * CQ_STORE_UNIT_SIZE != data_file.base + data_file.wrote
            or data_file.wrote + count * CQ_STORE_UNIT_SIZE > data_file.size
        ):
            return False
        entries = []
        physical = physical_offset
        for size, tags_code in zip(sizes, tags_codes, strict=True):
            entries.append(_ENTRY.pack(physical, size, tags_code))
            physical += size
        data_file.write(data_file.wrote, b"".join(entries))
        data_file.wrote += count * CQ_STORE_UNIT_SIZE
        self.max_physic_offset = physical
        self.max_offset_value.value = (data_file.base + data_file.wrote) // CQ_STORE_UNIT_SIZE
        return True

    # -- recovery and cleanup ----------------------------------------------

    def recover(self, commit_log_end: int | None = None) -> None:
        """Find the end of the valid entries, scanning from the third-last
        file, and cut there (``ConsumeQueue.recover``). Beyond Java's test
        (offset >= 0, size > 0), an entry must point after the one before it,
        at no less than a record's size, within the commit log's files
        (``commit_log_end``). An invalid entry followed by more data is
        damage, not the queue's end: :attr:`damaged` is set. Blocking."""
        files = self.files.files
        if not files:
            return
        index = max(0, len(files) - 3)
        previous_end = -1
        while True:
            data_file = files[index]
            valid, last_entry = _valid_prefix(data_file, previous_end, commit_log_end)
            if last_entry is not None:
                self.max_physic_offset = previous_end = last_entry[0] + last_entry[1]
            if valid == data_file.size and index + 1 < len(files):
                index += 1
                continue
            process_offset = data_file.base + valid
            break
        if valid < data_file.size:
            after = data_file.read(valid, min(_DAMAGE_PROBE, data_file.size - valid))
            # A file made ahead of need may follow, empty: that is no damage.
            following = (
                files[index + 1].read(0, CQ_STORE_UNIT_SIZE) if index + 1 < len(files) else b""
            )
            # Zeros from here on are the clean end; anything else is damage.
            self.damaged = any(after) or any(following)
            if self.damaged:
                log.warning(
                    "consume queue %s/%d: entry %d is damaged, rebuilding from the commit log",
                    self.topic,
                    self.queue_id,
                    process_offset // CQ_STORE_UNIT_SIZE,
                )
        self.files.truncate(process_offset)
        self._sync_value()
        if self.ext is not None:
            self.ext.recover()
            self._truncate_ext()

    def _truncate_ext(self) -> None:
        """Drop the units after the one the last entry with an address points
        at (``truncateByMaxAddress``). Blocking."""
        assert self.ext is not None
        # Like Java, only the files a recovery scans (the last three).
        for data_file in reversed(self.files.files[-3:]):
            raw = data_file.read(0, data_file.wrote)
            usable = len(raw) - len(raw) % CQ_STORE_UNIT_SIZE
            entries = list(_ENTRY.iter_unpack(raw[:usable]))
            for _, _, tags_code in reversed(entries):
                if is_ext_addr(tags_code):
                    self.ext.truncate_by_max_address(tags_code)
                    return
        # No entry has an address: Java leaves the files as they are.

    def truncate_dirty(self, physical_offset: int) -> None:
        """Drop the entries of messages at or after ``physical_offset``
        (``truncateDirtyLogicFiles``). Blocking."""
        self.max_physic_offset = physical_offset
        while self.files.files:
            last = self.files.files[-1]
            raw = last.read(0, last.wrote)
            keep = 0
            for physical, size, _ in _ENTRY.iter_unpack(
                raw[: len(raw) - len(raw) % CQ_STORE_UNIT_SIZE]
            ):
                if physical >= physical_offset or not (physical >= 0 and size > 0):
                    break
                keep += CQ_STORE_UNIT_SIZE
                self.max_physic_offset = physical + size
            if keep == 0:
                self.files.remove_last()
                continue
            if keep < last.wrote:
                last.cut(keep)
                last.wrote = last.flushed = keep
            break
        self._sync_value()
        if self.ext is not None:
            self._truncate_ext()

    def correct_min_offset(self, min_physical_offset: int) -> list[DataFile]:
        """Point ``min_logic_offset`` at the first entry whose message is still
        in the commit log (``correctMinOffset``). When none is left, the queue
        is empty: the minimum becomes the maximum, where Java keeps its old,
        now dangling, value. Returns the extension files wholly before that
        entry's unit, taken out of :attr:`ext`; the caller deletes them."""
        first = self.files.first
        if first is None:
            return []
        raw = first.read(0, first.wrote)
        usable = len(raw) - len(raw) % CQ_STORE_UNIT_SIZE
        for number, (physical, _, tags_code) in enumerate(_ENTRY.iter_unpack(raw[:usable])):
            if physical >= min_physical_offset:
                self.min_logic_offset = max(
                    self.min_logic_offset, first.base + number * CQ_STORE_UNIT_SIZE
                )
                if self.ext is not None and is_ext_addr(tags_code):
                    return self.ext.expired_files(tags_code)
                return []
        if first is self.files.last:
            self.min_logic_offset = max(self.min_logic_offset, first.base + usable)
        return []

    def expired_files(self, min_physical_offset: int) -> list[DataFile]:
        """Take out the leading files whose last entry points before
        ``min_physical_offset`` (never the last file); the caller deletes them
        (``deleteExpiredFileByOffset``)."""
        count = 0
        for data_file in self.files.files[:-1]:
            raw = data_file.read(data_file.size - CQ_STORE_UNIT_SIZE, CQ_STORE_UNIT_SIZE)
            if len(raw) < CQ_STORE_UNIT_SIZE:
                break
            physical, _, _ = _ENTRY.unpack(raw)
            if physical >= min_physical_offset:
                break
            count += 1
        return self.files.remove_first(count)

    def offset_by_time(
        self,
        timestamp: int,
        min_physical_offset: int,
        store_time: Callable[[int, int], int],
    ) -> int:
        """The queue offset whose store time is closest to ``timestamp``
        (``getOffsetInQueueByTime``): the file is chosen by modification time,
        then a binary search over its entries. 0 when there are no files."""
        files = self.files.files
        if not files:
            return 0
        chosen = files[-1]
        for data_file in files:
            if data_file.mtime_ms() >= timestamp:
                chosen = data_file
                break
        raw = chosen.read(0, chosen.wrote)
        low = self.min_logic_offset - chosen.base if self.min_logic_offset > chosen.base else 0
        high = len(raw) - CQ_STORE_UNIT_SIZE
        target = left = right = -1
        left_value = right_value = -1
        while high >= low:
            middle = (low + high) // (2 * CQ_STORE_UNIT_SIZE) * CQ_STORE_UNIT_SIZE
            physical, size, _ = _ENTRY.unpack_from(raw, middle)
            if physical < min_physical_offset:
                low = middle + CQ_STORE_UNIT_SIZE
                left = middle
                continue
            stored = store_time(physical, size)
            if stored < 0:
                return 0
            if stored == timestamp:
                target = middle
                break
            if stored > timestamp:
                high = middle - CQ_STORE_UNIT_SIZE
                right, right_value = middle, stored
            else:
                low = middle + CQ_STORE_UNIT_SIZE
                left, left_value = middle, stored
        if target != -1:
            offset = target
        elif left_value == -1:
            offset = right
        elif right_value == -1:
            offset = left
        else:
            offset = right if abs(timestamp - left_value) > abs(timestamp - right_value) else left
        return (chosen.base + offset) // CQ_STORE_UNIT_SIZE

    def destroy(self) -> None:
        self.max_physic_offset = -1
        self.min_logic_offset = 0
        self.files.destroy()
        if self.ext is not None:
            self.ext.destroy()
        self._sync_value()

    def _sync_value(self) -> None:
        self.max_offset_value.value = self.max_offset_in_queue


def _valid_prefix(
    data_file: DataFile, previous_end: int, commit_log_end: int | None
) -> tuple[int, tuple[int, int] | None]:
    """Bytes of valid entries from the file's start, and the (offset, size)
    of the last of them (see :meth:`ConsumeQueue.recover`). Reads in chunks:
    most files end in zeros long before their end."""
    valid = 0
    last: tuple[int, int] | None = None
    chunk = 64 * 1024 // CQ_STORE_UNIT_SIZE * CQ_STORE_UNIT_SIZE
    limit = commit_log_end if commit_log_end is not None else 1 << 63
    while valid < data_file.size:
        raw = data_file.read(valid, min(chunk, data_file.size - valid))
        usable = len(raw) - len(raw) % CQ_STORE_UNIT_SIZE
        if usable == 0:
            break
        for entry in _ENTRY.iter_unpack(raw[:usable]):
            physical, size, _ = entry
            if physical == 0 and size == _PRE_BLANK_SIZE and last is None:
                valid += CQ_STORE_UNIT_SIZE  # padding before a queue's first entry
            elif physical >= previous_end and size >= _MIN_RECORD and physical + size <= limit:
                valid += CQ_STORE_UNIT_SIZE
                last = (physical, size)
                previous_end = physical + size
            else:
                return valid, last
    return valid, last
