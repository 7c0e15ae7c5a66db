"""The broker's message path: sending, pulling (with long polling), client
heartbeats, consumer groups and offsets, transactions
(:mod:`pyrocket.broker.transaction`).

A :class:`DataPlane` holds the message path's state (the producer and
consumer tables, the consumer offsets, the rebalance locks, the held pulls)
and builds its processors, handing each the broker parts it reads
(:mod:`pyrocket.broker.processors.ports`) and itself as their
:class:`~pyrocket.broker.processors.ports.MessagePath`. :meth:`DataPlane.install`
hooks it into its :class:`MessagePathHost` (the app's
:class:`~pyrocket.broker.app.Broker`): the processors of every message-path
request code, the client housekeeping as connection listener, the
long-polling and housekeeping tasks, the periodic offset persistence and the
transaction check as services, ``consumerOffset.json`` loaded with the other tables and written
once more after the servers close, and the long-polling service as the
store's arrival listener. It imports nothing of the app.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import trio

from pyrocket.broker.client_housekeeping import ClientHousekeepingService
from pyrocket.broker.consumer_filter import ConsumerFilterManager
from pyrocket.broker.consumer_filter_file import ConsumerFilterFile, consumer_filter_json_path
from pyrocket.broker.consumer_manager import ConsumerManager
from pyrocket.broker.consumer_offset import ConsumerOffsetManager, consumer_offset_json_path
from pyrocket.broker.filter_bitmap import FilterBitMapCalculator
from pyrocket.broker.longpolling import PullRequestHoldService
from pyrocket.broker.processors.client_manage import ClientManageProcessor
from pyrocket.broker.processors.consumer_manage import ConsumerManageProcessor
from pyrocket.broker.processors.ports import MessageBroker
from pyrocket.broker.processors.pull import PullMessageProcessor
from pyrocket.broker.processors.query import QueryProcessor
from pyrocket.broker.processors.query_message import QueryMessageProcessor
from pyrocket.broker.processors.rebalance import RebalanceLockManager, RebalanceProcessor
from pyrocket.broker.processors.reply import ReplyMessageProcessor
from pyrocket.broker.processors.send import SendMessageProcessor
from pyrocket.broker.processors.transaction import EndTransactionProcessor
from pyrocket.broker.producer_manager import ProducerManager
from pyrocket.broker.store import BrokerRole
from pyrocket.broker.transaction import TransactionalMessageService
from pyrocket.errors import RemotingError
from pyrocket.filter.bloom import BloomFilter
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import NotifyConsumerIdsChangedRequestHeader
from pyrocket.remoting import Connection, ConnectionListener

log = logging.getLogger("pyrocket.broker")

#: Broker2Client's timeout for NOTIFY_CONSUMER_IDS_CHANGED (a oneway send).
NOTIFY_TIMEOUT: Final = 0.01


class MessagePathHost(MessageBroker, Protocol):
    """What the message path needs of the broker it is installed in: the
    parts its processors read and the app's extension points."""

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        """Hand ``listener`` the connection events of both servers."""

    def add_loader(self, loader: Callable[[], None]) -> None:
        """Call ``loader()`` (blocking) when the tables are read at start-up."""

    def add_service(self, service: Callable[[Any], Awaitable[None]]) -> None:
        """Run ``await service(host)`` while the broker serves."""

    def add_shutdown_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        """``await hook()`` at shutdown, after the servers closed."""


class DataPlane:
    """The message path's state and processors for one broker."""

    def __init__(self, broker: MessagePathHost) -> None:
        self.broker = broker
        root = broker.settings.store.store_path_root_dir
        broker_config = broker.settings.broker
        self.consumer_filter_manager = ConsumerFilterManager(
            broker.now_ms,
            lambda: broker.settings.broker.filter_data_clean_time_span,
            bloom=BloomFilter(
                broker_config.max_error_rate_of_bloom_filter,
                broker_config.expect_consumer_num_use_filter,
            ),
        )
        self.consumer_filter_file = ConsumerFilterFile(
            self.consumer_filter_manager, consumer_filter_json_path(root)
        )
        if broker_config.enable_calc_filter_bit_map:
            if broker.settings.store.enable_consume_queue_ext:
                broker.store.set_bit_map_calculator(
                    FilterBitMapCalculator(self.consumer_filter_manager)
                )
            else:
                log.warning(
                    "enableCalcFilterBitMap is on but enableConsumeQueueExt is off: "
                    "bit maps cannot be kept, pulls evaluate every message"
                )
        self.consumer_manager = ConsumerManager(
            self,
            broker.now_ms,
            notify_enabled=lambda: broker.settings.broker.notify_consumer_ids_changed_enable,
            filters=self.consumer_filter_manager,
        )
        self.producer_manager = ProducerManager(broker.now_ms)
        self.consumer_offset_manager = ConsumerOffsetManager(
            consumer_offset_json_path(root),
            min_offset_in_queue=broker.store.get_min_offset_in_queue,
        )
        self.lock_manager = RebalanceLockManager(broker.now_ms)
        self.send_processor = SendMessageProcessor(broker)
        self.reply_processor = ReplyMessageProcessor(broker, self)
        self.pull_processor = PullMessageProcessor(broker, self)
        self.client_manage_processor = ClientManageProcessor(broker, self)
        self.consumer_manage_processor = ConsumerManageProcessor(broker, self)
        self.query_processor = QueryProcessor(broker)
        self.query_message_processor = QueryMessageProcessor(broker)
        self.rebalance_processor = RebalanceProcessor(broker, self.lock_manager)
        self.transactions = TransactionalMessageService(
            broker, self.consumer_offset_manager, self.producer_manager
        )
        self.end_transaction_processor = EndTransactionProcessor(broker, self.transactions)
        self.hold_service = PullRequestHoldService(
            broker.store.get_max_offset_in_queue, self.pull_processor.wake
        )
        self.housekeeping = ClientHousekeepingService(
            self.hold_service, self.producer_manager, self.consumer_manager
        )

    def install(self) -> None:
        """Register everything with the broker (before it serves)."""
        broker = self.broker
        for processor in (
            self.send_processor,
            self.reply_processor,
            self.pull_processor,
            self.client_manage_processor,
            self.consumer_manage_processor,
            self.query_processor,
            self.query_message_processor,
            self.rebalance_processor,
            self.end_transaction_processor,
        ):
            processor.install()
        broker.add_connection_listener(self.housekeeping)
        broker.add_loader(self.consumer_offset_manager.load)
        broker.add_service(self._serve)
        broker.add_shutdown_hook(self.consumer_offset_manager.persist)
        broker.add_loader(self.consumer_filter_file.load)
        broker.add_shutdown_hook(self.consumer_filter_file.persist)
        broker.store.add_arrival_listener(self.hold_service.on_arrival)

    async def _serve(self, broker: MessagePathHost) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.hold_service.run)
            await nursery.start(self.housekeeping.run)
            nursery.start_soon(self.consumer_filter_file.run)
            await nursery.start(
                self.consumer_offset_manager.run,
                lambda: broker.settings.broker.flush_consumer_offset_interval,
            )
            # Java starts the transaction check on a master only.
            if broker.settings.store.broker_role is not BrokerRole.SLAVE:
                await nursery.start(self.transactions.run)

    # -- ConsumerIdsChangeListener ------------------------------------------------

    async def consumer_ids_changed(self, group: str, connections: list[Connection]) -> None:
        """Tell every member of ``group`` to rebalance (oneway, as Java)."""
        request = RemotingCommand.request(
            RequestCode.NOTIFY_CONSUMER_IDS_CHANGED,
            NotifyConsumerIdsChangedRequestHeader(group),
        )
        for conn in connections:
            if not conn.is_open:
                continue
            try:
                await conn.invoke_oneway(request, NOTIFY_TIMEOUT)
            except RemotingError as exc:
                log.error("notifyConsumerIdsChanged exception, %s: %s", group, exc)

    # -- consume statistics ---------------------------------------------------------

    def record_group_get(
        self, group: str, topic: str, queue_id: int, count: int, size: int, latency_ms: int
    ) -> None:
        """Messages (and bytes) a group pulled from a queue."""
        self.broker.stats_manager.on_get(group, topic, queue_id, count, size, latency_ms)

    def group_get_tps(self, group: str, topic: str) -> float:
        """``tpsGroupGetNums``: messages per second the group pulled from
        the topic over the last minute's samples."""
        return self.broker.stats_manager.tps_group_get_nums(group, topic)


__all__ = ["NOTIFY_TIMEOUT", "DataPlane", "MessagePathHost"]
