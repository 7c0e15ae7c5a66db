"""What producers and consumers share (Java's ``MQClientInstance``): the client
id, one :class:`~pyrocket.remoting.RemotingClient`, the NameServer and broker
request APIs over it, the topic route cache and the broker address table
built from it, and the heartbeats.

A :class:`ClientInstance` is an async context manager owning a nursery: the
remoting client's connections, the route refresh (every
``poll_name_server_interval`` seconds, Java's 30 s) and the heartbeat (every
``heartbeat_interval`` seconds, Java's 30 s) live there. Each
:class:`~pyrocket.client.producer.Producer` and
:class:`~pyrocket.client.consumer.PushConsumer` owns its own instance (Java
shares one per JVM and instance name); the owner tells it which producer
groups and consumer data to announce, and which topics to keep routes for.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

import trio
from trio_util import periodic

from pyrocket.acl.signing import SessionCredentials
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.namesrv_api import NameServerAPI
from pyrocket.client.signing import signer
from pyrocket.errors import PyrocketError, ResponseError
from pyrocket.protocol.bodies.client import (
    ConsumerData,
    HeartbeatData,
    MessageQueue,
    ProducerData,
)
from pyrocket.protocol.bodies.route import MASTER_ID, TopicRouteData
from pyrocket.protocol.bodies.topic import PERM_READ, PERM_WRITE
from pyrocket.remoting import ClientConfig, RemotingClient
from pyrocket.remoting.tls import TlsSettings

log = logging.getLogger("pyrocket.client")

#: MixAll.CLIENT_INNER_PRODUCER_GROUP: every Java client instance announces it.
CLIENT_INNER_PRODUCER_GROUP = "CLIENT_INNER_PRODUCER"
#: MixAll.DEFAULT_PRODUCER_GROUP.
DEFAULT_PRODUCER_GROUP = "DEFAULT_PRODUCER"
#: MixAll.AUTO_CREATE_TOPIC_KEY_TOPIC: the topic whose route stands in for a
#: topic the NameServer does not know yet (the broker then creates it).
AUTO_CREATE_TOPIC_KEY_TOPIC = "TBW102"
#: MixAll.RETRY_GROUP_TOPIC_PREFIX.
RETRY_GROUP_TOPIC_PREFIX = "%RETRY%"


class ClientError(PyrocketError):
    """A client-side failure that is not one answer's code: no route for a
    topic, no broker address, every send attempt failed (Java's
    ``MQClientException``). ``__cause__`` holds the last underlying error;
    ``code`` is the broker's answer code when that error was one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@functools.lru_cache(maxsize=1)
def local_ip() -> str:
    """The address this host is most likely reached at (an IPv4 address, as
    Java's ``RemotingUtil.getLocalAddress`` prefers), else 127.0.0.1.

    Found once per process: the fallback is a host-name lookup, which may
    block, and every client built after the first reuses the answer."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            # connect() on UDP sends nothing; it only picks the source address.
            probe.connect(("192.0.2.1", 9))
            address = str(probe.getsockname()[0])
            if not address.startswith("0."):
                return address
    except OSError:
        pass
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def default_instance_name() -> str:
    """A name unique to this client object: the pid (Java's
    ``changeInstanceNameToPID``) and a nanosecond stamp, because here every
    producer and consumer has its own instance, and two in one process must
    not share a client id."""
    return f"{os.getpid()}#{time.monotonic_ns()}"


def publish_queues(topic: str, route: TopicRouteData) -> list[MessageQueue]:
    """The queues a producer may send to (``topicRouteData2TopicPublishInfo``):
    per broker name in name order, the writable queues of brokers whose master
    is registered. An ``orderTopicConf`` (``"brokerA:4;brokerB:4"``) overrides."""
    if route.order_topic_conf:
        queues: list[MessageQueue] = []
        for item in route.order_topic_conf.split(";"):
            name, _, count = item.partition(":")
            if name and count.strip().isdigit():
                queues.extend(MessageQueue(topic, name, i) for i in range(int(count)))
        return queues
    masters = {
        data.broker_name
        for data in route.broker_datas or ()
        if data.broker_name is not None and data.master_addr() is not None
    }
    queues = []
    for queue_data in sorted(route.queue_datas or (), key=lambda q: q.broker_name or ""):
        if queue_data.perm & PERM_WRITE and queue_data.broker_name in masters:
            queues.extend(
                MessageQueue(topic, queue_data.broker_name, i)
                for i in range(queue_data.write_queue_nums)
            )
    return queues


def subscribe_queues(topic: str, route: TopicRouteData) -> list[MessageQueue]:
    """The queues a consumer may read (``topicRouteData2TopicSubscribeInfo``):
    the readable queues of every broker name in the route, sorted."""
    queues = [
        MessageQueue(topic, queue_data.broker_name, i)
        for queue_data in route.queue_datas or ()
        if queue_data.perm & PERM_READ
        for i in range(queue_data.read_queue_nums)
    ]
    return sorted(queues, key=queue_sort_key)


def queue_sort_key(queue: MessageQueue) -> tuple[str, str, int]:
    """``MessageQueue.compareTo``: topic, broker name, queue id."""
    return (queue.topic or "", queue.broker_name or "", queue.queue_id)


class ClientInstance:
    """One client's connections, routes and heartbeats.

    ``producer_groups`` and ``consumer_data`` are callables the owner supplies:
    they are read at every heartbeat. ``topics`` names the topics whose routes
    the periodic refresh keeps current; ``on_route(topic, route)`` hears of
    every route fetched.
    """

    def __init__(
        self,
        namesrv_addresses: Sequence[str],
        *,
        instance_name: str | None = None,
        client_ip: str | None = None,
        timeout: float = 3.0,
        poll_name_server_interval: float = 30.0,
        heartbeat_interval: float = 30.0,
        producer_groups: Callable[[], Iterable[str]] = tuple,
        consumer_data: Callable[[], Iterable[ConsumerData]] = tuple,
        topics: Callable[[], Iterable[str]] = tuple,
        on_route: Callable[[str, TopicRouteData], None] | None = None,
        tls: TlsSettings | None = None,
        credentials: SessionCredentials | None = None,
    ) -> None:
        if not namesrv_addresses:
            raise ClientError("no NameServer address given")
        self.client_ip = client_ip or local_ip()
        self.instance_name = instance_name or default_instance_name()
        #: ``ip@instanceName`` (``buildMQClientId``).
        self.client_id = f"{self.client_ip}@{self.instance_name}"
        self.timeout = timeout
        self.poll_name_server_interval = poll_name_server_interval
        self.heartbeat_interval = heartbeat_interval
        self._producer_groups = producer_groups
        self._consumer_data = consumer_data
        self._topics = topics
        self._on_route = on_route
        self.remoting = RemotingClient(
            ClientConfig(tls=tls), namesrv_addresses=namesrv_addresses, rpc_hook=signer(credentials)
        )
        self.namesrv = NameServerAPI(self.remoting, timeout)
        self.brokers = BrokerAPI(self.remoting, timeout)
        #: Routes by topic, as last fetched.
        self.routes: dict[str, TopicRouteData] = {}
        #: Broker addresses by broker name, then broker id.
        self.broker_addrs: dict[str, dict[int, str]] = {}
        self._nursery: trio.Nursery | None = None
        self._stack: AsyncExitStack | None = None
        self._random = random.Random()
        self._new_broker = trio.Event()

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        await stack.enter_async_context(self.remoting)
        self._nursery = await stack.enter_async_context(trio.open_nursery())
        self._stack = stack
        self._nursery.start_soon(self._refresh_routes_forever)
        self._nursery.start_soon(self._heartbeat_forever)
        return self

    async def close_after_failed_start(self, exc: BaseException) -> None:
        """Close the instance after a consumer's start raised ``exc``. An
        Exception (a refused subscription, say) is kept out of the nursery,
        so it surfaces as itself rather than inside its exception group; a
        cancellation or KeyboardInterrupt is passed on."""
        if isinstance(exc, Exception):
            await self.__aexit__(None, None, None)
        else:
            await self.__aexit__(type(exc), exc, exc.__traceback__)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._nursery is not None and self._stack is not None
        # As a Java instance shuts its inner producer down: unregister it.
        with trio.CancelScope(shield=True), trio.move_on_after(self.timeout):
            await self.unregister(producer_group=CLIENT_INNER_PRODUCER_GROUP)
        self._nursery.cancel_scope.cancel()
        self._nursery = None
        stack, self._stack = self._stack, None
        return await stack.__aexit__(exc_type, exc, traceback)

    @property
    def nursery(self) -> trio.Nursery:
        """The instance's nursery, for its owner's background tasks."""
        if self._nursery is None:
            raise RuntimeError("the client instance is not running")
        return self._nursery

    # ------------------------------------------------------------------
    # Routes

    async def update_route(self, topic: str) -> TopicRouteData | None:
        """Fetch ``topic``'s route and record it and its brokers' addresses.
        Returns None when the NameServer does not know the topic
        (TOPIC_NOT_EXIST) or cannot be reached (logged)."""
        try:
            route = await self.namesrv.get_route_info(topic)
        except ResponseError as exc:
            log.debug("no route for topic %s: %s", topic, exc)
            return None
        except PyrocketError as exc:
            log.warning("route query for topic %s failed: %s", topic, exc)
            return None
        self.record_route(topic, route)
        return route

    def record_route(self, topic: str, route: TopicRouteData) -> None:
        """Remember ``route`` for ``topic`` and its brokers' addresses, and
        tell the owner."""
        self.routes[topic] = route
        for data in route.broker_datas or ():
            if data.broker_name is not None and data.broker_addrs:
                known = self.broker_addrs.get(data.broker_name, {})
                if set(data.broker_addrs.values()) - set(known.values()):
                    self._new_broker.set()
                self.broker_addrs[data.broker_name] = dict(data.broker_addrs)
        if self._on_route is not None:
            self._on_route(topic, route)

    def master_addr(self, broker_name: str) -> str | None:
        """The master's address of ``broker_name``, if known."""
        return self.broker_addrs.get(broker_name, {}).get(MASTER_ID)

    def subscribe_addr(self, broker_name: str, broker_id: int) -> tuple[str, bool] | None:
        """``findBrokerAddressInSubscribe``: the address of ``broker_id`` of
        ``broker_name``, else that of its lowest broker id (the first entry
        of Java's table, so a consumer pointed at a master that is gone
        reads from a slave), and whether that broker is a slave. None when
        no broker of that name is known."""
        addrs = self.broker_addrs.get(broker_name)
        if not addrs:
            return None
        addr = addrs.get(broker_id)
        if addr is not None:
            return addr, broker_id != MASTER_ID
        first = min(addrs)
        return addrs[first], first != MASTER_ID

    def admin_addr(self, broker_name: str) -> str | None:
        """``findBrokerAddressInAdmin``: the master of ``broker_name``, else
        its lowest-numbered slave (where consumer offsets are committed and
        queried, so they still work while the master is gone)."""
        addrs = self.broker_addrs.get(broker_name)
        if not addrs:
            return None
        return addrs[min(addrs)]

    def any_broker_addr(self, topic: str) -> str | None:
        """``findBrokerAddrByTopic``: the master (else any broker) of a random
        broker name in ``topic``'s route."""
        route = self.routes.get(topic)
        datas = [d for d in (route.broker_datas if route else None) or () if d.broker_addrs]
        if not datas:
            return None
        data = self._random.choice(datas)
        addrs = data.broker_addrs or {}
        return addrs.get(MASTER_ID) or self._random.choice(list(addrs.values()))

    async def _refresh_routes_forever(self) -> None:
        async for _ in periodic(self.poll_name_server_interval):
            for topic in set(self._topics()):
                await self.update_route(topic)

    # ------------------------------------------------------------------
    # Heartbeats

    def heartbeat_data(self) -> HeartbeatData:
        """HEART_BEAT's body: this client's producer groups, Java's inner
        producer group (every Java client instance has it), and its consumer
        groups."""
        # Java's set is ordered by identity hashes; a capture shows the inner
        # group first, and so it is here.
        groups = list(dict.fromkeys([CLIENT_INNER_PRODUCER_GROUP, *self._producer_groups()]))
        return HeartbeatData(
            client_id=self.client_id,
            producer_data_set=tuple(ProducerData(group) for group in groups),
            consumer_data_set=tuple(self._consumer_data()),
        )

    async def heartbeat_all(self) -> int:
        """Send a heartbeat to every known broker (only masters when there is
        no consumer, as Java does). Returns how many brokers answered SUCCESS;
        failures are logged."""
        data = self.heartbeat_data()
        only_masters = not data.consumer_data_set
        answered = 0
        for name, addrs in list(self.broker_addrs.items()):
            for broker_id, addr in list(addrs.items()):
                if only_masters and broker_id != MASTER_ID:
                    continue
                try:
                    await self.brokers.heartbeat(addr, data, self.timeout)
                    answered += 1
                except PyrocketError as exc:
                    log.warning("heartbeat to %s (%s) failed: %s", name, addr, exc)
        return answered

    async def _heartbeat_forever(self) -> None:
        # Java beats first a second after start, then every 30 s; a broker
        # newly seen in a route is greeted at once instead, so that it knows
        # the client before its first pull.
        while True:
            with trio.move_on_after(self.heartbeat_interval):
                await self._new_broker.wait()
            self._new_broker = trio.Event()
            await self.heartbeat_all()

    async def unregister(
        self, *, producer_group: str | None = None, consumer_group: str | None = None
    ) -> None:
        """UNREGISTER_CLIENT for one group at every known broker (failures logged)."""
        for addrs in list(self.broker_addrs.values()):
            for addr in list(addrs.values()):
                try:
                    await self.brokers.unregister_client(
                        addr,
                        self.client_id,
                        producer_group=producer_group,
                        consumer_group=consumer_group,
                        timeout=self.timeout,
                    )
                except PyrocketError as exc:
                    log.warning("unregistering from %s failed: %s", addr, exc)


__all__ = [
    "AUTO_CREATE_TOPIC_KEY_TOPIC",
    "CLIENT_INNER_PRODUCER_GROUP",
    "DEFAULT_PRODUCER_GROUP",
    "RETRY_GROUP_TOPIC_PREFIX",
    "ClientError",
    "ClientInstance",
    "default_instance_name",
    "local_ip",
    "publish_queues",
    "queue_sort_key",
    "subscribe_queues",
]
