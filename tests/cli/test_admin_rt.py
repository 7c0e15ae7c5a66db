"""``pyrocket admin`` sendMsgStatus, checkMsgSendRT and clusterRT against an
in-process NameServer and broker: mqadmin's layout and the messages stored."""

from __future__ import annotations

import io
import re
from pathlib import Path

import trio

from pyrocket.cli import build_parser
from pyrocket.cli.admin_rt import cluster_rt, java_fixed2, jodie_body
from pyrocket.client.admin import Admin
from tests.cli.test_broker_cli import cli
from tests.client.helpers import running_up


def test_bodies_and_averages() -> None:
    assert jodie_body(16) == b"hello jodiehello jodie"
    assert jodie_body(11) == b"hello jodie" and jodie_body(0) == b""
    assert java_fixed2(float("nan")) == "NaN" and java_fixed2(2.5) == "2.50"


async def test_send_msg_status_sends_to_the_broker_topic(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            store = running.broker.store
            code, out, err = await cli(
                "admin", "sendMsgStatus", "-n", ns, "-b", "broker-a", "-c", "3", "-s", "20"
            )
            assert (code, err) == (0, "")
            pattern = re.compile(
                r"rt:\d+ms, SendResult=SendResult \[sendStatus=SEND_OK, msgId=[0-9A-F]{32}, "
                r"offsetMsgId=[0-9A-F]{32}, messageQueue=MessageQueue \[topic=broker-a, "
                r"brokerName=broker-a, queueId=0\], queueOffset=(\d+)\]"
            )
            found = pattern.findall(out)
            assert found == ["1", "2", "3"] and pattern.sub("", out) == ""
            assert store.get_max_offset_in_queue("broker-a", 0) == 4


async def test_check_msg_send_rt_goes_round_the_queues(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            store = running.broker.store
            code, out, _ = await cli("admin", "sendMessage", "-n", ns, "-t", "RtTopic", "-p", "x")
            assert code == 0
            code, out, err = await cli(
                "admin", "checkMsgSendRT", "-n", ns, "-t", "RtTopic", "-a", "5", "-s", "10"
            )
            assert (code, err) == (0, "")
            lines = out.splitlines()
            assert lines[0] == f"{'#Broker Name':<32}  {'#QID':<4}  {'#Send Result':<20}    #RT"
            rows = [re.fullmatch(r"(.{32})  (.{4})  (.{20})    (\d+)", line) for line in lines[1:6]]
            assert all(rows)
            cells = [[g.strip() for g in row.groups()] for row in rows if row]
            assert [c[:3] for c in cells] == [
                ["broker-a", str(i % 4), "true"] for i in (0, 1, 2, 3, 4)
            ]
            assert re.fullmatch(r"Avg RT: \d+\.\d\d", lines[6]) and len(lines) == 7
            assert sum(store.get_max_offset_in_queue("RtTopic", q) for q in range(4)) == 6


async def test_cluster_rt_prints_each_round_until_stopped(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            store = running.broker.store
            parser = build_parser()
            for flags, pattern in (
                ([], r"DefaultCluster {10}  broker-a {16}  \d+\.\d\d {4}  3 {15}  0 {15}"),
                (["-p", "true", "-m", "roomA"],
                 r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\|roomA\|DefaultCluster\|broker-a\|\d+"),
            ):  # fmt: skip
                args = parser.parse_args(
                    ["admin", "clusterRT", "-n", ns, "-a", "3", "-s", "8", "-i", "1", *flags]
                )
                out = io.StringIO()
                async with Admin(ns) as admin:
                    with trio.move_on_after(1.5):
                        await cluster_rt(admin, args, out)
                lines = out.getvalue().splitlines()
                if not flags:
                    assert lines.pop(0) == (
                        f"{'#Cluster Name':<24}  {'#Broker Name':<24}  {'#RT':<4}  "
                        f"{'#successCount':<8}  {'#failCount':<8}"
                    )
                assert len(lines) == 2  # a round at once, another a second later
                assert all(re.fullmatch(pattern, line) for line in lines), lines
            assert store.get_max_offset_in_queue("broker-a", 0) == 12

            args = parser.parse_args(["admin", "clusterRT", "-n", ns, "-s", "8", "-c", "Nope"])
            out = io.StringIO()
            async with Admin(ns) as admin:
                with trio.move_on_after(0.5):
                    await cluster_rt(admin, args, out)
            assert out.getvalue().endswith("cluster [Nope] not exist")
