"""A real peer: the C++ RocketMQ client from PyPI's ``rocketmq==0.4.4`` wheel
produces to and consumes from a pyrocket broker found through a NameServer.

1,000 messages go out sync, async, oneway and orderly (every 100th body is
over 4 KiB and compressed by the client); a push consumer and then a pull
consumer must each receive every one exactly once, with its body, tags, keys
and properties. The C++ client runs in subprocesses (see cpp_client.py).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

import pytest
import trio

from tests.broker.cpp_client import expected
from tests.broker.helpers import (
    assert_group_consumed_all,
    broker_settings,
    running_broker,
    stored_in_topic,
)
from tests.broker.recording_namesrv import recording_namesrv
from tests.conftest import require_cpp_client

require_cpp_client()

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).with_name("cpp_client.py")
COUNT = 1000
TOPIC = "CppInteropTopic"


async def run_client(home: Path, *args: str, seconds: float) -> list[dict[str, object]]:
    env = dict(os.environ, HOME=str(home))
    with trio.fail_after(seconds):
        result = await trio.run_process(
            [sys.executable, str(SCRIPT), *args],
            capture_stdout=True,
            capture_stderr=True,
            env=env,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return [json.loads(line) for line in result.stdout.decode().splitlines() if line.strip()]


def check_received(lines: list[dict[str, object]], what: str, count: int = COUNT) -> None:
    done = lines[-1]
    messages = lines[:-1]
    assert done == {"done": len(messages)}
    counts = Counter(int(str(m["i"])) for m in messages)
    duplicates = {i: n for i, n in counts.items() if n > 1}
    assert not duplicates, f"{what}: delivered more than once: {duplicates}"
    assert set(counts) == set(range(count)), f"{what}: missing {set(range(count)) - set(counts)}"
    for message in messages:
        want = expected(int(str(message["i"])))
        for key in ("tags", "keys", "props", "body_sha", "body_len"):
            assert message[key] == want[key], (what, message["i"], key)
    # Per queue, offsets are dense and each message appears once.
    by_queue: dict[object, list[int]] = {}
    for message in messages:
        by_queue.setdefault(message["queue"], []).append(int(str(message["offset"])))
    for queue, offsets in by_queue.items():
        assert sorted(offsets) == list(range(len(offsets))), (what, queue)


async def test_cpp_client_produces_and_consumes_through_pyrocket(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with trio.fail_after(90):
        async with recording_namesrv(tmp_path / "ns") as ns:
            namesrv = ns.addr
            settings = broker_settings(
                tmp_path,
                [namesrv],
                mappedFileSizeCommitLog=4 * 1024 * 1024,
                maxMessageSize=1024 * 1024,
            )
            async with running_broker(settings) as broker:
                report = await run_client(home, "produce", namesrv, TOPIC, str(COUNT), seconds=45)
                assert report == [
                    {
                        "sync_ok": 250,
                        "orderly_ok": 250,
                        "oneway": 250,
                        "async_ok": 250,
                        "async_failed": 0,
                    }
                ]
                # Every message, oneway ones included, is in the store.
                assert await stored_in_topic(broker, TOPIC, COUNT) == COUNT
                pushed = await run_client(
                    home, "push", namesrv, TOPIC, "cpp_interop_push", str(COUNT), "30", seconds=45
                )
                check_received(pushed, "push consumer")
                pulled = await run_client(
                    home, "pull", namesrv, TOPIC, "cpp_interop_pull", seconds=30
                )
                check_received(pulled, "pull consumer")
                # The push consumer committed its progress: every queue fully consumed.
                assert_group_consumed_all(broker, "cpp_interop_push", TOPIC)
