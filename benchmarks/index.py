"""Message index cost and query speed: broker sends, store puts, queries.

0. Send throughput of a broker (child process, as benchmarks/broker.py:
   1 KiB SEND_MESSAGE_V2 with KEYS and UNIQ_KEY as a Java producer sends,
   ASYNC_FLUSH) with ``messageIndexEnable`` true and false, alternated
   ``--rounds`` times; the broker's CPU per send is the steadier figure on a
   shared machine.
1. Put throughput of 1 KiB messages carrying KEYS and UNIQ_KEY (what a Java
   or pyrocket producer sends), ASYNC_FLUSH, with ``messageIndexEnable``
   true and false, alternated ``--rounds`` times (the best of each kept, as
   the machine is shared).
2. Query latency: a store with ``--indexed`` messages in its index answers
   ``query_message`` (what QUERY_MESSAGE awaits: index chains, then the
   records read, in a worker thread) for keys of 10 stored messages each.
   Only ``--stored`` of the indexed messages are real records; the rest are
   index entries built straight through ``IndexService.build`` (2 keys each,
   like a sent message), because putting a million messages takes longer
   than this benchmark may run. Their keys share hash slots with the
   queried ones, as a full index's would.

3. The index work of one message measured alone (key hashes and entries,
   CPU time, best of 3), as a share of a send's and of a put's CPU: the
   steadiest estimate of the throughput the index costs on a busy machine.

    python benchmarks/index.py [--seconds 3 --rounds 2 --indexed 1000000]

Prints each figure; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import broker as bench_broker  # benchmarks/broker.py

from pyrocket.broker.store import BrokerMessage, MessageStoreConfig, open_message_store
from pyrocket.broker.store.index import IndexService
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import SendMessageRequestHeaderV2
from pyrocket.protocol.message import HostPort, encode_properties

TOPIC = "IndexBench"
BORN = HostPort.of("10.0.0.1", 50000)
STORE = HostPort.of("127.0.0.1", 10911)
BODY = b"x" * 1024


def _message(number: int, key: str) -> BrokerMessage:
    # As SEND_MESSAGE builds it: the properties string kept, parsed to a dict.
    properties = encode_properties(
        {"KEYS": key, "UNIQ_KEY": f"0A000001C35000000000000000{number:06X}", "TAGS": "T"}
    )
    return BrokerMessage.from_properties_string(
        TOPIC, number % 8, BODY, properties, born_host=BORN, store_host=STORE
    )


def _config(root: Path, index: bool, **extra: object) -> MessageStoreConfig:
    return MessageStoreConfig(
        store_path_root_dir=str(root),
        message_index_enable=index,
        **extra,  # type: ignore[arg-type]
    )


def _send_request(i: int, body: bytes) -> RemotingCommand:
    """benchmarks/broker.py's send, with the UNIQ_KEY a Java producer adds."""
    properties = encode_properties(
        {
            "KEYS": f"K{i}",
            "UNIQ_KEY": f"7F000001{os.getpid() & 0xFFFF:04X}00000000{i:012X}",
            "TAGS": "TagBench",
            "WAIT": "true",
        }
    )
    header = SendMessageRequestHeaderV2(
        producer_group="bench_producer",
        topic=bench_broker.TOPIC,
        default_topic="TBW102",
        default_topic_queue_nums=bench_broker.QUEUES,
        queue_id=i % bench_broker.QUEUES,
        sys_flag=0,
        born_timestamp=int(time.time() * 1000),
        flag=0,
        properties=properties,
        reconsume_times=0,
        unit_mode=False,
        batch=False,
    )
    return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header, body=body)


def broker_round(index: bool, seconds: float) -> tuple[int, float]:
    """(sends per second, broker CPU microseconds per send)."""
    bench_broker.send_request = _send_request
    with tempfile.TemporaryDirectory(prefix="pyrocket-bench-") as tmp:
        child, addr = bench_broker.start_broker(
            Path(tmp), "ASYNC_FLUSH", {"messageIndexEnable": str(index).lower()}
        )
        try:
            before = bench_broker.cpu_seconds(child.pid)
            rate, _, sent = trio.run(bench_broker.drive_sends, addr, 4, 16, 1.0, seconds)
            cpu = bench_broker.cpu_seconds(child.pid) - before
        finally:
            child.terminate()
            child.wait(timeout=30)
    return rate, cpu * 1e6 / max(sent, 1)


async def put_rate(index: bool, seconds: float) -> tuple[float, float]:
    """(messages per wall second, CPU microseconds per message): the CPU
    figure is what a shared machine's load disturbs least."""
    with tempfile.TemporaryDirectory() as root:
        async with open_message_store(_config(Path(root), index)) as store:
            number = 0
            for _ in range(2000):  # warm-up (file creation)
                await store.put_message(_message(number, f"order-{number}"))
                number += 1
            start = time.perf_counter()
            cpu = time.process_time()
            deadline = start + seconds
            while time.perf_counter() < deadline:
                for _ in range(200):
                    await store.put_message(_message(number, f"order-{number}"))
                    number += 1
            count = number - 2000
            return (
                count / (time.perf_counter() - start),
                (time.process_time() - cpu) / count * 1e6,
            )


def index_cpu_per_message(count: int = 50_000, rounds: int = 3) -> float:
    """CPU microseconds the index adds to one put, measured alone (what a
    put with the index on does more: the key hashes and the entries), the
    least of ``rounds``: far steadier than the difference of two loaded runs."""
    best = float("inf")
    messages = [_message(number, f"order-{number}") for number in range(count)]
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as root:
            service = IndexService(Path(root), 5_000_000, 20_000_000)
            service.build(["warm"], 0, 1, blocking=True)
            now = 1_700_000_000_000
            cpu = time.process_time()
            for number, message in enumerate(messages):
                hashes = service.key_hashes(message.topic, message.properties)
                if service.room_for(len(hashes)):
                    service.build_hashes(hashes, 1000 + number * 1200, now)
            best = min(best, (time.process_time() - cpu) / count * 1e6)
            service.close()
    return best


async def query_latency(indexed: int, stored: int, queries: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as root:
        # Java's default proportion of slots to entries (1 : 4).
        entries = indexed * 2 + stored * 2 + 16
        config = _config(
            Path(root), True, max_index_num=entries, max_hash_slot_num=max(entries // 4, 1)
        )
        async with open_message_store(config) as store:
            keys = stored // 10
            for number in range(stored):
                await store.put_message(_message(number, f"hot-{number % keys}"))
            index = store._files.index
            assert index is not None
            now = store.now()
            built = time.perf_counter()
            offset = store.max_phy_offset
            for number in range(indexed - stored):
                index.build(
                    [f"{TOPIC}#order-{number}", f"{TOPIC}#U{number:026X}"],
                    offset + number * 1200,
                    now,
                )
            build_s = time.perf_counter() - built
            latencies: list[float] = []
            found = 0
            for number in range(queries):
                start = time.perf_counter()
                result = await store.query_message(TOPIC, f"hot-{number % keys}", 32, 0, 2**63 - 1)
                latencies.append((time.perf_counter() - start) * 1000)
                found += len(result.messages)
            assert found == queries * 10, found
            latencies.sort()
            return {
                "index_entries": index.files[-1].index_count - 1,
                "index_build_entries_per_s": round((indexed - stored) * 2 / build_s),
                "query_p50_ms": round(statistics.median(latencies), 3),
                "query_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
                "query_max_ms": round(latencies[-1], 3),
            }


def broker_figures(args: argparse.Namespace) -> dict[str, float]:
    on: list[tuple[int, float]] = []
    off: list[tuple[int, float]] = []
    for _ in range(args.rounds):
        off.append(broker_round(False, args.seconds))
        on.append(broker_round(True, args.seconds))
    cpu_off, cpu_on = min(c for _, c in off), min(c for _, c in on)
    figures: dict[str, float] = {
        "send_msgs_per_s_index_off": max(r for r, _ in off),
        "send_msgs_per_s_index_on": max(r for r, _ in on),
        "broker_cpu_us_per_send_index_off": round(cpu_off, 1),
        "broker_cpu_us_per_send_index_on": round(cpu_on, 1),
        "send_index_cost_percent": round(100 * (1 - cpu_off / cpu_on), 1),
    }
    print(
        f"sends: index off {figures['send_msgs_per_s_index_off']}/s {cpu_off:.1f} us CPU, "
        f"on {figures['send_msgs_per_s_index_on']}/s {cpu_on:.1f} us CPU",
        flush=True,
    )
    return figures


async def run(args: argparse.Namespace) -> dict[str, float]:
    on: list[tuple[float, float]] = []
    off: list[tuple[float, float]] = []
    for _ in range(args.rounds):
        off.append(await put_rate(False, args.seconds))
        on.append(await put_rate(True, args.seconds))
    rate_off, rate_on = max(r for r, _ in off), max(r for r, _ in on)
    cpu_off, cpu_on = min(c for _, c in off), min(c for _, c in on)
    figures: dict[str, float] = {
        "put_msgs_per_s_index_off": round(rate_off),
        "put_msgs_per_s_index_on": round(rate_on),
        "put_cpu_us_per_msg_index_off": round(cpu_off, 1),
        "put_cpu_us_per_msg_index_on": round(cpu_on, 1),
        # Throughput lost to the index, from CPU per message (1 - off/on).
        "index_cost_percent": round(100 * (1 - cpu_off / cpu_on), 1),
    }
    print(
        f"puts: index off {rate_off:.0f}/s {cpu_off:.1f} us CPU each, "
        f"on {rate_on:.0f}/s {cpu_on:.1f} us CPU each",
        flush=True,
    )
    figures.update(await query_latency(args.indexed, args.stored, args.queries))
    figures["indexed_messages"] = args.indexed
    figures["stored_messages"] = args.stored
    print(
        f"query over {args.indexed} indexed messages: p50 {figures['query_p50_ms']} ms, "
        f"p99 {figures['query_p99_ms']} ms",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--indexed", type=int, default=1_000_000)
    parser.add_argument("--stored", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    figures = broker_figures(args)
    figures.update(trio.run(run, args))
    alone = index_cpu_per_message()
    figures["index_cpu_us_per_msg_alone"] = round(alone, 1)
    figures["index_share_of_send_cpu_percent"] = round(
        100 * alone / figures["broker_cpu_us_per_send_index_off"], 1
    )
    figures["index_share_of_put_cpu_percent"] = round(
        100 * alone / figures["put_cpu_us_per_msg_index_off"], 1
    )
    print(
        f"index work alone: {alone:.1f} us CPU per message "
        f"({figures['index_share_of_send_cpu_percent']}% of a send's broker CPU)",
        flush=True,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
