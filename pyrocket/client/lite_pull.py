"""The lite pull consumer (Java 4.7.0's ``DefaultLitePullConsumer``): the
application asks for messages with :meth:`LitePullConsumer.poll` and
decides where each queue stands (seek, pause, commit), while one pull task
per queue keeps a bounded buffer filled in the background.

::

    from pyrocket.client import LitePullConsumer

    async with LitePullConsumer("my_group", ["127.0.0.1:9876"]) as consumer:
        await consumer.subscribe("TopicTest", "TagA || TagB")  # shared with the group
        # or: await consumer.assign(await consumer.fetch_message_queues("TopicTest"))
        while True:
            messages = await consumer.poll(timeout=1.0)   # [] when nothing came
            ...
            await consumer.commit_sync()                  # with auto_commit=False

Two ways to get queues (as in Java, a consumer uses one of them):

* :meth:`~LitePullConsumer.subscribe`: the group shares the topic's queues
  as a push consumer's group does (heartbeats, NOTIFY_CONSUMER_IDS_CHANGED,
  a rebalance every 20 s, :func:`~pyrocket.client.allocate.allocate_averagely`
  or the strategy given; BROADCASTING reads every queue); a queue newly
  assigned starts at the group's committed offset, else per
  ``consume_from``;
* :meth:`~LitePullConsumer.assign`: exactly the queues named, no rebalance.

Offsets: a message counts as consumed once :meth:`~LitePullConsumer.poll`
has returned it, and only then may its offset be committed. With
``auto_commit`` (the default) the consumed offsets go to the brokers every
``auto_commit_interval`` seconds, when a queue moves to another consumer and
when the consumer closes (also when the closing block is cancelled); with
``auto_commit=False`` only :meth:`~LitePullConsumer.commit_sync` commits.
A broadcasting consumer commits to its local offsets file instead
(:mod:`pyrocket.client.local_offsets`, ``local_offset_store_dir``).

Memory is bounded: a queue's task stops pulling while the consumer buffers
``pull_threshold_for_all`` messages in all, or its queue buffers
``pull_threshold_for_queue`` messages or ``pull_threshold_size_for_queue``
MiB of bodies, until :meth:`~LitePullConsumer.poll` takes some.

Java's settings keep their names in snake case; those in milliseconds are
seconds here without the ``_millis`` (``pollTimeoutMillis``: ``poll_timeout``;
``consumerTimeoutMillisWhenSuspend``: ``timeout_when_suspend``).
The per-queue state, the buffer and the pull task are in
:mod:`pyrocket.client.lite_pull_queue`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Self

import trio
from trio_util import periodic

from pyrocket.client.allocate import AllocateStrategy, allocate_averagely
from pyrocket.client.instance import (
    ClientError,
    ClientInstance,
    queue_sort_key,
    subscribe_queues,
)
from pyrocket.client.lite_pull_info import running_info_processor
from pyrocket.client.lite_pull_queue import (
    MIN_AUTO_COMMIT_INTERVAL,
    AssignedQueue,
    LitePullSettings,
    PollBuffer,
    SubscriptionType,
    TopicWatch,
    allocated,
    commit_after_cancel,
    commit_queue,
    committed_offset,
    consumer_data,
    master_of,
    pull_forever,
)
from pyrocket.client.local_offsets import LocalOffsetStore, store_path
from pyrocket.client.pulling import now_ms
from pyrocket.client.selector import MessageSelector, check_client_in_broker
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumerData,
    MessageModel,
    MessageQueue,
    SubscriptionData,
)
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.message import MessageExt
from pyrocket.remoting import Connection
from pyrocket.remoting.tls import TlsSettings

log = logging.getLogger("pyrocket.client.lite_pull")


class LitePullConsumer:
    """A consumer whose application polls; see the module.

    Raises ValueError for settings Java refuses (a suspend timeout not over
    the broker's hold time, a non-positive batch size or threshold)."""

    def __init__(
        self,
        group: str,
        namesrv_addresses: Sequence[str],
        *,
        message_model: MessageModel = MessageModel.CLUSTERING,
        consume_from: ConsumeFromWhere = ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
        consume_timestamp: int | None = None,
        allocate: AllocateStrategy[MessageQueue] = allocate_averagely,
        auto_commit: bool = True,
        auto_commit_interval: float = 5.0,
        pull_batch_size: int = 10,
        pull_threshold_for_all: int = 10000,
        pull_threshold_for_queue: int = 1000,
        pull_threshold_size_for_queue: int = 100,
        poll_timeout: float = 5.0,
        consumer_pull_timeout: float = 10.0,
        broker_suspend_max: float = 20.0,
        timeout_when_suspend: float = 30.0,
        pull_delay_when_exception: float = 1.0,
        topic_metadata_check_interval: float = 30.0,
        rebalance_interval: float = 20.0,
        instance_name: str | None = None,
        client_ip: str | None = None,
        timeout: float = 3.0,
        heartbeat_interval: float = 30.0,
        poll_name_server_interval: float = 30.0,
        tls: TlsSettings | None = None,
        local_offset_store_dir: str | None = None,
    ) -> None:
        if timeout_when_suspend < broker_suspend_max:
            raise ValueError(
                "Long polling mode, the consumer consumerTimeoutMillisWhenSuspend "
                "must greater than brokerSuspendMaxTimeMillis"
            )
        if min(pull_batch_size, pull_threshold_for_all, pull_threshold_for_queue) <= 0:
            raise ValueError("pull_batch_size and the pull thresholds must be positive")
        self.group = group
        self.message_model = message_model
        self.consume_from = consume_from
        #: Where CONSUME_FROM_TIMESTAMP starts (ms); Java's default is half
        #: an hour before the consumer was made.
        half_an_hour_ago = now_ms() - 30 * 60 * 1000
        self.consume_timestamp = (
            half_an_hour_ago if consume_timestamp is None else consume_timestamp
        )
        self.allocate = allocate
        self.auto_commit = auto_commit
        self.auto_commit_interval = max(auto_commit_interval, MIN_AUTO_COMMIT_INTERVAL)
        self.poll_timeout = poll_timeout
        self.topic_metadata_check_interval = topic_metadata_check_interval
        self.rebalance_interval = rebalance_interval
        self.timeout = timeout
        self.settings = LitePullSettings(
            group=group,
            pull_batch_size=pull_batch_size,
            pull_threshold_for_all=pull_threshold_for_all,
            pull_threshold_for_queue=pull_threshold_for_queue,
            pull_threshold_size_for_queue=pull_threshold_size_for_queue * 1024 * 1024,
            consumer_pull_timeout=consumer_pull_timeout,
            broker_suspend_max=broker_suspend_max,
            timeout_when_suspend=timeout_when_suspend,
            pull_delay_when_exception=pull_delay_when_exception,
            consume_from=consume_from,
            consume_timestamp=self.consume_timestamp,
            timeout=timeout,
            message_model=message_model,
            auto_commit=auto_commit,
            auto_commit_interval=self.auto_commit_interval,
            poll_timeout=poll_timeout,
            topic_metadata_check_interval=topic_metadata_check_interval,
        )
        self._mode = SubscriptionType.NONE
        self._subscriptions: dict[str, SubscriptionData] = {}
        self._assigned: set[MessageQueue] = set()
        self._queues: dict[MessageQueue, AssignedQueue] = {}
        self._buffer = PollBuffer()
        self._lock = trio.Lock()
        self._running = False
        self._closing = False
        self._wakeup = trio.Event()
        self._watch = TopicWatch()
        self.instance = ClientInstance(
            namesrv_addresses,
            instance_name=instance_name,
            client_ip=client_ip,
            timeout=timeout,
            poll_name_server_interval=poll_name_server_interval,
            heartbeat_interval=heartbeat_interval,
            tls=tls,
            consumer_data=self._consumer_data,
            topics=self._route_topics,
        )
        if message_model is MessageModel.BROADCASTING:
            path = store_path(local_offset_store_dir, self.instance.client_id, group)
            self.settings = replace(self.settings, local_offsets=LocalOffsetStore(path))

    @property
    def client_id(self) -> str:
        return self.instance.client_id

    @property
    def _clustering(self) -> bool:
        return self.message_model is MessageModel.CLUSTERING

    @property
    def assignment(self) -> set[MessageQueue]:
        """The queues this consumer reads now."""
        return set(self._queues)

    def _route_topics(self) -> tuple[str, ...]:
        topics = {q.topic or "" for q in self._assigned} | set(self._subscriptions)
        return tuple(topics | set(self._watch.listeners))

    def _consumer_data(self) -> tuple[ConsumerData, ...]:
        return (consumer_data(self.group, self.message_model, self._subscriptions.values()),)

    def _set_mode(self, mode: SubscriptionType) -> None:
        if self._mode is SubscriptionType.NONE:
            self._mode = mode
        elif self._mode is not mode:
            raise RuntimeError("Subscribe and assign are mutually exclusive.")

    # ------------------------------------------------------------------
    # Choosing queues

    async def subscribe(self, topic: str, expression: str | MessageSelector = "*") -> None:
        """Share ``topic`` with the group, reading the messages whose tag
        matches ``expression`` (``"*"`` or ``"TagA || TagB"``) or that a
        :class:`~pyrocket.client.selector.MessageSelector` picks. May be
        called before or after entering. Raises RuntimeError after
        :meth:`assign`, ValueError for an empty topic, ClientError when a
        broker refuses an SQL92 expression."""
        if not topic:
            raise ValueError("Topic can not be null or empty.")
        self._set_mode(SubscriptionType.SUBSCRIBE)
        if isinstance(expression, MessageSelector):
            subscription = expression.subscription(topic)
        else:
            subscription = SubscriptionData.for_expression(topic, expression)
        self._subscriptions[topic] = subscription
        if self._running:
            await self.instance.update_route(topic)
            await check_client_in_broker(self.instance, self.group, [subscription], self.timeout)
            await self.instance.heartbeat_all()
            await self.rebalance()

    async def unsubscribe(self, topic: str) -> None:
        """Stop reading ``topic`` (its buffered messages are dropped)."""
        async with self._lock:
            self._subscriptions.pop(topic, None)
            for queue in [q for q in self._queues if q.topic == topic]:
                await self._drop(queue, commit=self.auto_commit)
        if self._running:
            await self.instance.heartbeat_all()

    async def assign(self, queues: Collection[MessageQueue]) -> None:
        """Read exactly ``queues`` (replacing any assigned before), without
        rebalance. A queue starts at the group's committed offset, else per
        ``consume_from``. Raises ValueError for no queues, RuntimeError
        after :meth:`subscribe`."""
        if not queues:
            raise ValueError("Message queues can not be null or empty.")
        self._set_mode(SubscriptionType.ASSIGN)
        self._assigned = set(queues)
        if self._running:
            await self._update_assigned()

    async def _update_assigned(self) -> None:
        async with self._lock:
            if self._closing:
                return
            for queue in set(self._queues) - self._assigned:
                await self._drop(queue, commit=self.auto_commit)
            subscriptions: dict[str, SubscriptionData] = {}
            for queue in sorted(self._assigned - set(self._queues), key=queue_sort_key):
                topic = queue.topic or ""
                if topic not in subscriptions:
                    subscriptions[topic] = SubscriptionData.for_expression(topic, "*")
                    if topic not in self.instance.routes:
                        await self.instance.update_route(topic)
                self._start(queue, subscriptions[topic])

    def _start(self, queue: MessageQueue, subscription: SubscriptionData) -> None:
        state = AssignedQueue(queue, subscription)
        self._queues[queue] = state
        self.instance.nursery.start_soon(
            pull_forever, self.instance, self.settings, state, self._buffer
        )

    async def _drop(self, queue: MessageQueue, *, commit: bool) -> None:
        state = self._queues.get(queue)
        if state is None:
            return
        state.dropped = True
        state.scope.cancel()
        self._buffer.discard(state)
        if commit:
            await self._commit(state)
        del self._queues[queue]

    async def fetch_message_queues(self, topic: str) -> set[MessageQueue]:
        """The readable queues of ``topic`` (``fetchSubscribeMessageQueues``).
        Raises ClientError when the NameServer has no route for it."""
        route = await self.instance.update_route(topic)
        queues = subscribe_queues(topic, route) if route is not None else []
        if not queues:
            raise ClientError(f"Can not find Message Queue for this topic, {topic}")
        return set(queues)

    def register_topic_message_queue_change_listener(
        self, topic: str, listener: Callable[[str, set[MessageQueue]], None]
    ) -> None:
        """Call ``listener(topic, queues)`` when ``topic``'s queues change,
        checked every ``topic_metadata_check_interval`` seconds (Java's
        ``TopicMessageQueueChangeListener``)."""
        self._watch.listeners[topic] = listener

    async def _check_topic_metadata_forever(self) -> None:
        async for _ in periodic(self.topic_metadata_check_interval):
            await self._watch.check(self.fetch_message_queues)

    # ------------------------------------------------------------------
    # Lifetime

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def start(self) -> None:
        """Connect, announce the group and start pulling. Raises ClientError
        when a broker refuses an SQL92 subscription."""
        if self._running or self._closing:
            raise RuntimeError("the lite pull consumer has started before")
        if self.settings.local_offsets is not None:
            await self.settings.local_offsets.load()
        await self.instance.__aenter__()
        try:
            self._running = True
            remoting = self.instance.remoting
            remoting.register_processor(
                RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, self._on_ids_changed
            )
            info = running_info_processor(
                self.settings,
                now_ms(),
                lambda: remoting.namesrv_addresses,
                self._subscriptions.values,
            )
            remoting.register_processor(RequestCode.GET_CONSUMER_RUNNING_INFO, info)
            for topic in self._route_topics():
                await self.instance.update_route(topic)
            await check_client_in_broker(
                self.instance, self.group, self._subscriptions.values(), self.timeout
            )
            await self.instance.heartbeat_all()
            self._watch.remember(self.instance.routes)
            if self._mode is SubscriptionType.ASSIGN:
                await self._update_assigned()
            await self.rebalance()
        except BaseException as exc:
            self._running = False
            await self.instance.close_after_failed_start(exc)
            raise
        nursery = self.instance.nursery
        nursery.start_soon(self._rebalance_forever)
        nursery.start_soon(self._auto_commit_forever)
        nursery.start_soon(self._check_topic_metadata_forever)

    async def close(self) -> None:
        """Stop pulling, commit (with ``auto_commit``) what was polled,
        unregister and disconnect."""
        await self.__aexit__(None, None, None)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        if not self._running:
            return None
        # As the push consumer: stop, commit and unregister shielded under a
        # deadline, then always close the instance.
        cancelled = trio.current_effective_deadline() <= trio.current_time()
        try:
            with trio.move_on_after(2 * self.timeout) as cleanup:
                cleanup.shield = True
                async with self._lock:
                    self._closing = True
                    for state in self._queues.values():
                        state.dropped = True
                        state.scope.cancel()
                    if self.auto_commit and cancelled and self._clustering:
                        states = self._queues.values()
                        await commit_after_cancel(self.instance, self.group, states, self.timeout)
                    elif self.auto_commit:
                        await self._commit_all()
                    self._queues.clear()
                    self._buffer.clear()
                await self.instance.unregister(consumer_group=self.group)
            if cleanup.cancelled_caught:
                log.warning("%s: closing took too long; offsets may not be committed", self.group)
        finally:
            self._running = False
            self._buffer.notify()
            result = await self.instance.__aexit__(exc_type, exc, traceback)
        return result

    def _on_ids_changed(self, conn: Connection, request: RemotingCommand) -> None:
        log.info("consumer ids of group %s changed; rebalancing", self.group)
        self._wakeup.set()

    # ------------------------------------------------------------------
    # Polling

    @property
    def buffered(self) -> int:
        """How many messages are pulled and not yet polled."""
        return self._buffer.buffered

    async def poll(
        self,
        timeout: float | None = None,  # noqa: ASYNC109
        max_messages: int | None = None,
    ) -> list[MessageExt]:
        """The next pulled batch of one queue (at most ``pull_batch_size``
        messages), waiting up to ``timeout`` seconds (``poll_timeout`` by
        default) for one; [] when none came. With ``max_messages``, batches
        already buffered are joined up to that many messages. Messages of a
        paused queue stay buffered until it is resumed. What is returned
        counts as consumed. Raises RuntimeError when the consumer is not
        running, ValueError for a negative timeout."""
        if not self._running:
            raise RuntimeError("The consumer not running, please start it first.")
        wait = self.poll_timeout if timeout is None else timeout
        if wait < 0:
            raise ValueError("Timeout must not be negative")
        messages: list[MessageExt] = []
        with trio.move_on_after(wait):
            while not messages and self._running:
                messages = self._buffer.take(max_messages)
                if not messages:
                    await self._buffer.changed().wait()
        if not messages:
            messages = self._buffer.take(max_messages)
        return messages

    # ------------------------------------------------------------------
    # Positions

    def _state(self, queue: MessageQueue) -> AssignedQueue:
        state = self._queues.get(queue)
        if state is None:
            hint = ", may be rebalancing" if self._mode is SubscriptionType.SUBSCRIBE else ""
            raise ClientError(f"The message queue is not in assigned list{hint}: {queue}")
        return state

    async def seek(self, queue: MessageQueue, offset: int) -> None:
        """Read ``queue`` from ``offset`` next: what is buffered of it is
        dropped and a pull in flight abandoned. Raises ClientError when the
        queue is not assigned or ``offset`` is outside its stored range."""
        state = self._state(queue)
        low, high = await self.min_offset(queue), await self.max_offset(queue)
        if not low <= offset <= high:
            raise ClientError(
                f"Seek offset illegal, seek offset = {offset}, min offset = {low}, "
                f"max offset = {high}"
            )
        state.seek(offset)
        self._buffer.discard(state)

    async def seek_to_begin(self, queue: MessageQueue) -> None:
        """:meth:`seek` to ``queue``'s first stored offset."""
        await self.seek(queue, await self.min_offset(queue))

    async def seek_to_end(self, queue: MessageQueue) -> None:
        """:meth:`seek` to the offset after ``queue``'s last message."""
        await self.seek(queue, await self.max_offset(queue))

    async def min_offset(self, queue: MessageQueue) -> int:
        """GET_MIN_OFFSET of ``queue`` (raises ClientError, ResponseError)."""
        addr = await master_of(self.instance, queue)
        return await self.instance.brokers.get_min_offset(addr, queue.topic or "", queue.queue_id)

    async def max_offset(self, queue: MessageQueue) -> int:
        """GET_MAX_OFFSET of ``queue`` (raises ClientError, ResponseError)."""
        addr = await master_of(self.instance, queue)
        return await self.instance.brokers.get_max_offset(addr, queue.topic or "", queue.queue_id)

    async def offset_for_timestamp(self, queue: MessageQueue, timestamp: int) -> int:
        """The first offset of ``queue`` stored at or after ``timestamp`` (ms)."""
        addr = await master_of(self.instance, queue)
        return await self.instance.brokers.search_offset(
            addr, queue.topic or "", queue.queue_id, timestamp
        )

    def pause(self, queues: Iterable[MessageQueue]) -> None:
        """Stop pulling ``queues`` and handing out what is buffered of them."""
        for queue in queues:
            state = self._queues.get(queue)
            if state is not None:
                state.paused = True
        self._buffer.notify()

    def resume(self, queues: Iterable[MessageQueue]) -> None:
        """Undo :meth:`pause`."""
        for queue in queues:
            state = self._queues.get(queue)
            if state is not None:
                state.paused = False
        self._buffer.notify()

    async def committed(self, queue: MessageQueue) -> int:
        """The group's offset of ``queue`` at its broker, -1 when none was
        committed (QUERY_CONSUMER_OFFSET). Raises ClientError when the
        broker cannot be asked. A broadcasting consumer answers from its
        offsets file's table (``LocalFileOffsetStore``)."""
        if self.settings.local_offsets is not None:
            found = self.settings.local_offsets.read(queue)
            return -1 if found is None else found
        return await committed_offset(self.instance, self.group, queue, self.timeout)

    async def commit_sync(self) -> None:
        """Commit every queue's consumed offset (what :meth:`poll` has
        returned) and wait for the brokers' answers; failures are logged."""
        await self._commit_all()

    async def _commit(self, state: AssignedQueue, *, oneway: bool = False) -> None:
        if self.settings.local_offsets is not None:  # written by _commit_all
            state.committed = state.consumed
            self.settings.local_offsets.update(state.queue, state.consumed)
            return
        brokers, group = self.instance.brokers, self.group
        await commit_queue(
            brokers, self.instance, group, state, oneway=oneway, timeout=self.timeout
        )

    async def _commit_all(self, *, oneway: bool = False) -> None:
        for state in list(self._queues.values()):
            await self._commit(state, oneway=oneway)
        if self.settings.local_offsets is not None:
            await self.settings.local_offsets.persist(list(self._queues))

    async def _auto_commit_forever(self) -> None:
        if not self.auto_commit:
            return
        async for _ in periodic(self.auto_commit_interval):
            await self._commit_all(oneway=True)

    # ------------------------------------------------------------------
    # Rebalance

    async def _rebalance_forever(self) -> None:
        while True:
            self._wakeup = trio.Event()
            if self._mode is SubscriptionType.SUBSCRIBE:
                await self.rebalance()
            with trio.move_on_after(self.rebalance_interval):
                await self._wakeup.wait()

    async def rebalance(self) -> None:
        """Share every subscribed topic's queues with the group now."""
        async with self._lock:
            if self._closing or not self._running:
                return
            for topic, subscription in list(self._subscriptions.items()):
                await self._rebalance_topic(topic, subscription)

    async def _rebalance_topic(self, topic: str, subscription: SubscriptionData) -> None:
        route = self.instance.routes.get(topic) or await self.instance.update_route(topic)
        if route is None:
            return
        mine = await allocated(
            self.instance,
            self.group,
            subscribe_queues(topic, route),
            self.message_model,
            self.allocate,
            self.timeout,
        )
        if mine is None:
            return
        for queue in [q for q in self._queues if q.topic == topic and q not in mine]:
            await self._drop(queue, commit=self.auto_commit)
            log.info("%s: %s moved to another consumer", self.group, queue)
        for queue in sorted(mine - set(self._queues), key=queue_sort_key):
            self._start(queue, subscription)
            log.info("%s: reading %s", self.group, queue)


__all__ = ["LitePullConsumer"]
