"""The :class:`~pyrocket.client.admin.Admin` API over real sockets: pyrocket
NameServers and a pyrocket broker on 127.0.0.1, and the walks and analysis
it is built on, as plain functions."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.client import Admin, AdminError, Producer, new_message
from pyrocket.client.admin import (
    CLUSTER_ERROR,
    ClusterBroker,
    NoNameServerError,
    Outcome,
    TopicUpdate,
    UnknownClusterError,
    all_addrs,
    broker_name_of,
    cluster_brokers,
    master_addrs,
    master_slaves,
    process_queue_warnings,
    subscriptions_agree,
)
from pyrocket.errors import ResponseError
from pyrocket.namesrv.kvconfig import NAMESPACE_ORDER_TOPIC_CONFIG
from pyrocket.protocol.bodies.admin import (
    PROP_CONSUME_ORDERLY,
    PROP_CONSUME_TYPE,
    PROP_CONSUMER_START_TIMESTAMP,
    ConsumerRunningInfo,
    ProcessQueueInfo,
    SubscriptionGroupConfig,
)
from pyrocket.protocol.bodies.client import ConsumeType, MessageQueue, SubscriptionData
from pyrocket.protocol.bodies.route import BrokerData, ClusterInfo
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.javahash import hashmap_order
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv
from tests.client.helpers import consumer

CLUSTER = "DefaultCluster"


async def test_topics_across_a_cluster_and_every_namesrv(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with (
            recording_namesrv(tmp_path / "ns1") as ns1,
            recording_namesrv(tmp_path / "ns2") as ns2,
            running_broker(broker_settings(tmp_path, [ns1.addr, ns2.addr])) as broker,
            Admin([ns1.addr, ns2.addr]) as admin,
        ):
            addr = broker.broker_addr
            await ns1.wait_for(lambda: ns1.is_live(addr))
            await ns2.wait_for(lambda: ns2.is_live(addr))
            assert await admin.cluster_brokers() == [ClusterBroker(CLUSTER, "broker-a", 0, addr)]
            assert await admin.master_addrs(CLUSTER) == [addr]
            assert await admin.all_addrs(CLUSTER) == [addr]
            with pytest.raises(UnknownClusterError, match="clusterName exists"):
                await admin.master_addrs("NoSuchCluster")

            done: list[str] = []
            update = await admin.update_topic_in_cluster(
                CLUSTER, TopicConfig("Ordered", 4, 4, order=True), on_broker=done.append
            )
            assert update == TopicUpdate((addr,), "broker-a:4") and done == [addr]
            assert broker.topic_config_manager.select_topic_config("Ordered") is not None
            for ns in (ns1, ns2):
                assert ns.kv_namespace(NAMESPACE_ORDER_TOPIC_CONFIG) == {"Ordered": "broker-a:4"}

            # One broker: its entry is merged with the other brokers' entries.
            await admin.put_order_conf("Merged", "broker-b:2")
            update = await admin.update_topic_on_broker(
                addr, TopicConfig("Merged", 3, 3, order=True)
            )
            assert update == TopicUpdate((addr,), "broker-a:3")
            merged = ns1.kv_namespace(NAMESPACE_ORDER_TOPIC_CONFIG)["Merged"]
            assert sorted(merged.split(";")) == ["broker-a:3", "broker-b:2"]

            await ns1.wait_for(lambda: ns1.has_topic("Merged", "broker-a"))
            status = await admin.topic_status("Merged")
            assert list(status) == [MessageQueue("Merged", "broker-a", i) for i in range(3)]
            assert all(offset.max_offset == 0 for offset in status.values())
            assert await admin.topic_clusters("Merged") == [CLUSTER]
            route = await admin.topic_route("Merged")
            assert await admin.topic_consumer_groups(route, "Merged") == []

            with pytest.raises(UnknownClusterError):
                await admin.delete_topic("Merged", "NoSuchCluster")
            assert broker.topic_config_manager.select_topic_config("Merged") is not None
            await admin.delete_topic("Merged", CLUSTER)
            assert broker.topic_config_manager.select_topic_config("Merged") is None
            for ns in (ns1, ns2):
                assert ns.count(RequestCode.DELETE_TOPIC_IN_NAMESRV) == 1
                assert ns.routes.queue_datas("Merged") == []
            with pytest.raises(ResponseError):
                await admin.topic_status("Merged")  # no route any more


async def test_broker_status_and_configuration(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_broker(broker_settings(tmp_path, [ns.addr])) as broker,
            Admin([ns.addr]) as admin,
        ):
            addr = broker.broker_addr
            await ns.wait_for(lambda: ns.is_live(addr))
            config = await admin.broker_config(addr)
            assert config["brokerName"] == "broker-a" and config["brokerClusterName"] == CLUSTER
            assert await admin.cluster_masters_and_slaves(CLUSTER) == [(addr, [])]

            [outcome] = await admin.cluster_runtime_info(CLUSTER)
            assert outcome.ok and outcome.addr == addr and outcome.value is not None
            assert outcome.value["brokerVersionDesc"] == "V4_7_0"
            totals = await admin.broker_totals(addr)
            assert min(totals.in_today, totals.out_today) >= 0

            assert await admin.update_cluster_config(CLUSTER, {"fileReservedTime": "12"}) == [
                Outcome(addr)
            ]
            assert broker.settings.store.file_reserved_time == 12
            [refused] = await admin.update_cluster_config(CLUSTER, {"storePathRootDir": "/tmp"})
            assert not refused.ok and isinstance(refused.error, ResponseError)
            assert "storePathRootDir" in str(refused.error)
            with pytest.raises(UnknownClusterError):
                await admin.update_cluster_config("NoSuchCluster", {"fileReservedTime": "1"})


async def test_groups_connections_and_running_info(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with (
            recording_namesrv(tmp_path / "ns") as ns_server,
            running_broker(broker_settings(tmp_path, [ns_server.addr])) as broker,
            Admin([ns_server.addr]) as admin,
        ):
            ns = ns_server.addr
            addr = broker.broker_addr
            groups = broker.subscription_group_manager
            await ns_server.wait_for(lambda: ns_server.is_live(addr))
            await admin.update_topic_in_cluster(CLUSTER, TopicConfig("AdminTopic", 4, 4))
            await ns_server.wait_for(lambda: ns_server.has_topic("AdminTopic", "broker-a"))
            async with (
                Producer("AdminPG", [ns]) as producer,
                consumer(ns, "AdminCG", "AdminTopic", "tagA") as push,
            ):
                await producer.send(new_message("AdminTopic", b"x", tags="tagA"))
                # The consumer's heartbeat made its retry topic, which routes the group.
                await ns_server.wait_for(lambda: ns_server.has_topic("%RETRY%AdminCG", "broker-a"))
                outcomes = await admin.update_sub_group_in_cluster(
                    CLUSTER, SubscriptionGroupConfig("AdminSG", retry_queue_nums=2)
                )
                assert outcomes == [Outcome(addr)]
                assert groups.subscription_group_table["AdminSG"].retry_queue_nums == 2
                done: list[str] = []
                assert await admin.delete_sub_group_in_cluster(
                    CLUSTER, "AdminSG", on_broker=done.append
                ) == [addr]
                assert done == [addr] and "AdminSG" not in groups.subscription_group_table

                connection = await admin.consumer_connection("AdminCG")
                assert [c.client_id for c in connection.connection_set] == [push.client_id]
                assert connection.subscription_table["AdminTopic"].sub_string == "tagA"
                producers = await admin.producer_connection("AdminPG", "AdminTopic")
                assert producer.client_id in [c.client_id for c in producers.connection_set]
                with pytest.raises((AdminError, ResponseError)):
                    await admin.consumer_connection("NobodyCG")

                info = await admin.consumer_running_info("AdminCG", push.client_id)
                assert info is not None
                assert [s.topic for s in info.subscription_set if s.topic == "AdminTopic"]
                assert info.properties[PROP_CONSUME_TYPE] == ConsumeType.CONSUME_PASSIVELY.name
                [report] = await admin.consumer_running_infos("AdminCG")
                assert report.client_id == push.client_id and report.error is None
                assert report.info is not None
                assert subscriptions_agree({report.client_id: report.info}, 0)


async def test_namesrv_kv_config_and_write_perm(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with (
            recording_namesrv(tmp_path / "ns1") as ns1,
            recording_namesrv(tmp_path / "ns2") as ns2,
            running_broker(broker_settings(tmp_path, [ns1.addr, ns2.addr])) as broker,
            Admin([ns1.addr, ns2.addr]) as admin,
        ):
            await ns1.wait_for(lambda: ns1.is_live(broker.broker_addr))
            await ns2.wait_for(lambda: ns2.is_live(broker.broker_addr))
            await admin.put_kv_config("NS", "k", "v")
            assert ns1.kv_namespace("NS") == ns2.kv_namespace("NS") == {"k": "v"}
            await admin.delete_kv_config("NS", "k")
            assert ns1.kv_namespace("NS") == ns2.kv_namespace("NS") == {}

            configs = await admin.namesrv_configs()
            assert list(configs) == list(hashmap_order([ns1.addr, ns2.addr], 4))
            assert all("orderMessageEnable" in config for config in configs.values())
            assert await admin.update_namesrv_config({"orderMessageEnable": "true"}) == [
                ns1.addr,
                ns2.addr,
            ]
            assert ns1.server.config.order_message_enable and ns2.server.config.order_message_enable
            # A refusal is raised once every NameServer was asked.
            with pytest.raises(ResponseError, match="kvConfigPath"):
                await admin.update_namesrv_config({"kvConfigPath": "/elsewhere"})
            assert ns1.count(RequestCode.UPDATE_NAMESRV_CONFIG) == 2
            assert ns2.count(RequestCode.UPDATE_NAMESRV_CONFIG) == 2

            wiped = await admin.wipe_write_perm("broker-a")
            assert [(o.addr, o.ok) for o in wiped] == [(ns1.addr, True), (ns2.addr, True)]
            assert all(o.value is not None and o.value >= 1 for o in wiped)


async def test_no_namesrv_fails_only_calls_that_need_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NAMESRV_ADDR", raising=False)
    with trio.fail_after(20):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_broker(broker_settings(tmp_path, [ns.addr])) as broker,
        ):
            async with Admin() as admin:
                with pytest.raises(NoNameServerError, match="no name server address"):
                    await admin.cluster_info()
                stats = await admin.broker_runtime_info(broker.broker_addr)
                assert stats["brokerVersionDesc"] == "V4_7_0"
            assert Admin(f"{ns.addr};10.0.0.1:9876").namesrv_addresses == [ns.addr, "10.0.0.1:9876"]
            monkeypatch.setenv("NAMESRV_ADDR", f" {ns.addr} ;")
            async with Admin() as admin:
                assert admin.namesrv_addresses == [ns.addr]
                info = await admin.cluster_info()
                assert list(info.cluster_addr_table or {}) == [CLUSTER]


def _two_clusters() -> ClusterInfo:
    return ClusterInfo(
        broker_addr_table={
            "b-2": BrokerData("C1", "b-2", {0: "10.0.0.2:1", 1: "10.0.0.3:1"}),
            "b-1": BrokerData("C1", "b-1", {1: "10.0.0.5:1"}),
            "b-9": BrokerData("C2", "b-9", {0: "10.0.0.9:1"}),
        },
        cluster_addr_table={"C1": ("b-2", "b-1"), "C2": ("b-9", None)},
    )


def test_walks_over_the_cluster_table() -> None:
    info = _two_clusters()
    brokers = cluster_brokers(info)
    # Clusters in HashMap order, names sorted, every address once.
    assert [b.cluster for b in brokers] == sorted(
        (b.cluster for b in brokers), key=list(hashmap_order(["C1", "C2"])).index
    )
    assert [(b.broker_name, b.broker_id) for b in brokers if b.cluster == "C1"] == [
        ("b-1", 1),
        ("b-2", 0),
        ("b-2", 1),
    ]
    assert sorted(master_addrs(info, "C1") or []) == ["10.0.0.2:1"]
    assert sorted(all_addrs(info, "C1") or []) == ["10.0.0.2:1", "10.0.0.3:1", "10.0.0.5:1"]
    assert master_addrs(info, "C3") is None and all_addrs(info, "C3") is None
    # A broker without a master is listed under "None" (str of the missing key).
    assert sorted(master_slaves(info, "C1") or []) == [
        ("10.0.0.2:1", ["10.0.0.3:1"]),
        ("None", ["10.0.0.5:1"]),
    ]
    assert broker_name_of(info, "10.0.0.3:1") == "b-2"
    with pytest.raises(UnknownClusterError, match=CLUSTER_ERROR):
        broker_name_of(info, "10.9.9.9:1")


def _push_info(
    subscriptions: tuple[SubscriptionData, ...],
    queues: dict[MessageQueue, ProcessQueueInfo],
    *,
    started: int = 0,
    orderly: bool = False,
) -> ConsumerRunningInfo:
    return ConsumerRunningInfo(
        properties={
            PROP_CONSUME_TYPE: ConsumeType.CONSUME_PASSIVELY.name,
            PROP_CONSUMER_START_TIMESTAMP: str(started),
            PROP_CONSUME_ORDERLY: "true" if orderly else "false",
        },
        subscription_set=subscriptions,
        mq_table=queues,
    )


def test_running_info_analysis() -> None:
    now = 10 * 60 * 1000
    sub_a = SubscriptionData.for_expression("A", "*", sub_version=1)
    sub_b = SubscriptionData.for_expression("B", "*", sub_version=1)
    alike = {"c1": _push_info((sub_a,), {}), "c2": _push_info((sub_a,), {})}
    assert subscriptions_agree(alike, now)
    differ = {"c1": _push_info((sub_a,), {}), "c2": _push_info((sub_b,), {})}
    assert not subscriptions_agree(differ, now)
    # Started under two minutes ago: too early to tell.
    assert subscriptions_agree({k: _push_info(v.subscription_set, {}, started=now - 1000)
                                for k, v in differ.items()}, now)  # fmt: skip

    queue = MessageQueue("A", "b-1", 3)
    stuck = ProcessQueueInfo(cached_msg_count=5, last_consume_timestamp=now - 61_000)
    fresh = ProcessQueueInfo(cached_msg_count=5, last_consume_timestamp=now - 1_000)
    assert process_queue_warnings("c1", _push_info((sub_a,), {queue: fresh}), now) == ""
    warning = process_queue_warnings("c1", _push_info((sub_a,), {queue: stuck}), now)
    assert warning == (
        "c1 MessageQueue [topic=A, brokerName=b-1, queueId=3] can't consume for a while, "
        "maybe blocked, 61000ms\n"
    )
    unlocked = ProcessQueueInfo(locked=False, last_lock_timestamp=now - 500)
    orderly = _push_info((sub_a,), {queue: unlocked}, orderly=True)
    assert process_queue_warnings("c1", orderly, now).endswith("can't lock for a while, 500ms\n")
