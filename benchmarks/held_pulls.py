"""Held pulls under a hostile client: what 20,000 held PULL_MESSAGEs cost a
broker, what waking them all with one message costs its other clients, and
whether memory stays flat over rounds of held pulls dropped by their
connections.

Three processes: a pyrocket broker (``python -m pyrocket broker``, its store
in a temporary directory), a hostile client (this script with ``--hostile``)
and this process, which steers the rounds and probes the broker as an
ordinary client would meanwhile: one SEND_MESSAGE_V2 to another topic and one
GET_MAX_OFFSET every ``--probe-ms`` ms, each timed from request to answer.

Round 0: the hostile client holds ``--pulls`` pulls (over ``--connections``
connections, huge suspend timeouts), then sends one message that wakes them
all and times until every answer is in (``wake_all_ms``). Rounds 1 to
``--rounds``: it holds as many again, then closes every connection; the
broker's RSS is read after each. The RSS growth per round is taken from
round 2 on (round 1 warms allocator pools).

    python benchmarks/held_pulls.py [--pulls 20000 --connections 20 --rounds 4]

Prints each round; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import re
import statistics
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
from pyrocket.protocol.headers import (
    GetMaxOffsetRequestHeader,
    PullMessageRequestHeader,
    SendMessageRequestHeaderV2,
)
from pyrocket.protocol.message import encode_properties
from pyrocket.remoting import RemotingClient, ResponseFuture

TOPIC = "HeldPullBenchTopic"
PROBE_TOPIC = "HeldPullProbeTopic"
HUGE_SUSPEND_MS = 1 << 62
#: How long the hostile client lets the broker take in its pulls.
SETTLE_S = 1.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class StepClock(trio.abc.Instrument):
    """The CPU time (thread CPU, so that other processes on a loaded machine
    do not count) of each task step and of each round of the event loop
    (from one look at the sockets to the next: what a request that just
    arrived may have to wait): the longest, and how many took long."""

    def __init__(self) -> None:
        self.round_started: float | None = None
        self.phase = "idle"
        self.rounds: dict[str, list[float]] = {}
        self.started: float | None = None
        self.longest_ms = 0.0
        self.longest_task = ""
        self.over_10ms = 0
        self.over_50ms = 0

    def after_io_wait(self, timeout: float) -> None:
        now = time.thread_time()
        if self.round_started is not None:
            self.rounds.setdefault(self.phase, []).append((now - self.round_started) * 1000)
        self.round_started = now

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.started = time.thread_time()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.started is None:
            return  # the step that added the instrument
        took = (time.thread_time() - self.started) * 1000
        self.over_10ms += took > 10
        self.over_50ms += took > 50
        if took > self.longest_ms:
            self.longest_ms = took
            self.longest_task = task.name


async def serve(root: str) -> None:
    """The broker process: serve until stdin closes, then print the step
    figures. Each line read from stdin names the phase the rounds that
    follow belong to."""
    from pyrocket.broker.app import serve_broker
    from pyrocket.broker.config import BrokerSettings

    settings = BrokerSettings.from_properties(
        {
            "brokerIP1": "127.0.0.1",
            "brokerName": "bench-broker",
            "listenPort": "0",
            "storePathRootDir": root,
            "defaultTopicQueueNums": "4",
        }
    )
    clock = StepClock()
    collections: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(time.thread_time())
        elif collections:
            collections[-1] = time.thread_time() - collections[-1]

    gc.callbacks.append(on_gc)
    async with trio.open_nursery() as nursery:
        broker = await nursery.start(
            lambda task_status: serve_broker(settings, host="127.0.0.1", task_status=task_status)
        )
        print(broker.broker_addr, flush=True)
        trio.lowlevel.add_instrument(clock)
        stdin = trio.wrap_file(sys.stdin)
        while line := await stdin.readline():
            clock.phase = line.strip()
        trio.lowlevel.remove_instrument(clock)
        figures: dict[str, float | int | str] = {
            "longest_step_cpu_ms": round(clock.longest_ms, 2),
            "longest_step_task": clock.longest_task,
            "steps_over_10ms_cpu": clock.over_10ms,
            "steps_over_50ms_cpu": clock.over_50ms,
            "longest_gc_ms": round(max(collections, default=0) * 1000, 2),
            "loop_rounds_over_50ms_cpu": sum(
                1 for rounds in clock.rounds.values() for took in rounds if took > 50
            ),
        }
        for phase in ("hold", "wake", "drop"):
            rounds = clock.rounds.get(phase, [])
            figures[f"loop_round_cpu_p99_ms_{phase}"] = round(p99(rounds), 2)
            figures[f"loop_round_cpu_max_ms_{phase}"] = round(max(rounds, default=0), 2)
        print(json.dumps(figures), flush=True)
        nursery.cancel_scope.cancel()


def start_broker(root: Path) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, __file__, "--broker", str(root)]
    child = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert child.stdout is not None
    addr = child.stdout.readline().strip()
    if not re.fullmatch(r"[0-9.]+:[0-9]+", addr):
        child.kill()
        raise RuntimeError(f"broker did not start: {addr!r}")
    return child, addr


def send_request(topic: str, body: bytes) -> RemotingCommand:
    header = SendMessageRequestHeaderV2(
        producer_group="bench_producer",
        topic=topic,
        default_topic="TBW102",
        default_topic_queue_nums=4,
        queue_id=0,
        sys_flag=0,
        born_timestamp=int(time.time() * 1000),
        flag=0,
        properties=encode_properties({"TAGS": "TagA", "WAIT": "true"}),
        reconsume_times=0,
        unit_mode=False,
        batch=False,
    )
    return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header, body=body)


def pull_request(offset: int) -> RemotingCommand:
    header = PullMessageRequestHeader(
        consumer_group="bench_consumer",
        topic=TOPIC,
        queue_id=0,
        queue_offset=offset,
        max_msg_nums=32,
        sys_flag=0x2 | 0x4,  # suspend, subscription
        commit_offset=0,
        suspend_timeout_millis=HUGE_SUSPEND_MS,
        subscription="*",
        sub_version=0,
        expression_type="TAG",
    )
    return RemotingCommand.request(RequestCode.PULL_MESSAGE, header)


# -- the hostile client ---------------------------------------------------------


async def hostile(addr: str, pulls: int, connections: int, rounds: int) -> None:
    """Hold ``pulls`` pulls; wake them (round 0) or drop them (later rounds).
    Reports on stdout, waits for "go" on stdin after each round."""
    per_connection = pulls // connections
    stdin = trio.wrap_file(sys.stdin)
    async with RemotingClient() as first:
        sent = await first.invoke_sync(addr, send_request(TOPIC, b"seen"), 10)
        assert sent.code == ResponseCode.SUCCESS, sent
    offset = 1
    for round_no in range(rounds + 1):
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(RemotingClient()) for _ in range(connections)
            ]
            futures: list[ResponseFuture] = []
            print(json.dumps({"phase": "hold"}), flush=True)
            started = time.perf_counter()
            for client in clients:
                for _ in range(per_connection):
                    futures.append(await client.invoke_async(addr, pull_request(offset), 3600))
            await trio.sleep(SETTLE_S)
            early = sum(1 for future in futures if future.done())
            hold_s = time.perf_counter() - started - SETTLE_S
            if round_no == 0:
                print(json.dumps({"phase": "wake"}), flush=True)
                woke = time.perf_counter()
                sent = await clients[0].invoke_sync(addr, send_request(TOPIC, b"wake"), 10)
                assert sent.code == ResponseCode.SUCCESS, sent
                answered = 0
                for future in futures:
                    answer = await future
                    answered += answer.code == ResponseCode.SUCCESS
                wake_ms = (time.perf_counter() - woke) * 1000
                offset += 1
                report = {"round": 0, "woken": answered, "early": early, "wake_all_ms": wake_ms}
            else:
                print(json.dumps({"phase": "drop"}), flush=True)
                report = {"round": round_no, "held": len(futures) - early, "early": early}
            report["send_pulls_s"] = hold_s
        print(json.dumps(report), flush=True)
        await stdin.readline()


# -- the steering and probing process ----------------------------------------------


class Probe:
    def __init__(self, addr: str, period: float) -> None:
        self.addr = addr
        self.period = period
        self.phase = "idle"
        self.send_ms: dict[str, list[float]] = {}
        self.query_ms: dict[str, list[float]] = {}

    async def run(self) -> None:
        query = RemotingCommand.request(
            RequestCode.GET_MAX_OFFSET, GetMaxOffsetRequestHeader(PROBE_TOPIC, 0)
        )
        async with RemotingClient() as client:
            sent = await client.invoke_sync(self.addr, send_request(PROBE_TOPIC, b"p"), 10)
            assert sent.code == ResponseCode.SUCCESS
            while True:
                started = time.perf_counter()
                answer = await client.invoke_sync(self.addr, send_request(PROBE_TOPIC, b"p"), 10)
                assert answer.code == ResponseCode.SUCCESS, answer
                middle = time.perf_counter()
                answer = await client.invoke_sync(self.addr, query, 10)
                assert answer.code == ResponseCode.SUCCESS, answer
                done = time.perf_counter()
                self.send_ms.setdefault(self.phase, []).append((middle - started) * 1000)
                self.query_ms.setdefault(self.phase, []).append((done - middle) * 1000)
                await trio.sleep(self.period)


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return max(values, default=0.0)
    return statistics.quantiles(values, n=100, method="inclusive")[98]


async def steer(args: argparse.Namespace) -> dict[str, float | int]:
    figures: dict[str, float | int] = {"held_pulls": args.pulls, "connections": args.connections}
    with tempfile.TemporaryDirectory() as tmp:
        broker, addr = start_broker(Path(tmp) / "store")
        try:
            command = [
                sys.executable,
                __file__,
                "--hostile",
                addr,
                "--pulls",
                str(args.pulls),
                "--connections",
                str(args.connections),
                "--rounds",
                str(args.rounds),
            ]
            probe = Probe(addr, args.probe_ms / 1000)
            rss: list[float] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(probe.run)
                process = await trio.lowlevel.open_process(
                    command, stdin=subprocess.PIPE, stdout=subprocess.PIPE
                )
                assert process.stdout is not None and process.stdin is not None
                buffer = b""
                for _ in range(args.rounds + 1):
                    while True:
                        while b"\n" not in buffer:
                            chunk = await process.stdout.receive_some()
                            if not chunk:
                                raise RuntimeError("the hostile client exited early")
                            buffer += chunk
                        line, buffer = buffer.split(b"\n", 1)
                        report = json.loads(line)
                        if "phase" not in report:
                            break
                        probe.phase = report["phase"]
                        assert broker.stdin is not None
                        broker.stdin.write(f"{probe.phase}\n")
                        broker.stdin.flush()
                    await trio.sleep(1.0)  # the broker handles the closes
                    probe.phase = "idle"
                    assert broker.stdin is not None
                    broker.stdin.write("idle\n")
                    broker.stdin.flush()
                    report["broker_rss_mb"] = round(rss_mb(broker.pid), 1)
                    print(json.dumps(report), flush=True)
                    if report["round"] == 0:
                        figures["woken"] = report["woken"]
                        figures["wake_all_ms"] = round(report["wake_all_ms"], 1)
                        figures["rss_mb_holding_and_woken"] = report["broker_rss_mb"]
                    else:
                        rss.append(report["broker_rss_mb"])
                    figures["hold_pulls_s"] = round(report["send_pulls_s"], 2)
                    await process.stdin.send_all(b"go\n")
                await process.wait()
                nursery.cancel_scope.cancel()
            steady = rss[1:] if len(rss) > 2 else rss
            growth = (steady[-1] - steady[0]) / (len(steady) - 1) if len(steady) > 1 else 0.0
            figures["rss_growth_mb_per_round"] = round(growth, 2)
            figures["rss_mb_after"] = rss[-1] if rss else 0.0
            for name, table in (("send", probe.send_ms), ("query", probe.query_ms)):
                every = [value for values in table.values() for value in values]
                figures[f"other_client_{name}_p99_ms"] = round(p99(every), 2)
                figures[f"other_client_{name}_max_ms"] = round(max(every), 2)
                for phase in ("hold", "wake"):
                    values = table.get(phase, [])
                    figures[f"other_client_{name}_p99_ms_{phase}"] = round(p99(values), 2)
                    figures[f"other_client_{name}_max_ms_{phase}"] = round(
                        max(values, default=0), 2
                    )
            figures["probes"] = sum(len(values) for values in probe.send_ms.values())
            assert broker.stdin is not None and broker.stdout is not None
            broker.stdin.close()
            figures.update(json.loads(broker.stdout.readline()))
        finally:
            if broker.poll() is None:
                broker.wait(10)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulls", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--probe-ms", type=float, default=5.0)
    parser.add_argument("--hostile", metavar="ADDR", help=argparse.SUPPRESS)
    parser.add_argument("--broker", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.broker:
        logging.basicConfig(level=logging.ERROR)
        trio.run(serve, args.broker)
        return
    if args.hostile:
        trio.run(hostile, args.hostile, args.pulls, args.connections, args.rounds)
        return
    started = time.perf_counter()
    figures = trio.run(steer, args)
    figures["run_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
