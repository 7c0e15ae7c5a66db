"""``pyrocket broker`` and the broker admin commands, end to end over real
sockets: a pyrocket NameServer and a pyrocket broker in this process, the
commands run as mqadmin would run them."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import trio

from pyrocket.cli import main
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.namesrv.kvconfig import NAMESPACE_ORDER_TOPIC_CONFIG
from pyrocket.protocol.bodies.admin import SubscriptionGroupConfig
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
from pyrocket.protocol.codes import RequestCode
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_properties, broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv

ROOT = Path(__file__).resolve().parents[2]


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exit_:
            code = exit_.code
    assert isinstance(code, int)
    return code, out.getvalue(), err.getvalue()


async def cli(*argv: str) -> tuple[int, str, str]:
    return await trio.to_thread.run_sync(run_cli, argv)


async def test_admin_commands_against_a_broker(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_broker(broker_settings(tmp_path, [ns.addr])) as broker,
        ):
            ns_addr = ns.addr
            addr = broker.broker_addr
            code, out, err = await cli(
                "admin", "updateTopic", "-n", ns_addr, "-b", addr, "-t", "CliTopic",
                "-r", "2", "-w", "3",
            )  # fmt: skip
            assert (code, err) == (0, "")
            assert out == (
                f"create topic to {addr} success.\n"
                "TopicConfig [topicName=CliTopic, readQueueNums=2, writeQueueNums=3, "
                "perm=RW-, topicFilterType=SINGLE_TAG, topicSysFlag=0, order=false]"
            )
            topics = broker.topic_config_manager
            assert topics.select_topic_config("CliTopic") == TopicConfig("CliTopic", 2, 3, 6)

            code, out, _ = await cli(
                "admin", "updateTopic", "-n", ns_addr, "-c", "DefaultCluster",
                "-t", "Ordered", "-o", "true", "-w", "4",
            )  # fmt: skip
            assert code == 0
            assert out.startswith(f"create topic to {addr} success.\n")
            assert "set cluster orderConf. isOrder=true, orderConf=[broker-a:4]" in out
            assert ns.kv_namespace(NAMESPACE_ORDER_TOPIC_CONFIG) == {"Ordered": "broker-a:4"}

            code, out, _ = await cli("admin", "topicStatus", "-n", ns_addr, "-t", "CliTopic")
            lines = out.splitlines()
            assert code == 0 and len(lines) == 4
            assert lines[0] == (
                f"{'#Broker Name':<32}  {'#QID':<4}  {'#Min Offset':<20}  "
                f"{'#Max Offset':<20}    #Last Updated"
            )
            assert lines[1] == f"{'broker-a':<32}  {0:<4}  {0:<20}  {0:<20}    "

            code, out, _ = await cli("admin", "brokerStatus", "-n", ns_addr, "-b", addr)
            lines = out.splitlines()
            keys = [line.split(":")[0].rstrip() for line in lines]
            assert code == 0 and keys == sorted(keys) and "brokerVersionDesc" in keys
            assert f"{'brokerVersionDesc':<32}: V4_7_0" in lines
            assert lines[0].startswith("EndTransactionQueueSize")

            code, out, _ = await cli("admin", "brokerStatus", "-n", ns_addr, "-c", "DefaultCluster")
            assert code == 0 and f"{addr:<24} {'brokerVersion':<32}: 353" in out.splitlines()

            code, out, _ = await cli("admin", "getBrokerConfig", "-n", ns_addr, "-b", addr)
            lines = out.splitlines()
            assert code == 0 and lines[0] == f"============{addr}============"
            assert f"{'brokerName':<50}=  broker-a" in lines and lines[-1] == ""

            code, out, _ = await cli(
                "admin", "getBrokerConfig", "-n", ns_addr, "-c", "DefaultCluster"
            )
            assert code == 0 and out.startswith(f"============Master: {addr}============\n")

            code, out, err = await cli(
                "admin", "updateBrokerConfig", "-n", ns_addr, "-b", addr,
                "-k", "fileReservedTime", "-v", "12",
            )  # fmt: skip
            assert (code, out, err) == (0, f"update broker config success, {addr}\n", "")
            assert broker.settings.store.file_reserved_time == 12
            code, out, err = await cli(
                "admin", "updateBrokerConfig", "-n", ns_addr, "-b", addr,
                "-k", "storePathRootDir", "-v", "/tmp",
            )  # fmt: skip
            assert code == 1 and out == ""
            assert err.startswith("UpdateBrokerConfigSubCommand command failed: ")
            assert "storePathRootDir" in err

            code, out, _ = await cli(
                "admin", "deleteTopic", "-n", ns_addr, "-c", "DefaultCluster", "-t", "CliTopic"
            )
            assert code == 0
            assert out == (
                "delete topic [CliTopic] from cluster [DefaultCluster] success.\n"
                "delete topic [CliTopic] from NameServer success.\n"
            )
            assert topics.select_topic_config("CliTopic") is None
            assert ns.count(RequestCode.DELETE_TOPIC_IN_NAMESRV) == 1
            assert ns.routes.queue_datas("CliTopic") == []

            code, out, err = await cli("admin", "topicStatus", "-n", ns_addr, "-t", "Gone")
            assert code == 1 and "TopicStatusSubCommand command failed" in err


async def test_order_flag_on_one_broker_merges_the_namesrv_entry(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_broker(broker_settings(tmp_path, [ns.addr])) as broker,
        ):
            kv = ns.server.state.kv
            kv.put_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, "OrderB", "broker-b:4")
            code, out, _ = await cli(
                "admin", "updateTopic", "-n", ns.addr, "-b", broker.broker_addr,
                "-t", "OrderB", "-o", "true",
            )  # fmt: skip
            assert code == 0
            assert out.startswith("set broker orderConf. isOrder=true, orderConf=[broker-a:8]")
            # The other broker's entry stays; this broker's is added.
            merged = ns.kv_namespace(NAMESPACE_ORDER_TOPIC_CONFIG)["OrderB"]
            assert sorted(merged.split(";")) == ["broker-a:8", "broker-b:4"]
            kv.put_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, "OrderB", "broker-a:2")
            code, _, _ = await cli(
                "admin", "updateTopic", "-n", ns.addr, "-b", broker.broker_addr,
                "-t", "OrderB", "-o", "true", "-w", "6",
            )  # fmt: skip
            assert code == 0
            assert ns.kv_namespace(NAMESPACE_ORDER_TOPIC_CONFIG)["OrderB"] == "broker-a:6"


async def test_commands_need_a_namesrv_for_clusters(tmp_path: Path) -> None:
    env = os.environ.pop("NAMESRV_ADDR", None)
    try:
        code, _, err = await cli("admin", "brokerStatus", "-c", "DefaultCluster")
    finally:
        if env is not None:
            os.environ["NAMESRV_ADDR"] = env
    assert code == 1 and "no name server address" in err


def test_broker_command_prints_config_and_rejects_bad_files(tmp_path: Path) -> None:
    conf = tmp_path / "broker.conf"
    properties = broker_properties(tmp_path)
    conf.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
    code, out, _ = run_cli(["broker", "-c", str(conf), "-p", "--set", "fileReservedTime=5"])
    assert code == 0
    lines = out.splitlines()
    assert "brokerName=broker-a" in lines and "fileReservedTime=5" in lines
    assert "listenPort=0" in lines
    conf.write_text("listenPort=abc\n")
    code, _, err = run_cli(["broker", "-c", str(conf)])
    assert code == 2 and "listenPort" in err


async def test_broker_command_runs_registers_and_unregisters_on_sigterm(tmp_path: Path) -> None:
    conf = tmp_path / "broker.conf"
    properties = broker_properties(tmp_path)
    conf.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
    with trio.fail_after(30):
        async with recording_namesrv(tmp_path / "ns") as ns:
            ns_addr = ns.addr
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "pyrocket", "broker", "-c", str(conf), "-n", ns_addr],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            try:
                assert process.stdout is not None
                received = b""
                while b"boot success" not in received:
                    chunk = await process.stdout.receive_some()
                    assert chunk, "the broker exited before it booted"
                    received += chunk
                line = received.decode().splitlines()[0]
                assert line.startswith("The broker[broker-a, 127.0.0.1:")
                assert f"name server is {ns_addr}" in line
                assert ns.count(RequestCode.REGISTER_BROKER) >= 1
                process.send_signal(signal.SIGTERM)
                assert await process.wait() == 0
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            assert ns.count(RequestCode.UNREGISTER_BROKER) == 1
            assert ns.routes.broker_names() == [] and not ns.routes.live_brokers


async def test_subscription_group_and_connection_commands(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_broker(broker_settings(tmp_path, [ns.addr])) as broker,
            RemotingClient() as consumer_client,
            RemotingClient() as producer_client,
        ):
            addr = broker.broker_addr
            groups = broker.subscription_group_manager
            code, out, err = await cli(
                "admin", "updateSubGroup", "-n", ns.addr, "-b", addr, "-g", "CliGroup",
                "-r", "5", "-q", "2", "-i", "1", "-w", "3", "-a", "false",
            )  # fmt: skip
            assert (code, err) == (0, "")
            assert out == (
                f"create subscription group to {addr} success.\n"
                "SubscriptionGroupConfig [groupName=CliGroup, consumeEnable=true, "
                "consumeFromMinEnable=false, consumeBroadcastEnable=false, retryQueueNums=2, "
                "retryMaxTimes=5, brokerId=1, whichBrokerWhenConsumeSlowly=3, "
                "notifyConsumerIdsChangedEnable=false]"
            )
            assert groups.subscription_group_table["CliGroup"] == SubscriptionGroupConfig(
                "CliGroup",
                consume_from_min_enable=False,
                consume_broadcast_enable=False,
                retry_queue_nums=2,
                retry_max_times=5,
                broker_id=1,
                which_broker_when_consume_slowly=3,
                notify_consumer_ids_changed_enable=False,
            )
            code, out, _ = await cli(
                "admin", "updateSubGroup", "-n", ns.addr, "-c", "DefaultCluster",
                "-g", "ClusterGroup", "-s", "false", "-d", "true", "-m", "TRUE",
            )  # fmt: skip
            assert code == 0 and out.startswith(f"create subscription group to {addr} success.\n")
            made = groups.subscription_group_table["ClusterGroup"]
            assert (made.consume_enable, made.consume_broadcast_enable) == (False, True)
            assert made.consume_from_min_enable

            code, out, err = await cli(
                "admin", "updateSubGroup", "-n", ns.addr, "-b", addr, "-g", "G", "-r", "x"
            )
            assert code == 1 and out == "" and "UpdateSubGroupSubCommand command failed" in err
            assert "G" not in groups.subscription_group_table

            code, out, _ = await cli(
                "admin", "deleteSubGroup", "-n", ns.addr, "-b", addr, "-g", "CliGroup"
            )
            assert (code, out) == (
                0,
                f"delete subscription group [CliGroup] from broker [{addr}] success.\n",
            )
            assert "CliGroup" not in groups.subscription_group_table

            # A consumer and a producer say hello; the consumer's heartbeat
            # creates its retry topic, which consumerConnection routes by.
            await BrokerAPI(consumer_client).heartbeat(
                addr,
                HeartbeatData(
                    client_id="10.1.1.1@7",
                    consumer_data_set=(
                        ConsumerData(
                            group_name="ClusterGroup",
                            consume_type=ConsumeType.CONSUME_PASSIVELY,
                            message_model=MessageModel.BROADCASTING,
                            consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                            subscription_data_set=(
                                SubscriptionData.for_expression("CliTopic", "tagA"),
                            ),
                        ),
                    ),
                ),
            )
            await BrokerAPI(producer_client).heartbeat(
                addr,
                HeartbeatData(client_id="10.1.1.2@8", producer_data_set=(ProducerData("CliPG"),)),
            )
            await ns.wait_for(lambda: ns.has_topic("%RETRY%ClusterGroup", "broker-a"))
            consumer_addr = next(iter(consumer_client.connections.values())).local_address
            producer_addr = next(iter(producer_client.connections.values())).local_address

            code, out, err = await cli(
                "admin", "consumerConnection", "-n", ns.addr, "-g", "ClusterGroup"
            )
            assert (code, err) == (0, "")
            assert out == (
                f"001  {'10.1.1.1@7':<32} {consumer_addr:<22} {'JAVA':<8} V4_7_0\n"
                "\nBelow is subscription:"
                f"001  Topic: {'CliTopic':<40} SubExpression: tagA\n"
                "ConsumeType: CONSUME_PASSIVELY\n"
                "MessageModel: BROADCASTING\n"
                "ConsumeFromWhere: CONSUME_FROM_FIRST_OFFSET\n"
            )
            code, out, err = await cli(
                "admin", "producerConnection", "-n", ns.addr, "-g", "CliPG",
                "-t", "%RETRY%ClusterGroup",
            )  # fmt: skip
            assert (code, err) == (0, "")
            assert out == f"0001  {'10.1.1.2@8':<32} {producer_addr:<22} {'JAVA':<8} V4_7_0\n"

            code, out, err = await cli(
                "admin", "producerConnection", "-n", ns.addr, "-g", "NoPG",
                "-t", "%RETRY%ClusterGroup",
            )  # fmt: skip
            assert code == 1 and out == ""
            assert err.startswith("ProducerConnectionSubCommand command failed: ")
            assert "the producer group[NoPG] not exist" in err
            code, out, err = await cli("admin", "consumerConnection", "-n", ns.addr, "-g", "Nobody")
            assert code == 1 and "ConsumerConnectionSubCommand command failed" in err

            code, out, _ = await cli(
                "admin", "deleteSubGroup", "-n", ns.addr, "-c", "DefaultCluster",
                "-g", "ClusterGroup",
            )  # fmt: skip
            assert code == 0
            assert out == (
                f"delete subscription group [ClusterGroup] from broker [{addr}] in cluster "
                "[DefaultCluster] success.\n"
                "delete topic [%RETRY%ClusterGroup] from cluster [DefaultCluster] success.\n"
                "delete topic [%RETRY%ClusterGroup] from NameServer success.\n"
                "delete topic [%DLQ%ClusterGroup] from cluster [DefaultCluster] success.\n"
                "delete topic [%DLQ%ClusterGroup] from NameServer success.\n"
            )
            assert "ClusterGroup" not in groups.subscription_group_table
            assert broker.topic_config_manager.select_topic_config("%RETRY%ClusterGroup") is None


def test_broker_command_with_acl_enabled_and_no_acl_file_refuses_to_start(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "broker.conf"
    properties = {**broker_properties(tmp_path), "aclEnable": "true", "rocketmqHome": str(tmp_path)}
    conf.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
    refused = subprocess.run(
        [sys.executable, "-m", "pyrocket", "broker", "-c", str(conf)],
        cwd=ROOT,
        env=dict(os.environ, HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode != 0
    assert "plain_acl.yml: cannot read the ACL file" in refused.stderr
    assert "boot success" not in refused.stdout
    assert not (tmp_path / "store").exists()  # refused before touching the store
