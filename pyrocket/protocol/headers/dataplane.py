"""Broker data-plane headers: sending, pulling, consumer offsets, queue
offsets by time, querying and viewing stored messages.

Fields are in each Java class's declaration order; Java primitives (never
null) have a non-None default and are always sent, boxed types default to
None (not sent) unless Java initializes them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

from pyrocket.protocol.frozen import quick_init
from pyrocket.protocol.headers.base import (
    BOOLEAN,
    INT,
    LONG,
    STRING,
    CommandHeader,
    jfield,
    plain_java_number,
)


@quick_init
@dataclass(frozen=True, slots=True)
class SendMessageRequestHeader(CommandHeader):
    """SEND_MESSAGE (and SEND_REPLY_MESSAGE); SEND_MESSAGE_V2 and
    SEND_BATCH_MESSAGE carry the same fields under one-letter names
    (:class:`SendMessageRequestHeaderV2`)."""

    producer_group: str = jfield("producerGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)
    default_topic: str = jfield("defaultTopic", STRING, required=True)
    default_topic_queue_nums: int = jfield("defaultTopicQueueNums", INT, required=True)
    queue_id: int = jfield("queueId", INT, required=True)
    sys_flag: int = jfield("sysFlag", INT, required=True)
    born_timestamp: int = jfield("bornTimestamp", LONG, required=True)
    flag: int = jfield("flag", INT, required=True)
    properties: str | None = jfield("properties", STRING)
    reconsume_times: int | None = jfield("reconsumeTimes", INT)
    unit_mode: bool = jfield("unitMode", BOOLEAN, default=False)
    batch: bool = jfield("batch", BOOLEAN, default=False)
    max_reconsume_times: int | None = jfield("maxReconsumeTimes", INT)


@quick_init
@dataclass(frozen=True, slots=True)
class SendMessageRequestHeaderV2(CommandHeader):
    """SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE / SEND_REPLY_MESSAGE_V2: the V1
    fields with Java's one-letter wire names ``a`` to ``m``."""

    producer_group: str = jfield("a", STRING, required=True)
    topic: str = jfield("b", STRING, required=True)
    default_topic: str = jfield("c", STRING, required=True)
    default_topic_queue_nums: int = jfield("d", INT, required=True)
    queue_id: int = jfield("e", INT, required=True)
    sys_flag: int = jfield("f", INT, required=True)
    born_timestamp: int = jfield("g", LONG, required=True)
    flag: int = jfield("h", INT, required=True)
    properties: str | None = jfield("i", STRING)
    reconsume_times: int | None = jfield("j", INT)
    unit_mode: bool = jfield("k", BOOLEAN, default=False)
    max_reconsume_times: int | None = jfield("l", INT)
    batch: bool = jfield("m", BOOLEAN, default=False)

    @classmethod
    def from_ext_fields_fast(cls, ext: Mapping[str, str]) -> Self:
        """:meth:`from_ext_fields` with the common shape read directly: the
        broker's hot path for every SEND_MESSAGE_V2. Only plain decimals short
        enough to be in range are taken here; anything else (a missing
        required field, a sign other than ``-``, a value that may be out of
        range, a non-number) goes to the generic decoder, which parses it or
        raises CommandError exactly as it always does."""
        get = ext.get
        producer_group, topic, default_topic = get("a"), get("b"), get("c")
        queue_nums, queue_id = plain_java_number(get("d"), 9), plain_java_number(get("e"), 9)
        sys_flag, flag = plain_java_number(get("f"), 9), plain_java_number(get("h"), 9)
        born = plain_java_number(get("g"), 18)
        reconsume, max_reconsume = get("j"), get("l")
        reconsume_times = plain_java_number(reconsume, 9)
        max_reconsume_times = plain_java_number(max_reconsume, 9)
        if (
            producer_group is None
            or topic is None
            or default_topic is None
            or queue_nums is None
            or queue_id is None
            or sys_flag is None
            or flag is None
            or born is None
            or (reconsume is not None and reconsume_times is None)
            or (max_reconsume is not None and max_reconsume_times is None)
        ):
            return cls.from_ext_fields(ext)
        unit_mode, batch = get("k"), get("m")
        return cls(
            producer_group,
            topic,
            default_topic,
            queue_nums,
            queue_id,
            sys_flag,
            born,
            flag,
            get("i"),
            reconsume_times,
            unit_mode is not None and unit_mode.lower() == "true",
            max_reconsume_times,
            batch is not None and batch.lower() == "true",
        )

    def to_v1(self) -> SendMessageRequestHeader:
        """``createSendMessageRequestHeaderV1``: the same values, long names."""
        return SendMessageRequestHeader(
            producer_group=self.producer_group,
            topic=self.topic,
            default_topic=self.default_topic,
            default_topic_queue_nums=self.default_topic_queue_nums,
            queue_id=self.queue_id,
            sys_flag=self.sys_flag,
            born_timestamp=self.born_timestamp,
            flag=self.flag,
            properties=self.properties,
            reconsume_times=self.reconsume_times,
            unit_mode=self.unit_mode,
            batch=self.batch,
            max_reconsume_times=self.max_reconsume_times,
        )

    @classmethod
    def from_v1(cls, v1: SendMessageRequestHeader) -> SendMessageRequestHeaderV2:
        """``createSendMessageRequestHeaderV2``: the same values, short names."""
        return cls(
            producer_group=v1.producer_group,
            topic=v1.topic,
            default_topic=v1.default_topic,
            default_topic_queue_nums=v1.default_topic_queue_nums,
            queue_id=v1.queue_id,
            sys_flag=v1.sys_flag,
            born_timestamp=v1.born_timestamp,
            flag=v1.flag,
            properties=v1.properties,
            reconsume_times=v1.reconsume_times,
            unit_mode=v1.unit_mode,
            max_reconsume_times=v1.max_reconsume_times,
            batch=v1.batch,
        )


@dataclass(frozen=True, slots=True)
class SendMessageResponseHeader(CommandHeader):
    msg_id: str = jfield("msgId", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)
    queue_offset: int = jfield("queueOffset", LONG, required=True)
    transaction_id: str | None = jfield("transactionId", STRING)

    @staticmethod
    def answer_ext_fields(
        msg_id: str, queue_id: int, queue_offset: int, preceding: Mapping[str, str]
    ) -> dict[str, str]:
        """What ``SendMessageResponseHeader(msg_id, queue_id,
        queue_offset).to_ext_fields(preceding)`` gives, built directly: the
        send answer's hot path (its fields are put in order once per set of
        preceding fields)."""
        fields = _send_answer_template(tuple(preceding.items())).copy()
        # Existing keys keep their place: the copy is already in answer order.
        fields["msgId"] = msg_id
        fields["queueId"] = str(queue_id)
        fields["queueOffset"] = str(queue_offset)
        return fields


@dataclass(frozen=True, slots=True)
class ReplyMessageRequestHeader(CommandHeader):
    """PUSH_REPLY_MESSAGE_TO_CLIENT: a reply message pushed to its requester."""

    producer_group: str = jfield("producerGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)
    default_topic: str = jfield("defaultTopic", STRING, required=True)
    default_topic_queue_nums: int = jfield("defaultTopicQueueNums", INT, required=True)
    queue_id: int = jfield("queueId", INT, required=True)
    sys_flag: int = jfield("sysFlag", INT, required=True)
    born_timestamp: int = jfield("bornTimestamp", LONG, required=True)
    flag: int = jfield("flag", INT, required=True)
    properties: str | None = jfield("properties", STRING)
    reconsume_times: int | None = jfield("reconsumeTimes", INT)
    unit_mode: bool = jfield("unitMode", BOOLEAN, default=False)
    born_host: str = jfield("bornHost", STRING, required=True)
    store_host: str = jfield("storeHost", STRING, required=True)
    store_timestamp: int = jfield("storeTimestamp", LONG, required=True, default=0)


@dataclass(frozen=True, slots=True)
class ConsumerSendMsgBackRequestHeader(CommandHeader):
    offset: int = jfield("offset", LONG, required=True)
    group: str = jfield("group", STRING, required=True)
    delay_level: int = jfield("delayLevel", INT, required=True)
    origin_msg_id: str | None = jfield("originMsgId", STRING)
    origin_topic: str | None = jfield("originTopic", STRING)
    unit_mode: bool = jfield("unitMode", BOOLEAN, default=False)
    max_reconsume_times: int | None = jfield("maxReconsumeTimes", INT)


# --- Pulling and offsets ------------------------------------------------------


@quick_init
@dataclass(frozen=True, slots=True)
class PullMessageRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)
    queue_offset: int = jfield("queueOffset", LONG, required=True)
    max_msg_nums: int = jfield("maxMsgNums", INT, required=True)
    sys_flag: int = jfield("sysFlag", INT, required=True)
    commit_offset: int = jfield("commitOffset", LONG, required=True)
    suspend_timeout_millis: int = jfield("suspendTimeoutMillis", LONG, required=True)
    subscription: str | None = jfield("subscription", STRING)
    sub_version: int = jfield("subVersion", LONG, required=True)
    expression_type: str | None = jfield("expressionType", STRING)

    @classmethod
    def from_ext_fields_fast(cls, ext: Mapping[str, str]) -> Self:
        """:meth:`from_ext_fields` with the common shape read directly: the
        broker's hot path for every PULL_MESSAGE. As for
        :meth:`SendMessageRequestHeaderV2.from_ext_fields_fast`, anything but
        every required field present with a plain decimal short enough to
        be in range goes to the generic decoder."""
        get = ext.get
        group, topic = get("consumerGroup"), get("topic")
        queue_id = plain_java_number(get("queueId"), 9)
        queue_offset = plain_java_number(get("queueOffset"), 18)
        max_msg_nums = plain_java_number(get("maxMsgNums"), 9)
        sys_flag = plain_java_number(get("sysFlag"), 9)
        commit_offset = plain_java_number(get("commitOffset"), 18)
        suspend_timeout = plain_java_number(get("suspendTimeoutMillis"), 18)
        sub_version = plain_java_number(get("subVersion"), 18)
        if (
            group is None
            or topic is None
            or queue_id is None
            or queue_offset is None
            or max_msg_nums is None
            or sys_flag is None
            or commit_offset is None
            or suspend_timeout is None
            or sub_version is None
        ):
            return cls.from_ext_fields(ext)
        return cls(
            group,
            topic,
            queue_id,
            queue_offset,
            max_msg_nums,
            sys_flag,
            commit_offset,
            suspend_timeout,
            get("subscription"),
            sub_version,
            get("expressionType"),
        )


@dataclass(frozen=True, slots=True)
class PullMessageResponseHeader(CommandHeader):
    suggest_which_broker_id: int = jfield("suggestWhichBrokerId", LONG, required=True)
    next_begin_offset: int = jfield("nextBeginOffset", LONG, required=True)
    min_offset: int = jfield("minOffset", LONG, required=True)
    max_offset: int = jfield("maxOffset", LONG, required=True)

    @staticmethod
    def answer_ext_fields(
        suggest_which_broker_id: int, next_begin_offset: int, min_offset: int, max_offset: int
    ) -> dict[str, str]:
        """What ``PullMessageResponseHeader(...).to_ext_fields()`` gives for
        these values (each a long), built directly, in the same key order
        (Java's HashMap order): the answer of every pull that found
        messages."""
        return {
            "suggestWhichBrokerId": str(suggest_which_broker_id),
            "nextBeginOffset": str(next_begin_offset),
            "maxOffset": str(max_offset),
            "minOffset": str(min_offset),
        }


@dataclass(frozen=True, slots=True)
class QueryConsumerOffsetRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)


@dataclass(frozen=True, slots=True)
class QueryConsumerOffsetResponseHeader(CommandHeader):
    offset: int = jfield("offset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class UpdateConsumerOffsetRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)
    commit_offset: int = jfield("commitOffset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class UpdateConsumerOffsetResponseHeader(CommandHeader):
    pass


@dataclass(frozen=True, slots=True)
class GetMaxOffsetRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)


@dataclass(frozen=True, slots=True)
class GetMaxOffsetResponseHeader(CommandHeader):
    offset: int = jfield("offset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class GetMinOffsetRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)


@dataclass(frozen=True, slots=True)
class GetMinOffsetResponseHeader(CommandHeader):
    offset: int = jfield("offset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class GetEarliestMsgStoretimeRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)


@dataclass(frozen=True, slots=True)
class GetEarliestMsgStoretimeResponseHeader(CommandHeader):
    timestamp: int = jfield("timestamp", LONG, required=True)


@dataclass(frozen=True, slots=True)
class SearchOffsetRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)
    timestamp: int = jfield("timestamp", LONG, required=True)


@dataclass(frozen=True, slots=True)
class SearchOffsetResponseHeader(CommandHeader):
    offset: int = jfield("offset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class QueryMessageRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    key: str = jfield("key", STRING, required=True)
    max_num: int = jfield("maxNum", INT, required=True)
    begin_timestamp: int = jfield("beginTimestamp", LONG, required=True)
    end_timestamp: int = jfield("endTimestamp", LONG, required=True)


@dataclass(frozen=True, slots=True)
class QueryMessageResponseHeader(CommandHeader):
    index_last_update_timestamp: int = jfield("indexLastUpdateTimestamp", LONG, required=True)
    index_last_update_phyoffset: int = jfield("indexLastUpdatePhyoffset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class ViewMessageRequestHeader(CommandHeader):
    offset: int = jfield("offset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class ViewMessageResponseHeader(CommandHeader):
    pass


@dataclass(frozen=True, slots=True)
class QueryConsumeQueueRequestHeader(CommandHeader):
    topic: str | None = jfield("topic", STRING)
    queue_id: int = jfield("queueId", INT, default=0)
    index: int = jfield("index", LONG, default=0)
    count: int = jfield("count", INT, default=0)
    consumer_group: str | None = jfield("consumerGroup", STRING)


__all__ = [
    "ConsumerSendMsgBackRequestHeader",
    "GetEarliestMsgStoretimeRequestHeader",
    "GetEarliestMsgStoretimeResponseHeader",
    "GetMaxOffsetRequestHeader",
    "GetMaxOffsetResponseHeader",
    "GetMinOffsetRequestHeader",
    "GetMinOffsetResponseHeader",
    "PullMessageRequestHeader",
    "PullMessageResponseHeader",
    "QueryConsumeQueueRequestHeader",
    "QueryConsumerOffsetRequestHeader",
    "QueryConsumerOffsetResponseHeader",
    "QueryMessageRequestHeader",
    "QueryMessageResponseHeader",
    "ReplyMessageRequestHeader",
    "SearchOffsetRequestHeader",
    "SearchOffsetResponseHeader",
    "SendMessageRequestHeader",
    "SendMessageRequestHeaderV2",
    "SendMessageResponseHeader",
    "UpdateConsumerOffsetRequestHeader",
    "UpdateConsumerOffsetResponseHeader",
    "ViewMessageRequestHeader",
    "ViewMessageResponseHeader",
]


@functools.lru_cache(maxsize=16)
def _send_answer_template(preceding: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """A send answer's ext fields in their order, ``preceding`` filled in
    and the header's own left empty (the caller copies it; never changed)."""
    header = SendMessageResponseHeader(msg_id="", queue_id=0, queue_offset=0)
    return header.to_ext_fields(dict(preceding))
