"""Topic configuration and registration bodies: what a broker tells the
NameServer (REGISTER_BROKER, QUERY_DATA_VERSION) and what a slave reads from
its master (GET_ALL_TOPIC_CONFIG), plus the NameServer's KV tables and topic
lists.

``RegisterBrokerBody`` travels either as fastjson JSON or, when the broker runs
with ``compressedRegister=true``, as a zlib stream::

    int32 BE length + DataVersion JSON
    int32 BE topic count, then per topic: int32 BE length + "name r w perm FILTER"
    int32 BE length + filter-server list as JSON array
    (everything deflated at level 9, zlib header included)
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final, Self

from pyrocket.errors import ProtocolError
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies._bean import (
    BOOL,
    INT,
    LONG,
    STR,
    Bean,
    bean,
    enum,
    list_of,
    map_of,
    prop,
)
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import RegisterBrokerResponseHeader
from pyrocket.protocol.javahash import JavaConcurrentHashMap, JavaHashSet

#: PermName: the permission bits of a topic or broker.
PERM_PRIORITY: Final = 8
PERM_READ: Final = 4
PERM_WRITE: Final = 2
PERM_INHERIT: Final = 1

#: Largest inflated RegisterBrokerBody accepted (Java has no bound).
MAX_INFLATED_SIZE: Final = 64 * 1024 * 1024


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class DataVersion(Bean):
    """A version stamp of a table: when it last changed and how many times.

    Like Java's ``new DataVersion()``, a default instance is stamped now.
    """

    timestamp: int = prop("timestamp", LONG, factory=_now_ms)
    counter: int = prop("counter", LONG, default=0)

    def next_version(self, now_ms: int | None = None) -> DataVersion:
        """``nextVersion()``: stamped ``now_ms`` (default now), counter + 1."""
        return DataVersion(_now_ms() if now_ms is None else now_ms, self.counter + 1)


class TopicFilterType(Enum):
    SINGLE_TAG = "SINGLE_TAG"
    MULTI_TAG = "MULTI_TAG"


@dataclass(frozen=True, slots=True)
class TopicConfig(Bean):
    """A topic on one broker. Defaults are Java's ``new TopicConfig()``."""

    topic_name: str | None = prop("topicName", STR)
    read_queue_nums: int = prop("readQueueNums", INT, default=16)
    write_queue_nums: int = prop("writeQueueNums", INT, default=16)
    perm: int = prop("perm", INT, default=PERM_READ | PERM_WRITE)
    topic_filter_type: TopicFilterType = prop(
        "topicFilterType", enum(TopicFilterType), default=TopicFilterType.SINGLE_TAG
    )
    topic_sys_flag: int = prop("topicSysFlag", INT, default=0)
    order: bool = prop("order", BOOL, default=False)

    def encode_text(self) -> str:
        """``TopicConfig.encode()``: "name read write perm FILTER" (the form
        inside a compressed RegisterBrokerBody)."""
        return (
            f"{self.topic_name} {self.read_queue_nums} {self.write_queue_nums} "
            f"{self.perm} {self.topic_filter_type.name}"
        )

    @classmethod
    def decode_text(cls, text: str) -> TopicConfig:
        """Parse :meth:`encode_text` output; ``topicSysFlag`` and ``order`` are
        not in it and take their defaults. Raises ProtocolError where Java's
        ``decode`` would return false or throw."""
        parts = text.split(" ")
        while parts and parts[-1] == "":  # String.split drops trailing empties
            parts.pop()
        if len(parts) != 5:
            raise ProtocolError(f"topic config {text!r} does not have 5 fields")
        name, read, write, perm, filter_type = parts
        try:
            kind = TopicFilterType[filter_type]
        except KeyError:
            raise ProtocolError(f"topic config {text!r}: unknown filter type") from None
        return cls(name, _java_int(read, text), _java_int(write, text), _java_int(perm, text), kind)


def _java_int(text: str, context: str) -> int:
    # Integer.parseInt: optional sign, ASCII digits, int range.
    body = text[1:] if text[:1] in ("-", "+") else text
    if not body or not body.isascii() or not body.isdigit():
        raise ProtocolError(f"topic config {context!r}: {text!r} is not an int")
    value = int(text)
    if not -(1 << 31) <= value < (1 << 31):
        raise ProtocolError(f"topic config {context!r}: {text!r} is out of int range")
    return value


@dataclass(frozen=True, slots=True)
class TopicConfigSerializeWrapper(Bean):
    """A broker's topic table with its version (GET_ALL_TOPIC_CONFIG answer,
    and the heart of RegisterBrokerBody). The table is written in its own
    order: pass the broker's ``JavaConcurrentHashMap(1024)``."""

    topic_config_table: Mapping[str, TopicConfig] = prop(
        "topicConfigTable", map_of(STR, bean(TopicConfig)), factory=dict
    )
    data_version: DataVersion = prop("dataVersion", bean(DataVersion), factory=DataVersion)


_INT_BE = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class RegisterBrokerBody(Bean):
    """The REGISTER_BROKER request body, plain (JSON) or compressed."""

    topic_config_serialize_wrapper: TopicConfigSerializeWrapper = prop(
        "topicConfigSerializeWrapper",
        bean(TopicConfigSerializeWrapper),
        factory=TopicConfigSerializeWrapper,
    )
    filter_server_list: tuple[str, ...] = prop("filterServerList", list_of(STR), default=())

    def encode(self, compress: bool = False, *, clone_order: bool = True) -> bytes:
        """``RegisterBrokerBody.encode(compress)``.

        Compressed, Java first copies the topic table into a fresh
        ``ConcurrentHashMap`` and writes the topics in that copy's order;
        ``clone_order=True`` does the same. ``clone_order=False`` writes the
        table in its own order instead, which is how a decoded compressed body
        re-encodes to the bytes it came from (the copy does not preserve order
        once the table has grown past 12 topics).
        """
        if not compress:
            return Bean.encode(self)
        wrapper = self.topic_config_serialize_wrapper
        table: Mapping[str, TopicConfig] = wrapper.topic_config_table
        if clone_order:
            clone: JavaConcurrentHashMap[str, TopicConfig] = JavaConcurrentHashMap()
            for name, config in table.items():
                clone[name] = config
            table = clone
        parts = [_prefixed(wrapper.data_version.encode()), _INT_BE.pack(len(table))]
        parts += [_prefixed(_utf8(config.encode_text())) for config in table.values()]
        parts.append(_prefixed(fastjson.dumps_bytes(list(self.filter_server_list))))
        return zlib.compress(b"".join(parts), 9)

    @classmethod
    def decode(cls, data: bytes, compressed: bool = False) -> Self:
        """``RegisterBrokerBody.decode(data, compressed)``; raises ProtocolError
        for bad JSON, a bad zlib stream, or a stream that ends early."""
        if not compressed:
            return cls.from_json(fastjson.loads(data))
        reader = _InflatedReader(data)
        version = DataVersion.decode(reader.read_prefixed())
        count = reader.read_int()
        if count < 0:
            raise ProtocolError(f"compressed RegisterBrokerBody: negative topic count {count}")
        table: dict[str, TopicConfig] = {}
        for _ in range(count):
            text = reader.read_prefixed().decode("utf-8", "replace")
            config = TopicConfig.decode_text(text)
            table[config.topic_name or ""] = config
        servers = fastjson.loads(reader.read_prefixed())
        if not isinstance(servers, list) or not all(isinstance(s, str) for s in servers):
            raise ProtocolError("compressed RegisterBrokerBody: filter server list is not strings")
        return cls(TopicConfigSerializeWrapper(table, version), tuple(servers))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def _prefixed(data: bytes) -> bytes:
    return _INT_BE.pack(len(data)) + data


class _InflatedReader:
    """Reads length-prefixed parts of a zlib stream, inflating lazily (the
    stream may hold more than is read, as Java's InflaterInputStream allows)."""

    def __init__(self, data: bytes) -> None:
        try:
            self.buffer = zlib.decompressobj().decompress(data, MAX_INFLATED_SIZE + 1)
        except zlib.error as exc:
            raise ProtocolError(f"compressed RegisterBrokerBody: {exc}") from exc
        if len(self.buffer) > MAX_INFLATED_SIZE:
            raise ProtocolError(
                f"compressed RegisterBrokerBody inflates past {MAX_INFLATED_SIZE} bytes"
            )
        self.pos = 0

    def read(self, size: int) -> bytes:
        end = self.pos + size
        if size < 0 or end > len(self.buffer):
            raise ProtocolError(
                f"compressed RegisterBrokerBody: {size} bytes wanted, "
                f"{len(self.buffer) - self.pos} left",
                self.pos,
            )
        chunk = self.buffer[self.pos : end]
        self.pos = end
        return chunk

    def read_int(self) -> int:
        value: int = _INT_BE.unpack(self.read(4))[0]
        return value

    def read_prefixed(self) -> bytes:
        return self.read(self.read_int())


@dataclass(frozen=True, slots=True)
class KVTable(Bean):
    """A string table: a KV namespace (GET_KVLIST_BY_NAMESPACE, the
    REGISTER_BROKER answer's ORDER_TOPIC_CONFIG) or broker runtime info."""

    table: Mapping[str, str] = prop("table", map_of(STR, STR), factory=dict)


@dataclass(frozen=True, slots=True)
class RegisterBrokerResult:
    """What a broker learns from a REGISTER_BROKER answer: its master's HA and
    broker addresses (for a slave) and the NameServer's ORDER_TOPIC_CONFIG."""

    ha_server_addr: str | None = None
    master_addr: str | None = None
    kv_table: KVTable | None = None

    @classmethod
    def from_response(cls, response: RemotingCommand) -> RegisterBrokerResult:
        """Read a SUCCESS answer (header and optional KVTable body).

        Raises CommandError for a bad header, ProtocolError for a bad body.
        """
        header = response.decode_header(RegisterBrokerResponseHeader)
        table = None if response.body is None else KVTable.decode(response.body)
        return cls(header.ha_server_addr, header.master_addr, table)


@dataclass(frozen=True, slots=True)
class TopicList(Bean):
    """A set of topic names (plus, for system topics, one broker address).

    The set travels in Java HashSet order; :meth:`collect` computes it for the
    NameServer's answers, which always start from a fresh ``new TopicList()``.
    """

    topic_list: tuple[str, ...] = prop("topicList", list_of(STR), default=())
    broker_addr: str | None = prop("brokerAddr", STR)

    @classmethod
    def collect(cls, topics: Iterable[str], broker_addr: str | None = None) -> TopicList:
        """``new TopicList()`` with ``topics`` added in this order: the names
        come out in the order of a default-sized Java HashSet."""
        names: JavaHashSet[str] = JavaHashSet()
        for topic in topics:
            names.add(topic)
        return cls(tuple(names), broker_addr)


__all__ = [
    "MAX_INFLATED_SIZE",
    "PERM_INHERIT",
    "PERM_PRIORITY",
    "PERM_READ",
    "PERM_WRITE",
    "DataVersion",
    "KVTable",
    "RegisterBrokerBody",
    "RegisterBrokerResult",
    "TopicConfig",
    "TopicConfigSerializeWrapper",
    "TopicFilterType",
    "TopicList",
]
