"""Java's mqadmin resets, statistics and direct consumption against a
pyrocket broker (in a Java NameServer's cluster):

- ``resetOffsetByTime`` for a pyrocket consumer group and a Java consumer
  group, each online (the broker forwards RESET_CONSUMER_CLIENT_OFFSET and
  the consumer reads everything again) and offline (mqadmin's old-style
  reset writes the offsets);
- ``statsAll`` and ``brokerConsumeStats`` print the broker's figures;
- ``queryMsgById -g -d`` (CONSUME_MESSAGE_DIRECTLY) reaches a pyrocket
  consumer's direct handler through the broker.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import trio

from compat.java_cluster import JavaCluster, JavaProcess, _java_major, free_port
from compat.test_broker_control import mqadmin, pyrocket_broker, settings, wait_for_route
from compat.test_broker_control import start_namesrv as start_java_namesrv
from pyrocket.broker.app import Broker
from pyrocket.broker.statsitems import SamplingSchedule
from pyrocket.client import PushConsumer
from pyrocket.client.producer import Producer, SendResult, new_message
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from pyrocket.protocol.message import MessageExt
from tests.remoting.helpers import wait_until

CLIENT = Path(__file__).with_name("java") / "DataplaneClient.java"
TOPIC = "OpsCompatTopic"
COUNT = 20


async def _produce(ns: str) -> list[SendResult]:
    async with Producer("ops_compat_pg", [ns], client_ip="127.0.0.1") as producer:
        return [
            await producer.send(new_message(TOPIC, f"m{i}".encode(), properties={"idx": str(i)}))
            for i in range(COUNT)
        ]


def _py_consumer(ns: str, group: str, **options: object) -> PushConsumer:
    reader = PushConsumer(
        group,
        [ns],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        **options,  # type: ignore[arg-type]
    )
    reader.subscribe(TOPIC)
    return reader


def _committed(broker: Broker, group: str) -> int:
    offsets = broker.data_plane.consumer_offset_manager  # type: ignore[union-attr]
    return sum(max(0, offsets.query_offset(group, TOPIC, q)) for q in range(8))


def _java_lines(process: JavaProcess) -> list[dict[str, object]]:
    # Whole lines only: the consumer may be writing the last one.
    whole = process.output().split("\n")[:-1]
    return [json.loads(line) for line in whole if line.startswith('{"i"')]


async def _reset(java: JavaCluster, ns: str, group: str) -> str:
    return await mqadmin(java, "resetOffsetByTime", "-n", ns, "-g", group, "-t", TOPIC, "-s", "0")


async def test_mqadmin_resets_statistics_and_direct_consumption(
    java: JavaCluster, tmp_path: Path
) -> None:
    ns_port = free_port()
    await start_java_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    with trio.fail_after(600):
        async with pyrocket_broker(settings(tmp_path, ns, free_port())) as broker:
            addr = broker.broker_addr
            await mqadmin(
                java, "updateTopic", "-n", ns, "-b", addr, "-t", TOPIC, "-r", "4", "-w", "4"
            )
            await wait_for_route(java, ns, TOPIC, addr)
            sent = await _produce(ns)

            # A pyrocket group, online: the broker forwards the reset.
            async with _py_consumer(ns, "py_ops_cg") as reader:
                first = [await reader.receive() for _ in range(COUNT)]
                await reader.commit()
                out = await _reset(java, ns, "py_ops_cg")
                assert "rollback consumer offset by specified group[py_ops_cg]" in out, out
                rows = [line.split() for line in out.splitlines() if line.startswith("pybroker")]
                assert len(rows) == 4 and all(row[2] == "0" for row in rows), out
                again = [await reader.receive() for _ in range(COUNT)]
                assert sorted(m.body for m in again) == sorted(m.body for m in first)
                await reader.commit()
            # Offline: mqadmin's old-style reset.
            out = await _reset(java, ns, "py_ops_cg")
            assert "specified consumerGroup[py_ops_cg]" in out, out
            assert _committed(broker, "py_ops_cg") == 0

            # A Java group, online then offline.
            if _java_major() >= 11:
                process = await trio.to_thread.run_sync(
                    lambda: java.spawn_class(
                        "push",
                        str(CLIENT),
                        ["push", ns, TOPIC, "java_ops_cg", str(COUNT + 1), "90"],
                    )
                )
                await wait_until(lambda: len(_java_lines(process)) >= COUNT, 0.5)
                # The Java consumer first persists its offsets 10 s after it
                # starts (then every 5 s): wait until the broker holds them.
                await wait_until(lambda: _committed(broker, "java_ops_cg") == COUNT, 0.5)
                out = await _reset(java, ns, "java_ops_cg")
                assert "rollback consumer offset by specified group[java_ops_cg]" in out, out
                # Java's consumer waits 10 s, then reads everything again.
                await wait_until(lambda: len(_java_lines(process)) >= 2 * COUNT, 0.5)
                await trio.to_thread.run_sync(process.stop)
                out = await _reset(java, ns, "java_ops_cg")
                assert "specified consumerGroup[java_ops_cg]" in out, out
                assert _committed(broker, "java_ops_cg") == 0

            # statsAll and brokerConsumeStats: a sampling 10 s on stands in
            # for the broker's 10 s task.
            now = broker.now_ms() + 10_000
            broker.stats_manager.sample(SamplingSchedule(now).due(now), now)
            out = await mqadmin(java, "statsAll", "-n", ns, "-t", TOPIC)
            (row,) = [line.split() for line in out.splitlines() if "py_ops_cg" in line]
            assert row[0] == TOPIC and row[5] == str(COUNT), out
            out = await mqadmin(java, "brokerConsumeStats", "-n", ns, "-b", addr)
            assert re.search(r"^Diff Total: \d+$", out, re.M), out

            # CONSUME_MESSAGE_DIRECTLY through queryMsgById -g -d.
            handled: list[MessageExt] = []

            async def handler(message: MessageExt) -> bool:
                handled.append(message)
                return True

            async with _py_consumer(ns, "py_direct_cg", direct_handler=handler) as direct:
                out = await mqadmin(
                    java, "queryMsgById", "-n", ns, "-i", sent[3].offset_msg_id,
                    "-g", "py_direct_cg", "-d", direct.client_id,
                )  # fmt: skip
                assert "consumeResult=CR_SUCCESS" in out, out
                assert [m.body for m in handled] == [b"m3"]
