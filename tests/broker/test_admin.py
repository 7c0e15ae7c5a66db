"""The admin processor over real sockets: answers, refusals and side effects."""

from __future__ import annotations

from pathlib import Path

import trio

from pyrocket.broker.store import BrokerMessage
from pyrocket.protocol.bodies.admin import TopicStatsTable
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.properties import Properties
from pyrocket.protocol.bodies.topic import (
    DataVersion,
    KVTable,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    CreateTopicRequestHeader,
    DeleteTopicRequestHeader,
    GetBrokerConfigResponseHeader,
    GetTopicStatsInfoRequestHeader,
)
from pyrocket.protocol.message import HostPort
from pyrocket.remoting import RemotingClient, not_supported_remark
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv


def create_topic(topic: str, **fields: object) -> RemotingCommand:
    values: dict[str, object] = {
        "topic": topic,
        "default_topic": "TBW102",
        "read_queue_nums": 4,
        "write_queue_nums": 4,
        "perm": 6,
        "topic_filter_type": "SINGLE_TAG",
        "topic_sys_flag": 0,
        "order": False,
    }
    values.update(fields)
    return RemotingCommand.request(
        RequestCode.UPDATE_AND_CREATE_TOPIC,
        CreateTopicRequestHeader(**values),  # type: ignore[arg-type]
    )


async def call(client: RemotingClient, addr: str, request: RemotingCommand) -> RemotingCommand:
    return await client.invoke_sync(addr, request, 5)


async def test_topics_are_created_registered_and_deleted(tmp_path: Path) -> None:
    with trio.fail_after(15):
        async with recording_namesrv(tmp_path / "ns") as ns:
            settings = broker_settings(tmp_path, [ns.addr])
            async with running_broker(settings) as broker, RemotingClient() as client:
                addr = broker.broker_addr
                before = ns.count(RequestCode.REGISTER_BROKER)
                response = await call(client, addr, create_topic("Orders", read_queue_nums=2))
                assert response.code == ResponseCode.SUCCESS and response.ext_fields is None
                topics = broker.topic_config_manager
                assert topics.select_topic_config("Orders") == TopicConfig("Orders", 2, 4, 6)

                # Registered at once with just that topic (registerIncrementBrokerData);
                # periodic rounds with every topic may come in between.
                def increments() -> list[TopicConfigSerializeWrapper]:
                    return [
                        body.topic_config_serialize_wrapper
                        for _, body in ns.registrations()[before:]
                        if list(body.topic_config_serialize_wrapper.topic_config_table)
                        == ["Orders"]
                    ]

                await ns.wait_for(lambda: bool(increments()))
                assert [w.data_version for w in increments()] == [topics.data_version]
                # The NameServer adds it to what it knew of the broker.
                assert ns.has_topic("Orders", "broker-a") and ns.has_topic("TBW102", "broker-a")
                assert ns.routes.queue_datas("Orders")[0].read_queue_nums == 2

                response = await call(
                    client,
                    addr,
                    RemotingCommand.request(RequestCode.GET_ALL_TOPIC_CONFIG),
                )
                assert response.code == ResponseCode.SUCCESS and response.ext_fields == {}
                table = TopicConfigSerializeWrapper.decode(response.body or b"")
                assert list(table.topic_config_table) == list(topics.topic_config_table)
                assert table.data_version == topics.data_version

                response = await call(
                    client,
                    addr,
                    RemotingCommand.request(
                        RequestCode.DELETE_TOPIC_IN_BROKER, DeleteTopicRequestHeader("Orders")
                    ),
                )
                assert response.code == ResponseCode.SUCCESS
                assert topics.select_topic_config("Orders") is None


async def test_topic_refusals_use_javas_remarks(tmp_path: Path) -> None:
    cases = {
        "DefaultCluster": "the topic[DefaultCluster] is conflict with system reserved words.",
        "TBW102": "The specified topic is conflict with AUTO_CREATE_TOPIC_KEY_TOPIC.",
        "a b": "The specified topic contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$",
    }
    with trio.fail_after(10):
        async with running_broker(broker_settings(tmp_path)) as broker, RemotingClient() as client:
            for topic, remark in cases.items():
                response = await call(client, broker.broker_addr, create_topic(topic))
                assert (response.code, response.remark) == (ResponseCode.SYSTEM_ERROR, remark)
            response = await call(
                client, broker.broker_addr, create_topic("T", topic_filter_type="REGEX")
            )
            assert response.code == ResponseCode.SYSTEM_ERROR and "REGEX" in (response.remark or "")
            missing = RemotingCommand(
                RequestCode.UPDATE_AND_CREATE_TOPIC, ext_fields={"topic": "T"}
            )
            response = await call(client, broker.broker_addr, missing)
            assert response.code == ResponseCode.SYSTEM_ERROR
            assert "defaultTopic" in (response.remark or "")
            assert "T" not in broker.topic_config_manager.topic_config_table
            assert "a b" not in broker.topic_config_manager.topic_config_table


async def test_unhandled_codes_are_not_supported_on_both_ports(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_broker(broker_settings(tmp_path)) as broker, RemotingClient() as client:
            assert broker.fast_listen_port is not None
            for port in (broker.listen_port, broker.fast_listen_port):
                addr = f"127.0.0.1:{port}"
                response = await call(client, addr, RemotingCommand.request(9999))
                assert response.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
                assert response.remark == not_supported_remark(9999)
                config = await call(
                    client, addr, RemotingCommand.request(RequestCode.GET_BROKER_CONFIG)
                )
                assert config.code == ResponseCode.SUCCESS


def update_config(body: str) -> RemotingCommand:
    return RemotingCommand.request(RequestCode.UPDATE_BROKER_CONFIG, body=body.encode())


async def test_update_broker_config_applies_safe_keys_only(tmp_path: Path) -> None:
    conf = tmp_path / "broker.conf"
    conf.write_text("# operator's file\nbrokerName=broker-a\nfileReservedTime=48\n")
    settings = broker_settings(tmp_path, config_file=conf, fileReservedTime="48")
    get_config = RemotingCommand.request(RequestCode.GET_BROKER_CONFIG)
    with trio.fail_after(10):
        async with running_broker(settings) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            first = await call(client, addr, get_config)
            version = first.decode_header(GetBrokerConfigResponseHeader).version
            assert DataVersion.decode(version.encode()).counter == 0

            response = await call(client, addr, update_config("fileReservedTime=12\n"))
            assert (response.code, response.remark, response.ext_fields) == (0, None, None)
            assert broker.settings.store.file_reserved_time == 12
            assert broker.store.config.file_reserved_time == 12
            assert (
                conf.read_text() == "# operator's file\nbrokerName=broker-a\nfileReservedTime=12\n"
            )
            second = await call(client, addr, get_config)
            version = second.decode_header(GetBrokerConfigResponseHeader).version
            assert DataVersion.decode(version.encode()).counter == 1
            listed = Properties.decode(second.body or b"").entries
            assert listed["fileReservedTime"] == "12"

            root = broker.settings.store.store_path_root_dir
            response = await call(
                client,
                addr,
                update_config("storePathRootDir=/tmp/evil\ndiskMaxUsedSpaceRatio=80\n"),
            )
            assert response.code == ResponseCode.SYSTEM_ERROR
            assert "storePathRootDir" in (response.remark or "")
            assert broker.settings.store.store_path_root_dir == root
            assert broker.settings.store.disk_max_used_space_ratio == 80  # the safe key applied
            assert "evil" not in conf.read_text()

            response = await call(client, addr, update_config("fileReservedTime=soon\n"))
            assert response.code == ResponseCode.SYSTEM_ERROR
            assert "fileReservedTime" in (response.remark or "")
            assert broker.settings.store.file_reserved_time == 12
            bad_escape = RemotingCommand.request(
                RequestCode.UPDATE_BROKER_CONFIG, body=b"a=\\uZZZZ\n"
            )
            response = await call(client, addr, bad_escape)
            assert (response.code, response.remark) == (
                ResponseCode.SYSTEM_ERROR,
                "string2Properties error",
            )
            empty = await call(
                client, addr, RemotingCommand.request(RequestCode.UPDATE_BROKER_CONFIG)
            )
            assert empty.code == ResponseCode.SUCCESS


async def test_broker_permission_change_registers_restated_topics(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with recording_namesrv(tmp_path / "ns") as ns:
            settings = broker_settings(tmp_path, [ns.addr])
            async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
                version = broker.topic_config_manager.data_version
                response = await call(
                    client, broker.broker_addr, update_config("brokerPermission=4\n")
                )
                assert response.code == ResponseCode.SUCCESS
                assert broker.topic_config_manager.data_version.counter == version.counter + 1
                _, body = ns.registrations()[-1]
                perms = {
                    c.perm for c in body.topic_config_serialize_wrapper.topic_config_table.values()
                }
                assert perms == {4}
                assert {q.perm for q in ns.routes.queue_datas("TBW102")} == {4}


async def test_runtime_info_and_topic_stats(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_broker(broker_settings(tmp_path)) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            await broker.topic_config_manager.update_topic_config(TopicConfig("Stats", 2, 2, 6))
            for queue_id in (0, 1, 1):
                result = await broker.put_message(
                    BrokerMessage(
                        "Stats",
                        queue_id,
                        b"hello",
                        born_host=HostPort.of("127.0.0.1", 40000),
                        store_host=HostPort.of("127.0.0.1", broker.listen_port),
                    )
                )
                assert result.is_ok
            response = await call(
                client, addr, RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO)
            )
            assert response.code == ResponseCode.SUCCESS and response.ext_fields is None
            table = KVTable.decode(response.body or b"").table
            assert table["putMessageTimesTotal"] == "3"
            assert table["msgPutTotalTodayNow"] == "3"
            assert table["brokerVersion"] == "353" and table["brokerVersionDesc"] == "V4_7_0"
            assert table["commitLogMaxOffset"] == str(broker.store.max_phy_offset)
            assert table["commitLogDirCapacity"].startswith("Total : ")
            assert table["earliestMessageTimeStamp"] == "-1"

            stats = await call(
                client,
                addr,
                RemotingCommand.request(
                    RequestCode.GET_TOPIC_STATS_INFO, GetTopicStatsInfoRequestHeader("Stats")
                ),
            )
            offsets = TopicStatsTable.decode(stats.body or b"").offset_table
            q0 = offsets[MessageQueue("Stats", "broker-a", 0)]
            q1 = offsets[MessageQueue("Stats", "broker-a", 1)]
            assert (q0.min_offset, q0.max_offset) == (0, 1)
            assert (q1.min_offset, q1.max_offset) == (0, 2)
            assert q1.last_update_timestamp >= q0.last_update_timestamp > 0

            missing = await call(
                client,
                addr,
                RemotingCommand.request(
                    RequestCode.GET_TOPIC_STATS_INFO, GetTopicStatsInfoRequestHeader("Nope")
                ),
            )
            assert (missing.code, missing.remark) == (
                ResponseCode.TOPIC_NOT_EXIST,
                "topic[Nope] not exist",
            )
