"""Per-message acknowledgement and orderly consumption through a Java 4.7.0
NameServer and broker: pyrocket's orderly consumer locks the queues on the
Java broker and reads each in order; acknowledging only some messages
commits the smallest unacknowledged offset at the Java broker; and Java's
own orderly push consumer (``compat/java/OrderlyClient.java``, a
MessageListenerOrderly) next to pyrocket's in one group: each queue is held
by one of them at a time and every message is consumed in queue order.
Skipped without ROCKETMQ_HOME."""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from pathlib import Path

import trio

from compat.java_cluster import JavaCluster
from compat.test_client import by_index, java_pair
from pyrocket.client import ConsumeOrderlyStatus, Producer, PushConsumer, new_message
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from pyrocket.protocol.message import MessageExt
from tests.remoting.helpers import wait_until

CLIENT = Path(__file__).with_name("java") / "OrderlyClient.java"


async def produce(ns: str, topic: str, indexes: range) -> None:
    async with Producer("compat_orderly_producer", [ns], client_ip="127.0.0.1") as producer:
        for i in indexes:
            message = new_message(topic, f"ordered {i}".encode(), properties={"idx": str(i)})
            await producer.send_orderly(message, i, by_index)


def py_consumer(ns: str, group: str, topic: str, **options: object) -> PushConsumer:
    reader = PushConsumer(
        group,
        [ns],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        **options,  # type: ignore[arg-type]
    )
    reader.subscribe(topic)
    return reader


async def test_a_pyrocket_orderly_consumer_with_a_java_broker(java: JavaCluster) -> None:
    topic, group = "CompatOrderly", "compat_py_orderly"
    ns, _broker = await java_pair(java)
    seen: list[MessageExt] = []

    async def handle(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        seen.extend(messages)
        return ConsumeOrderlyStatus.SUCCESS

    with trio.fail_after(300):
        await produce(ns, topic, range(40))
        reader = py_consumer(ns, group, topic, orderly=True)
        async with reader, trio.open_nursery() as nursery:
            nursery.start_soon(reader.consume_orderly, handle)
            await wait_until(lambda: len(seen) >= 40, 0.05)
            info = reader.running_info().mq_table
            locked = {q.queue_id for q, pq in info.items() if q.topic == topic and pq.locked}
            nursery.cancel_scope.cancel()
    assert locked == {0, 1, 2, 3}  # the Java broker granted every lock
    assert sorted(int(m.properties["idx"]) for m in seen) == list(range(40))
    for queue_id in range(4):
        mine = [m for m in seen if m.queue_id == queue_id]
        assert [m.queue_offset for m in mine] == list(range(10))
        assert [int(m.properties["idx"]) for m in mine] == list(range(queue_id, 40, 4))


async def test_acknowledging_some_messages_with_a_java_broker(java: JavaCluster) -> None:
    topic, group = "CompatAck", "compat_py_ack"
    ns, broker = await java_pair(java)
    with trio.fail_after(300):
        await produce(ns, topic, range(40))
        reader = py_consumer(ns, group, topic, auto_ack=False)
        async with reader:
            got = [await reader.receive() for _ in range(40)]
            unacked = [m for m in got if int(m.properties["idx"]) % 7 == 3]
            for m in got:
                if m not in unacked:
                    reader.ack(m)
            await reader.commit()
            brokers = reader.instance.brokers
            committed = {
                q: await brokers.query_consumer_offset(broker, group, topic, q, 3.0)
                for q in range(4)
            }
            ends = {q: await brokers.get_max_offset(broker, topic, q, 3.0) for q in range(4)}
    smallest: dict[int, int] = {}
    for m in unacked:
        smallest[m.queue_id] = min(smallest.get(m.queue_id, m.queue_offset), m.queue_offset)
    assert committed == {q: smallest.get(q, ends[q]) for q in range(4)}


async def test_java_and_pyrocket_orderly_consumers_in_one_group(java: JavaCluster) -> None:
    topic, group = "CompatOrderlyMixed", "compat_mixed_orderly"
    ns, _broker = await java_pair(java)
    # (who, queue, offset, idx, start ms, end ms)
    records: list[tuple[str, int, int, int, float, float]] = []

    async def handle(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        start = time.time() * 1000
        await trio.sleep(0.01)
        for m in messages:
            idx = int(m.properties["idx"])
            records.append(("py", m.queue_id, m.queue_offset, idx, start, time.time() * 1000))
        return ConsumeOrderlyStatus.SUCCESS

    with trio.fail_after(400):
        await produce(ns, topic, range(40))
        reader = py_consumer(ns, group, topic, orderly=True, rebalance_interval=2.0)
        async with reader, trio.open_nursery() as nursery:
            nursery.start_soon(reader.consume_orderly, handle)
            await wait_until(lambda: len(records) >= 40, 0.05)
            java_consumer = java.spawn_class(
                "orderly-consumer", str(CLIENT), [ns, topic, group, "75"]
            )
            await trio.to_thread.run_sync(lambda: java_consumer.wait_for_output(r'"ready"', 120))

            def shared() -> bool:
                mine = {q.queue_id for q in reader.assignment if q.topic == topic}
                return len(mine) == 2

            await wait_until(shared, 0.1)
            # Java locks its two queues at its next rebalance (20 s at most).
            await trio.sleep(25)
            await produce(ns, topic, range(40, 80))
            await trio.to_thread.run_sync(lambda: java_consumer.popen.wait(150))
            nursery.cancel_scope.cancel()
    for line in java_consumer.output().splitlines():
        if line.startswith('{"i"'):
            d = json.loads(line)
            records.append(("java", d["queue"], d["offset"], d["i"], d["start"], d["end"]))
    assert {r[3] for r in records} == set(range(80)), "every message consumed"
    assert {r[0] for r in records if r[3] >= 40} == {"py", "java"}
    by_queue: dict[int, list[tuple[str, int, int, int, float, float]]] = defaultdict(list)
    for r in records:
        by_queue[r[1]].append(r)
    for queue_id, rs in by_queue.items():
        # The messages sent after both consumers settled: one holder per queue.
        late = [r for r in rs if r[3] >= 40]
        assert len({r[0] for r in late}) == 1, (queue_id, late)
        assert [r[2] for r in late] == sorted({r[2] for r in late}) == list(range(10, 20))
        # And across the handover, in queue order, never two at once.
        rs.sort(key=lambda r: r[4])
        for before, after in itertools.pairwise(rs):
            if after[0] != before[0]:
                assert after[4] >= before[5] - 5, (before, after)
            assert after[2] >= before[2] or after[0] != before[0], (before, after)
