"""Messages and enums of the blocking API under ``rocketmq.client``'s names:
:class:`Message` (built with setters, then converted to a pyrocket
:class:`~pyrocket.protocol.message.Message`), :class:`RecvMessage` (what a
consumer callback gets: bytes for tags, keys, body and properties, as the
C++ wrapper returns them), :data:`SendResult` and the status enums."""

from __future__ import annotations

import enum
from collections import namedtuple
from typing import Any

from pyrocket.client.messages import new_message
from pyrocket.client.sending import SendResult as PyrocketSendResult
from pyrocket.client.sending import SendStatus as PyrocketSendStatus
from pyrocket.client.transaction import LocalTransactionState
from pyrocket.protocol.message import Message as PyrocketMessage
from pyrocket.protocol.message import MessageConst

#: ``(status, msg_id, offset)``: the client's message id and the queue offset.
SendResult = namedtuple("SendResult", ["status", "msg_id", "offset"])


class SendStatus(enum.IntEnum):
    OK = 0
    FLUSH_DISK_TIMEOUT = 1
    FLUSH_SLAVE_TIMEOUT = 2
    SLAVE_NOT_AVAILABLE = 3


class ConsumeStatus(enum.IntEnum):
    """What a consumer callback may return (None counts as CONSUME_SUCCESS)."""

    CONSUME_SUCCESS = 0
    RECONSUME_LATER = 1


class TransactionStatus(enum.IntEnum):
    COMMIT = 0
    ROLLBACK = 1
    UNKNOWN = 2


class MessageModel(enum.IntEnum):
    BROADCASTING = 0
    CLUSTERING = 1


class MessageProperty(enum.Enum):
    TRACE_SWITCH = "TRACE_ON"
    MSG_REGION = "MSG_REGION"
    KEYS = "KEYS"
    TAGS = "TAGS"
    WAIT_STORE_MSG_OK = "WAIT"
    DELAY_TIME_LEVEL = "DELAY"
    RETRY_TOPIC = "RETRY_TOPIC"
    REAL_TOPIC = "REAL_TOPIC"
    REAL_QUEUE_ID = "REAL_QID"
    TRANSACTION_PREPARED = "TRAN_MSG"
    PRODUCER_GROUP = "PGROUP"
    MIN_OFFSET = "MIN_OFFSET"
    MAX_OFFSET = "MAX_OFFSET"
    BUYER_ID = "BUYER_ID"
    ORIGIN_MESSAGE_ID = "ORIGIN_MESSAGE_ID"
    TRANSFER_FLAG = "TRANSFER_FLAG"
    CORRECTION_FLAG = "CORRECTION_FLAG"
    MQ2_FLAG = "MQ2_FLAG"
    RECONSUME_TIME = "RECONSUME_TIME"
    UNIQ_CLIENT_MESSAGE_ID_KEYIDX = "UNIQ_KEY"
    MAX_RECONSUME_TIMES = "MAX_RECONSUME_TIMES"
    CONSUME_START_TIMESTAMP = "CONSUME_START_TIME"


_STATUS = {
    PyrocketSendStatus.SEND_OK: SendStatus.OK,
    PyrocketSendStatus.FLUSH_DISK_TIMEOUT: SendStatus.FLUSH_DISK_TIMEOUT,
    PyrocketSendStatus.FLUSH_SLAVE_TIMEOUT: SendStatus.FLUSH_SLAVE_TIMEOUT,
    PyrocketSendStatus.SLAVE_NOT_AVAILABLE: SendStatus.SLAVE_NOT_AVAILABLE,
}

_LOCAL_STATE = {
    TransactionStatus.COMMIT: LocalTransactionState.COMMIT_MESSAGE,
    TransactionStatus.ROLLBACK: LocalTransactionState.ROLLBACK_MESSAGE,
    TransactionStatus.UNKNOWN: LocalTransactionState.UNKNOW,
}


def send_result(result: PyrocketSendResult) -> Any:
    """The blocking API's SendResult of a pyrocket one."""
    return SendResult(_STATUS[result.status], result.msg_id, result.queue_offset)


def local_state(status: object) -> LocalTransactionState:
    """The pyrocket state of what a local transaction or check returned
    (None and anything unknown: UNKNOW)."""
    try:
        return _LOCAL_STATE[TransactionStatus(status)]  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return LocalTransactionState.UNKNOW


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class Message:
    """A message to send, built with setters as ``rocketmq.client.Message``."""

    def __init__(self, topic: str | bytes) -> None:
        self.topic = _text(topic)
        self.keys: str | None = None
        self.tags: str | None = None
        self.body = b""
        self.properties: dict[str, str] = {}
        self.delay_time_level = 0

    def set_keys(self, keys: str | bytes) -> None:
        self.keys = _text(keys)

    def set_tags(self, tags: str | bytes) -> None:
        self.tags = _text(tags)

    def set_body(self, body: str | bytes) -> None:
        self.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)

    def set_property(self, key: str | bytes, value: str | bytes) -> None:
        self.properties[_text(key)] = _text(value)

    def set_delay_time_level(self, delay_time_level: int) -> None:
        self.delay_time_level = int(delay_time_level)

    def to_pyrocket(self) -> PyrocketMessage:
        """The pyrocket message; raises ValueError for a property name the
        system reserves."""
        return new_message(
            self.topic,
            self.body,
            tags=self.tags,
            keys=self.keys,
            properties=self.properties,
            delay_level=self.delay_time_level,
        )


def _bytes(value: str | None) -> bytes:
    return b"" if value is None else value.encode("utf-8")


class RecvMessage:
    """A message as a consumer callback (or a transaction callback) gets it.
    ``tags``, ``keys``, ``body`` and ``get_property`` give bytes (b"" when
    absent), ``topic`` and ``id`` str, as the C++ wrapper does."""

    def __init__(self, message: Any) -> None:
        self._message = message

    @property
    def topic(self) -> str:
        return str(self._message.topic)

    @property
    def tags(self) -> bytes:
        return _bytes(self._message.properties.get(MessageConst.PROPERTY_TAGS))

    @property
    def keys(self) -> bytes:
        return _bytes(self._message.properties.get(MessageConst.PROPERTY_KEYS))

    @property
    def body(self) -> bytes:
        return bytes(self._message.body)

    @property
    def id(self) -> str:
        unique = self._message.properties.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
        if unique:
            return str(unique)
        return str(getattr(self._message, "msg_id", ""))

    @property
    def delay_time_level(self) -> int:
        value = self._message.properties.get(MessageConst.PROPERTY_DELAY_TIME_LEVEL)
        return int(value) if value else 0

    def _field(self, name: str) -> int:
        return int(getattr(self._message, name, 0))

    @property
    def queue_id(self) -> int:
        return self._field("queue_id")

    @property
    def reconsume_times(self) -> int:
        return self._field("reconsume_times")

    @property
    def store_size(self) -> int:
        return self._field("store_size")

    @property
    def born_timestamp(self) -> int:
        return self._field("born_timestamp")

    @property
    def store_timestamp(self) -> int:
        return self._field("store_timestamp")

    @property
    def queue_offset(self) -> int:
        return self._field("queue_offset")

    @property
    def commit_log_offset(self) -> int:
        return self._field("commit_log_offset")

    @property
    def prepared_transaction_offset(self) -> int:
        return self._field("prepared_transaction_offset")

    def get_property(self, prop: str | bytes | MessageProperty) -> bytes:
        name = prop.value if isinstance(prop, MessageProperty) else _text(prop)
        return _bytes(self._message.properties.get(name))

    def __getitem__(self, key: str | bytes | MessageProperty) -> bytes:
        return self.get_property(key)

    def __str__(self) -> str:
        return self.body.decode("utf-8")

    def __bytes__(self) -> bytes:
        return self.body

    def __repr__(self) -> str:
        return f"<RecvMessage topic={self.topic!r} id={self.id!r} body={self.body!r}>"
