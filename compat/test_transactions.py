"""Transactional messages across implementations (skipped without
ROCKETMQ_HOME):

- Java's TransactionMQProducer through a pyrocket broker (registered with a
  Java NameServer): commit, rollback, and "unknown" settled by the broker's
  check-back either way; a Java push consumer then receives exactly the
  committed messages.
- pyrocket's TransactionProducer through a Java broker: the same four kinds,
  read back by pyrocket's PushConsumer.

The Java side is ``compat/java/TransactionClient.java`` in source-file mode
(Java 11 or newer).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import trio

from compat.java_cluster import JavaCluster, _java_major, free_port
from compat.test_broker_control import TIMING, pyrocket_broker
from compat.test_broker_control import start_namesrv as start_java_namesrv
from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.topic_config import RMQ_SYS_TRANS_HALF_TOPIC
from pyrocket.client import LocalTransactionState, TransactionProducer, new_message
from pyrocket.client.consumer import PushConsumer
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from pyrocket.protocol.message import Message, MessageExt
from tests.remoting.helpers import wait_until

CLIENT = Path(__file__).with_name("java") / "TransactionClient.java"
EACH = 5
KINDS = ("commit", "rollback", "unknown-commit", "unknown-rollback")
COMMITTED = {f"{kind}-{i}" for kind in ("commit", "unknown-commit") for i in range(EACH)}
#: Java's broker and pyrocket's: check every second what is open for a second.
FAST_CHECKS = {"transactionCheckInterval": "1000", "transactionTimeOut": "1000"}


async def run_client(java: JavaCluster, *args: str, seconds: float) -> list[dict[str, object]]:
    result = await trio.to_thread.run_sync(
        lambda: java.run_class(str(CLIENT), args, timeout=seconds)
    )
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def needs_source_mode() -> None:
    if _java_major() < 11:
        pytest.skip("running TransactionClient.java from source needs Java 11 or newer")


async def test_java_transaction_producer_through_a_pyrocket_broker(
    java: JavaCluster, tmp_path: Path
) -> None:
    needs_source_mode()
    ns_port = free_port()
    await start_java_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    config = BrokerSettings.from_properties(
        {
            "brokerClusterName": "DefaultCluster",
            "brokerName": "pybroker",
            "brokerId": "0",
            "brokerIP1": "127.0.0.1",
            "brokerIP2": "127.0.0.1",
            "listenPort": str(free_port()),
            "namesrvAddr": ns,
            "storePathRootDir": str(tmp_path / "pystore"),
            "flushDiskType": "ASYNC_FLUSH",
            "autoCreateTopicEnable": "true",
            **FAST_CHECKS,
        }
    )
    topic = "JavaTxThroughPyrocket"
    with trio.fail_after(400):
        async with pyrocket_broker(config) as broker:
            await trio.sleep(TIMING.first_delay)
            produced = await run_client(
                java, "produce", ns, topic, "compat_java_tx", str(EACH), "60", seconds=180
            )
            *checks, summary = produced
            assert summary == {"sent_ok": 4 * EACH, "checked": 2 * EACH}
            checked = Counter(str(line["checked"]) for line in checks)
            assert set(checked) == {
                f"{kind}-{i}"
                for kind in ("unknown-commit", "unknown-rollback")
                for i in range(EACH)
            }
            # The producer sees the message under its real topic.
            assert {line["topic"] for line in checks} == {topic}
            consumed = await run_client(
                java,
                "consume",
                ns,
                topic,
                "compat_java_tx_consumer",
                str(len(COMMITTED)),
                "3",
                seconds=180,
            )
            *messages, done = consumed
            bodies = Counter(str(m["body"]) for m in messages)
            assert set(bodies) == COMMITTED and done == {"done": len(COMMITTED)}
            # Java's committed messages keep TRAN_MSG in their properties.
            assert {m["tran"] for m in messages} == {"true"}
            assert broker.store.get_max_offset_in_queue(RMQ_SYS_TRANS_HALF_TOPIC, 0) >= 4 * EACH


async def test_pyrocket_transaction_producer_through_a_java_broker(
    java: JavaCluster, tmp_path: Path
) -> None:
    ns_port, port = free_port(), free_port(2)
    await start_java_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    await trio.to_thread.run_sync(lambda: java.start_broker("javabroker", port, ns, FAST_CHECKS))
    topic = "PyrocketTxThroughJava"
    checked: list[MessageExt] = []

    def execute(message: Message, arg: object) -> LocalTransactionState:
        body = message.body.decode()
        if body.startswith("commit-"):
            return LocalTransactionState.COMMIT_MESSAGE
        if body.startswith("rollback-"):
            return LocalTransactionState.ROLLBACK_MESSAGE
        return LocalTransactionState.UNKNOW

    def check(message: MessageExt) -> LocalTransactionState:
        checked.append(message)
        if message.body.startswith(b"unknown-commit-"):
            return LocalTransactionState.COMMIT_MESSAGE
        return LocalTransactionState.ROLLBACK_MESSAGE

    with trio.fail_after(400):
        async with TransactionProducer(
            "compat_py_tx",
            [ns],
            client_ip="127.0.0.1",
            execute_local=execute,
            check_local=check,
            heartbeat_interval=1.0,
        ) as producer:
            for i in range(EACH):
                for kind in KINDS:
                    result = await producer.send_in_transaction(
                        new_message(topic, f"{kind}-{i}".encode())
                    )
                    assert result.status.name == "SEND_OK"
            await wait_until(lambda: len({m.body for m in checked}) == 2 * EACH, 0.5)
            assert {m.topic for m in checked} == {topic}
            consumer = PushConsumer(
                "compat_py_tx_consumer",
                [ns],
                client_ip="127.0.0.1",
                consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
            )
            consumer.subscribe(topic)
            seen: set[str] = set()
            async with consumer:
                while len(seen) < len(COMMITTED):
                    seen.add((await consumer.receive()).body.decode())
                with trio.move_on_after(3):
                    while True:
                        seen.add((await consumer.receive()).body.decode())
            assert seen == COMMITTED
