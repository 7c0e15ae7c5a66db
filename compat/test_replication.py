"""Replication between Java 4.7.0 and pyrocket brokers, both ways: a Java
master with a pyrocket slave, and a pyrocket master with a Java slave, as
ASYNC_MASTER and SYNC_MASTER. After sends to the master (1 KiB and 150 KiB
bodies) the slave's commit log holds the master's bytes at the same offsets,
and SYNC_MASTER sends are acknowledged (the Java slave's reports, or the
pyrocket slave's, reach the master).

The Java brokers start in worker threads; the pyrocket broker runs in the
test's trio loop. No NameServer is needed: the slave is told its master's
HA address (``haMasterAddress``). The last test adds a Java NameServer,
from which a pyrocket slave learns its Java master and copies its tables.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import trio

from compat.java_cluster import JavaCluster, free_port
from pyrocket.broker.slave_sync import SlaveSyncTiming
from pyrocket.client.broker_api import BrokerAPI
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
    answer = await client.invoke_sync(
        addr, RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO), 5
    )
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
