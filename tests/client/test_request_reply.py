"""The client's request-reply helpers without a broker: the reply a
replier makes (``MessageUtil.createReplyMessage``), the request properties
(``prepareSendRequest``), which sends go out as SEND_REPLY_MESSAGE_V2, and
the CLUSTER property the broker gives request messages."""

from __future__ import annotations

import pytest
import trio

from pyrocket.broker.processors.request_message import with_request_cluster
from pyrocket.client import ClientError, create_reply_message
from pyrocket.client.broker_api import is_reply
from pyrocket.client.request_reply import (
    RequestFutureTable,
    RequestTimeoutError,
    reply_topic,
    request_message,
)
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import ReplyMessageRequestHeader
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message import (
    Message,
    MessageExt,
    compress_body,
    decode_properties,
    encode_properties,
)
from pyrocket.remoting import Connection, RemotingClient, RemotingServer
from pyrocket.remoting.client import ClientConfig
from pyrocket.remoting.server import ServerConfig
from tests.remoting.helpers import running_server, wait_until


def test_reply_message_carries_the_request_properties() -> None:
    request = MessageExt(
        topic="RpcTopic",
        body=b"ping",
        properties={
            "CLUSTER": "ClusterA",
            "CORRELATION_ID": "c-1",
            "REPLY_TO_CLIENT": "10.0.0.1@42",
            "TTL": "3000",
            "TAGS": "T",
            "UNIQ_KEY": "ABC",
        },
    )
    reply = create_reply_message(request, b"pong")
    assert reply.topic == "ClusterA_REPLY_TOPIC" == reply_topic("ClusterA")
    assert reply.body == b"pong"
    assert dict(reply.properties) == {
        "MSG_TYPE": "reply",
        "CORRELATION_ID": "c-1",
        "REPLY_TO_CLIENT": "10.0.0.1@42",
        "TTL": "3000",
    }
    assert is_reply(encode_properties(reply.properties))


def test_reply_to_a_message_without_cluster_is_refused() -> None:
    with pytest.raises(ClientError) as caught:
        create_reply_message(Message(topic="T", body=b"x", properties={"TTL": "1"}), b"y")
    assert caught.value.code == 10007
    assert str(caught.value) == (
        "create reply message fail, requestMessage error, property[CLUSTER] is null."
    )


def test_request_properties_follow_the_message_own() -> None:
    own: JavaHashMap[str, str] = JavaHashMap()
    own["TAGS"] = "T"
    own["WAIT"] = "true"
    prepared = request_message(Message("RpcTopic", b"q", own, flag=3), "c-2", "me@1", 2500)
    assert prepared.flag == 3 and prepared.body == b"q"
    expected: JavaHashMap[str, str] = JavaHashMap()
    for key, value in [
        ("TAGS", "T"),
        ("WAIT", "true"),
        ("CORRELATION_ID", "c-2"),
        ("REPLY_TO_CLIENT", "me@1"),
        ("TTL", "2500"),
    ]:
        expected[key] = value
    assert list(prepared.properties.items()) == list(expected.items())
    assert not is_reply(encode_properties(prepared.properties))


@pytest.mark.parametrize(
    ("properties", "reply"),
    [
        ("MSG_TYPE\x01reply\x02", True),
        ("TAGS\x01a\x02MSG_TYPE\x01reply", True),
        ("MSG_TYPE\x01replyish\x02", False),
        ("XMSG_TYPE\x01reply\x02", False),
        # Java drops an entry with two separators: no MSG_TYPE at all.
        ("TAGS\x01MSG_TYPE\x01reply\x02", False),
        ("", False),
        (None, False),
    ],
)
def test_which_sends_are_replies(properties: str | None, reply: bool) -> None:
    assert is_reply(properties) is reply


def test_request_messages_get_cluster_others_stay_verbatim() -> None:
    plain = "WAIT\x01true\x02TAGS\x01a\x02"
    assert with_request_cluster(plain, "C") is plain
    lookalike = "XREPLY_TO_CLIENT\x01me\x02"
    assert with_request_cluster(lookalike, "C") is lookalike
    text = encode_properties(
        {"WAIT": "true", "REPLY_TO_CLIENT": "me@1", "CORRELATION_ID": "c", "TTL": "9"}
    )
    stored = with_request_cluster(text, "ClusterB")
    assert decode_properties(stored) == {**decode_properties(text), "CLUSTER": "ClusterB"}
    # Re-encoded in Java's HashMap order, not appended.
    table: JavaHashMap[str, str] = JavaHashMap()
    for key, value in decode_properties(text).items():
        table[key] = value
    table["CLUSTER"] = "ClusterB"
    assert stored == encode_properties(table)
    assert not stored.endswith("CLUSTER\x01ClusterB\x02")


def test_request_timeout_error_is_a_client_error() -> None:
    error = RequestTimeoutError("late")
    assert isinstance(error, ClientError) and error.code == 10006


class _Peer:
    """A bare RemotingClient whose connection a test server pushes on."""

    def __init__(self) -> None:
        self.client = RemotingClient(ClientConfig())
        self.table = RequestFutureTable(self.client)
        self.server = RemotingServer(ServerConfig())
        self.conns: list[Connection] = []
        self.server.register_processor(RequestCode.HEART_BEAT, self._hello)

    def _hello(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        self.conns.append(conn)
        return RemotingCommand.response(ResponseCode.SUCCESS)


def push_of(properties: dict[str, str], body: bytes, sys_flag: int = 0) -> RemotingCommand:
    header = ReplyMessageRequestHeader(
        producer_group="g",
        topic="C_REPLY_TOPIC",
        default_topic="TBW102",
        default_topic_queue_nums=4,
        queue_id=0,
        sys_flag=sys_flag,
        born_timestamp=1,
        flag=5,
        properties=encode_properties(properties),
        reconsume_times=2,
        unit_mode=False,
        born_host="/127.0.0.1:5555",
        store_host="/127.0.0.1:10911",
        store_timestamp=2,
    )
    return RemotingCommand.request(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, header, body=body)


class _Sender:
    """A Requester whose send only records the prepared message."""

    def __init__(self, routes: dict[str, object]) -> None:
        self.client_id = "127.0.0.1@me"
        self.instance = self
        self.routes = routes
        self.sent: list[Message] = []

    async def heartbeat_all(self) -> int:
        return 0

    async def publish_queues(self, topic: str) -> list[MessageQueue]:
        return []

    async def send(self, message: Message) -> object:
        self.sent.append(message)
        return None

    async def send_orderly(self, message: Message, shard_key: object, selector: object) -> object:
        return await self.send(message)


async def test_pushed_replies_over_a_socket() -> None:
    peer = _Peer()
    sender = _Sender({"RpcTopic": object()})
    with trio.fail_after(10):
        async with running_server(peer.server) as addr, peer.client:
            await peer.client.invoke_sync(addr, RemotingCommand.request(RequestCode.HEART_BEAT), 3)
            (conn,) = peer.conns
            replies: list[MessageExt] = []

            async def ask() -> None:
                replies.append(await peer.table.request(sender, Message("RpcTopic", b"q"), 5.0))  # type: ignore[arg-type]

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask)
                await wait_until(lambda: bool(sender.sent))
                correlation = sender.sent[0].properties["CORRELATION_ID"]
                # Unmatched: acknowledged, nothing delivered.
                answer = await conn.invoke(push_of({"CORRELATION_ID": "other"}, b"x"), 3)
                assert answer.code == ResponseCode.SUCCESS and not replies
                # A header without its required fields: an error answer, the
                # connection and the waiting request unharmed.
                bad = RemotingCommand.request(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT)
                answer = await conn.invoke(bad, 3)
                assert answer.code == ResponseCode.SYSTEM_ERROR and len(peer.table) == 1
                # The matching reply, compressed.
                body = b"answer " * 1000
                push = push_of({"CORRELATION_ID": correlation, "K": "v"}, compress_body(body), 1)
                answer = await conn.invoke(push, 3)
                assert answer.code == ResponseCode.SUCCESS
            (reply,) = replies
            assert reply.body == body and reply.flag == 5 and reply.reconsume_times == 2
            assert reply.sys_flag == 0
            assert reply.topic == "C_REPLY_TOPIC" and reply.store_timestamp == 2
            assert str(reply.born_host) == "127.0.0.1:5555"
            assert str(reply.store_host) == "127.0.0.1:10911"
            assert reply.properties["K"] == "v" and "ARRIVE_TIME" in reply.properties
            assert len(peer.table) == 0
            # The request's own properties.
            sent = sender.sent[0].properties
            assert sent["REPLY_TO_CLIENT"] == "127.0.0.1@me" and sent["TTL"] == "5000"


async def test_a_full_table_refuses_more_requests() -> None:
    client = RemotingClient(ClientConfig())
    table = RequestFutureTable(client, limit=2)
    sender = _Sender({"RpcTopic": object()})
    ended: list[str] = []

    async def waiting() -> None:
        try:
            await table.request(sender, Message("RpcTopic", b"q"), 5.0)  # type: ignore[arg-type]
        except ClientError as exc:
            ended.append(str(exc))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for _ in range(2):
                nursery.start_soon(waiting)
            await wait_until(lambda: len(table) == 2)
            with pytest.raises(ClientError, match="too many requests"):
                await table.request(sender, Message("RpcTopic", b"q"), 5.0)  # type: ignore[arg-type]
            table.close()
        assert ended == ["the producer is closed"] * 2
        assert len(table) == 0
        with pytest.raises(ClientError, match="closed"):
            await table.request(sender, Message("RpcTopic", b"q"), 5.0)  # type: ignore[arg-type]
