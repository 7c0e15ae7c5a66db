"""Java clients through a pyrocket broker: the broker registers with a Java
NameServer; Java's DefaultMQProducer sends sync, async, oneway and orderly
(some bodies large enough to be compressed) to a topic the broker creates
from TBW102 on the first send; Java's push consumer and then its pull
consumer each receive every message exactly once, with its tags, keys,
property and body.

The Java side is ``compat/java/DataplaneClient.java`` run in source-file
mode (Java 11 or newer) against the install's jars. The pyrocket broker
runs in this test's trio loop; Java processes are driven from worker
threads.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import trio

from compat.java_cluster import JavaCluster, _java_major, free_port
from compat.test_broker_control import TIMING, cluster_rows, mqadmin, pyrocket_broker, settings
from compat.test_broker_control import start_namesrv as start_java_namesrv
from tests.broker.helpers import assert_group_consumed_all, stored_in_topic

CLIENT = Path(__file__).with_name("java") / "DataplaneClient.java"
TOPIC = "JavaDataplaneTopic"
COUNT = 400
MODES = ("sync", "async", "oneway", "orderly")


def expected_body(i: int) -> bytes:
    text = f"message {i} from the Java client "
    return (text * 150 if i % 50 == 0 else text).encode()


async def run_client(java: JavaCluster, *args: str, seconds: float) -> list[dict[str, object]]:
    result = await trio.to_thread.run_sync(
        lambda: java.run_class(str(CLIENT), args, timeout=seconds)
    )
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def check_received(lines: list[dict[str, object]], what: str) -> None:
    *messages, done = lines
    assert done == {"done": len(messages)}, what
    counts = Counter(int(str(m["i"])) for m in messages)
    assert not {i: n for i, n in counts.items() if n > 1}, f"{what}: duplicates"
    assert set(counts) == set(range(COUNT)), f"{what}: missing {set(range(COUNT)) - set(counts)}"
    offsets: dict[int, list[int]] = defaultdict(list)
    for message in messages:
        i = int(str(message["i"]))
        body = expected_body(i)
        assert message["topic"] == TOPIC
        assert (message["tags"], message["keys"]) == (f"Tag{i % 3}", f"KEY{i}"), (what, i)
        assert message["body_sha"] == hashlib.sha256(body).hexdigest(), (what, i)
        assert message["body_len"] == len(body)
        if MODES[i % 4] == "orderly":
            assert message["queue"] == i % 4, (what, i)
        offsets[int(str(message["queue"]))].append(int(str(message["offset"])))
    for queue, seen in offsets.items():
        assert sorted(seen) == list(range(len(seen))), f"{what}: queue {queue} offsets"


async def test_java_producer_and_consumers_through_a_pyrocket_broker(
    java: JavaCluster, tmp_path: Path
) -> None:
    if _java_major() < 11:
        pytest.skip("running DataplaneClient.java from source needs Java 11 or newer")
    ns_port = free_port()
    await start_java_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    with trio.fail_after(400):
        async with pyrocket_broker(settings(tmp_path, ns, free_port())) as broker:
            # Registered: the NameServer lists the broker (first round after 1 s).
            await trio.sleep(TIMING.first_delay)
            assert cluster_rows(await mqadmin(java, "clusterList", "-n", ns), "pybroker")
            report = await run_client(java, "produce", ns, TOPIC, str(COUNT), seconds=120)
            assert report == [
                {
                    "sync_ok": COUNT // 4,
                    "async_ok": COUNT // 4,
                    "oneway_ok": COUNT // 4,
                    "orderly_ok": COUNT // 4,
                    "async_failed": 0,
                    "failures": [],
                }
            ]
            # Every message, oneway ones included, is in the store.
            assert await stored_in_topic(broker, TOPIC, COUNT) == COUNT
            pushed = await run_client(
                java, "push", ns, TOPIC, "compat_dataplane_push", str(COUNT), "60", seconds=120
            )
            check_received(pushed, "push consumer")
            pulled = await run_client(java, "pull", ns, TOPIC, "compat_dataplane_pull", seconds=120)
            check_received(pulled, "pull consumer")
            # The push consumer committed its progress to the broker.
            assert_group_consumed_all(broker, "compat_dataplane_push", TOPIC)
