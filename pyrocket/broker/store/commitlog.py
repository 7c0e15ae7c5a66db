"""The commit log: every stored message, back to back, across rolled files.

Records use the stored-message layout of :mod:`pyrocket.protocol.message`.
A record must leave at least 8 bytes free at the end of its file; when it
does not fit, the rest of the file becomes one blank record (size, then
``BLANK_MAGIC_CODE``) and the record goes to the next file, as in Java.

:func:`check_record` is the recovery-time validator (Java's
``checkMessageAndReturnSize``): it accepts a record only if its magic code,
its lengths, its body CRC and its physical offset field all agree with where
and what it is. The last check is pyrocket's: it rejects a stale record that
survived beyond a truncation point.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from pyrocket.broker.store.files import DataFile, FileQueue
from pyrocket.errors import PyrocketError
from pyrocket.protocol.message import (
    BLANK_MAGIC_CODE,
    MESSAGE_MAGIC_CODE,
    MessageConst,
    MessageSysFlag,
    decode_properties,
    java_crc32,
    store_timestamp_position,
    stored_message_size,
    tags_hash_code,
)

#: Room a file keeps for its closing blank record.
END_FILE_MIN_BLANK_LENGTH: Final = 8

SCHEDULE_TOPIC: Final = "SCHEDULE_TOPIC_XXXX"

_HEAD = struct.Struct(">iiiiiqqiq")
_BLANK = struct.Struct(">ii")
_I64 = struct.Struct(">q")
_MID = struct.Struct(">iqi")
_I16 = struct.Struct(">h")
_SIZE = struct.Struct(">i")
#: The shortest possible record: IPv4 hosts, no body, topic or properties.
_MIN_RECORD: Final = 91


class SpareMaker(Protocol):
    """What makes a missing file (a :class:`FileQueue`, the index service)."""

    @property
    def directory(self) -> Path: ...

    async def prepare_spare(self, base: int) -> None: ...


class FileNotReady(PyrocketError):
    """An append needs the file at ``base`` of ``files`` and it has not been
    created yet: the caller has it made in a worker thread and tries again.
    Nothing was written."""

    def __init__(self, files: SpareMaker, base: int) -> None:
        super().__init__(f"{files.directory}: file at {base} is not ready")
        self.files = files
        self.base = base


@dataclass(slots=True)
class DispatchRequest:
    """What a consume queue needs to know about one stored message."""

    topic: str
    queue_id: int
    commit_log_offset: int
    size: int
    tags_code: int
    store_timestamp: int
    queue_offset: int
    sys_flag: int
    prepared_transaction_offset: int
    properties: dict[str, str]


#: ``check_record`` met a blank record: the rest of the file is empty.
BLANK: Final = "blank"
#: ``check_record`` met something that is not a valid record.
INVALID: Final = "invalid"

#: (delay level, store timestamp) -> deliver timestamp, for schedule-topic tags.
DeliverTime = Callable[[int, int], int]


def check_record(
    buffer: bytes | bytearray | memoryview | mmap.mmap,
    position: int,
    file_base: int,
    *,
    check_crc: bool,
    deliver_time: DeliverTime,
) -> DispatchRequest | str:
    """Validate the record at ``position`` of a file starting at ``file_base``.

    Returns the dispatch request, :data:`BLANK` or :data:`INVALID`.
    """
    limit = len(buffer)
    if position + 8 > limit:
        return INVALID
    total, magic = _BLANK.unpack_from(buffer, position)
    if magic == BLANK_MAGIC_CODE:
        return BLANK
    if magic != MESSAGE_MAGIC_CODE or total < _MIN_RECORD or position + total > limit:
        return INVALID
    (
        _,
        _,
        body_crc,
        queue_id,
        _flag,
        queue_offset,
        physical_offset,
        sys_flag,
        _born,
    ) = _HEAD.unpack_from(buffer, position)
    if physical_offset != file_base + position or total < stored_message_size(sys_flag, 0, 0, 0):
        return INVALID
    pos = position + _HEAD.size + (20 if sys_flag & MessageSysFlag.BORNHOST_V6_FLAG else 8)
    (store_timestamp,) = _I64.unpack_from(buffer, pos)
    pos += 8 + (20 if sys_flag & MessageSysFlag.STOREHOSTADDRESS_V6_FLAG else 8)
    end = position + total
    if pos + _MID.size > end:
        return INVALID
    _reconsume, prepared_offset, body_length = _MID.unpack_from(buffer, pos)
    pos += _MID.size
    if body_length < 0 or pos + body_length + 3 > end:
        return INVALID
    if check_crc and java_crc32(memoryview(buffer)[pos : pos + body_length]) != body_crc:
        return INVALID
    pos += body_length
    topic_length = buffer[pos]
    if pos + 1 + topic_length + 2 > end:
        return INVALID
    try:
        topic = bytes(buffer[pos + 1 : pos + 1 + topic_length]).decode("utf-8")
    except UnicodeDecodeError:
        return INVALID
    pos += 1 + topic_length
    (properties_length,) = _I16.unpack_from(buffer, pos)
    if properties_length < 0 or pos + 2 + properties_length != end:
        return INVALID
    try:
        text = bytes(buffer[pos + 2 : end]).decode("utf-8")
    except UnicodeDecodeError:
        return INVALID
    properties = decode_properties(text)
    tags_code = tags_hash_code(properties.get(MessageConst.PROPERTY_TAGS))
    if topic == SCHEDULE_TOPIC:
        level_text = properties.get(MessageConst.PROPERTY_DELAY_TIME_LEVEL)
        if level_text is not None:
            try:
                level = int(level_text)
            except ValueError:
                return INVALID
            if level > 0:
                tags_code = deliver_time(level, store_timestamp)
    return DispatchRequest(
        topic=topic,
        queue_id=queue_id,
        commit_log_offset=physical_offset,
        size=total,
        tags_code=tags_code,
        store_timestamp=store_timestamp,
        queue_offset=queue_offset,
        sys_flag=sys_flag,
        prepared_transaction_offset=prepared_offset,
        properties=properties,
    )


class CommitLog:
    """The commit log's files and write position. Append is synchronous and
    never awaits, so appends are atomic under trio without a lock."""

    def __init__(self, directory: Path, file_size: int) -> None:
        self.files = FileQueue(directory, file_size, mapped_reads=True)
        self.file_size = file_size
        #: Everything before this offset is on disk.
        self.flushed_where = 0

    def load(self) -> None:
        self.files.load()

    @property
    def max_offset(self) -> int:
        return self.files.max_offset

    @property
    def min_offset(self) -> int:
        """Offset of the oldest file, -1 when there is none."""
        return self.files.min_offset

    def roll_next_file(self, offset: int) -> int:
        return offset + self.file_size - offset % self.file_size

    def reserve(self, length: int) -> tuple[DataFile, int]:
        """The file and position where a record of ``length`` bytes goes.

        Closes the current file with a blank record and opens the next when
        the record does not fit. Raises FileNotReady (before writing anything)
        when that next file has not been created yet, and OSError when the
        blank record cannot be written.
        """
        last = self.files.last
        if last is None:
            return self._take(0), 0
        if last.is_full:
            return self._take(last.end), 0
        remaining = last.size - last.wrote
        if length + END_FILE_MIN_BLANK_LENGTH > remaining:
            if not self.files.has_file_ready(last.end):
                raise FileNotReady(self.files, last.end)
            last.write(last.wrote, _BLANK.pack(remaining, BLANK_MAGIC_CODE))
            last.wrote = last.size
            return self._take(last.end), 0
        return last, last.wrote

    def _take(self, base: int) -> DataFile:
        if not self.files.has_file_ready(base):
            raise FileNotReady(self.files, base)
        return self.files.create(base)

    @staticmethod
    def commit(data_file: DataFile, position: int, record: bytes) -> None:
        """Write ``record`` at the reserved position and advance past it.
        Raises OSError; then nothing is advanced."""
        data_file.write(position, record)
        data_file.wrote = position + len(record)

    def read(self, offset: int, size: int, *, in_loop: bool = False) -> bytes | None:
        """``size`` bytes at ``offset`` if they are all written, else None;
        ``in_loop`` from the store's trio thread (through the file's mapping)."""
        data_file = self.files.find(offset)
        if data_file is None or data_file.destroyed or size <= 0:
            return None
        position = offset - data_file.base
        if position + size > data_file.wrote:
            return None
        if in_loop:
            return data_file.read_in_loop(position, size)
        return data_file.read(position, size)

    def read_record(self, offset: int, size: int | None = None) -> bytes | None:
        """The record at ``offset``; its size is read first when not given."""
        if size is None:
            head = self.read(offset, 4)
            if head is None:
                return None
            (size,) = _SIZE.unpack(head)
            if size < _MIN_RECORD:
                return None
        return self.read(offset, size)

    def store_timestamp_at(self, offset: int, size: int) -> int:
        """``pickupStoreTimestamp``: the store time of the record, -1 if unreadable."""
        if offset < self.min_offset or size < _MIN_RECORD:
            return -1
        head = self.read(offset, min(size, 96))
        if head is None or len(head) < 80:
            return -1
        sys_flag = int.from_bytes(head[36:40], "big", signed=True)
        at = store_timestamp_position(sys_flag)
        return int.from_bytes(head[at : at + 8], "big", signed=True)
