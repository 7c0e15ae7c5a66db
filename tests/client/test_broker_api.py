"""BrokerAPI over real sockets, against a running pyrocket broker."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.client.broker_api import BrokerAPI
from pyrocket.errors import ResponseError
from pyrocket.protocol.bodies.admin import GroupList
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import QueryTopicConsumeByWhoRequestHeader
from pyrocket.remoting import Connection, RemotingClient, RemotingServer
from tests.broker.helpers import broker_settings, running_broker
from tests.remoting.helpers import running_server


async def test_every_call_against_a_broker(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_broker(broker_settings(tmp_path)) as broker, RemotingClient() as client:
            api = BrokerAPI(client)
            addr = broker.broker_addr
            await api.create_topic(addr, TopicConfig("ApiTopic", 2, 3, 6))
            table = await api.get_all_topic_config(addr)
            assert table.topic_config_table["ApiTopic"] == TopicConfig("ApiTopic", 2, 3, 6)

            stats = await api.get_topic_stats_info(addr, "ApiTopic")
            assert list(stats.offset_table) == [
                MessageQueue("ApiTopic", "broker-a", i) for i in (0, 1, 2)
            ]
            with pytest.raises(ResponseError) as failure:
                await api.get_topic_stats_info(addr, "Missing")
            assert failure.value.code == ResponseCode.TOPIC_NOT_EXIST

            config, version = await api.get_broker_config(addr)
            assert config["brokerName"] == "broker-a" and version is not None
            await api.update_broker_config(addr, {"fileReservedTime": "24"})
            config, newer = await api.get_broker_config(addr)
            assert config["fileReservedTime"] == "24"
            assert newer is not None and newer.counter == version.counter + 1
            with pytest.raises(ResponseError, match="storePathRootDir"):
                await api.update_broker_config(addr, {"storePathRootDir": "/"})

            info = await api.get_broker_runtime_info(addr)
            assert info["brokerVersionDesc"] == "V4_7_0"

            await api.delete_topic_in_broker(addr, "ApiTopic")
            table = await api.get_all_topic_config(addr)
            assert "ApiTopic" not in table.topic_config_table
            with pytest.raises(ValueError, match="name"):
                await api.create_topic(addr, TopicConfig(None))


async def test_consumer_groups_of_a_topic() -> None:
    # The pyrocket broker has no consumers yet: a server answering as a Java
    # broker does (GroupList body) stands in for one.
    asked: list[str] = []

    def consume_by_who(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        asked.append(request.decode_header(QueryTopicConsumeByWhoRequestHeader).topic)
        body = GroupList(("GroupA", "GroupB")).encode()
        return RemotingCommand.response(ResponseCode.SUCCESS, body=body)

    server = RemotingServer()
    server.register_processor(RequestCode.QUERY_TOPIC_CONSUME_BY_WHO, consume_by_who)
    with trio.fail_after(10):
        async with running_server(server) as addr, RemotingClient() as client:
            groups = await BrokerAPI(client).query_topic_consume_by_who(addr, "Orders")
    assert groups == ["GroupA", "GroupB"] and asked == ["Orders"]
