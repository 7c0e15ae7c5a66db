"""Broker data-plane throughput: SEND_MESSAGE_V2 of 1 KiB messages, then pulls.

A pyrocket broker runs in a child process (``python -m pyrocket broker``, its
store in a temporary directory on the disk holding ``$TMPDIR``), once with
``flushDiskType=ASYNC_FLUSH`` and once with ``SYNC_FLUSH``. It is driven from
``--connections`` client connections with ``--inflight`` sync sends in flight
on each (a send waits for its answer before the next). After the ASYNC_FLUSH
round, every stored message is pulled back (32 per PULL_MESSAGE, one puller
per queue) to measure pull throughput.

    python benchmarks/broker.py [--connections 4 --inflight 16 --seconds 5]
                                [--flush ASYNC_FLUSH] [--flush SYNC_FLUSH]
                                [--also acl --also tls --also index
                                 --also transactions --also sql92]

``--also NAME`` then runs the companion benchmark of one feature
(``benchmarks/<NAME>.py``: sends with ACL or TLS next to plain ones, the
message index on and off, transactional sends with their commits next to
plain sends, SQL92 filtering), one after the other so they never share the
cores, and adds its figures under ``NAME.``.

``BENCH_PROFILE=<file>`` runs the broker under cProfile, writing ``<file>``.

Prints each round; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import PullMessageRequestHeader, SendMessageRequestHeaderV2
from pyrocket.protocol.message import encode_properties
from pyrocket.remoting import ClientConfig, RemotingClient

TOPIC = "BrokerBenchTopic"
QUEUES = 8


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_broker(
    root: Path, flush: str, extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    settings = {
        "brokerIP1": "127.0.0.1",
        "brokerName": "bench-broker",
        "listenPort": "0",
        "storePathRootDir": str(root),
        "flushDiskType": flush,
        "defaultTopicQueueNums": str(QUEUES),
        **(extra or {}),
    }
    profile = os.environ.get("BENCH_PROFILE")
    runner = ["-m", "cProfile", "-o", profile] if profile else []
    command = [sys.executable, *runner, "-m", "pyrocket", "--log-level", "WARNING", "broker"]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    match = re.search(r"\[bench-broker, ([0-9.]+:[0-9]+)\] boot success", line)
    if match is None:
        child.kill()
        raise RuntimeError(f"broker did not start: {line!r}")
    return child, match.group(1)


def send_request(i: int, body: bytes) -> RemotingCommand:
    properties = encode_properties({"KEYS": f"K{i}", "TAGS": "TagBench", "WAIT": "true"})
    header = SendMessageRequestHeaderV2(
        producer_group="bench_producer",
        topic=TOPIC,
        default_topic="TBW102",
        default_topic_queue_nums=QUEUES,
        queue_id=i % QUEUES,
        sys_flag=0,
        born_timestamp=int(time.time() * 1000),
        flag=0,
        properties=properties,
        reconsume_times=0,
        unit_mode=False,
        batch=False,
    )
    return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header, body=body)


async def drive_sends(
    addr: str, connections: int, inflight: int, warmup: float, seconds: float
) -> tuple[int, list[int], int]:
    body = b"x" * 1024
    requests = [send_request(i, body) for i in range(QUEUES * 8)]
    latencies: list[int] = []
    counted = 0
    sent = 0
    measuring = False
    stop = False

    async def sender(client: RemotingClient, start: int) -> None:
        nonlocal counted, sent
        index = start
        clock = time.perf_counter_ns
        while not stop:
            request = requests[index % len(requests)]
            index += 1
            t0 = clock()
            response = await client.invoke_sync(addr, request, 10.0)
            t1 = clock()
            if response.code != ResponseCode.SUCCESS:
                raise RuntimeError(f"send failed: {response!r}")
            sent += 1
            if measuring:
                counted += 1
                latencies.append(t1 - t0)

    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(connections):
            client = await stack.enter_async_context(RemotingClient(ClientConfig()))
            await client.get_connection(addr)
            clients.append(client)
        # Create the topic before measuring.
        await clients[0].invoke_sync(addr, requests[0], 10.0)
        async with trio.open_nursery() as nursery:
            for n, client in enumerate(clients):
                for k in range(inflight):
                    nursery.start_soon(sender, client, n * inflight + k)
            await trio.sleep(warmup)
            measuring = True
            start = time.perf_counter()
            await trio.sleep(seconds)
            measuring = False
            elapsed = time.perf_counter() - start
            stop = True
    return round(counted / elapsed), latencies, sent + 1


async def drive_pulls(addr: str, total: int) -> tuple[int, int]:
    pulled = 0

    async def puller(client: RemotingClient, queue_id: int) -> None:
        nonlocal pulled
        offset = 0
        while True:
            header = PullMessageRequestHeader(
                consumer_group="bench_consumer",
                topic=TOPIC,
                queue_id=queue_id,
                queue_offset=offset,
                max_msg_nums=32,
                sys_flag=0x4,
                commit_offset=0,
                suspend_timeout_millis=0,
                subscription="*",
                sub_version=0,
                expression_type="TAG",
            )
            request = RemotingCommand.request(RequestCode.PULL_MESSAGE, header)
            response = await client.invoke_sync(addr, request, 10.0)
            if response.code != ResponseCode.SUCCESS:
                return
            offset = int((response.ext_fields or {})["nextBeginOffset"])
            body = response.body or b""
            count = 0
            position = 0
            while position < len(body):
                position += int.from_bytes(body[position : position + 4], "big")
                count += 1
            pulled += count

    async with RemotingClient(ClientConfig()) as client:
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for queue_id in range(QUEUES):
                nursery.start_soon(puller, client, queue_id)
        elapsed = time.perf_counter() - start
    if pulled != total:
        raise RuntimeError(f"pulled {pulled} messages, {total} were stored")
    return round(pulled / elapsed), pulled


def percentile(sorted_values: list[int], fraction: float) -> int:
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return round(sorted_values[index] / 1000)


def run_round(flush: str, args: argparse.Namespace, pull: bool) -> dict[str, int | float]:
    with tempfile.TemporaryDirectory(prefix="pyrocket-bench-") as tmp:
        child, addr = start_broker(Path(tmp), flush)
        try:
            cpu_before = cpu_seconds(child.pid)
            rate, latencies, sent = trio.run(
                drive_sends, addr, args.connections, args.inflight, args.warmup, args.seconds
            )
            cpu = cpu_seconds(child.pid) - cpu_before
            latencies.sort()
            key = "async_flush" if flush == "ASYNC_FLUSH" else "sync_flush"
            result: dict[str, int | float] = {
                f"send_{key}_msgs_per_s": rate,
                f"send_{key}_p50_us": percentile(latencies, 0.50),
                f"send_{key}_p99_us": percentile(latencies, 0.99),
                f"broker_cpu_us_per_send_{key}": round(cpu * 1e6 / max(sent, 1), 1),
            }
            print(
                f"{flush}: {args.connections} connections x {args.inflight} in flight, 1 KiB "
                f"SEND_MESSAGE_V2: {rate} msgs/s, p50 {result[f'send_{key}_p50_us']} us, "
                f"p99 {result[f'send_{key}_p99_us']} us, broker CPU "
                f"{result[f'broker_cpu_us_per_send_{key}']} us/send",
                flush=True,
            )
            if pull:
                pull_rate, pulled = trio.run(drive_pulls, addr, sent)
                result["pull_msgs_per_s"] = pull_rate
                result["pulled_msgs"] = pulled
                print(f"pull: {pulled} messages, {pull_rate} msgs/s", flush=True)
        finally:
            child.terminate()
            child.wait(timeout=30)
    return result


#: ``--also`` names and the companion benchmark each runs.
COMPANIONS = {
    "acl": "acl.py",
    "tls": "tls.py",
    "index": "index.py",
    "transactions": "transactions.py",
    "sql92": "sql92_filter.py",
}


def run_companion(name: str, seconds: float) -> dict[str, int | float]:
    """Run ``benchmarks/<companion>`` in its own process; its figures (the
    last line's JSON object), each named ``name.figure``."""
    script = Path(__file__).resolve().parent / COMPANIONS[name]
    done = subprocess.run(
        [sys.executable, str(script), "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    print(f"{name}: {lines[-1]}", flush=True)
    figures = json.loads(lines[-1])
    return {f"{name}.{key}": value for key, value in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument(
        "--flush",
        choices=["ASYNC_FLUSH", "SYNC_FLUSH"],
        action="append",
        help="run only these flush types (default: both)",
    )
    parser.add_argument(
        "--also",
        choices=sorted(COMPANIONS),
        action="append",
        default=[],
        help="then run this feature's companion benchmark too",
    )
    args = parser.parse_args()
    figures: dict[str, int | float] = {}
    flushes = args.flush or ["ASYNC_FLUSH", "SYNC_FLUSH"]
    for flush in flushes:
        figures.update(run_round(flush, args, pull=flush == "ASYNC_FLUSH"))
    for name in args.also:
        figures.update(run_companion(name, args.seconds))
    figures.update({"connections": args.connections, "inflight_per_connection": args.inflight})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
