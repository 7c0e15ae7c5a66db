"""Broadcasting through a Java 4.7.0 NameServer and broker: two pyrocket
broadcasting consumers and Java's (``compat/java/BroadcastClient.java``) in
one group each get every message; each keeps its own ``offsets.json`` (one
folder per client id; pyrocket's text is byte for byte what Java writes for
the same offsets); and the files are interchangeable: Java's consumer
started under a pyrocket consumer's client id resumes from the file pyrocket
wrote, and a pyrocket consumer under the Java one's id from Java's file.

Skipped without ROCKETMQ_HOME.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from compat.java_cluster import JavaCluster
from compat.test_client import java_pair
from pyrocket.client.consumer import PushConsumer
from pyrocket.client.local_offsets import store_path
from pyrocket.client.producer import Producer, new_message
from pyrocket.protocol.bodies.client import ConsumeFromWhere, MessageModel
from pyrocket.protocol.bodies.offset_file import decode_offset_file, encode_offset_file

CLIENT = Path(__file__).parent / "java" / "BroadcastClient.java"
TOPIC = "CompatBroadcast"
GROUP = "compat_broadcasters"


async def java_broadcaster(java: JavaCluster, ns: str, instance: str, count: int) -> list[str]:
    """The bodies Java's broadcasting consumer ``127.0.0.1@instance`` got."""
    result = await trio.to_thread.run_sync(
        lambda: java.run_class(
            str(CLIENT), [ns, TOPIC, GROUP, instance, str(count), "90"], timeout=150
        )
    )
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    *messages, done = [
        json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")
    ]
    assert done == {"done": len(messages)}
    return [str(m["body"]) for m in messages]


def py_broadcaster(ns: str, instance: str, store: Path) -> PushConsumer:
    consumer = PushConsumer(
        GROUP,
        [ns],
        client_ip="127.0.0.1",
        instance_name=instance,
        message_model=MessageModel.BROADCASTING,
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        local_offset_store_dir=str(store),
    )
    consumer.subscribe(TOPIC)
    return consumer


async def take(consumer: PushConsumer, count: int) -> list[str]:
    bodies = [(await consumer.receive()).body.decode() for _ in range(count)]
    with trio.move_on_after(1.0):
        extra = await consumer.receive()
        pytest.fail(f"unexpected {extra}")
    return bodies


async def produce(ns: str, start: int, count: int) -> None:
    async with Producer("compat_broadcast_producer", [ns], client_ip="127.0.0.1") as producer:
        for i in range(start, start + count):
            await producer.send(new_message(TOPIC, f"m{i}".encode()))


async def test_broadcasting_next_to_java_and_the_offset_files(
    java: JavaCluster, tmp_path: Path
) -> None:
    ns, _ = await java_pair(java)
    # Java's LocalFileOffsetStore: ${user.home}/.rocketmq_offsets, and the
    # launcher sets user.home to the work dir.
    store = java.workdir / ".rocketmq_offsets"
    first = [f"m{i}" for i in range(20)]
    later = [f"m{i}" for i in range(20, 25)]
    got: dict[str, list[str]] = {}
    with trio.fail_after(400):
        await produce(ns, 0, 20)

        async def java_side() -> None:
            got["java"] = await java_broadcaster(java, ns, "javabc", 20)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(java_side)
            async with (
                py_broadcaster(ns, "py1", store) as one,
                py_broadcaster(ns, "py2", store) as two,
            ):
                got["py1"] = await take(one, 20)
                got["py2"] = await take(two, 20)
        for name in ("java", "py1", "py2"):
            assert sorted(got[name]) == sorted(first), name
        written = {
            name: decode_offset_file(store_path(store, f"127.0.0.1@{name}", GROUP).read_text())
            for name in ("javabc", "py1", "py2")
        }
        assert sum(written["py1"].values()) == sum(written["javabc"].values()) == 20
        assert written["py1"] == written["javabc"] == written["py2"]
        # Byte for byte what Java writes for the same table.
        java_text = store_path(store, "127.0.0.1@javabc", GROUP).read_text()
        assert encode_offset_file(written["javabc"]) == java_text

        await produce(ns, 20, 5)
        # Java reads the file pyrocket's consumer py1 wrote ...
        got["java_as_py1"] = await java_broadcaster(java, ns, "py1", 5)
        # ... and pyrocket the one Java's consumer wrote.
        async with py_broadcaster(ns, "javabc", store) as as_java:
            got["py_as_java"] = await take(as_java, 5)
    assert sorted(got["java_as_py1"]) == later
    assert sorted(got["py_as_java"]) == later
