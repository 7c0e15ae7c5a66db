"""``pyrocket produce`` and ``pyrocket consume`` as processes against
``pyrocket up``: what one sends the other prints, with tags, keys and
properties, and failures are reported with exit status 1."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
from pathlib import Path

import pytest
import trio

from pyrocket.cli.clients import consume_start, consume_timestamp, register
from pyrocket.client.instance import ClientError
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from tests.client.helpers import running_up

ROOT = Path(__file__).resolve().parents[2]


async def pyrocket(*args: str, stdin: bytes = b"", seconds: float = 30) -> tuple[int, str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("NAMESRV_ADDR", None)
    with trio.fail_after(seconds):
        result = await trio.run_process(
            [sys.executable, "-m", "pyrocket", "--log-level", "WARNING", *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=ROOT,
            env=env,
        )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_produce_then_consume(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            status, out, err = await pyrocket(
                "produce", "-n", ns, "-t", "CliTopic", "--tags", "TagA", "--keys", "k1 k2",
                "-p", "origin=cli", "-c", "2", "--json", "one", "two",
            )  # fmt: skip
            assert status == 0, err
            results = [json.loads(line) for line in out.splitlines()]
            assert len(results) == 4 and {r["status"] for r in results} == {"SEND_OK"}
            assert {r["topic"] for r in results} == {"CliTopic"}

            status, out, err = await pyrocket(
                "produce", "-n", ns, "-t", "CliTopic", "--tags", "TagB", stdin=b"three\nfour\n"
            )
            assert status == 0, err
            lines = out.splitlines()
            assert len(lines) == 2
            assert re.fullmatch(
                r"SendResult \[sendStatus=SEND_OK, msgId=[0-9A-F]{32}, offsetMsgId=[0-9A-F]{32}, "
                r"messageQueue=MessageQueue \[topic=CliTopic, brokerName=broker-a, queueId=\d\], "
                r"queueOffset=\d+\]",
                lines[0],
            ), lines[0]

            status, out, err = await pyrocket(
                "consume", "-n", ns, "-t", "CliTopic", "-g", "cli_group", "-s", "TagA",
                "-c", "4", "--from-first", "--json",
            )  # fmt: skip
            assert status == 0, err
            messages = [json.loads(line) for line in out.splitlines()]
            assert sorted(m["body"] for m in messages) == ["one", "one", "two", "two"]
            assert {m["keys"] for m in messages} == {"k1 k2"}
            assert {m["properties"]["origin"] for m in messages} == {"cli"}

            status, out, err = await pyrocket(
                "consume",
                "-n",
                ns,
                "-t",
                "CliTopic",
                "-g",
                "cli_group_b",
                "-c",
                "6",
                "--from-first",
            )
            assert status == 0, err
            assert sorted(line.rsplit("body=", 1)[1] for line in out.splitlines()) == [
                "four", "one", "one", "three", "two", "two",
            ]  # fmt: skip


async def test_consume_from(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            status, _, err = await pyrocket("produce", "-n", ns, "-t", "FromTopic", "-c", "4", "m")
            assert status == 0, err
            # A new group of a queue still in memory starts at 0 whatever it
            # asks for (the broker answers offset 0, as Java's does).
            for start in ("first", "timestamp"):
                status, out, err = await pyrocket(
                    "consume", "-n", ns, "-t", "FromTopic", "-g", f"from_{start}", "-c", "4",
                    "--from", start, "--json",
                )  # fmt: skip
                assert status == 0, err
                assert [json.loads(line)["body"] for line in out.splitlines()] == ["m"] * 4
    status, _, err = await pyrocket(
        "consume", "-n", "127.0.0.1:1", "-t", "T", "-g", "g", "--timestamp", "yesterday"
    )
    assert status == 1 and "--timestamp yesterday" in err


async def test_consume_broadcast(tmp_path: Path) -> None:
    offsets = tmp_path / "offsets"
    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            status, _, err = await pyrocket("produce", "-n", ns, "-t", "BcTopic", "-c", "3", "b")
            assert status == 0, err
            # Two runs of one broadcasting group each get every message; the
            # second run of instance "x" resumes from its offset file.
            base = ["consume", "-n", ns, "-t", "BcTopic", "-g", "bc_group", "--broadcast"]
            base += ["--from-first", "--offset-dir", str(offsets), "--json"]
            for instance in ("x", "y"):
                status, out, err = await pyrocket(*base, "--instance", instance, "-c", "3")
                assert status == 0, err
                assert [json.loads(line)["body"] for line in out.splitlines()] == ["b"] * 3
            status, _, err = await pyrocket("produce", "-n", ns, "-t", "BcTopic", "c")
            assert status == 0, err
            status, out, err = await pyrocket(*base, "--instance", "x", "-c", "1")
            assert status == 0, err
            assert [json.loads(line)["body"] for line in out.splitlines()] == ["c"]
    assert sorted(p.name.rsplit("@", 1)[1] for p in offsets.iterdir()) == ["x", "y"]
    assert all((p / "bc_group" / "offsets.json").exists() for p in offsets.iterdir())


def test_consume_start_settings() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    base = ["consume", "-t", "T", "-g", "g"]
    assert consume_start(parser.parse_args(base)) == (
        ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
        None,
    )
    assert consume_start(parser.parse_args([*base, "--from-first"]))[0] is (
        ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET
    )
    timed = parser.parse_args([*base, "--from", "timestamp", "--timestamp", "1700000000123"])
    assert consume_start(timed) == (ConsumeFromWhere.CONSUME_FROM_TIMESTAMP, 1700000000123)
    with pytest.raises(ClientError, match="goes with --from timestamp"):
        consume_start(parser.parse_args([*base, "--timestamp", "1700000000123"]))


def test_consume_timestamp_forms() -> None:
    local = datetime.datetime(2026, 12, 2, 13, 5, 7)
    assert consume_timestamp("20261202130507") == int(local.timestamp() * 1000)
    assert consume_timestamp(" 1700000000123 ") == 1700000000123
    with pytest.raises(ClientError, match="not a yyyyMMddHHmmss"):
        consume_timestamp("20261302130507")


async def test_failures_are_reported() -> None:
    status, out, err = await pyrocket("produce", "-t", "CliTopic", "x")
    assert out == ""
    assert status == 1 and "pyrocket produce: no name server address" in err
    status, _, err = await pyrocket("produce", "-n", "127.0.0.1:1", "-t", "bad topic!", "x")
    assert status == 1 and "illegal characters" in err


async def test_consume_orderly_prints_each_queue_in_order(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            bodies = [f"b{i}".encode() for i in range(12)]
            status, out, err = await pyrocket(
                "produce", "-n", ns, "-t", "OrderCli", "--mode", "orderly", "--shard-key", "k",
                stdin=b"\n".join(bodies) + b"\n",
            )  # fmt: skip
            assert status == 0, err
            status, out, err = await pyrocket(
                "consume", "-n", ns, "-t", "OrderCli", "-g", "cli_orderly", "-c", "12",
                "--from-first", "--orderly", "--json",
            )  # fmt: skip
            assert status == 0, err
            messages = [json.loads(line) for line in out.splitlines()]
            # One sharding key: one queue, printed in the order sent.
            assert [m["body"] for m in messages] == [b.decode() for b in bodies]
            assert [m["queueOffset"] for m in messages] == list(range(12))
