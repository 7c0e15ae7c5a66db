"""Request-reply (RPC over messages) in the client, as Java 4.7.0's
``DefaultMQProducerImpl.request``, ``RequestFutureTable``,
``RequestResponseFuture``, ``ClientRemotingProcessor.receiveReplyMessage``
and ``MessageUtil.createReplyMessage`` do it::

    # the requester
    async with Producer("rpc_requesters", namesrv) as producer:
        reply = await producer.request(new_message("RpcTopic", b"ping"), timeout=3.0)

    # the replier: a consumer of RpcTopic and a producer for the replies
    async for message in consumer:
        await replier.send(create_reply_message(message, b"pong"))

A request is an ordinary send of a message with three more properties:
``CORRELATION_ID`` (a random UUID), ``REPLY_TO_CLIENT`` (the requester's
client id) and ``TTL`` (the timeout in ms). The broker stores it with
``CLUSTER``; the reply, made by :func:`create_reply_message`, goes to
``<cluster>_REPLY_TOPIC`` with ``MSG_TYPE`` "reply", which makes the
producer send it as SEND_REPLY_MESSAGE_V2; the broker pushes it to the
requester as PUSH_REPLY_MESSAGE_TO_CLIENT, answered here by
:meth:`RequestFutureTable.on_push`, which hands it to the waiting request by
its correlation id.

Each producer has its own table (Java: one per process), bounded
(:data:`MAX_PENDING_REQUESTS`); an entry is released when its request
returns, fails, times out or is cancelled, and all of them when the producer
closes. A reply that matches no waiting request is logged and acknowledged,
as Java does.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Final, Protocol

import trio

from pyrocket.client.broker_api import REPLY_MESSAGE_FLAG, is_reply
from pyrocket.client.instance import ClientError, ClientInstance
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import ReplyMessageRequestHeader
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message import (
    UNSPECIFIED_HOST,
    HostPort,
    Message,
    MessageConst,
    MessageExt,
    MessageSysFlag,
    decode_properties,
    decompress_body,
    java_properties,
)
from pyrocket.remoting import Connection, RemotingClient

log = logging.getLogger("pyrocket.client.request")

#: ClientErrorCode.REQUEST_TIMEOUT_EXCEPTION.
REQUEST_TIMEOUT_EXCEPTION: Final = 10006
#: ClientErrorCode.CREATE_REPLY_MESSAGE_EXCEPTION.
CREATE_REPLY_MESSAGE_EXCEPTION: Final = 10007
#: MixAll.REPLY_TOPIC_POSTFIX.
REPLY_TOPIC_POSTFIX: Final = "REPLY_TOPIC"
#: Requests one producer may have waiting for replies at once.
MAX_PENDING_REQUESTS: Final = 10_000
#: Topics without a route remembered as prepared (then forgotten at once).
_PREPARED_TOPICS: Final = 1024


class RequestTimeoutError(ClientError):
    """The request was sent but no reply came in time (Java's
    ``RequestTimeoutException``, code 10006)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, REQUEST_TIMEOUT_EXCEPTION)


def reply_topic(cluster: str) -> str:
    """``MixAll.getReplyTopic``: where the replies of ``cluster`` go."""
    return f"{cluster}_{REPLY_TOPIC_POSTFIX}"


def create_reply_message(request: Message | MessageExt, body: bytes) -> Message:
    """The reply to ``request`` (a delivered request message) carrying
    ``body``: to ``<CLUSTER>_REPLY_TOPIC``, with ``MSG_TYPE`` "reply" and the
    request's ``CORRELATION_ID``, ``REPLY_TO_CLIENT`` and ``TTL``. Send it
    with any producer's ``send``.

    Raises ClientError (code 10007) when the request has no ``CLUSTER``
    property (it was not stored by a broker that sets it)."""
    properties = request.properties
    cluster = properties.get(MessageConst.PROPERTY_CLUSTER)
    if cluster is None:
        raise ClientError(
            "create reply message fail, requestMessage error, "
            f"property[{MessageConst.PROPERTY_CLUSTER}] is null.",
            CREATE_REPLY_MESSAGE_EXCEPTION,
        )
    table: JavaHashMap[str, str] = JavaHashMap()
    table[MessageConst.PROPERTY_MESSAGE_TYPE] = REPLY_MESSAGE_FLAG
    for name in (
        MessageConst.PROPERTY_CORRELATION_ID,
        MessageConst.PROPERTY_MESSAGE_REPLY_TO_CLIENT,
        MessageConst.PROPERTY_MESSAGE_TTL,
    ):
        value = properties.get(name)
        if value is not None:
            table[name] = value
    return Message(topic=reply_topic(cluster), body=body, properties=table)


def request_message(message: Message, correlation_id: str, client_id: str, ttl_ms: int) -> Message:
    """``prepareSendRequest``: ``message`` with ``CORRELATION_ID``,
    ``REPLY_TO_CLIENT`` and ``TTL`` added to its properties, in that order."""
    table: JavaHashMap[str, str] = JavaHashMap()
    table.update(message.properties)
    table[MessageConst.PROPERTY_CORRELATION_ID] = correlation_id
    table[MessageConst.PROPERTY_MESSAGE_REPLY_TO_CLIENT] = client_id
    table[MessageConst.PROPERTY_MESSAGE_TTL] = str(ttl_ms)
    return Message(topic=message.topic, body=message.body, properties=table, flag=message.flag)


def _pushed_host(text: str | None) -> HostPort:
    """A host as the broker prints it (``/127.0.0.1:10911``, or
    ``name/ip:port``)."""
    if not text:
        return UNSPECIFIED_HOST
    try:
        return HostPort.parse(text.rpartition("/")[2])
    except ValueError:
        return UNSPECIFIED_HOST


class Requester(Protocol):
    """What a request needs of its producer (:class:`~pyrocket.client.producer.Producer`)."""

    @property
    def client_id(self) -> str: ...

    @property
    def instance(self) -> ClientInstance: ...

    async def publish_queues(self, topic: str) -> list[MessageQueue]: ...

    async def send(self, message: Message) -> object: ...

    async def send_orderly(
        self, message: Message, shard_key: object, selector: QueueSelector
    ) -> object: ...


#: Picks a queue for a send (the producer's ``QueueSelector``).
QueueSelector = Callable[[Sequence[MessageQueue], Message, object], MessageQueue]


class _Waiter:
    """One request waiting for its reply."""

    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.reply: MessageExt | None = None


class RequestFutureTable:
    """The requests of one producer waiting for replies, by correlation id."""

    def __init__(self, remoting: RemotingClient, limit: int = MAX_PENDING_REQUESTS) -> None:
        """A table answering PUSH_REPLY_MESSAGE_TO_CLIENT on ``remoting``'s
        connections."""
        self.limit = limit
        self._waiting: dict[str, _Waiter] = {}
        self._closed = False
        #: Topics prepared without a route of their own (see _prepare_route).
        self._prepared: set[str] = set()
        remoting.register_processor(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, self.on_push)

    def __len__(self) -> int:
        return len(self._waiting)

    def close(self) -> None:
        """The producer closes: every waiting request ends (ClientError)."""
        self._closed = True
        for waiter in self._waiting.values():
            waiter.event.set()
        self._waiting.clear()

    async def request(
        self,
        producer: Requester,
        message: Message,
        timeout: float,  # noqa: ASYNC109 (Java's API: the timeout belongs to the call)
        selector: QueueSelector | None = None,
        arg: object = None,
    ) -> MessageExt:
        """Send ``message`` as a request with ``producer`` and wait at most
        ``timeout`` seconds, sending included, for its reply. The send is
        ``producer.send`` (retried on another broker), or with ``selector``
        ``producer.send_orderly(message, arg, selector)`` (one attempt, the
        queue the selector picks: Java's ``request(msg, selector, arg,
        timeout)``; a selector returning one queue is ``request(msg, mq,
        timeout)``). Java's callback forms are this awaited in a task.

        A topic whose route the producer lacks is looked up first and the
        brokers sent a heartbeat, so that the one the reply reaches knows the
        requester (``prepareSendRequest``).

        Raises RequestTimeoutError (sent, no reply in time), ClientError (the
        send failed or ran out of time, ``__cause__`` says why; the table is
        full; the producer closed)."""
        if self._closed:
            raise ClientError("the producer is closed")
        if len(self._waiting) >= self.limit:
            raise ClientError(f"too many requests waiting for replies (at most {self.limit})")
        deadline = trio.current_time() + timeout
        correlation_id = str(uuid.uuid4())
        prepared = request_message(message, correlation_id, producer.client_id, int(timeout * 1000))
        waiter = self._waiting[correlation_id] = _Waiter()
        try:
            with trio.move_on_at(deadline) as scope:
                try:
                    await self._prepare_route(producer, message.topic)
                    if selector is None:
                        await producer.send(prepared)
                    else:
                        await producer.send_orderly(prepared, arg, selector)
                except PyrocketError as exc:
                    raise ClientError(f"send request message to <{message.topic}> fail") from exc
            if scope.cancelled_caught and waiter.reply is None:
                raise ClientError(
                    f"send request message to <{message.topic}> fail: no answer in "
                    f"{int(timeout * 1000)} ms"
                )
            with trio.move_on_at(deadline):
                await waiter.event.wait()
            if waiter.reply is not None:
                return waiter.reply
            if self._closed:
                raise ClientError("the producer is closed")
            raise RequestTimeoutError(
                f"send request message to <{message.topic}> OK, but wait reply message "
                f"timeout, {int(timeout * 1000)} ms."
            )
        finally:
            if self._waiting.get(correlation_id) is waiter:
                del self._waiting[correlation_id]

    async def _prepare_route(self, producer: Requester, topic: str) -> None:
        """``prepareSendRequest``: the first request to a topic without a
        route of its own (a topic sent along TBW102's route, which Java then
        records under the topic) looks it up and heartbeats every broker."""
        if topic in producer.instance.routes or topic in self._prepared:
            return
        await producer.publish_queues(topic)
        await producer.instance.heartbeat_all()
        if len(self._prepared) >= _PREPARED_TOPICS:
            self._prepared.clear()
        self._prepared.add(topic)

    async def on_push(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        """PUSH_REPLY_MESSAGE_TO_CLIENT: the reply as a message, handed to
        the request waiting for it (``receiveReplyMessage``)."""
        received = time.time_ns() // 1_000_000
        header = request.decode_header(ReplyMessageRequestHeader)
        try:
            body = request.body or b""
            sys_flag = header.sys_flag
            if sys_flag & MessageSysFlag.COMPRESSED_FLAG:
                try:
                    body = await trio.to_thread.run_sync(decompress_body, body)
                except PyrocketError as exc:
                    log.warning("reply body from %s does not inflate: %s", conn, exc)
                else:  # as a consumer hands out inflated bodies
                    sys_flag = MessageSysFlag.clear_compressed_flag(sys_flag)
            properties = java_properties(decode_properties(header.properties or ""))
            properties[MessageConst.PROPERTY_REPLY_MESSAGE_ARRIVE_TIME] = str(received)
            reply = MessageExt(
                topic=header.topic,
                body=body,
                properties=properties,
                flag=header.flag,
                queue_id=header.queue_id,
                sys_flag=sys_flag,
                born_timestamp=header.born_timestamp,
                born_host=_pushed_host(header.born_host),
                store_timestamp=header.store_timestamp,
                store_host=_pushed_host(header.store_host),
                reconsume_times=header.reconsume_times or 0,
            )
        except PyrocketError as exc:
            log.warning("unknown err when receiveReplyMsg from %s: %s", conn, exc)
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, "process reply message fail")
        correlation_id = properties.get(MessageConst.PROPERTY_CORRELATION_ID)
        waiter = self._waiting.pop(correlation_id, None) if correlation_id else None
        if waiter is None:
            log.warning(
                "receive reply message, but not matched any request, CorrelationId: %s , "
                "reply from host: %s",
                correlation_id,
                header.born_host,
            )
        else:
            waiter.reply = reply
            waiter.event.set()
        return RemotingCommand.response(ResponseCode.SUCCESS)


__all__ = [
    "CREATE_REPLY_MESSAGE_EXCEPTION",
    "MAX_PENDING_REQUESTS",
    "REPLY_MESSAGE_FLAG",
    "REQUEST_TIMEOUT_EXCEPTION",
    "QueueSelector",
    "RequestFutureTable",
    "RequestTimeoutError",
    "Requester",
    "create_reply_message",
    "is_reply",
    "reply_topic",
    "request_message",
]
