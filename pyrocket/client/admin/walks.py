"""The walks mqadmin makes over a NameServer's
:class:`~pyrocket.protocol.bodies.ClusterInfo` (Java's ``CommandUtil`` and
``ClusterListSubCommand``), pure functions in Java's iteration order: which
brokers a cluster has, their masters and slaves, a broker's name by address.

A cluster the table does not know gives None here; the :class:`Admin` calls
that fetch the table turn that into :class:`UnknownClusterError`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.route import MASTER_ID, BrokerData, ClusterInfo, TopicRouteData
from pyrocket.protocol.javahash import JavaHashMap, JavaHashSet, hashmap_order

#: MixAll's prefixes of a consumer group's retry and dead-letter topics.
RETRY_GROUP_TOPIC_PREFIX: Final = "%RETRY%"
DLQ_GROUP_TOPIC_PREFIX: Final = "%DLQ%"

#: CommandUtil's complaint about an unknown cluster.
CLUSTER_ERROR: Final = (
    "Make sure the specified clusterName exists or the name server connected to is correct."
)


class AdminError(PyrocketError):
    """An admin operation that cannot go on (mqadmin throws with this reason)."""


class UnknownClusterError(AdminError):
    """The NameServers know no such cluster (or no broker by that address)."""


@dataclass(frozen=True, slots=True)
class ClusterBroker:
    """One registered broker: its cluster, name, id (0 the master) and address."""

    cluster: str
    broker_name: str
    broker_id: int
    addr: str


def is_group_topic(topic: str) -> bool:
    """Whether ``topic`` is a consumer group's retry or dead-letter topic."""
    return topic.startswith((RETRY_GROUP_TOPIC_PREFIX, DLQ_GROUP_TOPIC_PREFIX))


def cluster_brokers(info: ClusterInfo) -> list[ClusterBroker]:
    """Every broker, in clusterList's order: clusters as the decoded
    ``HashMap`` (default capacity) walks them, broker names sorted (a
    ``TreeSet``), ids as the broker's address ``HashMap`` walks them. Names
    without broker data are skipped."""
    table = info.cluster_addr_table or {}
    brokers = info.broker_addr_table or {}
    result: list[ClusterBroker] = []
    for cluster in hashmap_order(table):
        for name in sorted(n for n in table[cluster] if n is not None):
            data = brokers.get(name)
            if data is None:
                continue
            addrs = data.broker_addrs or {}
            for broker_id in hashmap_order(addrs):
                result.append(ClusterBroker(cluster, name, broker_id, addrs[broker_id]))
    return result


def broker_names(info: ClusterInfo, cluster: str) -> list[str] | None:
    """A cluster's broker names as mqadmin holds them (a HashSet), or None."""
    names = (info.cluster_addr_table or {}).get(cluster)
    if names is None:
        return None
    # fastjson reads the JSON array into a new HashSet, element by element.
    held: JavaHashSet[str] = JavaHashSet()
    for name in names:
        if name is not None:
            held.add(name)
    return list(held)


def master_addrs(info: ClusterInfo, cluster: str) -> list[str] | None:
    """``fetchMasterAddrByClusterName``: the masters' addresses, or None for
    an unknown cluster."""
    names = broker_names(info, cluster)
    if names is None:
        return None
    result: JavaHashSet[str] = JavaHashSet()
    for name in names:
        data = (info.broker_addr_table or {}).get(name)
        addr = data.master_addr() if data is not None else None
        if addr is not None:
            result.add(addr)
    return list(result)


def all_addrs(info: ClusterInfo, cluster: str) -> list[str] | None:
    """``fetchMasterAndSlaveAddrByClusterName``: every broker address, or
    None for an unknown cluster."""
    names = broker_names(info, cluster)
    if names is None:
        return None
    result: JavaHashSet[str] = JavaHashSet()
    for name in names:
        data = (info.broker_addr_table or {}).get(name)
        if data is not None:
            for addr in (data.broker_addrs or {}).values():
                result.add(addr)
    return list(result)


def master_slaves(info: ClusterInfo, cluster: str) -> list[tuple[str, list[str]]] | None:
    """``(master, slaves)`` per broker of a cluster, in the order of the
    ``HashMap(4)`` getBrokerConfig keeps them in (a broker without a master
    is keyed ``"None"``), or None for an unknown cluster."""
    names = broker_names(info, cluster)
    if names is None:
        return None
    table: JavaHashMap[str, list[str]] = JavaHashMap(4)
    for name in names:
        data = (info.broker_addr_table or {}).get(name)
        if data is None or data.broker_addrs is None:
            continue
        master = data.broker_addrs.get(MASTER_ID)
        table[str(master)] = [
            a for i, a in data.broker_addrs.items() if i != MASTER_ID and a is not None
        ]
    return list(table.items())


def broker_name_of(info: ClusterInfo, addr: str) -> str:
    """``fetchBrokerNameByAddr``; raises UnknownClusterError."""
    for name, data in (info.broker_addr_table or {}).items():
        if addr in (data.broker_addrs or {}).values():
            return name
    raise UnknownClusterError(CLUSTER_ERROR)


def cluster_of(route: TopicRouteData, info: ClusterInfo) -> str | None:
    """The first cluster (in the cluster table's order) holding the first
    broker of ``route``, or None."""
    datas = route.broker_datas or ()
    if not datas:
        return None
    name = datas[0].broker_name
    table = info.cluster_addr_table or {}
    for cluster in hashmap_order(table):
        if name in table[cluster]:
            return cluster
    return None


def select_broker_addr(data: BrokerData) -> str | None:
    """``BrokerData.selectBrokerAddr``: the master, else any slave."""
    addrs = data.broker_addrs or {}
    master = addrs.get(MASTER_ID)
    if master is not None:
        return master
    return random.choice(list(addrs.values())) if addrs else None


def queue_order(queue: MessageQueue) -> tuple[bytes, bytes, int]:
    """A sort key ordering queues as ``MessageQueue.compareTo`` does."""
    # MessageQueue.compareTo compares Java strings: UTF-16 code units.
    return (
        (queue.topic or "").encode("utf-16-be"),
        (queue.broker_name or "").encode("utf-16-be"),
        queue.queue_id,
    )


__all__ = [
    "CLUSTER_ERROR",
    "DLQ_GROUP_TOPIC_PREFIX",
    "RETRY_GROUP_TOPIC_PREFIX",
    "AdminError",
    "ClusterBroker",
    "UnknownClusterError",
    "all_addrs",
    "broker_name_of",
    "broker_names",
    "cluster_brokers",
    "cluster_of",
    "is_group_topic",
    "master_addrs",
    "master_slaves",
    "queue_order",
    "select_broker_addr",
]
