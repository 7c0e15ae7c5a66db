"""``pyrocket admin`` offset and statistics commands against a running
NameServer and broker: resetOffsetByTime (online and the old-style
fallback), getConsumerStatus, statsAll, brokerConsumeStats, cleanExpiredCQ
and cleanUnusedTopic, printing mqadmin's layout."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import trio

from pyrocket.broker.statsitems import SamplingSchedule
from pyrocket.cli.admin_ops import front, parse_timestamp
from pyrocket.client.producer import Producer, new_message
from pyrocket.protocol.message import tags_hash_code
from tests.cli.test_broker_cli import cli
from tests.client.helpers import consumer, running_up

TOPIC = "CliOpsTopic"


def test_timestamps_and_columns() -> None:
    assert parse_timestamp("1700000000123") == 1700000000123
    local = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000).astimezone()
    assert parse_timestamp("2024-05-06#07:08:09:123") == int(local.timestamp() * 1000)
    assert front("abcdef", 3) == "abc" and front("ab", 3) == "ab"


async def test_offset_and_stats_commands(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with running_up(tmp_path) as running:
            ns, broker = running.namesrv_addr, running.broker
            addr = broker.broker_addr
            async with Producer("cli_pg", [ns], client_ip="127.0.0.1") as producer:
                for i in range(6):
                    await producer.send(new_message(TOPIC, f"m{i}".encode()))
            async with consumer(ns, "cli_cg", TOPIC) as reader:
                for _ in range(6):
                    await reader.receive()
                await reader.commit()
                code, out, err = await cli(
                    "admin", "resetOffsetByTime", "-n", ns, "-g", "cli_cg", "-t", TOPIC,
                    "-s", "0",
                )  # fmt: skip
                assert (code, err) == (0, "")
                lines = out.splitlines()
                assert lines[0] == (
                    f"rollback consumer offset by specified group[cli_cg], topic[{TOPIC}], "
                    "force[true], timestamp(string)[0], timestamp(long)[0]"
                )
                assert lines[1] == f"{'#brokerName':<40}  {'#queueId':<40}  {'#offset':<40}"
                name = broker.settings.broker.broker_name
                assert sorted(lines[2:]) == sorted(
                    f"{name:<40}  {q:<40}  {0:<40}" for q in range(4)
                )
                for _ in range(6):
                    await reader.receive()
                await reader.commit()
                code, out, err = await cli(
                    "admin", "getConsumerStatus", "-n", ns, "-g", "cli_cg", "-t", TOPIC
                )
                assert (code, err) == (0, "")
                lines = out.splitlines()
                assert lines[0] == (
                    f"get consumer status from client. group=cli_cg, topic={TOPIC}, originClientId="
                )
                assert len(lines) == 2 + 4
                assert all(line.startswith(reader.client_id) for line in lines[2:])
            # Offline now: the old-style reset writes the offsets itself.
            code, out, err = await cli(
                "admin", "resetOffsetByTime", "-n", ns, "-g", "cli_cg", "-t", TOPIC, "-s", "0",
            )  # fmt: skip
            assert (code, err) == (0, "")
            lines = out.splitlines()
            assert lines[0].startswith(
                f"rollback consumer offset by specified consumerGroup[cli_cg], topic[{TOPIC}]"
            )
            assert lines[1].split() == [
                "#brokerName", "#queueId", "#brokerOffset", "#consumerOffset",
                "#timestampOffset", "#rollbackOffset",
            ]  # fmt: skip
            rows = [line.split() for line in lines[2:]]
            assert len(rows) == 4 and all(row[4] == row[5] == "0" for row in rows)
            assert sum(int(row[3]) for row in rows) == 6
            offsets = broker.data_plane.consumer_offset_manager  # type: ignore[union-attr]
            assert all(offsets.query_offset("cli_cg", TOPIC, q) == 0 for q in range(4))

            # The same with resetOffsetByTimeOld, to the queues' ends (-1; a
            # numeric timestamp: mqadmin's command does nothing then).
            code, out, err = await cli(
                "admin", "resetOffsetByTimeOld", "-n", ns, "-g", "cli_cg", "-t", TOPIC,
                "-s", "-1",
            )  # fmt: skip
            assert (code, err) == (0, "")
            rows = [line.split() for line in out.splitlines()[2:]]
            assert sum(int(row[5]) for row in rows) == 6
            code, out, err = await cli(
                "admin", "resetOffsetByTimeOld", "-n", ns, "-g", "cli_cg", "-t", TOPIC,
                "-s", "yesterday",
            )  # fmt: skip
            assert (code, out, err) == (0, "specified timestamp invalid.\n", "")
            code, out, err = await cli(
                "admin", "resetOffsetByTime", "-n", ns, "-g", "cli_cg", "-t", TOPIC, "-s", "0",
            )  # fmt: skip
            assert code == 0 and all(
                offsets.query_offset("cli_cg", TOPIC, q) == 0 for q in range(4)
            )

            now = broker.now_ms() + 10_000
            broker.stats_manager.sample(SamplingSchedule(now).due(now), now)
            code, out, err = await cli("admin", "statsAll", "-n", ns, "-t", TOPIC)
            assert (code, err) == (0, "")
            header, *rows_text = out.splitlines()
            assert header.split() == [
                "#Topic", "#Consumer", "Group", "#Accumulation", "#InTPS", "#OutTPS",
                "#InMsg24Hour", "#OutMsg24Hour",
            ]  # fmt: skip
            (row,) = rows_text
            # 6 in and 12 out (read twice); everything is back to unread.
            assert row.split() == [TOPIC, "cli_cg", "6", "0.60", "1.20", "6", "12"]

            code, out, err = await cli("admin", "brokerConsumeStats", "-n", ns, "-b", addr)
            assert (code, err) == (0, "")
            lines = out.splitlines()
            assert lines[0].split()[:3] == ["#Topic", "#Group", "#Broker"]
            assert lines[-1] == "Diff Total: 6"
            # Lines only for queues with a consumed message: none after the reset.
            assert [line for line in lines[1:-2] if TOPIC in line] == []

            for command in ("cleanExpiredCQ", "cleanUnusedTopic"):
                code, out, err = await cli("admin", command, "-n", ns, "-b", addr)
                assert (code, out, err) == (0, "success", "")
            # By cluster: every broker of it (mqadmin's cleanUnusedTopic
            # would take the cluster name for an address).
            del broker.topic_config_manager.topic_config_table[TOPIC]
            cluster = broker.settings.broker.broker_cluster_name
            code, out, err = await cli("admin", "cleanUnusedTopic", "-n", ns, "-c", cluster)
            assert (code, out, err) == (0, "success", "")
            assert all(broker.store.consume_queue(TOPIC, q) is None for q in range(4))


async def test_query_cq_prints_the_entries_as_mqadmin(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns, broker = running.namesrv_addr, running.broker
            async with Producer("cq_pg", [ns], client_ip="127.0.0.1") as producer:
                results = [
                    await producer.send(new_message(TOPIC, b"x" * (10 + i), tags="TagA"))
                    for i in range(8)
                ]
            on_queue_1 = [r for r in results if r.queue is not None and r.queue.queue_id == 1]
            assert on_queue_1
            code, out, err = await cli(
                "admin", "queryCq", "-n", ns, "-t", TOPIC, "-q", "1", "-i", "0", "-c", "5"
            )
            assert (code, err) == (0, "")
            lines = out.splitlines()
            rule = "=" * 38
            maximum = broker.store.get_max_offset_in_queue(TOPIC, 1)
            assert maximum == len(on_queue_1)
            assert lines[:3] == ["Queue data: ", f"max: {maximum}, min: 0", rule]
            entries = lines[3:]
            shown = min(5, maximum)
            assert len(entries) == 3 * shown
            offsets = []
            for number in range(shown):
                idx, entry, end = entries[3 * number : 3 * number + 3]
                assert (idx, end) == (f"idx: {number}", rule)
                match = re.fullmatch(
                    r"ConsumeQueueData\{physicOffset=(\d+), physicSize=(\d+), "
                    r"tagsCode=(-?\d+), extendDataJson='null', bitMap='null', "
                    r"eval=false, msg='null'\}",
                    entry,
                )
                assert match, entry
                assert int(match[3]) == tags_hash_code("TagA")
                assert int(match[2]) > 0
                offsets.append(int(match[1]))
            assert offsets == sorted(offsets) and len(set(offsets)) == shown
            # -b names the broker. An index past the end: the broker answers
            # with no body and its remark (mqadmin fails decoding nothing).
            code, out, err = await cli(
                "admin", "queryCq", "-n", ns, "-t", TOPIC, "-q", "1", "-i", str(maximum),
                "-b", broker.broker_addr,
            )  # fmt: skip
            assert (code, out) == (1, "")
            assert f"Index {maximum} of 1@{TOPIC} is not exist!" in err
