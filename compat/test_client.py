"""pyrocket's Producer and PushConsumer against a Java 4.7.0 NameServer and
Java broker: the producer creates its topic through TBW102 and sends sync,
oneway and orderly (some bodies compressed); Java's push consumer and
pyrocket's consumer each receive every message once with its content (and
one given back comes again through the retry topic); what
Java's producer sends, two pyrocket consumers in one group share and
receive once, and the group's offsets end committed at the queues' ends.

The Java client is ``compat/java/DataplaneClient.java`` (see
test_broker_dataplane.py); skipped without ROCKETMQ_HOME.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from compat.java_cluster import JavaCluster, _java_major, free_port
from compat.test_broker_control import start_namesrv
from compat.test_broker_dataplane import (
    COUNT,
    MODES,
    TOPIC,
    check_received,
    expected_body,
    run_client,
)
from pyrocket.client.consumer import PushConsumer
from pyrocket.client.producer import Producer, SendStatus, new_message
from pyrocket.protocol.bodies.client import ConsumeFromWhere, MessageQueue
from pyrocket.protocol.message import Message, MessageExt
from tests.client.helpers import wait_assigned

GROUP = "compat_py_consumers"


async def java_pair(java: JavaCluster) -> tuple[str, str]:
    if _java_major() < 11:
        pytest.skip("running DataplaneClient.java from source needs Java 11 or newer")
    ns_port = free_port()
    await start_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    port = free_port()
    await trio.to_thread.run_sync(lambda: java.start_broker("javabroker", port, ns))
    return ns, f"127.0.0.1:{port}"


def py_consumer(ns: str, group: str, topic: str) -> PushConsumer:
    reader = PushConsumer(
        group,
        [ns],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        rebalance_interval=1,  # finds the retry topic's route soon after the broker makes it
    )
    reader.subscribe(topic)
    return reader


def by_index(queues: Sequence[MessageQueue], message: Message, arg: object) -> MessageQueue:
    assert isinstance(arg, int)
    return queues[arg % len(queues)]


def check_content(messages: list[MessageExt], topic: str) -> None:
    seen = sorted(int(m.properties["idx"]) for m in messages)
    assert seen == list(range(COUNT)), "every message once"
    for m in messages:
        i = int(m.properties["idx"])
        assert m.topic == topic and (m.tags, m.keys) == (f"Tag{i % 3}", f"KEY{i}")
        assert hashlib.sha256(m.body).digest() == hashlib.sha256(expected_body(i)).digest()


async def test_pyrocket_producer_with_java_broker_and_consumers(
    java: JavaCluster, tmp_path: Path
) -> None:
    ns, _ = await java_pair(java)
    with trio.fail_after(300):
        async with Producer("compat_py_producer", [ns], client_ip="127.0.0.1") as producer:
            for i in range(COUNT):
                message = new_message(
                    TOPIC,
                    expected_body(i),
                    tags=f"Tag{i % 3}",
                    keys=f"KEY{i}",
                    properties={"idx": str(i)},
                )
                mode = MODES[i % 4]
                if mode == "oneway":
                    await producer.send_oneway(message)
                    continue
                if mode == "orderly":
                    result = await producer.send_orderly(message, i, by_index)
                    assert result.queue.queue_id == i % 4
                else:
                    result = await producer.send(message)
                assert result.status is SendStatus.SEND_OK
            assert len(await producer.publish_queues(TOPIC)) == 4
        pushed = await run_client(
            java, "push", ns, TOPIC, "compat_java_push", str(COUNT), "60", seconds=120
        )
        check_received(pushed, "Java push consumer")
        async with py_consumer(ns, "compat_py_reader", TOPIC) as reader:
            messages = [await reader.receive() for _ in range(COUNT)]
            # Given back, a message returns through the group's retry topic.
            again = messages[7]
            await reader.reconsume_later(again, delay_level=1)
            returned = await reader.receive()
    check_content(messages, TOPIC)
    assert returned.topic == TOPIC and returned.reconsume_times == 1
    assert returned.uniq_key == again.uniq_key and returned.body == again.body


async def test_java_producer_to_a_pyrocket_consumer_group(
    java: JavaCluster, tmp_path: Path
) -> None:
    ns, broker = await java_pair(java)
    topic = "CompatJavaToPy"
    with trio.fail_after(300):
        report = await run_client(java, "produce", ns, topic, str(COUNT), seconds=120)
        assert report[0]["failures"] == [] and report[0]["async_failed"] == 0
        one, two = py_consumer(ns, GROUP, topic), py_consumer(ns, GROUP, topic)
        got: list[MessageExt] = []
        async with one, two:
            # Until the group has settled, a queue may be read by both (at
            # least once, as in Java): start reading once it has.
            await wait_assigned([one, two], topic, 4)
            done = trio.Event()

            async def drain(source: PushConsumer) -> None:
                async for message in source:
                    got.append(message)
                    if len(got) >= COUNT:
                        done.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, one)
                nursery.start_soon(drain, two)
                await done.wait()
                await trio.sleep(1)  # a duplicate would show up now
                nursery.cancel_scope.cancel()
            shares = (
                {q for q in one.assignment if q.topic == topic},
                {q for q in two.assignment if q.topic == topic},
            )
        # Both consumers read, and their queues do not overlap.
        assert shares[0] and shares[1] and not shares[0] & shares[1]
        check_content(got, topic)
        async with Producer("compat_probe", [ns], client_ip="127.0.0.1") as probe:
            brokers = probe.instance.brokers
            for queue_id in range(4):
                committed = await brokers.query_consumer_offset(broker, GROUP, topic, queue_id)
                end = await brokers.get_max_offset(broker, topic, queue_id)
                assert committed == end, queue_id
