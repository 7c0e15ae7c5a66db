"""SQL92 filtering throughput: how many messages per second one core
evaluates a five-clause selector for, first on property maps (the
evaluation alone), then on stored records as the broker's pull does
(the properties read out of each record, then evaluated), and how long a
selector takes to compile.

    python benchmarks/sql92_filter.py [--seconds 3]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyrocket.broker.consumer_filter import SqlMessageFilter, build_filter_data
from pyrocket.filter import parse
from pyrocket.filter.evaluate import compile_tree
from pyrocket.protocol.bodies.client import SubscriptionData
from pyrocket.protocol.message import HostPort, MessageExt, encode_message

EXPRESSION = (
    "a > 100 AND colour = 'red' AND b BETWEEN 1 AND 1000 "
    "AND region IN ('eu', 'us', 'ap') AND owner IS NOT NULL"
)


def property_maps(count: int) -> list[dict[str, str]]:
    rng = random.Random(7)
    maps = []
    for i in range(count):
        properties = {
            "a": str(rng.randrange(0, 400)),
            "b": str(rng.randrange(0, 1500)),
            "colour": rng.choice(["red", "blue", "green"]),
            "region": rng.choice(["eu", "us", "ap", "sa"]),
            "TAGS": "TagA",
            "KEYS": f"key{i}",
            "UNIQ_KEY": f"{i:032X}",
            "WAIT": "true",
        }
        if rng.random() < 0.9:
            properties["owner"] = "team"
        maps.append(properties)
    return maps


def rate(seconds: float, batch: int, run: Callable[[], object]) -> float:
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        run()
        done += batch
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    maps = property_maps(4096)
    evaluate = compile_tree(parse(EXPRESSION))
    matched = sum(1 for p in maps if evaluate(p) is True)
    eval_rate = rate(args.seconds, len(maps), lambda: [evaluate(p) for p in maps])
    print(f"evaluate: {eval_rate:,.0f} messages/s ({matched} of {len(maps)} match)")

    host = HostPort(bytes([127, 0, 0, 1]), 10911)
    records = [
        encode_message(
            MessageExt(
                topic="BenchTopic",
                body=b"x" * 256,
                properties=p,
                born_host=host,
                store_host=host,
            )
        )
        for p in maps
    ]
    data = build_filter_data("BenchTopic", "bench", EXPRESSION, "SQL92", 1, 0)
    assert data is not None
    message_filter = SqlMessageFilter(SubscriptionData(topic="BenchTopic"), data)
    check = message_filter.is_matched_by_commit_log
    assert sum(1 for r in records if check(r)) == matched
    record_rate = rate(args.seconds, len(records), lambda: [check(r) for r in records])
    print(f"stored records: {record_rate:,.0f} messages/s")

    count = 2000
    start = time.perf_counter()
    for i in range(count):
        parse(f"{EXPRESSION} AND n{i} = {i}")
    compile_us = (time.perf_counter() - start) / count * 1e6
    print(f"parse: {compile_us:,.1f} us per selector")

    print(
        json.dumps(
            {
                "sql92_eval_msgs_per_s": round(eval_rate),
                "sql92_stored_record_filter_msgs_per_s": round(record_rate),
                "sql92_parse_us": round(compile_us, 1),
                "sql92_clauses": 5,
            }
        )
    )


if __name__ == "__main__":
    main()
