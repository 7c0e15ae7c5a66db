"""Transactional send + commit throughput next to plain sends: pyrocket's
Producer and TransactionProducer (``--senders`` concurrent tasks, 1 KiB
bodies, the local transaction committing at once) against ``pyrocket up``
in a child process (its data in a temporary directory). Afterwards a
consumer reads the transactional topic back, so the figure counts only
commits that reached the topic.

    python benchmarks/transactions.py [--senders 16 --seconds 5 --size 1024]

Prints each phase; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.client import start_up
from pyrocket.client import (
    LocalTransactionState,
    Producer,
    PushConsumer,
    TransactionProducer,
    new_message,
)
from pyrocket.protocol.bodies.client import ConsumeFromWhere

PLAIN_TOPIC = "PlainBenchTopic"
TX_TOPIC = "TxBenchTopic"


async def timed_sends(send: object, topic: str, senders: int, seconds: float, size: int) -> int:
    body = b"x" * size
    sent = 0

    async def sender() -> None:
        nonlocal sent
        while trio.current_time() < deadline:
            await send(new_message(topic, body))  # type: ignore[operator]
            sent += 1

    await send(new_message(topic, body))  # type: ignore[operator]  # creates the topic
    deadline = trio.current_time() + seconds
    async with trio.open_nursery() as nursery:
        for _ in range(senders):
            nursery.start_soon(sender)
    return sent + 1


async def consumed(ns: str, topic: str, count: int) -> int:
    consumer = PushConsumer(
        "bench_tx_consumers",
        [ns],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
    )
    consumer.subscribe(topic)
    received = 0
    async with consumer:
        while received < count:
            batch = await consumer.poll(max_messages=256, timeout=5)
            if not batch:
                break
            received += len(batch)
    return received


async def run(args: argparse.Namespace, ns: str) -> dict[str, float]:
    async with Producer("bench_plain", [ns], client_ip="127.0.0.1") as plain:
        plain_sent = await timed_sends(
            plain.send, PLAIN_TOPIC, args.senders, args.seconds, args.size
        )
    plain_rate = plain_sent / args.seconds
    print(f"plain: {plain_sent} sends in {args.seconds}s: {plain_rate:.0f}/s")
    async with TransactionProducer(
        "bench_tx",
        [ns],
        client_ip="127.0.0.1",
        execute_local=lambda message, arg: LocalTransactionState.COMMIT_MESSAGE,
        check_local=lambda message: LocalTransactionState.COMMIT_MESSAGE,
    ) as tx:
        tx_sent = await timed_sends(
            tx.send_in_transaction, TX_TOPIC, args.senders, args.seconds, args.size
        )
    tx_rate = tx_sent / args.seconds
    print(f"transactional: {tx_sent} send + commit in {args.seconds}s: {tx_rate:.0f}/s")
    start = time.perf_counter()
    visible = await consumed(ns, TX_TOPIC, tx_sent)
    print(f"committed and consumed: {visible} of {tx_sent} ({time.perf_counter() - start:.1f}s)")
    return {
        "plain_send_per_s": round(plain_rate),
        "txn_send_commit_per_s": round(tx_rate),
        "txn_commit_ratio_of_plain_pct": round(100 * tx_rate / plain_rate, 1),
        "txn_committed_consumed_count": visible,
        "txn_sent_count": tx_sent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        process, ns = start_up(Path(data))
        try:
            figures = trio.run(run, args, ns)
        finally:
            process.terminate()
            process.wait(30)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
