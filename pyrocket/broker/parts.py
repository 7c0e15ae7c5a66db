"""The broker's parts (the state half of Java's ``BrokerController``): the
current settings, the message store, the topic and subscription-group tables,
the put/get statistics, the GET_BROKER_CONFIG / UPDATE_BROKER_CONFIG state and
the registration with the NameServers.

:class:`BrokerParts` builds and holds them; it knows no request processor and
no server. The assembly (:mod:`pyrocket.broker.app`) adds the remoting servers
and hands the processors what they use of the parts, typed by the narrow
protocols of :mod:`pyrocket.broker.processors.ports`.

- ``parts.settings``: the current settings; UPDATE_BROKER_CONFIG replaces them,
  so read them at use time.
- ``parts.put_message`` / ``put_messages`` / ``get_message``: the store calls
  with the statistics GET_BROKER_RUNTIME_INFO reports.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Awaitable, Callable

import trio

from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.configuration import (
    BrokerConfiguration,
    UpdatePlan,
    plan_update,
)
from pyrocket.broker.outer_api import BrokerOuterAPI
from pyrocket.broker.registration import RegistrationService, RegistrationTiming
from pyrocket.broker.stats import StoreStats, human_readable_byte_count
from pyrocket.broker.statsitems import BrokerStatsManager
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
from pyrocket.broker.topic_config import TopicConfigManager, topics_json_path
from pyrocket.errors import ConfigError
from pyrocket.javaprops import persist_changes
from pyrocket.later import Later
from pyrocket.logtext import clipped
from pyrocket.protocol.codes import VERSION_V4_7_0
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.remoting import RemotingClient

log = logging.getLogger("pyrocket.broker")

#: ``MQVersion.getVersionDesc(CURRENT_VERSION)``.
BROKER_VERSION_DESC = "V4_7_0"
#: Integer.MAX_VALUE: what Java reports for buffers when the transient pool is off.
_INT_MAX = (1 << 31) - 1


class BrokerParts:
    """A broker's state: settings, store, tables, statistics, configuration
    and registration.

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
        #: BrokerStatsManager's per-topic and per-group figures.
        self.stats_manager = BrokerStatsManager(settings.broker.broker_cluster_name, now_ms)
        wire = settings.serialize_type
        self.client = RemotingClient(
            dataclasses.replace(
                settings.client.client_config(settings.server.tls), serialize_type=wire
            )
        )
        self.outer_api = BrokerOuterAPI(self.client, settings.broker.namesrv_addresses)
        self.registration = RegistrationService(
            self.outer_api, self.topic_config_manager, lambda: self.settings, timing=timing
        )
        self.topic_config_manager.on_topic_created = self.registration.trigger_oneway
        self._config_lock = trio.Lock()

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

    # -- the store, with statistics ------------------------------------------

    async def put_message(
        self,
        message: BrokerMessage,
        *,
        appended: Callable[[], None] | None = None,
        topic_stats: bool = True,
    ) -> PutMessageResult:
        """``store.put_message`` plus the put statistics; ``topic_stats``:
        counted in TOPIC_PUT_* / BROKER_PUT_NUMS (a client's send, as Java
        counts only those)."""
        begin = self.now_ms()
        result = await self.store.put_message(message, appended=appended)
        self._record_put(message.topic, result, begin, topic_stats)
        return result

    def put_message_nowait(
        self, message: BrokerMessage
    ) -> PutMessageResult | Later[PutMessageResult] | Awaitable[PutMessageResult] | None:
        """:meth:`put_message` (a client's send) as far as it goes without
        waiting: the result when the put is complete; when the message is
        appended and its answer waits for the group commit, a Later of the
        result, or, when it waits for a slave, an awaitable of it; None,
        with nothing stored, when the append itself has to wait (then
        :meth:`put_message` stores it)."""
        begin = self.now_ms()
        store = self.store
        result = store.try_put_message(message)
        if result is None:
            return None
        topic = message.topic
        wait = message.wait_store_msg_ok
        if store.put_waits(result, wait):
            finished = store.finish_put_later(result, wait)
            if finished is None:
                return self._finish_put(topic, result, wait, begin)
            if isinstance(finished, Later):
                return finished.then(functools.partial(self._recorded_put, topic, begin))
            result = finished
        self._record_put(topic, result, begin, True)
        return result

    def _recorded_put(self, topic: str, begin: int, result: PutMessageResult) -> PutMessageResult:
        self._record_put(topic, result, begin, True)
        return result

    async def _finish_put(
        self, topic: str, result: PutMessageResult, wait: bool, begin: int
    ) -> PutMessageResult:
        result = await self.store.finish_put(result, wait)
        self._record_put(topic, result, begin, True)
        return result

    async def put_messages(
        self, batch: BrokerBatch, *, appended: Callable[[], None] | None = None
    ) -> PutMessageResult:
        """``store.put_messages`` plus the put statistics."""
        begin = self.now_ms()
        result = await self.store.put_messages(batch, appended=appended)
        self._record_put(batch.topic, result, begin, True)
        return result

    def _record_put(
        self, topic: str, result: PutMessageResult, begin: int, topic_stats: bool
    ) -> None:
        append = result.append_result
        if topic_stats and append is not None and result.is_ok:
            self.stats_manager.on_put(topic, append.msg_num, append.wrote_bytes)
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
        read = self.get_message_nowait(group, topic, queue_id, offset, max_nums, message_filter)
        if read is None or isinstance(read, GetMessageResult):
            await trio.lowlevel.checkpoint()
            return read
        return await read

    def get_message_nowait(
        self,
        group: str,
        topic: str,
        queue_id: int,
        offset: int,
        max_nums: int,
        message_filter: MessageFilter | None = None,
    ) -> GetMessageResult | Awaitable[GetMessageResult] | None:
        """:meth:`get_message` done now when the store reads from memory, else
        the awaitable of its read in a worker thread (statistics recorded
        when it completes)."""
        begin = self.now_ms()
        read = self.store.get_message_nowait(
            group, topic, queue_id, offset, max_nums, message_filter
        )
        if read is None:
            return None
        if isinstance(read, GetMessageResult):
            self._record_get(read, begin)
            return read
        return self._finish_get(read, begin)

    async def _finish_get(self, read: Awaitable[GetMessageResult], begin: int) -> GetMessageResult:
        result = await read
        self._record_get(result, begin)
        return result

    def _record_get(self, result: GetMessageResult, begin: int) -> None:
        self.stats.record_get(
            found=result.status is GetMessageStatus.FOUND,
            transferred=result.message_count,
            elapsed_ms=self.now_ms() - begin,
        )

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
        # No thread pools here: the app (Broker.runtime_info) counts the
        # requests waiting in their stead.
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


def _dir_capacity(path: str) -> str | None:
    """``commitLogDirCapacity``: total and free space of the store's partition."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    total = stats.f_blocks * stats.f_frsize
    free = stats.f_bfree * stats.f_frsize
    return f"Total : {human_readable_byte_count(total)}, Free : {human_readable_byte_count(free)}."


__all__ = ["BROKER_VERSION_DESC", "BrokerParts"]
