"""NameServer request and response headers (RocketMQ 4.7.0
``common/.../protocol/header/namesrv``): KV config, broker registration,
routes, topic administration on the NameServer.

Fields are in each Java class's declaration order; Java primitives (never
null) have a non-None default and are always sent, boxed types default to
None (not sent) unless Java initializes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyrocket.protocol.headers.base import BOOLEAN, INT, LONG, STRING, CommandHeader, jfield


@dataclass(frozen=True, slots=True)
class PutKVConfigRequestHeader(CommandHeader):
    namespace: str = jfield("namespace", STRING, required=True)
    key: str = jfield("key", STRING, required=True)
    value: str = jfield("value", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetKVConfigRequestHeader(CommandHeader):
    namespace: str = jfield("namespace", STRING, required=True)
    key: str = jfield("key", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetKVConfigResponseHeader(CommandHeader):
    value: str | None = jfield("value", STRING)


@dataclass(frozen=True, slots=True)
class DeleteKVConfigRequestHeader(CommandHeader):
    namespace: str = jfield("namespace", STRING, required=True)
    key: str = jfield("key", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetKVListByNamespaceRequestHeader(CommandHeader):
    namespace: str = jfield("namespace", STRING, required=True)


@dataclass(frozen=True, slots=True)
class QueryDataVersionRequestHeader(CommandHeader):
    broker_name: str = jfield("brokerName", STRING, required=True)
    broker_addr: str = jfield("brokerAddr", STRING, required=True)
    cluster_name: str = jfield("clusterName", STRING, required=True)
    broker_id: int = jfield("brokerId", LONG, required=True)


@dataclass(frozen=True, slots=True)
class QueryDataVersionResponseHeader(CommandHeader):
    changed: bool = jfield("changed", BOOLEAN, required=True)


@dataclass(frozen=True, slots=True)
class RegisterBrokerRequestHeader(CommandHeader):
    broker_name: str = jfield("brokerName", STRING, required=True)
    broker_addr: str = jfield("brokerAddr", STRING, required=True)
    cluster_name: str = jfield("clusterName", STRING, required=True)
    ha_server_addr: str = jfield("haServerAddr", STRING, required=True)
    broker_id: int = jfield("brokerId", LONG, required=True)
    compressed: bool = jfield("compressed", BOOLEAN, default=False)
    body_crc32: int | None = jfield("bodyCrc32", INT, default=0)


@dataclass(frozen=True, slots=True)
class RegisterBrokerResponseHeader(CommandHeader):
    """REGISTER_BROKER answer: the master's HA and broker addresses (slaves)."""

    ha_server_addr: str | None = jfield("haServerAddr", STRING)
    master_addr: str | None = jfield("masterAddr", STRING)


@dataclass(frozen=True, slots=True)
class UnRegisterBrokerRequestHeader(CommandHeader):
    broker_name: str = jfield("brokerName", STRING, required=True)
    broker_addr: str = jfield("brokerAddr", STRING, required=True)
    cluster_name: str = jfield("clusterName", STRING, required=True)
    broker_id: int = jfield("brokerId", LONG, required=True)


@dataclass(frozen=True, slots=True)
class GetRouteInfoRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)


@dataclass(frozen=True, slots=True)
class WipeWritePermOfBrokerRequestHeader(CommandHeader):
    broker_name: str = jfield("brokerName", STRING, required=True)


@dataclass(frozen=True, slots=True)
class WipeWritePermOfBrokerResponseHeader(CommandHeader):
    wipe_topic_count: int = jfield("wipeTopicCount", INT, required=True)


@dataclass(frozen=True, slots=True)
class DeleteTopicInNamesrvRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetTopicsByClusterRequestHeader(CommandHeader):
    cluster: str = jfield("cluster", STRING, required=True)


@dataclass(frozen=True, slots=True)
class RegisterOrderTopicRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    order_topic_string: str = jfield("orderTopicString", STRING, required=True)


__all__ = [
    "DeleteKVConfigRequestHeader",
    "DeleteTopicInNamesrvRequestHeader",
    "GetKVConfigRequestHeader",
    "GetKVConfigResponseHeader",
    "GetKVListByNamespaceRequestHeader",
    "GetRouteInfoRequestHeader",
    "GetTopicsByClusterRequestHeader",
    "PutKVConfigRequestHeader",
    "QueryDataVersionRequestHeader",
    "QueryDataVersionResponseHeader",
    "RegisterBrokerRequestHeader",
    "RegisterBrokerResponseHeader",
    "RegisterOrderTopicRequestHeader",
    "UnRegisterBrokerRequestHeader",
    "WipeWritePermOfBrokerRequestHeader",
    "WipeWritePermOfBrokerResponseHeader",
]
