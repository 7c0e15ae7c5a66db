"""The consumer (Java's ``DefaultMQPushConsumer`` in CLUSTERING mode, with the
messages handed to the caller instead of to a listener thread pool).

::

    from pyrocket.client import PushConsumer

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
* offsets: a message counts as consumed once it has been handed out (as
  ``DefaultLitePullConsumer``'s poll does); the consumed offset rides on
  each pull (the commitOffset field and sysFlag bit) and is committed with
  UPDATE_CONSUMER_OFFSET every 5 s, when a queue moves to another consumer
  and when the consumer closes; closing also unregisters the client;
* :meth:`PushConsumer.reconsume_later` gives a message back
  (CONSUMER_SEND_MSG_BACK, Java's RECONSUME_LATER): it comes back later
  through the group's ``%RETRY%`` topic, handed out under its own topic.

Delivery is at least once: a consumer stopped without closing may have its
last messages delivered again to whoever takes over its queues.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Self

import trio
from trio_util import periodic

from pyrocket.client.allocate import AllocateStrategy, allocate_averagely
from pyrocket.client.instance import (
    RETRY_GROUP_TOPIC_PREFIX,
    ClientInstance,
    subscribe_queues,
)
from pyrocket.errors import ProtocolError, PyrocketError, ResponseError
from pyrocket.protocol.bodies.admin import (
    PROP_CLIENT_VERSION,
    PROP_CONSUME_ORDERLY,
    PROP_CONSUME_TYPE,
    PROP_CONSUMER_START_TIMESTAMP,
    PROP_NAMESERVER_ADDR,
    PROP_THREADPOOL_CORE_SIZE,
    ConsumerRunningInfo,
    ConsumeStatus,
    ProcessQueueInfo,
)
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    MessageModel,
    MessageQueue,
    SubscriptionData,
)
from pyrocket.protocol.bodies.properties import Properties
from pyrocket.protocol.bodies.route import MASTER_ID
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    ConsumerSendMsgBackRequestHeader,
    GetConsumerRunningInfoRequestHeader,
    PullMessageRequestHeader,
    PullMessageResponseHeader,
)
from pyrocket.protocol.javahash import JavaHashSet
from pyrocket.protocol.message import (
    MessageConst,
    MessageExt,
    MessageSysFlag,
    decode_message,
    decompress_body,
)
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.client.consumer")


class PullSysFlag(enum.IntFlag):
    """Bits of PULL_MESSAGE's sysFlag (Java's ``PullSysFlag``)."""

    COMMIT_OFFSET = 0x1
    SUSPEND = 0x2
    SUBSCRIPTION = 0x4
    CLASS_FILTER = 0x8


class PullStatus(enum.Enum):
    """How a pull ended (Java's ``PullStatus``), by answer code."""

    FOUND = ResponseCode.SUCCESS
    NO_NEW_MSG = ResponseCode.PULL_NOT_FOUND
    NO_MATCHED_MSG = ResponseCode.PULL_RETRY_IMMEDIATELY
    OFFSET_ILLEGAL = ResponseCode.PULL_OFFSET_MOVED


#: DefaultMQPushConsumerImpl.PULL_TIME_DELAY_MILLS_WHEN_EXCEPTION, in seconds.
PULL_DELAY_WHEN_EXCEPTION = 3.0


def retry_topic(group: str) -> str:
    """``MixAll.getRetryTopic``."""
    return RETRY_GROUP_TOPIC_PREFIX + group


def filter_by_tags(
    messages: Sequence[MessageExt], subscription: SubscriptionData
) -> list[MessageExt]:
    """What ``PullAPIWrapper.processPullResult`` keeps: every message for a
    ``*`` subscription, else those whose TAGS is one of the subscribed tags."""
    if not subscription.tags_set or subscription.class_filter_mode:
        return list(messages)
    wanted = set(subscription.tags_set)
    return [m for m in messages if m.tags is not None and m.tags in wanted]


def decode_pulled(body: bytes) -> tuple[list[MessageExt], int]:
    """The messages of a PULL_MESSAGE answer, and how many records in it
    could not be decoded.

    Java's client stops at the first record it cannot decode and moves on
    past the whole batch. Here a bad record whose size word still fits the
    body is stepped over, so the good ones after it are kept; a size word
    that does not fit ends the batch (counted as one record skipped).
    """
    messages: list[MessageExt] = []
    skipped = 0
    offset, end = 0, len(body)
    while offset < end:
        try:
            message, offset = decode_message(body, offset)
        except ProtocolError as exc:
            skipped += 1
            size = int.from_bytes(body[offset : offset + 4], "big", signed=True)
            log.debug("undecodable record at byte %d of a pull answer: %s", offset, exc)
            if size <= 4 or offset + size > end:
                break
            offset += size
            continue
        messages.append(message)
    return messages, skipped


def delivered_form(
    message: MessageExt, min_offset: int, max_offset: int, group_retry_topic: str = ""
) -> MessageExt:
    """A pulled message as handed out: body inflated (and sysFlag bit 0
    cleared, so the body is not inflated twice), MIN_OFFSET and MAX_OFFSET
    added to its properties, and a message of the group's retry topic put
    back under its original topic (``resetRetryAndNamespace``). Raises
    ProtocolError for a bad compressed body."""
    properties = dict(message.properties)
    properties[MessageConst.PROPERTY_MIN_OFFSET] = str(min_offset)
    properties[MessageConst.PROPERTY_MAX_OFFSET] = str(max_offset)
    topic = message.topic
    original = properties.get(MessageConst.PROPERTY_RETRY_TOPIC)
    if original is not None and topic == group_retry_topic:
        topic = original
    if message.is_compressed:
        return dataclasses.replace(
            message,
            topic=topic,
            body=decompress_body(message.body),
            sys_flag=MessageSysFlag.clear_compressed_flag(message.sys_flag),
            properties=properties,
        )
    return dataclasses.replace(message, topic=topic, properties=properties)


class _QueueState:
    """One assigned queue: where to pull next, what has been consumed, the
    broker the last answer suggested, and its pull loop's cancel scope."""

    def __init__(self, queue: MessageQueue, subscription: SubscriptionData, offset: int) -> None:
        self.queue = queue
        self.subscription = subscription
        self.next_offset = offset
        #: The consumed offset (Java's offset store entry); -1 when none.
        self.consumed = -1
        self.in_flight = 0
        self.dropped = False
        self.broker_id = MASTER_ID
        self.scope = trio.CancelScope()
        #: When the last pull was sent and the last message handed out (ms).
        self.last_pull_timestamp = _now_ms()
        self.last_consume_timestamp = _now_ms()
        #: Queue offsets of the messages pulled and not yet handed out.
        self.cached: deque[int] = deque()

    def advance(self, offset: int) -> None:
        """``updateOffset(mq, offset, increaseOnly=true)``."""
        if offset > self.consumed:
            self.consumed = offset


_Batch = tuple[_QueueState, list[MessageExt], int]

#: ``MQVersion.getVersionDesc`` of the version pyrocket's commands carry.
CLIENT_VERSION_DESC = "V4_7_0"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def task_dump() -> str:
    """The running trio tasks as an indented tree: what a pyrocket client
    answers where Java sends its threads' stack traces (``jstack``)."""
    lines: list[str] = []

    def walk(task: trio.lowlevel.Task, depth: int) -> None:
        lines.append(f"{'  ' * depth}{task.name}\n")
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child, depth + 1)

    root = trio.lowlevel.current_root_task()
    if root is not None:
        walk(root, 0)
    return "".join(lines)


def _human_time3(millis: int) -> str:
    """``UtilAll.timeMillisToHumanString3``: local ``yyyyMMddHHmmss``."""
    return time.strftime("%Y%m%d%H%M%S", time.localtime(millis / 1000))


class PushConsumer:
    """A clustering consumer of one group; see the module."""

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
        max_reconsume_times: int = 16,
    ) -> None:
        self.group = group
        self.max_reconsume_times = max_reconsume_times
        self.consume_from = consume_from
        #: Where CONSUME_FROM_TIMESTAMP starts (ms); Java's default is half
        #: an hour before the consumer was made.
        self.consume_timestamp = (
            consume_timestamp
            if consume_timestamp is not None
            else time.time_ns() // 1_000_000 - 30 * 60 * 1000
        )
        self.pull_batch_size = pull_batch_size
        self.allocate = allocate
        self.timeout = timeout
        self.broker_suspend_max = broker_suspend_max
        self.timeout_when_suspend = timeout_when_suspend
        self.persist_interval = persist_interval
        self.rebalance_interval = rebalance_interval
        self._subscriptions: dict[str, SubscriptionData] = {}
        self._queues: dict[MessageQueue, _QueueState] = {}
        self._pending: deque[tuple[_QueueState, MessageExt, int | None]] = deque()
        self._send, self._receive = trio.open_memory_channel[_Batch](buffered_batches)
        self._wakeup = trio.Event()
        self._rebalance_lock = trio.Lock()
        self._running = False
        self._closing = False
        self._start_timestamp = 0
        self.instance = ClientInstance(
            namesrv_addresses,
            instance_name=instance_name,
            client_ip=client_ip,
            timeout=timeout,
            poll_name_server_interval=poll_name_server_interval,
            heartbeat_interval=heartbeat_interval,
            consumer_data=self._consumer_data,
            topics=lambda: tuple(self._subscriptions),
        )
        # Java's copySubscription: a clustering consumer also reads its
        # group's retry topic.
        retry = retry_topic(group)
        self._subscriptions[retry] = SubscriptionData.for_expression(retry, "*")

    @property
    def client_id(self) -> str:
        return self.instance.client_id

    def subscribe(self, topic: str, expression: str = "*") -> None:
        """Read ``topic``'s messages whose tag matches ``expression``
        (``"*"``, or tags separated by ``||``). Call before entering."""
        if self._running:
            raise RuntimeError("subscribe before the consumer starts")
        self._subscriptions[topic] = SubscriptionData.for_expression(topic, expression)

    @property
    def assignment(self) -> set[MessageQueue]:
        """The queues this consumer currently reads (retry topic included)."""
        return set(self._queues)

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
                message_model=MessageModel.CLUSTERING,
                consume_from_where=self.consume_from,
                subscription_data_set=tuple(subscriptions),
                unit_mode=False,
            ),
        )

    # ------------------------------------------------------------------
    # Lifetime

    async def __aenter__(self) -> Self:
        if list(self._subscriptions) == [retry_topic(self.group)]:
            raise RuntimeError("subscribe to a topic before starting the consumer")
        self._running = True
        self._start_timestamp = _now_ms()
        await self.instance.__aenter__()
        try:
            self.instance.remoting.register_processor(
                RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, self._on_ids_changed
            )
            self.instance.remoting.register_processor(
                RequestCode.GET_CONSUMER_RUNNING_INFO, self._on_get_running_info
            )
            for topic in self._subscriptions:
                await self.instance.update_route(topic)
            await self.instance.heartbeat_all()
        except BaseException as exc:
            self._running = False
            await self.instance.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        nursery = self.instance.nursery
        nursery.start_soon(self._rebalance_forever)
        nursery.start_soon(self._persist_forever)
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
                async with self._rebalance_lock:
                    self._closing = True
                    for state in self._queues.values():
                        state.dropped = True
                        state.scope.cancel()
                    await self._persist_all(oneway=False)
                    self._queues.clear()
                await self.instance.unregister(consumer_group=self.group)
            if cleanup.cancelled_caught:
                log.warning("%s: closing took too long; offsets may not be committed", self.group)
        finally:
            self._running = False
            self._receive.close()
            result = await self.instance.__aexit__(exc_type, exc, traceback)
        return result

    def _on_ids_changed(self, conn: Connection, request: RemotingCommand) -> None:
        log.info("consumer ids of group %s changed; rebalancing", self.group)
        self._wakeup.set()

    def _on_get_running_info(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(GetConsumerRunningInfoRequestHeader)
        if header.consumer_group != self.group:
            return RemotingCommand.response(
                ResponseCode.SYSTEM_ERROR,
                f"The Consumer Group <{header.consumer_group}> not exist in this consumer",
            )
        info = self.running_info()
        if header.jstack_enable:
            info = dataclasses.replace(info, jstack=task_dump())
        return RemotingCommand.response(ResponseCode.SUCCESS, body=info.encode())

    def running_info(self) -> ConsumerRunningInfo:
        """What GET_CONSUMER_RUNNING_INFO reports: settings, subscriptions,
        the state of each assigned queue and (zero) consume statistics."""
        entries = [
            ("consumerGroup", self.group),
            ("messageModel", MessageModel.CLUSTERING.name),
            ("consumeFromWhere", self.consume_from.name),
            ("consumeTimestamp", _human_time3(self.consume_timestamp)),
            ("pullBatchSize", str(self.pull_batch_size)),
            ("maxReconsumeTimes", str(self.max_reconsume_times)),
            ("unitMode", "false"),
            (PROP_CONSUME_ORDERLY, "false"),
            (PROP_THREADPOOL_CORE_SIZE, "1"),
            (PROP_CONSUMER_START_TIMESTAMP, str(self._start_timestamp)),
            (
                PROP_NAMESERVER_ADDR,
                "".join(f"{a};" for a in self.instance.remoting.namesrv_addresses),
            ),
            (PROP_CONSUME_TYPE, ConsumeType.CONSUME_PASSIVELY.name),
            (PROP_CLIENT_VERSION, CLIENT_VERSION_DESC),
        ]
        mq_table: dict[MessageQueue, ProcessQueueInfo] = {}
        for queue, state in self._queues.items():
            cached = state.cached
            mq_table[queue] = ProcessQueueInfo(
                commit_offset=state.consumed,
                cached_msg_min_offset=min(cached, default=0),
                cached_msg_max_offset=max(cached, default=0),
                cached_msg_count=len(cached),
                droped=state.dropped,
                last_pull_timestamp=state.last_pull_timestamp,
                last_consume_timestamp=state.last_consume_timestamp,
            )
        subscriptions = tuple(self._subscriptions.values())
        return ConsumerRunningInfo(
            properties=Properties.java_ordered(entries).entries,
            subscription_set=subscriptions,
            mq_table=mq_table,
            status_table={s.topic or "": ConsumeStatus() for s in subscriptions},
        ).sorted()

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
        """The next message (waiting for one); it counts as consumed.
        Raises trio.ClosedResourceError once the consumer has closed."""
        while True:
            message = self._take_pending()
            if message is not None:
                return message
            self._queue_batch(await self._receive.receive())

    async def poll(self, max_messages: int = 32, timeout: float = 5.0) -> list[MessageExt]:  # noqa: ASYNC109
        """Up to ``max_messages`` messages: waits up to ``timeout`` seconds for
        the first, then takes what is already there (Java's
        ``DefaultLitePullConsumer.poll``). All count as consumed."""
        messages: list[MessageExt] = []
        with trio.move_on_after(timeout):
            messages.append(await self.receive())
        while messages and len(messages) < max_messages:
            message = self._take_pending()
            if message is not None:
                messages.append(message)
                continue
            try:
                self._queue_batch(self._receive.receive_nowait())
            except trio.WouldBlock:
                break
        return messages

    def _queue_batch(self, item: _Batch) -> None:
        state, batch, next_offset = item
        if state.dropped:
            return
        last = len(batch) - 1
        for i, message in enumerate(batch):
            self._pending.append((state, message, next_offset if i == last else None))
            state.cached.append(message.queue_offset)

    def _take_pending(self) -> MessageExt | None:
        # The message is consumed once handed out: up to the batch's next
        # offset after its last message (tags filtered out included).
        while self._pending:
            state, message, next_offset = self._pending.popleft()
            if state.dropped:
                continue
            state.in_flight -= 1
            if state.cached:
                state.cached.popleft()
            state.last_consume_timestamp = _now_ms()
            state.advance(message.queue_offset + 1 if next_offset is None else next_offset)
            return message
        return None

    async def reconsume_later(self, message: MessageExt, delay_level: int = 0) -> None:
        """Give ``message`` back to its broker (CONSUMER_SEND_MSG_BACK, what
        Java's push consumer does for RECONSUME_LATER): the group gets it
        again through its retry topic after ``delay_level`` (0: the broker's
        choice, 3 + its reconsume times), or, after ``max_reconsume_times``
        attempts or with ``delay_level=-1``, it goes to the group's
        dead-letter topic. Raises ResponseError and the remoting errors."""
        header = ConsumerSendMsgBackRequestHeader(
            offset=message.commit_log_offset,
            group=self.group,
            delay_level=delay_level,
            origin_msg_id=message.uniq_key or message.msg_id,
            origin_topic=message.topic,
            unit_mode=False,
            max_reconsume_times=self.max_reconsume_times,
        )
        await self.instance.brokers.consumer_send_msg_back(str(message.store_host), header)

    async def commit(self) -> None:
        """Commit every assigned queue's consumed offset now and wait for the
        brokers' answers (failures are logged)."""
        await self._persist_all(oneway=False)

    # ------------------------------------------------------------------
    # Offsets

    async def _persist(self, state: _QueueState, *, oneway: bool) -> None:
        if state.consumed < 0:
            return
        queue = state.queue
        addr = self.instance.master_addr(queue.broker_name or "")
        if addr is None:
            await self.instance.update_route(queue.topic or "")
            addr = self.instance.master_addr(queue.broker_name or "")
        if addr is None:
            log.warning("no master for %s; offset %d not committed", queue, state.consumed)
            return
        try:
            await self.instance.brokers.update_consumer_offset(
                addr,
                self.group,
                queue.topic or "",
                queue.queue_id,
                state.consumed,
                oneway=oneway,
                timeout=self.timeout,
            )
        except PyrocketError as exc:
            log.warning("committing offset %d of %s failed: %s", state.consumed, queue, exc)

    async def _persist_all(self, *, oneway: bool) -> None:
        for state in list(self._queues.values()):
            await self._persist(state, oneway=oneway)

    async def _persist_forever(self) -> None:
        async for _ in periodic(self.persist_interval):
            await self._persist_all(oneway=True)

    async def _start_offset(self, queue: MessageQueue) -> tuple[int, bool] | None:
        """``computePullFromWhere``: the offset to start at and whether it is
        the group's committed one (which then seeds the consumed offset, as
        Java's offset store does); None when it cannot be known now."""
        topic = queue.topic or ""
        broker = queue.broker_name or ""
        addr = self.instance.master_addr(broker)
        if addr is None:
            return None
        brokers = self.instance.brokers
        try:
            try:
                committed = await brokers.query_consumer_offset(
                    addr, self.group, topic, queue.queue_id, self.timeout
                )
                return committed, True
            except ResponseError as exc:
                if exc.code != ResponseCode.QUERY_NOT_FOUND:
                    raise
            is_retry = topic.startswith(RETRY_GROUP_TOPIC_PREFIX)
            where = self.consume_from
            if where == ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET:
                return 0, False
            if where == ConsumeFromWhere.CONSUME_FROM_TIMESTAMP and not is_retry:
                found = await brokers.search_offset(
                    addr, topic, queue.queue_id, self.consume_timestamp, self.timeout
                )
                return found, False
            if is_retry and where != ConsumeFromWhere.CONSUME_FROM_TIMESTAMP:
                return 0, False
            end = await brokers.get_max_offset(addr, topic, queue.queue_id, self.timeout)
            return end, False
        except PyrocketError as exc:
            log.warning("cannot find where to start %s: %s", queue, exc)
            return None

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
        async with self._rebalance_lock:
            if self._closing:
                return
            for topic, subscription in list(self._subscriptions.items()):
                await self._rebalance_topic(topic, subscription)

    async def _rebalance_topic(self, topic: str, subscription: SubscriptionData) -> None:
        route = self.instance.routes.get(topic) or await self.instance.update_route(topic)
        if route is None:
            return
        queues = subscribe_queues(topic, route)
        addr = self.instance.any_broker_addr(topic)
        if not queues or addr is None:
            return
        try:
            ids = await self.instance.brokers.get_consumer_id_list(addr, self.group, self.timeout)
        except PyrocketError as exc:
            log.warning("consumer list of %s from %s failed: %s", self.group, addr, exc)
            return
        if not ids:
            return
        mine = set(self.allocate(self.group, self.client_id, queues, sorted(ids)))
        for queue, state in list(self._queues.items()):
            if queue.topic == topic and queue not in mine:
                state.dropped = True
                state.scope.cancel()
                await self._persist(state, oneway=False)
                del self._queues[queue]
                log.info("%s: %s moved to another consumer", self.group, queue)
        for queue in sorted(mine - set(self._queues), key=lambda q: q.queue_id):
            start = await self._start_offset(queue)
            if start is None:
                continue
            offset, committed = start
            state = _QueueState(queue, subscription, offset)
            if committed:
                state.consumed = offset
            self._queues[queue] = state
            self.instance.nursery.start_soon(self._pull_forever, state)
            log.info("%s: reading %s from offset %d", self.group, queue, offset)

    # ------------------------------------------------------------------
    # Pulling

    async def _pull_forever(self, state: _QueueState) -> None:
        with state.scope:
            while not state.dropped:
                if not await self._pull_once(state):
                    await trio.sleep(PULL_DELAY_WHEN_EXCEPTION)

    def _deliverable(
        self, state: _QueueState, body: bytes, answer: PullMessageResponseHeader
    ) -> list[MessageExt]:
        """The messages of a FOUND answer to hand out. A message that cannot
        be decoded (or inflated) is skipped with a warning, as Java's client
        does: the queue moves past it instead of pulling it for ever."""
        messages, skipped = decode_pulled(body)
        retry = retry_topic(self.group)
        found: list[MessageExt] = []
        for message in filter_by_tags(messages, state.subscription):
            try:
                found.append(delivered_form(message, answer.min_offset, answer.max_offset, retry))
            except ProtocolError as exc:
                log.debug(
                    "message %d of %s not inflated: %s", message.queue_offset, state.queue, exc
                )
                skipped += 1
        if skipped:
            log.warning(
                "%s: skipped %d undecodable message(s) of %s between offsets %d and %d",
                self.group,
                skipped,
                state.queue,
                state.next_offset,
                answer.next_begin_offset,
            )
        return found

    async def _pull_once(self, state: _QueueState) -> bool:
        """One PULL_MESSAGE and what follows; False when the next one should wait."""
        queue = state.queue
        broker = queue.broker_name or ""
        addr = self.instance.subscribe_addr(broker, state.broker_id)
        if addr is None:
            await self.instance.update_route(queue.topic or "")
            addr = self.instance.subscribe_addr(broker, state.broker_id)
            if addr is None:
                log.warning("no broker address for %s", queue)
                return False
        is_master = addr == self.instance.master_addr(broker)
        commit_offset = state.consumed if state.consumed > 0 and is_master else 0
        sys_flag = PullSysFlag.SUSPEND | (PullSysFlag.COMMIT_OFFSET if commit_offset else 0)
        subscription = state.subscription
        header = PullMessageRequestHeader(
            consumer_group=self.group,
            topic=queue.topic or "",
            queue_id=queue.queue_id,
            queue_offset=state.next_offset,
            max_msg_nums=self.pull_batch_size,
            sys_flag=int(sys_flag),
            commit_offset=commit_offset,
            suspend_timeout_millis=int(self.broker_suspend_max * 1000),
            subscription=None,
            sub_version=subscription.sub_version,
            expression_type=subscription.expression_type,
        )
        state.last_pull_timestamp = _now_ms()
        try:
            response = await self.instance.brokers.pull_message(
                addr, header, self.timeout_when_suspend
            )
            try:
                status = PullStatus(response.code)
            except ValueError:
                raise ResponseError(response.code, response.remark) from None
            answer = response.decode_header(PullMessageResponseHeader)
            found: list[MessageExt] = []
            if status is PullStatus.FOUND:
                found = self._deliverable(state, response.body or b"", answer)
        except PyrocketError as exc:
            log.warning("pull from %s for %s failed: %s", addr, queue, exc)
            return False
        state.broker_id = answer.suggest_which_broker_id
        if state.dropped:
            return True
        if status is PullStatus.OFFSET_ILLEGAL:
            log.warning(
                "%s: offset %d of %s is illegal; moving to %d",
                self.group,
                state.next_offset,
                queue,
                answer.next_begin_offset,
            )
            state.next_offset = answer.next_begin_offset
            state.consumed = answer.next_begin_offset
            await self._persist(state, oneway=False)
            return True
        state.next_offset = answer.next_begin_offset
        if found:
            state.in_flight += len(found)
            await self._send.send((state, found, answer.next_begin_offset))
        elif state.in_flight == 0:
            # correctTagsOffset: nothing for us up to here, so it is consumed.
            state.advance(answer.next_begin_offset)
        return True


__all__ = [
    "PullStatus",
    "PullSysFlag",
    "PushConsumer",
    "decode_pulled",
    "delivered_form",
    "filter_by_tags",
    "retry_topic",
]
