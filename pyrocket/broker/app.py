"""The broker app (Java's ``BrokerController``): one object holding the
broker's parts, and :func:`serve_broker`, which runs them in one nursery.

What runs, in start order: the message store (recovered first), the remoting
server on ``listenPort`` and the fast ("VIP") server on ``listenPort - 2``
answering the same processors, put/get statistics, the registration with every
NameServer (the first round before the broker reports ready), and the
transaction-topic creation Java's check service does. Cancelling
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
- ``serve_broker(..., install=[fn])``: ``fn(broker)`` runs before the servers
  start, next to the built-in :func:`install_processors` (which installs the
  message path, :mod:`pyrocket.broker.dataplane`, as ``broker.data_plane``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

import trio

from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.configuration import (
    BrokerConfiguration,
    UpdatePlan,
    persist_changes,
    plan_update,
)
from pyrocket.broker.outer_api import UNREGISTER_TIMEOUT, BrokerOuterAPI
from pyrocket.broker.processors.common import resolved_ip
from pyrocket.broker.registration import RegistrationService, RegistrationTiming
from pyrocket.broker.stats import StoreStats, human_readable_byte_count
from pyrocket.broker.store import (
    BrokerBatch,
    BrokerMessage,
    BrokerRole,
    GetMessageResult,
    GetMessageStatus,
    MessageFilter,
    MessageStore,
    PutMessageResult,
)
from pyrocket.broker.store.cleanup import disk_used_ratio as default_disk_used_ratio
from pyrocket.broker.store.store import wall_clock_ms
from pyrocket.broker.subscription_group import (
    SubscriptionGroupManager,
    subscription_group_json_path,
)
from pyrocket.broker.topic_config import (
    RMQ_SYS_TRANS_HALF_TOPIC,
    TopicConfigManager,
    topics_json_path,
)
from pyrocket.errors import ConfigError
from pyrocket.logtext import clipped
from pyrocket.protocol.bodies.topic import PERM_READ, PERM_WRITE
from pyrocket.protocol.codes import VERSION_V4_7_0, RequestCode
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.remoting import (
    Connection,
    ConnectionListener,
    Processor,
    RemotingClient,
    RemotingServer,
)

if TYPE_CHECKING:
    from pyrocket.broker.dataplane import DataPlane

log = logging.getLogger("pyrocket.broker")

#: ``MQVersion.getVersionDesc(CURRENT_VERSION)``.
BROKER_VERSION_DESC = "V4_7_0"
#: Integer.MAX_VALUE: what Java reports for buffers when the transient pool is off.
_INT_MAX = (1 << 31) - 1

#: Requests that change state, applied per connection strictly in arrival
#: order (the connection's ordered lane): Java runs sends on one thread
#: (sendMessageThreadPoolNums=1), and a client expects its offset commits,
#: heartbeats and admin updates to land in the order it sent them.
ORDERED_REQUEST_CODES: frozenset[int] = frozenset(
    {
        RequestCode.SEND_MESSAGE,
        RequestCode.SEND_MESSAGE_V2,
        RequestCode.SEND_BATCH_MESSAGE,
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
    }
)

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


class Broker:
    """A broker's parts. Build one, then run it with :func:`serve_broker`.

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
    ) -> None:
        self.settings = settings
        self.now_ms = now_ms
        self._disk_used_ratio = disk_used_ratio
        root = settings.store.store_path_root_dir
        self.store = MessageStore(
            settings.store,
            now_ms=now_ms,
            disk_used_ratio=disk_used_ratio,
            total_physical_memory=total_physical_memory,
        )
        self.topic_config_manager = TopicConfigManager(
            lambda: self.settings.broker, topics_json_path(root), now_ms=now_ms
        )
        self.subscription_group_manager = SubscriptionGroupManager(
            lambda: self.settings.broker, subscription_group_json_path(root), now_ms=now_ms
        )
        self.configuration = BrokerConfiguration(settings)
        self.stats = StoreStats(now_ms)
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
        self.client = RemotingClient(
            dataclasses.replace(settings.client.client_config(), serialize_type=wire)
        )
        self.outer_api = BrokerOuterAPI(self.client, settings.broker.namesrv_addresses)
        self.registration = RegistrationService(
            self.outer_api, self.topic_config_manager, lambda: self.settings, timing=timing
        )
        self.topic_config_manager.on_topic_created = self.registration.trigger_oneway
        self.services: list[Service] = []
        self._loaders: list[Callable[[], None]] = []
        self._shutdown_hooks: list[Callable[[], Awaitable[None]]] = []
        #: The message path (set by :func:`install_processors`).
        self.data_plane: DataPlane | None = None
        self._config_lock = trio.Lock()
        #: The fast server's bound port (known once serving).
        self.fast_listen_port: int | None = None

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

    # -- identity -----------------------------------------------------------

    @property
    def broker_addr(self) -> str:
        """``brokerIP1:listenPort`` (what the NameServers hand out)."""
        return self.settings.broker_addr

    @property
    def listen_port(self) -> int:
        return self.settings.server.listen_port

    @property
    def is_slave(self) -> bool:
        return self.settings.store.broker_role is BrokerRole.SLAVE

    def load(self) -> None:
        """Read topics.json and subscriptionGroup.json (blocking). Raises
        ConfigError naming a damaged file."""
        self.topic_config_manager.load()
        self.subscription_group_manager.load()
        for loader in self._loaders:
            loader()

    # -- the store, with statistics ------------------------------------------

    async def put_message(
        self, message: BrokerMessage, *, appended: Callable[[], None] | None = None
    ) -> PutMessageResult:
        """``store.put_message`` plus the put statistics."""
        begin = self.now_ms()
        result = await self.store.put_message(message, appended=appended)
        self._record_put(message.topic, result, begin)
        return result

    async def put_messages(
        self, batch: BrokerBatch, *, appended: Callable[[], None] | None = None
    ) -> PutMessageResult:
        """``store.put_messages`` plus the put statistics."""
        begin = self.now_ms()
        result = await self.store.put_messages(batch, appended=appended)
        self._record_put(batch.topic, result, begin)
        return result

    def _record_put(self, topic: str, result: PutMessageResult, begin: int) -> None:
        append = result.append_result
        self.stats.record_put(
            topic,
            wrote_bytes=append.wrote_bytes if append is not None else 0,
            msg_num=append.msg_num if append is not None else 1,
            elapsed_ms=self.now_ms() - begin,
            ok=result.is_ok,
        )

    async def get_message(
        self,
        group: str,
        topic: str,
        queue_id: int,
        offset: int,
        max_nums: int,
        message_filter: MessageFilter | None = None,
    ) -> GetMessageResult | None:
        """``store.get_message`` plus the get statistics (None when the store
        is not running)."""
        begin = self.now_ms()
        result = await self.store.get_message(
            group, topic, queue_id, offset, max_nums, message_filter
        )
        if result is None:
            return None
        self.stats.record_get(
            found=result.status is GetMessageStatus.FOUND,
            transferred=result.message_count,
            elapsed_ms=self.now_ms() - begin,
        )
        return result

    # -- configuration --------------------------------------------------------

    async def update_config(self, properties: dict[str, str]) -> UpdatePlan:
        """UPDATE_BROKER_CONFIG: apply the keys allowed at run time, persist
        them to the broker.conf, bump the config version. Raises ConfigError
        (nothing applied) when an allowed key has a bad value."""
        async with self._config_lock:
            plan = plan_update(properties)
            if not plan.accepted:
                return plan
            updated = self.settings.with_changes(plan.accepted)
            self.settings = updated
            self.store.update_config(updated.store)
            self.configuration.record_update(plan.accepted)
            log.info("broker config updated: %s", clipped(dict(plan.accepted), 1024))
            if updated.config_file is not None:
                try:
                    await persist_changes(updated.config_file, plan.accepted)
                except ConfigError as exc:
                    log.error("%s", exc)
            if "brokerPermission" in plan.accepted:
                self.topic_config_manager.bump_data_version()
                await self.registration.register_broker_all(False, False, True)
            return plan

    # -- runtime information ------------------------------------------------

    def runtime_info(self) -> JavaHashMap[str, str]:
        """GET_BROKER_RUNTIME_INFO's table, filled in Java's order into a
        ``HashMap(64)`` (the body lists it in that map's order)."""
        table: JavaHashMap[str, str] = JavaHashMap(64)
        for key, value in self.stats.runtime_info().items():
            table[key] = value
        running = self.store.running_stats()
        for key in ("commitLogDiskRatio", "consumeQueueDiskRatio"):
            table[key] = running[key]
        for key, value in running.items():
            if key.startswith("scheduleMessageOffset_"):
                table[key] = value
        for key in ("commitLogMinOffset", "commitLogMaxOffset"):
            table[key] = running[key]
        table["brokerVersionDesc"] = BROKER_VERSION_DESC
        table["brokerVersion"] = str(VERSION_V4_7_0)
        for key, value in self.stats.broker_stats().items():
            table[key] = value
        broker = self.settings.broker
        # pyrocket has no thread pools: its queues are always empty.
        for name, capacity in (
            ("sendThreadPoolQueue", broker.send_thread_pool_queue_capacity),
            ("pullThreadPoolQueue", broker.pull_thread_pool_queue_capacity),
            ("queryThreadPoolQueue", broker.query_thread_pool_queue_capacity),
        ):
            table[f"{name}Size"] = "0"
            table[f"{name}Capacity"] = str(capacity)
        table["EndTransactionQueueSize"] = "0"
        table["EndTransactionThreadPoolQueueCapacity"] = str(
            broker.end_transaction_pool_queue_capacity
        )
        table["dispatchBehindBytes"] = str(self.store.dispatch_behind_bytes())
        table["pageCacheLockTimeMills"] = "0"
        for name in ("send", "pull", "query"):
            table[f"{name}ThreadPoolQueueHeadWaitTimeMills"] = "0"
        table["earliestMessageTimeStamp"] = str(self._earliest_message_time())
        table["startAcceptSendRequestTimeStamp"] = str(broker.start_accept_send_request_time_stamp)
        store_config = self.settings.store
        table["remainTransientStoreBufferNumbs"] = str(
            store_config.transient_store_pool_size
            if store_config.transient_store_pool_enable
            else _INT_MAX
        )
        if store_config.transient_store_pool_enable:
            table["remainHowManyDataToCommit"] = human_readable_byte_count(0)
        behind = max(0, self.store.max_phy_offset - self.store.flushed_phy_offset)
        table["remainHowManyDataToFlush"] = human_readable_byte_count(behind)
        dir_capacity = _dir_capacity(store_config.store_path_root_dir)
        if dir_capacity is not None:
            table["commitLogDirCapacity"] = dir_capacity
        return table

    def _earliest_message_time(self) -> int:
        # Java reads the first message through a window of 2 * maxMessageSize
        # bytes and gets nothing (-1) until the commit log holds that much.
        store = self.store
        minimum = store.min_phy_offset
        window = 2 * self.settings.store.max_message_size
        if minimum < 0 or store.max_phy_offset - minimum < window:
            return -1
        return store.get_earliest_message_time_in_store()

    # -- background work -------------------------------------------------------

    async def _create_transaction_topic(self) -> None:
        # Java's transaction check service looks up the half-message topic on
        # its first run (transactionCheckInterval after start), creating it.
        # The message path replaces this with the full check.
        if self.is_slave:
            return
        await trio.sleep(self.settings.broker.transaction_check_interval / 1000)
        await self.topic_config_manager.create_topic_in_send_message_back_method(
            RMQ_SYS_TRANS_HALF_TOPIC, 1, PERM_READ | PERM_WRITE, 0
        )

    def _bound(self, port: int, fast_port: int) -> None:
        settings = self.settings
        server = dataclasses.replace(settings.server, listen_port=port)
        store = dataclasses.replace(settings.store, ha_listen_port=port + 1)
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
                        self._bound(port, fast_port)
                        async with trio.open_nursery() as tasks:
                            await tasks.start(self.stats.run)
                            await tasks.start(self.topic_config_manager.writer.run)
                            await tasks.start(self.subscription_group_manager.writer.run)
                            await tasks.start(self.registration.run)
                            tasks.start_soon(self._create_transaction_topic)
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
    subset and the message path."""
    from pyrocket.broker.dataplane import install_data_plane
    from pyrocket.broker.processors.admin import AdminBrokerProcessor

    AdminBrokerProcessor(broker).install()
    install_data_plane(broker)


async def serve_broker(
    settings: BrokerSettings,
    *,
    host: str | None = "0.0.0.0",
    timing: RegistrationTiming | None = None,
    now_ms: Callable[[], int] = wall_clock_ms,
    disk_used_ratio: Callable[[str], float] = default_disk_used_ratio,
    install: Sequence[Installer] = (),
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
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
    topics.json / subscriptionGroup.json, StoreError when the store cannot
    start, OSError when a port cannot be bound.
    """
    broker = Broker(settings, timing=timing, now_ms=now_ms, disk_used_ratio=disk_used_ratio)
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


def _dir_capacity(path: str) -> str | None:
    """``commitLogDirCapacity``: total and free space of the store's partition."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    total = stats.f_blocks * stats.f_frsize
    free = stats.f_bfree * stats.f_frsize
    return f"Total : {human_readable_byte_count(total)}, Free : {human_readable_byte_count(free)}."


__all__ = [
    "BROKER_VERSION_DESC",
    "DEFAULT_SHUTDOWN_GRACE",
    "Broker",
    "BrokerConnectionListener",
    "Installer",
    "Service",
    "install_processors",
    "serve_broker",
]
