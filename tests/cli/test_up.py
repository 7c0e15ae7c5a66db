"""``pyrocket up``: a NameServer and a broker on loopback sharing one data
directory, in-process and as the command a new user runs."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import trio

from pyrocket.cli.up import Running, UpOptions, serve_up
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.namesrv_api import NameServerAPI
from pyrocket.protocol.bodies import TopicConfig
from pyrocket.protocol.codes import ResponseCode
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import send_request
from tests.client.helpers import running_up
from tests.remoting.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


async def test_the_broker_is_routed_through_the_namesrv(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running, RemotingClient() as client:
            namesrv = NameServerAPI(client)
            broker_addr = running.broker.broker_addr
            assert broker_addr.startswith("127.0.0.1:")

            cluster = await namesrv.get_cluster_info(running.namesrv_addr)
            assert cluster.cluster_addr_table == {"DefaultCluster": ("broker-a",)}
            assert cluster.broker_addr_table["broker-a"].broker_addrs == {0: broker_addr}

            # Auto-create is on: TBW102 is routed, so clients can send anywhere.
            route = await namesrv.get_route_info("TBW102", running.namesrv_addr)
            assert [b.broker_addrs for b in route.broker_datas] == [{0: broker_addr}]

            await BrokerAPI(client).create_topic(
                broker_addr,
                TopicConfig(topic_name="UpTopic", read_queue_nums=2, write_queue_nums=2),
            )
            with trio.fail_after(10):
                while True:
                    topics = await namesrv.get_all_topic_list(running.namesrv_addr)
                    if "UpTopic" in topics.topic_list:
                        break
                    await trio.sleep(0.05)
            route = await namesrv.get_route_info("UpTopic", running.namesrv_addr)
            assert [(q.broker_name, q.write_queue_nums) for q in route.queue_datas] == [
                ("broker-a", 2)
            ]


async def test_a_second_run_keeps_topics_and_kv_config(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running, RemotingClient() as client:
            namesrv = NameServerAPI(client)
            await namesrv.put_kv_config(
                "ORDER_TOPIC_CONFIG", "Kept", "broker-a:4", running.namesrv_addr
            )
            await BrokerAPI(client).create_topic(
                running.broker.broker_addr, TopicConfig(topic_name="Kept")
            )
        assert (tmp_path / "data" / "namesrv" / "kvConfig.json").is_file()
        assert (tmp_path / "data" / "broker" / "config" / "topics.json").is_file()

        async with running_up(tmp_path) as running, RemotingClient() as client:
            namesrv = NameServerAPI(client)
            value = await namesrv.get_kv_config("ORDER_TOPIC_CONFIG", "Kept", running.namesrv_addr)
            assert value == "broker-a:4"
            route = await namesrv.get_route_info("Kept", running.namesrv_addr)
            assert [q.broker_name for q in route.queue_datas] == ["broker-a"]


async def test_shutdown_unregisters_before_the_namesrv_stops(tmp_path: Path) -> None:
    """Cancelling ``up`` stops the broker first; it unregisters from the
    NameServer that is still running, so the last state it saw is empty."""
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            routes = running.namesrv.state.routes
            broker_addr = running.broker.broker_addr
            assert broker_addr in routes.live_brokers
        assert broker_addr not in routes.live_brokers
        assert "broker-a" not in routes.broker_names()


def _up(*args: str) -> list[str]:
    """The ``pyrocket up`` command line with ``args``."""
    return [sys.executable, "-m", "pyrocket", "up", *args]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_command_starts_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process = subprocess.Popen(
        _up("--dir", str(data), "--namesrv-port", "0", "--broker-port", "0"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.match(
            r"pyrocket is up: NameServer 127\.0\.0\.1:(\d+), broker broker-a 127\.0\.0\.1:(\d+) ",
            line,
        )
        assert match, line
        for port in match.groups():
            with socket.create_connection(("127.0.0.1", int(port)), timeout=5):
                pass
        # The second line gives the /metrics URLs, which answer.
        metrics = process.stdout.readline()
        urls = re.fullmatch(
            r"Metrics: broker (http://127\.0\.0\.1:\d+/metrics), "
            r"NameServer (http://127\.0\.0\.1:\d+/metrics)\n",
            metrics,
        )
        assert urls, metrics
        for url, family in zip(
            urls.groups(), ("rocketmq_broker_tps", "pyrocket_namesrv_brokers_alive"), strict=True
        ):
            with urllib.request.urlopen(url, timeout=5) as answer:
                text = answer.read().decode()
            assert f"# TYPE {family} gauge" in text
        process.send_signal(signal.SIGINT)
        assert process.wait(15) == 0
        assert (data / "broker" / "checkpoint").is_file()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    "taken_flag",
    ["--namesrv-port", "--broker-port", "--metrics-port", "--namesrv-metrics-port"],
)
def test_a_port_in_use_is_reported(tmp_path: Path, taken_flag: str) -> None:
    """Either server (or its /metrics) failing to bind ends the whole
    command (the NameServer, which outlives the broker on purpose, included)
    with the reason."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        flags = ["--namesrv-port", "--broker-port", "--metrics-port", "--namesrv-metrics-port"]
        ports = {flag: str(_free_port()) for flag in flags}
        ports[taken_flag] = str(taken.getsockname()[1])
        result = subprocess.run(
            _up("--dir", str(tmp_path), *(item for pair in ports.items() for item in pair)),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("pyrocket up: ")
    assert "address already in use" in result.stderr.lower()


@pytest.mark.parametrize("flag", ["--namesrv-port", "--broker-port"])
def test_bad_port_is_a_usage_error(flag: str) -> None:
    result = subprocess.run(
        _up(flag, "nine"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "invalid int value" in result.stderr


async def test_up_with_a_slave_replicates_and_routes_both(tmp_path: Path) -> None:
    options = UpOptions(data_dir=tmp_path / "data", namesrv_port=0, broker_port=0, slave=True)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            running: Running = await nursery.start(serve_up, options)
            master, slave = running.broker, running.slave
            assert slave is not None and slave.is_slave
            assert slave.settings.broker.broker_name == master.settings.broker.broker_name
            assert slave.settings.broker.broker_id == 1
            assert Path(slave.settings.store.store_path_root_dir).name == "broker-slave"
            async with RemotingClient() as client:
                cluster = await NameServerAPI(client).get_cluster_info(running.namesrv_addr)
                assert cluster.broker_addr_table["broker-a"].broker_addrs == {
                    0: master.broker_addr,
                    1: slave.broker_addr,
                }
                # Auto-create is on: a send to a new topic is stored.
                request = send_request("UpSlaveTopic", 0, b"replicated")
                answer = await client.invoke_sync(master.broker_addr, request, 10)
                assert answer.code == ResponseCode.SUCCESS, answer.remark
            # The slave follows the master's commit log (the HA address
            # learned from the NameServer).
            assert master.store.max_phy_offset > 0
            await wait_until(lambda: slave.store.max_phy_offset == master.store.max_phy_offset)
            nursery.cancel_scope.cancel()


def test_the_command_with_slave_lists_both_in_cluster_list(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process = subprocess.Popen(
        _up(
            "--dir",
            str(data),
            "--namesrv-port",
            "0",
            "--broker-port",
            "0",
            "--metrics-port",
            "-1",
            "--namesrv-metrics-port",
            "-1",
            "--slave",
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.match(
            r"pyrocket is up: NameServer (127\.0\.0\.1:\d+), broker broker-a (127\.0\.0\.1:\d+) "
            r"with slave (127\.0\.0\.1:\d+) in cluster DefaultCluster",
            line,
        )
        assert match, line
        namesrv, master, slave = match.groups()
        listed = subprocess.run(
            [sys.executable, "-m", "pyrocket", "admin", "clusterList", "-n", namesrv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert listed.returncode == 0, listed.stderr
        rows = [row.split()[:4] for row in listed.stdout.splitlines()[1:]]
        assert rows == [
            ["DefaultCluster", "broker-a", "0", master],
            ["DefaultCluster", "broker-a", "1", slave],
        ]
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
        assert (data / "broker-slave" / "checkpoint").is_file()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
