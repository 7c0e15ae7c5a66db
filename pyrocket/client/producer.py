"""The producer (Java's ``DefaultMQProducer`` / ``DefaultMQProducerImpl``).

::

    async with Producer("my_group", ["127.0.0.1:9876"]) as producer:
        result = await producer.send(new_message("TopicTest", b"hello", tags="TagA", keys="k1"))
        future = await producer.send_async(new_message("TopicTest", b"later"))  # in flight
        await producer.send_with_callback(new_message("TopicTest", b"cb"), print, print)
        await producer.send_oneway(new_message("TopicTest", b"fire and forget"))
        await producer.send_orderly(new_message("TopicTest", b"in order"), shard_key=42)
        await producer.send_batch([new_message("TopicTest", b"a"), new_message("TopicTest", b"b")])

What it does as Java 4.7.0 does:

* routes come from the NameServer, are cached and refreshed every 30 s; a
  topic the NameServer does not know is sent along ``TBW102``'s route
  (at most ``default_topic_queue_nums`` queues per broker);
* queues are picked round robin, or by Java's latency fault strategy with
  ``send_latency_fault_enable`` (:mod:`pyrocket.client.fault`); a retry
  (``retry_times_when_send_failed``, 2) avoids the broker that just failed;
  retried failures: transport errors, no route / no address, TOPIC_NOT_EXIST,
  SERVICE_NOT_AVAILABLE, SYSTEM_ERROR, NO_PERMISSION, NO_BUYER_ID, NOT_IN_CURRENT_UNIT,
  and with ``retry_another_broker_when_not_store_ok`` a status other than SEND_OK;
* async sends: :mod:`pyrocket.client.async_send`; ``enable_trace``: :mod:`pyrocket.client.trace`;
* SEND_MESSAGE_V2 carries the header fields Java fills, the client-made
  ``UNIQ_KEY``, and a body of ``compress_over`` (4096) bytes or more deflated
  at ``compress_level`` (5; sysFlag bit 0), big ones in a worker thread;
* answers map to :class:`SendStatus`; any other code raises ResponseError;
* heartbeats every 30 s; leaving the block unregisters (UNREGISTER_CLIENT);
* every send takes ``timeout`` (seconds; default ``send_timeout``, Java's
  sendMsgTimeout, 3 s); a sync send out of time between attempts raises
  RemotingTooMuchRequestError ("sendDefaultImpl call timeout").

Unlike Java, sends go to the broker's main port unless ``vip_channel=True``
(port - 2); ``tls=TlsSettings(...)`` is Java's useTLS. Failures raise
ClientError (no route, all attempts failed: ``__cause__`` is the last
error), ResponseError, or the remoting errors of oneway and orderly sends
(not retried).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from collections.abc import Sequence
from functools import partial
from types import TracebackType
from typing import Self

import trio

from pyrocket.acl.signing import SessionCredentials
from pyrocket.client.async_send import (
    CLIENT_ASYNC_SEMAPHORE_VALUE,
    AsyncSends,
    Callback,
    SendFuture,
    order_key,
    retry_async,
)
from pyrocket.client.fault import FaultStrategy, TopicPublishInfo
from pyrocket.client.instance import (
    AUTO_CREATE_TOPIC_KEY_TOPIC,
    RETRY_GROUP_TOPIC_PREFIX,
    ClientError,
    ClientInstance,
    publish_queues,
)
from pyrocket.client.messages import QueueSelector, new_message, select_by_hash, with_unique_id
from pyrocket.client.request_reply import RequestFutureTable
from pyrocket.client.sending import (
    RETRY_RESPONSE_CODES,
    Prepared,
    SendResult,
    SendStatus,
    ip_bytes,
    prepare,
    selected_queue,
    send_header,
    send_request,
    send_result,
    vip_channel_addr,
)
from pyrocket.client.trace.hooks import send_tracer
from pyrocket.client.validators import MAX_MESSAGE_SIZE, check_message
from pyrocket.errors import (
    PyrocketError,
    RemotingError,
    RemotingTooMuchRequestError,
    ResponseError,
)
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.route import TopicRouteData
from pyrocket.protocol.headers import SendMessageRequestHeader
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message import (
    COMPRESS_BODY_THRESHOLD,
    COMPRESS_LEVEL,
    Message,
    MessageConst,
    MessageExt,
    UniqueIdGenerator,
    encode_batch,
)
from pyrocket.remoting.tls import TlsSettings

log = logging.getLogger("pyrocket.client.producer")

#: Bodies this big are compressed in a worker thread, off the event loop.


class Producer:
    """Sends messages to the brokers of any 4.x cluster; see the module."""

    def __init__(
        self,
        group: str,
        namesrv_addresses: Sequence[str],
        *,
        instance_name: str | None = None,
        client_ip: str | None = None,
        send_timeout: float = 3.0,
        retry_times_when_send_failed: int = 2,
        retry_times_when_send_async_failed: int = 2,
        retry_another_broker_when_not_store_ok: bool = False,
        send_latency_fault_enable: bool = False,
        client_async_semaphore_value: int = CLIENT_ASYNC_SEMAPHORE_VALUE,
        compress_over: int = COMPRESS_BODY_THRESHOLD,
        compress_level: int = COMPRESS_LEVEL,
        max_message_size: int = MAX_MESSAGE_SIZE,
        default_topic_queue_nums: int = 4,
        poll_name_server_interval: float = 30.0,
        heartbeat_interval: float = 30.0,
        vip_channel: bool = False,
        tls: TlsSettings | None = None,
        credentials: SessionCredentials | None = None,
        enable_trace: bool = False,
        trace_topic: str | None = None,
    ) -> None:
        self.group = group
        self.vip_channel = vip_channel
        self.send_timeout = send_timeout
        self.retry_times_when_send_failed = retry_times_when_send_failed
        self.retry_times_when_send_async_failed = retry_times_when_send_async_failed
        self.retry_another_broker_when_not_store_ok = retry_another_broker_when_not_store_ok
        self.fault_strategy = FaultStrategy(send_latency_fault_enable)
        self.async_sends = AsyncSends(client_async_semaphore_value)
        self.compress_over = compress_over
        self.compress_level = compress_level
        self.max_message_size = max_message_size
        self.default_topic_queue_nums = default_topic_queue_nums
        self._publish: dict[str, TopicPublishInfo] = {}
        self._random = random.Random()
        self.instance = ClientInstance(
            namesrv_addresses,
            instance_name=instance_name,
            client_ip=client_ip,
            timeout=send_timeout,
            poll_name_server_interval=poll_name_server_interval,
            heartbeat_interval=heartbeat_interval,
            tls=tls,
            credentials=credentials,
            producer_groups=lambda: (self.group,),
            topics=lambda: tuple(self._publish),
            on_route=self._route_fetched,
        )
        self._requests = RequestFutureTable(self.instance.remoting)
        self._unique_ids = UniqueIdGenerator(
            ip_bytes(self.instance.client_ip),
            os.getpid(),
            self._random.getrandbits(32),
        )
        extra = {"client_ip": client_ip, "tls": tls, "credentials": credentials}
        self.tracer = send_tracer(
            group, namesrv_addresses, trace_topic, Producer, extra, enable_trace
        )

    @property
    def client_id(self) -> str:
        return self.instance.client_id

    async def start(self) -> None:
        """Connect and announce the group (Java's ``start``): the same as
        entering ``async with``. Call :meth:`shutdown` from the same task,
        after any cancel scope or nursery opened since has closed."""
        await self.__aenter__()

    async def shutdown(self) -> None:
        """Wait for the sends in flight, unregister and disconnect (Java's
        ``shutdown``): the same as leaving ``async with``."""
        await self.__aexit__(None, None, None)

    async def __aenter__(self) -> Self:
        await self.instance.__aenter__()
        try:
            await self.instance.heartbeat_all()
            if self.tracer is not None:
                await self.tracer.dispatcher.__aenter__()
        except BaseException as exc:
            await self.instance.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        try:
            try:
                if exc is None:
                    await self.async_sends.drain()
            finally:
                if self.tracer is not None:
                    await self.tracer.dispatcher.__aexit__(None, None, None)
                with trio.CancelScope(shield=True), trio.move_on_after(self.send_timeout):
                    await self.instance.unregister(producer_group=self.group)
        finally:
            self._requests.close()
            result = await self.instance.__aexit__(exc_type, exc, traceback)
        return result

    # ------------------------------------------------------------------
    # Routes

    def _route_fetched(self, topic: str, route: TopicRouteData) -> None:
        # A refreshed route of a topic this producer sends to. One without
        # writable queues leaves the old table (a topic still sent along
        # TBW102's route keeps it until the NameServer knows the topic).
        if topic in self._publish and publish_queues(topic, route):
            self._install(topic, route)

    def _install(self, topic: str, route: TopicRouteData) -> TopicPublishInfo:
        old = self._publish.get(topic)
        start = self._random.randrange(1 << 16) if old is None else old.index
        info = TopicPublishInfo(publish_queues(topic, route), start)
        self._publish[topic] = info
        return info

    async def publish_queues(self, topic: str) -> list[MessageQueue]:
        """The queues ``topic`` is sent to (``fetchPublishMessageQueues``)."""
        return list((await self._find_publish_info(topic)).queues)

    async def _find_publish_info(self, topic: str) -> TopicPublishInfo:
        info = self._publish.get(topic)
        if info is not None and info.queues:
            return info
        route = await self.instance.update_route(topic)
        if route is not None:
            # A known topic without writable queues fails, as Java's does.
            info = self._install(topic, route)
            if info.queues:
                return info
            raise ClientError(f"No route info of this topic: {topic}")
        default = await self.instance.update_route(AUTO_CREATE_TOPIC_KEY_TOPIC)
        if default is not None:
            capped = dataclasses.replace(
                default,
                queue_datas=tuple(
                    dataclasses.replace(
                        q,
                        read_queue_nums=min(self.default_topic_queue_nums, q.read_queue_nums),
                        write_queue_nums=min(self.default_topic_queue_nums, q.read_queue_nums),
                    )
                    for q in default.queue_datas or ()
                ),
            )
            info = self._install(topic, capped)
            if info.queues:
                return info
        raise ClientError(f"No route info of this topic: {topic}")

    # ------------------------------------------------------------------
    # Sending

    async def send(
        self,
        message: Message,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-send budget)
    ) -> SendResult:
        """Send and wait for the answer, retrying on another broker as Java's
        sync send does, within ``timeout`` s (default ``send_timeout``). Raises
        ClientError, ResponseError, RemotingTooMuchRequestError, ValueError."""
        deadline = self._deadline(timeout)
        check_message(message, self.max_message_size)
        info = await self._find_publish_info(message.topic)
        return await self._send_sync(info, await self._prepare(message), deadline)

    async def send_async(
        self,
        message: Message,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-send budget)
        shard_key: object = None,
        selector: QueueSelector | None = None,
    ) -> SendFuture[SendResult]:
        """Start a send; return its :class:`SendFuture` (await it for the
        SendResult; see :mod:`pyrocket.client.async_send`) once it holds a
        permit. ``selector`` / ``shard_key`` pick the queue as in
        :meth:`send_orderly`; sends of one key go in call order. Raises
        ClientError, RemotingTimeoutError (no permit within ``timeout``)."""
        return await self._start_async(message, timeout, shard_key, selector, None, None)

    async def send_with_callback(
        self,
        message: Message,
        on_success: Callback[SendResult] | None = None,
        on_exception: Callback[BaseException] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-send budget)
        shard_key: object = None,
        selector: QueueSelector | None = None,
    ) -> None:
        """As :meth:`send_async`, then call ``on_success(result)`` or
        ``on_exception(error)`` (plain or async functions; Java's
        SendCallback) in the producer's nursery. What a callback raises is
        logged, not propagated."""
        await self._start_async(message, timeout, shard_key, selector, on_success, on_exception)

    async def _start_async(
        self,
        message: Message,
        timeout: float | None,  # noqa: ASYNC109
        shard_key: object,
        selector: QueueSelector | None,
        on_success: Callback[SendResult] | None,
        on_exception: Callback[BaseException] | None,
    ) -> SendFuture[SendResult]:
        check_message(message, self.max_message_size)
        if selector is None and shard_key is not None:
            selector = select_by_hash

        async def run(deadline: float) -> SendResult:
            info = await self._find_publish_info(message.topic)
            prepared = await self._prepare(message)
            if selector is not None:
                queue = selected_queue(info, selector, message, shard_key)
                return await retry_async(
                    queue, partial(self._attempt, prepared=prepared),
                    self.retry_times_when_send_async_failed, deadline, None,
                )  # fmt: skip
            return await retry_async(
                self.fault_strategy.select_one_message_queue(info),
                partial(self._attempt, prepared=prepared),
                self.retry_times_when_send_async_failed,
                deadline,
                partial(self.fault_strategy.select_one_message_queue, info),
            )

        budget = self.send_timeout if timeout is None else timeout
        order = None if selector is None else order_key(message.topic, shard_key)
        return await self.async_sends.start(
            self.instance.nursery, run, budget, on_success, on_exception, order
        )

    async def send_batch(
        self,
        messages: Sequence[Message],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-send budget)
    ) -> SendResult:
        """Send several messages of one topic in one SEND_BATCH_MESSAGE, as
        Java's ``send(Collection<Message>)`` does (retried like
        :meth:`send`; the result's ``msg_id`` lists their UNIQ_KEYs joined by
        commas, its ``queue_offset`` is the first one's). Batched bodies are
        not compressed. Raises ClientError for messages Java will not batch
        (different topics or WAIT values, a delay level, a retry topic, an
        encoded batch over ``max_message_size``), and as :meth:`send` does."""
        deadline = self._deadline(timeout)
        if not messages:
            raise ClientError("the batch holds no message")
        first = messages[0]
        wait = first.properties.get(MessageConst.PROPERTY_WAIT_STORE_MSG_OK, "true")
        items: list[Message] = []
        ids: list[str] = []
        for message in messages:
            if int(message.properties.get(MessageConst.PROPERTY_DELAY_TIME_LEVEL, "0")) > 0:
                raise ClientError("TimeDelayLevel is not supported for batching")
            if message.topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
                raise ClientError("Retry Group is not supported for batching")
            if message.topic != first.topic:
                raise ClientError("The topic of the messages in one batch should be the same")
            if message.properties.get(MessageConst.PROPERTY_WAIT_STORE_MSG_OK, "true") != wait:
                raise ClientError("The waitStoreMsgOK of the messages in one batch should the same")
            check_message(message, self.max_message_size)
            properties = with_unique_id(message, self._unique_ids.next_id)
            ids.append(properties[MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX])
            items.append(dataclasses.replace(message, properties=properties))
        body = encode_batch(items)
        if len(body) > self.max_message_size:
            raise ClientError(f"the message body size over max value, MAX: {self.max_message_size}")
        own: JavaHashMap[str, str] = JavaHashMap()
        own[MessageConst.PROPERTY_WAIT_STORE_MSG_OK] = wait
        info = await self._find_publish_info(first.topic)
        batch = Message(topic=first.topic, body=body, properties=own)
        return await self._send_sync(info, Prepared(batch, own, body, 0, tuple(ids)), deadline)

    def _deadline(self, timeout: float | None) -> float:
        return trio.current_time() + (self.send_timeout if timeout is None else timeout)

    async def _send_sync(
        self, info: TopicPublishInfo, prepared: Prepared, deadline: float
    ) -> SendResult:
        message = prepared.message
        attempts = 1 + self.retry_times_when_send_failed
        last_broker: str | None = None
        last_error: PyrocketError | None = None
        result: SendResult | None = None
        tried: list[str] = []
        for _ in range(attempts):
            queue = self.fault_strategy.select_one_message_queue(info, last_broker)
            last_broker = queue.broker_name
            remaining = deadline - trio.current_time()
            if remaining <= 0:
                raise RemotingTooMuchRequestError("sendDefaultImpl call timeout") from last_error
            tried.append(queue.broker_name or "")
            try:
                result = await self._attempt(queue, remaining, prepared)
            except ResponseError as exc:
                if exc.code not in RETRY_RESPONSE_CODES:
                    raise
                last_error = exc
            except (RemotingError, ClientError) as exc:
                last_error = exc
            else:
                if result.status is SendStatus.SEND_OK or not (
                    self.retry_another_broker_when_not_store_ok
                ):
                    return result
                log.info("send to %s stored as %s; trying another broker", queue, result.status)
                continue
            log.info("send to %s failed (%s); trying again", queue, last_error)
        if result is not None:
            return result
        code = last_error.code if isinstance(last_error, ResponseError) else None
        raise ClientError(
            f"Send [{len(tried)}] times, still failed, "
            f"Topic: {message.topic}, BrokersSent: {tried}",
            code,
        ) from last_error

    async def _attempt(
        self,
        queue: MessageQueue,
        timeout: float,  # noqa: ASYNC109
        prepared: Prepared,
    ) -> SendResult:
        # One attempt, its latency reported to the fault strategy (a failed
        # one isolates the broker, as Java's sendDefaultImpl does); with the
        # strategy off there is nothing to time.
        if not self.fault_strategy.send_latency_fault_enable:
            return await self._send_to(queue, prepared, timeout)
        begin = trio.current_time()
        try:
            result = await self._send_to(queue, prepared, timeout)
        except (ResponseError, RemotingError, ClientError):
            elapsed = (trio.current_time() - begin) * 1000
            self.fault_strategy.update_fault_item(queue.broker_name or "", elapsed, True)
            raise
        elapsed = (trio.current_time() - begin) * 1000
        self.fault_strategy.update_fault_item(queue.broker_name or "", elapsed, False)
        return result

    async def send_oneway(
        self,
        message: Message,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-send budget)
        shard_key: object = None,
        selector: QueueSelector | None = None,
    ) -> None:
        """Send without waiting for an answer (one attempt; to the queue
        ``selector``, or :func:`select_by_hash` of ``shard_key``, picks if
        given). Raises ClientError and the remoting errors."""
        check_message(message, self.max_message_size)
        info = await self._find_publish_info(message.topic)
        prepared = await self._prepare(message)
        if selector is None and shard_key is not None:
            selector = select_by_hash
        if selector is not None:
            queue = selected_queue(info, selector, message, shard_key)
        else:
            queue = self.fault_strategy.select_one_message_queue(info)
        addr, header, body = self._request(queue, prepared)
        budget = self.send_timeout if timeout is None else timeout
        await self.instance.brokers.send_message_oneway(addr, header, body, budget)

    async def send_orderly(
        self,
        message: Message,
        shard_key: object,
        selector: QueueSelector = select_by_hash,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-send budget)
    ) -> SendResult:
        """Send to the queue ``selector(queues, message, shard_key)`` picks
        (by default the key's Java hash code modulo the queue count), one
        attempt, so messages with one key keep their order. Raises as
        :meth:`send` does, and the remoting errors."""
        check_message(message, self.max_message_size)
        info = await self._find_publish_info(message.topic)
        queue = selected_queue(info, selector, message, shard_key)
        budget = self.send_timeout if timeout is None else timeout
        return await self._attempt(queue, budget, await self._prepare(message))

    async def request(
        self,
        message: Message,
        timeout: float,  # noqa: ASYNC109 (Java's API: the timeout belongs to the call)
        selector: QueueSelector | None = None,
        arg: object = None,
    ) -> MessageExt:
        """Send ``message`` as a request and return its reply: see
        :meth:`pyrocket.client.request_reply.RequestFutureTable.request`."""
        return await self._requests.request(self, message, timeout, selector, arg)

    async def _prepare(self, message: Message) -> Prepared:
        return await prepare(
            message, self._unique_ids.next_id, self.compress_over, self.compress_level
        )

    def _request(
        self, queue: MessageQueue, prepared: Prepared
    ) -> tuple[str, SendMessageRequestHeader, bytes]:
        addr = self._addr(queue)
        header = send_header(self.group, queue, prepared, self.default_topic_queue_nums)
        return addr, header, prepared.body

    def _addr(self, queue: MessageQueue) -> str:
        broker = queue.broker_name or ""
        addr = self.instance.master_addr(broker)
        if addr is None:
            raise ClientError(f"The broker[{broker}] not exist")
        if self.vip_channel:
            addr = vip_channel_addr(addr)
        return addr

    async def _send_to(
        self,
        queue: MessageQueue,
        prepared: Prepared,
        timeout: float,  # noqa: ASYNC109
    ) -> SendResult:
        addr = self._addr(queue)
        request = send_request(self.group, queue, prepared, self.default_topic_queue_nums)
        begin_ms = time.time_ns() // 1_000_000
        response = await self.instance.brokers.send_request(addr, request, timeout)
        result = send_result(response, queue, prepared)
        if self.tracer is not None:
            ext = response.ext_fields or {}
            self.tracer.sent(prepared.message, len(prepared.body), addr, result, begin_ms, ext)
        return result


__all__ = [
    "Producer",
    "QueueSelector",
    "SendResult",
    "SendStatus",
    "new_message",
    "select_by_hash",
    "vip_channel_addr",
    "with_unique_id",
]
