"""Java's ``mqadmin consumerStatus`` reads a pyrocket consumer's consume
statistics: after the consumer took messages (and gave one back), the
``#Consumer RT&TPS#`` table Java prints from the consumer's ConsumeStatus has
non-zero pull and consume figures and one failed message in the hour.

Skipped without ROCKETMQ_HOME.
"""

from __future__ import annotations

import re
from pathlib import Path

import trio

from compat.java_cluster import JavaCluster, free_port
from compat.test_broker_control import (
    mqadmin,
    pyrocket_broker,
    settings,
    start_namesrv,
    wait_for_route,
)
from pyrocket.client import ConsumeFromWhere, Producer, PushConsumer, new_message
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.remoting import RemotingClient

TOPIC = "StatsTopic"
ROW = re.compile(
    rf"^{TOPIC}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s*$", re.M
)


async def test_mqadmin_prints_a_pyrocket_consumers_statistics(
    java: JavaCluster, tmp_path: Path
) -> None:
    ns_port = free_port()
    await start_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    with trio.fail_after(300):
        async with (
            pyrocket_broker(settings(tmp_path, ns, free_port())) as broker,
            RemotingClient() as admin_client,
        ):
            await BrokerAPI(admin_client).create_topic(
                broker.broker_addr,
                TopicConfig(topic_name=TOPIC, read_queue_nums=4, write_queue_nums=4),
            )
            await wait_for_route(java, ns, TOPIC, broker.broker_addr)
            consumer = PushConsumer(
                "StatsGroup",
                [ns],
                client_ip="127.0.0.1",
                consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
            )
            # Java's windows (seven snapshots) sampled every 5 s: a window of
            # half a minute, wide enough for mqadmin's start.
            consumer.stats.minute_sampling = consumer.stats.hour_sampling = 5.0
            consumer.subscribe(TOPIC)
            async with (
                Producer("StatsProducer", [ns], client_ip="127.0.0.1") as producer,
                consumer,
            ):
                await producer.send(new_message(TOPIC, b"first"))
                received = [await consumer.receive()]
                await trio.sleep(0.3)  # held pulls, so their round trip is measurable
                for i in range(9):
                    await producer.send(new_message(TOPIC, b"m%d" % i))
                while len(received) < 10:
                    await trio.sleep(0.02)
                    received.append(await consumer.receive())
                await consumer.reconsume_later(received[-1])
                await consumer.poll(timeout=0.01)
                await trio.sleep(5.5)  # the next sample
                out = await mqadmin(
                    java, "consumerStatus", "-n", ns, "-g", "StatsGroup", "-i", consumer.client_id
                )
    assert "#Consumer RT&TPS#" in out, out
    found = ROW.search(out)
    assert found is not None, out
    pull_rt, pull_tps, consume_rt, ok_tps, failed_tps, failed_msgs = found.groups()
    assert float(pull_rt) > 0 and float(pull_tps) > 0, out
    assert float(consume_rt) > 0 and float(ok_tps) > 0 and float(failed_tps) > 0, out
    assert int(failed_msgs) == 1, out
