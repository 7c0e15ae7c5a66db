"""What the request processors use of the broker, as narrow protocols.

A processor is built from the few parts it reads, never from the whole broker:
the assembly (:mod:`pyrocket.broker.app`) hands each one an object that
satisfies its protocol (the broker's parts, :class:`~pyrocket.broker.parts.BrokerParts`,
with the servers' ``register_processor``; the message path's client tables,
:class:`~pyrocket.broker.dataplane.DataPlane`). Nothing here imports a
processor, the app or the message path, so the processors import neither.

- :class:`Registrar`: registering handlers (every processor's ``install``).
- :class:`StoreBroker`: the message store (the queries).
- :class:`MessageBroker`: settings, clock, tables and the store calls with
  statistics (send, pull, heartbeats, offsets).
- :class:`TransactionBroker`: ending transactions.
- :class:`AdminBroker`: what the admin processor adds: configuration,
  registration and runtime information.
- :class:`AclBroker`: the running ACL (the ACL admin requests).
- :class:`ClientTables`: the producer and consumer groups online.
- :class:`MessagePath`: those, the consumer offsets, held pulls and the
  consume statistics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from pyrocket.aclserve import AclGuard
from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.configuration import BrokerConfiguration, UpdatePlan
from pyrocket.broker.consumer_filter import ConsumerFilterManager
from pyrocket.broker.consumer_manager import ConsumerManager
from pyrocket.broker.consumer_offset import ConsumerOffsetManager
from pyrocket.broker.longpolling import PullRequestHoldService
from pyrocket.broker.producer_manager import ProducerManager
from pyrocket.broker.registration import RegistrationService
from pyrocket.broker.statsitems import BrokerStatsManager
from pyrocket.broker.store import (
    BrokerBatch,
    BrokerMessage,
    GetMessageResult,
    MessageFilter,
    MessageStore,
    PutMessageResult,
)
from pyrocket.broker.subscription_group import SubscriptionGroupManager
from pyrocket.broker.topic_config import TopicConfigManager
from pyrocket.later import Later
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.remoting import Processor


class Registrar(Protocol):
    """Answers request codes with handlers (the broker's servers)."""

    def register_processor(self, code: int, processor: Processor, *, fast: bool = True) -> None:
        """Answer ``code`` with ``processor`` on the main server and, unless
        ``fast`` is False, on the fast server too."""


class StoreBroker(Registrar, Protocol):
    """The message store, read directly."""

    @property
    def store(self) -> MessageStore: ...


class MessageBroker(StoreBroker, Protocol):
    """What the message path's processors read of the broker."""

    @property
    def settings(self) -> BrokerSettings:
        """The current settings (replaced at run time: read at use time)."""

    @property
    def now_ms(self) -> Callable[[], int]:
        """The broker clock."""

    @property
    def topic_config_manager(self) -> TopicConfigManager: ...

    @property
    def subscription_group_manager(self) -> SubscriptionGroupManager: ...

    @property
    def stats_manager(self) -> BrokerStatsManager:
        """BrokerStatsManager's per-topic and per-group figures."""

    async def put_message(
        self,
        message: BrokerMessage,
        *,
        appended: Callable[[], None] | None = None,
        topic_stats: bool = True,
    ) -> PutMessageResult:
        """``store.put_message`` plus the put statistics (``topic_stats``:
        counted as a client's send)."""

    def put_message_nowait(
        self, message: BrokerMessage
    ) -> PutMessageResult | Later[PutMessageResult] | Awaitable[PutMessageResult] | None:
        """``put_message`` of a client's send as far as it goes without
        waiting: the result, a Later of it (appended, waiting for the group
        commit), an awaitable of it (appended, waiting for a slave) or None
        (nothing stored: the append must wait)."""

    async def put_messages(
        self, batch: BrokerBatch, *, appended: Callable[[], None] | None = None
    ) -> PutMessageResult:
        """``store.put_messages`` plus the put statistics."""

    async def get_message(
        self,
        group: str,
        topic: str,
        queue_id: int,
        offset: int,
        max_nums: int,
        message_filter: MessageFilter | None = None,
    ) -> GetMessageResult | None:
        """``store.get_message`` plus the get statistics."""

    def get_message_nowait(
        self,
        group: str,
        topic: str,
        queue_id: int,
        offset: int,
        max_nums: int,
        message_filter: MessageFilter | None = None,
    ) -> GetMessageResult | Awaitable[GetMessageResult] | None:
        """``get_message`` done now when the store reads from memory, else
        the awaitable of its read in a worker thread."""


class TransactionBroker(MessageBroker, Protocol):
    """What ending transactions reads: the message path's parts (the
    transaction service comes separately)."""


class AdminBroker(MessageBroker, Protocol):
    """What the admin processor adds: configuration, registration and the
    runtime table."""

    @property
    def configuration(self) -> BrokerConfiguration: ...

    @property
    def registration(self) -> RegistrationService: ...

    @property
    def broker_addr(self) -> str:
        """``brokerIP1:listenPort``."""

    def runtime_info(self) -> JavaHashMap[str, str]:
        """GET_BROKER_RUNTIME_INFO's table."""

    async def update_config(self, properties: dict[str, str]) -> UpdatePlan:
        """UPDATE_BROKER_CONFIG: apply, persist, bump the version."""


class AclBroker(Registrar, Protocol):
    """What the ACL admin processor reads: the running ACL (None when
    ``aclEnable`` is off), the clock and the names it reports."""

    @property
    def acl(self) -> AclGuard | None: ...

    @property
    def settings(self) -> BrokerSettings: ...

    @property
    def broker_addr(self) -> str: ...

    @property
    def now_ms(self) -> Callable[[], int]: ...


class ClientTables(Protocol):
    """The producer and consumer groups online."""

    @property
    def consumer_manager(self) -> ConsumerManager: ...

    @property
    def consumer_filter_manager(self) -> ConsumerFilterManager: ...

    @property
    def producer_manager(self) -> ProducerManager: ...


class MessagePath(ClientTables, Protocol):
    """The message path's state the processors share."""

    @property
    def consumer_offset_manager(self) -> ConsumerOffsetManager: ...

    @property
    def hold_service(self) -> PullRequestHoldService: ...

    def record_group_get(
        self, group: str, topic: str, queue_id: int, count: int, size: int, latency_ms: int
    ) -> None:
        """Messages (and bytes) a group pulled from a queue."""

    def group_get_tps(self, group: str, topic: str) -> float:
        """Messages per second the group pulled from the topic lately."""


__all__ = [
    "AclBroker",
    "AdminBroker",
    "ClientTables",
    "MessageBroker",
    "MessagePath",
    "Registrar",
    "StoreBroker",
    "TransactionBroker",
]
