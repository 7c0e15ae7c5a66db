"""The broker app: start-up, restart with its topics, refusal of a damaged
topics.json, shutdown order, and the extension points of the message path."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.broker.app import Broker, serve_broker
from pyrocket.broker.store import BrokerMessage
from pyrocket.broker.topic_config import topics_json_path
from pyrocket.errors import ConfigError
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import CreateTopicRequestHeader
from pyrocket.protocol.message import HostPort
from pyrocket.remoting import Connection, ConnectionListener, RemotingClient
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv


async def test_topics_survive_a_restart(tmp_path: Path) -> None:
    request = RemotingCommand.request(
        RequestCode.UPDATE_AND_CREATE_TOPIC,
        CreateTopicRequestHeader("Kept", "TBW102", 3, 5, 6, "SINGLE_TAG", 0, False),
    )
    with trio.fail_after(15):
        async with running_broker(broker_settings(tmp_path)) as broker, RemotingClient() as client:
            response = await client.invoke_sync(broker.broker_addr, request, 5)
            assert response.code == ResponseCode.SUCCESS
            version = broker.topic_config_manager.data_version
        async with running_broker(broker_settings(tmp_path)) as broker:
            topics = broker.topic_config_manager
            assert topics.select_topic_config("Kept") == TopicConfig("Kept", 3, 5, 6)
            assert topics.data_version == version
            assert broker.store.last_exit_ok is True


async def test_a_damaged_topics_json_stops_the_broker_and_is_left_alone(tmp_path: Path) -> None:
    settings = broker_settings(tmp_path)
    path = topics_json_path(settings.store.store_path_root_dir)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"topicConfigTable":{"A":{')
    expected = pytest.RaisesGroup(
        pytest.RaisesExc(ConfigError, match=r"topics\.json"), flatten_subgroups=True
    )
    with trio.fail_after(10), expected:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_broker, settings)
    assert path.read_bytes() == b'{"topicConfigTable":{"A":{'


async def test_shutdown_unregisters_while_still_answering(tmp_path: Path) -> None:
    broker_addr = ""
    answers: list[int] = []

    async def probe_broker(request: RemotingCommand) -> None:
        # Ahead of the NameServer's handling of UNREGISTER_BROKER.
        response = await probe.invoke_sync(
            broker_addr, RemotingCommand.request(RequestCode.GET_BROKER_CONFIG), 5
        )
        answers.append(response.code)

    probing = {RequestCode.UNREGISTER_BROKER: probe_broker}
    with trio.fail_after(15):
        async with (
            RemotingClient() as probe,
            recording_namesrv(tmp_path / "ns", before=probing) as ns,
        ):
            settings = broker_settings(tmp_path, [ns.addr])
            async with running_broker(settings) as broker:
                broker_addr = broker.broker_addr
                assert ns.is_live(broker_addr)
            assert answers == [ResponseCode.SUCCESS]
            assert ns.unregistered == [broker_addr]
            assert not ns.is_live(broker_addr)
            with pytest.raises(OSError):
                await trio.open_tcp_stream("127.0.0.1", broker.listen_port)


async def test_transaction_topic_appears_after_the_check_interval(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with recording_namesrv(tmp_path / "ns") as ns:
            settings = broker_settings(tmp_path, [ns.addr], transactionCheckInterval="100")
            async with running_broker(settings, timing=None) as broker:
                topics = broker.topic_config_manager
                assert "RMQ_SYS_TRANS_HALF_TOPIC" not in topics.topic_config_table
                assert not ns.has_topic("RMQ_SYS_TRANS_HALF_TOPIC", "broker-a")
                await ns.wait_for(lambda: ns.has_topic("RMQ_SYS_TRANS_HALF_TOPIC", "broker-a"))
                assert topics.select_topic_config("RMQ_SYS_TRANS_HALF_TOPIC") == TopicConfig(
                    "RMQ_SYS_TRANS_HALF_TOPIC", 1, 1, 6
                )
                assert ns.requests[-1].is_oneway


async def test_extension_points(tmp_path: Path) -> None:
    events: list[str] = []
    service_ran = trio.Event()

    class Listener(ConnectionListener):
        async def on_connect(self, conn: Connection) -> None:
            events.append("connect")

        async def on_close(self, conn: Connection) -> None:
            events.append("close")

    async def ping(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        return RemotingCommand.response(ResponseCode.SUCCESS, "pong")

    async def service(broker: Broker) -> None:
        service_ran.set()
        await trio.sleep_forever()

    def install(broker: Broker) -> None:
        broker.register_processor(9000, ping)
        broker.register_processor(9001, ping, fast=False)
        broker.add_connection_listener(Listener())
        broker.add_service(service)

    with trio.fail_after(10):
        async with running_broker(broker_settings(tmp_path), install=[install]) as broker:
            await service_ran.wait()
            assert broker.fast_listen_port is not None
            fast = f"127.0.0.1:{broker.fast_listen_port}"
            async with RemotingClient() as client:
                main = await client.invoke_sync(
                    broker.broker_addr, RemotingCommand.request(9000), 5
                )
                assert main.remark == "pong"
                on_fast = await client.invoke_sync(fast, RemotingCommand.request(9000), 5)
                assert on_fast.remark == "pong"
                main_only = await client.invoke_sync(fast, RemotingCommand.request(9001), 5)
                assert main_only.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
            while events.count("close") < 2:  # noqa: ASYNC110
                await trio.sleep(0.01)
            assert events.count("connect") == 2

            # The store calls with statistics.
            message = BrokerMessage(
                "TBW102",
                0,
                b"x",
                born_host=HostPort.of("127.0.0.1", 1),
                store_host=HostPort.of("127.0.0.1", broker.listen_port),
            )
            assert (await broker.put_message(message)).is_ok
            got = await broker.get_message("g", "TBW102", 0, 0, 32)
            assert got is not None and got.message_count == 1
            info = broker.stats.runtime_info()
            assert info["putMessageTimesTotal"] == "1"
            assert broker.stats.get_times_found == 1
            assert broker.stats.broker_stats()["msgGetTotalTodayNow"] == "1"
