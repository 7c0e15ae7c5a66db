"""Client throughput: pyrocket's Producer (sync sends of 1 KiB messages from
``--senders`` concurrent tasks sharing one producer) and PushConsumer (one
consumer reading everything back), against ``pyrocket up`` in a child
process (its data in a temporary directory); then one workload driven by
each client in turn against that same broker: ``--count`` sync sends one
after another, ``--count`` async sends with at most ``--window`` in flight,
and a push consumer from the first offset until it has all of them. The
clients: pyrocket's (in this process), the C++ client of PyPI's
``rocketmq==0.4.4`` (a child process running this script with ``--cpp``)
and, when ``ROCKETMQ_HOME`` is set, Java's 4.7 client
(compat/java/BenchClient.java in source-file mode).

    python benchmarks/client.py [--senders 16 --seconds 2 --size 1024 --count 500 --window 64]

Each client's figures: messages per second per phase, and the client
process's CPU time per message (µs; the broker shares the machine, so a
client that burns less CPU leaves more to the broker); with the broker's
CPU per message moved while that client ran. Ratios are pyrocket's rate
over the other client's (over 1: pyrocket faster). The last line is one
JSON object.
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
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyrocket.client import Producer, PushConsumer, new_message
from pyrocket.protocol.bodies.client import ConsumeFromWhere

TOPIC = "ClientBenchTopic"
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(Path(__file__).resolve())
PHASES = (("sync", "sync_send"), ("async", "async_send"), ("consume", "consume"))


def start_up(data: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pyrocket", "--log-level", "WARNING", "up", "--dir", str(data),
         "--namesrv-port", "0", "--broker-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"NameServer (\S+),", line)
    if match is None:
        process.kill()
        raise SystemExit(f"pyrocket up did not start: {line!r}")
    return process, match.group(1)


async def produce(ns: str, senders: int, seconds: float, size: int) -> tuple[int, list[float]]:
    latencies: list[float] = []
    body = b"x" * size
    async with Producer("bench_producers", [ns], client_ip="127.0.0.1") as producer:
        await producer.send(new_message(TOPIC, body))  # creates the topic
        deadline = trio.current_time() + seconds

        async def sender() -> None:
            while trio.current_time() < deadline:
                start = time.perf_counter()
                await producer.send(new_message(TOPIC, body, tags="bench"))
                latencies.append(time.perf_counter() - start)

        async with trio.open_nursery() as nursery:
            for _ in range(senders):
                nursery.start_soon(sender)
    return len(latencies) + 1, latencies


async def consume(ns: str, count: int) -> float:
    consumer = PushConsumer(
        "bench_consumers",
        [ns],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
    )
    consumer.subscribe(TOPIC)
    async with consumer:
        start = time.perf_counter()
        received = 0
        while received < count:
            received += len(await consumer.poll(max_messages=256, timeout=10))
        return time.perf_counter() - start


async def run(args: argparse.Namespace, ns: str) -> dict[str, float]:
    sent, latencies = await produce(ns, args.senders, args.seconds, args.size)
    latencies.sort()
    produce_rate = sent / args.seconds
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0
    print(f"produce: {sent} messages in {args.seconds}s: {produce_rate:.0f}/s, p99 {p99:.2f} ms")
    elapsed = await consume(ns, sent)
    consume_rate = sent / elapsed
    print(f"consume: {sent} messages in {elapsed:.2f}s: {consume_rate:.0f}/s")
    return {
        "produce_msgs_per_s": round(produce_rate),
        "produce_p99_ms": round(p99, 2),
        "consume_msgs_per_s": round(consume_rate),
    }


async def workload(ns: str, count: int, size: int, window: int) -> dict[str, float]:
    """The shared workload by pyrocket's client (see the module)."""
    from collections import deque

    from pyrocket.client import SendFuture, SendResult

    topic, body = "BenchPy", b"x" * size
    async with Producer("bench_py_producer", [ns], client_ip="127.0.0.1") as producer:
        await producer.send(new_message(topic, body))
        cpu, start = time.process_time(), time.perf_counter()
        for _ in range(count - 1):
            await producer.send(new_message(topic, body, tags="bench"))
        sync_s, sync_cpu = time.perf_counter() - start, time.process_time() - cpu
        cpu, start = time.process_time(), time.perf_counter()
        flying: deque[SendFuture[SendResult]] = deque()
        for _ in range(count):
            if len(flying) >= window:
                await flying.popleft()
            flying.append(await producer.send_async(new_message(topic, body, tags="bench")))
        while flying:
            await flying.popleft()
        async_s, async_cpu = time.perf_counter() - start, time.process_time() - cpu
    consumer = PushConsumer(
        "bench_py_consumer",
        [ns],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
    )
    consumer.subscribe(topic)
    cpu, start = time.process_time(), time.perf_counter()
    async with consumer:
        received = 0
        while received < 2 * count:
            received += len(await consumer.poll(max_messages=256, timeout=10))
        consume_s, consume_cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "sync_s": sync_s, "sync_cpu_s": sync_cpu, "sync_count": count - 1,
        "async_s": async_s, "async_cpu_s": async_cpu, "async_count": count,
        "consume_s": consume_s, "consume_cpu_s": consume_cpu, "consume_count": received,
    }  # fmt: skip


def cpp_workload(ns: str, count: int, size: int, window: int) -> None:
    """The shared workload by the C++ client; prints its figures as JSON.
    Runs in a child process (the library starts threads, writes $HOME/logs)."""
    import threading

    from rocketmq.client import Message
    from rocketmq.client import Producer as CppProducer
    from rocketmq.client import PushConsumer as CppConsumer

    topic, body = "BenchCpp", b"x" * size

    def message() -> Message:
        m = Message(topic)
        m.set_tags("bench")
        m.set_body(body)
        return m

    producer = CppProducer("bench_cpp_producer")
    producer.set_namesrv_addr(ns)
    producer.start()
    started = time.monotonic()
    for attempt in range(3):  # the first send may race the connection (see tests)
        try:
            producer.send_sync(message())
            break
        except Exception:
            if attempt == 2:
                raise
            time.sleep(0.5)
    cpu, start = time.process_time(), time.perf_counter()
    for _ in range(count - 1):
        producer.send_sync(message())
    sync_s, sync_cpu = time.perf_counter() - start, time.process_time() - cpu
    slots = threading.Semaphore(window)
    done = threading.Semaphore(0)
    failed = [0]

    def on_success(result: object) -> None:
        slots.release()
        done.release()

    def on_error(exc: object) -> None:
        failed[0] += 1
        slots.release()
        done.release()

    cpu, start = time.process_time(), time.perf_counter()
    for _ in range(count):
        slots.acquire()
        producer.send_async(message(), on_success, on_error)
    acked, give_up = 0, time.monotonic() + 60
    while acked < count and done.acquire(timeout=max(0.0, give_up - time.monotonic())):
        acked += 1
    failed[0] += count - acked
    async_s, async_cpu = time.perf_counter() - start, time.process_time() - cpu
    age = time.monotonic() - started
    if 2.5 <= age < 3.5:  # its first route refresh: shutting down then aborts
        time.sleep(3.5 - age)
    producer.shutdown()

    total = 2 * count
    lock = threading.Lock()
    received = [0]
    all_in = threading.Event()

    def callback(msg: object) -> None:
        with lock:
            received[0] += 1
            if received[0] >= total:
                all_in.set()

    consumer = CppConsumer("bench_cpp_consumer")
    consumer.set_namesrv_addr(ns)
    consumer.subscribe(topic, callback)
    cpu, start = time.process_time(), time.perf_counter()
    started = time.monotonic()
    consumer.start()
    all_in.wait(60)
    consume_s, consume_cpu = time.perf_counter() - start, time.process_time() - cpu
    age = time.monotonic() - started
    if 2.5 <= age < 3.5:
        time.sleep(3.5 - age)
    print(json.dumps({
        "sync_s": sync_s, "sync_cpu_s": sync_cpu, "sync_count": count - 1,
        "async_s": async_s, "async_cpu_s": async_cpu, "async_count": count,
        "async_failed": failed[0],
        "consume_s": consume_s, "consume_cpu_s": consume_cpu, "consume_count": received[0],
    }), flush=True)  # fmt: skip
    consumer.shutdown()
    os._exit(0)  # the library's threads may linger


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_child(
    command: list[str], env: dict[str, str], seconds: float
) -> dict[str, float] | None:
    """The figures a client child process printed; None (reported) when it
    gave none within ``seconds``."""
    with trio.move_on_after(seconds):
        result = await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False, env=env
        )
        lines = [line for line in result.stdout.decode().splitlines() if line.startswith("{")]
        if lines:
            figures: dict[str, float] = json.loads(lines[-1])
            return figures
        tail = result.stderr.decode(errors="replace")[-1500:]
        print(f"{command[1]} gave no figures (status {result.returncode}): {tail}")
        return None
    print(f"{command[1]} did not finish within {seconds} s")
    return None


def summary(name: str, raw: dict[str, float], broker_cpu: float) -> dict[str, float]:
    """Rates and CPU per message of one client's run."""
    out: dict[str, float] = {}
    moved = 0.0
    for phase in ("sync", "async", "consume"):
        count, seconds, cpu = raw[f"{phase}_count"], raw[f"{phase}_s"], raw[f"{phase}_cpu_s"]
        moved += count
        out[f"{phase}_msgs_per_s"] = round(count / seconds) if seconds > 0 else 0
        out[f"{phase}_cpu_us_per_msg"] = round(cpu / count * 1e6, 1) if count else 0.0
    out["broker_cpu_us_per_msg"] = round(broker_cpu / moved * 1e6, 1) if moved else 0.0
    out["async_failed"] = raw.get("async_failed", 0)
    out["consumed"] = raw["consume_count"]
    print(
        f"{name}: sync {out['sync_msgs_per_s']}/s ({out['sync_cpu_us_per_msg']} µs CPU/msg), "
        f"async {out['async_msgs_per_s']}/s ({out['async_cpu_us_per_msg']} µs), "
        f"consume {out['consume_msgs_per_s']}/s ({out['consume_cpu_us_per_msg']} µs); "
        f"broker {out['broker_cpu_us_per_msg']} µs CPU per message moved"
    )
    return out


async def compare(args: argparse.Namespace, ns: str, broker_pid: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    clients: dict[str, dict[str, float]] = {}
    workload_args = [ns, str(args.count), str(args.size), str(args.window)]

    before = process_cpu(broker_pid)
    raw = await workload(ns, args.count, args.size, args.window)
    clients["pyrocket"] = summary("pyrocket", raw, process_cpu(broker_pid) - before)

    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, HOME=home)
        try:
            import rocketmq.client  # noqa: F401
        except (ImportError, OSError) as exc:
            print(f"C++ client: not run ({exc})")
        else:
            before = process_cpu(broker_pid)
            command = [sys.executable, SCRIPT, "--cpp", *workload_args]
            found = await run_child(command, env, 60)
            if found is not None:
                clients["cpp"] = summary("C++", found, process_cpu(broker_pid) - before)
        java_home = os.environ.get("ROCKETMQ_HOME")
        if java_home:
            source = ROOT / "compat" / "java" / "BenchClient.java"
            command = [
                "java", "-Xms256m", "-Xmx256m", f"-Duser.home={home}",
                "-Djava.net.preferIPv4Stack=true", "-cp", str(Path(java_home) / "lib" / "*"),
                str(source), ns, "BenchJava", "bench_java", str(args.count), str(args.size),
                str(args.window),
            ]  # fmt: skip
            before = process_cpu(broker_pid)
            found = await run_child(command, env, 120)
            if found is not None:
                clients["java"] = summary("Java", found, process_cpu(broker_pid) - before)
        else:
            print("Java client: not run (ROCKETMQ_HOME is not set)")

    mine = clients["pyrocket"]
    for name, theirs in clients.items():
        for key, value in theirs.items():
            figures[f"{name}_{key}"] = value
        if name == "pyrocket":
            continue
        for phase, label in (
            ("sync", "sync_send"),
            ("async", "async_send"),
            ("consume", "consume"),
        ):
            rate = theirs[f"{phase}_msgs_per_s"]
            ratio = mine[f"{phase}_msgs_per_s"] / rate if rate else 0.0
            figures[f"{label}_ratio_vs_{name}"] = round(ratio, 2)
    return figures


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--cpp":
        ns, count, size, window = sys.argv[2:6]
        cpp_workload(ns, int(count), int(size), int(window))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--count", type=int, default=500, help="messages per send phase")
    parser.add_argument("--window", type=int, default=64, help="async sends in flight")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        process, ns = start_up(Path(data))
        try:
            figures = trio.run(run, args, ns)
            figures.update(trio.run(compare, args, ns, process.pid))
        finally:
            process.terminate()
            process.wait(30)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    figures["load_average_1m"] = round(load[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
