"""Broker administration and replication bodies: topic and consumer statistics
(GET_TOPIC_STATS_INFO, GET_CONSUME_STATS), who consumes a topic
(QUERY_TOPIC_CONSUME_BY_WHO), and the tables a slave copies from its master
(GET_ALL_SUBSCRIPTIONGROUP_CONFIG, GET_ALL_CONSUMER_OFFSET, GET_ALL_DELAY_OFFSET),
and the clients connected to a group (GET_CONSUMER_CONNECTION_LIST,
GET_PRODUCER_CONNECTION_LIST).

The statistics tables are ``HashMap<MessageQueue, ...>``: fastjson writes each
key as a JSON object. Build them in a ``JavaHashMap`` (MessageQueue supplies
Java's hashCode) to get Java's order.
"""

from __future__ import annotations

import dataclasses
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
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumeType,
    MessageModel,
    MessageQueue,
    SubscriptionData,
)
from pyrocket.protocol.bodies.topic import DataVersion
from pyrocket.protocol.codes import LanguageCode


@dataclass(frozen=True, slots=True)
class TopicOffset(Bean):
    min_offset: int = prop("minOffset", LONG, default=0)
    max_offset: int = prop("maxOffset", LONG, default=0)
    last_update_timestamp: int = prop("lastUpdateTimestamp", LONG, default=0)


@dataclass(frozen=True, slots=True)
class TopicStatsTable(Bean):
    """GET_TOPIC_STATS_INFO's answer: offsets of each queue of a topic."""

    offset_table: Mapping[MessageQueue, TopicOffset] = prop(
        "offsetTable", map_of(bean(MessageQueue), bean(TopicOffset)), factory=dict
    )


@dataclass(frozen=True, slots=True)
class OffsetWrapper(Bean):
    broker_offset: int = prop("brokerOffset", LONG, default=0)
    consumer_offset: int = prop("consumerOffset", LONG, default=0)
    last_timestamp: int = prop("lastTimestamp", LONG, default=0)


@dataclass(frozen=True, slots=True)
class ConsumeStats(Bean):
    """GET_CONSUME_STATS's answer: broker and consumer offsets per queue."""

    offset_table: Mapping[MessageQueue, OffsetWrapper] = prop(
        "offsetTable", map_of(bean(MessageQueue), bean(OffsetWrapper)), factory=dict
    )
    consume_tps: float = prop("consumeTps", DOUBLE, default=0.0)

    def compute_total_diff(self) -> int:
        """``computeTotalDiff()``: messages not yet consumed, over all queues."""
        return sum(w.broker_offset - w.consumer_offset for w in self.offset_table.values())


@dataclass(frozen=True, slots=True)
class GroupList(Bean):
    """QUERY_TOPIC_CONSUME_BY_WHO's answer: consumer groups (a HashSet)."""

    group_list: tuple[str, ...] = prop("groupList", list_of(STR), default=())


@dataclass(frozen=True, slots=True)
class SubscriptionGroupConfig(Bean):
    """A consumer group's settings on a broker; defaults are Java's."""

    group_name: str | None = prop("groupName", STR)
    consume_enable: bool = prop("consumeEnable", BOOL, default=True)
    consume_from_min_enable: bool = prop("consumeFromMinEnable", BOOL, default=True)
    consume_broadcast_enable: bool = prop("consumeBroadcastEnable", BOOL, default=True)
    retry_queue_nums: int = prop("retryQueueNums", INT, default=1)
    retry_max_times: int = prop("retryMaxTimes", INT, default=16)
    broker_id: int = prop("brokerId", LONG, default=0)
    which_broker_when_consume_slowly: int = prop("whichBrokerWhenConsumeSlowly", LONG, default=1)
    notify_consumer_ids_changed_enable: bool = prop(
        "notifyConsumerIdsChangedEnable", BOOL, default=True
    )


@dataclass(frozen=True, slots=True)
class SubscriptionGroupWrapper(Bean):
    """GET_ALL_SUBSCRIPTIONGROUP_CONFIG's answer. Java's table is a
    ``ConcurrentHashMap(1024)``; pass it in that order."""

    subscription_group_table: Mapping[str, SubscriptionGroupConfig] = prop(
        "subscriptionGroupTable", map_of(STR, bean(SubscriptionGroupConfig)), factory=dict
    )
    data_version: DataVersion = prop("dataVersion", bean(DataVersion), factory=DataVersion)


@dataclass(frozen=True, slots=True)
class ConsumerOffsetSerializeWrapper(Bean):
    """GET_ALL_CONSUMER_OFFSET's answer: ``topic@group`` -> queue id -> offset
    (``ConcurrentHashMap(512)`` of ``ConcurrentHashMap<Integer, Long>``)."""

    offset_table: Mapping[str, Mapping[int, int]] = prop(
        "offsetTable", map_of(STR, map_of(INT, LONG)), factory=dict
    )


@dataclass(frozen=True, slots=True)
class DelayOffsetSerializeWrapper(Bean):
    """GET_ALL_DELAY_OFFSET's answer: delay level -> offset
    (``ConcurrentHashMap<Integer, Long>(32)``)."""

    offset_table: Mapping[int, int] = prop("offsetTable", map_of(INT, LONG), factory=dict)


@dataclass(frozen=True, slots=True)
class Connection(Bean):
    """One client connection of a group: its id, remote address, language
    and version."""

    client_addr: str | None = prop("clientAddr", STR)
    client_id: str | None = prop("clientId", STR)
    language: LanguageCode | None = prop("language", enum(LanguageCode))
    version: int = prop("version", INT, default=0)


@dataclass(frozen=True, slots=True)
class ConsumerConnection(Bean):
    """GET_CONSUMER_CONNECTION_LIST's answer: a consumer group's connections,
    subscriptions and consumption settings. Java's ``connectionSet`` is a
    HashSet of objects without ``hashCode``, so its order is arbitrary."""

    connection_set: tuple[Connection, ...] = prop(
        "connectionSet", list_of(bean(Connection)), default=()
    )
    consume_from_where: ConsumeFromWhere | None = prop("consumeFromWhere", enum(ConsumeFromWhere))
    consume_type: ConsumeType | None = prop("consumeType", enum(ConsumeType))
    message_model: MessageModel | None = prop("messageModel", enum(MessageModel))
    subscription_table: Mapping[str, SubscriptionData] = prop(
        "subscriptionTable", map_of(STR, bean(SubscriptionData)), factory=dict
    )

    def compute_min_version(self) -> int:
        """``computeMinVersion``: the oldest client version (Integer.MAX_VALUE
        when there is no connection)."""
        return min((c.version for c in self.connection_set), default=2**31 - 1)


@dataclass(frozen=True, slots=True)
class ProducerConnection(Bean):
    """GET_PRODUCER_CONNECTION_LIST's answer: a producer group's connections."""

    connection_set: tuple[Connection, ...] = prop(
        "connectionSet", list_of(bean(Connection)), default=()
    )


@dataclass(frozen=True, slots=True)
class ProcessQueueInfo(Bean):
    """What a push consumer holds for one of its queues (GET_CONSUMER_RUNNING_INFO)."""

    cached_msg_count: int = prop("cachedMsgCount", INT, default=0)
    cached_msg_max_offset: int = prop("cachedMsgMaxOffset", LONG, default=0)
    cached_msg_min_offset: int = prop("cachedMsgMinOffset", LONG, default=0)
    cached_msg_size_in_mib: int = prop("cachedMsgSizeInMiB", INT, default=0)
    commit_offset: int = prop("commitOffset", LONG, default=0)
    droped: bool = prop("droped", BOOL, default=False)
    last_consume_timestamp: int = prop("lastConsumeTimestamp", LONG, default=0)
    last_lock_timestamp: int = prop("lastLockTimestamp", LONG, default=0)
    last_pull_timestamp: int = prop("lastPullTimestamp", LONG, default=0)
    locked: bool = prop("locked", BOOL, default=False)
    transaction_msg_count: int = prop("transactionMsgCount", INT, default=0)
    transaction_msg_max_offset: int = prop("transactionMsgMaxOffset", LONG, default=0)
    transaction_msg_min_offset: int = prop("transactionMsgMinOffset", LONG, default=0)
    try_unlock_times: int = prop("tryUnlockTimes", LONG, default=0)


@dataclass(frozen=True, slots=True)
class ConsumeStatus(Bean):
    """A consumer's pull and consume figures for one topic."""

    consume_failed_msgs: int = prop("consumeFailedMsgs", LONG, default=0)
    consume_failed_tps: float = prop("consumeFailedTPS", DOUBLE, default=0.0)
    consume_ok_tps: float = prop("consumeOKTPS", DOUBLE, default=0.0)
    consume_rt: float = prop("consumeRT", DOUBLE, default=0.0)
    pull_rt: float = prop("pullRT", DOUBLE, default=0.0)
    pull_tps: float = prop("pullTPS", DOUBLE, default=0.0)


#: ConsumerRunningInfo's property keys.
PROP_NAMESERVER_ADDR = "PROP_NAMESERVER_ADDR"
PROP_THREADPOOL_CORE_SIZE = "PROP_THREADPOOL_CORE_SIZE"
PROP_CONSUME_ORDERLY = "PROP_CONSUMEORDERLY"
PROP_CONSUME_TYPE = "PROP_CONSUME_TYPE"
PROP_CLIENT_VERSION = "PROP_CLIENT_VERSION"
PROP_CONSUMER_START_TIMESTAMP = "PROP_CONSUMER_START_TIMESTAMP"


def subscription_order(subscription: SubscriptionData) -> bytes:
    """``SubscriptionData.compareTo``: ``topic@subString`` as Java strings compare."""
    return f"{subscription.topic}@{subscription.sub_string}".encode("utf-16-be")


def message_queue_order(queue: MessageQueue) -> tuple[bytes, bytes, int]:
    """``MessageQueue.compareTo``: topic, then broker name, then queue id."""
    return (
        (queue.topic or "").encode("utf-16-be"),
        (queue.broker_name or "").encode("utf-16-be"),
        queue.queue_id,
    )


@dataclass(frozen=True, slots=True)
class ConsumerRunningInfo(Bean):
    """GET_CONSUMER_RUNNING_INFO's answer. ``subscription_set``, ``mq_table``
    and ``status_table`` are Java TreeSet/TreeMaps: build them with
    :meth:`sorted` to get Java's order; ``properties`` is a Java Properties
    (see :meth:`Properties.java_ordered`)."""

    jstack: str | None = prop("jstack", STR)
    mq_table: Mapping[MessageQueue, ProcessQueueInfo] = prop(
        "mqTable", map_of(bean(MessageQueue), bean(ProcessQueueInfo)), factory=dict
    )
    properties: Mapping[str, str] = prop("properties", map_of(STR, STR), factory=dict)
    status_table: Mapping[str, ConsumeStatus] = prop(
        "statusTable", map_of(STR, bean(ConsumeStatus)), factory=dict
    )
    subscription_set: tuple[SubscriptionData, ...] = prop(
        "subscriptionSet", list_of(bean(SubscriptionData)), default=()
    )

    def sorted(self) -> ConsumerRunningInfo:
        """The same information with the tree collections in Java's order."""
        return dataclasses.replace(
            self,
            mq_table={q: self.mq_table[q] for q in sorted(self.mq_table, key=message_queue_order)},
            status_table={
                t: self.status_table[t]
                for t in sorted(self.status_table, key=lambda t: t.encode("utf-16-be"))
            },
            subscription_set=tuple(sorted(self.subscription_set, key=subscription_order)),
        )


__all__ = [
    "PROP_CLIENT_VERSION",
    "PROP_CONSUMER_START_TIMESTAMP",
    "PROP_CONSUME_ORDERLY",
    "PROP_CONSUME_TYPE",
    "PROP_NAMESERVER_ADDR",
    "PROP_THREADPOOL_CORE_SIZE",
    "Connection",
    "ConsumeStats",
    "ConsumeStatus",
    "ConsumerConnection",
    "ConsumerOffsetSerializeWrapper",
    "ConsumerRunningInfo",
    "DelayOffsetSerializeWrapper",
    "GroupList",
    "OffsetWrapper",
    "ProcessQueueInfo",
    "ProducerConnection",
    "SubscriptionGroupConfig",
    "SubscriptionGroupWrapper",
    "TopicOffset",
    "TopicStatsTable",
    "message_queue_order",
    "subscription_order",
]
