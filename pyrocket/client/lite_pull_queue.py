"""The lite pull consumer's queues (Java's ``AssignedMessageQueue`` entries
and ``PullTaskImpl``): what each assigned queue records (where the next pull
starts, what poll has handed out, what is committed, paused or not, how much
of it is buffered) and the task that keeps pulling it while the consumer's
buffer has room.

:class:`~pyrocket.client.lite_pull.LitePullConsumer` owns the buffer; a task
hands each batch to the consumer's :class:`PollBuffer` and waits on its
:meth:`PollBuffer.changed` while it must not pull.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import trio

from pyrocket.client.allocate import AllocateStrategy
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.instance import ClientError, ClientInstance, subscribe_queues
from pyrocket.client.local_offsets import LocalOffsetStore
from pyrocket.client.offsets import start_offset
from pyrocket.client.pulling import (
    PullStatus,
    PullSysFlag,
    QueueState,
    pull_address,
    pull_request,
)
from pyrocket.client.selector import TAG
from pyrocket.errors import PyrocketError, ResponseError
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    MessageModel,
    MessageQueue,
    SubscriptionData,
)
from pyrocket.protocol.bodies.route import TopicRouteData
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.headers import (
    PullMessageRequestHeader,
)
from pyrocket.protocol.javahash import JavaHashSet
from pyrocket.protocol.message import MessageExt
from pyrocket.remoting import RemotingClient

log = logging.getLogger("pyrocket.client.lite_pull")

#: PullSysFlag.FLAG_LITE_PULL_MESSAGE.
LITE_PULL = 0x10
#: How long a task whose queue must not be pulled sleeps before it looks
#: again if nothing woke it (Java's PULL_TIME_DELAY_MILLS_WHEN_PAUSE).
RECHECK_WHEN_WAITING = 1.0


#: Java's DefaultLitePullConsumer.MIN_AUTOCOMMIT_INTERVAL_MILLIS, in seconds.
MIN_AUTO_COMMIT_INTERVAL = 1.0


class SubscriptionType(enum.Enum):
    """Java's ``SubscriptionType``: how a consumer got its queues."""

    NONE = "NONE"
    SUBSCRIBE = "SUBSCRIBE"
    ASSIGN = "ASSIGN"


@dataclasses.dataclass(frozen=True, slots=True)
class LitePullSettings:
    """The consumer's settings its pull tasks read (sizes in bytes, times
    in seconds)."""

    group: str
    pull_batch_size: int
    pull_threshold_for_all: int
    pull_threshold_for_queue: int
    pull_threshold_size_for_queue: int
    consumer_pull_timeout: float
    broker_suspend_max: float
    timeout_when_suspend: float
    pull_delay_when_exception: float
    consume_from: ConsumeFromWhere
    consume_timestamp: int
    timeout: float
    message_model: MessageModel = MessageModel.CLUSTERING
    auto_commit: bool = True
    auto_commit_interval: float = 5.0
    poll_timeout: float = 5.0
    topic_metadata_check_interval: float = 30.0
    #: A broadcasting consumer's offsets file (None when clustering).
    local_offsets: LocalOffsetStore | None = None


class AssignedQueue(QueueState):
    """One queue of a lite pull consumer. ``next_offset`` is where the next
    pull starts (-1 until known), ``consumed`` the offset after what poll
    has handed out (-1: nothing yet), ``committed`` the last offset sent to
    the broker. ``generation`` grows at each seek: a batch pulled before it
    is stale."""

    def __init__(self, queue: MessageQueue, subscription: SubscriptionData) -> None:
        super().__init__(queue, subscription, -1)
        self.paused = False
        self.generation = 0
        self.committed = -1
        self.buffered_count = 0
        self.buffered_size = 0
        #: The pull in flight, abandoned by a seek.
        self.pull_scope = trio.CancelScope()

    def seek(self, offset: int) -> None:
        """Pull from ``offset`` next, and count what is before it consumed."""
        self.generation += 1
        self.next_offset = offset
        self.consumed = offset
        self.pull_scope.cancel()

    def consumed_to(self, offset: int) -> None:
        self.consumed = offset

    def buffer_added(self, messages: Sequence[MessageExt]) -> None:
        self.buffered_count += len(messages)
        self.buffered_size += sum(len(m.body) for m in messages)

    def buffer_removed(self, messages: Sequence[MessageExt]) -> None:
        self.buffered_count -= len(messages)
        self.buffered_size -= sum(len(m.body) for m in messages)


@dataclasses.dataclass(slots=True)
class PulledBatch:
    """What one pull found for a queue (Java's ``ConsumeRequest``), and the
    offset after it (the queue's consumed offset once all is polled)."""

    state: AssignedQueue
    messages: list[MessageExt]
    next_offset: int
    generation: int


class PollBuffer:
    """The consumer's pulled batches not yet polled (Java's
    ``consumeRequestCache``), in the order pulled, and the count of their
    messages, which ``pull_threshold_for_all`` bounds."""

    def __init__(self) -> None:
        self._batches: list[PulledBatch] = []
        self.buffered = 0
        self._changed = trio.Event()

    def notify(self) -> None:
        """Wake whoever waits for a change of the buffer or of a queue's
        paused state."""
        self._changed.set()
        self._changed = trio.Event()

    def changed(self) -> trio.Event:
        """The event the next :meth:`notify` sets."""
        return self._changed

    def offer(self, batch: PulledBatch) -> None:
        """Keep a pull task's batch, unless its queue was dropped or seeked
        since the pull."""
        if batch.state.dropped or batch.generation != batch.state.generation:
            return
        self._batches.append(batch)
        self.buffered += len(batch.messages)
        batch.state.buffer_added(batch.messages)
        self.notify()

    def _remove(self, index: int) -> None:
        batch = self._batches.pop(index)
        self.buffered -= len(batch.messages)
        batch.state.buffer_removed(batch.messages)

    def take(self, max_messages: int | None) -> list[MessageExt]:
        """The first batch of a queue not paused (with ``max_messages``:
        batches up to that many messages, the last one possibly split), each
        queue's consumed offset moved past what is taken."""
        taken: list[MessageExt] = []
        index = 0
        while index < len(self._batches):
            batch = self._batches[index]
            state = batch.state
            if state.dropped or batch.generation != state.generation:
                self._remove(index)
                continue
            if state.paused:
                index += 1
                continue
            room = len(batch.messages) if max_messages is None else max_messages - len(taken)
            if room < len(batch.messages):
                part, batch.messages = batch.messages[:room], batch.messages[room:]
                self.buffered -= len(part)
                state.buffer_removed(part)
                state.consumed_to(batch.messages[0].queue_offset)
            else:
                part = batch.messages
                self._remove(index)
                state.consumed_to(batch.next_offset)
            taken.extend(part)
            if max_messages is None or len(taken) >= max_messages:
                break
        if taken:
            self.notify()
        return taken

    def discard(self, state: AssignedQueue) -> None:
        """Forget what is buffered of ``state``'s queue."""
        for index in reversed(range(len(self._batches))):
            if self._batches[index].state is state:
                self._remove(index)
        self.notify()

    def clear(self) -> None:
        self._batches.clear()
        self.buffered = 0
        self.notify()


def must_wait(settings: LitePullSettings, state: AssignedQueue, owner: PollBuffer) -> bool:
    """Whether the queue must not be pulled now: paused, or a buffer full
    (the consumer's, or the queue's by count or by size)."""
    if state.paused or owner.buffered >= settings.pull_threshold_for_all:
        return True
    if state.buffered_count >= settings.pull_threshold_for_queue:
        return True
    return state.buffered_size > settings.pull_threshold_size_for_queue


async def initial_offset(
    instance: ClientInstance, settings: LitePullSettings, queue: MessageQueue
) -> tuple[int, bool] | None:
    """Where a queue starts and whether that is the group's committed
    offset; None when it cannot be known now. A broadcasting consumer keeps
    no offsets at the brokers: it starts at the offset in its local file,
    else per ``consume_from``."""
    if settings.local_offsets is not None:
        stored = settings.local_offsets.read(queue)
        if stored is not None:
            return stored, True
    if settings.message_model is MessageModel.CLUSTERING:
        return await start_offset(
            instance,
            settings.group,
            queue,
            consume_from=settings.consume_from,
            consume_timestamp=settings.consume_timestamp,
            timeout=settings.timeout,
        )
    addr = instance.master_addr(queue.broker_name or "")
    if addr is None:
        return None
    topic, queue_id = queue.topic or "", queue.queue_id
    try:
        if settings.consume_from is ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET:
            return 0, False
        if settings.consume_from is ConsumeFromWhere.CONSUME_FROM_TIMESTAMP:
            found = await instance.brokers.search_offset(
                addr, topic, queue_id, settings.consume_timestamp, settings.timeout
            )
            return found, False
        return await instance.brokers.get_max_offset(addr, topic, queue_id, settings.timeout), False
    except PyrocketError as exc:
        log.warning("cannot find where to start %s: %s", queue, exc)
        return None


#: Java's ``TopicMessageQueueChangeListener.onChanged``.
TopicListener = Callable[[str, set[MessageQueue]], None]


class TopicWatch:
    """The topics whose queue sets a consumer watches, their listeners and
    the queues last seen of each."""

    def __init__(self) -> None:
        self.listeners: dict[str, TopicListener] = {}
        self.known: dict[str, set[MessageQueue]] = {}

    def remember(self, routes: Mapping[str, TopicRouteData]) -> None:
        """Take the queues of the routes already fetched as the ones seen."""
        for topic in self.listeners:
            route = routes.get(topic)
            if route is not None:
                self.known[topic] = set(subscribe_queues(topic, route))

    async def check(self, fetch: Callable[[str], Awaitable[set[MessageQueue]]]) -> None:
        """Fetch each watched topic's queues and tell its listener when they
        changed (a topic without a route is looked at again next time)."""
        for topic, listener in list(self.listeners.items()):
            try:
                queues = await fetch(topic)
            except ClientError as exc:
                log.debug("queues of %s unknown: %s", topic, exc)
                continue
            if queues != self.known.get(topic):
                self.known[topic] = queues
                listener(topic, set(queues))


def consumer_data(
    group: str, model: MessageModel, subscriptions: Iterable[SubscriptionData]
) -> ConsumerData:
    """What HEART_BEAT announces of a lite pull consumer: CONSUME_ACTIVELY,
    its subscriptions (none when it assigns its queues) in Java's HashSet
    order, and CONSUME_FROM_LAST_OFFSET whatever it is set to, as Java's
    does (the setting acts only in the client)."""
    ordered: JavaHashSet[SubscriptionData] = JavaHashSet(hasher=SubscriptionData.java_hash_code)
    for subscription in subscriptions:
        ordered.add(subscription)
    return ConsumerData(
        group_name=group,
        consume_type=ConsumeType.CONSUME_ACTIVELY,
        message_model=model,
        consume_from_where=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
        subscription_data_set=tuple(ordered),
        unit_mode=False,
    )


async def commit_queue(
    brokers: BrokerAPI,
    instance: ClientInstance,
    group: str,
    state: AssignedQueue,
    *,
    oneway: bool,
    timeout: float,  # noqa: ASYNC109
) -> None:
    """Send ``state``'s consumed offset, if it moved since the last commit,
    to its queue's master (else a slave) through ``brokers``; ``committed`` records it
    once sent. Failures are logged (the next commit tries again)."""
    offset, queue = state.consumed, state.queue
    if offset < 0 or offset == state.committed:
        return
    addr = instance.admin_addr(queue.broker_name or "")
    if addr is None:
        log.warning("no broker for %s; offset %d not committed", queue, offset)
        return
    try:
        await brokers.update_consumer_offset(
            addr, group, queue.topic or "", queue.queue_id, offset, oneway=oneway, timeout=timeout
        )
    except PyrocketError as exc:
        log.warning("committing offset %d of %s failed: %s", offset, queue, exc)
        return
    state.committed = offset


async def commit_after_cancel(
    instance: ClientInstance,
    group: str,
    states: Iterable[AssignedQueue],
    timeout: float,  # noqa: ASYNC109
) -> None:
    """Commit each queue's consumed offset over connections of its own.

    A consumer whose block is cancelled has its instance's connections
    cancelled with it; the caller runs this under a shield, so the client
    opened here lives on until the offsets are sent. Failures are logged."""
    async with RemotingClient(instance.remoting.config) as remoting:
        brokers = BrokerAPI(remoting, timeout)
        for state in states:
            await commit_queue(brokers, instance, group, state, oneway=False, timeout=timeout)


async def master_of(instance: ClientInstance, queue: MessageQueue) -> str:
    """The master's address of ``queue``'s broker, the route fetched again
    when it is not known. Raises ClientError when there is none."""
    broker = queue.broker_name or ""
    addr = instance.master_addr(broker)
    if addr is None:
        await instance.update_route(queue.topic or "")
        addr = instance.master_addr(broker)
    if addr is None:
        raise ClientError(f"The broker[{broker}] not exist")
    return addr


async def committed_offset(
    instance: ClientInstance,
    group: str,
    queue: MessageQueue,
    timeout: float,  # noqa: ASYNC109
) -> int:
    """QUERY_CONSUMER_OFFSET: the group's committed offset of ``queue``, -1
    when there is none; asked of the master, else of a slave (Java's offset
    store). Raises ClientError when the broker cannot tell."""
    broker = queue.broker_name or ""
    addr = instance.admin_addr(broker)
    if addr is None:
        await instance.update_route(queue.topic or "")
        addr = instance.admin_addr(broker)
    if addr is None:
        raise ClientError(f"The broker[{broker}] not exist")
    try:
        return await instance.brokers.query_consumer_offset(
            addr, group, queue.topic or "", queue.queue_id, timeout
        )
    except ResponseError as exc:
        if exc.code == ResponseCode.QUERY_NOT_FOUND:
            return -1
        raise ClientError("Fetch consume offset from broker exception", exc.code) from exc
    except PyrocketError as exc:
        raise ClientError("Fetch consume offset from broker exception") from exc


async def allocated(
    instance: ClientInstance,
    group: str,
    queues: Sequence[MessageQueue],
    model: MessageModel,
    allocate: AllocateStrategy[MessageQueue],
    timeout: float,  # noqa: ASYNC109
) -> set[MessageQueue] | None:
    """The queues of one topic (``queues``, sorted) this client reads:
    every one when broadcasting, else its share among the group's client
    ids (GET_CONSUMER_LIST_BY_GROUP). None when that cannot be known now."""
    if not queues:
        return None
    if model is MessageModel.BROADCASTING:
        return set(queues)
    addr = instance.any_broker_addr(queues[0].topic or "")
    if addr is None:
        return None
    try:
        ids = await instance.brokers.get_consumer_id_list(addr, group, timeout)
    except PyrocketError as exc:
        log.warning("consumer list of %s from %s failed: %s", group, addr, exc)
        return None
    if not ids:
        return None
    return set(allocate(group, instance.client_id, queues, sorted(ids)))


async def pull_forever(
    instance: ClientInstance,
    settings: LitePullSettings,
    state: AssignedQueue,
    owner: PollBuffer,
) -> None:
    """The queue's pull task, until it is dropped (its scope cancelled)."""
    with state.scope:
        while not state.dropped:
            if must_wait(settings, state, owner):
                with trio.move_on_after(RECHECK_WHEN_WAITING):
                    await owner.changed().wait()
                continue
            if state.next_offset < 0:
                generation = state.generation
                start = await initial_offset(instance, settings, state.queue)
                if start is None:
                    await trio.sleep(settings.pull_delay_when_exception)
                elif generation == state.generation:
                    offset, committed = start
                    state.next_offset = offset
                    if committed:
                        state.consumed = state.committed = offset
                continue
            if not await pull_once(instance, settings, state, owner):
                await trio.sleep(settings.pull_delay_when_exception)


async def pull_once(
    instance: ClientInstance,
    settings: LitePullSettings,
    state: AssignedQueue,
    owner: PollBuffer,
) -> bool:
    """One held PULL_MESSAGE carrying the subscription (as Java's lite
    consumer sends it: suspend, subscription and lite-pull flags, no commit
    offset); what it finds goes to ``owner``. False when the next pull should
    wait. As in Java 4.7.0, the answer is awaited ``timeout_when_suspend``
    seconds (``consumer_pull_timeout`` is not what bounds a held pull)."""
    queue = state.queue
    found_addr = await pull_address(instance, queue, state.broker_id)
    if found_addr is None:
        return False
    addr = found_addr[0]
    subscription = state.subscription
    is_tag = subscription.expression_type in (None, "", TAG)
    sys_flag = PullSysFlag.SUSPEND | PullSysFlag.SUBSCRIPTION | LITE_PULL
    generation = state.generation
    header = PullMessageRequestHeader(
        consumer_group=settings.group,
        topic=queue.topic or "",
        queue_id=queue.queue_id,
        queue_offset=state.next_offset,
        max_msg_nums=settings.pull_batch_size,
        sys_flag=int(sys_flag),
        commit_offset=0,
        suspend_timeout_millis=int(settings.broker_suspend_max * 1000),
        subscription=subscription.sub_string,
        sub_version=0 if is_tag else subscription.sub_version,
        expression_type=subscription.expression_type,
    )
    state.pull_scope = trio.CancelScope()
    with state.pull_scope:
        pulled = await pull_request(
            instance, addr, header, settings.timeout_when_suspend, settings.group, state
        )
        if pulled is None:
            return False
        status, answer, found = pulled
    if state.pull_scope.cancelled_caught or state.dropped or generation != state.generation:
        return True  # seeked meanwhile: the next pull starts where asked
    state.broker_id = answer.suggest_which_broker_id
    if status is PullStatus.OFFSET_ILLEGAL:
        log.warning(
            "%s: offset %d of %s is illegal; moving to %d",
            settings.group,
            state.next_offset,
            queue,
            answer.next_begin_offset,
        )
    elif found:
        owner.offer(PulledBatch(state, found, answer.next_begin_offset, generation))
    state.next_offset = answer.next_begin_offset
    return True


__all__ = [
    "LITE_PULL",
    "MIN_AUTO_COMMIT_INTERVAL",
    "AssignedQueue",
    "LitePullSettings",
    "PollBuffer",
    "PulledBatch",
    "SubscriptionType",
    "TopicListener",
    "TopicWatch",
    "allocated",
    "commit_after_cancel",
    "commit_queue",
    "committed_offset",
    "consumer_data",
    "initial_offset",
    "master_of",
    "must_wait",
    "pull_forever",
    "pull_once",
]
