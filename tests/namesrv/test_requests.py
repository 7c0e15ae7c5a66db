"""NameServer request handling over a real socket: Java's answers for every
code, the checks Java makes, and pyrocket's answers to bad input."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import pytest
import trio

from pyrocket.namesrv import NameServer
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies import (
    DataVersion,
    KVTable,
    TopicConfig,
    TopicConfigSerializeWrapper,
    TopicRouteData,
)
from pyrocket.protocol.checksum import crc32
from pyrocket.protocol.codes import VERSION_V3_0_11, RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.headers import (
    GetRouteInfoRequestHeader,
    PutKVConfigRequestHeader,
    QueryDataVersionRequestHeader,
    RegisterBrokerRequestHeader,
)
from pyrocket.remoting import RemotingClient, not_supported_remark
from tests.namesrv.helpers import (
    RawConnection,
    address,
    namesrv_config,
    register_request,
    running_namesrv,
)


async def call(
    client: RemotingClient, server: NameServer, request: RemotingCommand
) -> RemotingCommand:
    return await client.invoke_sync(address(server), request, 5)


def route_request(topic: str) -> RemotingCommand:
    return RemotingCommand.request(
        RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader(topic)
    )


async def test_unknown_codes_are_not_supported_and_the_connection_stays(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            for code in (9999, RequestCode.SEND_MESSAGE_V2, RequestCode.HEART_BEAT):
                answer = await call(client, server, RemotingCommand.request(code))
                assert answer.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
                assert answer.remark == not_supported_remark(code)
            info = await call(
                client, server, RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_INFO)
            )
            assert info.code == ResponseCode.SUCCESS


async def test_register_with_a_wrong_crc_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    request = register_request(topics=["T"])
    assert request.ext_fields is not None
    bad = dict(request.ext_fields, bodyCrc32=str(crc32(request.body) ^ 1))
    with trio.fail_after(10):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            answer = await call(client, server, request.replace(ext_fields=bad))
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert answer.remark == "crc32 not match"
            assert answer.ext_fields == {}
            assert server.state.routes.live_brokers == {}
            # A crc of 0 is not checked, as in Java.
            unchecked = dict(request.ext_fields, bodyCrc32="0")
            answer = await call(client, server, request.replace(ext_fields=unchecked))
            assert answer.code == ResponseCode.SUCCESS
            assert "T" in server.state.routes


async def test_compressed_registration_is_inflated(tmp_path: Path) -> None:
    topics = [TopicConfig(f"Topic{i}", 4, 4) for i in range(20)]
    with trio.fail_after(10):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            answer = await call(client, server, register_request(topics=topics, compressed=True))
            assert answer.code == ResponseCode.SUCCESS
            assert set(server.state.routes.topic_names()) == {f"Topic{i}" for i in range(20)}


async def test_brokers_older_than_3_0_11_send_a_bare_topic_table(tmp_path: Path) -> None:
    wrapper = TopicConfigSerializeWrapper(
        {"Old": TopicConfig("Old", 2, 2)}, DataVersion(5, 5)
    ).encode()
    header = RegisterBrokerRequestHeader(
        broker_name="old-broker",
        broker_addr="127.0.0.1:20911",
        cluster_name="Legacy",
        ha_server_addr="127.0.0.1:20912",
        broker_id=0,
        body_crc32=crc32(wrapper),
    )
    request = RemotingCommand.request(RequestCode.REGISTER_BROKER, header, body=wrapper)
    with trio.fail_after(10):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            # A new broker with filter servers first: the old path leaves them alone.
            await call(
                client,
                server,
                register_request(
                    broker_name="old-broker",
                    broker_addr="127.0.0.1:20911",
                    cluster="Legacy",
                    filter_servers=["127.0.0.1:30000"],
                ),
            )
            answer = await client.invoke_sync(
                address(server), request.replace(version=VERSION_V3_0_11 - 1), 5, as_is=True
            )
            assert answer.code == ResponseCode.SUCCESS
            routes = server.state.routes
            assert routes.queue_datas("Old")[0].read_queue_nums == 2
            assert routes.filter_servers == {"127.0.0.1:20911": ["127.0.0.1:30000"]}
            assert routes.query_broker_topic_config("127.0.0.1:20911") == DataVersion(5, 5)


@pytest.mark.parametrize(
    ("body", "compressed", "complaint"),
    [
        (b"{not json", False, "Failed to decode RegisterBrokerBody"),
        (b'{"topicConfigSerializeWrapper":[]}', False, "topicConfigSerializeWrapper"),
        (
            b'{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"topicName":"T",'
            b'"readQueueNums":"many"}}}}',
            False,
            "readQueueNums",
        ),
        (b"not zlib at all", True, "Failed to decode RegisterBrokerBody"),
        (zlib.compress(b"\x00\x00\x00\x05{}"), True, "Failed to decode RegisterBrokerBody"),
    ],
)
async def test_a_body_that_does_not_decode_is_system_error_and_stores_nothing(
    tmp_path: Path, body: bytes, compressed: bool, complaint: str
) -> None:
    header = RegisterBrokerRequestHeader(
        broker_name="b",
        broker_addr="127.0.0.1:1",
        cluster_name="C",
        ha_server_addr="127.0.0.1:2",
        broker_id=0,
        compressed=compressed,
        body_crc32=crc32(body),
    )
    request = RemotingCommand.request(RequestCode.REGISTER_BROKER, header, body=body)
    with trio.fail_after(10):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            answer = await call(client, server, request)
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert answer.remark is not None and complaint in answer.remark
            assert server.state.routes.live_brokers == {}


@pytest.mark.parametrize("missing", ["brokerName", "brokerAddr", "clusterName", "brokerId"])
async def test_a_registration_missing_a_required_field_is_refused(
    tmp_path: Path, missing: str
) -> None:
    request = register_request(topics=["T"])
    assert request.ext_fields is not None
    ext = {k: v for k, v in request.ext_fields.items() if k != missing}
    with trio.fail_after(10):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            answer = await call(client, server, request.replace(ext_fields=ext))
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert answer.remark == f"the custom field <{missing}> is null"
            assert server.state.routes.live_brokers == {}
            assert server.state.routes.cluster_names() == {}


async def test_a_field_that_does_not_parse_is_named(tmp_path: Path) -> None:
    request = register_request(topics=["T"])
    assert request.ext_fields is not None
    ext = dict(request.ext_fields, brokerId="zero")
    with trio.fail_after(10):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            answer = await call(client, server, request.replace(ext_fields=ext))
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert answer.remark == "the custom field <brokerId> is not a Long: 'zero'"


async def test_repeated_route_queries_keep_their_headers_and_get_their_own_answers(
    tmp_path: Path,
) -> None:
    """Route queries sent again and again (each with its own opaque, as a
    client polls) are answered from kept headers: each answer is the route
    at that moment, under its request's opaque, also after the route changes
    and for pipelined requests on several connections."""
    with trio.fail_after(20):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            answer = await call(client, server, register_request(topics=["T", "U"]))
            assert answer.code == ResponseCode.SUCCESS
            for _ in range(5):
                for topic in ("T", "U", "Nobody"):
                    answer = await call(client, server, route_request(topic))
                    expected = ResponseCode.TOPIC_NOT_EXIST if topic == "Nobody" else 0
                    assert answer.code == expected
            assert server.server.repeated_headers.kept >= 3
            routed = TopicRouteData.decode(
                (await call(client, server, route_request("T"))).body or b""
            )
            assert [b.broker_addrs for b in routed.broker_datas] == [{0: "127.0.0.1:10911"}]
            moved = register_request(topics=["T"], broker_addr="127.0.0.1:20911")
            assert (await call(client, server, moved)).code == ResponseCode.SUCCESS
            routed = TopicRouteData.decode(
                (await call(client, server, route_request("T"))).body or b""
            )
            assert [b.broker_addrs for b in routed.broker_datas] == [{0: "127.0.0.1:20911"}]
            connections = [await RawConnection.open(server.port or 0) for _ in range(3)]
            request = route_request("U")
            for index, connection in enumerate(connections):
                opaques = [1000 * index + n for n in range(1, 40)]
                await connection.send(
                    b"".join(encode(request.replace(opaque=opaque)) for opaque in opaques)
                )
                for opaque in opaques:
                    answer = decode(await connection.receive_frame())
                    assert (answer.opaque, answer.code) == (opaque, ResponseCode.SUCCESS)
                await connection.aclose()


async def test_route_of_an_unknown_topic(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            answer = await call(client, server, route_request("Nobody"))
            assert answer.code == ResponseCode.TOPIC_NOT_EXIST
            assert answer.remark == (
                "No topic route info in name server for the topic: Nobody\n"
                "See http://rocketmq.apache.org/docs/faq/ for further details."
            )
            missing = RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC)
            answer = await call(client, server, missing)
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert answer.remark == "the custom field <topic> is null"


async def test_order_topic_conf_appears_in_routes_only_with_order_message_enable(
    tmp_path: Path,
) -> None:
    with trio.fail_after(10):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            await call(client, server, register_request(topics=["Ordered"]))
            server.state.kv.put_kv_config("ORDER_TOPIC_CONFIG", "Ordered", "broker-a:4")
            answer = await call(client, server, route_request("Ordered"))
            assert answer.body is not None and b"orderTopicConf" not in answer.body
            server.state.config = server.state.config.replace(order_message_enable=True)
            answer = await call(client, server, route_request("Ordered"))
            assert answer.body is not None
            assert TopicRouteData.decode(answer.body).order_topic_conf == "broker-a:4"
            # The REGISTER_BROKER answer carries the namespace whatever the setting.
            answer = await call(client, server, register_request(topics=["Ordered"]))
            assert answer.body is not None
            assert KVTable.decode(answer.body).table == {"Ordered": "broker-a:4"}


async def test_query_data_version(tmp_path: Path) -> None:
    header = QueryDataVersionRequestHeader("broker-a", "127.0.0.1:10911", "DefaultCluster", 0)
    version = DataVersion(1_600_000_000_000, 1)

    def query(body: bytes | None) -> RemotingCommand:
        return RemotingCommand.request(RequestCode.QUERY_DATA_VERSION, header, body=body)

    with trio.fail_after(10):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            answer = await call(client, server, query(version.encode()))
            assert (answer.code, answer.ext_fields, answer.body) == (0, {"changed": "true"}, None)
            await call(client, server, register_request(data_version=version))
            answer = await call(client, server, query(version.encode()))
            assert answer.ext_fields == {"changed": "false"}
            assert answer.body == version.encode()
            answer = await call(client, server, query(DataVersion(1, 2).encode()))
            assert answer.ext_fields == {"changed": "true"}
            assert answer.body == version.encode()
            answer = await call(client, server, query(None))
            assert answer.code == ResponseCode.SYSTEM_ERROR


async def test_get_namesrv_config_lists_java_properties_in_java_order(tmp_path: Path) -> None:
    config = namesrv_config(tmp_path)
    with trio.fail_after(10):
        async with running_namesrv(config=config) as server, RemotingClient() as client:
            request = RemotingCommand.request(RequestCode.GET_NAMESRV_CONFIG)
            answer = await call(client, server, request)
            assert answer.body is not None
            keys = [line.split("=", 1)[0] for line in answer.body.decode().splitlines()]
            # Java 4.7.0's order for these 17 keys (a Properties is a
            # ConcurrentHashMap(8)), as the golden vectors show it.
            assert keys == [
                "serverWorkerThreads",
                "serverSelectorThreads",
                "serverChannelMaxIdleTimeSeconds",
                "serverSocketRcvBufSize",
                "serverAsyncSemaphoreValue",
                "kvConfigPath",
                "configStorePath",
                "clusterTest",
                "orderMessageEnable",
                "serverSocketSndBufSize",
                "serverCallbackExecutorThreads",
                "serverOnewaySemaphoreValue",
                "listenPort",
                "rocketmqHome",
                "productEnvName",
                "useEpollNativeSelector",
                "serverPooledByteBufAllocatorEnable",
            ]


async def test_update_namesrv_config_applies_safe_keys_and_refuses_the_rest(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "namesrv.properties"
    conf.write_text("# operator's notes\nlistenPort=0\norderMessageEnable=false\n")
    config = namesrv_config(tmp_path, config_store_path=str(conf))

    def update(text: str) -> RemotingCommand:
        return RemotingCommand.request(RequestCode.UPDATE_NAMESRV_CONFIG, body=text.encode())

    with trio.fail_after(10):
        async with running_namesrv(config=config) as server, RemotingClient() as client:
            answer = await call(client, server, update("orderMessageEnable=true\n"))
            assert (answer.code, answer.remark) == (ResponseCode.SUCCESS, None)
            assert server.state.config.order_message_enable
            assert await trio.Path(conf).read_text() == (
                "# operator's notes\nlistenPort=0\norderMessageEnable=true\n"
            )

            answer = await call(
                client,
                server,
                update("kvConfigPath=/tmp/evil\nlistenPort=1\norderMessageEnable=false\nx=1\n"),
            )
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert answer.remark is not None
            for key in ("kvConfigPath", "listenPort", "x is not a NameServer config key"):
                assert key in answer.remark
            assert answer.remark.endswith("(applied: orderMessageEnable)")
            assert server.state.config.kv_config_path == config.kv_config_path
            assert not server.state.config.order_message_enable

            answer = await call(client, server, update("orderMessageEnable=yes\n"))
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert answer.remark is not None and "expected true or false" in answer.remark

            shown = await call(client, server, RemotingCommand.request(319))
            assert shown.body is not None
            assert b"orderMessageEnable=false\n" in shown.body
            assert b"/tmp/evil" not in shown.body

            answer = await call(client, server, update("\\u00zz=1"))
            assert (answer.code, answer.remark) == (1, "string2Properties error")
            answer = await call(
                client, server, RemotingCommand.request(RequestCode.UPDATE_NAMESRV_CONFIG)
            )
            assert answer.code == ResponseCode.SUCCESS


async def test_topic_list_bodies_are_fastjson(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            await call(client, server, register_request(topics=["OnlyTopic"]))
            for code in (
                RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
                RequestCode.GET_UNIT_TOPIC_LIST,
                RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS,
            ):
                answer = await call(client, server, RemotingCommand.request(code))
                assert answer.code == ResponseCode.SUCCESS and answer.body is not None
                fastjson.loads(answer.body)
            answer = await call(
                client,
                server,
                RemotingCommand.request(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
            )
            assert answer.body == b'{"topicList":["OnlyTopic"]}'
            answer = await call(
                client, server, RemotingCommand.request(RequestCode.GET_UNIT_TOPIC_LIST)
            )
            assert answer.body == b'{"topicList":[]}'
            answer = await call(
                client, server, RemotingCommand.request(RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS)
            )
            assert answer.body == (
                b'{"brokerAddr":"127.0.0.1:10911","topicList":["broker-a","DefaultCluster"]}'
            )


async def test_a_huge_kv_value_is_not_logged_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    value = "v" * 100_000
    with trio.fail_after(10), caplog.at_level(logging.INFO, logger="pyrocket.namesrv"):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            request = RemotingCommand.request(
                RequestCode.PUT_KV_CONFIG, PutKVConfigRequestHeader("NS", "big", value)
            )
            answer = await call(client, server, request)
            assert answer.code == ResponseCode.SUCCESS
            assert server.state.kv.get_kv_config("NS", "big") == value
    lines = [r.getMessage() for r in caplog.records if "putKVConfig" in r.getMessage()]
    assert lines and all(len(line) < 1000 for line in lines)
    assert any("more characters" in line for line in lines)
