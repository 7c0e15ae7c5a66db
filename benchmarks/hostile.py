"""Stalls under hostile load: how long an ordinary client waits while another
client sends worst-case legal requests.

A pyrocket NameServer and a pyrocket broker run as two child processes; each
hostile load runs in a third process, so neither the attacker nor the
measuring client (this process) shares an event loop with a server. For each
load in turn, this process sends one GET_ROUTEINFO_BY_TOPIC to the NameServer
and one message to the broker (a Producer's send), over and over for
``--seconds``, and records each latency; both servers' resident memory is
sampled meanwhile. The loads:

* ``baseline``: none, for comparison;
* ``big_ext``: 16 MiB frames whose header has the most ext fields a header may
  carry (1024, about 256 KiB of JSON), to both servers, back to back;
* ``register``: compressed REGISTER_BROKER bodies of ``--topics`` topics with a
  new DataVersion each time, from two connections, each waiting for its answer;
* ``heartbeat``: HEART_BEAT with one subscription of ``--tags`` tags, to the
  broker, from two connections;
* ``nonreader``: GET_KVLIST_BY_NAMESPACE of a namespace holding 1 MiB,
  pipelined to the NameServer by a client that never reads an answer;
* ``kv_flood``: PUT_KV_CONFIG of 1 KiB values over 1,000 keys, 256 in flight.

Prints a line per load; the last line is one JSON object: per load
``stall_<load>_route_{p50,p99,max}_ms``, ``stall_<load>_send_{p50,p99,max}_ms``,
``stall_<load>_{p99,max}_ms`` (the worse of the two) and
``<load>_{namesrv,broker}_rss_growth_mb`` (peak during the load minus before),
plus ``nonreader_rss_growth_mb`` (the NameServer's, the one under attack).

    python benchmarks/hostile.py --seconds 5
"""

from __future__ import annotations

import argparse
import json
import math
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyrocket.broker.outer_api import BrokerIdentity, register_broker_request
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.namesrv_api import NameServerAPI
from pyrocket.client.producer import Producer, new_message
from pyrocket.protocol.bodies import DataVersion, TopicConfig, TopicConfigSerializeWrapper
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    HeartbeatData,
    MessageModel,
    SubscriptionData,
)
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand, encode
from pyrocket.protocol.frame import DEFAULT_MAX_FRAME_SIZE, MAX_EXT_FIELDS, MAX_HEADER_SIZE
from pyrocket.protocol.headers import (
    GetKVListByNamespaceRequestHeader,
    PutKVConfigRequestHeader,
)
from pyrocket.protocol.javahash import string_hash
from pyrocket.remoting import RemotingClient

LOADS = ("baseline", "big_ext", "register", "heartbeat", "nonreader", "kv_flood")
TOPIC = "HostileBenchTopic"
OP_TIMEOUT = 10.0

# ---------------------------------------------------------------------------
# The servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return math.nan
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else math.nan


class Servers:
    """The NameServer and broker child processes."""

    def __init__(self, root: Path) -> None:
        self.namesrv_port = free_port()
        self.namesrv_addr = f"127.0.0.1:{self.namesrv_port}"
        ns_home = root / "namesrv"
        ns_home.mkdir(parents=True)
        quiet = [sys.executable, "-m", "pyrocket", "--log-level", "ERROR"]
        self.namesrv = subprocess.Popen(
            [
                *quiet,
                "namesrv",
                "-p",
                str(self.namesrv_port),
                "--host",
                "127.0.0.1",
                "--set",
                f"rocketmqHome={ns_home}",
                "--set",
                f"kvConfigPath={ns_home / 'kvConfig.json'}",
                "--set",
                f"configStorePath={ns_home / 'namesrv.properties'}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.namesrv.stdout is not None
        self.namesrv.stdout.readline()  # the boot line
        conf = root / "broker.conf"
        self.broker_port = free_port()
        conf.write_text(
            "\n".join(
                [
                    "brokerClusterName=DefaultCluster",
                    "brokerName=broker-a",
                    "brokerId=0",
                    "brokerIP1=127.0.0.1",
                    "brokerIP2=127.0.0.1",
                    f"listenPort={self.broker_port}",
                    f"namesrvAddr={self.namesrv_addr}",
                    f"storePathRootDir={root / 'store'}",
                    "autoCreateTopicEnable=true",
                    "flushDiskType=ASYNC_FLUSH",
                    "",
                ]
            )
        )
        self.broker = subprocess.Popen(
            [*quiet, "broker", "-c", str(conf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.broker.stdout is not None
        line = self.broker.stdout.readline()
        if "boot success" not in line:
            raise RuntimeError(f"the broker did not start: {line!r}")
        self.broker_addr = f"127.0.0.1:{self.broker_port}"

    def rss(self) -> tuple[float, float]:
        return rss_mb(self.namesrv.pid), rss_mb(self.broker.pid)

    def stop(self) -> None:
        for process in (self.broker, self.namesrv):
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# ---------------------------------------------------------------------------
# The hostile loads (run in their own process: ``--attack LOAD``)


def big_ext_frame(code: int, extra: dict[str, str]) -> bytes:
    """A 16 MiB frame (length word included) whose JSON header carries the
    most ext fields allowed, filling the header bound."""
    fields = MAX_EXT_FIELDS - len(extra)
    # Each field is "xNNNN":"<value>", plus a comma: 11 bytes of framing.
    value_size = (MAX_HEADER_SIZE - 400) // MAX_EXT_FIELDS - 11
    ext = dict(extra)
    ext.update({f"x{i:04d}": "v" * value_size for i in range(fields)})
    bare = encode(RemotingCommand(code=code, ext_fields=ext))
    header_length = int.from_bytes(bare[5:8], "big")
    assert header_length <= MAX_HEADER_SIZE, header_length
    body = b"\x00" * (DEFAULT_MAX_FRAME_SIZE - len(bare))
    frame = encode(RemotingCommand(code=code, ext_fields=ext, body=body))
    assert len(frame) == DEFAULT_MAX_FRAME_SIZE
    return frame


async def drain(stream: trio.SocketStream) -> None:
    """Read and drop everything the server answers."""
    try:
        while await stream.receive_some(1 << 20):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def flood(stream: trio.SocketStream, frames: Sequence[bytes]) -> None:
    """Send ``frames`` round and round, as fast as the server takes them."""
    try:
        while True:
            for frame in frames:
                await stream.send_all(frame)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def ping_pong(addr: str, requests: Sequence[RemotingCommand]) -> None:
    """Send each request in turn, waiting for each answer (what a busy but
    well-behaved peer does)."""
    async with RemotingClient() as client:
        while True:
            for request in requests:
                try:
                    await client.invoke_sync(addr, request, OP_TIMEOUT)
                except Exception:
                    await trio.sleep(0.01)


def register_requests(topics: int) -> list[RemotingCommand]:
    table = {f"hostile-{i:06d}": TopicConfig(f"hostile-{i:06d}", 8, 8, 6) for i in range(topics)}
    identity = BrokerIdentity(
        "HostileCluster", "10.9.9.9:10911", "hostile-broker", 0, "10.9.9.9:10912"
    )
    return [
        register_broker_request(
            identity,
            TopicConfigSerializeWrapper(table, DataVersion(1_700_000_000_000 + n, n)),
            compressed=True,
        )
        for n in range(8)
    ]


def heartbeat_request(tags: int) -> RemotingCommand:
    names = tuple(f"tag{i}" for i in range(tags))
    subscription = SubscriptionData(
        topic="HostileTopic",
        sub_string=" || ".join(names),
        tags_set=names,
        code_set=tuple(string_hash(name) for name in names),
        sub_version=1,
    )
    consumer = ConsumerData(
        group_name="hostile_group",
        consume_type=ConsumeType.CONSUME_PASSIVELY,
        message_model=MessageModel.CLUSTERING,
        consume_from_where=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
        subscription_data_set=(subscription,),
    )
    body = HeartbeatData(client_id="10.9.9.9@hostile", consumer_data_set=(consumer,)).encode()
    return RemotingCommand.request(RequestCode.HEART_BEAT, body=body)


async def attack(load: str, namesrv: str, broker: str, topics: int, tags: int) -> None:
    ready = False

    def started() -> None:
        nonlocal ready
        if not ready:
            ready = True
            print("ready", flush=True)

    def host_port(addr: str) -> tuple[str, int]:
        host, port = addr.rsplit(":", 1)
        return host, int(port)

    async with trio.open_nursery() as nursery:
        if load == "big_ext":
            route = big_ext_frame(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "NoSuchTopic"})
            unknown = big_ext_frame(9999, {})
            for addr, frame in ((namesrv, route), (broker, unknown)):
                stream = await trio.open_tcp_stream(*host_port(addr))
                nursery.start_soon(drain, stream)
                nursery.start_soon(flood, stream, [frame])
        elif load == "register":
            requests = register_requests(topics)
            for _ in range(2):
                nursery.start_soon(ping_pong, namesrv, requests)
        elif load == "heartbeat":
            request = heartbeat_request(tags)
            for _ in range(2):
                nursery.start_soon(ping_pong, broker, [request])
        elif load == "nonreader":
            async with RemotingClient() as client:
                api = NameServerAPI(client)
                for i in range(16):
                    await api.put_kv_config("HOSTILE_NS", f"k{i}", "v" * 65536, namesrv)
            frame = encode(
                RemotingCommand.request(
                    RequestCode.GET_KVLIST_BY_NAMESPACE,
                    GetKVListByNamespaceRequestHeader("HOSTILE_NS"),
                )
            )
            stream = await trio.open_tcp_stream(*host_port(namesrv))
            nursery.start_soon(flood, stream, [frame] * 64)
        elif load == "kv_flood":
            value = "v" * 1024
            frames = [
                encode(
                    RemotingCommand.request(
                        RequestCode.PUT_KV_CONFIG,
                        PutKVConfigRequestHeader("FLOOD_NS", f"key{i}", value),
                        opaque=i,
                    )
                )
                for i in range(1000)
            ]
            stream = await trio.open_tcp_stream(*host_port(namesrv))
            window = trio.Semaphore(256)
            nursery.start_soon(_windowed_reader, stream, window)
            nursery.start_soon(_windowed_sender, stream, frames, window)
        else:
            raise SystemExit(f"unknown load {load!r}")
        started()
        await trio.sleep_forever()


async def _windowed_sender(
    stream: trio.SocketStream, frames: Sequence[bytes], window: trio.Semaphore
) -> None:
    try:
        while True:
            for frame in frames:
                await window.acquire()
                await stream.send_all(frame)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def _windowed_reader(stream: trio.SocketStream, window: trio.Semaphore) -> None:
    """Read answers, releasing one window slot per frame."""
    buffer = bytearray()
    try:
        while True:
            data = await stream.receive_some(1 << 16)
            if not data:
                return
            buffer += data
            while len(buffer) >= 4:
                size = int.from_bytes(buffer[:4], "big")
                if len(buffer) < 4 + size:
                    break
                del buffer[: 4 + size]
                window.release()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


# ---------------------------------------------------------------------------
# The measuring client


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    """Milliseconds ``call()`` took (a failure or timeout counts as its time)."""
    start = time.perf_counter()
    try:
        with trio.fail_after(OP_TIMEOUT):
            await call()
    except Exception:  # a failure or a timeout is a data point too
        pass
    return (time.perf_counter() - start) * 1000


async def measure(
    servers: Servers,
    route_query: Callable[[], Awaitable[object]],
    send_one: Callable[[], Awaitable[object]],
    seconds: float,
) -> dict[str, float]:
    route: list[float] = []
    send: list[float] = []
    before = servers.rss()
    peak = list(before)

    async def sample_rss() -> None:
        while True:
            for i, value in enumerate(servers.rss()):
                if not math.isnan(value):
                    peak[i] = max(peak[i], value)
            await trio.sleep(0.1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample_rss)
        end = trio.current_time() + seconds
        while trio.current_time() < end:
            route.append(await timed(route_query))
            send.append(await timed(send_one))
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    return {
        "route_p50_ms": percentile(route, 0.5),
        "route_p99_ms": percentile(route, 0.99),
        "route_max_ms": max(route),
        "send_p50_ms": percentile(send, 0.5),
        "send_p99_ms": percentile(send, 0.99),
        "send_max_ms": max(send),
        "samples": float(len(route)),
        "namesrv_rss_growth_mb": peak[0] - before[0],
        "broker_rss_growth_mb": peak[1] - before[1],
    }


async def run_attacker(load: str, servers: Servers, args: argparse.Namespace) -> trio.Process:
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            __file__,
            "--attack",
            load,
            "--namesrv",
            servers.namesrv_addr,
            "--broker",
            servers.broker_addr,
            "--topics",
            str(args.topics),
            "--tags",
            str(args.tags),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    with trio.fail_after(120):
        received = b""
        while b"ready" not in received:
            chunk = await process.stdout.receive_some()
            if not chunk:
                raise RuntimeError(f"the {load} attacker exited before it started")
            received += chunk
    return process


async def orchestrate(args: argparse.Namespace) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="pyrocket-hostile-"))
    servers = Servers(root)
    results: dict[str, float] = {}
    try:
        async with RemotingClient() as client:
            namesrv = NameServerAPI(client)
            await BrokerAPI(client).create_topic(servers.broker_addr, TopicConfig(TOPIC, 4, 4, 6))
            with trio.fail_after(30):
                while True:
                    try:
                        await namesrv.get_route_info(TOPIC, servers.namesrv_addr)
                        break
                    except Exception:
                        await trio.sleep(0.1)
            async with Producer(
                "hostile_bench", [servers.namesrv_addr], client_ip="127.0.0.1"
            ) as producer:
                await producer.send(new_message(TOPIC, b"warm-up"))
                message = new_message(TOPIC, b"x" * 128)

                async def route_query() -> object:
                    return await namesrv.get_route_info(TOPIC, servers.namesrv_addr)

                async def send_one() -> object:
                    return await producer.send(message)

                for load in args.loads:
                    attacker = None
                    if load != "baseline":
                        attacker = await run_attacker(load, servers, args)
                    try:
                        figures = await measure(servers, route_query, send_one, args.seconds)
                    finally:
                        if attacker is not None:
                            attacker.kill()
                            await attacker.wait()
                    print(
                        f"{load:10s} route p50 {figures['route_p50_ms']:7.1f} "
                        f"p99 {figures['route_p99_ms']:7.1f} max {figures['route_max_ms']:7.1f} | "
                        f"send p50 {figures['send_p50_ms']:7.1f} p99 {figures['send_p99_ms']:7.1f} "
                        f"max {figures['send_max_ms']:7.1f} ms | "
                        f"{int(figures['samples'])} rounds | "
                        f"rss growth namesrv {figures['namesrv_rss_growth_mb']:.1f} "
                        f"broker {figures['broker_rss_growth_mb']:.1f} MB",
                        flush=True,
                    )
                    for key in ("route_p50_ms", "route_p99_ms", "route_max_ms"):
                        results[f"stall_{load}_{key}"] = round(figures[key], 2)
                    for key in ("send_p50_ms", "send_p99_ms", "send_max_ms"):
                        results[f"stall_{load}_{key}"] = round(figures[key], 2)
                    results[f"stall_{load}_p99_ms"] = round(
                        max(figures["route_p99_ms"], figures["send_p99_ms"]), 2
                    )
                    results[f"stall_{load}_max_ms"] = round(
                        max(figures["route_max_ms"], figures["send_max_ms"]), 2
                    )
                    for side in ("namesrv", "broker"):
                        key = f"{side}_rss_growth_mb"
                        results[f"{load}_{key}"] = round(figures[key], 1)
                    if load == "nonreader":
                        results["nonreader_rss_growth_mb"] = round(
                            figures["namesrv_rss_growth_mb"], 1
                        )
                    # Let the servers drop what the attacker left behind.
                    await trio.sleep(1.0)
    finally:
        servers.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per load (default 5)")
    parser.add_argument("--topics", type=int, default=20_000, help="topics per REGISTER_BROKER")
    parser.add_argument("--tags", type=int, default=100_000, help="tags in the heartbeat")
    parser.add_argument(
        "--loads", nargs="+", default=list(LOADS), choices=LOADS, help="loads to run, in order"
    )
    parser.add_argument("--attack", choices=LOADS[1:], help=argparse.SUPPRESS)
    parser.add_argument("--namesrv", help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        trio.run(attack, args.attack, args.namesrv, args.broker, args.topics, args.tags)
        return
    results = trio.run(orchestrate, args)
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
