"""Finding messages (Java's ``MQAdminImpl.queryMessage``,
``queryMessageByUniqKey`` and ``viewMessage``): by key or by a client's
unique id through every broker of a topic's route, by an offset message id
straight from the broker that stored it.

A key query asks every broker of the route at once (its master, else a
slave) and merges what they answer as Java does: only messages whose KEYS
hold the key (brokers answer hash collisions too), the highest
``indexLastUpdateTimestamp``; a unique-id query keeps only the earliest
stored message with that id. A broker that fails or answers
QUERY_NOT_FOUND adds nothing. Nothing found raises :class:`NoMessageError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from pyrocket.client.admin.walks import select_broker_addr
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.errors import ProtocolError, PyrocketError, ResponseError
from pyrocket.protocol.bodies.route import TopicRouteData
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.headers import QueryMessageRequestHeader, QueryMessageResponseHeader
from pyrocket.protocol.message import (
    MessageExt,
    decode_messages,
    decode_offset_message_id,
    parse_unique_id,
)

#: ``Long.MAX_VALUE``: mqadmin's open end of a time range.
LONG_MAX = 2**63 - 1


class NoMessageError(ResponseError):
    """Java's ``MQClientException(NO_MESSAGE, ...)``."""

    def __init__(self, remark: str) -> None:
        super().__init__(ResponseCode.NO_MESSAGE, remark)


@dataclass(frozen=True, slots=True)
class QueryResult:
    """``QueryResult``: the newest index time of the brokers that answered
    and the messages found."""

    index_last_update_timestamp: int
    messages: list[MessageExt]


def client_msg_id(message: MessageExt) -> str:
    """``MessageClientExt.getMsgId``: the unique id, else the offset id."""
    unique = message.uniq_key
    return unique if unique else message.msg_id


async def query_message(
    brokers: BrokerAPI,
    route: TopicRouteData,
    topic: str,
    key: str,
    max_num: int,
    begin: int,
    end: int,
    *,
    unique_key: bool = False,
) -> QueryResult:
    """QUERY_MESSAGE on every broker of ``route``, merged (see the module
    doc). Raises NoMessageError when nothing matched, ResponseError
    (TOPIC_NOT_EXIST) when the route names no broker address."""
    addrs = [a for a in (select_broker_addr(d) for d in route.broker_datas or []) if a]
    if not addrs:
        raise ResponseError(
            ResponseCode.TOPIC_NOT_EXIST, f"The topic[{topic}] not matched route info"
        )
    header = QueryMessageRequestHeader(topic, key, max_num, begin, end)
    answers: list[tuple[int, list[MessageExt]]] = []

    async def ask(addr: str) -> None:
        # Java waits 3x the timeout for each answer.
        try:
            response = await brokers.query_message(
                addr, header, unique_key=unique_key, timeout=brokers.timeout * 3
            )
            if response.code != ResponseCode.SUCCESS:
                return
            fields = response.decode_header(QueryMessageResponseHeader)
            found = decode_messages(response.body or b"")
        except PyrocketError:
            return
        answers.append((fields.index_last_update_timestamp, found))

    async with trio.open_nursery() as nursery:
        for addr in addrs:
            nursery.start_soon(ask, addr)
    newest = 0
    messages: list[MessageExt] = []
    for index_time, found in answers:
        newest = max(newest, index_time)
        for message in found:
            if unique_key:
                if client_msg_id(message) != key:
                    continue
                if not messages:
                    messages.append(message)
                elif messages[0].store_timestamp > message.store_timestamp:
                    messages[:] = [message]
            elif message.keys is not None and key in message.keys.split(" "):
                messages.append(message)
    if not messages:
        raise NoMessageError("query message by key finished, but no message.")
    return QueryResult(newest, messages)


async def query_message_by_unique_key(
    brokers: BrokerAPI, route: TopicRouteData, topic: str, unique_key: str
) -> MessageExt | None:
    """``queryMessageByUniqKey``: from a second before the id's time on.
    Raises ProtocolError for an id that is not a unique id."""
    begin = parse_unique_id(unique_key).approximate_time_ms() - 1000
    try:
        result = await query_message(
            brokers, route, topic, unique_key, 32, begin, LONG_MAX, unique_key=True
        )
    except NoMessageError:
        return None
    return result.messages[0] if result.messages else None


async def view_message(brokers: BrokerAPI, msg_id: str) -> MessageExt:
    """VIEW_MESSAGE_BY_ID to the store host an offset message id names.
    Raises NoMessageError when ``msg_id`` is no offset id, ResponseError
    when the broker has no such message."""
    try:
        host, offset = decode_offset_message_id(msg_id)
    except ProtocolError as exc:
        raise NoMessageError("query message by id finished, but no message.") from exc
    record = await brokers.view_message(str(host), offset)
    try:
        found = decode_messages(record)
    except ProtocolError as exc:
        raise NoMessageError("query message by id finished, but no message.") from exc
    if not found:
        raise NoMessageError("query message by id finished, but no message.")
    return found[0]


class MessageQueries:
    """The message lookups of :class:`~pyrocket.client.admin.Admin`."""

    brokers: BrokerAPI

    async def topic_route(self, topic: str) -> TopicRouteData:
        raise NotImplementedError

    async def query_message(
        self, topic: str, key: str, max_num: int, begin: int, end: int
    ) -> QueryResult:
        """Messages with ``key`` in KEYS stored in ``[begin, end]`` on any
        broker of the topic (``DefaultMQAdminExt.queryMessage``)."""
        route = await self.topic_route(topic)
        return await query_message(self.brokers, route, topic, key, max_num, begin, end)

    async def query_message_by_unique_key(self, topic: str, unique_key: str) -> MessageExt | None:
        """The message a client's unique id names (``queryMessageByUniqKey``)."""
        route = await self.topic_route(topic)
        return await query_message_by_unique_key(self.brokers, route, topic, unique_key)

    async def view_message(self, msg_id: str, topic: str | None = None) -> MessageExt | None:
        """By offset message id; when that fails and ``topic`` is given, by
        the client's unique id (``DefaultMQAdminExtImpl.viewMessage(topic,
        msgId)``). None when a unique-id lookup finds nothing."""
        try:
            return await view_message(self.brokers, msg_id)
        except PyrocketError:
            if topic is None:
                raise
        return await self.query_message_by_unique_key(topic, msg_id)


__all__ = [
    "LONG_MAX",
    "MessageQueries",
    "NoMessageError",
    "QueryResult",
    "client_msg_id",
    "query_message",
    "query_message_by_unique_key",
    "view_message",
]
