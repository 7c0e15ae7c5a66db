"""A flood of PUT_KV_CONFIG against a pyrocket NameServer in a child process.

One connection pipelines ``--puts`` PUT_KV_CONFIG requests (``--window`` in
flight, over ``--keys`` keys, each answered only once kvConfig.json holds it),
then sends as many oneway; meanwhile a second client (pyrocket's
RemotingClient) sends one PUT_KV_CONFIG every ``--other-interval`` ms. The
child's VmRSS is sampled every 20 ms.

Printed: the flood's rate, the other client's latency (p50, p99, max), the
table writes the flood cost, and the RSS growth during the flood over the
child's RSS just before it. The last line is one JSON object.

    python benchmarks/persist_flood.py
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

from pyrocket.client.namesrv_api import NameServerAPI
from pyrocket.namesrv import NameServer, NamesrvConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.frame import FrameSplitter
from pyrocket.protocol.headers import GetKVConfigRequestHeader, PutKVConfigRequestHeader
from pyrocket.remoting import RemotingClient


async def serve(workdir: str) -> None:
    config = NamesrvConfig(
        rocketmq_home=workdir,
        kv_config_path=f"{workdir}/kvConfig.json",
        config_store_path=f"{workdir}/namesrv.properties",
        server_channel_max_idle_time_seconds=0,
    )
    server = NameServer(config)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        print(port, flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # until the parent closes stdin
        writer = server.state.kv.writer
        print(0 if writer is None else writer.rounds, flush=True)
        nursery.cancel_scope.cancel()


class Child:
    """The NameServer child process."""

    def __init__(self, workdir: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", workdir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.addr = f"127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert match is not None
        return int(match.group(1)) / 1024

    def stop(self) -> int:
        """Stop the child; returns the KV writes it made."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        rounds = int(self.process.stdout.readline())
        self.process.wait(timeout=30)
        return rounds


def put_frame(key: str, value: str, opaque: int, oneway: bool) -> bytes:
    request = RemotingCommand.request(
        RequestCode.PUT_KV_CONFIG, PutKVConfigRequestHeader("FLOOD", key, value), oneway=oneway
    )
    return encode(request.replace(opaque=opaque))


async def read_answers(
    stream: trio.SocketStream, splitter: FrameSplitter, count: int
) -> list[RemotingCommand]:
    answers: list[RemotingCommand] = []
    while len(answers) < count:
        payload = splitter.next_frame()
        if isinstance(payload, bytes):
            answers.append(decode(len(payload).to_bytes(4, "big") + payload))
            continue
        data = await stream.receive_some(1 << 16)
        if not data:
            raise RuntimeError("the NameServer closed the connection")
        splitter.feed(bytes(data))
    return answers


async def flood(port: int, puts: int, keys: int, window: int) -> tuple[float, float]:
    """Pipelined then oneway PUTs on one connection; returns both rates (/s)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    splitter = FrameSplitter()
    started = time.perf_counter()
    for start in range(0, puts, window):
        batch = range(start, min(puts, start + window))
        await stream.send_all(
            b"".join(put_frame(f"k{i % keys}", str(i), i + 1, False) for i in batch)
        )
        for answer in await read_answers(stream, splitter, len(batch)):
            if answer.code != ResponseCode.SUCCESS:
                raise RuntimeError(f"flood PUT answered {answer}")
    pipelined = puts / (time.perf_counter() - started)
    started = time.perf_counter()
    for start in range(0, puts, window):
        batch = range(start, min(puts, start + window))
        await stream.send_all(
            b"".join(put_frame(f"k{i % keys}", f"o{i}", puts + i + 1, True) for i in batch)
        )
    # Handled in order: once this is answered every oneway PUT is applied.
    get = RemotingCommand.request(
        RequestCode.GET_KV_CONFIG, GetKVConfigRequestHeader("FLOOD", "k0")
    ).replace(opaque=2 * puts + 1)
    await stream.send_all(encode(get))
    await read_answers(stream, splitter, 1)
    oneway = puts / (time.perf_counter() - started)
    await stream.aclose()
    return pipelined, oneway


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pyrocket-flood-") as workdir:
        child = Child(workdir)
        try:
            async with RemotingClient() as client:
                api = NameServerAPI(client)
                # The table at its full size first, so that RSS growth is
                # what the flood's requests cost.
                await flood(child.port, args.keys, args.keys, args.window)
                await api.put_kv_config("OTHER", "warm-up", "-", child.addr)
                before = child.rss_mb()
                peak = before
                latencies: list[float] = []
                done = trio.Event()
                rates: list[float] = []

                async def flooder() -> None:
                    rates.extend(await flood(child.port, args.puts, args.keys, args.window))
                    done.set()

                async def other() -> None:
                    number = 0
                    while not done.is_set():
                        started = time.perf_counter()
                        await api.put_kv_config("OTHER", f"o{number % 100}", "v", child.addr)
                        latencies.append((time.perf_counter() - started) * 1000)
                        number += 1
                        await trio.sleep(args.other_interval / 1000)

                async def sample() -> None:
                    nonlocal peak
                    while not done.is_set():
                        peak = max(peak, child.rss_mb())
                        await trio.sleep(0.02)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(flooder)
                    nursery.start_soon(other)
                    nursery.start_soon(sample)
        finally:
            writes = child.stop()
    pipelined, oneway = rates
    growth = peak - before
    print(f"flood: {args.puts} pipelined PUTs at {pipelined:.0f}/s, then oneway at {oneway:.0f}/s")
    print(
        f"other client: {len(latencies)} PUTs, p50 {percentile(latencies, 0.5):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
    )
    print(f"kvConfig.json writes: {writes}; VmRSS {before:.1f} MB, growth {growth:.1f} MB")
    return {
        "kv_flood_puts_per_s": round(pipelined),
        "kv_oneway_flood_puts_per_s": round(oneway),
        "other_put_p50_ms": round(percentile(latencies, 0.5), 2),
        "other_put_p99_ms": round(percentile(latencies, 0.99), 2),
        "other_put_max_ms": round(max(latencies), 2),
        "kv_writes": writes,
        "kv_flood_rss_growth_mb": round(growth, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--puts", type=int, default=30_000, help="PUTs per flood phase")
    parser.add_argument("--keys", type=int, default=1_000, help="distinct keys flooded")
    parser.add_argument("--window", type=int, default=500, help="pipelined PUTs in flight")
    parser.add_argument("--other-interval", type=float, default=20, help="ms between other PUTs")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve, args.serve)
        return
    print(json.dumps(trio.run(run, args)))


if __name__ == "__main__":
    main()
