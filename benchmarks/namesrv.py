"""NameServer throughput, latency and memory: a pyrocket NameServer in a child
process, driven from this one.

Phases (each prints a line; the last line is one JSON object):

1. route queries: 10 brokers x 100 topics registered, GET_ROUTEINFO_BY_TOPIC
   for random topics from ``--connections`` connections with ``--inflight``
   requests in flight on each: requests/s, p50/p99 latency;
2. one route query at a time (pyrocket's RemotingClient): p50/p99 latency;
3. REGISTER_BROKER of 100 brokers x 100 topics, round after round, with the
   same DataVersion each time and with a new one each time: registrations/s;
4. resident memory (VmRSS) of a fresh NameServer holding 100 brokers x 1,000
   topics (``--shared-topics``: the same 1,000 topics on every broker;
   default: 1,000 topics of its own per broker).

The load generator pipelines pre-encoded frames over plain sockets (the
requests are built with pyrocket's codec, only the opaque changes), so that
the figures are the server's rather than the client's.

    python benchmarks/namesrv.py --seconds 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyrocket.namesrv import NameServer, NamesrvConfig
from pyrocket.protocol.bodies import (
    DataVersion,
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, encode_json_header
from pyrocket.protocol.frame import FrameSplitter
from pyrocket.protocol.headers import GetRouteInfoRequestHeader, RegisterBrokerRequestHeader
from pyrocket.remoting import RemotingClient

Framer = Callable[[int], bytes]
_OPAQUE = re.compile(rb'"opaque":(-?\d+)')
_CODE = re.compile(rb'^\{"code":(-?\d+)')


# ---------------------------------------------------------------------------
# The server side


async def serve(profile: str | None) -> None:
    workdir = tempfile.mkdtemp(prefix="pyrocket-bench-")
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
        nursery.cancel_scope.cancel()


def serve_main(profile: str | None) -> None:
    if profile is None:
        trio.run(serve, None)
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        trio.run(serve, profile)
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


class Server:
    """The NameServer child process."""

    def __init__(self, profile: str | None = None) -> None:
        command = [sys.executable, __file__, "--serve"]
        if profile:
            command += ["--profile", profile]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.addr = f"127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert match is not None
        return int(match.group(1)) / 1024

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


# ---------------------------------------------------------------------------
# Frames with a settable opaque


def framer(command: RemotingCommand) -> Framer:
    """opaque -> the whole JSON frame of ``command`` with that opaque."""
    header = encode_json_header(command.replace(opaque=0))
    mark = b'"opaque":0,'
    at = header.index(mark) + len(mark) - 2
    head, tail = header[:at], header[at + 1 :]
    body = command.body or b""

    def frame(opaque: int) -> bytes:
        h = head + str(opaque).encode() + tail
        return struct.pack(">iI", 4 + len(h) + len(body), len(h)) + h + body

    return frame


def route_framer(topic: str) -> Framer:
    request = RemotingCommand.request(
        RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader(topic)
    )
    return framer(request)


def topic_names(broker: int, count: int, shared: bool) -> list[str]:
    if shared:
        return [f"BenchTopic-{t:04d}" for t in range(count)]
    return [f"BenchTopic-b{broker:03d}-{t:04d}" for t in range(count)]


class RegisterFramer:
    """REGISTER_BROKER frames of one broker; each call can carry a new
    DataVersion (the body, its CRC and the opaque are spliced into templates
    built once with pyrocket's codec)."""

    _CRC_MARK = 2147483646

    def __init__(self, broker: int, topics: list[str]) -> None:
        self.broker = broker
        configs = {name: TopicConfig(name, 8, 8) for name in topics}
        # The first topic's read queue count can change too (a changed table).
        queues_marker = 1_234_567_891
        configs[topics[0]] = TopicConfig(topics[0], queues_marker, 8)
        marker = 987654321987
        wrapper = TopicConfigSerializeWrapper(configs, DataVersion(1_700_000_000_000, marker))
        body = RegisterBrokerBody(wrapper).encode()
        # dataVersion comes before topicConfigTable (fastjson sorts properties)
        self.body_head, rest = body.split(str(marker).encode())
        self.body_middle, self.body_tail = rest.split(str(queues_marker).encode())
        header = RegisterBrokerRequestHeader(
            broker_name=f"bench-broker-{broker:03d}",
            broker_addr=f"10.1.{broker // 256}.{broker % 256}:10911",
            cluster_name=f"BenchCluster{broker % 4}",
            ha_server_addr=f"10.1.{broker // 256}.{broker % 256}:10912",
            broker_id=0,
            body_crc32=self._CRC_MARK,
        )
        template = encode_json_header(RemotingCommand.request(RequestCode.REGISTER_BROKER, header))
        crc_at = template.index(str(self._CRC_MARK).encode())
        self.h1 = template[:crc_at]
        rest = template[crc_at + len(str(self._CRC_MARK)) :]
        opaque_at = rest.index(b'"opaque":0,') + len(b'"opaque":')
        self.h2, self.h3 = rest[:opaque_at], rest[opaque_at + 1 :]
        self.counter = 0

    def frame(self, opaque: int, new_version: bool, new_table: bool = False) -> bytes:
        if new_version:
            self.counter += 1
        read_queues = str(1 + self.counter % 8 if new_table else 8).encode()
        body = b"".join(
            (
                self.body_head,
                str(self.counter).encode(),
                self.body_middle,
                read_queues,
                self.body_tail,
            )
        )
        crc = str(zlib.crc32(body) & 0x7FFFFFFF).encode()
        header = self.h1 + crc + self.h2 + str(opaque).encode() + self.h3
        return struct.pack(">iI", 4 + len(header) + len(body), len(header)) + header + body


# ---------------------------------------------------------------------------
# Pipelined load over plain sockets


async def pipeline(
    port: int,
    next_frame: Callable[[int], bytes],
    inflight: int,
    warmup: float,
    seconds: float,
    latencies: list[int],
    counted: list[int],
) -> None:
    """Keep ``inflight`` requests outstanding on one connection; record the
    latency of the answers that arrive inside the measured window."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    clock = time.perf_counter_ns
    start = clock()
    measure_from = start + int(warmup * 1e9)
    measure_to = measure_from + int(seconds * 1e9)
    sent_at: dict[int, int] = {}
    opaque = 0
    batch = []
    for _ in range(inflight):
        opaque += 1
        sent_at[opaque] = clock()
        batch.append(next_frame(opaque))
    await stream.send_all(b"".join(batch))
    splitter = FrameSplitter()
    while sent_at:
        data = await stream.receive_some(1 << 16)
        if not data:
            raise RuntimeError("the NameServer closed the connection")
        splitter.feed(bytes(data))
        now = clock()
        batch = []
        while isinstance(payload := splitter.next_frame(), bytes):
            header = payload[4 : 4 + int.from_bytes(payload[1:4], "big")]
            code = _CODE.match(header)
            if code is None or int(code.group(1)) != ResponseCode.SUCCESS:
                raise RuntimeError(f"unexpected answer {header[:300]!r}")
            match = _OPAQUE.search(header)
            assert match is not None
            sent = sent_at.pop(int(match.group(1)))
            if measure_from <= sent and now <= measure_to:
                latencies.append(now - sent)
                counted[0] += 1
            if now < measure_to:
                opaque += 1
                sent_at[opaque] = clock()
                batch.append(next_frame(opaque))
        if batch:
            await stream.send_all(b"".join(batch))
    await stream.aclose()


async def load(
    port: int,
    make: Callable[[int], Callable[[int], bytes]],
    connections: int,
    inflight: int,
    warmup: float,
    seconds: float,
) -> tuple[float, list[int]]:
    latencies: list[int] = []
    counted = [0]
    async with trio.open_nursery() as nursery:
        for number in range(connections):
            nursery.start_soon(
                pipeline, port, make(number), inflight, warmup, seconds, latencies, counted
            )
    return counted[0] / seconds, sorted(latencies)


def percentile(values: list[int], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(fraction * len(values)))] / 1000


# ---------------------------------------------------------------------------
# Phases


async def register_all(port: int, brokers: list[RegisterFramer]) -> None:
    """Register each broker once over one connection (kept by the caller's
    process: the connection is closed at the end, so use a fresh server)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    splitter = FrameSplitter()
    for number, broker in enumerate(brokers, 1):
        await stream.send_all(broker.frame(number, True))
        while not isinstance(splitter.next_frame(), bytes):
            splitter.feed(bytes(await stream.receive_some(1 << 16)))
    # Stay connected: the brokers go when their connection does.
    await trio.sleep_forever()


async def route_phase(args: argparse.Namespace, server: Server) -> dict[str, float]:
    brokers = [RegisterFramer(b, topic_names(b, 100, args.shared_topics)) for b in range(10)]
    topics = sorted({t for b in range(10) for t in topic_names(b, 100, args.shared_topics)})
    framers = [route_framer(t) for t in topics]
    rng = random.Random(7)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(register_all, server.port, brokers)
        await trio.sleep(1.0)

        def make(_: int) -> Callable[[int], bytes]:
            return lambda opaque: rng.choice(framers)(opaque)

        cpu0 = server.cpu_seconds()
        qps, latencies = await load(
            server.port, make, args.connections, args.inflight, args.warmup, args.seconds
        )
        cpu = server.cpu_seconds() - cpu0
        single = await one_at_a_time(server.addr, topics, args.seconds / 2)
        nursery.cancel_scope.cancel()
    result = {
        "route_qps": round(qps),
        "route_p50_us": round(percentile(latencies, 0.5)),
        "route_p99_us": round(percentile(latencies, 0.99)),
        "route_server_cpu_us_per_request": round(
            cpu / max(1, qps * (args.seconds + args.warmup)) * 1e6, 1
        ),
        "route_single_p50_us": round(percentile(single, 0.5)),
        "route_single_p99_us": round(percentile(single, 0.99)),
    }
    print(
        f"routes: {args.connections} connections x {args.inflight} in flight: "
        f"{result['route_qps']} requests/s, p50 {result['route_p50_us']} us, "
        f"p99 {result['route_p99_us']} us; one at a time: p50 {result['route_single_p50_us']} us,"
        f" p99 {result['route_single_p99_us']} us",
        flush=True,
    )
    return result


async def one_at_a_time(addr: str, topics: list[str], seconds: float) -> list[int]:
    """Sequential route queries through pyrocket's RemotingClient."""
    latencies = []
    rng = random.Random(11)
    requests = [
        RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader(t))
        for t in topics
    ]
    async with RemotingClient() as client:
        await client.get_connection(addr)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            request = rng.choice(requests)
            t0 = time.perf_counter_ns()
            response = await client.invoke_sync(addr, request, 5)
            latencies.append(time.perf_counter_ns() - t0)
            assert response.code == ResponseCode.SUCCESS
    return sorted(latencies)


async def register_phase(args: argparse.Namespace, server: Server) -> dict[str, float]:
    per_connection = 100 // args.connections
    result: dict[str, float] = {}
    variants = (
        ("register_per_s", "same DataVersion each time", False, False),
        ("register_changed_per_s", "new DataVersion each time", True, False),
        ("register_table_changed_per_s", "new DataVersion and one topic changed", True, True),
    )
    for key, what, new_version, new_table in variants:
        brokers = [RegisterFramer(b, topic_names(b, 100, args.shared_topics)) for b in range(100)]
        for broker in brokers:
            broker.counter = 1000 if new_version else 0

        def make(
            number: int,
            brokers: list[RegisterFramer] = brokers,
            version: bool = new_version,
            table: bool = new_table,
        ) -> Callable[[int], bytes]:
            mine = brokers[number * per_connection : (number + 1) * per_connection]
            turn = iter(range(1 << 62))

            def next_frame(opaque: int) -> bytes:
                return mine[next(turn) % len(mine)].frame(opaque, version, table)

            return next_frame

        cpu0, wall0 = server.cpu_seconds(), time.perf_counter()
        rate, latencies = await load(
            server.port, make, args.connections, args.inflight, args.warmup, args.seconds
        )
        busy = (server.cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
        result[key] = round(rate)
        result[key.replace("per_s", "p99_us")] = round(percentile(latencies, 0.99))
        print(
            f"registrations of 100 brokers x 100 topics, {what}: {round(rate)}/s, "
            f"p99 {round(percentile(latencies, 0.99))} us, server busy {busy:.0%}",
            flush=True,
        )
    return result


async def memory_phase(args: argparse.Namespace, server: Server, shared: bool) -> float:
    before = server.rss_mb()
    brokers = [RegisterFramer(b, topic_names(b, 1000, shared)) for b in range(100)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(register_all, server.port, brokers)
        # Wait until every broker is in, then ask for every route once (the
        # route cache fills as clients ask).
        await trio.sleep(0.5)
        topics = sorted({t for b in range(100) for t in topic_names(b, 1000, shared)})
        async with RemotingClient() as client:
            while True:
                request = RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_INFO)
                info = await client.invoke_sync(server.addr, request, 30)
                if (info.body or b"").count(b"bench-broker-") >= 300:  # three times each
                    break
                await trio.sleep(0.2)
        framers = [route_framer(t) for t in topics]
        await load(
            server.port,
            lambda n: lambda opaque: framers[(opaque * 4 + n) % len(framers)](opaque),
            4,
            16,
            0.0,
            max(1.0, len(topics) / 20000),
        )
        after = server.rss_mb()
        nursery.cancel_scope.cancel()
    kind = "the same 1,000 topics on each" if shared else "1,000 topics of its own each"
    print(
        f"memory: 100 brokers, {kind} ({len(topics)} topics): VmRSS {after:.1f} MB "
        f"({before:.1f} MB before registering)",
        flush=True,
    )
    return after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--shared-topics", action="store_true")
    parser.add_argument("--profile", help="run the server under cProfile, stats to this file")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--phases", default="route,register,memory", help="comma-separated subset to run"
    )
    args = parser.parse_args()
    if args.serve:
        serve_main(args.profile)
        return
    phases = set(args.phases.split(","))
    figures: dict[str, float | str] = {}
    if phases & {"route", "register"}:
        server = Server(args.profile)
        try:
            if "route" in phases:
                figures.update(trio.run(route_phase, args, server))
            if "register" in phases:
                figures.update(trio.run(register_phase, args, server))
        finally:
            server.stop()
    if "memory" in phases:
        for shared in (False, True):
            server = Server()
            try:
                key = "rss_mb_100x1000_shared" if shared else "rss_mb_100x1000"
                figures[key] = round(trio.run(memory_phase, args, server, shared), 1)
            finally:
                server.stop()
    figures["connections"] = args.connections
    figures["inflight_per_connection"] = args.inflight
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
