"""The message index against Java 4.7: Java's mqadmin finds messages on a
pyrocket broker by key, by unique key and by offset id; a Java broker
answers queries from the index files a pyrocket broker wrote, and the other
way round; and both write the same index entries for the same messages
(only the store times differ).
"""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path

import trio

from compat.java_cluster import JavaCluster, free_port
from compat.test_broker_control import mqadmin, pyrocket_broker, settings, start_namesrv
from pyrocket.broker.config import BrokerSettings
from pyrocket.client import Admin
from pyrocket.client.producer import Producer, SendResult, new_message
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.message import Message

TOPIC = "IndexCompat"
COUNT = 12


def unique_id(number: int) -> str:
    # A fixed, well-formed client id (IPv4 127.0.0.1, pid 1), so that the
    # same messages can be sent to two brokers.
    return f"7F00000100010000000000000000{number:04X}"


def fixed_message(number: int) -> Message:
    made = new_message(TOPIC, b"index-%d" % number, tags="T", keys=[f"order-{number % 4}", "all"])
    # As a message that already carries its id (a resend) keeps it.
    return dataclasses.replace(made, properties={**made.properties, "UNIQ_KEY": unique_id(number)})


async def send_fixed(ns: str) -> list[SendResult]:
    async with Producer("compat_index_producer", [ns], client_ip="127.0.0.1") as producer:
        return [await producer.send(fixed_message(number)) for number in range(COUNT)]


async def wait_route(ns: str) -> None:
    async with Admin([ns]) as admin:
        while True:
            try:
                await admin.topic_route(TOPIC)
                return
            except PyrocketError:
                await trio.sleep(0.5)  # not routed yet


def listed_ids(out: str) -> set[str]:
    """The message ids queryMsgByKey printed."""
    return set(re.findall(r"^([0-9A-F]{32}) ", out, re.MULTILINE))


def store_settings(store: Path, ns: str, name: str) -> BrokerSettings:
    return BrokerSettings.from_properties(
        {
            "brokerClusterName": "DefaultCluster",
            "brokerName": name,
            "brokerId": "0",
            "brokerIP1": "127.0.0.1",
            "brokerIP2": "127.0.0.1",
            "listenPort": str(free_port()),
            "namesrvAddr": ns,
            "storePathRootDir": str(store),
            "mappedFileSizeCommitLog": str(64 * 1024 * 1024),
            "flushDiskType": "ASYNC_FLUSH",
        }
    )


def index_entries(store: Path) -> tuple[tuple[int, int], bytes, list[tuple[int, int, int]]]:
    """(slot count, entry count), the hash-slot table and the entries
    (hash, offset, previous) of a store's only index file: everything but
    the times."""
    files = sorted((store / "index").iterdir())
    assert len(files) == 1, files
    raw = files[0].read_bytes()
    slots_end = 40 + 5_000_000 * 4
    hash_slots, count = struct.unpack_from(">ii", raw, 32)
    entries = [
        (key_hash, offset, previous)
        for key_hash, offset, _, previous in struct.iter_unpack(
            ">iqii", raw[slots_end + 20 : slots_end + 20 * count]
        )
    ]
    return (hash_slots, count), raw[40:slots_end], entries


async def test_java_mqadmin_queries_a_pyrocket_broker(java: JavaCluster, tmp_path: Path) -> None:
    ns_port = free_port()
    await start_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    with trio.fail_after(300):
        async with pyrocket_broker(settings(tmp_path, ns, free_port())) as broker:
            async with Admin([ns]) as admin:
                await admin.update_topic_on_broker(broker.broker_addr, TopicConfig(TOPIC, 2, 2))
            await wait_route(ns)
            sent = await send_fixed(ns)
            out = await mqadmin(java, "queryMsgByKey", "-n", ns, "-t", TOPIC, "-k", "order-1")
            listed = listed_ids(out)
            assert {unique_id(n) for n in (1, 5, 9)} <= listed, out
            assert unique_id(2) not in listed, out

            out = await mqadmin(
                java, "queryMsgByUniqueKey", "-n", ns, "-t", TOPIC, "-i", sent[7].msg_id
            )
            assert "Topic:               IndexCompat" in out, out
            assert "Keys:                [order-3 all]" in out, out

            out = await mqadmin(java, "queryMsgById", "-n", ns, "-i", sent[3].offset_msg_id)
            assert f"OffsetID:            {sent[3].offset_msg_id}" in out, out
            assert "Keys:                [order-3 all]" in out, out


async def test_java_and_pyrocket_read_each_others_index(java: JavaCluster, tmp_path: Path) -> None:
    ns_port = free_port()
    await start_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    py_store = tmp_path / "pystore"
    java_store = tmp_path / "javastore"
    with trio.fail_after(600):
        # pyrocket writes, then a Java broker on the same store answers.
        async with pyrocket_broker(settings(tmp_path, ns, free_port(), name="broker-p")) as b:
            async with Admin([ns]) as admin:
                await admin.update_topic_on_broker(b.broker_addr, TopicConfig(TOPIC, 1, 1))
            await wait_route(ns)
            await send_fixed(ns)
        java_port = free_port()
        reader = await trio.to_thread.run_sync(
            lambda: java.start_broker(
                "broker-p",
                java_port,
                ns,
                {
                    "storePathRootDir": str(py_store),
                    "storePathCommitLog": str(py_store / "commitlog"),
                },
            )
        )
        out = await mqadmin(java, "queryMsgByKey", "-n", ns, "-t", TOPIC, "-k", "all")
        listed = listed_ids(out)
        assert listed == {unique_id(n) for n in range(COUNT)}, out
        await trio.to_thread.run_sync(reader.stop)

        # A Java broker writes the same messages, then pyrocket answers.
        writer_port = free_port()
        writer = await trio.to_thread.run_sync(
            lambda: java.start_broker(
                "broker-j",
                writer_port,
                ns,
                {
                    "storePathRootDir": str(java_store),
                    "storePathCommitLog": str(java_store / "commitlog"),
                    "mappedFileSizeCommitLog": str(64 * 1024 * 1024),
                },
            )
        )
        await mqadmin(
            java, "updateTopic", "-n", ns, "-b", f"127.0.0.1:{writer_port}", "-t", TOPIC,
            "-r", "1", "-w", "1",
        )  # fmt: skip
        await trio.sleep(2)
        await send_fixed(ns)
        await trio.to_thread.run_sync(writer.stop)

        # Same messages, same commit-log offsets: the same entries and slots.
        ours = index_entries(py_store)
        assert ours[0] == (COUNT * 3, 1 + COUNT * 3)  # unique key + 2 keys each
        assert ours == index_entries(java_store)

        async with pyrocket_broker(store_settings(java_store, ns, "broker-j")) as broker:
            found = await broker.store.query_message(TOPIC, "order-2", 32, 0, 2**63 - 1)
            assert len(found.messages) == COUNT // 4
