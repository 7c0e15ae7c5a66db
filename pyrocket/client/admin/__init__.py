"""mqadmin's logic as a Python API (Java's ``DefaultMQAdminExt`` and the
walks of its ``CommandUtil``): clusters and their brokers, topics created,
updated and deleted across a cluster, broker status and configuration,
subscription groups, client connections and a consumer group's running
information, KV and NameServer configuration, and (from
:class:`~pyrocket.client.admin.ops.OpsAdmin`) offset resets, consumer status,
consume and broker statistics::

    from pyrocket.client import Admin

    async with Admin(["127.0.0.1:9876"]) as admin:
        for broker in await admin.cluster_brokers():
            print(broker.cluster, broker.broker_name, broker.addr)
        await admin.update_topic_in_cluster("DefaultCluster", TopicConfig("T", 8, 8))
        await admin.delete_topic("T", "DefaultCluster")

Where mqadmin walks Java collections (the HashMap a cluster table decodes
into, the HashSet of a cluster's broker addresses) the results come in the
same order, so ``pyrocket admin`` (:mod:`pyrocket.cli.admin_namesrv`,
:mod:`pyrocket.cli.admin_broker`, :mod:`pyrocket.cli.admin_group`), which
only parses arguments and prints, prints what mqadmin prints.

Failures raise :class:`AdminError` (:class:`UnknownClusterError` for a
cluster the NameServer does not know), ResponseError with a server's code
and remark, or the remoting errors. Calls across several brokers either stop
at the first failure (and say so) or return one :class:`Outcome` per broker.
The pure walks over a :class:`~pyrocket.protocol.bodies.ClusterInfo` live in
:mod:`pyrocket.client.admin.walks`, the analysis of a consumer group's
running information in :mod:`pyrocket.client.admin.analysis`, the result
types in :mod:`pyrocket.client.admin.results`, the message lookups by key and
id in :mod:`pyrocket.client.admin.messages`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Final, Self, TypeVar

from pyrocket.acl.signing import SessionCredentials
from pyrocket.client.admin.analysis import process_queue_warnings, subscriptions_agree
from pyrocket.client.admin.messages import MessageQueries, NoMessageError, QueryResult
from pyrocket.client.admin.ops import OpsAdmin
from pyrocket.client.admin.results import BrokerTotals, Outcome, RunningInfoReport, TopicUpdate
from pyrocket.client.admin.walks import (
    CLUSTER_ERROR,
    DLQ_GROUP_TOPIC_PREFIX,
    RETRY_GROUP_TOPIC_PREFIX,
    AdminError,
    ClusterBroker,
    UnknownClusterError,
    all_addrs,
    broker_name_of,
    broker_names,
    cluster_brokers,
    cluster_of,
    is_group_topic,
    master_addrs,
    master_slaves,
    queue_order,
    select_broker_addr,
)
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.namesrv_api import NAMESPACE_ORDER_TOPIC_CONFIG, NameServerAPI
from pyrocket.client.ops_api import BrokerOpsAPI
from pyrocket.client.signing import signer
from pyrocket.errors import PyrocketError, ResponseError
from pyrocket.protocol.bodies.admin import (
    ConsumerConnection,
    ConsumerRunningInfo,
    ProducerConnection,
    SubscriptionGroupConfig,
    TopicOffset,
)
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.properties import Properties
from pyrocket.protocol.bodies.route import MASTER_ID, ClusterInfo, TopicRouteData
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.javahash import JavaHashMap, JavaHashSet, hashmap_order
from pyrocket.remoting import ClientConfig, RemotingClient
from pyrocket.remoting.tls import TlsSettings

#: DefaultMQAdminExt's timeout (seconds).
TIMEOUT: Final = 5.0

T = TypeVar("T")

#: Told the address of each broker a cluster-wide call is done with.
OnBroker = Callable[[str], object]


class NoNameServerError(AdminError):
    """A call needs a NameServer and none was named."""


_PUT_TOTALS: Final = (
    "msgPutTotalYesterdayMorning",
    "msgPutTotalTodayMorning",
    "msgPutTotalTodayNow",
)
_GET_TOTALS: Final = (
    "msgGetTotalYesterdayMorning",
    "msgGetTotalTodayMorning",
    "msgGetTotalTodayNow",
)


def namesrv_addresses_from_env() -> list[str]:
    """``$NAMESRV_ADDR``'s NameServers (``;``-separated), as Java's client reads it."""
    return split_addresses(os.environ.get("NAMESRV_ADDR", ""))


def split_addresses(text: str) -> list[str]:
    """``"a:9876;b:9876"`` -> its addresses, blanks dropped."""
    return [a.strip() for a in text.split(";") if a.strip()]


class Admin(OpsAdmin, MessageQueries):
    """mqadmin's operations over one RemotingClient, an async context manager.

    ``namesrv_addresses`` names the NameServers: a list, or a
    ``"host:port;host:port"`` string (None: ``$NAMESRV_ADDR``).
    A call that needs a NameServer when none was named raises
    :class:`NoNameServerError` (``no name server address: <namesrv_hint>``).
    ``namesrv`` and ``brokers`` give the single requests underneath.
    """

    def __init__(
        self,
        namesrv_addresses: str | Sequence[str] | None = None,
        *,
        timeout: float = TIMEOUT,
        namesrv_hint: str = "pass namesrv_addresses or set NAMESRV_ADDR",
        tls: TlsSettings | None = None,
        credentials: SessionCredentials | None = None,
    ) -> None:
        if namesrv_addresses is None:
            namesrv_addresses = namesrv_addresses_from_env()
        elif isinstance(namesrv_addresses, str):
            namesrv_addresses = split_addresses(namesrv_addresses)
        self._namesrv_addresses = [a.strip() for a in namesrv_addresses if a.strip()]
        self._namesrv_hint = namesrv_hint
        self.client = RemotingClient(
            ClientConfig(tls=tls),
            namesrv_addresses=self._namesrv_addresses,
            rpc_hook=signer(credentials),
        )
        self.brokers = BrokerAPI(self.client, timeout)
        self.ops = BrokerOpsAPI(self.client, timeout)
        self._namesrv = NameServerAPI(self.client, timeout)

    async def __aenter__(self) -> Self:
        await self.client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return await self.client.__aexit__(exc_type, exc, traceback)

    @property
    def namesrv_addresses(self) -> list[str]:
        """The NameServers named; raises NoNameServerError when there are none."""
        if not self._namesrv_addresses:
            raise NoNameServerError(f"no name server address: {self._namesrv_hint}")
        return list(self._namesrv_addresses)

    @property
    def namesrv(self) -> NameServerAPI:
        """Requests to the NameServers (``addr=None``: the client's pick of
        them); raises NoNameServerError when none was named."""
        self.namesrv_addresses  # noqa: B018 (the check)
        return self._namesrv

    async def _on_every_namesrv(self, call: Callable[[str], Awaitable[object]]) -> list[str]:
        # mqadmin's putKVConfigValue: a refusal does not stop the others; the
        # last one is raised once every NameServer was asked.
        failure: ResponseError | None = None
        addresses = self.namesrv_addresses
        for addr in addresses:
            try:
                await call(addr)
            except ResponseError as exc:
                failure = exc
        if failure is not None:
            raise failure
        return addresses

    # ------------------------------------------------------------------
    # Clusters

    async def cluster_info(self) -> ClusterInfo:
        """GET_BROKER_CLUSTER_INFO from the NameServers."""
        return await self.namesrv.get_cluster_info()

    async def cluster_brokers(self) -> list[ClusterBroker]:
        """Every registered broker, in clusterList's order."""
        return cluster_brokers(await self.cluster_info())

    async def master_addrs(self, cluster: str) -> list[str]:
        """A cluster's master addresses (``fetchMasterAddrByClusterName``);
        raises UnknownClusterError."""
        return _known(master_addrs(await self.cluster_info(), cluster))

    async def all_addrs(self, cluster: str) -> list[str]:
        """A cluster's master and slave addresses
        (``fetchMasterAndSlaveAddrByClusterName``); raises UnknownClusterError."""
        return _known(all_addrs(await self.cluster_info(), cluster))

    async def broker_runtime_info(self, addr: str) -> dict[str, str]:
        """GET_BROKER_RUNTIME_INFO: a broker's runtime figures."""
        return await self.brokers.get_broker_runtime_info(addr)

    async def broker_totals(self, addr: str) -> BrokerTotals:
        """A broker's put and got counts of yesterday and today; raises
        AdminError when its figures lack them."""
        stats = await self.broker_runtime_info(addr)
        try:
            put = [int(stats[key]) for key in _PUT_TOTALS]
            got = [int(stats[key]) for key in _GET_TOTALS]
        except (KeyError, ValueError) as exc:
            raise AdminError(f"{addr} gave no message totals: {exc}") from exc
        return BrokerTotals(put[1] - put[0], got[1] - got[0], put[2] - put[1], got[2] - got[1])

    async def cluster_runtime_info(self, cluster: str) -> list[Outcome[dict[str, str]]]:
        """Runtime figures of every broker of a cluster, masters and slaves;
        raises UnknownClusterError."""
        results: list[Outcome[dict[str, str]]] = []
        for addr in await self.all_addrs(cluster):
            try:
                results.append(Outcome(addr, await self.broker_runtime_info(addr)))
            except PyrocketError as exc:
                results.append(Outcome(addr, error=exc))
        return results

    # ------------------------------------------------------------------
    # Broker configuration

    async def broker_config(self, addr: str) -> dict[str, str]:
        """A broker's configuration, in the order of the ``java.util.Properties``
        mqadmin reloads it into."""
        entries, _ = await self.brokers.get_broker_config(addr)
        return dict(Properties.java_ordered(entries.items()).entries)

    async def cluster_masters_and_slaves(self, cluster: str) -> list[tuple[str, list[str]]]:
        """``(master, slaves)`` of each broker of a cluster, as getBrokerConfig
        walks them; raises UnknownClusterError."""
        return _known(master_slaves(await self.cluster_info(), cluster))

    async def update_broker_config(self, addr: str, properties: Mapping[str, str]) -> None:
        """UPDATE_BROKER_CONFIG on one broker."""
        await self.brokers.update_broker_config(addr, properties)

    async def update_cluster_config(
        self, cluster: str, properties: Mapping[str, str]
    ) -> list[Outcome[None]]:
        """UPDATE_BROKER_CONFIG on every master of a cluster, going on past
        failures; raises UnknownClusterError."""
        return await self._each_master(
            cluster, lambda addr: self.brokers.update_broker_config(addr, properties)
        )

    async def _each_master(
        self, cluster: str, call: Callable[[str], Awaitable[None]]
    ) -> list[Outcome[None]]:
        results: list[Outcome[None]] = []
        for addr in await self.master_addrs(cluster):
            try:
                await call(addr)
            except PyrocketError as exc:
                results.append(Outcome(addr, error=exc))
            else:
                results.append(Outcome(addr))
        return results

    # ------------------------------------------------------------------
    # Topics

    async def topic_route(self, topic: str) -> TopicRouteData:
        """GET_ROUTEINFO_BY_TOPIC; an unknown topic raises ResponseError."""
        return await self.namesrv.get_route_info(topic)

    async def topic_list(self) -> list[str]:
        """Every topic the NameServers know."""
        return list((await self.namesrv.get_all_topic_list()).topic_list)

    async def topic_consumer_groups(self, route: TopicRouteData, topic: str) -> list[str]:
        """The consumer groups that consume ``topic``, asked of a master (else
        any broker) of the first broker of its route (topicList ``-c``)."""
        for data in route.broker_datas or ():
            addrs = data.broker_addrs or {}
            addr = addrs.get(MASTER_ID) or next(iter(addrs.values()), None)
            if addr is not None:
                return await self.brokers.query_topic_consume_by_who(addr, topic)
            break
        return []

    async def topic_clusters(self, topic: str) -> list[str]:
        """The clusters of a topic's first broker (topicClusterList); raises
        AdminError for a topic on no broker."""
        info = await self.cluster_info()
        route = await self.topic_route(topic)
        datas = route.broker_datas or ()
        if not datas:
            raise AdminError(f"topic {topic} has no broker")
        name = datas[0].broker_name
        clusters: JavaHashSet[str] = JavaHashSet()
        table = info.cluster_addr_table or {}
        for cluster in hashmap_order(table):
            if name in table[cluster]:
                clusters.add(cluster)
        return list(clusters)

    async def update_topic_on_broker(self, addr: str, config: TopicConfig) -> TopicUpdate:
        """Create or update a topic on one broker; an ordered topic also gets
        this broker's ``name:writeQueueNums`` merged into the NameServers'
        order configuration."""
        await self.brokers.create_topic(addr, config)
        if not config.order:
            return TopicUpdate((addr,))
        name = broker_name_of(await self.cluster_info(), addr)
        order_conf = f"{name}:{config.write_queue_nums}"
        await self._merge_order_conf(config.topic_name or "", order_conf)
        return TopicUpdate((addr,), order_conf)

    async def update_topic_in_cluster(
        self, cluster: str, config: TopicConfig, on_broker: OnBroker | None = None
    ) -> TopicUpdate:
        """Create or update a topic on every master of a cluster (stopping at
        the first failure; ``on_broker`` is told each one done); an ordered
        topic's order configuration names every broker of the cluster.
        Raises UnknownClusterError."""
        info = await self.cluster_info()
        addrs = _known(master_addrs(info, cluster))
        for addr in addrs:
            await self.brokers.create_topic(addr, config)
            if on_broker is not None:
                on_broker(addr)
        if not config.order:
            return TopicUpdate(tuple(addrs))
        names = broker_names(info, cluster) or []
        if not names:
            raise AdminError(CLUSTER_ERROR)
        order_conf = ";".join(f"{name}:{config.write_queue_nums}" for name in names)
        await self.put_order_conf(config.topic_name or "", order_conf)
        return TopicUpdate(tuple(addrs), order_conf)

    async def _merge_order_conf(self, topic: str, value: str) -> None:
        # createOrUpdateOrderConf(isCluster=false): keep the other brokers'
        # entries the NameServer already has for the topic.
        try:
            old = await self.namesrv.get_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, topic)
        except ResponseError:
            old = None
        merged: JavaHashMap[str, str] = JavaHashMap()
        if old and old.strip():
            for item in old.split(";"):
                merged[item.split(":")[0]] = item
        merged[value.split(":")[0]] = value
        await self.put_order_conf(topic, ";".join(merged.values()))

    async def put_order_conf(self, topic: str, order_conf: str) -> None:
        """A topic's order configuration on every NameServer."""
        await self.put_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, topic, order_conf)

    async def delete_topic_in_cluster(self, topic: str, cluster: str) -> list[str]:
        """DELETE_TOPIC_IN_BROKER on every broker of a cluster, masters and
        slaves (stopping at the first failure); raises UnknownClusterError."""
        addrs = await self.all_addrs(cluster)
        for addr in addrs:
            await self.brokers.delete_topic_in_broker(addr, topic)
        return addrs

    async def delete_topic_in_namesrvs(self, topic: str) -> list[str]:
        """DELETE_TOPIC_IN_NAMESRV on every NameServer (in the order of the
        HashSet mqadmin copies them into)."""
        addrs = list(JavaHashSet.copy_of(self.namesrv_addresses))
        for addr in addrs:
            await self.namesrv.delete_topic_in_namesrv(topic, addr)
        return addrs

    async def delete_topic(self, topic: str, cluster: str) -> None:
        """deleteTopic: from every broker of the cluster, then from every
        NameServer."""
        await self.delete_topic_in_cluster(topic, cluster)
        await self.delete_topic_in_namesrvs(topic)

    async def topic_status(self, topic: str) -> dict[MessageQueue, TopicOffset]:
        """Min/max offsets and last store time of each queue of a topic, from
        a master of each broker of its route, sorted by queue; raises
        AdminError when no broker has any."""
        route = await self.topic_route(topic)
        offsets: dict[MessageQueue, TopicOffset] = {}
        for data in route.broker_datas or ():
            addrs = data.broker_addrs or {}
            addr = addrs.get(MASTER_ID) or next(iter(addrs.values()), None)
            if addr is not None:
                table = await self.brokers.get_topic_stats_info(addr, topic)
                offsets.update(table.offset_table)
        if not offsets:
            raise AdminError("Not found the topic stats info")
        return {queue: offsets[queue] for queue in sorted(offsets, key=queue_order)}

    # ------------------------------------------------------------------
    # Subscription groups

    async def update_sub_group_on_broker(self, addr: str, config: SubscriptionGroupConfig) -> None:
        """UPDATE_AND_CREATE_SUBSCRIPTIONGROUP on one broker."""
        await self.brokers.create_subscription_group(addr, config)

    async def update_sub_group_in_cluster(
        self, cluster: str, config: SubscriptionGroupConfig
    ) -> list[Outcome[None]]:
        """The same on every master of a cluster, going on past failures;
        raises UnknownClusterError."""
        return await self._each_master(
            cluster, lambda addr: self.brokers.create_subscription_group(addr, config)
        )

    async def delete_sub_group_on_broker(self, addr: str, group: str) -> None:
        """DELETE_SUBSCRIPTIONGROUP on one broker."""
        await self.brokers.delete_subscription_group(addr, group)

    async def delete_sub_group_in_cluster(
        self, cluster: str, group: str, on_broker: OnBroker | None = None
    ) -> list[str]:
        """DELETE_SUBSCRIPTIONGROUP on every master of a cluster (stopping at
        the first failure; ``on_broker`` is told each one done). The group's
        retry and dead-letter topics are left to :meth:`delete_topic`.
        Raises UnknownClusterError."""
        addrs = await self.master_addrs(cluster)
        for addr in addrs:
            await self.brokers.delete_subscription_group(addr, group)
            if on_broker is not None:
                on_broker(addr)
        return addrs

    # ------------------------------------------------------------------
    # Client connections and running information

    async def _route_addr(self, topic: str) -> str | None:
        # DefaultMQAdminExtImpl asks one broker of the route, picked at random.
        brokers = list((await self.topic_route(topic)).broker_datas or ())
        if not brokers:
            return None
        addr = select_broker_addr(random.choice(brokers))
        return addr if addr and addr.strip() else None

    async def _group_addr(self, group: str) -> str:
        addr = await self._route_addr(RETRY_GROUP_TOPIC_PREFIX + group)
        if addr is None:
            raise AdminError("Not found the consumer group connection")
        return addr

    async def consumer_connection(self, group: str) -> ConsumerConnection:
        """A consumer group's clients, subscriptions and settings, from one
        broker of the group's retry topic; raises AdminError when it has none."""
        connection = await self.brokers.get_consumer_connection_list(
            await self._group_addr(group), group
        )
        if not connection.connection_set:
            raise AdminError("Not found the consumer group connection")
        return connection

    async def producer_connection(self, group: str, topic: str) -> ProducerConnection:
        """A producer group's clients, from one broker of ``topic``'s route;
        raises AdminError when it has none."""
        addr = await self._route_addr(topic)
        if addr is None:
            raise AdminError("Not found the producer group connection")
        connection = await self.brokers.get_producer_connection_list(addr, group)
        if not connection.connection_set:
            raise AdminError("Not found the producer group connection")
        return connection

    async def consumer_running_info(
        self, group: str, client_id: str, jstack: bool = False
    ) -> ConsumerRunningInfo | None:
        """What one client of a consumer group reports of itself, asked
        through the first broker of the group's retry topic (None if it has
        no broker address)."""
        route = await self.topic_route(RETRY_GROUP_TOPIC_PREFIX + group)
        for data in route.broker_datas or ():
            addr = select_broker_addr(data)
            if addr is not None:
                return await self.brokers.get_consumer_running_info(addr, group, client_id, jstack)
        return None

    async def consumer_running_infos(
        self, group: str, jstack: bool = False
    ) -> list[RunningInfoReport]:
        """:meth:`consumer_running_info` of every client connected in the
        group, going on past failures; raises AdminError when no broker
        routes the group."""
        connection = await self.brokers.get_consumer_connection_list(
            await self._group_addr(group), group
        )
        reports: list[RunningInfoReport] = []
        for conn in connection.connection_set:
            client_id = conn.client_id or "null"
            try:
                info = await self.consumer_running_info(group, client_id, jstack)
            except PyrocketError as exc:
                reports.append(RunningInfoReport(client_id, conn.version, error=exc))
            else:
                reports.append(RunningInfoReport(client_id, conn.version, info))
        return reports

    # ------------------------------------------------------------------
    # NameServers: KV and configuration

    async def put_kv_config(self, namespace: str, key: str, value: str) -> None:
        """PUT_KV_CONFIG on every NameServer (all are asked; the last refusal
        is raised)."""
        await self._on_every_namesrv(
            lambda addr: self.namesrv.put_kv_config(namespace, key, value, addr)
        )

    async def delete_kv_config(self, namespace: str, key: str) -> None:
        """DELETE_KV_CONFIG on every NameServer."""
        await self._on_every_namesrv(
            lambda addr: self.namesrv.delete_kv_config(namespace, key, addr)
        )

    async def namesrv_configs(self) -> dict[str, dict[str, str]]:
        """Every NameServer's configuration, in the order mqadmin lists them
        (a ``HashMap(4)`` of addresses, each a reloaded Properties)."""
        configs: dict[str, Mapping[str, str]] = {}
        for addr in self.namesrv_addresses:
            configs[addr] = await self.namesrv.get_namesrv_config(addr)
        return {
            addr: dict(Properties.java_ordered(configs[addr].items()).entries)
            for addr in hashmap_order(configs, 4)
        }

    async def update_namesrv_config(self, properties: Mapping[str, str]) -> list[str]:
        """UPDATE_NAMESRV_CONFIG on every NameServer; returns their addresses."""
        return await self._on_every_namesrv(
            lambda addr: self.namesrv.update_namesrv_config(properties, addr)
        )

    async def wipe_write_perm(self, broker_name: str) -> list[Outcome[int]]:
        """WIPE_WRITE_PERM_OF_BROKER on every NameServer: how many topics
        each cleared, going on past failures."""
        results: list[Outcome[int]] = []
        for addr in self.namesrv_addresses:
            try:
                count = await self.namesrv.wipe_write_perm_of_broker(broker_name, addr)
            except PyrocketError as exc:
                results.append(Outcome(addr, error=exc))
            else:
                results.append(Outcome(addr, count))
        return results


def _known(value: T | None) -> T:
    if value is None:
        raise UnknownClusterError(CLUSTER_ERROR)
    return value


__all__ = [
    "CLUSTER_ERROR",
    "DLQ_GROUP_TOPIC_PREFIX",
    "RETRY_GROUP_TOPIC_PREFIX",
    "TIMEOUT",
    "Admin",
    "AdminError",
    "BrokerTotals",
    "ClusterBroker",
    "NoMessageError",
    "NoNameServerError",
    "Outcome",
    "QueryResult",
    "RunningInfoReport",
    "TopicUpdate",
    "UnknownClusterError",
    "all_addrs",
    "broker_name_of",
    "broker_names",
    "cluster_brokers",
    "cluster_of",
    "is_group_topic",
    "master_addrs",
    "master_slaves",
    "namesrv_addresses_from_env",
    "process_queue_warnings",
    "select_broker_addr",
    "split_addresses",
    "subscriptions_agree",
]
