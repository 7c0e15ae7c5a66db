"""The NameServer's route state: Java's RouteInfoManager, as the tables of
:mod:`pyrocket.namesrv.routetables` plus the answers read from them.

Every body the NameServer sends is built from the tables in the iteration
order of the Java collection they model, which is what makes the bytes equal
to Java's; the encoding itself belongs to the body types
(:class:`~pyrocket.protocol.bodies.TopicRouteData`,
:class:`~pyrocket.protocol.bodies.ClusterInfo`), which build it from plain
rows. Route bodies are cached per topic in two shared halves and
invalidated by every change that could alter them; the cache never changes a
byte of what is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from pyrocket.namesrv.routedata import QueueList, TopicEntry
from pyrocket.namesrv.routetables import (
    BROKER_CHANNEL_EXPIRED_MS,
    BrokerLiveInfo,
    DroppedBroker,
    QueueNums,
    RegisterResult,
    RouteTables,
    TopicQueues,
)
from pyrocket.protocol.bodies import (
    BrokerData,
    ClusterInfo,
    QueueData,
    TopicList,
    TopicRouteData,
)
from pyrocket.protocol.bodies.route import BrokerRow
from pyrocket.protocol.javahash import (
    JavaHashMap,
    JavaHashSet,
    concurrent_hashmap_order,
    spread,
    string_hash,
)

#: TopicSysFlag bits.
FLAG_UNIT: Final = 1
FLAG_UNIT_SUB: Final = 2

# Shared route halves kept at most (the cache starts over beyond).
_ROUTE_PARTS: Final = 8192

# Below this many names a HashSet may have grown early (a long bucket in a
# small table), so its order is worked out by the full model.
_PLAIN_GROWTH_MIN: Final = 49


@dataclass(frozen=True, slots=True)
class TopicQueueConfig:
    """What a broker's TopicConfig contributes to the route of its topic."""

    topic: str
    read_queue_nums: int = 16
    write_queue_nums: int = 16
    perm: int = 6
    topic_sys_flag: int = 0

    @property
    def queue_nums(self) -> QueueNums:
        return (self.read_queue_nums, self.write_queue_nums, self.perm, self.topic_sys_flag)


def topic_queues(configs: Iterable[TopicQueueConfig]) -> dict[str, QueueNums]:
    """A :data:`TopicQueues` table from topic configs (a later one of the
    same name wins, as in the Java map the body decodes into)."""
    return {config.topic: config.queue_nums for config in configs}


def registration_order(topics: TopicQueues) -> list[str]:
    """The order Java applies a registered topic table in: that of the
    decoded ConcurrentHashMap, which decides which new topic enters a shared
    bucket of the topic table first. Pure, so it can run in a thread."""
    return concurrent_hashmap_order(topics)


class RouteInfoManager(RouteTables):
    """Route state of one NameServer and its answers. Not thread-safe; no I/O."""

    def __init__(self) -> None:
        super().__init__()
        self._cluster_body: tuple[int, bytes] | None = None
        # Route halves: broker part by broker names (this generation), queue
        # part by queue list.
        self._prefixes: dict[tuple[str, ...], bytes | None] = {}
        self._prefix_generation = 0
        self._suffixes: dict[QueueList, bytes] = {}

    # ------------------------------------------------------------------
    # Queries

    def route_body(self, topic: str, order_topic_conf: str | None = None) -> bytes | None:
        """GET_ROUTEINFO_BY_TOPIC's body for ``topic`` (Java's
        ``pickupTopicRouteData(topic).encode()``), or None when the topic has
        no route. ``order_topic_conf`` goes in ``orderTopicConf``."""
        entry = self._topics.get(topic)
        if entry is None:
            return None
        prefix = entry.prefix
        if prefix is None or entry.generation != self._generation:
            prefix = self._route_prefix(tuple(name for name, _ in entry.queues))
            if prefix is None:
                return None
            entry.prefix = prefix
            entry.generation = self._generation
        suffix = entry.suffix
        if suffix is None:
            suffix = entry.suffix = self._route_suffix(entry.queues)
        if order_topic_conf is None:
            # The common case, without a call: what join_encoded gives for None.
            return prefix + suffix
        return TopicRouteData.join_encoded(prefix, suffix, order_topic_conf)

    def _route_prefix(self, names: tuple[str, ...]) -> bytes | None:
        """The route's head (brokers and filter servers) for topics held by
        these broker names (in queue order); None if none of them is known."""
        if self._prefix_generation != self._generation or len(self._prefixes) > _ROUTE_PARTS:
            self._prefixes.clear()
            self._prefix_generation = self._generation
        if names in self._prefixes:
            return self._prefixes[names]
        unique: JavaHashSet[str] = JavaHashSet()
        for name in names:
            unique.add(name)
        broker_datas: list[BrokerRow] = []
        filter_servers: JavaHashMap[str, list[str] | None] = JavaHashMap()
        for name in unique:
            broker = self._brokers.get(name)
            if broker is None:
                continue
            clone = JavaHashMap.copy_of(broker.addrs)
            broker_datas.append((broker.cluster, broker.name, clone))
            for addr in clone.values():
                filter_servers[addr] = self._filters.get(addr)
        prefix = None
        if broker_datas:
            prefix = TopicRouteData.encode_head(broker_datas, filter_servers)
        self._prefixes[names] = prefix
        return prefix

    def _route_suffix(self, queues: QueueList) -> bytes:
        suffix = self._suffixes.get(queues)
        if suffix is None:
            if len(self._suffixes) > _ROUTE_PARTS:
                self._suffixes.clear()
            suffix = TopicRouteData.encode_tail(queues)
            self._suffixes[queues] = suffix
        return suffix

    def pickup_topic_route_data(self, topic: str) -> TopicRouteData | None:
        """The route of ``topic`` as a value (what :meth:`route_body` encodes)."""
        body = self.route_body(topic)
        return None if body is None else TopicRouteData.decode(body)

    def queue_datas(self, topic: str) -> list[QueueData]:
        """The queue data of ``topic``, in Java's list order."""
        entry = self._topics.get(topic)
        if entry is None:
            return []
        return [
            QueueData(name, read, write, perm, flag)
            for name, (read, write, perm, flag) in entry.queues
        ]

    def cluster_info_body(self) -> bytes:
        """GET_BROKER_CLUSTER_INFO's body (``getAllClusterInfo``)."""
        cached = self._cluster_body
        if cached is not None and cached[0] == self._generation:
            return cached[1]
        body = ClusterInfo.encode_tables(
            (
                (name, (entry.cluster, entry.name, entry.addrs))
                for name, entry in self._brokers.items()
            ),
            self._clusters.items(),
        )
        self._cluster_body = (self._generation, body)
        return body

    def cluster_info(self) -> ClusterInfo:
        """The cluster map as a value."""
        return ClusterInfo.decode(self.cluster_info_body())

    def broker_data(self, broker_name: str) -> BrokerData | None:
        """The broker address table entry of ``broker_name``."""
        entry = self._brokers.get(broker_name)
        if entry is None:
            return None
        return BrokerData(entry.cluster, entry.name, dict(entry.addrs.items()))

    def _topic_items(self) -> list[tuple[str, TopicEntry]]:
        """The topic table in Java's HashMap iteration order: by bucket, and
        by insertion within a bucket (a HashMap resize keeps that order)."""
        order = self._topic_order
        if order is None:
            mask = max(self._topic_capacity, 1) - 1
            order = sorted(
                self._topics.items(), key=lambda item: spread(string_hash(item[0])) & mask
            )
            self._topic_order = order
        return order

    def topic_names(self) -> list[str]:
        """Every topic, in the topic table's Java iteration order."""
        return [name for name, _ in self._topic_items()]

    def all_topic_list(self) -> TopicList:
        """GET_ALL_TOPIC_LIST_FROM_NAMESERVER's answer."""
        return _topic_list(self._topic_items())

    def topics_by_cluster(self, cluster: str) -> TopicList:
        """GET_TOPICS_BY_CLUSTER's answer; an unknown cluster gives an empty
        list (Java fails inside and answers what it has collected: nothing)."""
        names = self._clusters.get(cluster)
        found: list[tuple[str, TopicEntry]] = []
        if names is not None:
            items = self._topic_items()
            for broker_name in names:
                found.extend(item for item in items if item[1].find(broker_name) is not None)
        return _topic_list(found)

    def system_topic_list(self) -> TopicList:
        """GET_SYSTEM_TOPIC_LIST_FROM_NS's answer: cluster and broker names,
        plus the first broker address found."""
        names: list[str] = []
        for cluster, broker_names in self._clusters.items():
            names.append(cluster)
            names.extend(broker_names)
        broker_addr = None
        for entry in self._brokers.values():
            if len(entry.addrs):
                broker_addr = entry.addrs[next(iter(entry.addrs))]
                break
        return TopicList.collect(names, broker_addr)

    def unit_topic_list(self) -> TopicList:
        """GET_UNIT_TOPIC_LIST's answer."""
        return self._topics_where(lambda flag: bool(flag & FLAG_UNIT))

    def has_unit_sub_topic_list(self) -> TopicList:
        """GET_HAS_UNIT_SUB_TOPIC_LIST's answer."""
        return self._topics_where(lambda flag: bool(flag & FLAG_UNIT_SUB))

    def has_unit_sub_ununit_topic_list(self) -> TopicList:
        """GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST's answer."""
        return self._topics_where(lambda flag: not flag & FLAG_UNIT and bool(flag & FLAG_UNIT_SUB))

    def _topics_where(self, wanted: Callable[[int], bool]) -> TopicList:
        # Java looks at the first queue data of each topic only.
        return _topic_list(item for item in self._topic_items() if wanted(item[1].queues[0][1][3]))

    # ------------------------------------------------------------------
    # Inspection (tests, logs)

    @property
    def live_brokers(self) -> Mapping[str, BrokerLiveInfo]:
        """The broker live table (read-only view, Java order)."""
        return dict(self._live.items())

    @property
    def filter_servers(self) -> Mapping[str, list[str]]:
        return {addr: list(servers) for addr, servers in self._filters.items()}

    def cluster_names(self) -> dict[str, list[str]]:
        """Cluster -> broker names, Java order."""
        return {cluster: list(names) for cluster, names in self._clusters.items()}

    def broker_names(self) -> list[str]:
        return list(self._brokers)

    def __len__(self) -> int:
        """Number of topics."""
        return len(self._topics)

    def __iter__(self) -> Iterator[str]:
        return iter(self.topic_names())


def _topic_list(items: Iterable[tuple[str, TopicEntry]]) -> TopicList:
    """``new TopicList()`` with these topics added in order: the names come
    out in the order of a default-sized Java HashSet."""
    unique = dict(items)
    if len(unique) < _PLAIN_GROWTH_MIN:
        return TopicList.collect(unique)
    capacity = 16
    while len(unique) > capacity * 3 // 4:
        capacity <<= 1
    mask = capacity - 1
    ordered = sorted(unique, key=lambda name: spread(string_hash(name)) & mask)
    return TopicList(tuple(ordered))


__all__ = [
    "BROKER_CHANNEL_EXPIRED_MS",
    "FLAG_UNIT",
    "FLAG_UNIT_SUB",
    "BrokerLiveInfo",
    "DroppedBroker",
    "QueueNums",
    "RegisterResult",
    "RouteInfoManager",
    "TopicQueueConfig",
    "TopicQueues",
    "registration_order",
    "topic_queues",
]
