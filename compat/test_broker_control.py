"""A pyrocket broker in a Java cluster: it registers with real Java
NameServers, Java's mqadmin manages it, and shutdown unregisters it.

The pyrocket broker runs in this test's trio loop; every Java call (a
NameServer start, an mqadmin command) runs in a worker thread so that the
broker keeps answering meanwhile.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from compat.java_cluster import JavaCluster, JavaProcess, free_port
from pyrocket.broker.app import Broker, serve_broker
from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.registration import RegistrationTiming
from pyrocket.client import PushConsumer
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    HeartbeatData,
    MessageModel,
    ProducerData,
    SubscriptionData,
)
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.remoting import RemotingClient
from tests.client.helpers import wait_assigned

#: Short rounds so that a stopped and restarted NameServer shows quickly.
TIMING = RegistrationTiming(first_delay=1.0, period=1.0)


def settings(tmp_path: Path, namesrv: str, port: int, name: str = "pybroker") -> BrokerSettings:
    return BrokerSettings.from_properties(
        {
            "brokerClusterName": "DefaultCluster",
            "brokerName": name,
            "brokerId": "0",
            "brokerIP1": "127.0.0.1",
            "brokerIP2": "127.0.0.1",
            "listenPort": str(port),
            "namesrvAddr": namesrv,
            "storePathRootDir": str(tmp_path / "pystore"),
            "mappedFileSizeCommitLog": str(64 * 1024 * 1024),
            "flushDiskType": "ASYNC_FLUSH",
        }
    )


@asynccontextmanager
async def pyrocket_broker(config: BrokerSettings) -> AsyncIterator[Broker]:
    async with trio.open_nursery() as nursery:
        broker: Broker = await nursery.start(
            lambda task_status: serve_broker(
                config, host="127.0.0.1", timing=TIMING, task_status=task_status
            )
        )
        yield broker
        nursery.cancel_scope.cancel()


async def mqadmin(java: JavaCluster, *args: str) -> str:
    result = await trio.to_thread.run_sync(lambda: java.mqadmin(*args))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


async def start_namesrv(java: JavaCluster, port: int) -> JavaProcess:
    return await trio.to_thread.run_sync(lambda: java.start_namesrv(port))


async def wait_for_route(java: JavaCluster, ns: str, topic: str, broker_addr: str) -> None:
    """Until the NameServer at ``ns`` routes ``topic`` to ``broker_addr`` (a
    topic a broker created reaches it with the next registration round)."""
    while True:
        route = await trio.to_thread.run_sync(
            lambda: java.mqadmin("topicRoute", "-n", ns, "-t", topic)
        )
        if broker_addr in route.stdout:
            return
        await trio.sleep(1)


def cluster_rows(output: str, broker_name: str) -> list[str]:
    return [line for line in output.splitlines() if f" {broker_name} " in f" {line} "]


async def test_java_namesrv_and_mqadmin_see_a_pyrocket_broker(
    java: JavaCluster, tmp_path: Path
) -> None:
    ns_port = free_port()
    await start_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    port = free_port()
    with trio.fail_after(300):
        async with pyrocket_broker(settings(tmp_path, ns, port)) as broker:
            addr = broker.broker_addr
            out = await mqadmin(java, "clusterList", "-n", ns)
            rows = cluster_rows(out, "pybroker")
            assert len(rows) == 1 and addr in rows[0] and "V4_7_0" in rows[0], out

            out = await mqadmin(java, "topicRoute", "-n", ns, "-t", "pybroker")
            assert addr in out and '"brokerName":"pybroker"' in out, out

            out = await mqadmin(
                java, "updateTopic", "-n", ns, "-b", addr, "-t", "JavaMade", "-r", "3", "-w", "3"
            )
            assert f"create topic to {addr} success." in out, out
            assert broker.topic_config_manager.select_topic_config("JavaMade") is not None
            out = await mqadmin(java, "topicRoute", "-n", ns, "-t", "JavaMade")
            assert '"readQueueNums":3' in out and addr in out, out

            out = await mqadmin(java, "getBrokerConfig", "-n", ns, "-b", addr)
            assert re.search(r"^brokerName\s+=  pybroker$", out, re.M), out
            assert re.search(rf"^listenPort\s+=  {port}$", out, re.M), out

            out = await mqadmin(java, "brokerStatus", "-n", ns, "-b", addr)
            assert re.search(r"^brokerVersionDesc\s+: V4_7_0$", out, re.M), out

            out = await mqadmin(java, "topicStatus", "-n", ns, "-t", "JavaMade")
            assert len([line for line in out.splitlines() if line.startswith("pybroker")]) == 3

            out = await mqadmin(
                java,
                "updateBrokerConfig",
                "-n",
                ns,
                "-b",
                addr,
                "-k",
                "fileReservedTime",
                "-v",
                "24",
            )
            assert f"update broker config success, {addr}" in out, out
            assert broker.settings.store.file_reserved_time == 24
            refused = await trio.to_thread.run_sync(
                lambda: java.mqadmin(
                    "updateBrokerConfig", "-n", ns, "-b", addr, "-k", "storePathRootDir", "-v", "/"
                )
            )
            assert "storePathRootDir" in refused.stdout + refused.stderr
            assert broker.settings.store.store_path_root_dir == str(tmp_path / "pystore")

            out = await mqadmin(
                java, "deleteTopic", "-n", ns, "-c", "DefaultCluster", "-t", "JavaMade"
            )
            assert "delete topic [JavaMade] from cluster [DefaultCluster] success." in out, out
            assert broker.topic_config_manager.select_topic_config("JavaMade") is None
        # Shut down: unregistered.
        out = await mqadmin(java, "clusterList", "-n", ns)
        assert not cluster_rows(out, "pybroker"), out


async def test_two_java_namesrvs_one_stopped_and_restarted(
    java: JavaCluster, tmp_path: Path
) -> None:
    port1, port2 = free_port(), free_port()
    await start_namesrv(java, port1)
    ns2 = await start_namesrv(java, port2)
    addr1, addr2 = f"127.0.0.1:{port1}", f"127.0.0.1:{port2}"
    with trio.fail_after(300):
        async with pyrocket_broker(settings(tmp_path, f"{addr1};{addr2}", free_port())) as broker:
            registration = broker.registration
            for ns in (addr1, addr2):
                assert cluster_rows(await mqadmin(java, "clusterList", "-n", ns), "pybroker")

            await trio.to_thread.run_sync(ns2.stop)
            await registration.status(addr2).wait_value(lambda s: s.failures >= 2)
            before = registration.status(addr1).value.registrations
            await registration.status(addr1).wait_value(lambda s: s.registrations >= before + 2)
            assert cluster_rows(await mqadmin(java, "clusterList", "-n", addr1), "pybroker")

            await start_namesrv(java, port2)
            await registration.status(addr2).wait_value(lambda s: s.registered)
            assert cluster_rows(await mqadmin(java, "clusterList", "-n", addr2), "pybroker")
        for ns in (addr1, addr2):
            assert not cluster_rows(await mqadmin(java, "clusterList", "-n", ns), "pybroker")


async def test_a_java_broker_reads_the_topics_pyrocket_wrote(
    java: JavaCluster, tmp_path: Path
) -> None:
    ns_port = free_port()
    await start_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    port = free_port()
    config = settings(tmp_path, ns, port, name="broker-x")
    with trio.fail_after(300):
        async with pyrocket_broker(config) as broker:
            await mqadmin(
                java, "updateTopic", "-n", ns, "-b", broker.broker_addr, "-t", "Handover", "-w", "5"
            )
    store = tmp_path / "pystore"
    java_port = free_port()
    await trio.to_thread.run_sync(
        lambda: java.start_broker(
            "broker-x",
            java_port,
            ns,
            {"storePathRootDir": str(store), "storePathCommitLog": str(store / "commitlog")},
        )
    )
    out = await mqadmin(java, "topicRoute", "-n", ns, "-t", "Handover")
    assert '"writeQueueNums":5' in out and f"127.0.0.1:{java_port}" in out, out


async def test_mqadmin_manages_groups_and_lists_connections_of_a_pyrocket_broker(
    java: JavaCluster, tmp_path: Path
) -> None:
    ns_port = free_port()
    await start_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    with trio.fail_after(300):
        async with (
            pyrocket_broker(settings(tmp_path, ns, free_port())) as broker,
            RemotingClient() as consumer_client,
            RemotingClient() as producer_client,
        ):
            addr = broker.broker_addr
            groups = broker.subscription_group_manager
            out = await mqadmin(
                java, "updateSubGroup", "-n", ns, "-b", addr, "-g", "JavaGroup",
                "-r", "4", "-d", "true",
            )  # fmt: skip
            assert f"create subscription group to {addr} success." in out, out
            assert "retryMaxTimes=4" in out, out
            made = groups.subscription_group_table["JavaGroup"]
            assert (made.retry_max_times, made.consume_broadcast_enable) == (4, True)
            assert not made.consume_from_min_enable

            await BrokerAPI(consumer_client).heartbeat(
                addr,
                HeartbeatData(
                    client_id="10.9.9.9@1",
                    consumer_data_set=(
                        ConsumerData(
                            group_name="JavaGroup",
                            consume_type=ConsumeType.CONSUME_PASSIVELY,
                            message_model=MessageModel.CLUSTERING,
                            consume_from_where=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
                            subscription_data_set=(
                                SubscriptionData.for_expression("JavaTopic", "x || y"),
                            ),
                        ),
                    ),
                ),
            )
            await BrokerAPI(producer_client).heartbeat(
                addr,
                HeartbeatData(client_id="10.9.9.8@2", producer_data_set=(ProducerData("JavaPG"),)),
            )
            consumer_addr = next(iter(consumer_client.connections.values())).local_address
            producer_addr = next(iter(producer_client.connections.values())).local_address
            with trio.fail_after(30):
                await wait_for_route(java, ns, "%RETRY%JavaGroup", addr)
            out = await mqadmin(java, "consumerConnection", "-n", ns, "-g", "JavaGroup")
            assert re.search(
                rf"^001  10\.9\.9\.9@1\s+{re.escape(consumer_addr)}\s+JAVA\s+V4_7_0$", out, re.M
            ), out
            assert re.search(r"Topic: JavaTopic\s+SubExpression: x \|\| y$", out, re.M), out
            assert "ConsumeType: CONSUME_PASSIVELY" in out, out
            assert "MessageModel: CLUSTERING" in out, out
            assert "ConsumeFromWhere: CONSUME_FROM_LAST_OFFSET" in out, out

            out = await mqadmin(
                java, "producerConnection", "-n", ns, "-g", "JavaPG", "-t", "%RETRY%JavaGroup"
            )
            assert re.search(
                rf"^0001  10\.9\.9\.8@2\s+{re.escape(producer_addr)}\s+JAVA\s+V4_7_0$", out, re.M
            ), out

            out = await mqadmin(java, "deleteSubGroup", "-n", ns, "-b", addr, "-g", "JavaGroup")
            assert f"delete subscription group [JavaGroup] from broker [{addr}] success." in out
            assert "JavaGroup" not in groups.subscription_group_table


async def test_mqadmin_consumer_status_of_a_pyrocket_consumer(
    java: JavaCluster, tmp_path: Path
) -> None:
    """Java's mqadmin asks a pyrocket broker for a pyrocket consumer's running
    info: the broker forwards GET_CONSUMER_RUNNING_INFO over the consumer's
    connection and Java decodes and prints the answer."""
    ns_port = free_port()
    await start_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    with trio.fail_after(300):
        async with (
            pyrocket_broker(settings(tmp_path, ns, free_port())) as broker,
            RemotingClient() as admin_client,
        ):
            await BrokerAPI(admin_client).create_topic(
                broker.broker_addr, TopicConfig(topic_name="StatusTopic")
            )
            await wait_for_route(java, ns, "StatusTopic", broker.broker_addr)
            consumer = PushConsumer("StatusGroup", [ns], client_ip="127.0.0.1")
            consumer.subscribe("StatusTopic", "a || b")
            async with consumer:
                await wait_assigned([consumer], "StatusTopic", 16)
                await wait_for_route(java, ns, "%RETRY%StatusGroup", broker.broker_addr)
                out = await mqadmin(
                    java, "consumerStatus", "-n", ns, "-g", "StatusGroup", "-i", consumer.client_id
                )
                assert "#Consumer Properties#" in out, out
                assert re.search(
                    r"^\d{3} Topic: StatusTopic\s+ClassFilter: false\s+SubExpression: a \|\| b$",
                    out,
                    re.M,
                ), out
                assert "#Consumer MQ Detail#" in out, out
                rows = re.findall(
                    r"^StatusTopic\s+pybroker\s+(\d+)\s+ProcessQueueInfo \[commitOffset=", out, re.M
                )
                assert sorted(map(int, rows)) == list(range(16)), out
                assert "#Consumer RT&TPS#" in out, out
