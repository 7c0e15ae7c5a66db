"""Message store throughput: puts/s of 1 KiB messages under ASYNC_FLUSH and
SYNC_FLUSH (concurrent putters share fsyncs), and messages read per second.

Usage: ``python benchmarks/store.py [--messages N] [--profile]``. Runs in a
temporary directory on the disk holding ``$TMPDIR``; the last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyrocket.broker.store import (
    BrokerMessage,
    FlushDiskType,
    GetMessageStatus,
    MessageStore,
    MessageStoreConfig,
    PutMessageStatus,
    open_message_store,
)
from pyrocket.protocol.message import HostPort, encode_properties, java_properties

BODY = b"x" * 1024
QUEUES = 8
BORN = HostPort.of("10.0.0.2", 50000)
STORE = HostPort.of("10.0.0.1", 10911)


def _message(number: int) -> BrokerMessage:
    """What SEND_MESSAGE_V2 hands the store: the producer's properties string
    (kept verbatim) and its parse (built outside the timed loop)."""
    properties = java_properties(
        [
            ("KEYS", f"K{number}"),
            ("UNIQ_KEY", f"0A0000025D65FFFFFFFF9FA5220C{number % 65536:04X}"),
            ("WAIT", "true"),
            ("TAGS", "TagA"),
        ]
    )
    return BrokerMessage.from_properties_string(
        "BenchTopic",
        number % QUEUES,
        BODY,
        encode_properties(properties),
        born_host=BORN,
        store_host=STORE,
        born_timestamp=1_790_000_000_000,
    )


def _config(root: str, flush: FlushDiskType) -> MessageStoreConfig:
    return MessageStoreConfig(
        store_path_root_dir=root,
        mapped_file_size_commit_log=256 * 1024 * 1024,
        flush_disk_type=flush,
    )


async def _put(store: MessageStore, messages: list[BrokerMessage], putters: int) -> float:
    chunks = [messages[i::putters] for i in range(putters)]

    async def putter(chunk: list[BrokerMessage]) -> None:
        for item in chunk:
            result = await store.put_message(item)
            if result.status is not PutMessageStatus.PUT_OK:
                raise RuntimeError(result.status.name)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for chunk in chunks:
            nursery.start_soon(putter, chunk)
    return time.perf_counter() - start


async def _read_all(store: MessageStore) -> tuple[int, float]:
    count = 0
    start = time.perf_counter()
    for queue_id in range(QUEUES):
        offset = 0
        while True:
            result = await store.get_message("bench", "BenchTopic", queue_id, offset, 32)
            assert result is not None
            if result.status is not GetMessageStatus.FOUND:
                break
            count += result.message_count
            offset = result.next_begin_offset
    return count, time.perf_counter() - start


async def run(messages: int, profile: bool) -> dict[str, float]:
    batch = [_message(n) for n in range(messages)]
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as root:
        async with open_message_store(_config(root + "/async", FlushDiskType.ASYNC_FLUSH)) as store:
            await _put(store, batch[:2000], 1)  # warm up: file creation, caches
            profiler = cProfile.Profile() if profile else None
            if profiler:
                profiler.enable()
            elapsed = await _put(store, batch, 1)
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
            figures["async_put_per_s"] = round(messages / elapsed)
            figures["async_put_us_per_msg"] = round(elapsed / messages * 1e6, 1)
            elapsed = await _put(store, batch, 16)
            figures["async_put_16_putters_per_s"] = round(messages / elapsed)
            count, elapsed = await _read_all(store)
            figures["read_msgs_per_s"] = round(count / elapsed)
            figures["read_us_per_msg"] = round(elapsed / count * 1e6, 1)
        sync_messages = batch[: max(2000, messages // 5)]
        async with open_message_store(_config(root + "/sync", FlushDiskType.SYNC_FLUSH)) as store:
            elapsed = await _put(store, sync_messages[:200], 1)
            figures["sync_put_1_putter_per_s"] = round(200 / elapsed)
            elapsed = await _put(store, sync_messages, 64)
            figures["sync_put_64_putters_per_s"] = round(len(sync_messages) / elapsed)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50000)
    parser.add_argument(
        "--profile", action="store_true", help="print a profile of the ASYNC_FLUSH put loop"
    )
    args = parser.parse_args()
    figures = trio.run(run, args.messages, args.profile)
    for key, value in figures.items():
        print(f"{key:32} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
