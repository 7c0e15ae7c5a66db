"""Consume-queue extension files (Java's ``ConsumeQueueExt``).

``<root>/consumequeue_ext/<topic>/<queueId>/<20-digit offset>`` holds
variable-size units, each: size i16 (the whole unit), tags code i64, store
time i64, bit-map size i16, then the bit map. A consume-queue entry whose
tags code is at most ``MAX_ADDR`` (a "decorated" address: the unit's offset
plus ``Long.MIN_VALUE``) points at a unit. A unit that does not fit in what
is left of a file (less its last 4 bytes) goes to the next file; the rest of
the file starts with i16 -1. A size of 0 is the end of the written part.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Final

from pyrocket.broker.store.files import DataFile, FileQueue
from pyrocket.broker.store.model import MIN_EXT_UNIT_SIZE, CqExtUnit

log = logging.getLogger(__name__)

__all__ = [
    "END_BLANK_DATA_LENGTH",
    "MAX_ADDR",
    "MAX_EXT_UNIT_SIZE",
    "MIN_EXT_UNIT_SIZE",
    "NOT_STORED",
    "ConsumeQueueExt",
    "CqExtUnit",
    "decorate",
    "is_ext_addr",
    "undecorate",
]

MAX_EXT_UNIT_SIZE: Final = 0x7FFF
#: Bytes kept free at the end of every file.
END_BLANK_DATA_LENGTH: Final = 4
_LONG_MIN: Final = -(1 << 63)
#: The greatest decorated address (``Integer.MIN_VALUE - 1``).
MAX_ADDR: Final = -(1 << 31) - 1
#: The greatest offset a unit can have.
MAX_REAL_OFFSET: Final = MAX_ADDR - _LONG_MIN
#: What :meth:`ConsumeQueueExt.put` answers when the unit was not stored.
NOT_STORED: Final = 1
_FILL: Final = struct.pack(">h", -1)
_SCAN_CHUNK: Final = 4 * (MAX_EXT_UNIT_SIZE + 1)


def is_ext_addr(address: int) -> bool:
    """Whether a consume-queue tags code is an extension address."""
    return address <= MAX_ADDR


def decorate(offset: int) -> int:
    return offset + _LONG_MIN if not is_ext_addr(offset) else offset


def undecorate(address: int) -> int:
    return address - _LONG_MIN if is_ext_addr(address) else address


class ConsumeQueueExt:
    """The extension files of one consume queue."""

    def __init__(self, topic: str, queue_id: int, directory: Path, file_size: int) -> None:
        self.topic = topic
        self.queue_id = queue_id
        self.file_size = file_size
        self.files = FileQueue(directory, file_size)

    def load(self) -> None:
        self.files.load()

    # -- reading ------------------------------------------------------------

    def get(self, address: int) -> CqExtUnit | None:
        """The unit at a decorated ``address``, None when there is none."""
        if not is_ext_addr(address):
            return None
        offset = undecorate(address)
        data_file = self.files.find(offset)
        if data_file is None:
            return None
        position = offset - data_file.base
        if position >= data_file.wrote:
            return None
        head = data_file.read(position, 2)
        if len(head) < 2:
            return None
        (size,) = struct.unpack(">h", head)
        if size < MIN_EXT_UNIT_SIZE or position + size > data_file.wrote:
            return None
        return CqExtUnit.decode(data_file.read(position, size))

    @property
    def max_address(self) -> int:
        return decorate(self.files.max_offset)

    @property
    def min_address(self) -> int:
        first = self.files.first
        return decorate(first.base if first is not None else 0)

    # -- writing ------------------------------------------------------------

    def _target(self, size: int) -> tuple[int, bool]:
        """Base of the file a unit of ``size`` goes to, and whether the last
        file must first be filled to its end."""
        last = self.files.last
        if last is None:
            return 0, False
        if last.is_full:
            return last.end, False
        if size > self.file_size - last.wrote - END_BLANK_DATA_LENGTH:
            return last.end, True
        return last.base, False

    def file_needed(self, size: int, count: int = 1) -> int | None:
        """Base of a file that ``count`` units of ``size`` bytes need and
        that is not created yet (see :meth:`FileQueue.prepare_spare`), else None."""
        if size > self.file_size - END_BLANK_DATA_LENGTH:
            return None  # never stored
        last = self.files.last
        if last is None:
            base, wrote = 0, None
        else:
            base, wrote = last.base, last.wrote
        for _ in range(count):
            if wrote is None or size > self.file_size - wrote - END_BLANK_DATA_LENGTH:
                if wrote is not None:
                    base += self.file_size
                if not self.files.has_file_ready(base):
                    return base
                wrote = 0
            wrote += size
        return None

    def spare_wanted(self) -> int | None:
        """Base of the next file once the last is half full and no spare is there."""
        last = self.files.last
        if last is None or last.wrote * 2 < last.size:
            return None
        if self.files.creating or self.files.has_file_ready(last.end):
            return None
        return last.end

    def put(self, unit: CqExtUnit) -> int:
        """Append ``unit``: its decorated address, or :data:`NOT_STORED` (the
        unit is too big or the address space is used up). Creates a file
        here unless :meth:`file_needed` was satisfied first. Raises OSError."""
        size = unit.size
        if size > MAX_EXT_UNIT_SIZE or size > self.file_size - END_BLANK_DATA_LENGTH:
            log.error(
                "consume queue ext %s/%d: a unit of %d bytes", self.topic, self.queue_id, size
            )
            return NOT_STORED
        if self.files.max_offset + size > MAX_REAL_OFFSET:
            log.warning(
                "consume queue ext %s/%d is at its greatest size", self.topic, self.queue_id
            )
            return NOT_STORED
        base, fill = self._target(size)
        last = self.files.last
        if fill and last is not None:
            last.write(last.wrote, _FILL)
            last.wrote = self.file_size
        data_file = self.files.create(base) if last is None or base != last.base else last
        position = data_file.wrote
        data_file.write(position, unit.encode())
        data_file.wrote = position + size
        return decorate(data_file.base + position)

    # -- recovery and cleanup ----------------------------------------------

    def recover(self) -> None:
        """Find the end of the written units of every file and cut the last
        file there (``ConsumeQueueExt.recover``). Blocking."""
        files = self.files.files
        if not files:
            return
        end = 0
        for data_file in files:
            position = _written_end(data_file)
            end = data_file.base + position
            # Files before the last were filled (or nearly) when the next began.
            data_file.wrote = data_file.flushed = data_file.size
        self.files.truncate(end)

    def truncate_by_max_address(self, address: int) -> None:
        """Drop everything after the unit at ``address`` (``truncateByMaxAddress``)."""
        if not is_ext_addr(address):
            return
        unit = self.get(address)
        if unit is None:
            log.error("consume queue ext %s/%d: no unit at %d", self.topic, self.queue_id, address)
            return
        self.files.truncate(undecorate(address) + unit.size)

    def expired_files(self, min_address: int) -> list[DataFile]:
        """Take out the leading files that end before the unit at ``min_address``
        (``truncateByMinAddress``); the caller deletes them."""
        if not is_ext_addr(min_address):
            return []
        offset = undecorate(min_address)
        count = 0
        for data_file in self.files.files:
            if data_file.end >= offset:
                break
            count += 1
        return self.files.remove_first(count)

    def destroy(self) -> None:
        self.files.destroy()


def _written_end(data_file: DataFile) -> int:
    """Where the units of a file end: at a size of 0 or less (the clean end
    or the fill before the next file), or at a unit that runs off the file.
    Reads in chunks larger than the largest unit."""
    position = 0
    while position + 2 <= data_file.size:
        raw = data_file.read(position, min(_SCAN_CHUNK, data_file.size - position))
        offset = 0
        while offset + 2 <= len(raw):
            (size,) = struct.unpack_from(">h", raw, offset)
            if size <= 0:
                return position + offset
            if offset + size > len(raw):
                break
            offset += size
        if offset == 0:
            return position  # a unit running off the end of the file
        position += offset
    return position
