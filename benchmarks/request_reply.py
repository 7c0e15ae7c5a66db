"""Request-reply round trips: ``--requesters`` concurrent tasks sharing one
pyrocket Producer call ``request`` (1 KiB bodies); one PushConsumer with its
own producer answers each with ``create_reply_message``; against
``pyrocket up`` in a child process (its data in a temporary directory, the
replies stored as ``storeReplyMessageEnable`` has it by default).

    python benchmarks/request_reply.py [--requesters 16 --seconds 5 --size 1024]

Prints the round; the last line is one JSON object.
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
from pyrocket.client import Producer, PushConsumer, create_reply_message, new_message
from pyrocket.protocol.bodies.client import ConsumeFromWhere

TOPIC = "RequestBenchTopic"


async def replier(ns: str, task_status: trio.TaskStatus[None]) -> None:
    consumer = PushConsumer(
        "bench_repliers",
        [ns],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        rebalance_interval=0.5,
        poll_name_server_interval=0.5,
    )
    consumer.subscribe(TOPIC)
    async with (
        consumer,
        Producer("bench_reply_producers", [ns], client_ip="127.0.0.1") as producer,
    ):
        task_status.started()
        async with trio.open_nursery() as nursery:
            async for message in consumer:
                reply = create_reply_message(message, message.body)
                nursery.start_soon(producer.send, reply)


async def run(args: argparse.Namespace, ns: str) -> dict[str, float]:
    body = b"x" * args.size
    latencies: list[float] = []
    async with trio.open_nursery() as outer:
        await outer.start(replier, ns)
        async with Producer("bench_requesters", [ns], client_ip="127.0.0.1") as producer:
            await producer.request(new_message(TOPIC, body), 30)  # topic, route, rebalance
            deadline = trio.current_time() + args.seconds

            async def requester() -> None:
                while trio.current_time() < deadline:
                    start = time.perf_counter()
                    await producer.request(new_message(TOPIC, body), 10)
                    latencies.append(time.perf_counter() - start)

            async with trio.open_nursery() as nursery:
                for _ in range(args.requesters):
                    nursery.start_soon(requester)
        outer.cancel_scope.cancel()
    latencies.sort()
    rate = len(latencies) / args.seconds
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(
        f"request-reply: {len(latencies)} round trips in {args.seconds}s: {rate:.0f}/s, "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    )
    return {
        "round_trips_per_s": round(rate),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requesters", type=int, default=16)
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
