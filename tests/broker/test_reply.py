"""Request-reply over real sockets against ``pyrocket up``: a Producer's
``request`` gets the reply a consumer makes with ``create_reply_message``;
no reply times out and releases the request; concurrent requests get their
own replies; a reply to a requester that is gone, or names none, gets Java's
answer; the reply is stored only with ``storeReplyMessageEnable``; and the
PUSH_REPLY_MESSAGE_TO_CLIENT a requester receives carries Java's fields."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from pyrocket.broker.app import Broker
from pyrocket.cli.up import Running
from pyrocket.client import RequestTimeoutError, create_reply_message
from pyrocket.client.consumer import PushConsumer
from pyrocket.client.instance import ClientError
from pyrocket.client.producer import Producer, new_message
from pyrocket.errors import ResponseError
from pyrocket.protocol.bodies.client import HeartbeatData, ProducerData
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    ReplyMessageRequestHeader,
    SendMessageRequestHeader,
    SendMessageRequestHeaderV2,
)
from pyrocket.protocol.message import (
    MessageConst,
    MessageExt,
    MessageSysFlag,
    decode_properties,
    encode_properties,
)
from pyrocket.remoting import Connection, RemotingClient
from pyrocket.remoting.client import ClientConfig
from tests.broker.helpers import stored_in_topic
from tests.client.helpers import consumer, running_up
from tests.remoting.helpers import wait_until

TOPIC = "RpcTopic"
CLUSTER = "DefaultCluster"
REPLY_TOPIC = f"{CLUSTER}_REPLY_TOPIC"


def set_store_reply(broker: Broker, enabled: bool) -> None:
    settings = broker.settings
    broker.settings = dataclasses.replace(
        settings,
        broker=dataclasses.replace(settings.broker, store_reply_message_enable=enabled),
    )


async def stored(broker: Broker, topic: str, expected: int = 1) -> int:
    return await stored_in_topic(broker, topic, expected)


async def replier(namesrv: str, received: list[MessageExt], *, replies: bool = True) -> None:
    """Consume TOPIC and answer every request with ``pong:<body>``."""
    source = consumer(
        namesrv, "rpc_repliers", TOPIC, poll_name_server_interval=0.2, rebalance_interval=0.2
    )
    async with (
        source,
        Producer("rpc_reply_producers", [namesrv], client_ip="127.0.0.1") as producer,
    ):
        async for message in source:
            received.append(message)
            if replies:
                body = b"pong:" + message.body
                if message.body.startswith(b"big"):
                    body *= 2000  # over 4 KiB: the replier's producer compresses it
                await producer.send(create_reply_message(message, body))


@asynccontextmanager
async def cluster_with_replier(
    tmp_path: Path, *, replies: bool = True
) -> AsyncIterator[tuple[Running, list[MessageExt]]]:
    received: list[MessageExt] = []
    async with running_up(tmp_path) as running, trio.open_nursery() as nursery:
        nursery.start_soon(lambda: replier(running.namesrv_addr, received, replies=replies))
        yield running, received
        nursery.cancel_scope.cancel()


def requester(running: Running) -> Producer:
    return Producer("rpc_requesters", [running.namesrv_addr], client_ip="127.0.0.1")


async def test_request_gets_the_reply_the_consumer_makes(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with cluster_with_replier(tmp_path) as (running, received):
            async with requester(running) as producer:
                reply = await producer.request(new_message(TOPIC, b"ping", tags="T"), 15.0)
                assert len(producer._requests) == 0
            request = received[0]
            # The request as stored: the three request properties and CLUSTER.
            props = request.properties
            assert props[MessageConst.PROPERTY_MESSAGE_REPLY_TO_CLIENT] == producer.client_id
            assert props[MessageConst.PROPERTY_MESSAGE_TTL] == "15000"
            assert props[MessageConst.PROPERTY_CLUSTER] == CLUSTER
            correlation = props[MessageConst.PROPERTY_CORRELATION_ID]
            assert len(correlation) == 36 and correlation.count("-") == 4
            # The reply as pushed.
            assert reply.body == b"pong:ping"
            assert reply.topic == REPLY_TOPIC
            assert reply.properties[MessageConst.PROPERTY_CORRELATION_ID] == correlation
            assert reply.properties[MessageConst.PROPERTY_MESSAGE_TYPE] == "reply"
            assert reply.properties[MessageConst.PROPERTY_MESSAGE_TTL] == "15000"
            pushed = int(reply.properties[MessageConst.PROPERTY_PUSH_REPLY_TIME])
            arrived = int(reply.properties[MessageConst.PROPERTY_REPLY_MESSAGE_ARRIVE_TIME])
            assert abs(arrived - time.time() * 1000) < 30_000 and pushed <= arrived + 1000
            assert reply.store_host.port == running.broker.settings.server.listen_port
            # storeReplyMessageEnable is on by default: the reply is stored too.
            assert await stored(running.broker, REPLY_TOPIC) == 1


async def test_request_to_a_selected_queue(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with (
            cluster_with_replier(tmp_path) as (running, received),
            requester(running) as producer,
        ):
            await producer.request(new_message(TOPIC, b"first"), 15.0)
            queues = await producer.publish_queues(TOPIC)
            target = queues[-1]
            for i in range(3):
                reply = await producer.request(
                    new_message(TOPIC, b"picked %d" % i), 15.0, lambda qs, m, a: a, target
                )
                assert reply.body == b"pong:picked %d" % i
    picked = [m for m in received if m.body.startswith(b"picked")]
    assert len(picked) == 3 and {m.queue_id for m in picked} == {target.queue_id}


async def test_a_compressed_reply_is_inflated(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with (
            cluster_with_replier(tmp_path) as (running, _),
            requester(running) as producer,
        ):
            reply = await producer.request(new_message(TOPIC, b"big one"), 15.0)
    assert reply.body == b"pong:big one" * 2000
    # Inflated, so no longer marked compressed (as a consumer hands bodies out).
    assert not reply.sys_flag & MessageSysFlag.COMPRESSED_FLAG


async def test_pipelined_requests_each_get_their_own_reply(tmp_path: Path) -> None:
    count = 16
    replies: dict[int, bytes] = {}
    with trio.fail_after(60):
        async with (
            cluster_with_replier(tmp_path) as (running, _),
            requester(running) as producer,
        ):
            # Route and heartbeat first, so the requests below go out together.
            await producer.request(new_message(TOPIC, b"warm-up"), 15.0)

            async def one(i: int) -> None:
                reply = await producer.request(new_message(TOPIC, f"n{i}".encode()), 20.0)
                replies[i] = reply.body

            async with trio.open_nursery() as nursery:
                for i in range(count):
                    nursery.start_soon(one, i)
            assert len(producer._requests) == 0
    assert replies == {i: f"pong:n{i}".encode() for i in range(count)}


async def test_no_reply_times_out_and_releases_the_request(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with (
            cluster_with_replier(tmp_path, replies=False) as (running, received),
            requester(running) as producer,
        ):
            started = trio.current_time()
            with pytest.raises(RequestTimeoutError) as caught:
                await producer.request(new_message(TOPIC, b"anyone?"), 2.0)
            assert trio.current_time() - started >= 2.0
            assert caught.value.code == 10006
            assert "OK, but wait reply message timeout, 2000 ms" in str(caught.value)
            assert len(producer._requests) == 0
            # A late reply to it matches nothing and is still acknowledged.
            await wait_until(lambda: bool(received), 0.05)
            async with Producer(
                "late_repliers", [running.namesrv_addr], client_ip="127.0.0.1"
            ) as late:
                result = await late.send(create_reply_message(received[0], b"late"))
            assert result.offset_msg_id != "0"
            assert len(producer._requests) == 0


async def test_reply_to_a_requester_that_left(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with cluster_with_replier(tmp_path, replies=False) as (running, received):
            async with requester(running) as producer:
                with pytest.raises(RequestTimeoutError):
                    await producer.request(new_message(TOPIC, b"bye"), 1.0)
            await wait_until(lambda: bool(received), 0.05)
            async with Producer(
                "late_repliers", [running.namesrv_addr], client_ip="127.0.0.1"
            ) as late:
                with pytest.raises(ClientError) as caught:
                    await late.send(create_reply_message(received[0], b"too late"))
            cause = caught.value.__cause__
            assert isinstance(cause, ResponseError)
            assert cause.code == ResponseCode.SYSTEM_ERROR
            assert cause.remark == (
                f"push reply message fail, channel of <{producer.client_id}> not found."
            )
            # Each of the producer's three attempts was stored (as Java does).
            assert await stored(running.broker, REPLY_TOPIC, 3) == 3


async def test_closing_the_producer_ends_waiting_requests(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with cluster_with_replier(tmp_path, replies=False) as (running, _):
            failures: list[BaseException] = []
            async with requester(running) as producer:

                async def waiting() -> None:
                    try:
                        await producer.request(new_message(TOPIC, b"x"), 30.0)
                    except ClientError as exc:
                        failures.append(exc)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(waiting)
                    await wait_until(lambda: len(producer._requests) > 0 and _sent(producer), 0.05)
                    producer._requests.close()
            assert len(failures) == 1 and "closed" in str(failures[0])
            assert len(producer._requests) == 0


def _sent(producer: Producer) -> bool:
    return bool(producer.instance.routes)


def reply_header(code: int, properties: dict[str, str], queue_id: int = 0) -> RemotingCommand:
    v1 = SendMessageRequestHeader(
        producer_group="raw_repliers",
        topic=REPLY_TOPIC,
        default_topic="TBW102",
        default_topic_queue_nums=4,
        queue_id=queue_id,
        sys_flag=0,
        born_timestamp=int(time.time() * 1000),
        flag=7,
        properties=encode_properties(properties),
        reconsume_times=0,
        unit_mode=False,
    )
    if code == RequestCode.SEND_REPLY_MESSAGE:
        return RemotingCommand.request(code, v1, body=b"reply body")
    return RemotingCommand.request(code, SendMessageRequestHeaderV2.from_v1(v1), body=b"reply body")


def broker_addr(running: Running) -> str:
    return f"127.0.0.1:{running.broker.settings.server.listen_port}"


REPLY_CODES = [RequestCode.SEND_REPLY_MESSAGE, RequestCode.SEND_REPLY_MESSAGE_V2]


@pytest.mark.parametrize("code", REPLY_CODES)
async def test_reply_to_nobody_answers_as_java(tmp_path: Path, code: int) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running, RemotingClient(ClientConfig()) as client:
            addr = broker_addr(running)
            gone = {"MSG_TYPE": "reply", "REPLY_TO_CLIENT": "127.0.0.1@gone", "CORRELATION_ID": "c"}
            answer = await client.invoke_sync(addr, reply_header(code, gone), 5)
            assert answer.code == ResponseCode.SYSTEM_ERROR
            expected = "push reply message fail, channel of <127.0.0.1@gone> not found."
            assert answer.remark == expected
            # Stored all the same (storeReplyMessageEnable), and the answer says where.
            ext = answer.ext_fields or {}
            assert ext["queueOffset"] == "0" and ext["msgId"] != "0"
            assert ext["MSG_REGION"] == "DefaultRegion" and ext["TRACE_ON"] == "true"
            assert await stored(running.broker, REPLY_TOPIC) == 1

            nameless = {"MSG_TYPE": "reply", "CORRELATION_ID": "c"}
            set_store_reply(running.broker, False)
            answer = await client.invoke_sync(addr, reply_header(code, nameless), 5)
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert answer.remark == "reply message properties[REPLY_TO_CLIENT] is null"
            assert set(answer.ext_fields or {}) == {"MSG_REGION", "TRACE_ON"}
            assert await stored(running.broker, REPLY_TOPIC) == 1

            # The send checks are the send processor's.
            answer = await client.invoke_sync(addr, reply_header(code, gone, queue_id=9), 5)
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert (answer.remark or "").startswith("request queueId[9] is illegal")


class RawRequester:
    """A client that heartbeats as a producer and records the pushes it gets,
    answering them with ``code``."""

    def __init__(self, client_id: str, code: int = ResponseCode.SUCCESS) -> None:
        self.client_id = client_id
        self.code = code
        self.pushes: list[RemotingCommand] = []
        self.client = RemotingClient(ClientConfig())
        self.client.register_processor(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, self._on_push)

    def _on_push(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        self.pushes.append(request)
        return RemotingCommand.response(self.code, None if self.code == 0 else "no thanks")

    async def heartbeat(self, addr: str) -> None:
        data = HeartbeatData(
            client_id=self.client_id,
            producer_data_set=(ProducerData(group_name="raw_requesters"),),
            consumer_data_set=(),
        )
        answer = await self.client.invoke_sync(
            addr, RemotingCommand.request(RequestCode.HEART_BEAT, body=data.encode()), 5
        )
        assert answer.code == ResponseCode.SUCCESS


@pytest.mark.parametrize("store", [True, False])
async def test_push_carries_javas_fields(tmp_path: Path, store: bool) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running, RemotingClient(ClientConfig()) as client:
            set_store_reply(running.broker, store)
            addr = broker_addr(running)
            raw = RawRequester("127.0.0.1@raw")
            async with raw.client:
                await raw.heartbeat(addr)
                properties = {
                    "MSG_TYPE": "reply",
                    "CORRELATION_ID": "corr-1",
                    "REPLY_TO_CLIENT": raw.client_id,
                    "TTL": "3000",
                }
                request = reply_header(RequestCode.SEND_REPLY_MESSAGE_V2, properties)
                answer = await client.invoke_sync(addr, request, 5)
            assert answer.code == ResponseCode.SUCCESS and answer.remark is None
            ext = answer.ext_fields or {}
            assert ext["queueId"] == "0"
            if store:
                assert ext["msgId"] != "0" and await stored(running.broker, REPLY_TOPIC) == 1
            else:
                assert ext["msgId"] == "0" and ext["queueOffset"] == "0"
                assert await stored(running.broker, REPLY_TOPIC) == 0
            (push,) = raw.pushes
            assert push.code == RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT
            assert push.body == b"reply body"
            header = push.decode_header(ReplyMessageRequestHeader)
            assert header.topic == REPLY_TOPIC and header.producer_group == "raw_repliers"
            assert header.flag == 7 and header.queue_id == 0 and header.reconsume_times == 0
            assert header.born_host.startswith("/127.0.0.1:")
            assert header.store_host == f"/127.0.0.1:{running.broker.settings.server.listen_port}"
            assert abs(header.store_timestamp - time.time() * 1000) < 30_000
            pushed = decode_properties(header.properties or "")
            push_time = int(pushed.pop("PUSH_REPLY_TIME"))
            assert abs(push_time - header.store_timestamp) < 5000
            assert pushed == properties
            fields = set(push.ext_fields or {})
            assert fields >= {"unitMode", "bornHost", "storeHost", "defaultTopic"}


async def test_push_refused_by_the_requester(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running, RemotingClient(ClientConfig()) as client:
            addr = broker_addr(running)
            raw = RawRequester("127.0.0.1@grumpy", code=ResponseCode.SYSTEM_ERROR)
            async with raw.client:
                await raw.heartbeat(addr)
                properties = {"MSG_TYPE": "reply", "REPLY_TO_CLIENT": raw.client_id}
                request = reply_header(RequestCode.SEND_REPLY_MESSAGE, properties)
                answer = await client.invoke_sync(addr, request, 5)
            assert len(raw.pushes) == 1
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert answer.remark == "push reply message to 127.0.0.1@grumpyfail."


async def test_ordinary_messages_are_stored_verbatim(tmp_path: Path) -> None:
    """Only request messages get CLUSTER: every other message keeps the
    properties string its producer sent, as Java 4.7.0 stores it."""
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            source: PushConsumer = consumer(running.namesrv_addr, "plain_readers", "PlainTopic")
            async with Producer(
                "plain_producers", [running.namesrv_addr], client_ip="127.0.0.1"
            ) as producer:
                await producer.send(new_message("PlainTopic", b"plain", tags="A"))
            async with source:
                message = await source.receive()
            assert MessageConst.PROPERTY_CLUSTER not in message.properties
            assert message.properties["TAGS"] == "A"


async def test_bad_replies_get_clear_answers_and_the_connection_stays(tmp_path: Path) -> None:
    good = {"MSG_TYPE": "reply", "REPLY_TO_CLIENT": "127.0.0.1@nobody"}
    with trio.fail_after(30):
        async with running_up(tmp_path) as running, RemotingClient(ClientConfig()) as client:
            addr = broker_addr(running)
            empty = RemotingCommand.request(RequestCode.SEND_REPLY_MESSAGE_V2)
            answer = await client.invoke_sync(addr, empty, 5)
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert "the custom field <a> is null" in (answer.remark or "")

            ipv6 = reply_header(RequestCode.SEND_REPLY_MESSAGE, good)
            fields = dict(ipv6.ext_fields or {})
            fields["sysFlag"] = str(0x10)  # BORNHOST_V6_FLAG for an IPv4 peer
            answer = await client.invoke_sync(addr, ipv6.replace(ext_fields=fields), 5)
            assert answer.code == ResponseCode.MESSAGE_ILLEGAL

            bad_topic = reply_header(RequestCode.SEND_REPLY_MESSAGE, good)
            fields = dict(bad_topic.ext_fields or {})
            fields["topic"] = "no spaces allowed"
            answer = await client.invoke_sync(addr, bad_topic.replace(ext_fields=fields), 5)
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert "contains illegal characters" in (answer.remark or "")

            not_a_number = reply_header(RequestCode.SEND_REPLY_MESSAGE, good)
            fields = dict(not_a_number.ext_fields or {})
            fields["queueId"] = "zero"
            answer = await client.invoke_sync(addr, not_a_number.replace(ext_fields=fields), 5)
            assert answer.code == ResponseCode.SYSTEM_ERROR and "queueId" in (answer.remark or "")

            # None of it was stored, and the connection still answers.
            answer = await client.invoke_sync(
                addr, reply_header(RequestCode.SEND_REPLY_MESSAGE_V2, good), 5
            )
            assert (
                answer.remark == "push reply message fail, channel of <127.0.0.1@nobody> not found."
            )
            assert await stored(running.broker, REPLY_TOPIC) == 1
