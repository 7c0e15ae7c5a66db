"""Keeping a broker registered with every NameServer (the registration half of
Java's ``BrokerController``).

:meth:`RegistrationService.run` registers at start, then every
``registerNameServerPeriod`` (clamped to 10..60 s, first after 10 s). Each
round goes to all NameServers at once through
:class:`~pyrocket.broker.outer_api.BrokerOuterAPI`, one task and one timeout
per NameServer. With ``forceRegister=false`` a periodic round first asks
QUERY_DATA_VERSION and registers only when some NameServer lacks the current
topic data. A topic change registers at once: the whole table, oneway, after
an auto-created topic (:meth:`trigger_oneway`; a burst of them is one round),
or just the changed topic after UPDATE_AND_CREATE_TOPIC
(:meth:`register_increment_broker_data`).

The first answer of a round is handled as Java handles it: a slave learns its
master's HA and broker addresses, and with ``checkOrderConfig`` the topics'
``order`` flags follow the NameServer's ORDER_TOPIC_CONFIG table.

Per NameServer the service keeps a :class:`NamesrvStatus` in a
``trio_util.AsyncValue`` (tests and operators can wait on it). Results are
logged at debug; a failing NameServer is logged at warning once per periodic
round (not for the triggered rounds in between), and at info when it answers
again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import trio
from trio_util import AsyncValue, periodic

from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.outer_api import BrokerIdentity, BrokerOuterAPI, NamesrvOutcome
from pyrocket.broker.store.config import BrokerRole
from pyrocket.broker.topic_config import TopicConfigManager
from pyrocket.persist import CoalescingWriter
from pyrocket.protocol.bodies.topic import (
    PERM_READ,
    PERM_WRITE,
    DataVersion,
    RegisterBrokerResult,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.javahash import JavaConcurrentHashMap

log = logging.getLogger("pyrocket.broker")

#: registerNameServerPeriod is kept within these bounds (ms), as Java does.
MIN_REGISTER_PERIOD_MS: Final = 10_000
MAX_REGISTER_PERIOD_MS: Final = 60_000
#: Delay before the first periodic round (s).
FIRST_PERIODIC_DELAY: Final = 10.0


def clamp_register_period(period_ms: int) -> int:
    """``registerNameServerPeriod`` kept within 10..60 s (ms in, ms out)."""
    return max(MIN_REGISTER_PERIOD_MS, min(period_ms, MAX_REGISTER_PERIOD_MS))


@dataclass(frozen=True, slots=True)
class RegistrationTiming:
    """When periodic rounds run (seconds)."""

    first_delay: float = FIRST_PERIODIC_DELAY
    period: float = 30.0

    @classmethod
    def from_period_ms(cls, register_name_server_period: int) -> RegistrationTiming:
        return cls(FIRST_PERIODIC_DELAY, clamp_register_period(register_name_server_period) / 1000)


@dataclass(frozen=True, slots=True)
class NamesrvStatus:
    """How registration with one NameServer stands.

    ``registered``: the last registration (or data-version check) succeeded and
    no unregistration followed. ``registrations``: successful REGISTER_BROKER
    answers (oneway ones are not counted). ``failures``: failed calls in a row.
    """

    namesrv_addr: str
    registered: bool = False
    registrations: int = 0
    failures: int = 0
    last_error: str | None = None
    unregistered: bool = False


def permission_wrapper(
    wrapper: TopicConfigSerializeWrapper, broker_permission: int
) -> TopicConfigSerializeWrapper:
    """The table a broker registers: as it is, or, when the broker lacks read
    or write permission, every topic restated with the broker's permission
    (``new TopicConfig(name, r, w, perm)``: filter, flags and order reset)."""
    if broker_permission & PERM_READ and broker_permission & PERM_WRITE:
        return wrapper
    table: JavaConcurrentHashMap[str, TopicConfig] = JavaConcurrentHashMap()
    for config in wrapper.topic_config_table.values():
        assert config.topic_name is not None
        table[config.topic_name] = TopicConfig(
            config.topic_name,
            read_queue_nums=config.read_queue_nums,
            write_queue_nums=config.write_queue_nums,
            perm=broker_permission,
        )
    return TopicConfigSerializeWrapper(table, wrapper.data_version)


class RegistrationService:
    """Registers one broker with every NameServer, now and periodically.

    ``settings`` returns the broker's current settings (they can change at run
    time); ``filter_servers`` the filter-server list to announce.
    """

    def __init__(
        self,
        outer_api: BrokerOuterAPI,
        topic_config_manager: TopicConfigManager,
        settings: Callable[[], BrokerSettings],
        *,
        timing: RegistrationTiming | None = None,
        filter_servers: Callable[[], Sequence[str]] = list,
    ) -> None:
        self.outer_api = outer_api
        self.topics = topic_config_manager
        self._settings = settings
        current = settings()
        self.timing = timing or RegistrationTiming.from_period_ms(
            current.broker.register_name_server_period
        )
        self._filter_servers = filter_servers
        self._lock = trio.Lock()
        self._nursery: trio.Nursery | None = None
        #: The triggered oneway rounds, coalesced.
        self._triggered = CoalescingWriter("oneway registration", self._register_oneway, log)
        self._statuses: dict[str, AsyncValue[NamesrvStatus]] = {}
        self._last_warning: dict[str, float] = {}
        #: Completed registration rounds (start-up, periodic, triggered).
        self.rounds: AsyncValue[int] = AsyncValue(0)
        #: Master address learned from the NameServer (slaves; SlaveSynchronize).
        self.master_addr: AsyncValue[str | None] = AsyncValue(None)
        #: Master HA address learned from the NameServer (slaves without haMasterAddress).
        self.ha_master_addr: AsyncValue[str | None] = AsyncValue(None)
        store = current.store
        self.update_master_ha_addr_periodically = store.broker_role is BrokerRole.SLAVE and not (
            store.ha_master_address and len(store.ha_master_address) >= 6
        )

    # -- state --------------------------------------------------------------

    def identity(self) -> BrokerIdentity:
        settings = self._settings()
        return BrokerIdentity(
            cluster_name=settings.broker.broker_cluster_name,
            broker_addr=settings.broker_addr,
            broker_name=settings.broker.broker_name,
            broker_id=settings.broker.broker_id,
            ha_server_addr=settings.ha_server_addr,
        )

    def status(self, namesrv_addr: str) -> AsyncValue[NamesrvStatus]:
        """The registration status with one NameServer (created on first ask)."""
        value = self._statuses.get(namesrv_addr)
        if value is None:
            value = self._statuses[namesrv_addr] = AsyncValue(NamesrvStatus(namesrv_addr))
        return value

    def statuses(self) -> dict[str, NamesrvStatus]:
        """The current status of every configured NameServer."""
        return {addr: self.status(addr).value for addr in self.outer_api.namesrv_addresses}

    def _timeout(self) -> float:
        return self._settings().broker.register_broker_timeout_mills / 1000

    # -- rounds -------------------------------------------------------------

    async def register_broker_all(
        self, check_order_config: bool, oneway: bool, force_register: bool
    ) -> list[NamesrvOutcome]:
        """Java's ``registerBrokerAll``: the whole topic table to every
        NameServer (only to be asked first when not ``force_register``)."""
        async with self._lock:
            settings = self._settings()
            wrapper = permission_wrapper(
                self.topics.build_topic_config_serialize_wrapper(),
                settings.broker.broker_permission,
            )
            if not force_register and not await self._need_register(wrapper.data_version):
                self.rounds.value += 1
                return []
            return await self._do_register(check_order_config, oneway, wrapper)

    async def register_increment_broker_data(
        self, topic_config: TopicConfig, data_version: DataVersion
    ) -> list[NamesrvOutcome]:
        """Java's ``registerIncrementBrokerData``: one topic, with the table's
        version, to every NameServer (after UPDATE_AND_CREATE_TOPIC)."""
        async with self._lock:
            permission = self._settings().broker.broker_permission
            name = topic_config.topic_name
            assert name is not None
            table: JavaConcurrentHashMap[str, TopicConfig] = JavaConcurrentHashMap()
            table[name] = topic_config
            single = TopicConfigSerializeWrapper(table, data_version)
            wrapper = permission_wrapper(single, permission)
            return await self._do_register(True, False, wrapper)

    def trigger_oneway(self) -> None:
        """Register the whole table with every NameServer soon, oneway (what
        Java does after auto-creating a topic). Triggers that come while a
        round is pending or running share the next round, which sends the
        table as it is then, so a burst of new topics is one registration
        (Java sends one per topic). Ignored when not running."""
        if self._nursery is not None:
            self._triggered.request()

    async def _register_oneway(self) -> None:
        await self.register_broker_all(False, True, True)

    async def _need_register(self, data_version: DataVersion) -> bool:
        outcomes = await self.outer_api.need_register(
            self.identity(), data_version, self._timeout()
        )
        for outcome in outcomes:
            self._note(outcome, counted=False)
        return any(outcome.changed for outcome in outcomes)

    async def _do_register(
        self, check_order_config: bool, oneway: bool, wrapper: TopicConfigSerializeWrapper
    ) -> list[NamesrvOutcome]:
        settings = self._settings()
        outcomes = await self.outer_api.register_broker_all(
            self.identity(),
            wrapper,
            self._filter_servers(),
            oneway=oneway,
            timeout=self._timeout(),
            compressed=settings.broker.compressed_register,
        )
        for outcome in outcomes:
            self._note(outcome, counted=not oneway)
        first = next((o.result for o in outcomes if o.result is not None), None)
        if first is not None:
            await self._handle_result(first, check_order_config)
        self.rounds.value += 1
        return outcomes

    async def _handle_result(self, result: RegisterBrokerResult, check_order_config: bool) -> None:
        if self.update_master_ha_addr_periodically and result.ha_server_addr is not None:
            self.ha_master_addr.value = result.ha_server_addr
        self.master_addr.value = result.master_addr
        if check_order_config:
            await self.topics.update_order_topic_config(result.kv_table)

    def _note(self, outcome: NamesrvOutcome, *, counted: bool) -> None:
        holder = self.status(outcome.namesrv_addr)
        old = holder.value
        addr = outcome.namesrv_addr
        if outcome.ok:
            if old.failures:
                log.info("registered with name server %s again", addr)
            else:
                log.debug("register broker to name server %s OK", addr)
            self._last_warning.pop(addr, None)
            holder.value = dataclasses.replace(
                old,
                registered=True,
                unregistered=False,
                failures=0,
                last_error=None,
                registrations=old.registrations + (1 if counted else 0),
            )
            return
        now = trio.current_time()
        last = self._last_warning.get(addr)
        # Periodic rounds are a period apart and each logs its failure; rounds
        # triggered by topic changes in between stay at debug.
        if last is None or now - last >= self.timing.period / 2:
            self._last_warning[addr] = now
            log.warning("register broker to name server %s failed: %s", addr, outcome.error)
        else:
            log.debug("register broker to name server %s failed again: %s", addr, outcome.error)
        holder.value = dataclasses.replace(
            old, registered=False, failures=old.failures + 1, last_error=str(outcome.error)
        )

    async def unregister_all(self) -> list[NamesrvOutcome]:
        """UNREGISTER_BROKER to every NameServer (shutdown)."""
        outcomes = await self.outer_api.unregister_broker_all(self.identity())
        for outcome in outcomes:
            holder = self.status(outcome.namesrv_addr)
            if outcome.ok:
                log.info("unregister broker from name server %s OK", outcome.namesrv_addr)
                holder.value = dataclasses.replace(
                    holder.value, registered=False, unregistered=True
                )
            else:
                log.warning(
                    "unregister broker from name server %s failed: %s",
                    outcome.namesrv_addr,
                    outcome.error,
                )
        return outcomes

    # -- the task -----------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Register now, report started, then register periodically until
        cancelled. (Unregistering is the owner's job: :meth:`unregister_all`.)"""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await nursery.start(self._triggered.run)
                await self.register_broker_all(True, False, True)
                task_status.started()
                await trio.sleep(self.timing.first_delay)
                async for _ in periodic(self.timing.period):
                    force = self._settings().broker.force_register
                    await self.register_broker_all(True, False, force)
            finally:
                self._nursery = None


__all__ = [
    "FIRST_PERIODIC_DELAY",
    "MAX_REGISTER_PERIOD_MS",
    "MIN_REGISTER_PERIOD_MS",
    "NamesrvStatus",
    "RegistrationService",
    "RegistrationTiming",
    "clamp_register_period",
    "permission_wrapper",
]
