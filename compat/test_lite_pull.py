"""pyrocket's LitePullConsumer against a Java 4.7.0 NameServer and Java
broker: two consumers of one group subscribed to a topic share its queues
and poll every message once; offsets committed with commit_sync are the
queues' ends at the Java broker, and a consumer of the group started again
reads only what was sent since; an assigned queue seeks back to its
beginning and reads it again. Skipped without ROCKETMQ_HOME."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import trio

from compat.java_cluster import JavaCluster
from compat.test_client import by_index, java_pair
from pyrocket.client import LitePullConsumer
from pyrocket.client.producer import Producer, new_message
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from pyrocket.protocol.message import MessageExt
from tests.remoting.helpers import wait_until

TOPIC = "CompatLitePull"
GROUP = "compat_lite_pullers"
COUNT = 40


async def produce(ns: str, indexes: range) -> None:
    async with Producer("compat_lite_producer", [ns], client_ip="127.0.0.1") as producer:
        for i in indexes:
            message = new_message(TOPIC, f"lite {i}".encode(), properties={"idx": str(i)})
            await producer.send_orderly(message, i, by_index)


def lite(ns: str, **options: object) -> LitePullConsumer:
    return LitePullConsumer(
        GROUP,
        [ns],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        auto_commit=False,
        **options,  # type: ignore[arg-type]
    )


def indexes(messages: Sequence[MessageExt]) -> list[int]:
    return [int(m.properties["idx"]) for m in messages]


async def poll_until(consumers: Sequence[LitePullConsumer], count: int) -> list[MessageExt]:
    got: list[MessageExt] = []
    while len(got) < count:
        for consumer in consumers:
            got.extend(await consumer.poll(timeout=0.5))
    return got


async def test_lite_pull_consumers_with_a_java_broker(java: JavaCluster) -> None:
    ns, broker = await java_pair(java)
    with trio.fail_after(300):
        await produce(ns, range(COUNT))
        one, two = lite(ns), lite(ns)
        await one.subscribe(TOPIC)
        await two.subscribe(TOPIC)
        async with one, two:

            def settled() -> bool:
                a, b = one.assignment, two.assignment
                return len(a) == len(b) == 2 and not a & b

            await wait_until(settled, 0.05)
            got = await poll_until([one, two], COUNT)
            assert not await one.poll(timeout=0.5) and not await two.poll(timeout=0.1)
            await one.commit_sync()
            await two.commit_sync()
            for consumer in (one, two):
                for queue in consumer.assignment:
                    assert await consumer.committed(queue) == await consumer.max_offset(queue)
        counts = Counter(indexes(got))
        assert set(counts) == set(range(COUNT)) and max(counts.values()) == 1
        assert all(m.body == f"lite {m.properties['idx']}".encode() for m in got)

        await produce(ns, range(COUNT, COUNT + 8))
        again = lite(ns)
        await again.subscribe(TOPIC)
        async with again:
            later = await poll_until([again], 8)
            assert not await again.poll(timeout=0.5)
        assert sorted(indexes(later)) == list(range(COUNT, COUNT + 8))

        async with lite(ns) as assigned:
            queues = await assigned.fetch_message_queues(TOPIC)
            queue = next(q for q in queues if q.queue_id == 1)
            await assigned.assign([queue])
            await assigned.seek_to_begin(queue)
            reread = await poll_until([assigned], (COUNT + 8) // 4)
        assert indexes(reread) == list(range(1, COUNT + 8, 4))
    assert broker
