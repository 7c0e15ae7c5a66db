"""``pyrocket admin`` updateTopicPerm, consumerProgress, updateOrderConf and
allocateMQ against an in-process NameServer and broker: the printed layout
(mqadmin's columns) and the effect on the cluster."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from pyrocket.client.admin import Admin
from pyrocket.client.namesrv_api import NAMESPACE_ORDER_TOPIC_CONFIG
from pyrocket.client.producer import Producer, new_message
from pyrocket.protocol.bodies.topic import TopicConfig
from tests.cli.test_broker_cli import cli
from tests.client.helpers import consumer, running_up
from tests.remoting.helpers import wait_until


async def _route_perm(ns: str, topic: str) -> int:
    async with Admin(ns) as admin:
        route = await admin.topic_route(topic)
    return (route.queue_datas or ())[0].perm


async def test_update_topic_perm_on_a_broker_and_a_cluster(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            addr = running.broker.broker_addr
            async with Admin(ns) as admin:
                await admin.update_topic_on_broker(addr, TopicConfig("PermTopic", 3, 2))
            await wait_until(lambda: running.namesrv.state.routes.queue_datas("PermTopic") != [])

            code, out, err = await cli(
                "admin", "updateTopicPerm", "-n", ns, "-b", addr, "-t", "PermTopic", "-p", "4"
            )
            assert (code, err) == (0, "")
            assert out == (
                f"update topic perm from 6 to 4 in {addr} success.\n"
                "TopicConfig [topicName=PermTopic, readQueueNums=3, writeQueueNums=2, "
                "perm=R--, topicFilterType=SINGLE_TAG, topicSysFlag=0, order=false].\n"
            )
            config = running.broker.topic_config_manager.select_topic_config("PermTopic")
            assert config is not None and config.perm == 4
            assert (config.read_queue_nums, config.write_queue_nums) == (3, 2)
            routes = running.namesrv.state.routes
            await wait_until(lambda: routes.queue_datas("PermTopic")[0].perm == 4)
            assert await _route_perm(ns, "PermTopic") == 4

            code, out, _ = await cli(
                "admin", "updateTopicPerm", "-n", ns, "-b", addr, "-t", "PermTopic", "-p", "4"
            )
            assert (code, out) == (0, "new perm equals to the old one!\n")

            code, out, _ = await cli(
                "admin", "updateTopicPerm", "-n", ns, "-b", "10.9.9.9:1", "-t", "PermTopic",
                "-p", "2",
            )  # fmt: skip
            assert (code, out) == (
                0,
                "updateTopicPerm error broker not exit or broker is not master!.\n",
            )

            code, out, _ = await cli(
                "admin", "updateTopicPerm", "-n", ns, "-c", "DefaultCluster", "-t", "PermTopic",
                "-p", "6",
            )  # fmt: skip
            assert (code, out) == (0, f"update topic perm from 4 to 6 in {addr} success.\n")
            assert running.broker.topic_config_manager.select_topic_config("PermTopic").perm == 6  # type: ignore[union-attr]

            code, out, _ = await cli(
                "admin", "updateTopicPerm", "-n", ns, "-t", "PermTopic", "-p", "6"
            )
            assert code == 0 and out.startswith("usage: pyrocket admin updateTopicPerm")

            code, out, err = await cli(
                "admin", "updateTopicPerm", "-n", ns, "-t", "NoSuchTopic", "-p", "6"
            )
            assert code == 1 and out == ""
            assert err.startswith("UpdateTopicPermSubCommand command failed: ")


def _progress_rows(out: str) -> list[list[str]]:
    lines = out.splitlines()
    assert lines[0] == (
        f"{'#Topic':<32}  {'#Broker Name':<32}  {'#QID':<4}  {'#Broker Offset':<20}  "
        f"{'#Consumer Offset':<20}  {'#Client IP':<20} {'#Diff':<20}  #LastTime"
    )
    end = lines.index("")
    assert lines[end + 1].startswith("Consume TPS: ")
    rows = lines[1:end]
    for row in rows:
        # Fixed columns: topic at 0, broker at 34, qid at 68, offsets at 74 and 96.
        assert row[32:34] == "  " and row[66:68] == "  " and row[72:74] == "  "
    # The group's retry topic has its rows too (sorted first).
    return [
        [row[0:32].strip(), row[34:66].strip(), row[68:72].strip(), row[74:94].strip(),
         row[96:116].strip(), row[118:138].strip(), row[139:159].strip(), row[161:]]
        for row in rows
        if not row.startswith("%RETRY%")
    ]  # fmt: skip


async def test_consumer_progress_of_a_group_and_of_all_groups(tmp_path: Path) -> None:
    topic = "ProgressTopic"
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            async with Producer("progress_producers", [ns], client_ip="127.0.0.1") as producer:
                for i in range(8):
                    await producer.send(new_message(topic, f"m{i}".encode()))
                async with consumer(ns, "progress_group", topic) as reader:
                    for _ in range(8):
                        await reader.receive()
                    await reader.commit()

                    code, out, err = await cli(
                        "admin", "consumerProgress", "-n", ns, "-g", "progress_group",
                        "-s", "true",
                    )  # fmt: skip
                    assert (code, err) == (0, "")
                    rows = _progress_rows(out)
                    assert [r[0] for r in rows] == [topic] * 4
                    assert [r[2] for r in rows] == ["0", "1", "2", "3"]
                    assert sum(int(r[3]) for r in rows) == 8
                    assert [r[3] for r in rows] == [r[4] for r in rows]
                    assert {r[5] for r in rows} == {"127.0.0.1"}
                    assert {r[6] for r in rows} == {"0"}
                    assert all(r[7] != "N/A" for r in rows if r[4] != "0")
                    assert out.endswith("Diff Total: 0\n")

                    code, out, _ = await cli("admin", "consumerProgress", "-n", ns)
                    lines = out.splitlines()
                    assert code == 0
                    assert lines[0] == (
                        f"{'#Group':<32}  {'#Count':<6}  {'#Version':<24} {'#Type':<5}  "
                        f"{'#Model':<14}  {'#TPS':<7}  #Diff Total"
                    )
                    line = next(x for x in lines if x.startswith("progress_group "))
                    assert line.startswith(
                        f"{'progress_group':<32}  {1:<6}  {'V4_7_0':<24} {'PUSH':<5}  "
                        f"{'CLUSTERING':<14}  "
                    )
                    assert line.endswith("  0")
                for i in range(3):
                    await producer.send(new_message(topic, f"late{i}".encode()))

            code, out, _ = await cli("admin", "consumerProgress", "-n", ns, "-g", "progress_group")
            rows = _progress_rows(out)
            assert {r[5] for r in rows} == {"N/A"}
            assert sum(int(r[6]) for r in rows) == 3
            assert out.endswith("Diff Total: 3\n")
            code, out, _ = await cli("admin", "consumerProgress", "-n", ns)
            line = next(x for x in out.splitlines() if x.startswith("progress_group "))
            assert line == (
                f"{'progress_group':<32}  {0:<6}  {'OFFLINE':<24} {'':<5}  {'':<14}  "
                f"{line[90:97]}  3"
            )

            code, out, err = await cli("admin", "consumerProgress", "-n", ns, "-g", "nobody")
            assert code == 1 and err.startswith("ConsumerProgressSubCommand command failed: ")


async def test_update_order_conf_put_get_delete(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            kv = running.namesrv.state.kv
            code, out, _ = await cli(
                "admin", "updateOrderConf", "-n", ns, "-t", "OT", "-m", "put",
                "-v", "broker-a:4;broker-b:4",
            )  # fmt: skip
            assert (code, out) == (
                0,
                "update orderConf success. topic=[OT], orderConf=[broker-a:4;broker-b:4]",
            )
            assert kv.get_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, "OT") == "broker-a:4;broker-b:4"
            code, out, _ = await cli("admin", "updateOrderConf", "-n", ns, "-t", "OT", "-m", "get")
            assert (code, out) == (
                0,
                "get orderConf success. topic=[OT], orderConf=[broker-a:4;broker-b:4] ",
            )
            code, out, _ = await cli(
                "admin", "updateOrderConf", "-n", ns, "-t", "OT", "-m", "delete"
            )
            assert (code, out) == (0, "delete orderConf success. topic=[OT]")
            assert kv.get_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, "OT") is None
            code, out, err = await cli(
                "admin", "updateOrderConf", "-n", ns, "-t", "OT", "-m", "put"
            )
            assert code == 1 and "please set orderConf with option -v." in err
            code, out, err = await cli(
                "admin", "updateOrderConf", "-n", ns, "-t", "OT", "-m", "get"
            )
            assert code == 1 and err.startswith("UpdateOrderConfCommand command failed: ")
            code, out, _ = await cli("admin", "updateOrderConf", "-n", ns, "-t", "OT", "-m", "x")
            assert code == 0 and out.startswith("usage: pyrocket admin updateOrderConf")


async def test_allocate_mq_shares_the_readable_queues(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            addr = running.broker.broker_addr
            async with Admin(ns) as admin:
                await admin.update_topic_on_broker(addr, TopicConfig("AllocTopic", 5, 5))
            await wait_until(lambda: running.namesrv.state.routes.queue_datas("AllocTopic") != [])
            code, out, err = await cli(
                "admin", "allocateMQ", "-n", ns, "-t", "AllocTopic", "-i", "10.0.0.1,10.0.0.2"
            )
            assert (code, err) == (0, "") and out.endswith("\n") and "\n" not in out[:-1]
            result = json.loads(out)["result"]
            assert sorted(result) == ["10.0.0.1", "10.0.0.2"]
            first, second = result["10.0.0.1"], result["10.0.0.2"]
            assert (len(first), len(second)) == (3, 2)
            ids = sorted(q["queueId"] for q in first + second)
            assert ids == [0, 1, 2, 3, 4]
            assert all(list(q) == ["brokerName", "queueId", "topic"] for q in first + second)
            assert {q["brokerName"] for q in first} == {"broker-a"}

            code, out, err = await cli(
                "admin", "allocateMQ", "-n", ns, "-t", "AllocTopic", "-i", "a,,b"
            )
            assert code == 1 and "currentCID is empty" in err
