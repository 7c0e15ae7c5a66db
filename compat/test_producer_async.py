"""pyrocket's async sends against a Java 4.7.0 NameServer and broker: futures,
callbacks, oneway and keyed async sends (some bodies compressed), with the
latency fault strategy on; Java's push consumer receives every message once
with its content, the keyed ones in their queues. Skipped without
ROCKETMQ_HOME."""

from __future__ import annotations

from pathlib import Path

import trio

from compat.java_cluster import JavaCluster
from compat.test_broker_dataplane import (
    COUNT,
    MODES,
    TOPIC,
    check_received,
    expected_body,
    run_client,
)
from compat.test_client import by_index, java_pair
from pyrocket.client import Producer, SendFuture, SendResult, SendStatus, new_message


async def test_async_sends_to_a_java_broker(java: JavaCluster, tmp_path: Path) -> None:
    ns, _ = await java_pair(java)
    futures: list[SendFuture[SendResult]] = []
    called: list[SendResult] = []
    failed: list[BaseException] = []
    with trio.fail_after(300):
        async with Producer(
            "compat_py_async", [ns], client_ip="127.0.0.1", send_latency_fault_enable=True
        ) as producer:
            for i in range(COUNT):
                message = new_message(
                    TOPIC, expected_body(i), tags=f"Tag{i % 3}", keys=f"KEY{i}",
                    properties={"idx": str(i)},
                )  # fmt: skip
                mode = MODES[i % 4]
                if mode == "oneway":
                    await producer.send_oneway(message)
                elif mode == "orderly":
                    futures.append(
                        await producer.send_async(message, shard_key=i, selector=by_index)
                    )
                elif mode == "async":
                    await producer.send_with_callback(message, called.append, failed.append)
                else:
                    futures.append(await producer.send_async(message))
            results = [await future for future in futures]
        # Closing waited for the callbacks' sends.
        assert not failed and len(called) == COUNT // 4
        assert all(r.status is SendStatus.SEND_OK for r in results + called)
        pushed = await run_client(
            java, "push", ns, TOPIC, "compat_java_async", str(COUNT), "60", seconds=120
        )
    check_received(pushed, "Java push consumer")
