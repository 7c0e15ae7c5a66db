"""The Producer over real sockets: against a scripted cluster for the exact
request fields, the answer-code mapping and the retry rules, and against
``pyrocket up`` for topic auto-creation."""

from __future__ import annotations

import dataclasses
import zlib
from pathlib import Path

import pytest
import trio

from pyrocket.client.instance import ClientError
from pyrocket.client.namesrv_api import NameServerAPI
from pyrocket.client.producer import (
    Producer,
    SendStatus,
    new_message,
    select_by_hash,
    vip_channel_addr,
)
from pyrocket.errors import RemotingTooMuchRequestError, ResponseError
from pyrocket.protocol.bodies.client import HeartbeatData, MessageQueue
from pyrocket.protocol.bodies.topic import PERM_READ
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
    UnregisterClientRequestHeader,
)
from pyrocket.protocol.message import (
    HostPort,
    MessageSysFlag,
    create_offset_message_id,
    decode_batch,
    decode_properties,
    parse_unique_id,
)
from pyrocket.remoting import RemotingClient
from tests.client.helpers import ScriptedCluster, route_to, running_up
from tests.remoting.helpers import running_server, wait_until

TOPIC = "ProducerTopic"


def stored(request: RemotingCommand, offset: int) -> RemotingCommand:
    header = request.decode_header(SendMessageRequestHeaderV2)
    answer = SendMessageResponseHeader(
        msg_id=create_offset_message_id(HostPort.parse("127.0.0.1:10911"), offset),
        queue_id=header.queue_id,
        queue_offset=offset,
    )
    return RemotingCommand.response(ResponseCode.SUCCESS, header=answer).replace(
        ext_fields={**answer.to_ext_fields(), "MSG_REGION": "DefaultRegion"}
    )


async def test_send_fields_heartbeat_and_unregister() -> None:
    cluster = ScriptedCluster()
    cluster.handlers[RequestCode.SEND_MESSAGE_V2] = lambda r: stored(r, 7)
    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)])
            async with Producer("pg", [addr], client_ip="127.0.0.1") as producer:
                message = new_message(
                    TOPIC, b"hello", tags="TagA", keys=["k1", "k2"], properties={"p": "v"}, flag=3
                )
                result = await producer.send(message)
                big = await producer.send(new_message(TOPIC, b"z" * 5000))
                client_id = producer.client_id
                # A broker seen in a route gets a heartbeat at once.
                await wait_until(lambda: bool(cluster.seen(RequestCode.HEART_BEAT)))
    assert result.status is SendStatus.SEND_OK
    assert result.queue_offset == 7 and result.region_id == "DefaultRegion"
    assert result.offset_msg_id == create_offset_message_id(HostPort.parse("127.0.0.1:10911"), 7)
    assert parse_unique_id(result.msg_id).host == "127.0.0.1"
    assert big.msg_id != result.msg_id

    sends = cluster.seen(RequestCode.SEND_MESSAGE_V2)
    assert len(sends) == 2
    first = sends[0].decode_header(SendMessageRequestHeaderV2)
    assert (first.producer_group, first.topic, first.default_topic) == ("pg", TOPIC, "TBW102")
    assert first.default_topic_queue_nums == 4 and first.flag == 3
    assert first.sys_flag == 0 and not first.batch and not first.unit_mode
    assert first.reconsume_times == 0 and first.max_reconsume_times is None
    assert result.queue == MessageQueue(TOPIC, "broker-a", first.queue_id)
    assert list(sends[0].ext_fields or {}) == list("abcdefghijkm")  # Java's HashMap order
    properties = decode_properties(first.properties or "")
    assert properties == {
        "p": "v",
        "KEYS": "k1 k2",
        "UNIQ_KEY": result.msg_id,
        "WAIT": "true",
        "TAGS": "TagA",
    }
    assert sends[0].body == b"hello"
    second = sends[1].decode_header(SendMessageRequestHeaderV2)
    assert second.sys_flag == MessageSysFlag.COMPRESSED_FLAG
    assert zlib.decompress(sends[1].body or b"") == b"z" * 5000
    assert second.queue_id == (first.queue_id + 1) % 4  # round robin

    beats = cluster.seen(RequestCode.HEART_BEAT)
    assert beats
    data = HeartbeatData.decode(beats[0].body or b"")
    assert data.client_id == client_id and client_id.startswith("127.0.0.1@")
    assert [p.group_name for p in data.producer_data_set] == ["CLIENT_INNER_PRODUCER", "pg"]
    assert not data.consumer_data_set
    byes = [
        r.decode_header(UnregisterClientRequestHeader)
        for r in cluster.seen(RequestCode.UNREGISTER_CLIENT)
    ]
    assert [(h.client_id, h.producer_group, h.consumer_group) for h in byes] == [
        (client_id, "pg", None),
        (client_id, "CLIENT_INNER_PRODUCER", None),
    ]


async def test_explicit_start_and_shutdown() -> None:
    cluster = ScriptedCluster()
    cluster.handlers[RequestCode.SEND_MESSAGE_V2] = lambda r: stored(r, 3)
    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)])
            producer = Producer("pg", [addr], client_ip="127.0.0.1")
            await producer.start()
            result = await producer.send(new_message(TOPIC, b"started"))
            await producer.shutdown()
            assert cluster.seen(RequestCode.UNREGISTER_CLIENT)
            with pytest.raises(ClientError):
                await producer.send(new_message(TOPIC, b"after shutdown"))
    assert result.status is SendStatus.SEND_OK and result.queue_offset == 3
    assert [r.body for r in cluster.seen(RequestCode.SEND_MESSAGE_V2)] == [b"started"]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ResponseCode.FLUSH_DISK_TIMEOUT, SendStatus.FLUSH_DISK_TIMEOUT),
        (ResponseCode.FLUSH_SLAVE_TIMEOUT, SendStatus.FLUSH_SLAVE_TIMEOUT),
        (ResponseCode.SLAVE_NOT_AVAILABLE, SendStatus.SLAVE_NOT_AVAILABLE),
    ],
)
async def test_stored_but_not_ok_statuses_are_results(
    code: ResponseCode, status: SendStatus
) -> None:
    cluster = ScriptedCluster()
    cluster.handlers[RequestCode.SEND_MESSAGE_V2] = lambda r: stored(r, 1).replace(code=code)
    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)])
            async with Producer("pg", [addr], client_ip="127.0.0.1") as producer:
                result = await producer.send(new_message(TOPIC, b"x"))
    assert result.status is status
    assert len(cluster.seen(RequestCode.SEND_MESSAGE_V2)) == 1  # not retried


async def test_an_error_answer_raises_with_code_and_remark() -> None:
    cluster = ScriptedCluster()
    cluster.handlers[RequestCode.SEND_MESSAGE_V2] = lambda r: RemotingCommand.response(
        ResponseCode.MESSAGE_ILLEGAL, "the message is illegal, maybe msg body or properties"
    )
    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)])
            async with Producer("pg", [addr], client_ip="127.0.0.1") as producer:
                with pytest.raises(ResponseError) as failure:
                    await producer.send(new_message(TOPIC, b"x"))
    assert failure.value.code == ResponseCode.MESSAGE_ILLEGAL
    assert failure.value.remark == "the message is illegal, maybe msg body or properties"
    assert len(cluster.seen(RequestCode.SEND_MESSAGE_V2)) == 1  # not a retried code


async def test_retried_codes_go_to_another_broker_then_give_up() -> None:
    failing, healthy = ScriptedCluster(), ScriptedCluster()
    failing.handlers[RequestCode.SEND_MESSAGE_V2] = lambda r: RemotingCommand.response(
        ResponseCode.SYSTEM_ERROR, "store is busy"
    )
    healthy.handlers[RequestCode.SEND_MESSAGE_V2] = lambda r: stored(r, 0)
    with trio.fail_after(10):
        async with running_server(failing.server) as bad, running_server(healthy.server) as good:
            route = route_to([("broker-a", bad), ("broker-b", good)])
            failing.route = lambda: route
            async with Producer("pg", [bad], client_ip="127.0.0.1") as producer:
                results = [await producer.send(new_message(TOPIC, b"x")) for _ in range(10)]
            assert all(r.queue.broker_name == "broker-b" for r in results)
            assert len(healthy.seen(RequestCode.SEND_MESSAGE_V2)) == 10
            assert len(failing.seen(RequestCode.SEND_MESSAGE_V2)) >= 1

            only_bad = route_to([("broker-a", bad)])
            failing.route = lambda: only_bad
            before = len(failing.seen(RequestCode.SEND_MESSAGE_V2))
            async with Producer("pg", [bad], client_ip="127.0.0.1") as producer:
                with pytest.raises(ClientError, match=r"Send \[3\] times") as failure:
                    await producer.send(new_message(TOPIC, b"x"))
    assert failure.value.code == ResponseCode.SYSTEM_ERROR
    assert isinstance(failure.value.__cause__, ResponseError)
    assert failure.value.__cause__.code == ResponseCode.SYSTEM_ERROR
    assert (
        len(failing.seen(RequestCode.SEND_MESSAGE_V2)) - before == 3
    )  # retryTimesWhenSendFailed=2


async def test_a_topic_without_route_fails_cleanly() -> None:
    cluster = ScriptedCluster()
    cluster.handlers[RequestCode.GET_ROUTEINFO_BY_TOPIC] = lambda r: RemotingCommand.response(
        ResponseCode.TOPIC_NOT_EXIST, "No topic route info in name server for the topic"
    )
    with trio.fail_after(10):
        async with (
            running_server(cluster.server) as addr,
            Producer("pg", [addr], client_ip="127.0.0.1") as producer,
        ):
            with pytest.raises(ClientError, match="No route info of this topic"):
                await producer.send(new_message(TOPIC, b"x"))
            with pytest.raises(ClientError, match="body length is zero"):
                await producer.send(new_message(TOPIC, b""))
            with pytest.raises(ClientError, match="illegal characters"):
                await producer.send(new_message("bad topic", b"x"))
    with pytest.raises(ValueError, match="used by system"):
        new_message(TOPIC, b"x", properties={"UNIQ_KEY": "mine"})


async def test_a_known_topic_without_writable_queues_is_not_sent_along_tbw102() -> None:
    cluster = ScriptedCluster()
    read_only = route_to([("broker-a", "127.0.0.1:1")])
    read_only = dataclasses.replace(
        read_only,
        queue_datas=tuple(
            dataclasses.replace(q, perm=PERM_READ) for q in read_only.queue_datas or ()
        ),
    )
    cluster.route = lambda: read_only
    with trio.fail_after(10):
        async with (
            running_server(cluster.server) as addr,
            Producer("pg", [addr], client_ip="127.0.0.1") as producer,
        ):
            with pytest.raises(ClientError, match="No route info of this topic"):
                await producer.send(new_message(TOPIC, b"x"))
    asked = [
        r.ext_fields.get("topic")
        for r in cluster.requests
        if r.code == RequestCode.GET_ROUTEINFO_BY_TOPIC and r.ext_fields
    ]
    assert TOPIC in asked and "TBW102" not in asked
    assert not any(r.code == RequestCode.SEND_MESSAGE_V2 for r in cluster.requests)


async def test_unknown_topic_is_created_through_tbw102(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            async with RemotingClient(namesrv_addresses=[ns]) as client:
                with pytest.raises(ResponseError) as missing:
                    await NameServerAPI(client).get_route_info("FreshTopic")
                assert missing.value.code == ResponseCode.TOPIC_NOT_EXIST
                async with Producer("pg", [ns], client_ip="127.0.0.1") as producer:
                    results = [
                        await producer.send(new_message("FreshTopic", b"%d" % i)) for i in range(8)
                    ]
                    orderly = await producer.send_orderly(
                        new_message("FreshTopic", b"o"), "order-42"
                    )
                    await producer.send_oneway(new_message("FreshTopic", b"w"))
                route = await NameServerAPI(client).get_route_info("FreshTopic")
    assert {r.status for r in results} == {SendStatus.SEND_OK}
    # At most defaultTopicQueueNums (4) queues, each used twice by round robin.
    assert sorted(r.queue.queue_id for r in results) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert route.queue_datas is not None and route.queue_datas[0].write_queue_nums == 4
    queues = [MessageQueue("FreshTopic", "broker-a", i) for i in range(4)]
    assert orderly.queue == select_by_hash(queues, new_message("FreshTopic", b"o"), "order-42")


async def test_routes_refresh_and_heartbeats_repeat() -> None:
    first, second = ScriptedCluster(), ScriptedCluster()
    for cluster in (first, second):
        cluster.handlers[RequestCode.SEND_MESSAGE_V2] = lambda r: stored(r, 0)
    with trio.fail_after(10):
        async with running_server(first.server) as a, running_server(second.server) as b:
            first.route = lambda: route_to([("broker-a", a)])
            async with Producer(
                "pg",
                [a],
                client_ip="127.0.0.1",
                poll_name_server_interval=0.1,
                heartbeat_interval=0.1,
            ) as producer:
                await producer.send(new_message(TOPIC, b"x"))
                assert {q.broker_name for q in await producer.publish_queues(TOPIC)} == {"broker-a"}
                first.route = lambda: route_to([("broker-a", a), ("broker-b", b)])
                # The periodic refresh finds broker-b; the producer greets it
                # and sends to it.
                await wait_until(lambda: bool(second.seen(RequestCode.HEART_BEAT)))
                queues = await producer.publish_queues(TOPIC)
                assert {q.broker_name for q in queues} == {"broker-a", "broker-b"}
                for _ in range(8):  # round robin over all 8 queues
                    await producer.send(new_message(TOPIC, b"x"))
                assert len(second.seen(RequestCode.SEND_MESSAGE_V2)) == 4
                beats = len(first.seen(RequestCode.HEART_BEAT))
                await wait_until(lambda: len(first.seen(RequestCode.HEART_BEAT)) >= beats + 2)
            # Both brokers hear the producer leave.
            assert first.seen(RequestCode.UNREGISTER_CLIENT)
            assert second.seen(RequestCode.UNREGISTER_CLIENT)


async def test_a_send_that_runs_out_of_time() -> None:
    cluster = ScriptedCluster()

    async def slow(request: RemotingCommand) -> RemotingCommand:
        await trio.sleep(1)
        return stored(request, 0)

    cluster.handlers[RequestCode.SEND_MESSAGE_V2] = slow
    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)])
            async with Producer("pg", [addr], client_ip="127.0.0.1", send_timeout=0.3) as producer:
                with pytest.raises(
                    RemotingTooMuchRequestError, match="sendDefaultImpl call timeout"
                ):
                    await producer.send(new_message(TOPIC, b"x"))
    # The first attempt used the whole budget: no second one.
    assert len(cluster.seen(RequestCode.SEND_MESSAGE_V2)) == 1
    assert vip_channel_addr("10.0.0.1:10911") == "10.0.0.1:10909"


async def test_batch_request_fields() -> None:
    cluster = ScriptedCluster()
    cluster.handlers[RequestCode.SEND_BATCH_MESSAGE] = lambda r: stored(r, 5)
    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)])
            async with Producer("pg", [addr], client_ip="127.0.0.1") as producer:
                big = b"y" * 6000  # not compressed inside a batch
                result = await producer.send_batch(
                    [new_message(TOPIC, b"a", tags="T1"), new_message(TOPIC, big, keys="k")]
                )
    (request,) = cluster.seen(RequestCode.SEND_BATCH_MESSAGE)
    header = request.decode_header(SendMessageRequestHeaderV2)
    assert header.batch and header.sys_flag == 0 and header.topic == TOPIC
    assert decode_properties(header.properties or "") == {"WAIT": "true"}
    items = decode_batch(request.body or b"")
    assert [m.body for m in items] == [b"a", big]
    assert [m.properties["UNIQ_KEY"] for m in items] == result.msg_id.split(",")
    assert items[0].tags == "T1" and items[1].keys == "k"
    assert result.queue_offset == 5
