"""``pyrocket admin`` offset and statistics commands against a running
NameServer and broker: resetOffsetByTime (online and the old-style
fallback), getConsumerStatus, statsAll, brokerConsumeStats, cleanExpiredCQ
and cleanUnusedTopic, printing mqadmin's layout."""

from __future__ import annotations

import datetime
from pathlib import Path

import trio

from pyrocket.broker.statsitems import SamplingSchedule
from pyrocket.cli.admin_ops import front, parse_timestamp
from pyrocket.client.producer import Producer, new_message
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
