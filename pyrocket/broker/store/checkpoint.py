"""``<root>/checkpoint`` (Java's ``StoreCheckpoint``): one 4096-byte page.

```
offset  size  field (Java's)
     0     8  store time of the last message flushed in the commit log (ms)
     8     8  store time of the last message flushed in the consume queues
    16     8  end time of the last index file that filled up and was fsynced
offset  size  field (pyrocket's; Java never reads or writes past byte 24)
    24     8  marker "PYRCKPT1"
    32     8  commit-log offset flushed
    40     8  commit-log offset whose messages' consume-queue entries are flushed
    48     8  copy of bytes 0-7   } the offsets are trusted only while these
    56     8  copy of bytes 8-15  } match: a Java broker may have run since
```

Java replays the commit log after a crash from the last file whose first
message is not newer than ``min(physic, logics) - 3 s``, which depends on the
clock never going back. pyrocket replays from the smaller recorded offset when
it has one, and falls back to Java's rule for a checkpoint Java wrote.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Final

PAGE_SIZE: Final = 4096
_JAVA = struct.Struct(">qqq")
_EXTENSION = struct.Struct(">qqqqq")
_MARKER: Final = int.from_bytes(b"PYRCKPT1", "big")


class StoreCheckpoint:
    """The checkpoint file, opened for the store's lifetime."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if os.fstat(self._fd).st_size < PAGE_SIZE:
            os.ftruncate(self._fd, PAGE_SIZE)
        raw = os.pread(self._fd, _JAVA.size + _EXTENSION.size, 0)
        physic, logics, index = _JAVA.unpack_from(raw)
        self.physic_msg_timestamp: int = physic
        self.logics_msg_timestamp: int = logics
        self.index_msg_timestamp: int = index
        marker, physic_offset, logics_offset, physic_copy, logics_copy = _EXTENSION.unpack_from(
            raw, _JAVA.size
        )
        trusted = (
            marker == _MARKER
            and physic_copy == self.physic_msg_timestamp
            and logics_copy == self.logics_msg_timestamp
        )
        #: Commit-log offset known flushed, -1 when unknown.
        self.physic_offset: int = physic_offset if trusted else -1
        #: Commit-log offset whose consume-queue entries are flushed, -1 when unknown.
        self.logics_offset: int = logics_offset if trusted else -1
        self._written = self._values()

    def _values(self) -> tuple[int, ...]:
        return (
            self.physic_msg_timestamp,
            self.logics_msg_timestamp,
            self.index_msg_timestamp,
            self.physic_offset,
            self.logics_offset,
        )

    @property
    def min_timestamp(self) -> int:
        """``getMinTimestamp``: the older of the two, minus 3 s, at least 0."""
        return max(0, min(self.physic_msg_timestamp, self.logics_msg_timestamp) - 3000)

    @property
    def replay_offset(self) -> int | None:
        """Where crash recovery must start replaying, when pyrocket recorded it."""
        if self.physic_offset < 0 or self.logics_offset < 0:
            return None
        return min(self.physic_offset, self.logics_offset)

    @property
    def changed(self) -> bool:
        return self._values() != self._written

    def flush(self) -> None:
        """Write and fsync the page's fields (blocking)."""
        values = self._values()
        page = _JAVA.pack(
            self.physic_msg_timestamp, self.logics_msg_timestamp, self.index_msg_timestamp
        ) + _EXTENSION.pack(
            _MARKER,
            self.physic_offset,
            self.logics_offset,
            self.physic_msg_timestamp,
            self.logics_msg_timestamp,
        )
        os.pwrite(self._fd, page, 0)
        os.fsync(self._fd)
        self._written = values

    def close(self) -> None:
        os.close(self._fd)
