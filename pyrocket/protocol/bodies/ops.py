"""Operator bodies: offset resets (INVOKE_BROKER_TO_RESET_OFFSET and the
RESET_CONSUMER_CLIENT_OFFSET it forwards), consumer status
(GET_CONSUMER_STATUS_FROM_CLIENT), QUERY_CORRECTION_OFFSET,
QUERY_CONSUME_TIME_SPAN, VIEW_BROKER_STATS_DATA, GET_BROKER_CONSUME_STATS,
QUERY_CONSUME_QUEUE and CONSUME_MESSAGE_DIRECTLY's result.

The ``HashMap<MessageQueue, Long>`` tables travel in Java's order when built
in a :class:`~pyrocket.protocol.javahash.JavaHashMap`.
"""

from __future__ import annotations

import enum as _enum
from collections.abc import Mapping
from dataclasses import dataclass

from pyrocket.protocol.bodies._bean import (
    BOOL,
    DOUBLE,
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
from pyrocket.protocol.bodies.admin import ConsumeStats
from pyrocket.protocol.bodies.client import MessageQueue, SubscriptionData


@dataclass(frozen=True, slots=True)
class ResetOffsetBody(Bean):
    """The offsets a reset moves each queue to."""

    offset_table: Mapping[MessageQueue, int] = prop(
        "offsetTable", map_of(bean(MessageQueue), LONG), factory=dict
    )


@dataclass(frozen=True, slots=True)
class MessageQueueForC(Bean):
    """A queue and its offset, as the C++ client reads a reset."""

    broker_name: str | None = prop("brokerName", STR)
    offset: int = prop("offset", LONG, default=0)
    queue_id: int = prop("queueId", INT, default=0)
    topic: str | None = prop("topic", STR)


@dataclass(frozen=True, slots=True)
class ResetOffsetBodyForC(Bean):
    """RESET_CONSUMER_CLIENT_OFFSET's body for a C++ client (a list)."""

    offset_table: tuple[MessageQueueForC, ...] | None = prop(
        "offsetTable", list_of(bean(MessageQueueForC))
    )


@dataclass(frozen=True, slots=True)
class GetConsumerStatusBody(Bean):
    """A consumer's offsets (``messageQueueTable``, its answer to
    GET_CONSUMER_STATUS_FROM_CLIENT) or every consumer's (``consumerTable``,
    the broker's answer to INVOKE_BROKER_TO_GET_CONSUMER_STATUS)."""

    consumer_table: Mapping[str, Mapping[MessageQueue, int]] = prop(
        "consumerTable", map_of(STR, map_of(bean(MessageQueue), LONG)), factory=dict
    )
    message_queue_table: Mapping[MessageQueue, int] = prop(
        "messageQueueTable", map_of(bean(MessageQueue), LONG), factory=dict
    )


@dataclass(frozen=True, slots=True)
class QueryCorrectionOffsetBody(Bean):
    correction_offsets: Mapping[int, int] = prop(
        "correctionOffsets", map_of(INT, LONG), factory=dict
    )


@dataclass(frozen=True, slots=True)
class QueueTimeSpan(Bean):
    """One queue's stored and consumed time range."""

    consume_time_stamp: int = prop("consumeTimeStamp", LONG, default=0)
    delay_time: int = prop("delayTime", LONG, default=0)
    max_time_stamp: int = prop("maxTimeStamp", LONG, default=0)
    message_queue: MessageQueue | None = prop("messageQueue", bean(MessageQueue))
    min_time_stamp: int = prop("minTimeStamp", LONG, default=0)


@dataclass(frozen=True, slots=True)
class QueryConsumeTimeSpanBody(Bean):
    consume_time_span_set: tuple[QueueTimeSpan, ...] = prop(
        "consumeTimeSpanSet", list_of(bean(QueueTimeSpan)), default=()
    )


@dataclass(frozen=True, slots=True)
class BrokerStatsItem(Bean):
    avgpt: float = prop("avgpt", DOUBLE, default=0.0)
    sum: int = prop("sum", LONG, default=0)
    tps: float = prop("tps", DOUBLE, default=0.0)


@dataclass(frozen=True, slots=True)
class BrokerStatsData(Bean):
    """VIEW_BROKER_STATS_DATA's answer: one item over a minute, hour, day."""

    stats_day: BrokerStatsItem | None = prop("statsDay", bean(BrokerStatsItem))
    stats_hour: BrokerStatsItem | None = prop("statsHour", bean(BrokerStatsItem))
    stats_minute: BrokerStatsItem | None = prop("statsMinute", bean(BrokerStatsItem))


@dataclass(frozen=True, slots=True)
class ConsumeStatsList(Bean):
    """GET_BROKER_CONSUME_STATS's answer: per group, its topics' stats."""

    broker_addr: str | None = prop("brokerAddr", STR)
    consume_stats_list: tuple[Mapping[str, tuple[ConsumeStats, ...]], ...] = prop(
        "consumeStatsList", list_of(map_of(STR, list_of(bean(ConsumeStats)))), default=()
    )
    total_diff: int = prop("totalDiff", LONG, default=0)


@dataclass(frozen=True, slots=True)
class ConsumeQueueData(Bean):
    """One consume-queue entry as QUERY_CONSUME_QUEUE shows it."""

    bit_map: str | None = prop("bitMap", STR)
    eval: bool = prop("eval", BOOL, default=False)
    extend_data_json: str | None = prop("extendDataJson", STR)
    msg: str | None = prop("msg", STR)
    physic_offset: int = prop("physicOffset", LONG, default=0)
    physic_size: int = prop("physicSize", INT, default=0)
    tags_code: int = prop("tagsCode", LONG, default=0)


@dataclass(frozen=True, slots=True)
class QueryConsumeQueueResponseBody(Bean):
    filter_data: str | None = prop("filterData", STR)
    max_queue_index: int = prop("maxQueueIndex", LONG, default=0)
    min_queue_index: int = prop("minQueueIndex", LONG, default=0)
    queue_data: tuple[ConsumeQueueData, ...] | None = prop(
        "queueData", list_of(bean(ConsumeQueueData))
    )
    subscription_data: SubscriptionData | None = prop("subscriptionData", bean(SubscriptionData))


class CMResult(_enum.Enum):
    """How a directly consumed message fared (Java's ``CMResult``)."""

    CR_SUCCESS = "CR_SUCCESS"
    CR_LATER = "CR_LATER"
    CR_ROLLBACK = "CR_ROLLBACK"
    CR_COMMIT = "CR_COMMIT"
    CR_THROW_EXCEPTION = "CR_THROW_EXCEPTION"
    CR_RETURN_NULL = "CR_RETURN_NULL"


@dataclass(frozen=True, slots=True)
class ConsumeMessageDirectlyResult(Bean):
    """CONSUME_MESSAGE_DIRECTLY's answer from a consumer."""

    auto_commit: bool = prop("autoCommit", BOOL, default=True)
    consume_result: CMResult | None = prop("consumeResult", enum(CMResult))
    order: bool = prop("order", BOOL, default=False)
    remark: str | None = prop("remark", STR)
    spent_time_mills: int = prop("spentTimeMills", LONG, default=0)


__all__ = [
    "BrokerStatsData",
    "BrokerStatsItem",
    "CMResult",
    "ConsumeMessageDirectlyResult",
    "ConsumeQueueData",
    "ConsumeStatsList",
    "GetConsumerStatusBody",
    "MessageQueueForC",
    "QueryConsumeQueueResponseBody",
    "QueryConsumeTimeSpanBody",
    "QueryCorrectionOffsetBody",
    "QueueTimeSpan",
    "ResetOffsetBody",
    "ResetOffsetBodyForC",
]
