"""A test-side reader of PULL_MESSAGE bodies, written from Java's
``MessageDecoder.decode`` (common/.../message/MessageDecoder.java) and the
record layout ``CommitLog`` writes, independently of pyrocket's codec: the
tests check the broker's answers against this, not against the code that
produced them.

Layout of one stored message (big-endian)::

    int   totalSize        int   magicCode (0xDAA320A7)
    int   bodyCRC          int   queueId
    int   flag             long  queueOffset
    long  physicalOffset   int   sysFlag
    long  bornTimestamp    bornHost  (4-byte IPv4 or 16-byte IPv6 [sysFlag bit 4] + int port)
    long  storeTimestamp   storeHost (4 or 16 bytes [sysFlag bit 5] + int port)
    int   reconsumeTimes   long  preparedTransactionOffset
    int   bodyLength + body            byte  topicLength + topic
    short propertiesLength + properties ("k\\x01v\\x02" ...)
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from dataclasses import dataclass

MAGIC = 0xDAA320A7
BORNHOST_V6 = 1 << 4
STOREHOST_V6 = 1 << 5
COMPRESSED = 1


@dataclass(frozen=True)
class JavaMessage:
    total_size: int
    magic: int
    body_crc: int
    queue_id: int
    flag: int
    queue_offset: int
    physical_offset: int
    sys_flag: int
    born_timestamp: int
    born_ip: bytes
    born_port: int
    store_timestamp: int
    store_ip: bytes
    store_port: int
    reconsume_times: int
    prepared_transaction_offset: int
    body: bytes
    topic: str
    properties_text: str

    @property
    def properties(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for item in self.properties_text.split("\x02"):
            if "\x01" in item:
                name, value = item.split("\x01", 1)
                result[name] = value
        return result

    @property
    def plain_body(self) -> bytes:
        """The body, inflated when the client compressed it."""
        return zlib.decompress(self.body) if self.sys_flag & COMPRESSED else self.body

    def encode(self) -> bytes:
        """The record again, field by field (for byte comparisons)."""
        topic = self.topic.encode()
        props = self.properties_text.encode()
        return b"".join(
            [
                struct.pack(
                    ">iIiiiqqiq",
                    self.total_size,
                    self.magic,
                    self.body_crc,
                    self.queue_id,
                    self.flag,
                    self.queue_offset,
                    self.physical_offset,
                    self.sys_flag,
                    self.born_timestamp,
                ),
                self.born_ip,
                struct.pack(">i", self.born_port),
                struct.pack(">q", self.store_timestamp),
                self.store_ip,
                struct.pack(">i", self.store_port),
                struct.pack(
                    ">iqi", self.reconsume_times, self.prepared_transaction_offset, len(self.body)
                ),
                self.body,
                struct.pack(">b", len(topic)),
                topic,
                struct.pack(">h", len(props)),
                props,
            ]
        )

    def replace(self, **changes: object) -> JavaMessage:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def decode_body(data: bytes) -> list[JavaMessage]:
    """Every message of a PULL_MESSAGE body; AssertionError on anything
    that is not exactly a sequence of whole records."""
    messages = []
    pos = 0
    while pos < len(data):
        start = pos
        (total, magic, crc, queue_id, flag, queue_offset, physical, sys_flag, born_ts) = (
            struct.unpack_from(">iIiiiqqiq", data, pos)
        )
        assert magic == MAGIC, f"bad magic at {pos}"
        pos += 48
        ip_len = 16 if sys_flag & BORNHOST_V6 else 4
        born_ip = data[pos : pos + ip_len]
        (born_port,) = struct.unpack_from(">i", data, pos + ip_len)
        pos += ip_len + 4
        (store_ts,) = struct.unpack_from(">q", data, pos)
        pos += 8
        ip_len = 16 if sys_flag & STOREHOST_V6 else 4
        store_ip = data[pos : pos + ip_len]
        (store_port,) = struct.unpack_from(">i", data, pos + ip_len)
        pos += ip_len + 4
        reconsume, prepared, body_len = struct.unpack_from(">iqi", data, pos)
        pos += 16
        body = data[pos : pos + body_len]
        pos += body_len
        topic_len = data[pos]
        topic = data[pos + 1 : pos + 1 + topic_len].decode()
        pos += 1 + topic_len
        (props_len,) = struct.unpack_from(">h", data, pos)
        props = data[pos + 2 : pos + 2 + props_len].decode()
        pos += 2 + props_len
        assert pos - start == total, f"record at {start} is {pos - start} bytes, says {total}"
        assert zlib.crc32(body) & 0x7FFFFFFF == crc, f"body CRC of record at {start}"
        messages.append(
            JavaMessage(
                total,
                magic,
                crc,
                queue_id,
                flag,
                queue_offset,
                physical,
                sys_flag,
                born_ts,
                born_ip,
                born_port,
                store_ts,
                store_ip,
                store_port,
                reconsume,
                prepared,
                body,
                topic,
                props,
            )
        )
    return messages
