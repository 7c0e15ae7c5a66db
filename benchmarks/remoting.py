"""Remoting round trips per second: a pyrocket server with an echo processor,
driven from N client connections with K requests in flight on each.

The server runs in a child process (``--serve``) so that server and clients
each have a core. Prints requests/s and latency percentiles; the last line is
one JSON object
(the median of ``--rounds`` rounds, with the slowest and fastest).

    python benchmarks/remoting.py --connections 4 --inflight 16 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyrocket.protocol.codes import RequestCode, ResponseCode, SerializeType
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import (
    ClientConfig,
    Connection,
    RemotingClient,
    RemotingServer,
    ServerConfig,
)


def echo_inline(conn: Connection, request: RemotingCommand) -> RemotingCommand:
    return RemotingCommand(
        code=ResponseCode.SUCCESS, ext_fields=request.ext_fields, body=request.body, flag=1
    )


async def echo(conn: Connection, request: RemotingCommand) -> RemotingCommand:
    return echo_inline(conn, request)


async def serve(serialize: SerializeType, processor: str) -> None:
    server = RemotingServer(ServerConfig(serialize_type=serialize))
    served = 0

    async def counting_echo(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        nonlocal served
        served += 1
        return echo_inline(conn, request)

    def counting_echo_inline(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        nonlocal served
        served += 1
        return echo_inline(conn, request)

    server.register_default_processor(
        counting_echo if processor == "async" else counting_echo_inline
    )
    cpu_start = time.process_time()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        print(port, flush=True)
        # Serve until the parent closes our stdin.
        await trio.to_thread.run_sync(sys.stdin.read)
        nursery.cancel_scope.cancel()
    # The parent reads this after closing our stdin: CPU seconds and requests.
    print(time.process_time() - cpu_start, served, flush=True)


async def drive(
    addr: str,
    connections: int,
    inflight: int,
    warmup: float,
    seconds: float,
    args: argparse.Namespace,
) -> tuple[int, list[int], float]:
    serialize = SerializeType[args.serialize]
    request = RemotingCommand.request(
        RequestCode.GET_ROUTEINFO_BY_TOPIC, body=b"x" * args.body or None
    ).replace(ext_fields={"topic": "BenchmarkTopic"})
    latencies: list[int] = []
    counted = 0
    measuring = False
    stop = False

    async def caller(client: RemotingClient) -> None:
        nonlocal counted
        invoke = client.invoke_sync
        clock = time.perf_counter_ns
        while not stop:
            t0 = clock()
            response = await invoke(addr, request, 10.0)
            t1 = clock()
            if response.code != ResponseCode.SUCCESS:
                raise RuntimeError(f"unexpected answer {response!r}")
            if measuring:
                counted += 1
                latencies.append(t1 - t0)

    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(connections):
            client = RemotingClient(ClientConfig(serialize_type=serialize))
            clients.append(await stack.enter_async_context(client))
            await client.get_connection(addr)
        async with trio.open_nursery() as nursery:
            for client in clients:
                for _ in range(inflight):
                    nursery.start_soon(caller, client)
            await trio.sleep(warmup)
            measuring = True
            start = time.perf_counter()
            cpu_start = time.process_time()
            await trio.sleep(seconds)
            measuring = False
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            stop = True
    return round(counted / elapsed), latencies, cpu / max(counted, 1)


def percentile(sorted_values: list[int], fraction: float) -> float:
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="report the median round")
    parser.add_argument("--body", type=int, default=0, help="request body bytes")
    parser.add_argument("--serialize", choices=["JSON", "ROCKETMQ"], default="JSON")
    parser.add_argument(
        "--processor",
        choices=["async", "sync"],
        default="async",
        help="echo as a coroutine (run on workers) or a plain function (run inline)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve, SerializeType[args.serialize], args.processor)
        return
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--serialize",
            args.serialize,
            "--processor",
            args.processor,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    rounds: list[tuple[int, float, float]] = []
    client_cpus: list[float] = []
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        for number in range(1, args.rounds + 1):
            rps, latencies, client_cpu = trio.run(
                drive,
                f"127.0.0.1:{port}",
                args.connections,
                args.inflight,
                args.warmup,
                args.seconds,
                args,
            )
            latencies.sort()
            p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
            rounds.append((rps, p50, p99))
            client_cpus.append(client_cpu)
            print(
                f"round {number}: {args.connections} connections x {args.inflight} in flight, "
                f"{args.serialize}, {args.processor} echo, body {args.body} B: {rps} requests/s, "
                f"p50 {p50:.0f} us, p99 {p99:.0f} us",
                flush=True,
            )
    finally:
        assert child.stdin is not None
        child.stdin.close()
        assert child.stdout is not None
        server_cpu, served = child.stdout.readline().split()
        child.wait(timeout=10)
    rps, p50, p99 = sorted(rounds)[len(rounds) // 2]
    print(
        json.dumps(
            {
                "remoting_rps": rps,
                "remoting_p50_us": round(p50),
                "remoting_p99_us": round(p99),
                "remoting_rps_min": min(r[0] for r in rounds),
                "remoting_rps_max": max(r[0] for r in rounds),
                "client_cpu_us_per_request": round(
                    sorted(client_cpus)[len(client_cpus) // 2] * 1e6, 1
                ),
                "server_cpu_us_per_request": round(
                    float(server_cpu) / max(int(served), 1) * 1e6, 1
                ),
                "processor": args.processor,
                "connections": args.connections,
                "inflight_per_connection": args.inflight,
                "rounds": len(rounds),
            }
        )
    )


if __name__ == "__main__":
    main()
