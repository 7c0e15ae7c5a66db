"""The topic table: Java's system topics, topics.json, versions and the
auto-creation helpers of the message path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from pyrocket.broker.config import BrokerConfig, BrokerSettings
from pyrocket.broker.outer_api import NamesrvOutcome
from pyrocket.broker.registration import RegistrationService
from pyrocket.broker.topic_config import (
    TopicConfigManager,
    perm_to_string,
    topic_error,
    topics_json_path,
)
from pyrocket.errors import ConfigError
from pyrocket.protocol.bodies.topic import (
    KVTable,
    RegisterBrokerResult,
    TopicConfig,
    TopicConfigSerializeWrapper,
    TopicFilterType,
)

CONFIG = BrokerConfig(broker_name="broker-a", broker_cluster_name="DefaultCluster")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        self.now += 1
        return self.now


def manager(tmp_path: Path, config: BrokerConfig = CONFIG) -> TopicConfigManager:
    return TopicConfigManager(config, topics_json_path(tmp_path), now_ms=Clock())


def test_system_topics_in_java_order_and_settings(tmp_path: Path) -> None:
    topics = manager(tmp_path)
    table = topics.topic_config_table
    # The ConcurrentHashMap(1024) iteration order a Java 4.7 broker registers.
    assert list(table) == [
        "SELF_TEST_TOPIC",
        "DefaultCluster",
        "DefaultCluster_REPLY_TOPIC",
        "broker-a",
        "TBW102",
        "BenchmarkTest",
        "OFFSET_MOVED_EVENT",
    ]
    assert table["TBW102"] == TopicConfig("TBW102", 8, 8, 7)
    assert table["DefaultCluster"] == TopicConfig("DefaultCluster", 16, 16, 7)
    assert table["broker-a"] == TopicConfig("broker-a", 1, 1, 7)
    assert table["BenchmarkTest"] == TopicConfig("BenchmarkTest", 1024, 1024, 6)
    assert all(topics.is_system_topic(name) for name in table)
    assert topics.data_version.counter == 0


def test_system_topics_follow_the_config(tmp_path: Path) -> None:
    config = BrokerConfig(
        broker_name="b",
        broker_cluster_name="C",
        auto_create_topic_enable=False,
        cluster_topic_enable=False,
        broker_topic_enable=False,
        trace_topic_enable=True,
        default_topic_queue_nums=4,
    )
    table = manager(tmp_path, config).topic_config_table
    assert "TBW102" not in table
    assert table["C"].perm == 1 and table["b"].perm == 1
    assert table["RMQ_SYS_TRACE_TOPIC"] == TopicConfig("RMQ_SYS_TRACE_TOPIC", 1, 1, 6)
    assert "C_REPLY_TOPIC" in table


def test_pretty_file_layout_is_javas(tmp_path: Path) -> None:
    topics = manager(tmp_path, BrokerConfig(broker_name="b", auto_create_topic_enable=True))
    for name in list(topics.topic_config_table):
        del topics.topic_config_table[name]
    topics.topic_config_table["T"] = TopicConfig("T", 2, 3, 6)
    topics.data_version = topics.data_version.__class__(1795288115303, 2)
    assert topics.encode(pretty=True) == (
        "{\n"
        '\t"dataVersion":{\n'
        '\t\t"counter":2,\n'
        '\t\t"timestamp":1795288115303\n'
        "\t},\n"
        '\t"topicConfigTable":{\n'
        '\t\t"T":{\n'
        '\t\t\t"order":false,\n'
        '\t\t\t"perm":6,\n'
        '\t\t\t"readQueueNums":2,\n'
        '\t\t\t"topicFilterType":"SINGLE_TAG",\n'
        '\t\t\t"topicName":"T",\n'
        '\t\t\t"topicSysFlag":0,\n'
        '\t\t\t"writeQueueNums":3\n'
        "\t\t}\n"
        "\t}\n"
        "}"
    )
    assert topics.encode() == (
        '{"dataVersion":{"counter":2,"timestamp":1795288115303},"topicConfigTable":'
        '{"T":{"order":false,"perm":6,"readQueueNums":2,"topicFilterType":"SINGLE_TAG",'
        '"topicName":"T","topicSysFlag":0,"writeQueueNums":3}}}'
    )


async def test_topics_survive_a_restart(tmp_path: Path) -> None:
    topics = manager(tmp_path)
    await topics.update_topic_config(TopicConfig("Orders", 4, 4, 6, TopicFilterType.MULTI_TAG))
    await topics.update_topic_config(TopicConfig("Orders", 4, 8, 6))
    await topics.delete_topic_config("BenchmarkTest")
    assert topics.data_version.counter == 3
    path = topics_json_path(tmp_path)
    assert path.exists() and (path.parent / "topics.json.bak").exists()

    again = manager(tmp_path)
    again.load()
    assert again.topic_config_table["Orders"] == TopicConfig("Orders", 4, 8, 6)
    assert again.data_version == topics.data_version
    # A deleted system topic comes back at start, as in Java.
    assert "BenchmarkTest" in again.topic_config_table
    assert set(again.topic_config_table) == set(topics.topic_config_table) | {"BenchmarkTest"}


async def test_corrupt_topics_json_is_reported_not_replaced(tmp_path: Path) -> None:
    topics = manager(tmp_path)
    await topics.update_topic_config(TopicConfig("Orders", 4, 4, 6))
    path = topics_json_path(tmp_path)
    damaged = path.read_bytes()[:-20] + b"\x00garbage"
    path.write_bytes(damaged)
    with pytest.raises(ConfigError, match=r"topics\.json"):
        manager(tmp_path).load()
    assert path.read_bytes() == damaged
    wrong_type = b'{"topicConfigTable":{"X":{"perm":"rw"}}}'
    path.write_bytes(wrong_type)
    with pytest.raises(ConfigError, match="perm"):
        manager(tmp_path).load()


async def test_backup_is_used_when_the_file_is_missing(tmp_path: Path) -> None:
    topics = manager(tmp_path)
    await topics.update_topic_config(TopicConfig("A", 1, 1, 6))
    await topics.update_topic_config(TopicConfig("B", 1, 1, 6))
    path = topics_json_path(tmp_path)
    path.write_bytes(b"")  # an interrupted write
    again = manager(tmp_path)
    again.load()
    assert "A" in again.topic_config_table and "B" not in again.topic_config_table


async def test_auto_create_from_tbw102(tmp_path: Path) -> None:
    created: list[int] = []
    topics = manager(tmp_path)
    topics.on_topic_created = lambda: created.append(1)
    config = await topics.create_topic_in_send_message_method("New", "TBW102", "1.2.3.4:5", 4, 0)
    assert config == TopicConfig("New", 4, 4, 6)
    assert created == [1] and topics.data_version.counter == 1
    # Queue numbers are capped by the default topic's write queues.
    big = await topics.create_topic_in_send_message_method("Big", "TBW102", "x", 100, 0)
    assert big is not None and big.write_queue_nums == 8
    again = await topics.create_topic_in_send_message_method("New", "TBW102", "x", 2, 0)
    assert again == config and created == [1, 1]
    # A default topic without the inherit bit creates nothing.
    assert (
        await topics.create_topic_in_send_message_method("X", "SELF_TEST_TOPIC", "x", 4, 0) is None
    )
    assert await topics.create_topic_in_send_message_method("X", "Nope", "x", 4, 0) is None
    assert "X" not in topics.topic_config_table


async def test_auto_create_off_strips_tbw102_inheritance(tmp_path: Path) -> None:
    topics = manager(tmp_path)
    await topics.update_topic_config(TopicConfig("TBW102", 8, 8, 7))
    off = TopicConfigManager(
        BrokerConfig(broker_name="broker-a", auto_create_topic_enable=False),
        topics_json_path(tmp_path),
    )
    off.load()
    assert await off.create_topic_in_send_message_method("New", "TBW102", "x", 4, 0) is None
    assert off.topic_config_table["TBW102"].perm == 6


async def test_retry_and_transaction_topics(tmp_path: Path) -> None:
    topics = manager(tmp_path)
    retry = await topics.create_topic_in_send_message_back_method("%RETRY%g", 1, 6, 0)
    assert retry == TopicConfig("%RETRY%g", 1, 1, 6)
    assert await topics.create_topic_in_send_message_back_method("%RETRY%g", 3, 2, 0) is retry
    check = await topics.create_topic_of_tran_check_max_time(1, 6)
    assert check.topic_name == "TRANS_CHECK_MAX_TIME_TOPIC"
    assert topics.data_version.counter == 2


async def test_order_flags_follow_the_namesrv_table(tmp_path: Path) -> None:
    topics = manager(tmp_path)
    await topics.update_topic_config(TopicConfig("Ordered", 4, 4, 6))
    await topics.update_order_topic_config(KVTable({"Ordered": "broker-a:4"}))
    assert topics.is_order_topic("Ordered")
    version = topics.data_version
    await topics.update_order_topic_config(KVTable({"Ordered": "broker-a:4"}))
    assert topics.data_version == version  # no change, no new version
    await topics.update_order_topic_config(KVTable({}))
    assert not topics.is_order_topic("Ordered")
    await topics.update_order_topic_config(None)
    assert not topics.is_order_topic("Ordered")


async def test_unit_flags(tmp_path: Path) -> None:
    topics = manager(tmp_path)
    await topics.update_topic_config(TopicConfig("U", 1, 1, 6))
    await topics.update_topic_unit_flag("U", True)
    await topics.update_topic_unit_sub_flag("U", True)
    assert topics.topic_config_table["U"].topic_sys_flag == 3
    await topics.update_topic_unit_flag("U", False)
    assert topics.topic_config_table["U"].topic_sys_flag == 2


def test_topic_validation_remarks() -> None:
    assert topic_error("Good_topic-1%|") is None
    assert topic_error(" ") == "The specified topic is blank."
    assert topic_error("bad topic") == (
        "The specified topic contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
    )
    assert topic_error("x" * 128) == "The specified topic is longer than topic max length."
    assert topic_error("TBW102") == (
        "The specified topic is conflict with AUTO_CREATE_TOPIC_KEY_TOPIC."
    )
    assert perm_to_string(7) == "RWX" and perm_to_string(4) == "R--"


class OnewayRounds:
    """A BrokerOuterAPI stand-in: records the topics of each oneway round."""

    def __init__(self) -> None:
        self.namesrv_addresses = ["ns1:9876"]
        self.oneway_tables: list[set[str]] = []

    async def register_broker_all(
        self, identity: object, wrapper: TopicConfigSerializeWrapper, *a: Any, **kw: Any
    ) -> list[NamesrvOutcome]:
        if kw["oneway"]:
            self.oneway_tables.append(set(wrapper.topic_config_table))
        await trio.sleep(0.01)  # a round takes a while: triggers pile up meanwhile
        result = None if kw["oneway"] else RegisterBrokerResult()
        return [NamesrvOutcome(addr, result=result) for addr in self.namesrv_addresses]


async def test_a_burst_of_auto_created_topics_shares_writes_and_registrations(
    tmp_path: Path,
) -> None:
    topics = manager(tmp_path)
    api = OnewayRounds()
    settings = BrokerSettings.from_properties({"storePathRootDir": str(tmp_path)})
    registration = RegistrationService(api, topics, lambda: settings)  # type: ignore[arg-type]
    topics.on_topic_created = registration.trigger_oneway
    path = topics_json_path(tmp_path)
    names = [f"Burst{i}" for i in range(300)]

    async def send_to_new_topic(name: str) -> None:
        config = await topics.create_topic_in_send_message_method(name, "TBW102", "x", 4, 0)
        assert config is not None
        # Created topics are in topics.json before the send goes on.
        assert f'"{name}"' in path.read_text()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(topics.writer.run)
            await nursery.start(registration.run)
            async with trio.open_nursery() as sends:
                for name in names:
                    sends.start_soon(send_to_new_topic, name)
            writes = topics.writer.rounds
            await trio.sleep(0.2)  # the pending oneway round, if any
            nursery.cancel_scope.cancel()
    assert 1 <= writes <= len(names) // 10
    # One oneway registration per burst of triggers, not per topic; the last
    # one carries every topic.
    assert 1 <= len(api.oneway_tables) <= len(names) // 10
    assert set(names) <= api.oneway_tables[-1]
    again = manager(tmp_path)
    again.load()
    assert set(names) <= set(again.topic_config_table)


async def test_a_topics_json_that_cannot_be_written_is_logged_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "config"
    blocker.write_text("a file where the config directory should be")
    topics = TopicConfigManager(CONFIG, blocker / "topics.json", now_ms=Clock())
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(topics.writer.run)
            # Java logs a failed persist and goes on: so does the manager.
            await topics.update_topic_config(TopicConfig("A", 1, 1, 6))
            assert topics.writer.dirty
            assert any("topics.json" in r.getMessage() for r in caplog.records)
            blocker.unlink()
            await topics.update_topic_config(TopicConfig("B", 1, 1, 6))
            assert not topics.writer.dirty
            nursery.cancel_scope.cancel()
    again = TopicConfigManager(CONFIG, blocker / "topics.json")
    again.load()
    assert {"A", "B"} <= set(again.topic_config_table)
