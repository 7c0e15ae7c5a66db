"""The HA (master/slave replication) wire format of Java 4.7.0, sans I/O.

Two byte streams share one TCP connection to the master's ``haListenPort``:

slave -> master, offset reports, nothing else::

    +----------------------------+
    | max physical offset  i64 BE|   repeated; only the newest one counts
    +----------------------------+

master -> slave, transfer frames::

    +---------------------+---------------+------------------------+
    | physical offset i64 | body size i32 | body (commit-log bytes) |
    +---------------------+---------------+------------------------+

A frame with body size 0 is a heartbeat: it carries the offset the master
would send next. :class:`OffsetReportReader` and :class:`TransferReader`
take bytes as they arrive and return what is complete; both raise
ProtocolError for values no Java peer sends.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from pyrocket.errors import ProtocolError

#: Transfer frame header: physical offset, body size.
TRANSFER_HEADER: Final = struct.Struct(">qi")
HEADER_SIZE: Final = TRANSFER_HEADER.size
_REPORT: Final = struct.Struct(">q")
REPORT_SIZE: Final = _REPORT.size
#: The Java slave reads into a 4 MiB buffer: no frame may be larger.
MAX_FRAME_SIZE: Final = 4 * 1024 * 1024


def encode_offset_report(offset: int) -> bytes:
    """A slave's report of its commit log's max physical offset."""
    return _REPORT.pack(offset)


def encode_transfer_header(offset: int, size: int) -> bytes:
    """The header of a transfer frame of ``size`` body bytes (0: heartbeat)."""
    return TRANSFER_HEADER.pack(offset, size)


class OffsetReportReader:
    """Collects a slave's 8-byte reports; :meth:`feed` returns the newest
    complete one (None when none completed). Keeps under 8 bytes."""

    def __init__(self) -> None:
        self._pending = b""

    @property
    def empty(self) -> bool:
        """Whether no partial report is held."""
        return not self._pending

    def feed(self, data: bytes | bytearray) -> int | None:
        """Raises ProtocolError for a negative offset."""
        buffered = self._pending + data
        complete = len(buffered) - len(buffered) % REPORT_SIZE
        self._pending = buffered[complete:]
        if not complete:
            return None
        offset: int = _REPORT.unpack_from(buffered, complete - REPORT_SIZE)[0]
        if offset < 0:
            raise ProtocolError(f"HA offset report {offset} is negative")
        return offset


@dataclass(frozen=True, slots=True)
class TransferFrame:
    """One master -> slave frame: commit-log bytes at ``offset`` (empty for a heartbeat)."""

    offset: int
    body: bytes


class TransferReader:
    """Splits the master's stream into :class:`TransferFrame`; holds at most
    one frame's bytes."""

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._buffer = bytearray()
        self._max = max_frame_size

    def feed(self, data: bytes | bytearray) -> list[TransferFrame]:
        """The frames ``data`` completes. Raises ProtocolError for a negative
        offset or size, or a body over the limit."""
        self._buffer += data
        frames: list[TransferFrame] = []
        position = 0
        buffer = self._buffer
        while len(buffer) - position >= HEADER_SIZE:
            offset, size = TRANSFER_HEADER.unpack_from(buffer, position)
            if offset < 0 or size < 0 or size > self._max - HEADER_SIZE:
                raise ProtocolError(f"HA transfer header offset={offset} size={size} is invalid")
            end = position + HEADER_SIZE + size
            if end > len(buffer):
                break
            frames.append(TransferFrame(offset, bytes(buffer[position + HEADER_SIZE : end])))
            position = end
        del buffer[:position]
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buffer)
