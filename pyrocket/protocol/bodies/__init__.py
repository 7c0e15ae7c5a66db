"""Typed command bodies, written byte for byte as Java 4.7.0 writes them.

JSON bodies are frozen dataclasses (:class:`Bean` subclasses) with
``encode() -> bytes`` and ``decode(data) -> instance``, plus ``to_json`` /
``from_json`` for nesting. Every decoder returns a value or raises
:class:`~pyrocket.errors.ProtocolError`. Maps keep the order they were read or
given in; build them in Java's order with :mod:`pyrocket.protocol.javahash`.

Modules: :mod:`.topic` (topic configs, registration, KV tables, topic lists),
:mod:`.route` (routes, cluster info), :mod:`.client` (heartbeats, queue locks),
:mod:`.admin` (statistics, slave replication tables), :mod:`.properties`
(``java.util.Properties`` text), :mod:`.register` (REGISTER_BROKER bodies as
the NameServer reads them, with the per-broker reuse of the last decoding).
"""

from pyrocket.protocol.bodies._bean import Bean
from pyrocket.protocol.bodies.admin import (
    Connection,
    ConsumerConnection,
    ConsumerOffsetSerializeWrapper,
    ConsumeStats,
    DelayOffsetSerializeWrapper,
    GroupList,
    OffsetWrapper,
    ProducerConnection,
    SubscriptionGroupConfig,
    SubscriptionGroupWrapper,
    TopicOffset,
    TopicStatsTable,
)
from pyrocket.protocol.bodies.client import (
    SUB_ALL,
    CheckClientRequestBody,
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    GetConsumerListByGroupResponseBody,
    HeartbeatData,
    LockBatchRequestBody,
    LockBatchResponseBody,
    MessageModel,
    MessageQueue,
    ProducerData,
    SubscriptionData,
    UnlockBatchRequestBody,
)
from pyrocket.protocol.bodies.properties import (
    Properties,
    parse_properties,
    properties_to_string,
)
from pyrocket.protocol.bodies.route import (
    MASTER_ID,
    BrokerData,
    ClusterInfo,
    QueueData,
    TopicRouteData,
)
from pyrocket.protocol.bodies.topic import (
    MAX_INFLATED_SIZE,
    PERM_INHERIT,
    PERM_PRIORITY,
    PERM_READ,
    PERM_WRITE,
    DataVersion,
    KVTable,
    RegisterBrokerBody,
    RegisterBrokerResult,
    TopicConfig,
    TopicConfigSerializeWrapper,
    TopicFilterType,
    TopicList,
)

__all__ = [
    "MASTER_ID",
    "MAX_INFLATED_SIZE",
    "PERM_INHERIT",
    "PERM_PRIORITY",
    "PERM_READ",
    "PERM_WRITE",
    "SUB_ALL",
    "Bean",
    "BrokerData",
    "CheckClientRequestBody",
    "ClusterInfo",
    "Connection",
    "ConsumeFromWhere",
    "ConsumeStats",
    "ConsumeType",
    "ConsumerConnection",
    "ConsumerData",
    "ConsumerOffsetSerializeWrapper",
    "DataVersion",
    "DelayOffsetSerializeWrapper",
    "GetConsumerListByGroupResponseBody",
    "GroupList",
    "HeartbeatData",
    "KVTable",
    "LockBatchRequestBody",
    "LockBatchResponseBody",
    "MessageModel",
    "MessageQueue",
    "OffsetWrapper",
    "ProducerConnection",
    "ProducerData",
    "Properties",
    "QueueData",
    "RegisterBrokerBody",
    "RegisterBrokerResult",
    "SubscriptionData",
    "SubscriptionGroupConfig",
    "SubscriptionGroupWrapper",
    "TopicConfig",
    "TopicConfigSerializeWrapper",
    "TopicFilterType",
    "TopicList",
    "TopicOffset",
    "TopicRouteData",
    "TopicStatsTable",
    "UnlockBatchRequestBody",
    "parse_properties",
    "properties_to_string",
]
