"""Broker data-plane throughput: SEND_MESSAGE_V2 of 1 KiB messages, then pulls,
on pyrocket's broker and (with ``ROCKETMQ_HOME``) on Java 4.7.0's in the same run.

Phases, each on a fresh broker with its store in a temporary directory:

1. sends with ``flushDiskType=ASYNC_FLUSH``: ``--connections`` connections
   with ``--inflight`` sends outstanding on each (a send waits for its
   answer; the ``WAIT`` property is set), each message with a key of its own,
   spread over the topic's ``--queues`` queues; ``--warmup`` seconds, then the
   measured ``--seconds``;
2. pulls on that broker: everything stored is pulled back with PULL_MESSAGE
   (32 messages each, the same connections and requests in flight), once
   unmeasured (warm-up) and once measured from the first request to the last
   answer;
3. sends with ``flushDiskType=SYNC_FLUSH`` (a SEND_OK only once on disk).

The topic is created with UPDATE_AND_CREATE_TOPIC first. The load comes from
benchmarks/loadgen.py (pre-encoded frames over plain sockets, in processes of
its own); its CPU is reported as ``generator_cpu_us_per_msg`` with the share
of the machine it used. For a broker this script starts, its CPU per message
over the measured window and its resident memory come from ``/proc``.

pyrocket's broker runs in a child process (``python -m pyrocket broker``).
With ``ROCKETMQ_HOME`` set to a Java RocketMQ 4.7.0 install, the same phases
then run on a Java broker started through compat/java_cluster.py (JVM flags
``-Xms512m -Xmx512m`` and the module openings Java 17 needs, instead of the 8
GiB heap of the install's bin/runbroker.sh; namesrvAddr names a closed port,
so it registers nowhere, as pyrocket's which has none), with the same flush
types, queue count, ``messageIndexEnable`` and commit-log file size, and the
ratios pyrocket / Java are reported. The two never run at the same time. Java
warms up for ``--java-warmup`` seconds (default 8) rather than ``--warmup``,
so that its JIT compiler is done before the window; ``--only`` runs one side.

    python benchmarks/broker.py [--connections 4 --inflight 16 --warmup 3 --seconds 10]
                                [--flush ASYNC_FLUSH] [--flush SYNC_FLUSH] [--no-pull]
                                [--index false] [--no-java] [--only pyrocket] [--quick]
                                [--also acl --also tls --also index
                                 --also transactions --also sql92]
    python benchmarks/broker.py --addr HOST:PORT [--pid PID] [--flush SYNC_FLUSH]

``--addr`` drives a broker already running: one round of sends, then pulls
(its flush type is its own: ``--flush`` only names the figures, ASYNC_FLUSH
unless given; ``--pid`` measures its CPU and memory).
``--also NAME`` then runs the companion benchmark of one feature
(``benchmarks/<NAME>.py``), one after the other, and adds its figures under
``NAME.``. ``BENCH_PROFILE=<file>`` runs pyrocket's broker under cProfile.

Prints a line per phase; the last line is one JSON object (rates per second,
latencies in microseconds, CPU in microseconds per message, memory in MiB).
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
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, AsyncExitStack, contextmanager
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # benchmarks/loadgen.py

from compat.java_cluster import JavaCluster, free_port, rocketmq_home
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, encode, encode_json_header
from pyrocket.protocol.headers import (
    CreateTopicRequestHeader,
    GetMaxOffsetRequestHeader,
    PullMessageRequestHeader,
    SendMessageRequestHeaderV2,
)
from pyrocket.protocol.message import encode_properties
from pyrocket.remoting import ClientConfig, RemotingClient

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "BrokerBenchTopic"
QUEUES = 8
BODY = b"x" * 1024
PULL_BATCH = 32
JAVA_HEAP = "-Xms512m -Xmx512m"
cpu_seconds = loadgen.cpu_seconds

Figures = loadgen.Figures


# ---------------------------------------------------------------------------
# Brokers


def start_broker(
    root: Path, flush: str, extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """pyrocket's broker in a child process; (process, address)."""
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
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    match = re.search(r"\[bench-broker, ([0-9.]+:[0-9]+)\] boot success", line)
    if match is None:
        child.kill()
        raise RuntimeError(f"broker did not start: {line!r}")
    return child, match.group(1)


def store_settings(args: argparse.Namespace, flush: str) -> dict[str, str]:
    """The settings both brokers run with."""
    return {
        "flushDiskType": flush,
        "defaultTopicQueueNums": str(args.queues),
        "messageIndexEnable": args.index,
        "mappedFileSizeCommitLog": str(args.commitlog_mib * 1024 * 1024),
    }


@contextmanager
def pyrocket_broker(args: argparse.Namespace, flush: str) -> Iterator[tuple[str, int | None]]:
    with tempfile.TemporaryDirectory(prefix="pyrocket-bench-") as tmp:
        child, addr = start_broker(Path(tmp), flush, store_settings(args, flush))
        try:
            yield addr, child.pid
        finally:
            child.terminate()
            child.wait(timeout=60)


@contextmanager
def java_broker(
    home: Path, args: argparse.Namespace, flush: str
) -> Iterator[tuple[str, int | None]]:
    with tempfile.TemporaryDirectory(prefix="pyrocket-bench-java-") as tmp:
        cluster = JavaCluster(home, Path(tmp))
        try:
            port = free_port(2)
            nowhere = f"127.0.0.1:{free_port()}"
            process = cluster.start_broker(
                "bench-broker", port, nowhere, store_settings(args, flush)
            )
            yield f"127.0.0.1:{port}", process.popen.pid
        finally:
            cluster.stop_all()


# ---------------------------------------------------------------------------
# Requests


def send_request(i: int, body: bytes) -> RemotingCommand:
    """A SEND_MESSAGE_V2 to queue ``i % QUEUES`` (benchmarks/index.py uses it)."""
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


KEY_MARK = "KeyMark31415"
OFFSET_MARK = 8642097531357
COUNT_MARK = 31313


def send_template(topic: str, queues: int, queue: int) -> loadgen.Template:
    """SEND_MESSAGE_V2 to ``queue``, its KEYS value a slot."""
    properties = encode_properties({"KEYS": KEY_MARK, "TAGS": "TagBench", "WAIT": "true"})
    header = SendMessageRequestHeaderV2(
        producer_group="bench_producer",
        topic=topic,
        default_topic="TBW102",
        default_topic_queue_nums=queues,
        queue_id=queue,
        sys_flag=0,
        born_timestamp=int(time.time() * 1000),
        flag=0,
        properties=properties,
        reconsume_times=0,
        unit_mode=False,
        batch=False,
    )
    command = RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header, body=BODY)
    command = command.replace(opaque=loadgen.OPAQUE_MARK)
    return loadgen.Template(encode_json_header(command), BODY, [KEY_MARK])


def pull_template(topic: str, queue: int) -> loadgen.Template:
    """PULL_MESSAGE from ``queue``, its queue offset and count slots."""
    header = PullMessageRequestHeader(
        consumer_group="bench_consumer",
        topic=topic,
        queue_id=queue,
        queue_offset=OFFSET_MARK,
        max_msg_nums=COUNT_MARK,
        sys_flag=0x4,  # the subscription travels with the request
        commit_offset=0,
        suspend_timeout_millis=0,
        subscription="*",
        sub_version=0,
        expression_type="TAG",
    )
    command = RemotingCommand.request(RequestCode.PULL_MESSAGE, header)
    command = command.replace(opaque=loadgen.OPAQUE_MARK)
    return loadgen.Template(encode_json_header(command), b"", [str(OFFSET_MARK), str(COUNT_MARK)])


class Sender:
    """Sends of one connection, round-robin over the queues."""

    wants_body = False

    def __init__(self, templates: list[loadgen.Template], connection: int) -> None:
        self.templates = templates
        self.prefix = f"K{connection}-".encode()

    def frame(self, opaque: int) -> bytes | None:
        templates = self.templates
        return templates[opaque % len(templates)].frame(opaque, self.prefix + b"%d" % opaque)

    def answer(self, opaque: int, code: int, header: bytes, body: bytes) -> int:
        return 1 if code == ResponseCode.SUCCESS else -1


class Puller:
    """Pulls of one connection: (queue, offset, count) items, a short answer's
    rest asked for again."""

    wants_body = True

    def __init__(self, templates: list[loadgen.Template], items: list[tuple[int, int, int]]):
        self.templates = templates
        self.items = deque(items)
        self.asked: dict[int, tuple[int, int, int]] = {}

    def frame(self, opaque: int) -> bytes | None:
        if not self.items:
            return None
        queue, offset, count = item = self.items.popleft()
        self.asked[opaque] = item
        return self.templates[queue].frame(opaque, b"%d" % offset, b"%d" % count)

    def answer(self, opaque: int, code: int, header: bytes, body: bytes) -> int:
        queue, offset, count = self.asked.pop(opaque)
        if code != ResponseCode.SUCCESS:
            return -1
        got = loadgen.count_messages(body)
        if got == 0:
            return -1
        if got < count:
            self.items.append((queue, offset + got, count - got))
        return got


def call(addr: str, command: RemotingCommand) -> tuple[int, bytes]:
    caller = loadgen.Caller(addr)
    try:
        code, header, _ = caller.call(encode(command))
    finally:
        caller.close()
    return code, header


def create_topic(addr: str, topic: str, queues: int) -> None:
    header = CreateTopicRequestHeader(
        topic=topic,
        default_topic="TBW102",
        read_queue_nums=queues,
        write_queue_nums=queues,
        perm=6,
        topic_filter_type="SINGLE_TAG",
        topic_sys_flag=0,
        order=False,
    )
    code, answer = call(addr, RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_TOPIC, header))
    if code != ResponseCode.SUCCESS:
        raise RuntimeError(f"UPDATE_AND_CREATE_TOPIC failed: {answer[:300]!r}")


def max_offsets(addr: str, topic: str, queues: int) -> list[int]:
    offsets = []
    for queue in range(queues):
        request = RemotingCommand.request(
            RequestCode.GET_MAX_OFFSET, GetMaxOffsetRequestHeader(topic, queue)
        )
        code, header = call(addr, request)
        value = loadgen.ext_field(header, "offset")
        if code != ResponseCode.SUCCESS or value is None:
            raise RuntimeError(f"GET_MAX_OFFSET failed: {header[:300]!r}")
        offsets.append(int(value))
    return offsets


# ---------------------------------------------------------------------------
# Phases


def shape_of(args: argparse.Namespace) -> loadgen.Shape:
    return loadgen.Shape(
        args.connections, args.inflight, args.warmup, args.seconds, args.generators
    )


def sends(addr: str, pid: int | None, args: argparse.Namespace) -> loadgen.Outcome:
    templates = [send_template(args.topic, args.queues, q) for q in range(args.queues)]

    def make(connection: int) -> loadgen.Workload:
        return Sender(templates, connection)

    return loadgen.run(addr, make, shape_of(args), pid)


def pulls(
    addr: str, pid: int | None, args: argparse.Namespace, start: list[int], expected: int
) -> loadgen.Outcome:
    """Pull everything from ``start`` once the queues hold ``expected`` more."""
    deadline = time.monotonic() + 60
    while True:
        ends = max_offsets(addr, args.topic, args.queues)
        if sum(ends) - sum(start) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    templates = [pull_template(args.topic, q) for q in range(args.queues)]
    items: list[list[tuple[int, int, int]]] = [[] for _ in range(args.connections)]
    longest = max(e - s for s, e in zip(start, ends, strict=True))
    for step in range(0, longest, PULL_BATCH):
        for queue in range(args.queues):
            offset = start[queue] + step
            if offset < ends[queue]:
                count = min(PULL_BATCH, ends[queue] - offset)
                items[queue % args.connections].append((queue, offset, count))

    def make(connection: int) -> loadgen.Workload:
        return Puller(templates, items[connection])

    if args.warmup > 0:  # one unmeasured pass over everything first
        loadgen.run(addr, make, shape_of(args), finite=True)
    outcome = loadgen.run(addr, make, shape_of(args), pid, finite=True)
    outcome.extra["stored"] = sum(ends) - sum(start)
    return outcome


Server = Callable[[str], AbstractContextManager[tuple[str, int | None]]]


def run_side(
    side: str, label: str, server: Server, args: argparse.Namespace, totals: list[float]
) -> Figures:
    """Every phase on brokers from ``server(flush)`` (yielding the address and
    the pid or None); figures named ``<side>send_async_...``."""
    figures: Figures = {}
    rss: list[float] = []
    for number, flush in enumerate(args.flush):
        kind = "async" if flush == "ASYNC_FLUSH" else "sync"
        with server(flush) as (addr, pid):
            create_topic(addr, args.topic, args.queues)
            start = max_offsets(addr, args.topic, args.queues)
            outcome = sends(addr, pid, args)
            loadgen.record(figures, f"{side}send_{kind}", outcome, totals)
            memory = loadgen.rss_mib(pid) if pid else None
            print(
                loadgen.describe(
                    f"{label} {flush} sends ({args.connections} connections x "
                    f"{args.inflight} in flight, {len(BODY)} B)",
                    outcome,
                    memory,
                ),
                flush=True,
            )
            if number == 0 and args.pull:
                expected = outcome.extra.get("answered", 0)
                stored = sum(max_offsets(addr, args.topic, args.queues)) - sum(start)
                pulled = pulls(addr, pid, args, start, max(int(expected), stored))
                loadgen.record(figures, f"{side}pull", pulled, totals)
                figures[f"{side}pulled_msgs"] = pulled.counted
                if pulled.counted != pulled.extra["stored"]:
                    figures[f"{side}pull_errors"] = pulled.extra["stored"] - pulled.counted
                print(
                    loadgen.describe(
                        f"{label} pulls ({pulled.counted} of {pulled.extra['stored']:.0f} "
                        f"stored, {PULL_BATCH} per request)",
                        pulled,
                    ),
                    flush=True,
                )
            if pid:
                rss.append(loadgen.rss_mib(pid))
    if rss:
        figures[f"{side}rss_mib"] = round(max(rss), 1)
    return figures


# ---------------------------------------------------------------------------
# Companions and the former in-process load (benchmarks/index.py drives it)


async def drive_sends(
    addr: str, connections: int, inflight: int, warmup: float, seconds: float
) -> tuple[int, list[int], int]:
    """Sends through pyrocket's RemotingClient in this process: (sends/s in
    the window, latencies in ns, sends in all). benchmarks/index.py's load."""
    requests = [send_request(i, BODY) for i in range(QUEUES * 8)]
    latencies: list[int] = []
    counted = sent = 0
    measuring = stop = False

    async def sender(client: RemotingClient, start: int) -> None:
        nonlocal counted, sent
        index = start
        while not stop:
            request = requests[index % len(requests)]
            index += 1
            t0 = time.perf_counter_ns()
            response = await client.invoke_sync(addr, request, 10.0)
            if response.code != ResponseCode.SUCCESS:
                raise RuntimeError(f"send failed: {response!r}")
            sent += 1
            if measuring:
                counted += 1
                latencies.append(time.perf_counter_ns() - t0)

    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(connections):
            client = await stack.enter_async_context(RemotingClient(ClientConfig()))
            await client.get_connection(addr)
            clients.append(client)
        await clients[0].invoke_sync(addr, requests[0], 10.0)  # creates the topic
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


#: ``--also`` names and the companion benchmark each runs.
COMPANIONS = {
    "acl": "acl.py",
    "tls": "tls.py",
    "index": "index.py",
    "transactions": "transactions.py",
    "sql92": "sql92_filter.py",
}


def run_companion(name: str, seconds: float) -> Figures:
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
    parser = loadgen.run_options((__doc__ or "").splitlines()[0], "broker")
    parser.add_argument("--queues", type=int, default=QUEUES)
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument(
        "--index",
        choices=["true", "false"],
        default="true",
        help="messageIndexEnable on both brokers",
    )
    parser.add_argument(
        "--commitlog-mib",
        type=int,
        default=1024,
        help="mappedFileSizeCommitLog on both brokers, MiB",
    )
    parser.add_argument(
        "--flush",
        choices=["ASYNC_FLUSH", "SYNC_FLUSH"],
        action="append",
        help="run only these flush types (default: both)",
    )
    parser.add_argument("--no-pull", dest="pull", action="store_false")
    parser.add_argument(
        "--also",
        choices=sorted(COMPANIONS),
        action="append",
        default=[],
        help="then run this feature's companion benchmark too",
    )
    args = parser.parse_args()
    loadgen.apply_quick(args)
    # A running broker has the one flush type it has: one round by default.
    args.flush = args.flush or (["ASYNC_FLUSH"] if args.addr else ["ASYNC_FLUSH", "SYNC_FLUSH"])
    totals = [0.0, 0.0, 0.0]  # generator CPU s, messages, largest machine share
    figures: Figures = {}
    if args.addr:

        @contextmanager
        def given(flush: str) -> Iterator[tuple[str, int | None]]:
            yield args.addr, args.pid

        figures.update(run_side("", f"broker at {args.addr}", given, args, totals))
    else:
        if args.only != "java":
            figures.update(
                run_side("", "pyrocket", lambda f: pyrocket_broker(args, f), args, totals)
            )
        home = rocketmq_home() if args.java and args.only != "pyrocket" else None
        if home is not None:
            jargs = argparse.Namespace(**{**vars(args), "warmup": args.java_warmup})
            figures.update(
                run_side("java_", "Java", lambda f: java_broker(home, jargs, f), jargs, totals)
            )
            figures["java_warmup_s"] = args.java_warmup
            figures["java_heap"] = JAVA_HEAP
            loadgen.ratios(figures, ("send_async", "send_sync", "pull"))
    for name in args.also:
        figures.update(run_companion(name, args.seconds))
    loadgen.summary(
        figures,
        totals,
        connections=args.connections,
        inflight_per_connection=args.inflight,
        warmup_s=args.warmup,
        measured_s=args.seconds,
        body_bytes=len(BODY),
        queues=args.queues,
        message_index=args.index,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
