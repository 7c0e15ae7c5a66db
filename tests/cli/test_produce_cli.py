"""``pyrocket produce --async / --oneway / --sharding-key`` as processes
against ``pyrocket up``."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from tests.cli.test_client_cli import pyrocket
from tests.client.helpers import running_up


async def test_produce_async_oneway_and_sharding_key(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            status, out, err = await pyrocket(
                "produce", "-n", ns, "-t", "AsyncCli", "--async", "-c", "5", "--json", "a", "b",
            )  # fmt: skip
            assert status == 0, err
            results = [json.loads(line) for line in out.splitlines()]
            assert len(results) == 10 and {r["status"] for r in results} == {"SEND_OK"}
            assert len({r["msgId"] for r in results}) == 10

            status, out, err = await pyrocket(
                "produce", "-n", ns, "-t", "AsyncCli", "--async", "--sharding-key", "order-1",
                "-c", "4", "--json", "k",
            )  # fmt: skip
            assert status == 0, err
            keyed = [json.loads(line) for line in out.splitlines()]
            assert len(keyed) == 4 and len({r["queueId"] for r in keyed}) == 1
            offsets = [r["queueOffset"] for r in keyed]
            assert offsets == sorted(offsets) and len(set(offsets)) == 4

            status, out, err = await pyrocket(
                "produce", "-n", ns, "-t", "AsyncCli", "--sharding-key", "order-1", "--json", "s",
            )  # fmt: skip
            assert status == 0, err
            assert json.loads(out)["queueId"] == keyed[0]["queueId"]

            status, out, err = await pyrocket(
                "produce", "-n", ns, "-t", "OnewayCli", "--oneway", "--keys", "x y", "-c", "3", "o",
            )  # fmt: skip
            assert status == 0, err
            assert out == ""
            status, out, err = await pyrocket(
                "consume", "-n", ns, "-t", "OnewayCli", "-g", "oneway_cli", "-c", "3",
                "--from-first", "--json",
            )  # fmt: skip
            assert status == 0, err
            messages = [json.loads(line) for line in out.splitlines()]
            assert [m["body"] for m in messages] == ["o", "o", "o"]
            assert {m["keys"] for m in messages} == {"x y"}

            status, _, err = await pyrocket("produce", "-n", ns, "-t", "T", "--async", "--oneway")
            assert status == 2 and "not allowed with argument" in err
