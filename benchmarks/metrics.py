"""The cost of one broker ``/metrics`` scrape over many topics and groups.

A source with ``--topics`` topics (each with one consumer group and its
offsets) stands in for the broker. The benchmark times the scrape's walk of
the tables on the event loop (in total, and the longest stretch without a
checkpoint, seen by another task) and the text built in the worker thread.

    python benchmarks/metrics.py [--topics 1000 --topics 10000]

Prints each size; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping

import trio
from prometheus_client import generate_latest

from pyrocket.broker.metrics import BrokerLabels, Rate, broker_registry


class Source:
    """``count`` topics T<i>, each read by group G<i> with a backlog of i."""

    def __init__(self, count: int) -> None:
        self.count = count

    def labels(self) -> BrokerLabels:
        return BrokerLabels("bench", "broker-a", "127.0.0.1", "127.0.0.1:10911", 0)

    def broker_rates(self) -> tuple[float, float]:
        return 100.0, 100.0

    def topic_put_rates(self) -> Mapping[str, Rate]:
        return {f"T{i}": Rate(1.0, 1024.0) for i in range(self.count)}

    def group_get_rates(self) -> Mapping[tuple[str, str], Rate]:
        return {(f"T{i}", f"G{i}"): Rate(1.0, 1024.0) for i in range(self.count)}

    def send_back_rates(self) -> Mapping[tuple[str, str], float]:
        return {("T0", "G0"): 0.5}

    def topic_names(self) -> list[str]:
        return [f"T{i}" for i in range(self.count)]

    def topic_max_offset(self, topic: str) -> int:
        return 2 * int(topic[1:])

    def offset_keys(self) -> list[tuple[str, str]]:
        return [(f"T{i}", f"G{i}") for i in range(self.count)]

    def group_offsets(self, topic: str, group: str) -> tuple[int, int] | None:
        return 2 * int(topic[1:]), int(topic[1:])

    def online_consumers(self, group: str) -> tuple[int, str]:
        return 1, "1"

    def runtime_figures(self) -> Mapping[str, float]:
        return {}


async def measure(count: int) -> dict[str, float]:
    registry, collector = broker_registry(Source(count))
    longest = 0.0
    done = False

    async def watch() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await trio.lowlevel.checkpoint()
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await trio.lowlevel.checkpoint()
        begin = time.perf_counter()
        await collector.refresh()
        walked = time.perf_counter()
        done = True
    text = await trio.to_thread.run_sync(generate_latest, registry)
    built = time.perf_counter()
    return {
        "topics": count,
        "walk_ms": round((walked - begin) * 1000, 2),
        "longest_step_ms": round(longest * 1000, 2),
        "text_ms": round((built - walked) * 1000, 2),
        "text_mb": round(len(text) / 1e6, 2),
    }


async def main(sizes: list[int]) -> None:
    results = []
    for count in sizes:
        result = await measure(count)
        print(
            f"{count} topics and groups: walk {result['walk_ms']} ms on the loop "
            f"(longest step {result['longest_step_ms']} ms), "
            f"text {result['text_ms']} ms in a thread ({result['text_mb']} MB)",
            flush=True,
        )
        results.append(result)
    print(json.dumps({"benchmark": "metrics_scrape", "results": results}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, action="append")
    args = parser.parse_args()
    trio.run(main, args.topics or [1000, 10000])
