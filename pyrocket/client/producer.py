"""The producer (Java's ``DefaultMQProducer`` / ``DefaultMQProducerImpl``).

::

    from pyrocket.client import Producer, new_message

    async with Producer("my_group", ["127.0.0.1:9876"]) as producer:
        result = await producer.send(new_message("TopicTest", b"hello", tags="TagA", keys="k1"))
        print(result.status, result.msg_id, result.queue, result.queue_offset)
        await producer.send_oneway(new_message("TopicTest", b"fire and forget"))
        await producer.send_orderly(new_message("TopicTest", b"in order"), shard_key=42)
        await producer.send_batch([new_message("TopicTest", b"a"), new_message("TopicTest", b"b")])

What it does as Java 4.7.0 does:

* routes come from the NameServer, are cached and refreshed every 30 s; a
  topic the NameServer does not know is sent along ``TBW102``'s route
  (at most ``default_topic_queue_nums`` queues per broker), with
  ``defaultTopic=TBW102`` in the header so a broker that auto-creates topics
  creates it;
* queues are picked round robin; a retry (``retry_times_when_send_failed``,
  2, so three attempts for :meth:`Producer.send`) avoids the broker that just
  failed; retried failures are transport errors, no route / no address, and
  answers TOPIC_NOT_EXIST, SERVICE_NOT_AVAILABLE, SYSTEM_ERROR,
  NO_PERMISSION, NO_BUYER_ID, NOT_IN_CURRENT_UNIT;
* SEND_MESSAGE_V2 carries the header fields Java fills, the client-made
  ``UNIQ_KEY`` (``MessageClientIDSetter``'s format), and a body of 4096 bytes
  or more deflated (sysFlag bit 0);
* answers map to :class:`SendStatus` (SUCCESS, FLUSH_DISK_TIMEOUT,
  FLUSH_SLAVE_TIMEOUT, SLAVE_NOT_AVAILABLE); any other code raises
  :class:`~pyrocket.errors.ResponseError` with the broker's code and remark;
* heartbeats announce the group to the brokers every 30 s, and leaving the
  ``async with`` block unregisters it (UNREGISTER_CLIENT);
* a sync send that runs out of ``send_timeout`` between attempts raises
  RemotingTooMuchRequestError ("sendDefaultImpl call timeout").

Unlike Java, sends go to the broker's main port: Java 4.7 uses the broker's
"VIP channel" (port - 2) unless told not to; ``vip_channel=True`` does that
here too (a pyrocket broker's fast port is not always port - 2).

Failures raise :class:`~pyrocket.client.instance.ClientError` (no route, all
attempts failed: ``__cause__`` is the last error), ResponseError, or the
remoting errors for oneway and orderly sends, which are not retried.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import trio

from pyrocket.acl.signing import SessionCredentials
from pyrocket.client.instance import (
    AUTO_CREATE_TOPIC_KEY_TOPIC,
    RETRY_GROUP_TOPIC_PREFIX,
    ClientError,
    ClientInstance,
    publish_queues,
)
from pyrocket.errors import (
    PyrocketError,
    RemotingError,
    RemotingTooMuchRequestError,
    ResponseError,
)
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.route import TopicRouteData
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.headers import SendMessageRequestHeader, SendMessageResponseHeader
from pyrocket.protocol.javahash import JavaHashMap, java_hash
from pyrocket.protocol.message import (
    COMPRESS_BODY_THRESHOLD,
    Message,
    MessageConst,
    MessageSysFlag,
    UniqueIdGenerator,
    encode_batch,
    encode_properties,
    maybe_compress_body,
)

log = logging.getLogger("pyrocket.client.producer")

#: DefaultMQProducer.maxMessageSize: 4 MiB.
MAX_MESSAGE_SIZE = 4 * 1024 * 1024
#: Validators.CHARACTER_MAX_LENGTH: longest topic name.
TOPIC_MAX_LENGTH = 255
_TOPIC_PATTERN = re.compile(r"^[%|a-zA-Z0-9_-]+$")

#: Answer codes after which a sync send tries again (another broker first).
RETRY_RESPONSE_CODES = frozenset(
    {
        ResponseCode.TOPIC_NOT_EXIST,
        ResponseCode.SERVICE_NOT_AVAILABLE,
        ResponseCode.SYSTEM_ERROR,
        ResponseCode.NO_PERMISSION,
        ResponseCode.NO_BUYER_ID,
        ResponseCode.NOT_IN_CURRENT_UNIT,
    }
)


class SendStatus(enum.Enum):
    """How a broker stored a message (Java's ``SendStatus``)."""

    SEND_OK = "SEND_OK"
    FLUSH_DISK_TIMEOUT = "FLUSH_DISK_TIMEOUT"
    FLUSH_SLAVE_TIMEOUT = "FLUSH_SLAVE_TIMEOUT"
    SLAVE_NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"


_STATUS_BY_CODE = {
    ResponseCode.SUCCESS: SendStatus.SEND_OK,
    ResponseCode.FLUSH_DISK_TIMEOUT: SendStatus.FLUSH_DISK_TIMEOUT,
    ResponseCode.FLUSH_SLAVE_TIMEOUT: SendStatus.FLUSH_SLAVE_TIMEOUT,
    ResponseCode.SLAVE_NOT_AVAILABLE: SendStatus.SLAVE_NOT_AVAILABLE,
}


@dataclass(frozen=True, slots=True)
class SendResult:
    """A stored message: ``msg_id`` is the client's UNIQ_KEY, ``offset_msg_id``
    the broker's (store host + commit-log offset)."""

    status: SendStatus
    msg_id: str
    offset_msg_id: str
    queue: MessageQueue
    queue_offset: int
    transaction_id: str | None = None
    region_id: str | None = None


#: Picks a queue for an orderly send from the topic's queues, the message
#: and the caller's argument (Java's ``MessageQueueSelector``).
QueueSelector = Callable[[Sequence[MessageQueue], Message, object], MessageQueue]


def select_by_hash(queues: Sequence[MessageQueue], message: Message, arg: object) -> MessageQueue:
    """``SelectMessageQueueByHash``: ``abs(arg.hashCode()) % len(queues)``
    (a str hashes as a Java String, an int as a Java Integer/Long)."""
    value = arg if isinstance(arg, int) and -(2**31) <= arg < 2**31 else java_hash(arg)
    return queues[abs(value) % len(queues)]


def new_message(
    topic: str,
    body: bytes,
    *,
    tags: str | None = None,
    keys: str | Iterable[str] | None = None,
    properties: Mapping[str, str] | None = None,
    flag: int = 0,
    wait_store_msg_ok: bool = True,
    delay_level: int = 0,
) -> Message:
    """A message as Java's ``Message`` constructor and setters build it: TAGS,
    KEYS (several joined by a space), WAIT, DELAY, then the user's
    properties, in a Java HashMap (so the properties string comes out in
    Java's order).

    Raises ValueError for a user property with a name Java reserves.
    """
    table: JavaHashMap[str, str] = JavaHashMap()
    if tags:
        table[MessageConst.PROPERTY_TAGS] = tags
    if keys is not None and not isinstance(keys, str):
        keys = MessageConst.KEY_SEPARATOR.join(keys)
    if keys:
        table[MessageConst.PROPERTY_KEYS] = keys
    table[MessageConst.PROPERTY_WAIT_STORE_MSG_OK] = "true" if wait_store_msg_ok else "false"
    if delay_level > 0:
        table[MessageConst.PROPERTY_DELAY_TIME_LEVEL] = str(delay_level)
    for name, value in (properties or {}).items():
        if name in MessageConst.RESERVED_NAMES:
            raise ValueError(f"The Property<{name}> is used by system, input another please")
        table[name] = value
    return Message(topic=topic, body=body, properties=table, flag=flag)


def with_unique_id(message: Message, next_id: Callable[[], str]) -> JavaHashMap[str, str]:
    """The properties a message is sent with: its own in a Java HashMap, plus
    a fresh UNIQ_KEY unless it has one (``MessageClientIDSetter.setUniqID``).
    Encoded, they come out in Java's order."""
    # Java adds the id to the message's own map (default capacity, grown
    # entry by entry); re-adding the entries one by one to a fresh map lays
    # them out the same, where ``new HashMap<>(map)`` would size it otherwise.
    properties: JavaHashMap[str, str] = JavaHashMap()
    properties.update(message.properties)
    if MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX not in properties:
        properties[MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX] = next_id()
    return properties


def check_message(message: Message, max_size: int = MAX_MESSAGE_SIZE) -> None:
    """``Validators.checkMessage``: raises ClientError for a bad topic name or
    an empty or oversized body."""
    check_topic(message.topic)
    if not message.body:
        raise ClientError("the message body length is zero")
    if len(message.body) > max_size:
        raise ClientError(f"the message body size over max value, MAX: {max_size}")


def check_topic(topic: str) -> None:
    """``Validators.checkTopic``; raises ClientError."""
    if not topic.strip():
        raise ClientError("The specified topic is blank")
    if not _TOPIC_PATTERN.match(topic):
        raise ClientError(
            f"The specified topic[{topic}] contains illegal characters, "
            f"allowing only {_TOPIC_PATTERN.pattern}"
        )
    if len(topic) > TOPIC_MAX_LENGTH:
        raise ClientError("The specified topic is longer than topic max length 255.")
    if topic == AUTO_CREATE_TOPIC_KEY_TOPIC:
        raise ClientError(f"The topic[{topic}] is conflict with AUTO_CREATE_TOPIC_KEY_TOPIC.")


class _PublishInfo:
    """A topic's writable queues and its round-robin position
    (``TopicPublishInfo``)."""

    def __init__(self, queues: list[MessageQueue], start: int) -> None:
        self.queues = queues
        self._index = start

    def select(self, last_broker: str | None = None) -> MessageQueue:
        """The next queue, avoiding ``last_broker`` if another broker has one."""
        size = len(self.queues)
        if last_broker is not None:
            for _ in range(size):
                self._index += 1
                queue = self.queues[self._index % size]
                if queue.broker_name != last_broker:
                    return queue
        self._index += 1
        return self.queues[self._index % size]


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
        compress_over: int = COMPRESS_BODY_THRESHOLD,
        max_message_size: int = MAX_MESSAGE_SIZE,
        default_topic_queue_nums: int = 4,
        poll_name_server_interval: float = 30.0,
        heartbeat_interval: float = 30.0,
        vip_channel: bool = False,
        credentials: SessionCredentials | None = None,
    ) -> None:
        self.group = group
        self.vip_channel = vip_channel
        self.send_timeout = send_timeout
        self.retry_times_when_send_failed = retry_times_when_send_failed
        self.compress_over = compress_over
        self.max_message_size = max_message_size
        self.default_topic_queue_nums = default_topic_queue_nums
        self._publish: dict[str, _PublishInfo] = {}
        self._random = random.Random()
        self.instance = ClientInstance(
            namesrv_addresses,
            instance_name=instance_name,
            client_ip=client_ip,
            timeout=send_timeout,
            poll_name_server_interval=poll_name_server_interval,
            heartbeat_interval=heartbeat_interval,
            credentials=credentials,
            producer_groups=lambda: (self.group,),
            topics=lambda: tuple(self._publish),
            on_route=self._route_fetched,
        )
        self._unique_ids = UniqueIdGenerator(
            _ip_bytes(self.instance.client_ip),
            os.getpid(),
            self._random.getrandbits(32),
        )

    @property
    def client_id(self) -> str:
        return self.instance.client_id

    async def __aenter__(self) -> Self:
        await self.instance.__aenter__()
        try:
            await self.instance.heartbeat_all()
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
            with trio.CancelScope(shield=True), trio.move_on_after(self.send_timeout):
                await self.instance.unregister(producer_group=self.group)
        finally:
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

    def _install(self, topic: str, route: TopicRouteData) -> _PublishInfo:
        old = self._publish.get(topic)
        start = self._random.randrange(1 << 16) if old is None else old._index
        info = _PublishInfo(publish_queues(topic, route), start)
        self._publish[topic] = info
        return info

    async def publish_queues(self, topic: str) -> list[MessageQueue]:
        """The queues ``topic`` is sent to (``fetchPublishMessageQueues``)."""
        return list((await self._find_publish_info(topic)).queues)

    async def _find_publish_info(self, topic: str) -> _PublishInfo:
        info = self._publish.get(topic)
        if info is not None and info.queues:
            return info
        route = await self.instance.update_route(topic)
        if route is not None:
            info = self._install(topic, route)
            if info.queues:
                return info
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

    async def send(self, message: Message) -> SendResult:
        """Send and wait for the broker's answer, retrying on another broker
        as Java's sync send does. Raises ClientError, ResponseError, ValueError
        (a property the layout cannot hold)."""
        check_message(message, self.max_message_size)
        info = await self._find_publish_info(message.topic)
        return await self._send_sync(info, self._prepare(message))

    async def send_batch(self, messages: Sequence[Message]) -> SendResult:
        """Send several messages of one topic in one SEND_BATCH_MESSAGE, as
        Java's ``send(Collection<Message>)`` does (retried like
        :meth:`send`; the result's ``msg_id`` lists their UNIQ_KEYs joined by
        commas, its ``queue_offset`` is the first one's). Batched bodies are
        not compressed. Raises ClientError for messages Java will not batch
        (different topics or WAIT values, a delay level, a retry topic, an
        encoded batch over ``max_message_size``), and as :meth:`send` does."""
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
        return await self._send_sync(info, _Prepared(batch, own, body, 0, tuple(ids)))

    async def _send_sync(self, info: _PublishInfo, prepared: _Prepared) -> SendResult:
        message = prepared.message
        attempts = 1 + self.retry_times_when_send_failed
        deadline = trio.current_time() + self.send_timeout
        last_broker: str | None = None
        last_error: PyrocketError | None = None
        tried: list[str] = []
        for _ in range(attempts):
            queue = info.select(last_broker)
            last_broker = queue.broker_name
            remaining = deadline - trio.current_time()
            if remaining <= 0:
                raise RemotingTooMuchRequestError("sendDefaultImpl call timeout") from last_error
            tried.append(queue.broker_name or "")
            try:
                return await self._send_to(queue, prepared, remaining)
            except ResponseError as exc:
                if exc.code not in RETRY_RESPONSE_CODES:
                    raise
                last_error = exc
            except (RemotingError, ClientError) as exc:
                last_error = exc
            log.info("send to %s failed (%s); trying again", queue, last_error)
        code = last_error.code if isinstance(last_error, ResponseError) else None
        raise ClientError(
            f"Send [{len(tried)}] times, still failed, "
            f"Topic: {message.topic}, BrokersSent: {tried}",
            code,
        ) from last_error

    async def send_oneway(self, message: Message) -> None:
        """Send without waiting for an answer (one attempt). Raises
        ClientError and the remoting errors."""
        check_message(message, self.max_message_size)
        info = await self._find_publish_info(message.topic)
        prepared = self._prepare(message)
        queue = info.select()
        addr, header, body = self._request(queue, prepared)
        await self.instance.brokers.send_message_oneway(addr, header, body, self.send_timeout)

    async def send_orderly(
        self,
        message: Message,
        shard_key: object,
        selector: QueueSelector = select_by_hash,
    ) -> SendResult:
        """Send to the queue ``selector(queues, message, shard_key)`` picks
        (by default the key's Java hash code modulo the queue count), one
        attempt, so messages with one key keep their order. Raises as
        :meth:`send` does, and the remoting errors."""
        check_message(message, self.max_message_size)
        info = await self._find_publish_info(message.topic)
        queue = selector(list(info.queues), message, shard_key)
        if queue not in info.queues:
            raise ClientError("select message queue return null or a queue not of the topic")
        return await self._send_to(queue, self._prepare(message), self.send_timeout)

    def _prepare(self, message: Message) -> _Prepared:
        properties = with_unique_id(message, self._unique_ids.next_id)
        body, compressed = maybe_compress_body(message.body, self.compress_over)
        sys_flag = MessageSysFlag.COMPRESSED_FLAG if compressed else 0
        if properties.get(MessageConst.PROPERTY_TRANSACTION_PREPARED) == "true":
            sys_flag |= MessageSysFlag.TRANSACTION_PREPARED_TYPE
        return _Prepared(message, properties, body, sys_flag)

    def _request(
        self, queue: MessageQueue, prepared: _Prepared
    ) -> tuple[str, SendMessageRequestHeader, bytes]:
        broker = queue.broker_name or ""
        addr = self.instance.master_addr(broker)
        if addr is None:
            raise ClientError(f"The broker[{broker}] not exist")
        if self.vip_channel:
            addr = vip_channel_addr(addr)
        message = prepared.message
        reconsume_times: int | None = 0
        max_reconsume: int | None = None
        if message.topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
            text = prepared.properties.get(MessageConst.PROPERTY_RECONSUME_TIME)
            reconsume_times = int(text) if text is not None else None
            text = prepared.properties.get(MessageConst.PROPERTY_MAX_RECONSUME_TIMES)
            max_reconsume = int(text) if text is not None else None
        header = SendMessageRequestHeader(
            producer_group=self.group,
            topic=message.topic,
            default_topic=AUTO_CREATE_TOPIC_KEY_TOPIC,
            default_topic_queue_nums=self.default_topic_queue_nums,
            queue_id=queue.queue_id,
            sys_flag=prepared.sys_flag,
            born_timestamp=time.time_ns() // 1_000_000,
            flag=message.flag,
            properties=encode_properties(prepared.properties),
            reconsume_times=reconsume_times,
            unit_mode=False,
            batch=bool(prepared.batch_ids),
            max_reconsume_times=max_reconsume,
        )
        return addr, header, prepared.body

    async def _send_to(
        self,
        queue: MessageQueue,
        prepared: _Prepared,
        timeout: float,  # noqa: ASYNC109
    ) -> SendResult:
        addr, header, body = self._request(queue, prepared)
        response = await self.instance.brokers.send_message(addr, header, body, timeout)
        status = _STATUS_BY_CODE.get(ResponseCode(response.code))
        if status is None:
            raise ResponseError(response.code, response.remark)
        answer = response.decode_header(SendMessageResponseHeader)
        ext = response.ext_fields or {}
        return SendResult(
            status=status,
            msg_id=(
                ",".join(prepared.batch_ids)
                if prepared.batch_ids
                else prepared.properties[MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX]
            ),
            offset_msg_id=answer.msg_id,
            queue=MessageQueue(queue.topic, queue.broker_name, answer.queue_id),
            queue_offset=answer.queue_offset,
            transaction_id=answer.transaction_id,
            region_id=ext.get(MessageConst.PROPERTY_MSG_REGION),
        )


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A message ready to go: its final properties (with UNIQ_KEY), the body
    as sent and the sysFlag. Retries reuse it, so the id stays the same."""

    message: Message
    properties: JavaHashMap[str, str]
    body: bytes
    sys_flag: int
    #: The UNIQ_KEYs of a batch's messages; empty for a single message.
    batch_ids: tuple[str, ...] = ()


def vip_channel_addr(addr: str) -> str:
    """``MixAll.brokerVIPChannel``: the broker's fast port, its port - 2."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        return addr
    return f"{host}:{int(port) - 2}"


def _ip_bytes(ip: str) -> bytes:
    try:
        return ipaddress.ip_address(ip).packed
    except ValueError:
        return bytes(4)


__all__ = [
    "MAX_MESSAGE_SIZE",
    "Producer",
    "QueueSelector",
    "SendResult",
    "SendStatus",
    "check_message",
    "check_topic",
    "new_message",
    "select_by_hash",
    "vip_channel_addr",
    "with_unique_id",
]
