"""The stored-message layout: one record of the commit log, and one element
of a PULL_MESSAGE answer body (Java sends stored records back to back)::

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

:class:`MessageExt` is the decoded record. The hot paths use :mod:`struct`
rather than construct: the broker encodes one record per stored message and
a PULL answer decodes dozens.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from pyrocket.errors import LocalProtocolError, ProtocolError
from pyrocket.protocol.message.body import decompress_body
from pyrocket.protocol.message.constants import (
    DEFAULT_MAX_BODY_SIZE,
    MAX_PROPERTIES_BYTES,
    MAX_TOPIC_BYTES,
    MESSAGE_MAGIC_CODE,
    MessageConst,
    MessageSysFlag,
)
from pyrocket.protocol.message.host import UNSPECIFIED_HOST, HostPort
from pyrocket.protocol.message.ids import create_offset_message_id
from pyrocket.protocol.message.properties import decode_properties, decode_utf8, encode_properties

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
    checked: bool = True,
) -> bytes:
    """One stored record from already-encoded topic and properties bytes.

    This is the commit log's encoder; ``sys_flag`` must already carry the IPv6
    bits that match the hosts. Raises ValueError for fields the layout cannot
    hold (topic over 127 bytes, properties over 32767 bytes, host/flag mismatch).
    ``checked=False`` skips those checks, for the store's append, which has
    made them already (and passes every field in order).
    """
    if checked:
        if len(topic) > MAX_TOPIC_BYTES:
            raise LocalProtocolError(
                f"topic of {len(topic)} bytes is longer than {MAX_TOPIC_BYTES}"
            )
        if len(properties) > MAX_PROPERTIES_BYTES:
            raise LocalProtocolError(
                f"properties of {len(properties)} bytes exceed {MAX_PROPERTIES_BYTES}"
            )
        if bool(sys_flag & MessageSysFlag.BORNHOST_V6_FLAG) != born_host.is_v6:
            raise LocalProtocolError("sysFlag bit 4 does not match the born host's address family")
        if bool(sys_flag & MessageSysFlag.STOREHOSTADDRESS_V6_FLAG) != store_host.is_v6:
            raise LocalProtocolError("sysFlag bit 5 does not match the store host's address family")
    born_ip = born_host.ip
    store_ip = store_host.ip
    total = _FIXED_SIZE + len(born_ip) + len(store_ip) + len(body) + len(topic) + len(properties)
    # One pack for every fixed field before the body: a struct per pair of
    # address sizes (the usual case, IPv4 both, is the first).
    return b"".join(
        (
            _FIXED[len(born_ip), len(store_ip)].pack(
                total,
                MESSAGE_MAGIC_CODE,
                body_crc,
                queue_id,
                flag,
                queue_offset,
                physical_offset,
                sys_flag,
                born_timestamp,
                born_ip,
                born_host.port,
                store_timestamp,
                store_ip,
                store_host.port,
                reconsume_times,
                prepared_transaction_offset,
                len(body),
            ),
            body,
            _TOPIC_LENGTHS[len(topic)],
            topic,
            _I16.pack(len(properties)),
            properties,
        )
    )


#: Record bytes besides the body, topic, properties and the two addresses.
_FIXED_SIZE: Final = _HEAD_SIZE + 4 + 8 + 4 + 4 + 8 + 4 + 1 + 2
_FIXED: Final = {
    (born, store): struct.Struct(f">iiiiiqqiq{born}siq{store}siiqi")
    for born in (4, 16)
    for store in (4, 16)
}
_TOPIC_LENGTHS: Final = tuple(bytes((n,)) for n in range(MAX_TOPIC_BYTES + 1))


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


#: Packed address and port -> its HostPort: the records of one pull answer
#: mostly share a store host and a few born hosts.
_HOSTS: dict[bytes, HostPort] = {}
#: Distinct addresses kept; past this the table starts afresh.
_HOSTS_KEPT = 1024


def _host(
    data: bytes | bytearray | memoryview, pos: int, v6: bool, what: str
) -> tuple[HostPort, int]:
    length = 16 if v6 else 4
    after = pos + length + 4
    packed = bytes(data[pos:after])
    host = _HOSTS.get(packed)
    if host is None:
        (port,) = _I32.unpack_from(data, pos + length)
        if not 0 <= port <= 0xFFFF:
            raise ProtocolError(f"{what} port {port} out of range", pos + length)
        host = HostPort(packed[:length], port)
        if len(_HOSTS) >= _HOSTS_KEPT:
            _HOSTS.clear()
        _HOSTS[packed] = host
    return host, after


def decode_message(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    extra_properties: Mapping[str, str] | None = None,
) -> tuple[MessageExt, int]:
    """Decode the stored record at ``offset``; return it and the offset after it.
    ``extra_properties`` are put into the decoded properties after the
    record's own (a name already there keeps its place and takes the new
    value), as a consumer adds MIN_OFFSET and MAX_OFFSET.

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
    topic = decode_utf8(data[pos + 1 : pos + 1 + topic_length], "topic", pos + 1)
    pos += 1 + topic_length
    (properties_length,) = _I16.unpack_from(data, pos)
    if properties_length < 0 or pos + 2 + properties_length != record_end:
        raise ProtocolError(
            f"properties length {properties_length} disagrees with total size {total}", pos
        )
    properties = decode_properties(decode_utf8(data[pos + 2 : record_end], "properties", pos + 2))
    if extra_properties:
        properties.update(extra_properties)
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


def stored_properties(data: bytes | bytearray | memoryview) -> dict[str, str]:
    """The properties of the stored record ``data`` (Java's
    ``MessageDecoder.decodeProperties``), read without decoding the rest.
    Raises ProtocolError when the record's lengths do not fit it or the
    properties are not UTF-8."""
    end = len(data)
    if end < _HEAD_SIZE:
        raise ProtocolError("stored message shorter than its fixed header", 0)
    (sys_flag,) = _I32.unpack_from(data, SYSFLAG_POSITION)
    pos = _HEAD_SIZE + (20 if sys_flag & MessageSysFlag.BORNHOST_V6_FLAG else 8) + 8
    pos += 20 if sys_flag & MessageSysFlag.STOREHOSTADDRESS_V6_FLAG else 8
    if pos + _MID.size > end:
        raise ProtocolError("stored message shorter than its fixed fields", pos)
    body_length = _MID.unpack_from(data, pos)[2]
    pos += _MID.size
    if body_length < 0 or pos + body_length + 1 > end:
        raise ProtocolError(f"body length {body_length} does not fit the record", pos - 4)
    pos += body_length
    pos += 1 + data[pos]
    if pos + 2 > end:
        raise ProtocolError("topic length does not fit the record", pos)
    (properties_length,) = _I16.unpack_from(data, pos)
    if properties_length < 0 or pos + 2 + properties_length > end:
        raise ProtocolError(f"properties length {properties_length} does not fit the record", pos)
    raw = data[pos + 2 : pos + 2 + properties_length]
    return decode_properties(decode_utf8(raw, "properties", pos + 2))


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


__all__ = [
    "PHYSICAL_OFFSET_POSITION",
    "QUEUE_OFFSET_POSITION",
    "SYSFLAG_POSITION",
    "MessageExt",
    "decode_message",
    "decode_messages",
    "encode_message",
    "encode_stored_record",
    "host_flags",
    "split_stored_records",
    "store_timestamp_position",
    "stored_message_size",
    "stored_properties",
]
