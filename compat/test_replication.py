"""Replication between Java 4.7.0 and pyrocket brokers, both ways: a Java
master with a pyrocket slave, and a pyrocket master with a Java slave, as
ASYNC_MASTER and SYNC_MASTER. After sends to the master (1 KiB and 150 KiB
bodies) the slave's commit log holds the master's bytes at the same offsets,
and SYNC_MASTER sends are acknowledged (the Java slave's reports, or the
pyrocket slave's, reach the master).

The Java brokers start in worker threads; the pyrocket broker runs in the
test's trio loop. No NameServer is needed: the slave is told its master's
HA address (``haMasterAddress``). The later tests add a Java NameServer,
from which a pyrocket slave learns its Java master and copies its tables;
and, once the master is stopped, Java's push and pull consumers
(``compat/java/DataplaneClient.java``) still get every message a Java
producer sent, from the slave alone: a pyrocket slave of a Java master, a
Java slave of a pyrocket master, a pyrocket slave of a pyrocket master.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import trio

from compat.java_cluster import JavaCluster, _java_major, free_port
from compat.test_broker_control import TIMING
from compat.test_broker_dataplane import COUNT as JAVA_COUNT
from compat.test_broker_dataplane import TOPIC as JAVA_TOPIC
from compat.test_broker_dataplane import check_received, run_client
from pyrocket.broker.app import Broker
from pyrocket.broker.slave_sync import SlaveSyncTiming
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.namesrv_api import NameServerAPI
from pyrocket.protocol.bodies import KVTable, SubscriptionGroupConfig, TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, running_broker, send_request
from tests.remoting.helpers import wait_until

TOPIC = "HaCompatTopic"
#: Enough sends (every tenth 150 KiB) to roll the first commit-log file.
COUNT = 100
FILE_SIZE = 1024 * 1024
#: An address where no NameServer listens: registration fails, nothing else.
NO_NAMESRV = "127.0.0.1:1"
PYROCKET: dict[str, Any] = {
    "mappedFileSizeCommitLog": FILE_SIZE,
    "maxMessageSize": 4 * 1024 * 1024,
    "haSendHeartbeatInterval": 1000,
}
JAVA = {"mappedFileSizeCommitLog": str(FILE_SIZE)}


async def java_max_offset(client: RemotingClient, addr: str) -> int:
    # A Java 4.7.0 store answers GET_BROKER_RUNTIME_INFO with a
    # NoSuchElementException until its statistics have taken their first
    # sample, a second after it started: asked sooner, ask again.
    with trio.fail_after(10):
        while True:
            answer = await client.invoke_sync(
                addr, RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO), 5
            )
            if answer.code == ResponseCode.SUCCESS or "NoSuchElementException" not in (
                answer.remark or ""
            ):
                break
            await trio.sleep(0.2)
    assert answer.code == ResponseCode.SUCCESS, answer.remark
    return int(KVTable.decode(answer.body or b"").table["commitLogMaxOffset"])


async def send_all(client: RemotingClient, addr: str, count: int, seed: int) -> None:
    rng = random.Random(seed)
    for n in range(count):
        size = 150 * 1024 if n % 10 == 0 else 1024
        answer = await client.invoke_sync(addr, send_request(TOPIC, n % 4, rng.randbytes(size)), 10)
        assert answer.code == ResponseCode.SUCCESS, (answer.code, answer.remark)


def java_commit_log(root: Path, end: int) -> bytes:
    """A Java store's commit-log bytes from 0 to ``end`` (read from its files)."""
    data = b""
    base = 0
    while base < end:
        with open(root / "commitlog" / f"{base:020d}", "rb") as file:
            data += file.read(min(FILE_SIZE, end - base))
        base += FILE_SIZE
    return data


@pytest.mark.parametrize("role", ["ASYNC_MASTER", "SYNC_MASTER"])
async def test_pyrocket_slave_replicates_a_java_master(
    java: JavaCluster, tmp_path: Path, role: str
) -> None:
    port = free_port(span=2)
    await trio.to_thread.run_sync(
        lambda: java.start_broker("broker-a", port, NO_NAMESRV, {**JAVA, "brokerRole": role})
    )
    java_root = java.workdir / f"store-broker-a-{port}"
    java_addr = f"127.0.0.1:{port}"
    settings = broker_settings(
        tmp_path / "slave",
        brokerId=1,
        brokerRole="SLAVE",
        haMasterAddress=f"127.0.0.1:{port + 1}",
        **PYROCKET,
    )
    with trio.fail_after(180):
        async with running_broker(settings, timing=None) as slave, RemotingClient() as client:
            assert slave.ha_client is not None
            await slave.ha_client.connected_to.wait_value(lambda addr: addr is not None)
            if role == "SYNC_MASTER":
                # The Java master counts the slave once it has reported.
                await trio.sleep(1.5)
            await send_all(client, java_addr, COUNT, seed=1)
            end = await java_max_offset(client, java_addr)
            assert end > FILE_SIZE
            await wait_until(lambda: slave.store.max_phy_offset >= end)
            assert slave.store.max_phy_offset == end
            mine = await slave.store.read_commit_log_data(0, FILE_SIZE)
            theirs = await trio.to_thread.run_sync(java_commit_log, java_root, end)
            assert mine is not None
            data = mine
            while len(data) < end:
                more = await slave.store.read_commit_log_data(len(data), FILE_SIZE)
                assert more is not None
                data += more
            assert data == theirs
            assert sum(slave.store.get_max_offset_in_queue(TOPIC, q) for q in range(4)) == COUNT


@pytest.mark.parametrize("role", ["ASYNC_MASTER", "SYNC_MASTER"])
async def test_java_slave_replicates_a_pyrocket_master(
    java: JavaCluster, tmp_path: Path, role: str
) -> None:
    settings = broker_settings(tmp_path / "master", brokerRole=role, **PYROCKET)
    with trio.fail_after(180):
        async with running_broker(settings, timing=None) as master, RemotingClient() as client:
            ha = master.settings.store.ha_listen_port
            port = free_port(span=2)
            await trio.to_thread.run_sync(
                lambda: java.start_broker(
                    "broker-a",
                    port,
                    NO_NAMESRV,
                    {
                        **JAVA,
                        "brokerRole": "SLAVE",
                        "brokerId": "1",
                        "haMasterAddress": f"127.0.0.1:{ha}",
                    },
                )
            )
            java_root = java.workdir / f"store-broker-a-{port}"
            java_addr = f"127.0.0.1:{port}"
            # A Java slave reports first haSendHeartbeatInterval (5 s) after
            # connecting; had the master rolled a file by then, it would start
            # the slave at its last file (as Java does).
            await wait_until(
                lambda: any(
                    c.slave_request_offset is not None for c in master.ha_service.connections
                )
            )
            await send_all(client, master.broker_addr, COUNT, seed=2)
            end = master.store.max_phy_offset
            assert end > FILE_SIZE
            for _ in range(300):
                if await java_max_offset(client, java_addr) >= end:
                    break
                await trio.sleep(0.1)
            assert await java_max_offset(client, java_addr) == end
            ours = b""
            while len(ours) < end:
                more = await master.store.read_commit_log_data(len(ours), FILE_SIZE)
                assert more is not None
                ours += more
            theirs = await trio.to_thread.run_sync(java_commit_log, java_root, end)
            assert theirs == ours


async def test_pyrocket_slave_copies_a_java_masters_tables(
    java: JavaCluster, tmp_path: Path
) -> None:
    """With a NameServer, the pyrocket slave learns the Java master's
    address from its registration and copies its topic table (with its data
    version), its subscription groups and its delay offsets
    (SlaveSynchronize), besides replicating the commit log."""
    ns_port = free_port()
    await trio.to_thread.run_sync(lambda: java.start_namesrv(ns_port))
    namesrv = f"127.0.0.1:{ns_port}"
    port = free_port(span=2)
    await trio.to_thread.run_sync(lambda: java.start_broker("broker-a", port, namesrv, JAVA))
    java_addr = f"127.0.0.1:{port}"
    settings = broker_settings(
        tmp_path / "slave", [namesrv], brokerId=1, brokerRole="SLAVE", **PYROCKET
    )
    with trio.fail_after(120):
        async with RemotingClient() as client:
            admin = BrokerAPI(client)
            await admin.create_topic(
                java_addr,
                TopicConfig(topic_name="FromJavaMaster", read_queue_nums=3, write_queue_nums=3),
            )
            await admin.create_subscription_group(
                java_addr, SubscriptionGroupConfig("JavaMasterGroup", retry_max_times=7)
            )
            async with running_broker(
                settings, timing=None, slave_sync=SlaveSyncTiming(0.1, 0.5)
            ) as slave:
                assert slave.registration.master_addr.value == java_addr
                await wait_until(
                    lambda: (
                        slave.topic_config_manager.select_topic_config("FromJavaMaster") is not None
                    )
                )
                java_topics = await admin.get_all_topic_config(java_addr)
                assert slave.topic_config_manager.data_version == java_topics.data_version
                assert set(slave.topic_config_manager.topic_config_table) == set(
                    java_topics.topic_config_table
                )
                topic = slave.topic_config_manager.select_topic_config("FromJavaMaster")
                assert topic is not None and topic.read_queue_nums == 3
                await wait_until(
                    lambda: (
                        "JavaMasterGroup"
                        in slave.subscription_group_manager.subscription_group_table
                    )
                )
                group = slave.subscription_group_manager.subscription_group_table["JavaMasterGroup"]
                assert group.retry_max_times == 7
                rounds = slave.slave_sync.rounds
                await wait_until(lambda: slave.slave_sync.rounds > rounds)
                assert slave.store.schedule.path.is_file()
                # The HA address came from the registration too.
                assert slave.ha_client is not None
                await slave.ha_client.connected_to.wait_value(lambda addr: addr is not None)


# -- Java consumers on the slave once the master is gone --------------------


async def java_produce(java: JavaCluster, namesrv: str) -> None:
    """DataplaneClient's producer: JAVA_COUNT messages (sync, async, oneway,
    orderly) to JAVA_TOPIC, created from TBW102 on the master."""
    report = await run_client(java, "produce", namesrv, JAVA_TOPIC, str(JAVA_COUNT), seconds=120)
    quarter = JAVA_COUNT // 4
    assert report == [
        {
            "sync_ok": quarter,
            "async_ok": quarter,
            "oneway_ok": quarter,
            "orderly_ok": quarter,
            "async_failed": 0,
            "failures": [],
        }
    ]


async def routed_to_slave_only(client: RemotingClient, namesrv: str) -> None:
    """Until the NameServer routes JAVA_TOPIC to broker id 1 alone (the
    master unregistered), its queues still listed."""
    api = NameServerAPI(client)
    while True:
        route = await api.get_route_info(JAVA_TOPIC, namesrv)
        addrs = [dict(data.broker_addrs or {}) for data in route.broker_datas or ()]
        if route.queue_datas and len(addrs) == 1 and set(addrs[0]) == {1}:
            return
        await trio.sleep(0.2)


async def java_consumers_get_everything(java: JavaCluster, namesrv: str, pull: bool) -> None:
    pushed = await run_client(
        java, "push", namesrv, JAVA_TOPIC, "compat_slave_push", str(JAVA_COUNT), "90", seconds=150
    )
    check_received(pushed, "push consumer on the slave")
    if pull:
        pulled = await run_client(
            java, "pull", namesrv, JAVA_TOPIC, "compat_slave_pull", seconds=120
        )
        check_received(pulled, "pull consumer on the slave")


def stored(broker: Broker, topic: str) -> int:
    return sum(
        broker.store.get_max_offset_in_queue(topic, q) for q in broker.store.queue_ids(topic)
    )


def needs_source_mode() -> None:
    if _java_major() < 11:
        pytest.skip("running DataplaneClient.java from source needs Java 11 or newer")


async def test_java_consumers_read_a_pyrocket_slave_after_the_java_master_stops(
    java: JavaCluster, tmp_path: Path
) -> None:
    needs_source_mode()
    ns_port = free_port()
    await trio.to_thread.run_sync(lambda: java.start_namesrv(ns_port))
    namesrv = f"127.0.0.1:{ns_port}"
    port = free_port(span=2)
    java_master = await trio.to_thread.run_sync(
        lambda: java.start_broker("broker-a", port, namesrv, JAVA)
    )
    java_addr = f"127.0.0.1:{port}"
    settings = broker_settings(
        tmp_path / "slave", [namesrv], brokerId=1, brokerRole="SLAVE", **PYROCKET
    )
    with trio.fail_after(600):
        async with (
            running_broker(settings, timing=TIMING, slave_sync=SlaveSyncTiming(0.1, 0.5)) as slave,
            RemotingClient() as client,
        ):
            assert slave.ha_client is not None
            await slave.ha_client.connected_to.wait_value(lambda addr: addr is not None)
            await java_produce(java, namesrv)
            end = await java_max_offset(client, java_addr)
            await wait_until(lambda: slave.store.max_phy_offset >= end)
            await wait_until(lambda: stored(slave, JAVA_TOPIC) == JAVA_COUNT)
            # The topic came over with SlaveSynchronize (pulls need it).
            await wait_until(
                lambda: slave.topic_config_manager.select_topic_config(JAVA_TOPIC) is not None
            )
            await trio.to_thread.run_sync(java_master.stop)
            with trio.fail_after(60):
                await routed_to_slave_only(client, namesrv)
            await java_consumers_get_everything(java, namesrv, pull=True)


async def test_java_consumers_read_a_java_slave_after_the_pyrocket_master_stops(
    java: JavaCluster, tmp_path: Path
) -> None:
    needs_source_mode()
    ns_port = free_port()
    await trio.to_thread.run_sync(lambda: java.start_namesrv(ns_port))
    namesrv = f"127.0.0.1:{ns_port}"
    # A Java slave copies its master's tables over the VIP channel
    # (listenPort - 2), which a broker on port 0 would not have.
    master_port = free_port(span=2)
    settings = broker_settings(tmp_path / "master", [namesrv], listenPort=master_port, **PYROCKET)
    port = free_port(span=2)
    while abs(port - master_port) < 4:
        port = free_port(span=2)
    java_addr = f"127.0.0.1:{port}"
    with trio.fail_after(600):
        async with RemotingClient() as client:
            async with running_broker(settings, timing=TIMING) as master:
                # Sent before the Java slave starts: its first SlaveSynchronize
                # round (10 s after start; the next a minute later) copies the
                # topic, and the commit log fits in the master's first file,
                # where a new slave starts.
                await java_produce(java, namesrv)
                await wait_until(lambda: stored(master, JAVA_TOPIC) == JAVA_COUNT)
                end = master.store.max_phy_offset
                assert end < FILE_SIZE
                await trio.to_thread.run_sync(
                    lambda: java.start_broker(
                        "broker-a", port, namesrv, {**JAVA, "brokerRole": "SLAVE", "brokerId": "1"}
                    )
                )
                admin = BrokerAPI(client)
                with trio.fail_after(60):
                    while True:
                        topics = (await admin.get_all_topic_config(java_addr)).topic_config_table
                        if JAVA_TOPIC in topics and await java_max_offset(client, java_addr) >= end:
                            break
                        await trio.sleep(0.5)
            with trio.fail_after(60):
                await routed_to_slave_only(client, namesrv)
            await java_consumers_get_everything(java, namesrv, pull=False)


@pytest.mark.parametrize("role", ["ASYNC_MASTER", "SYNC_MASTER"])
async def test_java_consumers_read_a_pyrocket_slave_after_the_pyrocket_master_stops(
    java: JavaCluster, tmp_path: Path, role: str
) -> None:
    needs_source_mode()
    ns_port = free_port()
    await trio.to_thread.run_sync(lambda: java.start_namesrv(ns_port))
    namesrv = f"127.0.0.1:{ns_port}"
    master_settings = broker_settings(tmp_path / "master", [namesrv], brokerRole=role, **PYROCKET)
    slave_settings = broker_settings(
        tmp_path / "slave", [namesrv], brokerId=1, brokerRole="SLAVE", **PYROCKET
    )
    with trio.fail_after(600):
        async with (
            running_broker(
                slave_settings, timing=TIMING, slave_sync=SlaveSyncTiming(0.1, 0.5)
            ) as slave,
            RemotingClient() as client,
        ):
            async with running_broker(master_settings, timing=TIMING) as master:
                assert slave.ha_client is not None
                await slave.ha_client.connected_to.wait_value(lambda addr: addr is not None)
                if role == "SYNC_MASTER":
                    # SYNC_MASTER sends are acknowledged once the slave reported.
                    await wait_until(
                        lambda: any(
                            c.slave_request_offset is not None
                            for c in master.ha_service.connections
                        )
                    )
                await java_produce(java, namesrv)
                await wait_until(lambda: stored(master, JAVA_TOPIC) == JAVA_COUNT)
                await wait_until(lambda: slave.store.max_phy_offset == master.store.max_phy_offset)
                await wait_until(
                    lambda: slave.topic_config_manager.select_topic_config(JAVA_TOPIC) is not None
                )
            with trio.fail_after(60):
                await routed_to_slave_only(client, namesrv)
            await java_consumers_get_everything(java, namesrv, pull=True)
