"""Client throughput: pyrocket's Producer (sync sends of 1 KiB messages from
``--senders`` concurrent tasks sharing one producer) and PushConsumer (one
consumer reading everything back), against ``pyrocket up`` in a child
process (its data in a temporary directory).

    python benchmarks/client.py [--senders 16 --seconds 5 --size 1024]

Prints each phase; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyrocket.client import Producer, PushConsumer, new_message
from pyrocket.protocol.bodies.client import ConsumeFromWhere

TOPIC = "ClientBenchTopic"
ROOT = Path(__file__).resolve().parents[1]


def start_up(data: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pyrocket", "--log-level", "WARNING", "up", "--dir", str(data),
         "--namesrv-port", "0", "--broker-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"NameServer (\S+),", line)
    if match is None:
        process.kill()
        raise SystemExit(f"pyrocket up did not start: {line!r}")
    return process, match.group(1)


async def produce(ns: str, senders: int, seconds: float, size: int) -> tuple[int, list[float]]:
    latencies: list[float] = []
    body = b"x" * size
    async with Producer("bench_producers", [ns], client_ip="127.0.0.1") as producer:
        await producer.send(new_message(TOPIC, body))  # creates the topic
        deadline = trio.current_time() + seconds

        async def sender() -> None:
            while trio.current_time() < deadline:
                start = time.perf_counter()
                await producer.send(new_message(TOPIC, body, tags="bench"))
                latencies.append(time.perf_counter() - start)

        async with trio.open_nursery() as nursery:
            for _ in range(senders):
                nursery.start_soon(sender)
    return len(latencies) + 1, latencies


async def consume(ns: str, count: int) -> float:
    consumer = PushConsumer(
        "bench_consumers",
        [ns],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
    )
    consumer.subscribe(TOPIC)
    async with consumer:
        start = time.perf_counter()
        received = 0
        while received < count:
            received += len(await consumer.poll(max_messages=256, timeout=10))
        return time.perf_counter() - start


async def run(args: argparse.Namespace, ns: str) -> dict[str, float]:
    sent, latencies = await produce(ns, args.senders, args.seconds, args.size)
    latencies.sort()
    produce_rate = sent / args.seconds
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0
    print(f"produce: {sent} messages in {args.seconds}s: {produce_rate:.0f}/s, p99 {p99:.2f} ms")
    elapsed = await consume(ns, sent)
    consume_rate = sent / elapsed
    print(f"consume: {sent} messages in {elapsed:.2f}s: {consume_rate:.0f}/s")
    return {
        "produce_msgs_per_s": round(produce_rate),
        "produce_p99_ms": round(p99, 2),
        "consume_msgs_per_s": round(consume_rate),
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
