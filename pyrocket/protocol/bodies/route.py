"""Route bodies the NameServer hands out: a topic's route (GET_ROUTEINFO_BY_TOPIC)
and the cluster map (GET_BROKER_CLUSTER_INFO).

Every map and set in them is written in the order the caller's mapping
iterates; the NameServer keeps its tables in ``JavaHashMap``/``JavaHashSet``
with Java's capacities, so handing them over as they are gives Java's bytes.
Broker ids are ``Long`` keys, written bare (``{0:"127.0.0.1:10911"}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pyrocket.protocol.bodies._bean import INT, LONG, STR, Bean, bean, list_of, map_of, prop

#: MixAll.MASTER_ID: the broker id of a master.
MASTER_ID = 0


@dataclass(frozen=True, slots=True)
class QueueData(Bean):
    """A topic's queues on one broker (by broker name)."""

    broker_name: str | None = prop("brokerName", STR)
    read_queue_nums: int = prop("readQueueNums", INT, default=0)
    write_queue_nums: int = prop("writeQueueNums", INT, default=0)
    perm: int = prop("perm", INT, default=0)
    topic_syn_flag: int = prop("topicSynFlag", INT, default=0)


@dataclass(frozen=True, slots=True)
class BrokerData(Bean):
    """One broker name's addresses by broker id (0 is the master)."""

    cluster: str | None = prop("cluster", STR)
    broker_name: str | None = prop("brokerName", STR)
    broker_addrs: Mapping[int, str] | None = prop("brokerAddrs", map_of(LONG, STR))

    def master_addr(self) -> str | None:
        """The master's address, if the master is registered."""
        return None if self.broker_addrs is None else self.broker_addrs.get(MASTER_ID)


@dataclass(frozen=True, slots=True)
class TopicRouteData(Bean):
    """GET_ROUTEINFO_BY_TOPIC's answer. Java's default instance has every
    field null; the NameServer fills all but ``orderTopicConf``."""

    order_topic_conf: str | None = prop("orderTopicConf", STR)
    queue_datas: tuple[QueueData, ...] | None = prop("queueDatas", list_of(bean(QueueData)))
    broker_datas: tuple[BrokerData, ...] | None = prop("brokerDatas", list_of(bean(BrokerData)))
    filter_server_table: Mapping[str, tuple[str, ...]] | None = prop(
        "filterServerTable", map_of(STR, list_of(STR))
    )


@dataclass(frozen=True, slots=True)
class ClusterInfo(Bean):
    """GET_BROKER_CLUSTER_INFO's answer: brokers by name, broker names by cluster."""

    broker_addr_table: Mapping[str, BrokerData] | None = prop(
        "brokerAddrTable", map_of(STR, bean(BrokerData))
    )
    # A broker that registered without a name leaves null in its cluster's set.
    cluster_addr_table: Mapping[str, tuple[str | None, ...]] | None = prop(
        "clusterAddrTable", map_of(STR, list_of(STR, nullable=True))
    )


__all__ = ["MASTER_ID", "BrokerData", "ClusterInfo", "QueueData", "TopicRouteData"]
