"""Replication: send throughput with a slave attached, replication lag under
load, and how fast a slave catches up.

A master and a slave run as child processes on 127.0.0.1, stores in a
temporary directory on the disk holding ``$TMPDIR``, 64 MiB commit-log files,
ASYNC_FLUSH. First the pyrocket pair (``python -m pyrocket broker``), then,
when ``ROCKETMQ_HOME`` names a RocketMQ 4.7 install, a Java master and a Java
slave (started through ``compat/java_cluster.py``, 512 MiB heap each), one
after the other so they never share the cores. For each pair:

1. SYNC_MASTER, then ASYNC_MASTER (a fresh pair each): 1 KiB SEND_MESSAGE_V2
   from ``--connections`` connections with ``--inflight`` sync sends in
   flight on each, for ``--seconds``. Meanwhile every ``--sample-ms`` the
   master's and the slave's ``commitLogMaxOffset`` are read at the same
   moment (GET_BROKER_RUNTIME_INFO on two connections): the lag in bytes is
   the difference, the lag in ms is, for each master sample, the time until
   a slave sample shows at least that offset (each sample timed at its round
   trip's midpoint, so the figure is good to about one sampling period; 0
   when the slave already had it). Master and slave CPU per
   send come from /proc.
2. Catch-up, on the ASYNC_MASTER pair: the slave is stopped, the master
   takes ``--catchup-mb`` (default 1024) of ``--fill-kb`` messages, the
   slave starts again (it resumes from its own offset; a slave with an empty
   store would start at the master's last file) and is timed from its first
   runtime sample until it holds the master's end. Resident memory of both
   brokers is read at the end.

    python benchmarks/replication.py [--seconds 5 --catchup-mb 1024]
                                     [--quick] [--no-java]

``--quick`` is a smoke run (1 s of sends, 16 MiB to catch up, no Java);
``--no-java`` and ``--java-only`` run one pair. A send Java's flow control
refuses (SYSTEM_BUSY, queued past ``waitTimeMillsInSendQueue``) is counted
as ``*_busy_answers`` during the rounds and sent again during the fill.
Prints each round; the last line is one JSON object (Java's figures named
``java_...``).
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
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.broker import QUEUES, cpu_seconds, send_request  # noqa: E402
from compat.java_cluster import JavaCluster, JavaProcess, free_port, rocketmq_home  # noqa: E402
from pyrocket.protocol.bodies import KVTable  # noqa: E402
from pyrocket.protocol.codes import RequestCode, ResponseCode  # noqa: E402
from pyrocket.protocol.command import RemotingCommand  # noqa: E402
from pyrocket.remoting import ClientConfig, RemotingClient  # noqa: E402

FILE_SIZE = 64 * 1024 * 1024
MB = 1024 * 1024
Figures = dict[str, int | float]


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- the brokers ---------------------------------------------------------------


@dataclass
class Node:
    """A broker process: its pid, main address, and how to stop it."""

    pid: int
    addr: str
    stop: Callable[[], None]


class PyrocketPair:
    """Starts pyrocket brokers as ``python -m pyrocket broker`` children."""

    label = "pyrocket"

    def __init__(self, root: Path) -> None:
        self.root = root

    def start(self, role: str, port: int, ha_master: str | None = None) -> Node:
        settings = {
            "brokerIP1": "127.0.0.1",
            "brokerIP2": "127.0.0.1",
            "brokerName": "bench-broker",
            "brokerId": "0" if ha_master is None else "1",
            "brokerRole": role,
            "listenPort": str(port),
            "storePathRootDir": str(self.root / f"store-{port}"),
            "flushDiskType": "ASYNC_FLUSH",
            "defaultTopicQueueNums": str(QUEUES),
            "mappedFileSizeCommitLog": str(FILE_SIZE),
        }
        if ha_master is not None:
            settings["haMasterAddress"] = ha_master
        command = [sys.executable, "-m", "pyrocket", "--log-level", "WARNING", "broker"]
        for key, value in settings.items():
            command += ["--set", f"{key}={value}"]
        log = (self.root / f"broker-{port}.err").open("ab")
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(REPO)},
        )
        log.close()
        assert child.stdout is not None
        line = child.stdout.readline()
        match = re.search(r", ([0-9.]+:[0-9]+)\] boot success", line)
        if match is None:
            child.kill()
            raise RuntimeError(f"broker did not start: {line!r}")

        def stop() -> None:
            child.terminate()
            child.wait(timeout=60)

        return Node(child.pid, match.group(1), stop)


class JavaPair:
    """Starts Java 4.7 brokers through compat/java_cluster.py."""

    label = "java"

    def __init__(self, cluster: JavaCluster) -> None:
        self.cluster = cluster

    def start(self, role: str, port: int, ha_master: str | None = None) -> Node:
        properties = {
            "brokerRole": role,
            "brokerId": "0" if ha_master is None else "1",
            "mappedFileSizeCommitLog": str(FILE_SIZE),
            "defaultTopicQueueNums": str(QUEUES),
        }
        if ha_master is not None:
            properties["haMasterAddress"] = ha_master
        # No NameServer: the slave is told its master's HA address.
        process: JavaProcess = self.cluster.start_broker(
            "bench-broker", port, "127.0.0.1:1", properties
        )

        def stop() -> None:
            process.stop(60)
            if process in self.cluster.processes:
                self.cluster.processes.remove(process)

        return Node(process.popen.pid, f"127.0.0.1:{port}", stop)


Starter = PyrocketPair | JavaPair


# -- load and samples ------------------------------------------------------------


class NoRuntimeInfo(RuntimeError):
    """A broker did not answer GET_BROKER_RUNTIME_INFO (a Java broker fails
    it while its store has no commit-log file yet)."""


async def max_offset(client: RemotingClient, addr: str) -> tuple[float, int]:
    """(round-trip midpoint, ``commitLogMaxOffset``) of one broker."""
    request = RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO)
    sent = time.perf_counter()
    answer = await client.invoke_sync(addr, request, 10)
    received = time.perf_counter()
    if answer.code != ResponseCode.SUCCESS:
        raise NoRuntimeInfo(f"runtime info of {addr}: {answer.code} {answer.remark}")
    offset = int(KVTable.decode(answer.body or b"").table["commitLogMaxOffset"])
    return (sent + received) / 2, offset


async def first_offset(client: RemotingClient, addr: str) -> tuple[float, int]:
    """:func:`max_offset`, asked again until the broker answers (60 s at most)."""
    with trio.fail_after(60):
        while True:
            try:
                return await max_offset(client, addr)
            except NoRuntimeInfo:
                await trio.sleep(0.01)


@dataclass
class Lag:
    bytes_: list[float]
    ms: list[float]


async def sample_both(client: RemotingClient, master: str, slave: str) -> list[tuple[float, int]]:
    """Both brokers' (midpoint, offset), asked at the same moment."""
    found: list[tuple[float, int]] = [(0.0, 0), (0.0, 0)]

    async def one(index: int, addr: str) -> None:
        found[index] = await max_offset(client, addr)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, 0, master)
        nursery.start_soon(one, 1, slave)
    return found


async def sample_lag(
    client: RemotingClient, master: str, slave: str, period: float, stop: trio.Event
) -> Lag:
    """Sample until ``stop``, then until the slave holds the last master sample."""
    lag = Lag([], [])
    pending: deque[tuple[float, int]] = deque()
    settle = None
    while True:
        started = time.perf_counter()
        (t_master, m), (t_slave, s) = await sample_both(client, master, slave)
        if settle is None:
            lag.bytes_.append(max(m - s, 0))
            pending.append((t_master, m))
        while pending and pending[0][1] <= s:
            lag.ms.append(max(t_slave - pending.popleft()[0], 0.0) * 1000)
        if stop.is_set():
            settle = settle or time.perf_counter() + 30
            if not pending or time.perf_counter() > settle:
                break
        await trio.sleep(max(0.0, period - (time.perf_counter() - started)))
    if pending:
        raise RuntimeError(f"slave still short of {pending[-1][1]} after 30 s")
    return lag


async def until_accepted(client: RemotingClient, addr: str) -> None:
    """Send until the master stores and acknowledges (a SYNC_MASTER answers
    SLAVE_NOT_AVAILABLE until its slave has reported)."""
    with trio.fail_after(60):
        while True:
            answer = await client.invoke_sync(addr, send_request(0, b"x" * 1024), 10)
            if answer.code == ResponseCode.SUCCESS:
                return
            await trio.sleep(0.2)


async def drive_sends(
    master: str, slave: str, args: argparse.Namespace
) -> tuple[float, list[int], int, int, Lag]:
    body = b"x" * 1024
    requests = [send_request(i, body) for i in range(QUEUES * 8)]
    latencies: list[int] = []
    counted = sent = busy = 0
    measuring = stop = False

    async def sender(client: RemotingClient, start: int) -> None:
        nonlocal counted, sent, busy
        index = start
        clock = time.perf_counter_ns
        while not stop:
            request = requests[index % len(requests)]
            index += 1
            t0 = clock()
            response = await client.invoke_sync(master, request, 10.0)
            t1 = clock()
            if response.code == ResponseCode.SYSTEM_BUSY:
                # Java's flow control (a send queued past waitTimeMillsInSendQueue):
                # counted, not timed; the producer would retry.
                busy += 1 if measuring else 0
                continue
            if response.code != ResponseCode.SUCCESS:
                raise RuntimeError(f"send failed: {response.code} {response.remark}")
            sent += 1
            if measuring:
                counted += 1
                latencies.append(t1 - t0)

    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(args.connections):
            client = await stack.enter_async_context(RemotingClient(ClientConfig()))
            await client.get_connection(master)
            clients.append(client)
        await until_accepted(clients[0], master)
        await wait_caught_up(master, slave)
        sampler_client = await stack.enter_async_context(RemotingClient(ClientConfig()))
        done = trio.Event()
        lag = Lag([], [])

        async def sampler() -> None:
            nonlocal lag
            lag = await sample_lag(sampler_client, master, slave, args.sample_ms / 1000, done)

        async with trio.open_nursery() as nursery:
            for n, client in enumerate(clients):
                for k in range(args.inflight):
                    nursery.start_soon(sender, client, n * args.inflight + k)
            await trio.sleep(args.warmup)
            measuring = True
            start = time.perf_counter()
            nursery.start_soon(sampler)
            await trio.sleep(args.seconds)
            measuring = False
            elapsed = time.perf_counter() - start
            stop = True
            done.set()
    return counted / elapsed, latencies, sent, busy, lag


async def fill(addr: str, total: int, body_size: int) -> float:
    """Store about ``total`` bytes of ``body_size`` bodies; returns bytes/s."""
    body = os.urandom(body_size)
    count = max(1, total // (body_size + 200))
    next_index = 0

    async def sender(client: RemotingClient) -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            while True:
                answer = await client.invoke_sync(addr, send_request(index, body), 30)
                if answer.code != ResponseCode.SYSTEM_BUSY:
                    break
                await trio.sleep(0.01)  # flow control: again, as a producer would
            if answer.code != ResponseCode.SUCCESS:
                raise RuntimeError(f"fill send failed: {answer.code} {answer.remark}")

    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(RemotingClient(ClientConfig())) for _ in range(4)
        ]
        _, before = await max_offset(clients[0], addr)
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for client in clients:
                for _ in range(4):
                    nursery.start_soon(sender, client)
        elapsed = time.perf_counter() - start
        _, after = await max_offset(clients[0], addr)
    return (after - before) / elapsed


async def time_catch_up(master: str, slave: str, period: float) -> tuple[int, float, float]:
    """(bytes, seconds, delay): the slave's first sample is at ``s0``; the
    transfer time runs from its last sample still at ``s0`` until it holds
    the master's end, the delay from the first sample to that one (a Java
    slave's first report, which starts the transfer, comes
    haSendHeartbeatInterval after it connects)."""
    async with RemotingClient(ClientConfig()) as client:
        _, end = await max_offset(client, master)
        t0, s0 = await first_offset(client, slave)
        still = t0
        with trio.fail_after(600):
            while True:
                t, s = await max_offset(client, slave)
                if s == s0:
                    still = t
                if s >= end:
                    return end - s0, t - still, still - t0
                await trio.sleep(period)


async def wait_caught_up(master: str, slave: str) -> None:
    """Until the slave holds the master's end (a Java slave sends its first
    report, which starts the transfer, up to 5 s after connecting)."""
    async with RemotingClient(ClientConfig()) as client:
        with trio.fail_after(60):
            while True:
                _, end = await max_offset(client, master)
                if (await first_offset(client, slave))[1] >= end:
                    return
                await trio.sleep(0.05)


# -- rounds ------------------------------------------------------------------------


def two_ports() -> tuple[int, int]:
    """Listen ports of two brokers whose p-2 .. p+1 ranges do not overlap."""
    first = free_port(span=2)
    while True:
        second = free_port(span=2)
        if abs(second - first) > 4:
            return first, second


def send_round(pair: Starter, role: str, args: argparse.Namespace) -> tuple[Figures, Node, Node]:
    """Sends to a fresh ``role`` master with its slave; returns the figures
    and both (still running) nodes."""
    port, slave_port = two_ports()
    master = pair.start(role, port)
    slave = pair.start("SLAVE", slave_port, ha_master=f"127.0.0.1:{port + 1}")
    cpu_master, cpu_slave = cpu_seconds(master.pid), cpu_seconds(slave.pid)
    rate, latencies, sent, busy, lag = trio.run(drive_sends, master.addr, slave.addr, args)
    cpu_master = cpu_seconds(master.pid) - cpu_master
    cpu_slave = cpu_seconds(slave.pid) - cpu_slave
    us = [value / 1000 for value in latencies]
    key = "sync" if role == "SYNC_MASTER" else "async"
    figures: Figures = {
        f"{key}_send_per_s": round(rate),
        f"{key}_send_p50_us": round(percentile(us, 0.50)),
        f"{key}_send_p99_us": round(percentile(us, 0.99)),
        f"{key}_lag_bytes_p50": round(percentile(lag.bytes_, 0.50)),
        f"{key}_lag_bytes_p99": round(percentile(lag.bytes_, 0.99)),
        f"{key}_lag_bytes_max": round(max(lag.bytes_, default=0)),
        f"{key}_lag_ms_p50": round(percentile(lag.ms, 0.50), 2),
        f"{key}_lag_ms_p99": round(percentile(lag.ms, 0.99), 2),
        f"{key}_lag_ms_max": round(max(lag.ms, default=0), 2),
        f"{key}_lag_samples": len(lag.ms),
        f"{key}_busy_answers": busy,
        f"{key}_master_cpu_us_per_send": round(cpu_master * 1e6 / max(sent, 1), 1),
        f"{key}_slave_cpu_us_per_send": round(cpu_slave * 1e6 / max(sent, 1), 1),
    }
    print(
        f"{pair.label} {role}: {figures[f'{key}_send_per_s']} sends/s, p50 "
        f"{figures[f'{key}_send_p50_us']} us, p99 {figures[f'{key}_send_p99_us']} us; lag p50 "
        f"{figures[f'{key}_lag_bytes_p50']} B / {figures[f'{key}_lag_ms_p50']} ms, p99 "
        f"{figures[f'{key}_lag_bytes_p99']} B / {figures[f'{key}_lag_ms_p99']} ms; CPU/send "
        f"master {figures[f'{key}_master_cpu_us_per_send']} us, slave "
        f"{figures[f'{key}_slave_cpu_us_per_send']} us",
        flush=True,
    )
    return figures, master, slave


def catch_up_round(
    pair: Starter, master: Node, slave: Node, args: argparse.Namespace
) -> tuple[Figures, Node]:
    """Stop the slave, fill the master, start the slave again and time it."""
    trio.run(wait_caught_up, master.addr, slave.addr)
    slave_port = int(slave.addr.rsplit(":", 1)[1])
    master_port = int(master.addr.rsplit(":", 1)[1])
    slave.stop()
    fill_rate = trio.run(fill, master.addr, args.catchup_mb * MB, args.fill_kb * 1024)
    slave = pair.start("SLAVE", slave_port, ha_master=f"127.0.0.1:{master_port + 1}")
    cpu, cpu_master = cpu_seconds(slave.pid), cpu_seconds(master.pid)
    caught, seconds, delay = trio.run(time_catch_up, master.addr, slave.addr, 0.02)
    cpu, cpu_master = cpu_seconds(slave.pid) - cpu, cpu_seconds(master.pid) - cpu_master
    figures: Figures = {
        "catchup_bytes": caught,
        "catchup_s": round(seconds, 3),
        "catchup_start_delay_s": round(delay, 3),
        "catchup_mb_per_s": round(caught / MB / max(seconds, 1e-9), 1),
        "catchup_slave_cpu_s": round(cpu, 2),
        "catchup_master_cpu_s": round(cpu_master, 2),
        "fill_mb_per_s": round(fill_rate / MB, 1),
        "master_rss_mb": rss_mb(master.pid),
        "slave_rss_mb": rss_mb(slave.pid),
    }
    print(
        f"{pair.label} catch-up: {caught / MB:.0f} MiB in {seconds:.2f} s = "
        f"{figures['catchup_mb_per_s']} MB/s after {delay:.2f} s "
        f"(CPU slave {figures['catchup_slave_cpu_s']} s, "
        f"master {figures['catchup_master_cpu_s']} s; "
        f"fill {figures['fill_mb_per_s']} MB/s); RSS master {figures['master_rss_mb']} MiB, "
        f"slave {figures['slave_rss_mb']} MiB",
        flush=True,
    )
    return figures, slave


def run_pair(pair: Starter, args: argparse.Namespace) -> Figures:
    figures: Figures = {}
    nodes: list[Node] = []
    try:
        sync, master, slave = send_round(pair, "SYNC_MASTER", args)
        figures.update(sync)
        slave.stop()
        master.stop()
        async_, master, slave = send_round(pair, "ASYNC_MASTER", args)
        nodes = [slave, master]
        figures.update(async_)
        catch_up, slave = catch_up_round(pair, master, slave, args)
        nodes = [slave, master]
        figures.update(catch_up)
    finally:
        for node in nodes:
            node.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--sample-ms", type=float, default=10.0)
    parser.add_argument("--catchup-mb", type=int, default=1024, help="MiB the slave falls behind")
    parser.add_argument("--fill-kb", type=int, default=64, help="body size of the catch-up fill")
    parser.add_argument("--no-java", action="store_true", help="skip the Java pair")
    parser.add_argument("--java-only", action="store_true", help="skip the pyrocket pair")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s, 16 MiB, no Java")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.catchup_mb, args.no_java = 1.0, 0.3, 16, True
    figures: Figures = {}
    if not args.java_only:
        with tempfile.TemporaryDirectory(prefix="pyrocket-bench-repl-") as tmp:
            figures.update(run_pair(PyrocketPair(Path(tmp)), args))
    home = None if args.no_java else rocketmq_home()
    if home is not None:
        with tempfile.TemporaryDirectory(prefix="pyrocket-bench-repl-java-") as tmp:
            cluster = JavaCluster(home, Path(tmp))
            try:
                java = run_pair(JavaPair(cluster), args)
            finally:
                cluster.stop_all()
        figures.update({f"java_{key}": value for key, value in java.items()})
    figures.update(
        {
            "connections": args.connections,
            "inflight_per_connection": args.inflight,
            "sample_ms": args.sample_ms,
            "catchup_mb": args.catchup_mb,
            "fill_body_kb": args.fill_kb,
        }
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
