"""The consumer (Java's ``DefaultMQPushConsumer``, with the messages handed
to the caller instead of to a listener thread pool).

::

    consumer = PushConsumer("my_group", ["127.0.0.1:9876"])
    consumer.subscribe("TopicTest", "TagA || TagB")
    async with consumer:
        async for message in consumer:          # pyrocket.protocol.message.MessageExt
            print(message.queue_id, message.queue_offset, message.tags, message.body)

    # or in batches: messages = await consumer.poll(max_messages=32, timeout=1.0)

What it does as Java 4.7.0 does:

* HEART_BEAT announces the group (CONSUME_PASSIVELY, CLUSTERING, the
  consume-from-where, every subscription plus the group's ``%RETRY%`` topic)
  at start and every 30 s;
* rebalance (at start, every 20 s and when a broker sends
  NOTIFY_CONSUMER_IDS_CHANGED): the topic's readable queues and the group's
  client ids (GET_CONSUMER_LIST_BY_GROUP), both sorted, shared by
  :func:`~pyrocket.client.allocate.allocate_averagely` (or the strategy
  given);
* a new queue starts at the group's committed offset (QUERY_CONSUMER_OFFSET);
  without one, per ``consume_from``: the queue's end (CONSUME_FROM_LAST_OFFSET,
  the default; a retry topic starts at 0), 0 (FIRST), or the offset at
  ``consume_timestamp`` (TIMESTAMP; ms, default half an hour ago);
* one long-polling PULL_MESSAGE loop per queue (32 messages, the broker
  holding the request up to 15 s), filtering tags on the client side as
  Java does, inflating compressed bodies, and adding MIN_OFFSET/MAX_OFFSET;
  NO_NEW_MSG / NO_MATCHED_MSG move on; OFFSET_ILLEGAL restarts the queue at
  the offset the broker suggests and commits it;
* per-message outcome (:mod:`pyrocket.client.consume_concurrently`): a
  queue's consumed offset is its smallest unacknowledged offset (ProcessQueue);
  :meth:`PushConsumer.consume` runs a handler answering CONSUME_SUCCESS or
  RECONSUME_LATER. From the iterator, poll or receive a message is consumed
  once handed out with ``auto_ack=True`` (the default, as before), else once
  :meth:`~PushConsumer.ack` or :meth:`~PushConsumer.reconsume_later` is
  called. Pulls wait while a queue is over ``flow_control``'s thresholds;
* ``orderly=True`` (:mod:`pyrocket.client.orderly`): queues locked on their
  master (LOCK_BATCH_MQ) before they are pulled, each consumed in queue
  order by :meth:`PushConsumer.consume_orderly`'s handler;
* offsets ride on each pull (commitOffset) and are committed with
  UPDATE_CONSUMER_OFFSET every 5 s, when a queue moves to another consumer
  and when the consumer closes; closing also unregisters the client;
* operator requests a broker forwards: RESET_CONSUMER_CLIENT_OFFSET moves
  the queues named to the reset offsets (:meth:`PushConsumer.reset_offset`),
  GET_CONSUMER_STATUS_FROM_CLIENT reports the consumed offsets, and
  CONSUME_MESSAGE_DIRECTLY hands the message to ``direct_handler`` (answers
  in :mod:`pyrocket.client.client_requests`);
* ``enable_trace`` / ``trace_topic``: see :mod:`pyrocket.client.trace`;
* ``message_model=MessageModel.BROADCASTING``: every client of the group
  reads every queue of its topics (no ``%RETRY%`` subscription, no consumer
  id list), the heartbeat says BROADCASTING, the offsets live in a local file
  (:mod:`pyrocket.client.local_offsets`; ``local_offset_store_dir``) written
  every ``persist_interval`` and at close, and a message given back with
  :meth:`PushConsumer.reconsume_later` is dropped with a warning, as Java
  drops a failed broadcast message.

Delivery is at least once: a consumer stopped without closing may have its
last messages delivered again to whoever takes over its queues.

This module owns subscriptions, heart-beat data, its loops and its
lifetime; the queue table and rebalance are in :mod:`pyrocket.client.rebalance`,
handing messages out in :mod:`pyrocket.client.delivery`, a PULL_MESSAGE round
in :mod:`pyrocket.client.pulling`, offsets in :mod:`pyrocket.client.offsets`,
the running-info report in :mod:`pyrocket.client.running_info`, the requests
brokers forward in :mod:`pyrocket.client.consumer_requests`, acknowledging
and the handler forms in :mod:`pyrocket.client.consume_api`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Self

import trio
from trio_util import periodic

from pyrocket.acl.signing import SessionCredentials
from pyrocket.client.allocate import AllocateStrategy, allocate_averagely
from pyrocket.client.client_requests import (
    DirectHandler,
)
from pyrocket.client.consume_api import ConsumeCalls
from pyrocket.client.consume_concurrently import ConcurrentService
from pyrocket.client.consume_stats import ConsumerStats, HandlerStats
from pyrocket.client.consumer_requests import ConsumerRequests
from pyrocket.client.delivery import Delivery
from pyrocket.client.instance import CLIENT_INNER_PRODUCER_GROUP, ClientInstance
from pyrocket.client.local_offsets import LocalOffsetStore, store_path
from pyrocket.client.offsets import commit_offset, initial_offset, start_offset
from pyrocket.client.orderly import OrderlyService, OrderlySettings
from pyrocket.client.process_queue import (
    PULL_DELAY_WHEN_FLOW_CONTROL,
    REBALANCE_LOCK_INTERVAL,
    FlowControl,
)
from pyrocket.client.producer import Producer
from pyrocket.client.pulling import (
    PULL_DELAY_WHEN_EXCEPTION,
    PullSettings,
    PullStatus,
    PullSysFlag,
    decode_pulled,
    delivered_form,
    filter_by_tags,
    pull_once,
    retry_topic,
)
from pyrocket.client.pulling import QueueState as _QueueState
from pyrocket.client.pulling import now_ms as _now_ms
from pyrocket.client.rebalance import QueueTable
from pyrocket.client.running_info import running_info as _running_info
from pyrocket.client.selector import MessageSelector, check_client_in_broker
from pyrocket.client.sendback import MessageBack
from pyrocket.client.trace.hooks import consume_tracer
from pyrocket.protocol.bodies.admin import ConsumerRunningInfo
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    MessageModel,
    MessageQueue,
    SubscriptionData,
)
from pyrocket.protocol.javahash import JavaHashSet
from pyrocket.protocol.message import MessageExt
from pyrocket.remoting.tls import TlsSettings

log = logging.getLogger("pyrocket.client.consumer")


class PushConsumer(ConsumerRequests, ConsumeCalls):
    """A push consumer of one group (clustering or broadcasting); see the module."""

    def __init__(
        self,
        group: str,
        namesrv_addresses: Sequence[str],
        *,
        consume_from: ConsumeFromWhere = ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
        consume_timestamp: int | None = None,
        pull_batch_size: int = 32,
        allocate: AllocateStrategy[MessageQueue] = allocate_averagely,
        instance_name: str | None = None,
        client_ip: str | None = None,
        timeout: float = 3.0,
        broker_suspend_max: float = 15.0,
        timeout_when_suspend: float = 30.0,
        persist_interval: float = 5.0,
        rebalance_interval: float = 20.0,
        heartbeat_interval: float = 30.0,
        poll_name_server_interval: float = 30.0,
        buffered_batches: int = 16,
        max_reconsume_times: int = -1,
        auto_ack: bool = True,
        consume_thread_min: int = 20,
        consume_thread_max: int = 20,
        consume_message_batch_max_size: int = 1,
        consume_timeout: float = 15 * 60.0,
        flow_control: FlowControl | None = None,
        orderly: bool = False,
        suspend_current_queue_time_millis: int = 1000,
        lock_interval: float = REBALANCE_LOCK_INTERVAL,
        tls: TlsSettings | None = None,
        direct_handler: DirectHandler | None = None,
        credentials: SessionCredentials | None = None,
        enable_trace: bool = False,
        trace_topic: str | None = None,
        message_model: MessageModel = MessageModel.CLUSTERING,
        local_offset_store_dir: str | None = None,
    ) -> None:
        self.group = group
        self.message_model = message_model
        extra = {"client_ip": client_ip, "tls": tls, "credentials": credentials}
        self.tracer = consume_tracer(
            group, namesrv_addresses, trace_topic, Producer, extra, enable_trace
        )
        #: What consumes a message a broker hands over with
        #: CONSUME_MESSAGE_DIRECTLY (an operator's resend).
        self.direct_handler = direct_handler
        #: -1: 16 for concurrent consumption (Java's ``getMaxReconsumeTimes``).
        self.max_reconsume_times = max_reconsume_times
        #: Whether a message from the iterator, poll or receive counts as
        #: consumed once handed out (see the module).
        self.auto_ack = auto_ack
        #: Java's ``consumeThreadMin``: kept for its name only and not used.
        #: Java's consume pool has an unbounded task queue, so its core size
        #: is what bounds concurrency there; here ``consume_thread_max``
        #: bounds the handler calls running at once (there is no pool to size).
        self.consume_thread_min = consume_thread_min
        #: How many handler calls (and sync handler threads) run at once.
        self.consume_thread_max = consume_thread_max
        self.consume_message_batch_max_size = consume_message_batch_max_size
        #: Seconds a handed-out message may stay unacknowledged before it is
        #: given back (Java's ``consumeTimeout``, there in minutes).
        self.consume_timeout = consume_timeout
        self.flow_control = flow_control or FlowControl()
        self.consume_from = consume_from
        #: Where CONSUME_FROM_TIMESTAMP starts (ms); Java's default: half an hour ago.
        half_hour_ago = time.time_ns() // 1_000_000 - 30 * 60 * 1000
        self.consume_timestamp = half_hour_ago if consume_timestamp is None else consume_timestamp
        self.pull_batch_size = pull_batch_size
        self.allocate = allocate
        self.timeout = timeout
        self.broker_suspend_max = broker_suspend_max
        self.timeout_when_suspend = timeout_when_suspend
        self.persist_interval = persist_interval
        self.rebalance_interval = rebalance_interval
        self._subscriptions: dict[str, SubscriptionData] = {}
        #: Pull and consume figures (GET_CONSUMER_RUNNING_INFO's statusTable).
        self.stats = ConsumerStats()
        self._delivery = Delivery(buffered_batches, self.tracer, self.stats)
        self._wakeup = trio.Event()
        self._running = False
        self._start_timestamp = 0
        self.instance = ClientInstance(
            namesrv_addresses,
            instance_name=instance_name,
            client_ip=client_ip,
            timeout=timeout,
            poll_name_server_interval=poll_name_server_interval,
            heartbeat_interval=heartbeat_interval,
            tls=tls,
            credentials=credentials,
            consumer_data=self._consumer_data,
            topics=lambda: tuple(self._subscriptions),
        )
        inner = functools.partial(Producer, CLIENT_INNER_PRODUCER_GROUP, namesrv_addresses)
        self._back = MessageBack(
            self.instance,
            group,
            self.effective_max_reconsume_times,
            functools.partial(inner, client_ip=client_ip, tls=tls, credentials=credentials),
            timeout,
        )
        self._concurrent = ConcurrentService(
            group, lambda: self._queues.values(), self._delivery, self._back,
            lambda: self.instance.nursery,
            lambda: self.message_model is MessageModel.BROADCASTING,
        )  # fmt: skip
        self._concurrent.stats = HandlerStats(self.stats)
        settings = OrderlySettings(
            consume_message_batch_max_size, suspend_current_queue_time_millis,
            self.effective_max_reconsume_times, lock_interval,
        )  # fmt: skip
        queues = lambda: self._queues.values()  # noqa: E731
        self._orderly = (
            OrderlyService(self.instance, group, queues, self._back, settings, timeout)
            if orderly
            else None
        )
        if self._orderly is not None:
            self._orderly.stats = HandlerStats(self.stats)
        self._table = QueueTable(
            self.instance,
            group,
            allocate,
            timeout,
            self._start_offset,
            functools.partial(self._persist, oneway=False),
            self._start_pulling,
            None if self._orderly is None else self._orderly.lock_assigned,
            None if self._orderly is None else self._orderly.release,
            broadcasting=message_model is MessageModel.BROADCASTING,
        )
        #: A broadcasting consumer's offsets (None when clustering).
        self.local_offsets: LocalOffsetStore | None = None
        if message_model is MessageModel.BROADCASTING:
            path = store_path(local_offset_store_dir, self.instance.client_id, group)
            self.local_offsets = LocalOffsetStore(path)
        else:
            # Java's copySubscription: a clustering consumer also reads its
            # group's retry topic.
            retry = retry_topic(group)
            self._subscriptions[retry] = SubscriptionData.for_expression(retry, "*")

    @property
    def client_id(self) -> str:
        return self.instance.client_id

    def subscribe(self, topic: str, expression: str | MessageSelector = "*") -> None:
        """Read ``topic``'s messages whose tag matches ``expression``
        (``"*"``, or tags separated by ``||``), or that a
        :class:`~pyrocket.client.selector.MessageSelector` picks
        (``MessageSelector.by_sql("a > 5")``). Call before entering."""
        if self._running:
            raise RuntimeError("subscribe before the consumer starts")
        if isinstance(expression, MessageSelector):
            self._subscriptions[topic] = expression.subscription(topic)
        else:
            self._subscriptions[topic] = SubscriptionData.for_expression(topic, expression)

    @property
    def assignment(self) -> set[MessageQueue]:
        """The queues this consumer currently reads (retry topic included)."""
        return set(self._queues)

    @property
    def _queues(self) -> dict[MessageQueue, _QueueState]:
        return self._table.queues

    def _consumer_data(self) -> tuple[ConsumerData, ...]:
        # Java fills a HashSet: the subscriptions go out in its order.
        subscriptions: JavaHashSet[SubscriptionData] = JavaHashSet(
            hasher=SubscriptionData.java_hash_code
        )
        for subscription in self._subscriptions.values():
            subscriptions.add(subscription)
        return (
            ConsumerData(
                group_name=self.group,
                consume_type=ConsumeType.CONSUME_PASSIVELY,
                message_model=self.message_model,
                consume_from_where=self.consume_from,
                subscription_data_set=tuple(subscriptions),
                unit_mode=False,
            ),
        )

    # ------------------------------------------------------------------
    # Lifetime

    async def start(self) -> None:
        """Start consuming (Java's ``start``): the same as entering ``async
        with``. Call :meth:`shutdown` from the same task, after any cancel
        scope or nursery opened since has closed."""
        await self.__aenter__()

    async def shutdown(self) -> None:
        """Stop, commit, unregister and disconnect (Java's ``shutdown``): the
        same as leaving ``async with``."""
        await self.__aexit__(None, None, None)

    async def __aenter__(self) -> Self:
        if not set(self._subscriptions) - {retry_topic(self.group)}:
            raise RuntimeError("subscribe to a topic before starting the consumer")
        self._running = True
        self._start_timestamp = _now_ms()
        if self.local_offsets is not None:
            try:
                await self.local_offsets.load()
            except BaseException:
                self._running = False
                raise
        await self.instance.__aenter__()
        try:
            self._register_processors(self.instance.remoting)
            for topic in self._subscriptions:
                await self.instance.update_route(topic)
            await check_client_in_broker(
                self.instance, self.group, self._subscriptions.values(), self.timeout
            )
            await self.instance.heartbeat_all()
            if self.tracer is not None:
                await self.tracer.dispatcher.__aenter__()
        except BaseException as exc:
            self._running = False
            await self.instance.close_after_failed_start(exc)
            raise
        nursery = self.instance.nursery
        nursery.start_soon(self._rebalance_forever)
        nursery.start_soon(self._persist_forever)
        if self._orderly is None:
            nursery.start_soon(self._clean_expired_forever)
        else:
            nursery.start_soon(self._orderly.lock_all_forever)
        nursery.start_soon(self.stats.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        # Cleanup first stops the pulls, then commits and unregisters under
        # one shielded deadline (a broker that never answers cannot hold the
        # exit up), and always closes the instance: nothing before that may
        # be a checkpoint outside the shield, or a cancellation arriving here
        # would skip it and leave the instance's nursery open.
        try:
            with trio.move_on_after(2 * self.timeout) as cleanup:
                cleanup.shield = True
                async with self._table.lock:
                    self._table.closing = True
                    for state in self._queues.values():
                        state.dropped = True
                        state.scope.cancel()
                    await self._persist_all(oneway=False)
                    if self._orderly is not None:
                        await self._orderly.unlock_all(self._queues.values())
                    self._queues.clear()
                await self.instance.unregister(consumer_group=self.group)
            if cleanup.cancelled_caught:
                log.warning("%s: closing took too long; offsets may not be committed", self.group)
        finally:
            self._running = False
            self._delivery.close()
            if self.tracer is not None:
                await self.tracer.close()
            result = await self.instance.__aexit__(exc_type, exc, traceback)
        return result

    def running_info(self) -> ConsumerRunningInfo:
        """What GET_CONSUMER_RUNNING_INFO reports: settings, subscriptions,
        the state of each assigned queue and the consume statistics."""
        return _running_info(
            group=self.group,
            consume_from=self.consume_from,
            consume_timestamp=self.consume_timestamp,
            pull_batch_size=self.pull_batch_size,
            max_reconsume_times=self.max_reconsume_times,
            message_model=self.message_model,
            start_timestamp=self._start_timestamp,
            namesrv_addresses=self.instance.remoting.namesrv_addresses,
            queues=self._queues,
            subscriptions=self._subscriptions.values(),
            orderly=self._orderly is not None,
            stats=self.stats,
        )

    # ------------------------------------------------------------------
    # Handing messages out

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> MessageExt:
        try:
            return await self.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def receive(self) -> MessageExt:
        """The next message (waiting for one); with ``auto_ack`` it counts as
        consumed, else once :meth:`ack` is called for it. Raises
        trio.ClosedResourceError once the consumer has closed, RuntimeError
        for an orderly consumer (use :meth:`consume_orderly`)."""
        if self._orderly is not None:
            raise RuntimeError("an orderly consumer hands messages to consume_orderly only")
        return await self._delivery.receive(auto_ack=self.auto_ack)

    async def poll(self, max_messages: int = 32, timeout: float = 5.0) -> list[MessageExt]:  # noqa: ASYNC109
        """Up to ``max_messages`` messages: waits up to ``timeout`` seconds for
        the first, then takes what is already there (Java's
        ``DefaultLitePullConsumer.poll``); acknowledged as :meth:`receive`'s."""
        if self._orderly is not None:
            raise RuntimeError("an orderly consumer hands messages to consume_orderly only")
        return await self._delivery.poll(max_messages, timeout, auto_ack=self.auto_ack)

    async def commit(self) -> None:
        """Commit every assigned queue's consumed offset now and wait for the
        brokers' answers (failures are logged)."""
        await self._persist_all(oneway=False)

    # ------------------------------------------------------------------
    # Offsets

    async def _persist(self, state: _QueueState, *, oneway: bool) -> None:
        if self.local_offsets is not None:
            self.local_offsets.update(state.queue, state.consumed)
            return
        await commit_offset(self.instance, self.group, state, oneway=oneway, timeout=self.timeout)

    async def _persist_all(self, *, oneway: bool) -> None:
        for state in list(self._queues.values()):
            await self._persist(state, oneway=oneway)
        if self.local_offsets is not None:
            await self.local_offsets.persist(list(self._queues))

    async def _persist_forever(self) -> None:
        async for _ in periodic(self.persist_interval):
            await self._persist_all(oneway=True)

    async def _start_offset(self, queue: MessageQueue) -> tuple[int, bool] | None:
        """Where a newly assigned queue starts (see :func:`start_offset`;
        a broadcasting consumer's stored offset is in its local file)."""
        stored = None if self.local_offsets is None else self.local_offsets.read(queue)
        if stored is not None:
            return stored, True
        find = start_offset if self.local_offsets is None else initial_offset
        return await find(
            self.instance,
            self.group,
            queue,
            consume_from=self.consume_from,
            consume_timestamp=self.consume_timestamp,
            timeout=self.timeout,
        )

    # ------------------------------------------------------------------
    # Rebalance

    async def _rebalance_forever(self) -> None:
        while True:
            self._wakeup = trio.Event()
            await self.rebalance()
            with trio.move_on_after(self.rebalance_interval):
                await self._wakeup.wait()

    async def rebalance(self) -> None:
        """Share every subscribed topic's queues with the group now."""
        await self._table.rebalance(self._subscriptions.items())

    # ------------------------------------------------------------------
    # Pulling

    def _start_pulling(self, state: _QueueState) -> None:
        self.instance.nursery.start_soon(self._pull_forever, state)
        if self._orderly is not None:
            self._orderly.queue_added()

    async def _clean_expired_forever(self) -> None:
        async for _ in periodic(self.consume_timeout):
            await self._concurrent.clean_expired(self.consume_timeout)

    async def _pull_forever(self, state: _QueueState) -> None:
        with state.scope:
            while not state.dropped:
                if self.flow_control.over(state.process, orderly=self._orderly is not None):
                    await trio.sleep(PULL_DELAY_WHEN_FLOW_CONTROL)
                    continue
                if self._orderly is not None and not state.process.locked:
                    await trio.sleep(PULL_DELAY_WHEN_EXCEPTION)  # not pulled until locked
                    continue
                if not await self._pull_once(state):
                    await trio.sleep(PULL_DELAY_WHEN_EXCEPTION)

    async def _pull_once(self, state: _QueueState) -> bool:
        """One PULL_MESSAGE and what follows; False when the next one should wait."""
        settings = PullSettings(
            group=self.group,
            pull_batch_size=self.pull_batch_size,
            broker_suspend_max=self.broker_suspend_max,
            timeout_when_suspend=self.timeout_when_suspend,
            commit_on_pull=self.local_offsets is None,
        )
        return await pull_once(
            self.instance,
            settings,
            state,
            self._delivery.deliver if self._orderly is None else self._orderly.deliver,
            functools.partial(self._persist, oneway=False),
            self.stats,
        )


__all__ = [
    "PullStatus",
    "PullSysFlag",
    "PushConsumer",
    "decode_pulled",
    "delivered_form",
    "filter_by_tags",
    "retry_topic",
]
