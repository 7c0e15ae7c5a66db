"""Broker administration headers: topics, configs, stats, subscription
groups, ACL, and filter servers (``header/filtersrv``).

Fields are in each Java class's declaration order; Java primitives (never
null) have a non-None default and are always sent, boxed types default to
None (not sent) unless Java initializes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyrocket.protocol.headers.base import BOOLEAN, INT, LONG, STRING, CommandHeader, jfield


@dataclass(frozen=True, slots=True)
class CreateTopicRequestHeader(CommandHeader):
    """UPDATE_AND_CREATE_TOPIC."""

    topic: str = jfield("topic", STRING, required=True)
    default_topic: str = jfield("defaultTopic", STRING, required=True)
    read_queue_nums: int = jfield("readQueueNums", INT, required=True)
    write_queue_nums: int = jfield("writeQueueNums", INT, required=True)
    perm: int = jfield("perm", INT, required=True)
    topic_filter_type: str = jfield("topicFilterType", STRING, required=True)
    topic_sys_flag: int | None = jfield("topicSysFlag", INT)
    order: bool = jfield("order", BOOLEAN, required=True, default=False)


@dataclass(frozen=True, slots=True)
class DeleteTopicRequestHeader(CommandHeader):
    """DELETE_TOPIC_IN_BROKER."""

    topic: str = jfield("topic", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetAllTopicConfigResponseHeader(CommandHeader):
    pass


@dataclass(frozen=True, slots=True)
class GetBrokerConfigResponseHeader(CommandHeader):
    """GET_BROKER_CONFIG answer: ``version`` is the config's DataVersion JSON."""

    version: str = jfield("version", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetTopicStatsInfoRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetConsumeStatsRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)
    topic: str | None = jfield("topic", STRING)


@dataclass(frozen=True, slots=True)
class GetConsumeStatsInBrokerHeader(CommandHeader):
    """GET_BROKER_CONSUME_STATS."""

    is_order: bool = jfield("isOrder", BOOLEAN, required=True, default=False)


@dataclass(frozen=True, slots=True)
class QueryTopicConsumeByWhoRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)


@dataclass(frozen=True, slots=True)
class DeleteSubscriptionGroupRequestHeader(CommandHeader):
    group_name: str = jfield("groupName", STRING, required=True)


@dataclass(frozen=True, slots=True)
class ViewBrokerStatsDataRequestHeader(CommandHeader):
    stats_name: str = jfield("statsName", STRING, required=True)
    stats_key: str = jfield("statsKey", STRING, required=True)


@dataclass(frozen=True, slots=True)
class CreateAccessConfigRequestHeader(CommandHeader):
    """UPDATE_AND_CREATE_ACL_CONFIG."""

    access_key: str = jfield("accessKey", STRING, required=True)
    secret_key: str | None = jfield("secretKey", STRING)
    white_remote_address: str | None = jfield("whiteRemoteAddress", STRING)
    admin: bool = jfield("admin", BOOLEAN, default=False)
    default_topic_perm: str | None = jfield("defaultTopicPerm", STRING)
    default_group_perm: str | None = jfield("defaultGroupPerm", STRING)
    topic_perms: str | None = jfield("topicPerms", STRING)
    group_perms: str | None = jfield("groupPerms", STRING)


@dataclass(frozen=True, slots=True)
class DeleteAccessConfigRequestHeader(CommandHeader):
    access_key: str = jfield("accessKey", STRING, required=True)


@dataclass(frozen=True, slots=True)
class UpdateGlobalWhiteAddrsConfigRequestHeader(CommandHeader):
    global_white_addrs: str = jfield("globalWhiteAddrs", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetBrokerAclConfigResponseHeader(CommandHeader):
    """GET_BROKER_CLUSTER_ACL_INFO answer."""

    version: str = jfield("version", STRING, required=True)
    broker_name: str = jfield("brokerName", STRING, required=True)
    broker_addr: str = jfield("brokerAddr", STRING, required=True)
    cluster_name: str = jfield("clusterName", STRING, required=True)


# --- Filter servers (header/filtersrv) ----------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterFilterServerRequestHeader(CommandHeader):
    filter_server_addr: str = jfield("filterServerAddr", STRING, required=True)


@dataclass(frozen=True, slots=True)
class RegisterFilterServerResponseHeader(CommandHeader):
    broker_name: str = jfield("brokerName", STRING, required=True)
    broker_id: int = jfield("brokerId", LONG, required=True, default=0)


@dataclass(frozen=True, slots=True)
class RegisterMessageFilterClassRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)
    class_name: str = jfield("className", STRING, required=True)
    class_crc: int = jfield("classCRC", INT, required=True)


__all__ = [
    "CreateAccessConfigRequestHeader",
    "CreateTopicRequestHeader",
    "DeleteAccessConfigRequestHeader",
    "DeleteSubscriptionGroupRequestHeader",
    "DeleteTopicRequestHeader",
    "GetAllTopicConfigResponseHeader",
    "GetBrokerAclConfigResponseHeader",
    "GetBrokerConfigResponseHeader",
    "GetConsumeStatsInBrokerHeader",
    "GetConsumeStatsRequestHeader",
    "GetTopicStatsInfoRequestHeader",
    "QueryTopicConsumeByWhoRequestHeader",
    "RegisterFilterServerRequestHeader",
    "RegisterFilterServerResponseHeader",
    "RegisterMessageFilterClassRequestHeader",
    "UpdateGlobalWhiteAddrsConfigRequestHeader",
    "ViewBrokerStatsDataRequestHeader",
]
