"""The broker app (Java's ``BrokerController``), the composition root: the
:class:`Broker` adds the remoting servers and the extension points to the
broker's parts (:mod:`pyrocket.broker.parts`), :func:`install_processors`
builds the processors, handing each the narrow view of the broker it reads
(:mod:`pyrocket.broker.processors.ports`), and registers them, and
:func:`serve_broker` runs it all in one nursery. Nothing under
:mod:`pyrocket.broker` imports this module back.

What runs, in start order: the message store (recovered first), the remoting
server on ``listenPort`` and the fast ("VIP") server on ``listenPort - 2``
answering the same processors, the HA listener on ``haListenPort``
(:mod:`pyrocket.broker.ha`; on a slave also the client replicating the
master and the periodic copy of its tables, :mod:`pyrocket.broker.slave_sync`),
put/get statistics, ``/metrics`` over HTTP when
``metricsPort`` is set (:mod:`pyrocket.broker.metrics`), the registration with every
NameServer (the first round before the broker reports ready), and the message path's
services (held pulls, client housekeeping, offsets, the transaction check). Cancelling
:func:`serve_broker` is the shutdown: periodic work stops, the broker
unregisters from every NameServer while it still answers requests, then the
servers close and the store flushes and closes.

Extension points for the message path (send, pull, heartbeats, offsets):

- ``broker.register_processor(code, processor, fast=True)`` adds a processor to
  both servers (``fast=False``: main server only, as Java does for
  PULL_MESSAGE); processors take ``(conn, request)``, see
  :mod:`pyrocket.remoting`. Codes without a processor are answered
  REQUEST_CODE_NOT_SUPPORTED.
- ``broker.add_connection_listener(listener)``: connect/close/idle events of
  both servers (client housekeeping).
- ``broker.add_service(fn)``: ``async def fn(broker)`` started after the
  servers are up and cancelled at shutdown before the unregistration.
- ``broker.add_loader(fn)``: ``fn()`` (blocking) reads a table at start-up,
  next to topics.json; ``broker.add_shutdown_hook(fn)``: ``await fn()`` after
  the servers have closed, before the store closes (final persistence).
- ``broker.settings`` (current settings; replaced by UPDATE_BROKER_CONFIG, so
  read it at use time), ``broker.store``, ``broker.topic_config_manager``,
  ``broker.subscription_group_manager``, ``broker.registration``,
  ``broker.stats``.
- ``broker.put_message`` / ``put_messages`` / ``get_message``: the store calls
  with the statistics GET_BROKER_RUNTIME_INFO reports.
- ``broker.metrics_source``: a :class:`~pyrocket.broker.metrics.BrokerMetricsSource`
  ``/metrics`` publishes (set it in an installer; default: the broker's
  statistics and tables).
- ``serve_broker(..., install=[fn])``: ``fn(broker)`` runs before the servers
  start, next to the built-in :func:`install_processors` (which installs the
  message path, :mod:`pyrocket.broker.dataplane`, as ``broker.data_plane``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

import trio

from pyrocket.aclserve import AclGuard, acl_file
from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.dataplane import DataPlane
from pyrocket.broker.ha import HAClient, HAService
from pyrocket.broker.metrics import BrokerMetricsSource, serve_broker_metrics
from pyrocket.broker.outer_api import UNREGISTER_TIMEOUT
from pyrocket.broker.parts import BROKER_VERSION_DESC, BrokerParts
from pyrocket.broker.processors.acl_admin import AclAdminProcessor
from pyrocket.broker.processors.admin import AdminBrokerProcessor
from pyrocket.broker.processors.common import resolved_ip
from pyrocket.broker.processors.offsets import OffsetAdminProcessor
from pyrocket.broker.processors.ops import OpsAdminProcessor
from pyrocket.broker.registration import RegistrationTiming
from pyrocket.broker.slave_sync import SlaveSynchronize, SlaveSyncTiming
from pyrocket.broker.store.cleanup import disk_used_ratio as default_disk_used_ratio
from pyrocket.broker.store.store import wall_clock_ms
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.remoting import Connection, ConnectionListener, Processor, RemotingServer

log = logging.getLogger("pyrocket.broker")

#: Requests that change state, applied per connection strictly in arrival
#: order (the connection's ordered lane): Java runs sends on one thread
#: (sendMessageThreadPoolNums=1), and a client expects its offset commits,
#: heartbeats and admin updates to land in the order it sent them.
ORDERED_REQUEST_CODES: frozenset[int] = frozenset(
    {
        RequestCode.SEND_MESSAGE,
        RequestCode.SEND_MESSAGE_V2,
        RequestCode.SEND_BATCH_MESSAGE,
        RequestCode.SEND_REPLY_MESSAGE,
        RequestCode.SEND_REPLY_MESSAGE_V2,
        RequestCode.CONSUMER_SEND_MSG_BACK,
        RequestCode.END_TRANSACTION,
        RequestCode.UPDATE_CONSUMER_OFFSET,
        RequestCode.HEART_BEAT,
        RequestCode.UNREGISTER_CLIENT,
        RequestCode.LOCK_BATCH_MQ,
        RequestCode.UNLOCK_BATCH_MQ,
        RequestCode.UPDATE_AND_CREATE_TOPIC,
        RequestCode.DELETE_TOPIC_IN_BROKER,
        RequestCode.UPDATE_BROKER_CONFIG,
        RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
        RequestCode.DELETE_SUBSCRIPTIONGROUP,
        RequestCode.RESET_CONSUMER_OFFSET_IN_BROKER,
        RequestCode.CLEAN_EXPIRED_CONSUMEQUEUE,
        RequestCode.CLEAN_UNUSED_TOPIC,
        RequestCode.INVOKE_BROKER_TO_RESET_OFFSET,
        RequestCode.CLONE_GROUP_OFFSET,
        RequestCode.RESUME_CHECK_HALF_MESSAGE,
        RequestCode.UPDATE_AND_CREATE_ACL_CONFIG,
        RequestCode.DELETE_ACL_CONFIG,
        RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG,
    }
)

#: Java's thread pool of each request code, by its runtime-table entry.
_POOL_OF: dict[int, str] = {
    RequestCode.SEND_MESSAGE: "sendThreadPoolQueueSize",
    RequestCode.SEND_MESSAGE_V2: "sendThreadPoolQueueSize",
    RequestCode.SEND_BATCH_MESSAGE: "sendThreadPoolQueueSize",
    RequestCode.CONSUMER_SEND_MSG_BACK: "sendThreadPoolQueueSize",
    RequestCode.PULL_MESSAGE: "pullThreadPoolQueueSize",
    RequestCode.QUERY_MESSAGE: "queryThreadPoolQueueSize",
    RequestCode.VIEW_MESSAGE_BY_ID: "queryThreadPoolQueueSize",
    RequestCode.END_TRANSACTION: "EndTransactionQueueSize",
}

Service = Callable[["Broker"], Awaitable[None]]
Installer = Callable[["Broker"], None]


class BrokerConnectionListener(ConnectionListener):
    """Hands each connection event of both servers to every added listener."""

    def __init__(self) -> None:
        self.listeners: list[ConnectionListener] = []

    async def on_connect(self, conn: Connection) -> None:
        for listener in list(self.listeners):
            await listener.on_connect(conn)

    async def on_close(self, conn: Connection) -> None:
        for listener in list(self.listeners):
            await listener.on_close(conn)

    async def on_exception(self, conn: Connection) -> None:
        for listener in list(self.listeners):
            await listener.on_exception(conn)

    async def on_idle(self, conn: Connection) -> None:
        for listener in list(self.listeners):
            await listener.on_idle(conn)


class Broker(BrokerParts):
    """A broker: its parts (:class:`~pyrocket.broker.parts.BrokerParts`),
    the two remoting servers answering the processors registered on them,
    and the extension points :func:`serve_broker` runs. Build one, then run
    it with :func:`serve_broker`.

    ``now_ms`` is the broker clock (store timestamps, data versions,
    statistics); ``disk_used_ratio`` reports a partition's used fraction.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        timing: RegistrationTiming | None = None,
        now_ms: Callable[[], int] = wall_clock_ms,
        disk_used_ratio: Callable[[str], float] = default_disk_used_ratio,
        total_physical_memory: int | None = None,
        slave_sync: SlaveSyncTiming | None = None,
    ) -> None:
        super().__init__(
            settings,
            timing=timing,
            now_ms=now_ms,
            disk_used_ratio=disk_used_ratio,
            total_physical_memory=total_physical_memory,
        )
        self.connection_listener = BrokerConnectionListener()
        wire = settings.serialize_type
        self.server = RemotingServer(
            dataclasses.replace(settings.server.server_config(), serialize_type=wire),
            listener=self.connection_listener,
        )
        fast_config = settings.server.server_config(listen_port=max(0, settings.fast_listen_port))
        self.fast_server = RemotingServer(
            dataclasses.replace(fast_config, serialize_type=wire),
            listener=self.connection_listener,
        )
        self.services: list[Service] = []
        self._loaders: list[Callable[[], None]] = []
        self._shutdown_hooks: list[Callable[[], Awaitable[None]]] = []
        #: The message path (set by :func:`install_processors`).
        self.data_plane: DataPlane | None = None
        #: The fast server's bound port (known once serving).
        self.fast_listen_port: int | None = None
        #: Replication: the HA listener (every role, as Java) and, on a
        #: slave, the client that follows the master.
        self.ha_service = HAService(self.store, tls=settings.server.tls)
        self.store.replication = self.ha_service
        self.ha_client: HAClient | None = None
        #: On a slave, the periodic copy of the master's tables.
        self.slave_sync = SlaveSynchronize(
            self.client,
            master_addr=lambda: self.registration.master_addr.value,
            broker_addr=lambda: self.broker_addr,
            topics=self.topic_config_manager,
            groups=self.subscription_group_manager,
            offsets=lambda: (
                None if self.data_plane is None else self.data_plane.consumer_offset_manager
            ),
            delay_offset_path=self.store.schedule.path,
            timing=slave_sync,
        )
        #: The bound port of ``/metrics`` (None: not served).
        self.metrics_port: int | None = None
        #: Where ``/metrics`` reads the broker's figures (None: the broker's
        #: statistics, :class:`~pyrocket.broker.metrics.BrokerStatsSource`).
        self.metrics_source: BrokerMetricsSource | None = None
        #: The running ACL (``aclEnable=true``), set by :meth:`enable_acl`.
        self.acl: AclGuard | None = None

    def enable_acl(self, guard: AclGuard) -> None:
        """Check every request of both servers with ``guard`` and keep its
        file watched while serving."""
        self.acl = guard
        self.server.processors.set_guard(guard)
        self.fast_server.processors.set_guard(guard)

        async def watch(_: Broker) -> None:
            await guard.watch()

        self.add_service(watch)

    # -- runtime information ------------------------------------------------

    def runtime_info(self) -> JavaHashMap[str, str]:
        """GET_BROKER_RUNTIME_INFO's table, the thread-pool queue sizes
        counted as the requests of each kind read from clients and not
        started yet (waiting for their connection's ordered turn or for a
        worker), on both servers, and the head wait times as the longest
        wait among them."""
        table = super().runtime_info()
        waiting = dict.fromkeys(_POOL_OF.values(), 0)
        oldest: dict[str, float] = {}
        for server in (self.server, self.fast_server):
            for conn in server.connections:
                for request, since in conn.waiting_requests():
                    pool = _POOL_OF.get(request.code)
                    if pool is not None:
                        waiting[pool] += 1
                        oldest[pool] = min(since, oldest.get(pool, since))
        for key, count in waiting.items():
            table[key] = str(count)
        # Java's headSlowTimeMills: how long the longest-waiting request of
        # each pool has waited.
        now = trio.current_time()
        for name in ("send", "pull", "query"):
            head = oldest.get(f"{name}ThreadPoolQueueSize")
            waited = 0 if head is None else int((now - head) * 1000)
            table[f"{name}ThreadPoolQueueHeadWaitTimeMills"] = str(waited)
        return table

    # -- extension points ---------------------------------------------------

    def register_processor(self, code: int, processor: Processor, *, fast: bool = True) -> None:
        """Answer ``code`` with ``processor`` on the main server and, unless
        ``fast`` is False, on the fast server too. Codes in
        :data:`ORDERED_REQUEST_CODES` are applied in arrival order per connection."""
        ordered = int(code) in ORDERED_REQUEST_CODES
        self.server.register_processor(code, processor, ordered=ordered)
        if fast:
            self.fast_server.register_processor(code, processor, ordered=ordered)

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        self.connection_listener.listeners.append(listener)

    def add_service(self, service: Service) -> None:
        """Run ``await service(broker)`` while the broker serves."""
        self.services.append(service)

    def add_loader(self, loader: Callable[[], None]) -> None:
        """Call ``loader()`` (blocking, in a worker thread) in :meth:`load`."""
        self._loaders.append(loader)

    def add_shutdown_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        """``await hook()`` at shutdown, after the servers closed."""
        self._shutdown_hooks.append(hook)

    def load(self) -> None:
        """Read topics.json, subscriptionGroup.json and the tables added with
        :meth:`add_loader` (blocking). Raises ConfigError naming a damaged file."""
        super().load()
        for loader in self._loaders:
            loader()

    # -- background work -------------------------------------------------------

    def _ha_master_address(self) -> str | None:
        """``haMasterAddress`` when set, else what the NameServer answered."""
        configured = self.settings.store.ha_master_address
        if configured and len(configured) >= 6:
            return configured
        learned: str | None = self.registration.ha_master_addr.value
        return learned

    def _bound(self, port: int, fast_port: int, ha_port: int) -> None:
        settings = self.settings
        server = dataclasses.replace(settings.server, listen_port=port)
        store = dataclasses.replace(settings.store, ha_listen_port=ha_port)
        self.settings = dataclasses.replace(settings, server=server, store=store)
        self.fast_listen_port = fast_port

    async def _run(
        self,
        host: str | None,
        stop: trio.Event,
        task_status: trio.TaskStatus[Broker],
        unregister_within: float = UNREGISTER_TIMEOUT + 1,
    ) -> None:
        settings = self.settings
        async with trio.open_nursery() as store_nursery:
            await store_nursery.start(self.store.run)
            try:
                async with self.client, trio.open_nursery() as servers:
                    try:
                        port = await servers.start(
                            self.server.serve, host, settings.server.listen_port
                        )
                        fast = settings.fast_listen_port if settings.server.listen_port else 0
                        fast_port = await servers.start(self.fast_server.serve, host, fast)
                        # listenPort 0 (any port) cannot mean listenPort + 1.
                        ha = settings.store.ha_listen_port if settings.server.listen_port else 0
                        ha_port = await servers.start(self.ha_service.serve, host, ha)
                        self._bound(port, fast_port, ha_port)
                        async with trio.open_nursery() as tasks:
                            await tasks.start(self.stats.run)
                            await tasks.start(self.stats_manager.run)
                            await tasks.start(self.topic_config_manager.writer.run)
                            await tasks.start(self.subscription_group_manager.writer.run)
                            await tasks.start(self.registration.run)
                            if self.is_slave:
                                # TLS to the master only with haUseTLS: a Java
                                # master's HA port is plain TCP.
                                self.ha_client = HAClient(
                                    self.store,
                                    self._ha_master_address,
                                    tls=settings.server.tls if settings.ha_use_tls else None,
                                )
                                tasks.start_soon(self.ha_client.run)
                                await tasks.start(self.slave_sync.run)
                            else:
                                tasks.start_soon(self.ha_service.log_fall_behind)
                            if settings.metrics_port >= 0 and self.data_plane is not None:
                                metrics = functools.partial(
                                    serve_broker_metrics, source=self.metrics_source
                                )
                                self.metrics_port = await tasks.start(
                                    metrics, self, self.data_plane, host, settings.metrics_port
                                )
                            for service in self.services:
                                tasks.start_soon(service, self)
                            log.info(
                                "The broker[%s, %s] boot success. serializeType=%s and name "
                                "server is %s (fast port %d)",
                                self.settings.broker.broker_name,
                                self.broker_addr,
                                self.settings.serialize_type.name,
                                self.settings.broker.namesrv_addr,
                                fast_port,
                            )
                            task_status.started(self)
                            await stop.wait()
                            tasks.cancel_scope.cancel()
                        with trio.move_on_after(unregister_within) as unregistering:
                            await self.registration.unregister_all()
                        if unregistering.cancelled_caught:
                            log.warning(
                                "unregistering from the NameServers took over %gs; going on",
                                unregister_within,
                            )
                    finally:
                        servers.cancel_scope.cancel()
            finally:
                for hook in self._shutdown_hooks:
                    try:
                        await hook()
                    except Exception:
                        log.exception("shutdown hook failed")
                store_nursery.cancel_scope.cancel()
        log.info("broker %s shut down", self.broker_addr)


#: Seconds a broker's shutdown may take once it has been cancelled.
DEFAULT_SHUTDOWN_GRACE = 10.0


def install_processors(broker: Broker) -> None:
    """The processors a broker answers with: the control plane's admin
    subset (reading the message path's client tables) and the message path,
    kept as ``broker.data_plane``."""
    plane = DataPlane(broker)
    admin = AdminBrokerProcessor(broker, plane)
    admin.install()
    OffsetAdminProcessor(broker, plane).install()
    OpsAdminProcessor(broker, plane, admin.call_consumer).install()
    AclAdminProcessor(broker).install()
    plane.install()
    broker.data_plane = plane


async def serve_broker(
    settings: BrokerSettings,
    *,
    host: str | None = "0.0.0.0",
    timing: RegistrationTiming | None = None,
    now_ms: Callable[[], int] = wall_clock_ms,
    disk_used_ratio: Callable[[str], float] = default_disk_used_ratio,
    install: Sequence[Installer] = (),
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
    slave_sync: SlaveSyncTiming | None = None,
    task_status: trio.TaskStatus[Broker] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Run a broker until cancelled; report the running :class:`Broker` (its
    ports bound, registered once with every NameServer) through
    ``task_status``.

    Cancellation shuts down in order: background work, UNREGISTER_BROKER to
    every NameServer, servers, store. The shutdown runs shielded from the
    cancellation but has ``shutdown_grace`` seconds in all; unregistering gets
    at most half of them, so that the store is still flushed when a
    NameServer does not answer. Past the grace the shutdown itself is
    cancelled. Raises ConfigError for a damaged
    topics.json / subscriptionGroup.json or, with ``aclEnable=true``, a
    missing or bad ``plain_acl.yml``; StoreError when the store cannot
    start, OSError when a port cannot be bound.
    """
    broker = Broker(
        settings,
        timing=timing,
        now_ms=now_ms,
        disk_used_ratio=disk_used_ratio,
        slave_sync=slave_sync,
    )
    if settings.broker.acl_enable:
        # Fails closed: no broker without a good plain_acl.yml.
        path = acl_file(settings.broker.rocketmq_home)
        broker.enable_acl(await trio.to_thread.run_sync(AclGuard.load, path))
    install_processors(broker)
    for installer in install:
        installer(broker)
    await trio.to_thread.run_sync(broker.load)
    # The store host of every message: a host name is looked up now, once,
    # rather than by the first send on the event loop.
    await trio.to_thread.run_sync(resolved_ip, settings.broker.broker_ip1)
    stop = trio.Event()
    # The shutdown sequence (unregister, close, flush) must not be cut short
    # by the cancellation that starts it, so the broker runs shielded and
    # stops when the watcher is cancelled; from then on the shield has a
    # deadline, so a shutdown that hangs still ends.
    shielded = trio.CancelScope(shield=True)

    async def watch_for_cancel() -> None:
        try:
            await trio.sleep_forever()
        finally:
            stop.set()
            shielded.deadline = trio.current_time() + shutdown_grace

    unregister_within = min(UNREGISTER_TIMEOUT + 1, shutdown_grace / 2)
    async with trio.open_nursery() as guard:
        guard.start_soon(watch_for_cancel)
        with shielded:
            await broker._run(host, stop, task_status, unregister_within)
        if shielded.cancelled_caught:
            log.warning("broker shutdown did not finish within %gs; stopped", shutdown_grace)
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = [
    "BROKER_VERSION_DESC",
    "DEFAULT_SHUTDOWN_GRACE",
    "Broker",
    "BrokerConnectionListener",
    "BrokerParts",
    "Installer",
    "Service",
    "install_processors",
    "serve_broker",
]
