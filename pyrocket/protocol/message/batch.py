"""Producer-side messages and the batch layout of a SEND_BATCH_MESSAGE body
(``encodeMessages``): per message total size i32, magic i32 (0), body CRC i32
(0), flag i32, body length i32 + body, properties length i16 + properties.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pyrocket.errors import ProtocolError
from pyrocket.protocol.message.constants import MAX_PROPERTIES_BYTES, MessageConst
from pyrocket.protocol.message.properties import decode_properties, decode_utf8, encode_properties

_I16 = struct.Struct(">h")


@dataclass(frozen=True, slots=True)
class Message:
    """A message as a producer builds it (Java's ``Message``).

    In a batch body only ``flag``, ``body`` and ``properties`` travel; the
    topic comes from the request header, so decoded batch items have ``""``.
    """

    topic: str = ""
    body: bytes = b""
    properties: Mapping[str, str] = field(default_factory=dict)
    flag: int = 0

    @property
    def tags(self) -> str | None:
        return self.properties.get(MessageConst.PROPERTY_TAGS)

    @property
    def keys(self) -> str | None:
        return self.properties.get(MessageConst.PROPERTY_KEYS)


_BATCH_HEAD = struct.Struct(">iiiii")  # total size, magic, body CRC, flag, body length


def encode_batch(messages: Iterable[Message]) -> bytes:
    """``MessageDecoder.encodeMessages``: the SEND_BATCH_MESSAGE body.

    Raises ValueError when a message's properties exceed 32767 bytes.
    """
    parts: list[bytes] = []
    for message in messages:
        properties = encode_properties(message.properties).encode("utf-8")
        if len(properties) > MAX_PROPERTIES_BYTES:
            raise ValueError(f"properties of {len(properties)} bytes exceed {MAX_PROPERTIES_BYTES}")
        total = _BATCH_HEAD.size + len(message.body) + 2 + len(properties)
        parts.append(_BATCH_HEAD.pack(total, 0, 0, message.flag, len(message.body)))
        parts.append(message.body)
        parts.append(_I16.pack(len(properties)))
        parts.append(properties)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One message of a batch body, undecoded: what the broker stores.

    ``body`` and ``properties`` are the bytes as sent: the broker stores the
    properties string verbatim.
    """

    flag: int
    body: bytes
    properties: bytes


def split_batch(data: bytes | bytearray | memoryview) -> list[BatchItem]:
    """Cut a SEND_BATCH_MESSAGE body into its messages without decoding the
    properties. Raises ProtocolError for a malformed body (an item whose
    lengths disagree with its total size or run past the data)."""
    items: list[BatchItem] = []
    offset = 0
    end = len(data)
    while offset < end:
        if offset + _BATCH_HEAD.size > end:
            raise ProtocolError("batch item shorter than its fixed header", offset)
        total, _magic, _crc, flag, body_length = _BATCH_HEAD.unpack_from(data, offset)
        pos = offset + _BATCH_HEAD.size
        if body_length < 0 or pos + body_length + 2 > end:
            raise ProtocolError(f"batch body length {body_length} runs past the data", pos - 4)
        body = bytes(data[pos : pos + body_length])
        pos += body_length
        (properties_length,) = _I16.unpack_from(data, pos)
        pos += 2
        if properties_length < 0 or pos + properties_length > end:
            raise ProtocolError(
                f"batch properties length {properties_length} runs past the data", pos - 2
            )
        if total != pos + properties_length - offset:
            raise ProtocolError(f"batch item total size {total} disagrees with its fields", offset)
        items.append(BatchItem(flag, body, bytes(data[pos : pos + properties_length])))
        pos += properties_length
        offset = pos
    return items


def decode_batch(data: bytes | bytearray | memoryview) -> list[Message]:
    """``MessageDecoder.decodeMessages``: the messages of a batch body.

    Raises ProtocolError for a malformed body or properties that are not UTF-8.
    """
    messages: list[Message] = []
    for item in split_batch(data):
        text = decode_utf8(item.properties, "batch properties", 0)
        messages.append(Message(body=item.body, properties=decode_properties(text), flag=item.flag))
    return messages


__all__ = [
    "BatchItem",
    "Message",
    "decode_batch",
    "encode_batch",
    "split_batch",
]
