"""CRC32 as RocketMQ computes it (``UtilAll.crc32``).

Java masks the CRC32 of a byte array to a non-negative ``int``; REGISTER_BROKER
carries that value as ``bodyCrc32`` and the message store keeps it per message.
"""

from __future__ import annotations

import zlib


def crc32(data: bytes | bytearray | memoryview | None) -> int:
    """``UtilAll.crc32``: the CRC32 of ``data`` & 0x7FFFFFFF (0 for ``None``)."""
    if data is None:
        return 0
    return zlib.crc32(data) & 0x7FFFFFFF
