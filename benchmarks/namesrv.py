"""NameServer throughput, latency and memory, on pyrocket's NameServer and
(with ``ROCKETMQ_HOME``) on Java 4.7.0's in the same run.

Phases (``--phases``, comma-separated; each prints a line, the last line is
one JSON object; rates per second, latencies in microseconds, CPU in
microseconds per request, memory in MiB):

* ``route`` (the default): 10 brokers x 100 topics registered (each its own
  100 topics; ``--shared-topics``: the same 100 on all ten),
  GET_ROUTEINFO_BY_TOPIC for random topics from ``--connections``
  connections with ``--inflight`` requests in flight on each, ``--warmup``
  seconds then ``--seconds`` measured: requests/s, p50/p99, server CPU per
  request, resident memory;
* ``single``: the same, one request at a time on one connection: p50/p99;
* ``register``: REGISTER_BROKER of 100 brokers x 100 topics, round after
  round, with the same DataVersion each time, a new one each time, and a new
  one with one topic changed: registrations/s, p99 (three windows: slow);
* ``memory``: resident memory (VmRSS) of a fresh NameServer holding 100
  brokers x 1,000 topics, each route asked for once (``--shared-topics``:
  the same 1,000 topics on every broker).

The load comes from benchmarks/loadgen.py: requests are frames encoded once
with pyrocket's codec (only the opaque, and for registrations the body's
DataVersion and CRC, spliced in), sent over plain sockets from processes of
their own, answers read for their code and opaque only; its CPU is reported
as ``generator_cpu_us_per_msg`` with the share of the machine it used.

pyrocket's NameServer runs in a child process. With ``ROCKETMQ_HOME`` set to
a Java RocketMQ 4.7.0 install, every phase then runs on a Java NameServer
started through compat/java_cluster.py (``-Xms256m -Xmx256m`` instead of the
install's bin/runserver.sh 4 GiB heap), never at the same time as pyrocket's,
and the ratios pyrocket / Java are reported (``route_ratio_vs_java``, ...).
Java warms up for ``--java-warmup`` seconds (default 8) rather than
``--warmup``, so that its JIT compiler is done before the window; ``--only``
runs one side.

    python benchmarks/namesrv.py [--seconds 10 --warmup 3] [--phases route,single]
                                 [--no-java] [--only pyrocket] [--quick] [--profile FILE]
    python benchmarks/namesrv.py --addr HOST:PORT [--pid PID]

``--addr`` drives a NameServer already running (``--pid``: measure its CPU
and memory); the phases register brokers in it (they go when their
connection does).
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # benchmarks/loadgen.py

from compat.java_cluster import JavaCluster, free_port, rocketmq_home
from pyrocket.namesrv import NameServer, NamesrvConfig
from pyrocket.protocol.bodies import (
    DataVersion,
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, encode_json_header
from pyrocket.protocol.headers import GetRouteInfoRequestHeader, RegisterBrokerRequestHeader

JAVA_HEAP = "-Xms256m -Xmx256m"
Figures = loadgen.Figures
Server = Callable[[], AbstractContextManager[tuple[str, int | None]]]


# ---------------------------------------------------------------------------
# The servers


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


@contextmanager
def pyrocket_namesrv(profile: str | None) -> Iterator[tuple[str, int | None]]:
    """pyrocket's NameServer in a child process (this script, ``--serve``)."""
    command = [sys.executable, __file__, "--serve"]
    if profile:
        command += ["--profile", profile]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        port = int(process.stdout.readline())
        yield f"127.0.0.1:{port}", process.pid
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=30)


@contextmanager
def java_namesrv(home: Path) -> Iterator[tuple[str, int | None]]:
    """A Java NameServer (compat/java_cluster.py), its home in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="pyrocket-bench-java-") as tmp:
        cluster = JavaCluster(home, Path(tmp))
        try:
            port = free_port()
            process = cluster.start_namesrv(port)
            yield f"127.0.0.1:{port}", process.popen.pid
        finally:
            cluster.stop_all()


# ---------------------------------------------------------------------------
# Frames


def route_template(topic: str) -> loadgen.Template:
    request = RemotingCommand.request(
        RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader(topic)
    )
    return loadgen.Template(encode_json_header(request.replace(opaque=loadgen.OPAQUE_MARK)))


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
# Phases


class Registered:
    """Brokers registered over one connection, kept open (the brokers go
    when their connection does)."""

    def __init__(self, addr: str, brokers: list[RegisterFramer]) -> None:
        self.caller = loadgen.Caller(addr)
        for number, broker in enumerate(brokers, 1):
            code, header, _ = self.caller.call(broker.frame(number, True))
            if code != ResponseCode.SUCCESS:
                raise RuntimeError(f"REGISTER_BROKER failed: {header[:300]!r}")

    def close(self) -> None:
        self.caller.close()


def shape_of(args: argparse.Namespace, **changes: float) -> loadgen.Shape:
    shape = loadgen.Shape(
        args.connections, args.inflight, args.warmup, args.seconds, args.generators
    )
    for key, value in changes.items():
        setattr(shape, key, type(getattr(shape, key))(value))
    return shape


def route_phases(
    addr: str,
    pid: int | None,
    args: argparse.Namespace,
    side: str,
    label: str,
    totals: list[float],
) -> Figures:
    figures: Figures = {}
    brokers = [RegisterFramer(b, topic_names(b, 100, args.shared_topics)) for b in range(10)]
    topics = sorted({t for b in range(10) for t in topic_names(b, 100, args.shared_topics)})
    templates = [route_template(t) for t in topics]

    def make(connection: int) -> loadgen.Workload:
        rng = random.Random(7 + connection)
        return loadgen.Repeat(lambda opaque: rng.choice(templates).frame(opaque))

    registered = Registered(addr, brokers)
    try:
        if "route" in args.phases:
            outcome = loadgen.run(addr, make, shape_of(args), pid)
            loadgen.record(figures, f"{side}route", outcome, totals)
            memory = loadgen.rss_mib(pid) if pid else None
            if memory is not None:
                figures[f"{side}rss_mib"] = round(memory, 1)
            print(
                loadgen.describe(
                    f"{label} routes ({len(topics)} topics over 10 brokers, "
                    f"{args.connections} connections x {args.inflight} in flight)",
                    outcome,
                    memory,
                ),
                flush=True,
            )
        if "single" in args.phases:
            shape = shape_of(args, connections=1, inflight=1, seconds=args.seconds / 2)
            outcome = loadgen.run(addr, make, shape, pid)
            loadgen.record(figures, f"{side}route_single", outcome, totals)
            print(loadgen.describe(f"{label} routes one at a time", outcome), flush=True)
    finally:
        registered.close()
    return figures


def register_phase(
    addr: str,
    pid: int | None,
    args: argparse.Namespace,
    side: str,
    label: str,
    totals: list[float],
) -> Figures:
    figures: Figures = {}
    per_connection = max(1, 100 // args.connections)
    variants = (
        ("register", "same DataVersion each time", False, False),
        ("register_changed", "new DataVersion each time", True, False),
        ("register_table_changed", "new DataVersion and one topic changed", True, True),
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
        ) -> loadgen.Workload:
            mine = brokers[number * per_connection : (number + 1) * per_connection]
            turn = iter(range(1 << 62))
            return loadgen.Repeat(
                lambda opaque: mine[next(turn) % len(mine)].frame(opaque, version, table)
            )

        outcome = loadgen.run(addr, make, shape_of(args), pid)
        loadgen.record(figures, f"{side}{key}", outcome, totals)
        print(
            loadgen.describe(f"{label} registrations of 100 brokers x 100 topics, {what}", outcome),
            flush=True,
        )
    return figures


class Listed:
    """A finite workload: each template once."""

    wants_body = False

    def __init__(self, templates: list[loadgen.Template]) -> None:
        self.templates = templates
        self.next = 0

    def frame(self, opaque: int) -> bytes | None:
        if self.next >= len(self.templates):
            return None
        self.next += 1
        return self.templates[self.next - 1].frame(opaque)

    def answer(self, opaque: int, code: int, header: bytes, body: bytes) -> int:
        return 1 if code == ResponseCode.SUCCESS else -1


def memory_phase(addr: str, pid: int | None, shared: bool, label: str) -> float | None:
    before = loadgen.rss_mib(pid) if pid else None
    brokers = [RegisterFramer(b, topic_names(b, 1000, shared)) for b in range(100)]
    registered = Registered(addr, brokers)
    try:
        topics = sorted({t for b in range(100) for t in topic_names(b, 1000, shared)})
        templates = [route_template(t) for t in topics]
        # Ask for every route once (a route cache fills as clients ask).
        loadgen.run(
            addr,
            lambda n: Listed(templates[n::4]),
            loadgen.Shape(connections=4, inflight=16),
            finite=True,
        )
        after = loadgen.rss_mib(pid) if pid else None
    finally:
        registered.close()
    kind = "the same 1,000 topics on each" if shared else "1,000 topics of its own each"
    shown = "unknown" if after is None or before is None else f"{after:.1f} MiB"
    print(
        f"{label} memory: 100 brokers, {kind} ({len(topics)} topics): VmRSS {shown}"
        + ("" if before is None else f" ({before:.1f} MiB before registering)"),
        flush=True,
    )
    return after


def run_side(
    side: str, label: str, server: Server, args: argparse.Namespace, totals: list[float]
) -> Figures:
    figures: Figures = {}
    if args.phases & {"route", "single", "register"}:
        with server() as (addr, pid):
            if args.phases & {"route", "single"}:
                figures.update(route_phases(addr, pid, args, side, label, totals))
            if "register" in args.phases:
                figures.update(register_phase(addr, pid, args, side, label, totals))
    if "memory" in args.phases:
        for shared in (False, True):
            with server() as (addr, pid):
                memory = memory_phase(addr, pid, shared, label)
                if memory is not None:
                    key = "rss_mib_100x1000_shared" if shared else "rss_mib_100x1000"
                    figures[f"{side}{key}"] = round(memory, 1)
    return figures


def main() -> None:
    parser = loadgen.run_options((__doc__ or "").splitlines()[0], "NameServer")
    parser.add_argument("--shared-topics", action="store_true")
    parser.add_argument(
        "--phases", default="route", help="comma-separated: route, single, register, memory"
    )
    parser.add_argument(
        "--profile", help="run pyrocket's server under cProfile, stats to this file"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_main(args.profile)
        return
    loadgen.apply_quick(args)
    args.phases = set(args.phases.split(","))
    unknown = args.phases - {"route", "single", "register", "memory"}
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}")
    totals = [0.0, 0.0, 0.0]  # generator CPU s, requests, largest machine share
    figures: Figures = {}
    if args.addr:

        @contextmanager
        def given() -> Iterator[tuple[str, int | None]]:
            yield args.addr, args.pid

        figures.update(run_side("", f"NameServer at {args.addr}", given, args, totals))
    else:
        if args.only != "java":
            figures.update(
                run_side("", "pyrocket", lambda: pyrocket_namesrv(args.profile), args, totals)
            )
        home = rocketmq_home() if args.java and args.only != "pyrocket" else None
        if home is not None:
            jargs = argparse.Namespace(**{**vars(args), "warmup": args.java_warmup})
            figures.update(run_side("java_", "Java", lambda: java_namesrv(home), jargs, totals))
            figures["java_warmup_s"] = args.java_warmup
            figures["java_heap"] = JAVA_HEAP
            loadgen.ratios(
                figures,
                ("route", "route_single", "register", "register_changed", "register_table_changed"),
            )
    loadgen.summary(
        figures,
        totals,
        connections=args.connections,
        inflight_per_connection=args.inflight,
        warmup_s=args.warmup,
        measured_s=args.seconds,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
