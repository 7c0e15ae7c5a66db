"""A slave copying its master's tables (Java's ``SlaveSynchronize``).

Replication (:mod:`pyrocket.broker.ha`) carries the commit log only; the
tables a broker keeps beside it are copied by asking the master, as any
admin client would, every ``period`` seconds (Java: first after 3 s, then
every 10 s) once the registration result named the master
(``RegisterBrokerResult.masterAddr``; never the slave's own address):

- GET_ALL_TOPIC_CONFIG: when the master's data version differs from the
  slave's, the slave's topic table is replaced by the master's, takes its
  data version and is written to ``topics.json``;
- GET_ALL_CONSUMER_OFFSET: the master's entries replace the slave's of the
  same ``topic@group`` (others stay), then ``consumerOffset.json`` is written;
- GET_ALL_DELAY_OFFSET: the answer's text is written as it came to
  ``delayOffset.json`` (a slave delivers no delayed messages; the file is
  what it starts from if it becomes a master);
- GET_ALL_SUBSCRIPTIONGROUP_CONFIG: as the topic table, by data version,
  into ``subscriptionGroup.json``.

Each step fails alone: an error is logged and the next step runs. The
answers are decoded in a worker thread (a master's tables can be large).
All four requests go to the master's port (Java sends GET_ALL_TOPIC_CONFIG
to its VIP channel, port - 2: see docs/deviations.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import trio

from pyrocket.broker.consumer_offset import ConsumerOffsetManager, QueueOffsets
from pyrocket.broker.subscription_group import SubscriptionGroupManager
from pyrocket.broker.topic_config import TopicConfigManager
from pyrocket.errors import PyrocketError
from pyrocket.persist import write_atomically_async
from pyrocket.protocol.bodies import (
    ConsumerOffsetSerializeWrapper,
    SubscriptionGroupWrapper,
)
from pyrocket.protocol.bodies.topic import TopicConfigSerializeWrapper
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.javahash import JavaConcurrentHashMap, int_hash
from pyrocket.remoting import RemotingClient

log = logging.getLogger("pyrocket.broker")

#: Java's schedule: first round after 3 s, then every 10 s.
FIRST_SYNC_DELAY: Final = 3.0
SYNC_PERIOD: Final = 10.0
#: Each request's timeout (Java's BrokerOuterAPI uses 3 s).
_TIMEOUT_S: Final = 3.0


@dataclass(frozen=True, slots=True)
class SlaveSyncTiming:
    """When the slave copies its master's tables (seconds)."""

    first_delay: float = FIRST_SYNC_DELAY
    period: float = SYNC_PERIOD


class SlaveSyncError(PyrocketError):
    """The master did not answer a table request with SUCCESS."""


class SlaveSynchronize:
    """Copies a master's topic, offset, delay-offset and group tables.

    ``master_addr`` returns the master's broker address (None while
    unknown); ``broker_addr`` the slave's own; ``offsets`` the consumer
    offset manager (None: offsets are not copied); ``delay_offset_path``
    the slave's ``delayOffset.json``.
    """

    def __init__(
        self,
        client: RemotingClient,
        *,
        master_addr: Callable[[], str | None],
        broker_addr: Callable[[], str],
        topics: TopicConfigManager,
        groups: SubscriptionGroupManager,
        offsets: Callable[[], ConsumerOffsetManager | None],
        delay_offset_path: Path,
        timing: SlaveSyncTiming | None = None,
    ) -> None:
        self.client = client
        self._master_addr = master_addr
        self._broker_addr = broker_addr
        self.topics = topics
        self.groups = groups
        self._offsets = offsets
        self.delay_offset_path = delay_offset_path
        self.timing = timing or SlaveSyncTiming()
        #: Completed rounds (tests wait on it).
        self.rounds = 0

    def master(self) -> str | None:
        """The master to copy from: None when unknown or this broker itself."""
        addr = self._master_addr()
        if not addr or addr == self._broker_addr():
            return None
        return addr

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Copy every ``timing.period`` seconds until cancelled."""
        task_status.started()
        await trio.sleep(self.timing.first_delay)
        while True:
            await self.sync_all()
            await trio.sleep(self.timing.period)

    async def sync_all(self) -> None:
        """One round: topics, consumer offsets, delay offsets, groups."""
        for step in (
            self.sync_topic_config,
            self.sync_consumer_offset,
            self.sync_delay_offset,
            self.sync_subscription_group_config,
        ):
            addr = self.master()
            if addr is None:
                continue
            try:
                await step(addr)
            except (PyrocketError, OSError) as exc:
                log.error("%s from master %s failed: %s", step.__name__, addr, exc)
            except Exception:
                # As Java's SlaveSynchronize: whatever a master answered, log
                # it and go on; the slave keeps serving.
                log.exception("%s from master %s failed", step.__name__, addr)
        self.rounds += 1

    async def _fetch(self, addr: str, code: RequestCode) -> bytes:
        request = RemotingCommand.request(code)
        response = await self.client.invoke_sync(addr, request, _TIMEOUT_S)
        if response.code != ResponseCode.SUCCESS:
            raise SlaveSyncError(f"{code.name}: code {response.code} {response.remark or ''}")
        return response.body or b""

    async def sync_topic_config(self, addr: str) -> None:
        body = await self._fetch(addr, RequestCode.GET_ALL_TOPIC_CONFIG)
        wrapper = await trio.to_thread.run_sync(TopicConfigSerializeWrapper.decode, body or b"{}")
        topics = self.topics
        if topics.data_version == wrapper.data_version:
            return
        topics.data_version = wrapper.data_version
        table = topics.topic_config_table
        table.clear()
        for name, config in wrapper.topic_config_table.items():
            table[name] = config
        await topics.persist()
        log.info("Update slave topic config from master, %s", addr)

    async def sync_consumer_offset(self, addr: str) -> None:
        offsets = self._offsets()
        if offsets is None:
            return
        body = await self._fetch(addr, RequestCode.GET_ALL_CONSUMER_OFFSET)
        wrapper = await trio.to_thread.run_sync(
            ConsumerOffsetSerializeWrapper.decode, body or b"{}"
        )
        for key, queues in wrapper.offset_table.items():
            copied: QueueOffsets = JavaConcurrentHashMap(hasher=int_hash)
            for queue_id, offset in queues.items():
                copied[queue_id] = offset
            offsets.offset_table[key] = copied
        await offsets.persist()
        log.info("Update slave consumer offset from master, %s", addr)

    async def sync_delay_offset(self, addr: str) -> None:
        body = await self._fetch(addr, RequestCode.GET_ALL_DELAY_OFFSET)
        if body:
            try:
                await write_atomically_async(self.delay_offset_path, body.decode("utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                log.error("writing %s failed: %s", self.delay_offset_path, exc)
        log.info("Update slave delay offset from master, %s", addr)

    async def sync_subscription_group_config(self, addr: str) -> None:
        body = await self._fetch(addr, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG)
        wrapper = await trio.to_thread.run_sync(SubscriptionGroupWrapper.decode, body or b"{}")
        groups = self.groups
        if groups.data_version == wrapper.data_version:
            return
        groups.data_version = wrapper.data_version
        table = groups.subscription_group_table
        table.clear()
        for name, group in wrapper.subscription_group_table.items():
            table[name] = group
        await groups.persist()
        log.info("Update slave Subscription Group from master, %s", addr)


__all__ = [
    "FIRST_SYNC_DELAY",
    "SYNC_PERIOD",
    "SlaveSyncError",
    "SlaveSyncTiming",
    "SlaveSynchronize",
]
