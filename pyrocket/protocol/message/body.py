"""What client and broker both do to a message body and its tags: Java's
``UtilAll.crc32``, body compression as the Java client does it (and bounded
inflation), and the consume-queue tags hash code.
"""

from __future__ import annotations

import zlib

from pyrocket.errors import ProtocolError
from pyrocket.protocol.javahash import string_hash
from pyrocket.protocol.message.constants import (
    COMPRESS_BODY_THRESHOLD,
    COMPRESS_LEVEL,
    DEFAULT_MAX_BODY_SIZE,
)


def java_crc32(data: bytes | bytearray | memoryview) -> int:
    """``UtilAll.crc32``: CRC32 with the sign bit cleared."""
    return zlib.crc32(data) & 0x7FFFFFFF


def tags_hash_code(tags: str | None) -> int:
    """The consume-queue tags code of a message: ``tags.hashCode()``, or 0
    when there are no tags (``MessageExtBrokerInner.tagsString2tagsCode``)."""
    if not tags:
        return 0
    return string_hash(tags)


def compress_body(body: bytes, level: int = COMPRESS_LEVEL) -> bytes:
    """Deflate a body as ``UtilAll.compress`` does (zlib stream, byte-identical)."""
    return zlib.compress(body, level)


def maybe_compress_body(
    body: bytes, threshold: int = COMPRESS_BODY_THRESHOLD, level: int = COMPRESS_LEVEL
) -> tuple[bytes, bool]:
    """What the Java producer sends: a body of ``threshold`` bytes or more
    deflated (and sysFlag bit 0 to set), a shorter one as it is."""
    if len(body) >= threshold:
        return compress_body(body, level), True
    return body, False


def decompress_body(data: bytes, max_size: int = DEFAULT_MAX_BODY_SIZE) -> bytes:
    """Inflate a compressed body (``UtilAll.uncompress``).

    Raises ProtocolError when ``data`` is not a complete zlib stream or inflates
    to more than ``max_size`` bytes. Bytes after the end of the stream are
    ignored, as Java's ``InflaterInputStream`` ignores them.
    """
    inflater = zlib.decompressobj()
    try:
        result = inflater.decompress(data, max_size)
    except zlib.error as exc:
        raise ProtocolError(f"compressed body is not a zlib stream: {exc}") from exc
    if inflater.unconsumed_tail:
        raise ProtocolError(f"compressed body inflates beyond {max_size} bytes")
    if not inflater.eof:
        try:
            rest = inflater.flush()
        except zlib.error as exc:  # pragma: no cover - flush rarely fails after decompress
            raise ProtocolError(f"compressed body is not a zlib stream: {exc}") from exc
        if len(result) + len(rest) > max_size:
            raise ProtocolError(f"compressed body inflates beyond {max_size} bytes")
        result += rest
        if not inflater.eof:
            raise ProtocolError("compressed body ends before its zlib stream does")
    return result


__all__ = [
    "compress_body",
    "decompress_body",
    "java_crc32",
    "maybe_compress_body",
    "tags_hash_code",
]
