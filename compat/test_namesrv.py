"""A pyrocket NameServer inside a Java RocketMQ 4.7 cluster.

- A Java broker registers with a pyrocket NameServer; Java mqadmin lists it,
  creates a topic on it, reads its route; a Java producer sends through it
  and a Java consumer reads back; mqadmin's NameServer commands work.
- A Java NameServer and a pyrocket NameServer fed the same registrations (a
  Java broker registering with both, plus hand-made brokers with many topics)
  give byte-identical answers to the same queries.

Run with ``ROCKETMQ_HOME=/path/to/rocketmq-4.7.0 python -m pytest compat``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from compat.java_cluster import JavaCluster, free_port
from pyrocket.client.namesrv_api import BrokerIdentity, NameServerAPI
from pyrocket.protocol.bodies import DataVersion, Properties, TopicConfig, TopicList
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, encode
from pyrocket.protocol.headers import (
    DeleteTopicInNamesrvRequestHeader,
    GetKVConfigRequestHeader,
    GetKVListByNamespaceRequestHeader,
    GetRouteInfoRequestHeader,
    GetTopicsByClusterRequestHeader,
    UnRegisterBrokerRequestHeader,
    WipeWritePermOfBrokerRequestHeader,
)
from pyrocket.remoting import ClientConfig, RemotingClient

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def pyrocket_namesrv(
    workdir: Path, port: int, serialize_type: str = "JSON"
) -> Iterator[subprocess.Popen[bytes]]:
    """``pyrocket namesrv`` on 127.0.0.1:``port``, stopped with SIGTERM."""
    home = workdir / f"pyrocket-namesrv-{port}"
    home.mkdir(parents=True, exist_ok=True)
    conf = home / "namesrv.properties"
    conf.write_text(f"listenPort={port}\nkvConfigPath={home / 'kvConfig.json'}\n")
    log = home / "out.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "pyrocket", "namesrv", "-c", str(conf), "--host", "127.0.0.1"],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ROCKETMQ_SERIALIZE_TYPE": serialize_type, "HOME": str(home)},
        )
    try:
        deadline = time.monotonic() + 30
        while "boot success" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "pyrocket namesrv did not start"
            time.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(15) == 0, log.read_text(errors="replace")[-4000:]
        finally:
            if process.poll() is None:
                process.kill()


def mqadmin(java: JavaCluster, *args: str) -> str:
    result = java.mqadmin(*args)
    assert result.returncode == 0, f"mqadmin {args}: {result.stdout}\n{result.stderr}"
    # mqadmin reports failures as stack traces and still exits 0.
    assert "Exception" not in result.stdout, result.stdout
    return result.stdout


def eventually(check: Callable[[], str], pattern: str, timeout: float = 40.0) -> str:
    """Run ``check`` until its output matches ``pattern``."""
    deadline = time.monotonic() + timeout
    while True:
        output = check()
        if re.search(pattern, output):
            return output
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern!r} never appeared in:\n{output}")
        time.sleep(1.0)


# ---------------------------------------------------------------------------
# Java processes around a pyrocket NameServer


def test_java_broker_producer_consumer_and_mqadmin_on_a_pyrocket_namesrv(
    java: JavaCluster, tmp_path: Path
) -> None:
    ns_port = free_port()
    ns = f"127.0.0.1:{ns_port}"
    with pyrocket_namesrv(tmp_path, ns_port):
        broker_port = free_port(span=2)
        broker = java.start_broker("broker-a", broker_port, ns)
        broker_addr = f"127.0.0.1:{broker_port}"

        # mqadmin leaves the version blank when its runtime-info call to the
        # (Java) broker times out, as it may while that broker warms up.
        eventually(
            lambda: mqadmin(java, "clusterList", "-n", ns),
            rf"DefaultCluster\s+broker-a\s+0\s+{broker_addr}\s+V4_7_0",
        )

        created = mqadmin(
            java, "updateTopic", "-n", ns, "-c", "DefaultCluster", "-t", "CompatTopic", "-r", "4",
            "-w", "4",
        )  # fmt: skip
        assert f"create topic to {broker_addr} success" in created
        route = eventually(
            lambda: java.mqadmin("topicRoute", "-n", ns, "-t", "CompatTopic").stdout,
            r'"brokerName":"broker-a"',
        )
        assert '"readQueueNums":4' in route
        assert "CompatTopic" in mqadmin(java, "topicList", "-n", ns).split()
        assert mqadmin(java, "topicClusterList", "-n", ns, "-t", "CompatTopic").split() == [
            "DefaultCluster"
        ]

        # pyrocket's admin prints what mqadmin prints.
        for command in (
            ("topicRoute", "-t", "CompatTopic"),
            ("topicRoute", "-t", "TBW102"),
            ("topicList",),
            ("topicList", "-c"),
            ("topicClusterList", "-t", "CompatTopic"),
            ("getNamesrvConfig",),
        ):
            assert pyrocket_admin(*command, "-n", ns) == mqadmin(java, *command, "-n", ns), command
        ours = pyrocket_admin("clusterList", "-n", ns).splitlines()
        theirs = mqadmin(java, "clusterList", "-n", ns).splitlines()
        assert [line.split()[:5] for line in ours] == [line.split()[:5] for line in theirs]

        # A Java producer and a Java consumer find the broker through pyrocket.
        sent = mqadmin(
            java, "sendMessage", "-n", ns, "-t", "CompatTopic", "-p", "hello-from-pyrocket-ns"
        )
        assert "SEND_OK" in sent
        consumed = mqadmin(java, "consumeMessage", "-n", ns, "-t", "CompatTopic")
        assert "hello-from-pyrocket-ns" in consumed

        # mqadmin's NameServer commands.
        assert "success" in mqadmin(
            java, "updateKvConfig", "-n", ns, "-s", "COMPAT_NS", "-k", "k1", "-v", "v1"
        )
        assert trio.run(_kv, ns, "COMPAT_NS", "k1") == "v1"
        assert "success" in mqadmin(java, "deleteKvConfig", "-n", ns, "-s", "COMPAT_NS", "-k", "k1")
        assert trio.run(_kv, ns, "COMPAT_NS", "k1") is None

        config = mqadmin(java, "getNamesrvConfig", "-n", ns)
        assert f"============{ns}============" in config
        assert re.search(r"orderMessageEnable\s+=\s+false", config)
        assert re.search(rf"listenPort\s+=\s+{ns_port}", config)
        updated = mqadmin(
            java, "updateNamesrvConfig", "-n", ns, "-k", "orderMessageEnable", "-v", "true"
        )
        assert "update name server config success" in updated
        assert re.search(
            r"orderMessageEnable\s+=\s+true", mqadmin(java, "getNamesrvConfig", "-n", ns)
        )
        refused = java.mqadmin(
            "updateNamesrvConfig", "-n", ns, "-k", "kvConfigPath", "-v", "/tmp/x"
        )
        assert "kvConfigPath names a file" in refused.stdout + refused.stderr

        mqadmin(
            java, "updateOrderConf", "-n", ns, "-t", "CompatTopic", "-v", "broker-a:4", "-m", "put"
        )
        route = mqadmin(java, "topicRoute", "-n", ns, "-t", "CompatTopic")
        assert '"orderTopicConf":"broker-a:4"' in route

        wiped = mqadmin(java, "wipeWritePerm", "-n", ns, "-b", "broker-a")
        count = re.search(
            rf"wipe write perm of broker\[broker-a\] in name server\[{ns}\] OK, (\d+)", wiped
        )
        assert count is not None and int(count.group(1)) >= 1
        assert '"perm":4' in mqadmin(java, "topicRoute", "-n", ns, "-t", "CompatTopic")

        # Graceful broker stop: it unregisters; the cluster is empty again.
        broker.stop()
        assert "broker-a" not in mqadmin(java, "clusterList", "-n", ns)


def pyrocket_admin(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pyrocket", "admin", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def _kv(ns: str, namespace: str, key: str) -> str | None:
    async with RemotingClient() as client:
        request = RemotingCommand.request(
            RequestCode.GET_KV_CONFIG, GetKVConfigRequestHeader(namespace, key)
        )
        answer = await client.invoke_sync(ns, request, 5)
        return (answer.ext_fields or {}).get("value")


def test_java_broker_on_a_rocketmq_serialized_pyrocket_namesrv(tmp_path: Path) -> None:
    from compat.java_cluster import java_cluster, rocketmq_home

    home = rocketmq_home()
    if home is None:
        pytest.skip("ROCKETMQ_HOME is not set to a RocketMQ 4.7 install")
    with java_cluster(home, tmp_path, serialize_type="ROCKETMQ") as java:
        ns_port = free_port()
        ns = f"127.0.0.1:{ns_port}"
        with pyrocket_namesrv(tmp_path, ns_port, serialize_type="ROCKETMQ"):
            broker_port = free_port(span=2)
            java.start_broker("broker-r", broker_port, ns)
            assert "broker-r" in mqadmin(java, "clusterList", "-n", ns)
            route = mqadmin(java, "topicRoute", "-n", ns, "-t", "TBW102")
            assert f'0:"127.0.0.1:{broker_port}"' in route.replace("\n", "").replace("\t", "")


# ---------------------------------------------------------------------------
# Same registrations, same answers


def fake_brokers() -> list[tuple[BrokerIdentity, list[TopicConfig], list[str]]]:
    """Hand-made brokers: enough topics to grow every Java table past its
    first size, shared topics, slaves, unit flags, filter servers."""
    many = [TopicConfig(f"ManyTopic-{i:04d}", 4, 4) for i in range(1200)]
    shared = [TopicConfig(f"SharedTopic{i}", 2 + i % 3, 2) for i in range(40)]
    unit = [
        TopicConfig("UnitTopic", 1, 1, topic_sys_flag=1),
        TopicConfig("UnitSubTopic", 1, 1, topic_sys_flag=2),
        TopicConfig("UnitBothTopic", 1, 1, topic_sys_flag=3),
        TopicConfig("ReadOnlyTopic", 1, 1, perm=4),
    ]
    return [
        (
            BrokerIdentity("FakeClusterA", "127.0.0.1:30911", "fake-a", 0, "127.0.0.1:30911"),
            many + shared,
            [],
        ),
        (BrokerIdentity("FakeClusterA", "127.0.0.1:30921", "fake-a", 1, "127.0.0.1:30921"), [], []),
        (
            BrokerIdentity("FakeClusterA", "127.0.0.1:30931", "fake-b", 0, "127.0.0.1:30931"),
            shared + unit,
            ["f:1"],
        ),
        (
            BrokerIdentity("FakeClusterB", "127.0.0.1:30941", "fake-c", 0, "127.0.0.1:30941"),
            shared[:10],
            [],
        ),
    ]


def test_pyrocket_and_java_namesrv_answer_the_same_registrations_alike(
    java: JavaCluster, tmp_path: Path
) -> None:
    java_port, py_port = free_port(), free_port()
    java.start_namesrv(java_port)
    java_ns, py_ns = f"127.0.0.1:{java_port}", f"127.0.0.1:{py_port}"
    with pyrocket_namesrv(tmp_path, py_port):
        broker_port = free_port(span=2)
        both = f"{java_ns};{py_ns}"
        java.start_broker("broker-a", broker_port, both)
        for topic in ("CompareTopic1", "CompareTopic2"):
            mqadmin(java, "updateTopic", "-n", both, "-c", "DefaultCluster", "-t", topic)
        mqadmin(
            java, "updateTopic", "-n", both, "-c", "DefaultCluster", "-t", "CompareOrdered",
            "-o", "true",
        )  # fmt: skip
        trio.run(_compare, java_ns, py_ns, f"127.0.0.1:{broker_port}")


async def _compare(java_ns: str, py_ns: str, broker_addr: str) -> None:
    namesrvs = (java_ns, py_ns)
    with trio.fail_after(120):
        async with RemotingClient(ClientConfig(channel_max_idle_seconds=0)) as client:
            api = NameServerAPI(client)
            # Same hand-made registrations, in the same order, to both; the
            # connection stays open so that the brokers stay registered.
            for identity, topics, servers in fake_brokers():
                for ns in namesrvs:
                    await api.register_broker(
                        identity, topics, DataVersion(1_600_000_000_000, 7),
                        filter_servers=servers, addr=ns,
                    )  # fmt: skip
            for ns in namesrvs:
                await api.put_kv_config("ORDER_TOPIC_CONFIG", "SharedTopic3", "fake-a:2", ns)
                await api.put_kv_config("COMPARE_NS", "key", "value", ns)
                await api.update_namesrv_config({"orderMessageEnable": "true"}, ns)
            # Wait until the Java broker's topics are everywhere.
            for ns in namesrvs:
                while True:
                    topics = await api.get_all_topic_list(ns)
                    if "CompareOrdered" in topics.topic_list:
                        break
                    await trio.sleep(0.5)

            compared = await _same_answers(client, namesrvs)
            assert compared > 1200

            for request in (
                RemotingCommand.request(
                    RequestCode.WIPE_WRITE_PERM_OF_BROKER,
                    WipeWritePermOfBrokerRequestHeader("fake-b"),
                ),
                RemotingCommand.request(
                    RequestCode.DELETE_TOPIC_IN_NAMESRV,
                    DeleteTopicInNamesrvRequestHeader("SharedTopic5"),
                ),
                RemotingCommand.request(
                    RequestCode.UNREGISTER_BROKER,
                    UnRegisterBrokerRequestHeader("fake-c", "127.0.0.1:30941", "FakeClusterB", 0),
                ),
                RemotingCommand.request(
                    RequestCode.UNREGISTER_BROKER,
                    UnRegisterBrokerRequestHeader("fake-a", "127.0.0.1:30911", "FakeClusterA", 0),
                ),
            ):
                answers = [await client.invoke_sync(ns, request, 5) for ns in namesrvs]
                assert _wire(answers[0]) == _wire(answers[1]), request
            assert await _same_answers(client, namesrvs) > 1200


def _wire(answer: RemotingCommand) -> bytes:
    return encode(answer.replace(opaque=0))


async def _same_answers(client: RemotingClient, namesrvs: tuple[str, str]) -> int:
    """Ask both the same questions; every answer must be byte-identical."""
    count = 0

    async def ask(request: RemotingCommand) -> RemotingCommand:
        nonlocal count
        answers = [await client.invoke_sync(ns, request, 10) for ns in namesrvs]
        assert _wire(answers[0]) == _wire(answers[1]), (request, answers)
        count += 1
        return answers[0]

    info = await ask(RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_INFO))
    everything = await ask(RemotingCommand.request(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER))
    for code in (
        RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS,
        RequestCode.GET_UNIT_TOPIC_LIST,
        RequestCode.GET_HAS_UNIT_SUB_TOPIC_LIST,
        RequestCode.GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST,
    ):
        await ask(RemotingCommand.request(code))
    assert info.body is not None
    for cluster in ("DefaultCluster", "FakeClusterA", "FakeClusterB", "NoSuchCluster"):
        await ask(
            RemotingCommand.request(
                RequestCode.GET_TOPICS_BY_CLUSTER, GetTopicsByClusterRequestHeader(cluster)
            )
        )
    for namespace in ("ORDER_TOPIC_CONFIG", "COMPARE_NS", "NO_SUCH_NS"):
        await ask(
            RemotingCommand.request(
                RequestCode.GET_KVLIST_BY_NAMESPACE, GetKVListByNamespaceRequestHeader(namespace)
            )
        )
    assert everything.body is not None
    for topic in [*TopicList.decode(everything.body).topic_list, "NoSuchTopic"]:
        await ask(
            RemotingCommand.request(
                RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader(topic)
            )
        )
    # The configuration: same keys in the same order (values hold paths and ports).
    configs = [
        await client.invoke_sync(ns, RemotingCommand.request(RequestCode.GET_NAMESRV_CONFIG), 5)
        for ns in namesrvs
    ]
    keys = [list(Properties.decode(c.body or b"").entries) for c in configs]
    assert keys[0] == keys[1]
    assert configs[0].code == configs[1].code == ResponseCode.SUCCESS
    return count
