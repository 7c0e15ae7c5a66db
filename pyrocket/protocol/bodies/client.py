"""Bodies clients send to brokers and get back: heartbeats (HEART_BEAT), consumer
lists (GET_CONSUMER_LIST_BY_GROUP), and queue locks (LOCK_BATCH_MQ,
UNLOCK_BATCH_MQ).

Sets travel in Java ``HashSet`` order. ``MessageQueue`` and ``SubscriptionData``
define Java's ``hashCode`` (``java_hash_code``) so a ``JavaHashSet`` of them
iterates as Java's does (a ``Set<Integer>`` such as ``codeSet`` needs
``hasher=int_hash``: the default hashes ints as Java ``Long``s).
``ProducerData``/``ConsumerData`` use identity hashes in Java, so their order is
whatever the sender chose and is kept as read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

from pyrocket.protocol.bodies._bean import (
    BOOL,
    INT,
    LONG,
    STR,
    Bean,
    bean,
    enum,
    list_of,
    prop,
)
from pyrocket.protocol.javahash import JavaHashSet, int_hash, string_hash, to_int32

#: SubscriptionData.SUB_ALL: the subscription expression matching every tag.
SUB_ALL = "*"


class ConsumeType(Enum):
    CONSUME_ACTIVELY = "PULL"
    CONSUME_PASSIVELY = "PUSH"


class MessageModel(Enum):
    BROADCASTING = "BROADCASTING"
    CLUSTERING = "CLUSTERING"


class ConsumeFromWhere(Enum):
    CONSUME_FROM_LAST_OFFSET = 0
    CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST = 1
    CONSUME_FROM_MIN_OFFSET = 2
    CONSUME_FROM_MAX_OFFSET = 3
    CONSUME_FROM_FIRST_OFFSET = 4
    CONSUME_FROM_TIMESTAMP = 5


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _set_hash(hashes: list[int]) -> int:
    # AbstractSet.hashCode: the sum of the elements' hash codes, as int.
    return to_int32(sum(hashes))


def _java_trim(text: str) -> str:
    # String.trim: strips every character up to U+0020 from both ends.
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def _str_hash(text: str | None) -> int:
    return 0 if text is None else string_hash(text)


@dataclass(frozen=True, slots=True)
class MessageQueue(Bean):
    """A queue: topic, broker name, queue id. Also a map key in stats bodies."""

    topic: str | None = prop("topic", STR)
    broker_name: str | None = prop("brokerName", STR)
    queue_id: int = prop("queueId", INT, default=0)

    def java_hash_code(self) -> int:
        """``MessageQueue.hashCode()``."""
        result = 31 + _str_hash(self.broker_name)
        result = 31 * result + self.queue_id
        return to_int32(31 * result + _str_hash(self.topic))


@dataclass(frozen=True, slots=True)
class SubscriptionData(Bean):
    """One topic subscription of a consumer group.

    ``filterClassSource`` is never serialized (``@JSONField(serialize=false)``)
    and so is not modelled. A default instance is stamped now, as in Java.
    """

    class_filter_mode: bool = prop("classFilterMode", BOOL, default=False)
    topic: str | None = prop("topic", STR)
    sub_string: str | None = prop("subString", STR)
    tags_set: tuple[str, ...] = prop("tagsSet", list_of(STR), default=())
    code_set: tuple[int, ...] = prop("codeSet", list_of(INT), default=())
    sub_version: int = prop("subVersion", LONG, factory=_now_ms)
    expression_type: str | None = prop("expressionType", STR, default="TAG")

    @classmethod
    def for_expression(
        cls, topic: str, sub_string: str | None, sub_version: int | None = None
    ) -> SubscriptionData:
        """What Java's ``FilterAPI.buildSubscriptionData`` builds for a tag
        expression: ``"*"`` (or nothing) subscribes to everything; otherwise
        the ``||``-separated tags, trimmed, go into ``tagsSet`` and their
        ``String.hashCode`` into ``codeSet``, both fresh HashSets, so the
        sets come out in Java's order."""
        tags: JavaHashSet[str] = JavaHashSet()
        codes: JavaHashSet[int] = JavaHashSet(hasher=int_hash)
        if not sub_string or sub_string == SUB_ALL:
            sub_string = SUB_ALL
        else:
            for tag in sub_string.split("||"):
                trimmed = _java_trim(tag)
                if trimmed:
                    tags.add(trimmed)
                    codes.add(string_hash(trimmed))
        return cls(
            topic=topic,
            sub_string=sub_string,
            tags_set=tuple(tags),
            code_set=tuple(codes),
            sub_version=_now_ms() if sub_version is None else sub_version,
        )

    def java_hash_code(self) -> int:
        """``SubscriptionData.hashCode()`` (``subVersion`` is not part of it)."""
        result = 31 + (1231 if self.class_filter_mode else 1237)
        result = 31 * result + _set_hash(list(self.code_set))
        result = 31 * result + _str_hash(self.sub_string)
        result = 31 * result + _set_hash([string_hash(tag) for tag in self.tags_set])
        result = 31 * result + _str_hash(self.topic)
        return to_int32(31 * result + _str_hash(self.expression_type))


@dataclass(frozen=True, slots=True)
class ProducerData(Bean):
    group_name: str | None = prop("groupName", STR)


@dataclass(frozen=True, slots=True)
class ConsumerData(Bean):
    group_name: str | None = prop("groupName", STR)
    consume_type: ConsumeType | None = prop("consumeType", enum(ConsumeType))
    message_model: MessageModel | None = prop("messageModel", enum(MessageModel))
    consume_from_where: ConsumeFromWhere | None = prop("consumeFromWhere", enum(ConsumeFromWhere))
    subscription_data_set: tuple[SubscriptionData, ...] = prop(
        "subscriptionDataSet", list_of(bean(SubscriptionData)), default=()
    )
    unit_mode: bool = prop("unitMode", BOOL, default=False)


@dataclass(frozen=True, slots=True)
class HeartbeatData(Bean):
    """HEART_BEAT's request body: a client's producer and consumer groups."""

    client_id: str | None = prop("clientID", STR)
    producer_data_set: tuple[ProducerData, ...] = prop(
        "producerDataSet", list_of(bean(ProducerData)), default=()
    )
    consumer_data_set: tuple[ConsumerData, ...] = prop(
        "consumerDataSet", list_of(bean(ConsumerData)), default=()
    )


@dataclass(frozen=True, slots=True)
class CheckClientRequestBody(Bean):
    """CHECK_CLIENT_CONFIG's request body: a consumer's non-TAG subscription."""

    client_id: str | None = prop("clientId", STR)
    group: str | None = prop("group", STR)
    subscription_data: SubscriptionData | None = prop("subscriptionData", bean(SubscriptionData))


@dataclass(frozen=True, slots=True)
class GetConsumerListByGroupResponseBody(Bean):
    """GET_CONSUMER_LIST_BY_GROUP's answer: the client ids of a group."""

    consumer_id_list: tuple[str, ...] | None = prop("consumerIdList", list_of(STR))


@dataclass(frozen=True, slots=True)
class LockBatchRequestBody(Bean):
    """LOCK_BATCH_MQ's request body."""

    consumer_group: str | None = prop("consumerGroup", STR)
    client_id: str | None = prop("clientId", STR)
    mq_set: tuple[MessageQueue, ...] = prop("mqSet", list_of(bean(MessageQueue)), default=())


@dataclass(frozen=True, slots=True)
class LockBatchResponseBody(Bean):
    """LOCK_BATCH_MQ's answer: the queues now locked for the client."""

    lock_ok_mq_set: tuple[MessageQueue, ...] = prop(
        "lockOKMQSet", list_of(bean(MessageQueue)), default=()
    )


@dataclass(frozen=True, slots=True)
class UnlockBatchRequestBody(Bean):
    """UNLOCK_BATCH_MQ's request body."""

    consumer_group: str | None = prop("consumerGroup", STR)
    client_id: str | None = prop("clientId", STR)
    mq_set: tuple[MessageQueue, ...] = prop("mqSet", list_of(bean(MessageQueue)), default=())


@dataclass(frozen=True, slots=True)
class OffsetMovedEvent(Bean):
    """The body of the message a broker stores on the offset-moved event
    topic when a pull asked for an offset the queue no longer has."""

    consumer_group: str | None = prop("consumerGroup", STR)
    message_queue: MessageQueue | None = prop("messageQueue", bean(MessageQueue))
    offset_request: int = prop("offsetRequest", LONG, default=0)
    offset_new: int = prop("offsetNew", LONG, default=0)


__all__ = [
    "SUB_ALL",
    "CheckClientRequestBody",
    "ConsumeFromWhere",
    "ConsumeType",
    "ConsumerData",
    "GetConsumerListByGroupResponseBody",
    "HeartbeatData",
    "LockBatchRequestBody",
    "LockBatchResponseBody",
    "MessageModel",
    "MessageQueue",
    "OffsetMovedEvent",
    "ProducerData",
    "SubscriptionData",
    "UnlockBatchRequestBody",
]
