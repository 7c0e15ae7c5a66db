"""Messages as RocketMQ stores and ships them (``MessageDecoder`` and friends).

This module owns, sans-I/O:

* the properties string, ``name \\x01 value \\x02`` repeated, both ways;
* the stored-message layout: one record of the commit log, and one element of
  a PULL_MESSAGE answer body (Java sends stored records back to back):

  ```
  offset  size  field
       0     4  total size (the whole record, this field included)
       4     4  magic code 0xDAA320A7
       8     4  body CRC (CRC32 of the body as stored, & 0x7FFFFFFF)
      12     4  queue id
      16     4  flag
      20     8  queue offset (logical position in its consume queue)
      28     8  physical offset (position in the commit log)
      36     4  sysFlag (bit 0 compressed, 1 multi tags, 2-3 transaction type,
                4 born host IPv6, 5 store host IPv6)
      40     8  born timestamp (ms)
      48  8|20  born host: IPv4 4 bytes (IPv6 16 when sysFlag bit 4) + port i32
       .     8  store timestamp (ms)
       .  8|20  store host: IPv4 4 bytes (IPv6 16 when sysFlag bit 5) + port i32
       .     4  reconsume times
       .     8  prepared transaction offset
       .     4  body length, then the body
       .     1  topic length (bytes), then the topic (UTF-8)
       .     2  properties length (bytes), then the properties (UTF-8)
  ```

* the batch layout of a SEND_BATCH_MESSAGE body (``encodeMessages``): per
  message total size i32, magic i32 (0), body CRC i32 (0), flag i32, body
  length i32 + body, properties length i16 + properties;
* message ids: the offset id (store host + commit-log offset, upper-case hex)
  and the client's unique id (``MessageClientIDSetter``);
* the tags hash code, sysFlag constants, ``MessageConst`` property names, body
  compression as the Java client does it, and Java's ``UtilAll.crc32``.

Every decoder here returns a value or raises :class:`ProtocolError`. Encoders
raise ``ValueError`` for values Java's layout cannot hold (a topic over 127
bytes, properties over 32767 bytes): those are the caller's bugs, not bad input.
The hot paths use :mod:`struct` rather than construct: the broker encodes one
record per stored message and a PULL answer decodes dozens.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from pyrocket.errors import ProtocolError
from pyrocket.protocol.javahash import JavaHashMap, string_hash

# --------------------------------------------------------------------------
# Constants

#: Magic code of a stored message record.
MESSAGE_MAGIC_CODE: Final = -626843481
#: Magic code of the blank record that fills the end of a commit-log file.
BLANK_MAGIC_CODE: Final = -875286124

NAME_VALUE_SEPARATOR: Final = "\x01"
PROPERTY_SEPARATOR: Final = "\x02"

#: Largest topic, in UTF-8 bytes, the one-byte length field can hold (Java's
#: ``Byte.MAX_VALUE``: a longer topic would read back as a negative length).
MAX_TOPIC_BYTES: Final = 127
#: Largest properties string, in UTF-8 bytes (Java's ``Short.MAX_VALUE``).
MAX_PROPERTIES_BYTES: Final = 32767

#: The Java client compresses bodies of at least this many bytes.
COMPRESS_BODY_THRESHOLD: Final = 4096
#: ... with this zlib level.
COMPRESS_LEVEL: Final = 5
#: Default bound on an inflated body; a deflate stream is a cheap bomb.
DEFAULT_MAX_BODY_SIZE: Final = 64 * 1024 * 1024

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


class MessageSysFlag:
    """Bits of a message's ``sysFlag`` (Java's ``MessageSysFlag``)."""

    COMPRESSED_FLAG: Final = 0x1
    MULTI_TAGS_FLAG: Final = 0x1 << 1
    TRANSACTION_NOT_TYPE: Final = 0
    TRANSACTION_PREPARED_TYPE: Final = 0x1 << 2
    TRANSACTION_COMMIT_TYPE: Final = 0x2 << 2
    TRANSACTION_ROLLBACK_TYPE: Final = 0x3 << 2
    BORNHOST_V6_FLAG: Final = 0x1 << 4
    STOREHOSTADDRESS_V6_FLAG: Final = 0x1 << 5

    @staticmethod
    def transaction_value(flag: int) -> int:
        """The transaction type bits of ``flag``."""
        return flag & MessageSysFlag.TRANSACTION_ROLLBACK_TYPE

    @staticmethod
    def reset_transaction_value(flag: int, transaction_type: int) -> int:
        """``flag`` with its transaction type bits replaced."""
        return (flag & ~MessageSysFlag.TRANSACTION_ROLLBACK_TYPE) | transaction_type

    @staticmethod
    def clear_compressed_flag(flag: int) -> int:
        return flag & ~MessageSysFlag.COMPRESSED_FLAG


class MessageConst:
    """Property names the Java code reserves (``MessageConst``)."""

    PROPERTY_KEYS: Final = "KEYS"
    PROPERTY_TAGS: Final = "TAGS"
    PROPERTY_WAIT_STORE_MSG_OK: Final = "WAIT"
    PROPERTY_DELAY_TIME_LEVEL: Final = "DELAY"
    PROPERTY_RETRY_TOPIC: Final = "RETRY_TOPIC"
    PROPERTY_REAL_TOPIC: Final = "REAL_TOPIC"
    PROPERTY_REAL_QUEUE_ID: Final = "REAL_QID"
    PROPERTY_TRANSACTION_PREPARED: Final = "TRAN_MSG"
    PROPERTY_PRODUCER_GROUP: Final = "PGROUP"
    PROPERTY_MIN_OFFSET: Final = "MIN_OFFSET"
    PROPERTY_MAX_OFFSET: Final = "MAX_OFFSET"
    PROPERTY_BUYER_ID: Final = "BUYER_ID"
    PROPERTY_ORIGIN_MESSAGE_ID: Final = "ORIGIN_MESSAGE_ID"
    PROPERTY_TRANSFER_FLAG: Final = "TRANSFER_FLAG"
    PROPERTY_CORRECTION_FLAG: Final = "CORRECTION_FLAG"
    PROPERTY_MQ2_FLAG: Final = "MQ2_FLAG"
    PROPERTY_RECONSUME_TIME: Final = "RECONSUME_TIME"
    PROPERTY_MSG_REGION: Final = "MSG_REGION"
    PROPERTY_TRACE_SWITCH: Final = "TRACE_ON"
    PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX: Final = "UNIQ_KEY"
    PROPERTY_MAX_RECONSUME_TIMES: Final = "MAX_RECONSUME_TIMES"
    PROPERTY_CONSUME_START_TIMESTAMP: Final = "CONSUME_START_TIME"
    PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET: Final = "TRAN_PREPARED_QUEUE_OFFSET"
    PROPERTY_TRANSACTION_CHECK_TIMES: Final = "TRANSACTION_CHECK_TIMES"
    PROPERTY_CHECK_IMMUNITY_TIME_IN_SECONDS: Final = "CHECK_IMMUNITY_TIME_IN_SECONDS"
    PROPERTY_INSTANCE_ID: Final = "INSTANCE_ID"
    PROPERTY_CORRELATION_ID: Final = "CORRELATION_ID"
    PROPERTY_MESSAGE_REPLY_TO_CLIENT: Final = "REPLY_TO_CLIENT"
    PROPERTY_MESSAGE_TTL: Final = "TTL"
    PROPERTY_REPLY_MESSAGE_ARRIVE_TIME: Final = "ARRIVE_TIME"
    PROPERTY_PUSH_REPLY_TIME: Final = "PUSH_REPLY_TIME"
    PROPERTY_CLUSTER: Final = "CLUSTER"
    PROPERTY_MESSAGE_TYPE: Final = "MSG_TYPE"

    KEY_SEPARATOR: Final = " "

    #: Names a user property may not take (Java's ``STRING_HASH_SET``).
    RESERVED_NAMES: Final = frozenset(
        {
            "TRACE_ON",
            "MSG_REGION",
            "KEYS",
            "TAGS",
            "WAIT",
            "DELAY",
            "RETRY_TOPIC",
            "REAL_TOPIC",
            "REAL_QID",
            "TRAN_MSG",
            "PGROUP",
            "MIN_OFFSET",
            "MAX_OFFSET",
            "BUYER_ID",
            "ORIGIN_MESSAGE_ID",
            "TRANSFER_FLAG",
            "CORRECTION_FLAG",
            "MQ2_FLAG",
            "RECONSUME_TIME",
            "UNIQ_KEY",
            "MAX_RECONSUME_TIMES",
            "CONSUME_START_TIME",
            "INSTANCE_ID",
            "CORRELATION_ID",
            "REPLY_TO_CLIENT",
            "TTL",
            "ARRIVE_TIME",
            "PUSH_REPLY_TIME",
            "CLUSTER",
            "MSG_TYPE",
        }
    )


# --------------------------------------------------------------------------
# Small helpers shared by client and broker


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


# --------------------------------------------------------------------------
# Properties


def encode_properties(properties: Mapping[str, str]) -> str:
    """``messageProperties2String``: ``name \\x01 value \\x02`` per entry, in the
    mapping's iteration order (pass a :class:`JavaHashMap` for Java's order).

    Raises ValueError when a name or value contains a separator character:
    the receiver would split it into different properties.
    """
    parts: list[str] = []
    for name, value in properties.items():
        if "\x01" in name or "\x02" in name or "\x01" in value or "\x02" in value:
            raise ValueError(f"property {name!r} contains a separator character")
        parts.append(f"{name}\x01{value}\x02")
    return "".join(parts)


def _java_split(text: str, sep: str) -> list[str]:
    """``String.split`` with a one-character separator: trailing empty strings
    are dropped."""
    parts = text.split(sep)
    while len(parts) > 1 and not parts[-1]:
        parts.pop()
    if parts == [""] and text:
        # Java drops every trailing empty string, even when all of them are.
        return []
    return parts


def decode_properties(text: str) -> dict[str, str]:
    """``string2messageProperties``, keeping the order of the string.

    Java's parsing, exactly: entries that do not split into exactly a name and
    a value (an empty value, a stray ``\\x01``) are skipped, a repeated name
    keeps its first position and its last value. It never fails.
    """
    result: dict[str, str] = {}
    if not text:
        return result
    for item in _java_split(text, PROPERTY_SEPARATOR):
        pair = _java_split(item, NAME_VALUE_SEPARATOR)
        if len(pair) == 2:
            result[pair[0]] = pair[1]
    return result


def java_properties(
    entries: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> JavaHashMap[str, str]:
    """A ``HashMap<String, String>`` (default capacity) filled in the given
    order: what Java's ``Message.putProperty`` calls or ``string2messageProperties``
    build, so that iterating it gives Java's order on the wire."""
    result: JavaHashMap[str, str] = JavaHashMap()
    items = entries.items() if isinstance(entries, Mapping) else entries
    for name, value in items:
        result[name] = value
    return result


def _decode_utf8(data: bytes | bytearray | memoryview, what: str, offset: int) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{what} is not valid UTF-8", offset + exc.start) from exc


# --------------------------------------------------------------------------
# Host addresses


@dataclass(frozen=True, slots=True)
class HostPort:
    """An IP address and port as a message carries them (``InetSocketAddress``).

    ``ip`` is the packed address: 4 bytes for IPv4, 16 for IPv6.
    """

    ip: bytes
    port: int

    def __post_init__(self) -> None:
        if len(self.ip) not in (4, 16):
            raise ValueError(f"an IP address has 4 or 16 bytes, not {len(self.ip)}")
        if not 0 <= self.port <= 0xFFFF:
            raise ValueError(f"port {self.port} out of range")

    @classmethod
    def of(cls, host: str, port: int) -> HostPort:
        """From a textual IP address. An IPv4-mapped IPv6 address becomes IPv4,
        as Java's ``InetAddress`` does. Raises ValueError for anything else."""
        address = ipaddress.ip_address(host.strip("[]"))
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return cls(address.packed, port)

    @classmethod
    def parse(cls, text: str) -> HostPort:
        """From ``"ip:port"`` (``"[v6]:port"`` for IPv6). Raises ValueError."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"not an ip:port address: {text!r}")
        return cls.of(host, int(port))

    @property
    def is_v6(self) -> bool:
        return len(self.ip) == 16

    @property
    def host(self) -> str:
        return str(ipaddress.ip_address(self.ip))

    def packed(self) -> bytes:
        """The stored form: address bytes, then the port as a big-endian i32."""
        return self.ip + self.port.to_bytes(4, "big")

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_v6 else f"{self.host}:{self.port}"


UNSPECIFIED_HOST: Final = HostPort(b"\x00\x00\x00\x00", 0)


# --------------------------------------------------------------------------
# Stored messages

# Fixed fields up to (and including) the born timestamp: total size, magic,
# body CRC, queue id, flag, queue offset, physical offset, sysFlag, born time.
_HEAD = struct.Struct(">iiiiiqqiq")
_HEAD_SIZE: Final = _HEAD.size  # 52
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_I16 = struct.Struct(">h")
_MID = struct.Struct(">iqi")  # reconsume times, prepared tx offset, body length

#: Position of the sysFlag field in a stored record.
SYSFLAG_POSITION: Final = 36
#: Position of the physical offset field in a stored record.
PHYSICAL_OFFSET_POSITION: Final = 28
#: Position of the queue offset field in a stored record.
QUEUE_OFFSET_POSITION: Final = 20


def stored_message_size(
    sys_flag: int, body_length: int, topic_length: int, properties_length: int
) -> int:
    """The record length for these field sizes (``CommitLog.calMsgLength``)."""
    born = 20 if sys_flag & MessageSysFlag.BORNHOST_V6_FLAG else 8
    store = 20 if sys_flag & MessageSysFlag.STOREHOSTADDRESS_V6_FLAG else 8
    return (
        4
        + 4
        + 4
        + 4
        + 4
        + 8
        + 8
        + 4
        + 8
        + born
        + 8
        + store
        + 4
        + 8
        + 4
        + body_length
        + 1
        + topic_length
        + 2
        + properties_length
    )


def store_timestamp_position(sys_flag: int) -> int:
    """Where the store timestamp sits in a record with this sysFlag."""
    return _HEAD_SIZE + (20 if sys_flag & MessageSysFlag.BORNHOST_V6_FLAG else 8)


def host_flags(born_host: HostPort, store_host: HostPort) -> int:
    """The sysFlag bits that say which hosts are IPv6."""
    flags = 0
    if born_host.is_v6:
        flags |= MessageSysFlag.BORNHOST_V6_FLAG
    if store_host.is_v6:
        flags |= MessageSysFlag.STOREHOSTADDRESS_V6_FLAG
    return flags


def encode_stored_record(
    *,
    topic: bytes,
    body: bytes,
    properties: bytes,
    queue_id: int,
    flag: int,
    queue_offset: int,
    physical_offset: int,
    sys_flag: int,
    born_timestamp: int,
    born_host: HostPort,
    store_timestamp: int,
    store_host: HostPort,
    reconsume_times: int,
    prepared_transaction_offset: int,
    body_crc: int,
) -> bytes:
    """One stored record from already-encoded topic and properties bytes.

    This is the commit log's encoder; ``sys_flag`` must already carry the IPv6
    bits that match the hosts. Raises ValueError for fields the layout cannot
    hold (topic over 127 bytes, properties over 32767 bytes, host/flag mismatch).
    """
    if len(topic) > MAX_TOPIC_BYTES:
        raise ValueError(f"topic of {len(topic)} bytes is longer than {MAX_TOPIC_BYTES}")
    if len(properties) > MAX_PROPERTIES_BYTES:
        raise ValueError(f"properties of {len(properties)} bytes exceed {MAX_PROPERTIES_BYTES}")
    if bool(sys_flag & MessageSysFlag.BORNHOST_V6_FLAG) != born_host.is_v6:
        raise ValueError("sysFlag bit 4 does not match the born host's address family")
    if bool(sys_flag & MessageSysFlag.STOREHOSTADDRESS_V6_FLAG) != store_host.is_v6:
        raise ValueError("sysFlag bit 5 does not match the store host's address family")
    total = stored_message_size(sys_flag, len(body), len(topic), len(properties))
    return b"".join(
        (
            _HEAD.pack(
                total,
                MESSAGE_MAGIC_CODE,
                body_crc,
                queue_id,
                flag,
                queue_offset,
                physical_offset,
                sys_flag,
                born_timestamp,
            ),
            born_host.packed(),
            _I64.pack(store_timestamp),
            store_host.packed(),
            _MID.pack(reconsume_times, prepared_transaction_offset, len(body)),
            body,
            bytes((len(topic),)),
            topic,
            _I16.pack(len(properties)),
            properties,
        )
    )


@dataclass(frozen=True, slots=True)
class MessageExt:
    """A stored message with its store metadata (Java's ``MessageExt``).

    ``body`` is the body as stored: deflated when ``sys_flag`` has bit 0 set
    (see :meth:`uncompressed_body`). ``properties`` keeps the order of the
    properties string. ``store_size`` is the record length as read (0 for a
    message built in memory).
    """

    topic: str
    body: bytes = b""
    properties: Mapping[str, str] = field(default_factory=dict)
    flag: int = 0
    queue_id: int = 0
    queue_offset: int = 0
    commit_log_offset: int = 0
    sys_flag: int = 0
    born_timestamp: int = 0
    born_host: HostPort = UNSPECIFIED_HOST
    store_timestamp: int = 0
    store_host: HostPort = UNSPECIFIED_HOST
    reconsume_times: int = 0
    prepared_transaction_offset: int = 0
    body_crc: int = 0
    store_size: int = 0

    @property
    def msg_id(self) -> str:
        """The offset message id: store host and commit-log offset."""
        return create_offset_message_id(self.store_host, self.commit_log_offset)

    @property
    def tags(self) -> str | None:
        return self.properties.get(MessageConst.PROPERTY_TAGS)

    @property
    def keys(self) -> str | None:
        return self.properties.get(MessageConst.PROPERTY_KEYS)

    @property
    def uniq_key(self) -> str | None:
        return self.properties.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX)

    @property
    def is_compressed(self) -> bool:
        return bool(self.sys_flag & MessageSysFlag.COMPRESSED_FLAG)

    def uncompressed_body(self, max_size: int = DEFAULT_MAX_BODY_SIZE) -> bytes:
        """The body inflated when the compressed bit is set. Raises ProtocolError."""
        if self.is_compressed:
            return decompress_body(self.body, max_size)
        return self.body


def encode_message(message: MessageExt) -> bytes:
    """``MessageDecoder.encode`` (without compressing): the stored record of
    ``message`` with its own CRC, offsets and hosts. Raises ValueError as
    :func:`encode_stored_record` does."""
    return encode_stored_record(
        topic=message.topic.encode("utf-8"),
        body=message.body,
        properties=encode_properties(message.properties).encode("utf-8"),
        queue_id=message.queue_id,
        flag=message.flag,
        queue_offset=message.queue_offset,
        physical_offset=message.commit_log_offset,
        sys_flag=message.sys_flag,
        born_timestamp=message.born_timestamp,
        born_host=message.born_host,
        store_timestamp=message.store_timestamp,
        store_host=message.store_host,
        reconsume_times=message.reconsume_times,
        prepared_transaction_offset=message.prepared_transaction_offset,
        body_crc=message.body_crc,
    )


def _host(
    data: bytes | bytearray | memoryview, pos: int, v6: bool, what: str
) -> tuple[HostPort, int]:
    length = 16 if v6 else 4
    ip = bytes(data[pos : pos + length])
    (port,) = _I32.unpack_from(data, pos + length)
    if not 0 <= port <= 0xFFFF:
        raise ProtocolError(f"{what} port {port} out of range", pos + length)
    return HostPort(ip, port), pos + length + 4


def decode_message(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[MessageExt, int]:
    """Decode the stored record at ``offset``; return it and the offset after it.

    Raises ProtocolError when the record is cut short, its magic code is not a
    message's, its lengths disagree with its total size, a host port is out of
    range or its topic or properties are not UTF-8.
    """
    end = len(data)
    if offset + _HEAD_SIZE > end:
        raise ProtocolError("stored message shorter than its fixed header", offset)
    (
        total,
        magic,
        body_crc,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sys_flag,
        born_timestamp,
    ) = _HEAD.unpack_from(data, offset)
    if magic != MESSAGE_MAGIC_CODE:
        raise ProtocolError(f"magic code {magic & 0xFFFFFFFF:#010x} is not a message's", offset + 4)
    minimum = stored_message_size(sys_flag, 0, 0, 0)
    if total < minimum:
        raise ProtocolError(f"total size {total} is below the minimum {minimum}", offset)
    if offset + total > end:
        raise ProtocolError(f"stored message of {total} bytes runs past the data", offset)
    pos = offset + _HEAD_SIZE
    born_host, pos = _host(data, pos, bool(sys_flag & MessageSysFlag.BORNHOST_V6_FLAG), "born host")
    (store_timestamp,) = _I64.unpack_from(data, pos)
    store_host, pos = _host(
        data, pos + 8, bool(sys_flag & MessageSysFlag.STOREHOSTADDRESS_V6_FLAG), "store host"
    )
    reconsume_times, prepared_offset, body_length = _MID.unpack_from(data, pos)
    pos += _MID.size
    record_end = offset + total
    # Every variable field must fit before the record's declared end.
    if body_length < 0 or pos + body_length + 1 > record_end:
        raise ProtocolError(f"body length {body_length} does not fit the record", pos - 4)
    body = bytes(data[pos : pos + body_length])
    pos += body_length
    topic_length = data[pos]
    if topic_length > MAX_TOPIC_BYTES or pos + 1 + topic_length + 2 > record_end:
        raise ProtocolError(f"topic length {topic_length} does not fit the record", pos)
    topic = _decode_utf8(data[pos + 1 : pos + 1 + topic_length], "topic", pos + 1)
    pos += 1 + topic_length
    (properties_length,) = _I16.unpack_from(data, pos)
    if properties_length < 0 or pos + 2 + properties_length != record_end:
        raise ProtocolError(
            f"properties length {properties_length} disagrees with total size {total}", pos
        )
    properties = decode_properties(_decode_utf8(data[pos + 2 : record_end], "properties", pos + 2))
    message = MessageExt(
        topic=topic,
        body=body,
        properties=properties,
        flag=flag,
        queue_id=queue_id,
        queue_offset=queue_offset,
        commit_log_offset=physical_offset,
        sys_flag=sys_flag,
        born_timestamp=born_timestamp,
        born_host=born_host,
        store_timestamp=store_timestamp,
        store_host=store_host,
        reconsume_times=reconsume_times,
        prepared_transaction_offset=prepared_offset,
        body_crc=body_crc,
        store_size=total,
    )
    return message, record_end


def decode_messages(data: bytes | bytearray | memoryview) -> list[MessageExt]:
    """Every stored record of ``data``, back to back (a PULL_MESSAGE answer
    body). Raises ProtocolError if any record is malformed or bytes are left."""
    messages: list[MessageExt] = []
    offset = 0
    while offset < len(data):
        message, offset = decode_message(data, offset)
        messages.append(message)
    return messages


def split_stored_records(data: bytes | bytearray | memoryview) -> list[bytes]:
    """Cut ``data`` into its stored records without decoding them (for
    forwarding or byte comparison). Raises ProtocolError as decode does."""
    records: list[bytes] = []
    offset = 0
    while offset < len(data):
        _, end = decode_message(data, offset)
        records.append(bytes(data[offset:end]))
        offset = end
    return records


# --------------------------------------------------------------------------
# Producer-side messages and the batch layout


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
        text = _decode_utf8(item.properties, "batch properties", 0)
        messages.append(Message(body=item.body, properties=decode_properties(text), flag=item.flag))
    return messages


# --------------------------------------------------------------------------
# Message ids


def create_offset_message_id(store_host: HostPort, commit_log_offset: int) -> str:
    """The id the broker answers a send with: store host address, port and
    commit-log offset as upper-case hex (32 characters for IPv4, 56 for IPv6)."""
    return (store_host.packed() + _I64.pack(commit_log_offset)).hex().upper()


def decode_offset_message_id(msg_id: str) -> tuple[HostPort, int]:
    """The store host and commit-log offset of an offset message id.

    Raises ProtocolError when ``msg_id`` is not 32 or 56 hex digits.
    """
    if len(msg_id) not in (32, 56):
        raise ProtocolError(f"message id of {len(msg_id)} characters is neither 32 nor 56")
    try:
        raw = bytes.fromhex(msg_id)
    except ValueError as exc:
        raise ProtocolError(f"message id {msg_id!r} is not hex") from exc
    ip_length = 4 if len(raw) == 16 else 16
    port = int.from_bytes(raw[ip_length : ip_length + 4], "big", signed=True)
    if not 0 <= port <= 0xFFFF:
        raise ProtocolError(f"message id port {port} out of range")
    (offset,) = _I64.unpack_from(raw, ip_length + 4)
    return HostPort(raw[:ip_length], port), offset


@dataclass(frozen=True, slots=True)
class UniqueId:
    """The parts of a client unique message id (``UNIQ_KEY``)."""

    ip: bytes
    pid: int
    class_loader_hash: int
    time_offset_ms: int
    counter: int

    @property
    def host(self) -> str:
        return str(ipaddress.ip_address(self.ip))

    def approximate_time_ms(self, now_ms: int | None = None, tz: _dt.tzinfo | None = None) -> int:
        """When the id was made (``getNearlyTimeFromID``): the offset counts
        from the start of a month, taken as this month unless that lands in the
        future, then the previous one."""
        now = _wall_ms() if now_ms is None else now_ms
        start, _ = month_bounds_ms(now, tz)
        if start + self.time_offset_ms >= now:
            start, _ = month_bounds_ms(start - 1, tz)
        return start + self.time_offset_ms


def parse_unique_id(unique_id: str) -> UniqueId:
    """Split a client unique id into its parts.

    Raises ProtocolError when it is not 32 (IPv4) or 56 (IPv6) hex digits.
    """
    if len(unique_id) not in (32, 56):
        raise ProtocolError(f"unique id of {len(unique_id)} characters is neither 32 nor 56")
    try:
        raw = bytes.fromhex(unique_id)
    except ValueError as exc:
        raise ProtocolError(f"unique id {unique_id!r} is not hex") from exc
    ip_length = len(raw) - 12
    pid = int.from_bytes(raw[ip_length : ip_length + 2], "big")
    class_loader_hash = int.from_bytes(raw[ip_length + 2 : ip_length + 6], "big", signed=True)
    # Unsigned: a month has more milliseconds than an i32 holds (Java reads it
    # back through a long, too).
    time_offset = int.from_bytes(raw[ip_length + 6 : ip_length + 10], "big")
    counter = int.from_bytes(raw[ip_length + 10 :], "big")
    return UniqueId(raw[:ip_length], pid, class_loader_hash, time_offset, counter)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def month_bounds_ms(now_ms: int, tz: _dt.tzinfo | None = None) -> tuple[int, int]:
    """Start of the month containing ``now_ms`` and of the next one, in ms,
    in ``tz`` (the local zone when None), as Java's ``Calendar`` computes them."""
    moment = _dt.datetime.fromtimestamp(now_ms / 1000, tz)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    nxt = start.replace(year=year, month=month)
    if tz is None:
        # Naive local datetimes: mktime resolves the zone offset at each instant.
        return int(time.mktime(start.timetuple())) * 1000, int(time.mktime(nxt.timetuple())) * 1000
    return int(start.timestamp() * 1000), int(nxt.timestamp() * 1000)


class UniqueIdGenerator:
    """Makes ``UNIQ_KEY`` values as ``MessageClientIDSetter`` does, with the
    state (prefix, counter, month window) per instance instead of global.

    An id is 16 bytes (28 for an IPv6 ``ip``) in upper-case hex: the IP, the
    low 16 bits of the pid, the class-loader hash, milliseconds since the start
    of the current month (i32) and a 16-bit counter.
    """

    def __init__(
        self,
        ip: bytes,
        pid: int,
        class_loader_hash: int,
        *,
        now_ms: Callable[[], int] = _wall_ms,
        tz: _dt.tzinfo | None = None,
    ) -> None:
        if len(ip) not in (4, 16):
            raise ValueError(f"an IP address has 4 or 16 bytes, not {len(ip)}")
        head = (
            ip
            + (pid & 0xFFFF).to_bytes(2, "big")
            + (class_loader_hash & 0xFFFFFFFF).to_bytes(4, "big")
        )
        self._prefix = head.hex().upper()
        self._now_ms = now_ms
        self._tz = tz
        self._counter = 0
        self._start, self._next_start = month_bounds_ms(now_ms(), tz)

    def next_id(self) -> str:
        """A fresh unique id."""
        now = self._now_ms()
        if now >= self._next_start:
            self._start, self._next_start = month_bounds_ms(now, self._tz)
        span = (now - self._start) & 0xFFFFFFFF
        counter = self._counter & 0xFFFF
        self._counter += 1
        return f"{self._prefix}{span:08X}{counter:04X}"
