"""Broker liveness: the expiry scan on a fast clock, and brokers dropped at once
when their connection closes, fails or goes idle (over real sockets)."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from pyrocket.client.namesrv_api import BrokerIdentity, NameServerAPI
from pyrocket.errors import ResponseError
from pyrocket.namesrv.app import current_time_ms, expire_brokers
from pyrocket.namesrv.processor import NamesrvState
from pyrocket.namesrv.routeinfo import TopicQueueConfig, topic_queues
from pyrocket.protocol.bodies import DataVersion, TopicConfig
from pyrocket.protocol.codes import ResponseCode
from pyrocket.remoting import ClientConfig, Connection, RemotingClient
from tests.namesrv.helpers import address, namesrv_config, running_namesrv

BROKER = BrokerIdentity("DefaultCluster", "127.0.0.1:10911", "broker-a", 0, "127.0.0.1:10911")
TOPICS = [TopicConfig("LiveTopic", 4, 4)]


def _register(state: NamesrvState, conn: object, addr: str = "127.0.0.1:10911") -> None:
    state.routes.register_broker(
        "C",
        addr,
        "broker-" + addr[-1],
        0,
        addr,
        DataVersion(1, 1),
        topic_queues([TopicQueueConfig("T" + addr[-1])]),
        [],
        conn,
        state.clock(),
    )


def _fake_connection() -> Connection:
    stream, _ = trio.testing.memory_stream_pair()
    return Connection(stream, remote_address="127.0.0.1:50000")


async def test_scan_runs_after_5s_then_every_10s_and_expires_after_120s(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    state = NamesrvState(namesrv_config(tmp_path), clock=current_time_ms)
    conn = _fake_connection()
    _register(state, conn)  # heard of at t=0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(expire_brokers, state)
        # Scans at 5 s, 15 s, ..., 115 s, 125 s: the first one past 120 s drops it.
        await trio.sleep(124.9)
        assert "127.0.0.1:10911" in state.routes.live_brokers
        assert conn.is_open
        await trio.sleep(0.2)
        assert state.routes.live_brokers == {}
        assert state.routes.cluster_names() == {}
        assert state.routes.topic_names() == []
        assert not conn.is_open  # Java closes the expired broker's channel
        nursery.cancel_scope.cancel()


async def test_scan_timing_and_expiry_are_configurable(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    config = namesrv_config(
        tmp_path,
        scan_not_active_broker_delay_millis=1_000,
        scan_not_active_broker_interval_millis=2_000,
        broker_channel_expired_time_millis=3_000,
    )
    state = NamesrvState(config, clock=current_time_ms)
    _register(state, object(), "127.0.0.1:1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(expire_brokers, state)
        await trio.sleep(2.0)
        _register(state, object(), "127.0.0.1:2")  # heard of at t=2 s
        # Scans at 1, 3, 5, 7 s: broker 1 goes at 5 s (> 3 s old), broker 2 at 7 s.
        await trio.sleep(2.9)
        assert set(state.routes.live_brokers) == {"127.0.0.1:1", "127.0.0.1:2"}
        await trio.sleep(0.2)
        assert set(state.routes.live_brokers) == {"127.0.0.1:2"}
        assert state.routes.topic_names() == ["T2"]
        await trio.sleep(2.0)
        assert state.routes.live_brokers == {}
        nursery.cancel_scope.cancel()


async def test_a_broker_that_keeps_registering_never_expires(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    state = NamesrvState(namesrv_config(tmp_path), clock=current_time_ms)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(expire_brokers, state)
        for _ in range(20):  # 600 s of registrations every 30 s
            _register(state, object())
            await trio.sleep(30)
        assert "127.0.0.1:10911" in state.routes.live_brokers
        nursery.cancel_scope.cancel()


async def test_closing_the_brokers_connection_drops_it_at_once(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_namesrv(tmp_path) as server:
            addr = address(server)
            async with RemotingClient() as broker_client:
                await NameServerAPI(broker_client).register_broker(BROKER, TOPICS, addr=addr)
                assert "LiveTopic" in server.state.routes
                closed_before = server.housekeeping.closed.value
                broker_client.close_connection(addr)
                await server.housekeeping.closed.wait_value(lambda n: n > closed_before)
            routes = server.state.routes
            assert routes.live_brokers == {}
            assert routes.cluster_names() == {}
            assert "LiveTopic" not in routes
            async with RemotingClient() as client:
                try:
                    await NameServerAPI(client).get_route_info("LiveTopic", addr)
                except ResponseError as exc:
                    assert exc.code == ResponseCode.TOPIC_NOT_EXIST
                else:
                    raise AssertionError("the route outlived its broker's connection")


async def test_a_broker_whose_connection_goes_idle_is_dropped(tmp_path: Path) -> None:
    config = namesrv_config(tmp_path, server_channel_max_idle_time_seconds=1)
    with trio.fail_after(10):
        async with running_namesrv(config=config) as server:
            addr = address(server)
            # The client's own idle timer is off: only the server's one fires.
            async with RemotingClient(ClientConfig(channel_max_idle_seconds=0)) as client:
                await NameServerAPI(client).register_broker(BROKER, TOPICS, addr=addr)
                assert server.state.routes.live_brokers
                await server.housekeeping.closed.wait_value(lambda n: n >= 1)
                assert server.state.routes.live_brokers == {}
                assert "LiveTopic" not in server.state.routes


async def test_an_expired_broker_is_dropped_and_its_connection_closed(tmp_path: Path) -> None:
    config = namesrv_config(
        tmp_path,
        scan_not_active_broker_delay_millis=50,
        scan_not_active_broker_interval_millis=50,
        broker_channel_expired_time_millis=300,
    )
    with trio.fail_after(10):
        async with running_namesrv(config=config) as server:
            addr = address(server)
            async with RemotingClient() as client:
                await NameServerAPI(client).register_broker(BROKER, TOPICS, addr=addr)
                conn = client.connections[addr]
                await conn.wait_closed()  # the server closed it when the broker expired
                assert server.state.routes.live_brokers == {}
                assert "LiveTopic" not in server.state.routes
