"""Values that go in and out of the message store.

Inputs mirror Java's ``MessageExtBrokerInner`` (:class:`BrokerMessage`) and
``MessageExtBatch`` (:class:`BrokerBatch`); results mirror ``PutMessageResult``
/ ``AppendMessageResult`` and ``GetMessageResult``, with Java's status enums
under Java's names (PULL_MESSAGE answers carry the status name as remark).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from pyrocket.errors import PyrocketError
from pyrocket.protocol.frozen import quick_init
from pyrocket.protocol.javahash import to_int32
from pyrocket.protocol.message import (
    UNSPECIFIED_HOST,
    HostPort,
    MessageConst,
    decode_properties,
    encode_properties,
)


class StoreError(PyrocketError):
    """The store's files cannot be used (wrong sizes, missing files, locked by
    another process); names the file."""


class Replication(Protocol):
    """What a SYNC_MASTER's store asks its HA service (Java's ``HAService``
    as ``CommitLog.handleHA`` uses it)."""

    def is_slave_ok(self, master_put_where: int) -> bool:
        """A slave is connected and the best one is within
        ``haSlaveFallbehindMax`` of ``master_put_where``."""
        ...

    async def wait_replicated(self, offset: int, timeout_s: float) -> bool:
        """Wait until a slave acknowledged ``offset``; False on timeout."""
        ...


class PutMessageStatus(enum.Enum):
    PUT_OK = "PUT_OK"
    FLUSH_DISK_TIMEOUT = "FLUSH_DISK_TIMEOUT"
    FLUSH_SLAVE_TIMEOUT = "FLUSH_SLAVE_TIMEOUT"
    SLAVE_NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"
    SERVICE_NOT_AVAILABLE = "SERVICE_NOT_AVAILABLE"
    CREATE_MAPEDFILE_FAILED = "CREATE_MAPEDFILE_FAILED"
    MESSAGE_ILLEGAL = "MESSAGE_ILLEGAL"
    PROPERTIES_SIZE_EXCEEDED = "PROPERTIES_SIZE_EXCEEDED"
    OS_PAGECACHE_BUSY = "OS_PAGECACHE_BUSY"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"


class AppendMessageStatus(enum.Enum):
    PUT_OK = "PUT_OK"
    END_OF_FILE = "END_OF_FILE"
    MESSAGE_SIZE_EXCEEDED = "MESSAGE_SIZE_EXCEEDED"
    PROPERTIES_SIZE_EXCEEDED = "PROPERTIES_SIZE_EXCEEDED"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"


@quick_init
@dataclass(frozen=True, slots=True)
class AppendMessageResult:
    """Where a message (or batch) landed.

    ``msg_id`` is the offset message id; for a batch, the ids of its messages
    joined with ``,`` as Java answers SEND_BATCH_MESSAGE. ``logics_offset`` is
    the queue offset of the (first) message.
    """

    status: AppendMessageStatus
    wrote_offset: int = 0
    wrote_bytes: int = 0
    msg_id: str = ""
    store_timestamp: int = 0
    logics_offset: int = 0
    pagecache_rt: int = 0
    msg_num: int = 1

    @property
    def is_ok(self) -> bool:
        return self.status is AppendMessageStatus.PUT_OK


@quick_init
@dataclass(frozen=True, slots=True)
class PutMessageResult:
    status: PutMessageStatus
    append_result: AppendMessageResult | None = None

    @property
    def is_ok(self) -> bool:
        """Java's ``isOk``: the message was appended (a flush timeout still is)."""
        return self.append_result is not None and self.append_result.is_ok


class GetMessageStatus(enum.Enum):
    FOUND = "FOUND"
    NO_MATCHED_MESSAGE = "NO_MATCHED_MESSAGE"
    MESSAGE_WAS_REMOVING = "MESSAGE_WAS_REMOVING"
    OFFSET_FOUND_NULL = "OFFSET_FOUND_NULL"
    OFFSET_OVERFLOW_BADLY = "OFFSET_OVERFLOW_BADLY"
    OFFSET_OVERFLOW_ONE = "OFFSET_OVERFLOW_ONE"
    OFFSET_TOO_SMALL = "OFFSET_TOO_SMALL"
    NO_MATCHED_LOGIC_QUEUE = "NO_MATCHED_LOGIC_QUEUE"
    NO_MESSAGE_IN_QUEUE = "NO_MESSAGE_IN_QUEUE"


@quick_init
@dataclass(frozen=True, slots=True)
class GetMessageResult:
    """The answer to a pull: ``messages`` are whole stored records, to be sent
    back to back as the PULL_MESSAGE body (:meth:`body`)."""

    status: GetMessageStatus
    next_begin_offset: int
    min_offset: int
    max_offset: int
    messages: tuple[bytes, ...] = ()
    suggest_pulling_from_slave: bool = False

    @property
    def message_count(self) -> int:
        return len(self.messages)

    @property
    def buffer_total_size(self) -> int:
        return sum(len(m) for m in self.messages)

    def body(self) -> bytes:
        return b"".join(self.messages)


_EXT_HEADER = struct.Struct(">hqqh")
#: The size of a consume-queue extension unit without a bit map.
MIN_EXT_UNIT_SIZE: Final = _EXT_HEADER.size


@dataclass(frozen=True, slots=True)
class CqExtUnit:
    """One unit: the message's real tags code, store time and filter bit map."""

    tags_code: int
    store_timestamp: int
    bit_map: bytes | None = None

    @property
    def size(self) -> int:
        return MIN_EXT_UNIT_SIZE + len(self.bit_map or b"")

    def encode(self) -> bytes:
        bit_map = self.bit_map or b""
        return (
            _EXT_HEADER.pack(self.size, self.tags_code, self.store_timestamp, len(bit_map))
            + bit_map
        )

    @classmethod
    def decode(cls, raw: bytes) -> CqExtUnit | None:
        """The unit at the start of ``raw``, None when there is none."""
        if len(raw) < MIN_EXT_UNIT_SIZE:
            return None
        size, tags_code, store_timestamp, bit_map_size = _EXT_HEADER.unpack_from(raw)
        if size < MIN_EXT_UNIT_SIZE or len(raw) < MIN_EXT_UNIT_SIZE + max(bit_map_size, 0):
            return None
        if bit_map_size < 1:
            return cls(tags_code, store_timestamp, None)
        end = MIN_EXT_UNIT_SIZE + bit_map_size
        return cls(tags_code, store_timestamp, bytes(raw[MIN_EXT_UNIT_SIZE:end]))


class MessageFilter(Protocol):
    """Decides which messages of a queue a pull returns (Java's
    ``MessageFilter``): first by the consume-queue tags code, then, for the
    survivors, by the stored record. ``reads_commit_log`` says whether the
    second question does real work (an SQL92 filter reads every candidate's
    properties), so the read runs in a worker thread."""

    @property
    def reads_commit_log(self) -> bool: ...

    def is_matched_by_consume_queue(
        self, tags_code: int | None, ext: CqExtUnit | None = None
    ) -> bool:
        """``tags_code`` None: the entry's extension unit is missing;
        ``ext``: the entry's extension unit, when it has one."""
        ...

    def is_matched_by_commit_log(self, message: bytes) -> bool: ...


@dataclass(frozen=True, slots=True)
class TagsFilter:
    """A TAG subscription: ``codes`` are the hash codes of the subscribed tags
    (``SubscriptionData.codeSet``), None for ``*`` (everything)."""

    codes: Collection[int] | None = None

    @property
    def reads_commit_log(self) -> bool:
        return False

    def is_matched_by_consume_queue(
        self, tags_code: int | None, ext: CqExtUnit | None = None
    ) -> bool:
        # Java compares the stored long's intValue() with the set of ints.
        return self.codes is None or tags_code is None or to_int32(tags_code) in self.codes

    def is_matched_by_commit_log(self, message: bytes) -> bool:
        return True


def _delay_level(properties: Mapping[str, str]) -> int:
    text = properties.get(MessageConst.PROPERTY_DELAY_TIME_LEVEL)
    if text is None:
        return 0
    return int(text)  # ValueError for the store to turn into MESSAGE_ILLEGAL


def _wait_store_msg_ok(properties: Mapping[str, str]) -> bool:
    text = properties.get(MessageConst.PROPERTY_WAIT_STORE_MSG_OK)
    return text is None or text.lower() == "true"


@quick_init
@dataclass(frozen=True, slots=True)
class BrokerMessage:
    """A message to store (Java's ``MessageExtBrokerInner``).

    ``properties`` is Java's property map in its iteration order: the store
    reads the delay level (``DELAY``), ``WAIT`` and ``TAGS`` from it; left
    empty, it is parsed from ``properties_string``. ``properties_string`` is
    what gets stored; the broker passes the string the producer sent,
    verbatim. When None it is encoded from ``properties``. For a
    delayed message the store re-encodes the map with ``REAL_TOPIC`` and
    ``REAL_QID`` added, as Java does. The IPv6 bits of ``sys_flag`` are set by
    the store from the hosts.
    """

    topic: str
    queue_id: int
    body: bytes
    properties: Mapping[str, str] = field(default_factory=dict)
    properties_string: str | None = None
    flag: int = 0
    sys_flag: int = 0
    born_timestamp: int = 0
    born_host: HostPort = UNSPECIFIED_HOST
    store_host: HostPort = UNSPECIFIED_HOST
    reconsume_times: int = 0
    prepared_transaction_offset: int = 0

    def __post_init__(self) -> None:
        # Given only the string, the map is its parse (what SEND_MESSAGE does).
        if not self.properties and self.properties_string:
            object.__setattr__(self, "properties", decode_properties(self.properties_string))

    @classmethod
    def from_properties_string(
        cls, topic: str, queue_id: int, body: bytes, properties_string: str, **fields: object
    ) -> BrokerMessage:
        """What SEND_MESSAGE does: keep the string, parse it into the map."""
        return cls(
            topic,
            queue_id,
            body,
            decode_properties(properties_string),
            properties_string,
            **fields,  # type: ignore[arg-type]
        )

    def stored_properties(self) -> str:
        if self.properties_string is not None:
            return self.properties_string
        return encode_properties(self.properties)

    @property
    def delay_time_level(self) -> int:
        """``getDelayTimeLevel``. Raises ValueError when DELAY is not a number."""
        return _delay_level(self.properties)

    @property
    def wait_store_msg_ok(self) -> bool:
        """``isWaitStoreMsgOK``: true unless the WAIT property says otherwise."""
        return _wait_store_msg_ok(self.properties)

    @property
    def tags(self) -> str | None:
        return self.properties.get(MessageConst.PROPERTY_TAGS)


@dataclass(frozen=True, slots=True)
class BrokerBatch:
    """A SEND_BATCH_MESSAGE to store (Java's ``MessageExtBatch``).

    ``body`` is the batch body (:func:`~pyrocket.protocol.message.encode_batch`
    layout); each message keeps its own flag, body and properties string, and
    shares topic, queue, sysFlag, hosts and times. ``properties`` are the
    request header's (only DELAY and WAIT matter to the store).
    """

    topic: str
    queue_id: int
    body: bytes
    properties: Mapping[str, str] = field(default_factory=dict)
    sys_flag: int = 0
    born_timestamp: int = 0
    born_host: HostPort = UNSPECIFIED_HOST
    store_host: HostPort = UNSPECIFIED_HOST
    reconsume_times: int = 0

    @property
    def delay_time_level(self) -> int:
        return _delay_level(self.properties)

    @property
    def wait_store_msg_ok(self) -> bool:
        return _wait_store_msg_ok(self.properties)


@quick_init
@dataclass(frozen=True, slots=True)
class MessageArrival:
    """A message became readable (Java's ``MessageArrivingListener`` call).

    ``logic_offset`` is the queue's new max offset (the message's queue offset
    plus one), which is what a held pull compares with.
    """

    topic: str
    queue_id: int
    logic_offset: int
    tags_code: int
    store_timestamp: int
    properties: Mapping[str, str]


#: A callback run synchronously, in the store's trio thread, after each
#: dispatch. It must not block; it typically wakes a waiting task.
ArrivalListener = Callable[[MessageArrival], None]
#: (topic, properties) -> the message's filter bit map, None for none.
BitMapCalculator = Callable[[str, Mapping[str, str]], "bytes | None"]
