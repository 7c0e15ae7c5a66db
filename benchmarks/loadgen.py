"""The load generator the server benchmarks share (benchmarks/broker.py,
benchmarks/namesrv.py).

It is built to cost the measured server as little as possible and to cost
itself little too, so that one generator can drive pyrocket and Java alike:

* requests are frame templates encoded once with pyrocket's codec; per
  request only the opaque and a few marked fields (a message key, a queue
  offset) are spliced in as bytes;
* answers are cut out of the byte stream by their length words and read for
  their code and opaque only (digits picked from the JSON header text, or two
  fixed fields of a ROCKETMQ binary header); no RemotingCommand is built;
* connections are plain blocking sockets watched by a selector, in processes
  of their own (``fork``), so the generator never shares the interpreter of a
  server it measures; its CPU (user + system of those processes, from
  ``getrusage`` in each at the window's edges) is measured over the same
  window as the server's (``/proc/<pid>/stat``).

A run keeps ``inflight`` requests outstanding on each of ``connections``
connections: warm-up, then the measured window (answers arriving inside it
count, with their latencies), then a drain of what is still outstanding. A
*finite* run (pulls) instead sends what its workloads hold and is measured
from the first request to the last answer.

Linux only (``/proc``, ``fork``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import resource
import selectors
import socket
import struct
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Protocol

_HEAD = struct.Struct(">iI")
_CODE_PREFIX = b'{"code":'
_OPAQUE_KEY = b'"opaque":'
#: The opaque a template is encoded with, then cut out.
OPAQUE_MARK = 1357924680


# ---------------------------------------------------------------------------
# Frames


class Template:
    """A JSON-header frame with slots: the opaque, then each marker string
    (given in ``markers``) wherever it occurs in the header.

    ``header`` is the encoded JSON header of a request whose opaque is
    :data:`OPAQUE_MARK` and whose marked fields hold the marker strings; each
    marker must occur exactly once.
    """

    def __init__(self, header: bytes, body: bytes = b"", markers: Sequence[str] = ()) -> None:
        marks = [f"{_OPAQUE_KEY.decode()}{OPAQUE_MARK}".encode(), *(m.encode() for m in markers)]
        found: list[tuple[int, int, int]] = []  # (position, length, slot)
        for slot, mark in enumerate(marks):
            at = header.find(mark)
            if at < 0 or header.find(mark, at + 1) >= 0:
                raise ValueError(f"marker {mark!r} must occur exactly once in the header")
            if slot == 0:  # keep the key, replace only the digits
                at, mark = at + len(_OPAQUE_KEY), str(OPAQUE_MARK).encode()
            found.append((at, len(mark), slot))
        found.sort()
        self.parts: list[bytes] = []
        self.order: list[int] = []
        cursor = 0
        for at, length, slot in found:
            self.parts.append(header[cursor:at])
            self.order.append(slot)
            cursor = at + length
        self.parts.append(header[cursor:])
        self.body = body
        self._plain = len(marks) == 1

    def frame(self, opaque: int, *fields: bytes) -> bytes:
        """The whole frame with ``opaque`` and the marked fields' values."""
        parts = self.parts
        if self._plain:
            header = parts[0] + b"%d" % opaque + parts[1]
        else:
            values = (b"%d" % opaque, *fields)
            pieces = [parts[0]]
            for index, slot in enumerate(self.order):
                pieces.append(values[slot])
                pieces.append(parts[index + 1])
            header = b"".join(pieces)
        body = self.body
        return b"".join((_HEAD.pack(4 + len(header) + len(body), len(header)), header, body))


def answer_code_opaque(kind: int, header: bytes) -> tuple[int, int]:
    """(code, opaque) of an answer's header, read without decoding it."""
    if kind == 1:  # ROCKETMQ binary: code int16, language, version int16, opaque int32
        return (
            int.from_bytes(header[0:2], "big", signed=True),
            int.from_bytes(header[5:9], "big", signed=True),
        )
    if not header.startswith(_CODE_PREFIX):
        raise ValueError(f"not a JSON header: {header[:200]!r}")
    end = header.index(b",", 8)
    # The last one: an ext field may be named "opaque" (its value a string)
    # and comes first; a remark's quotes are escaped.
    at = header.rindex(_OPAQUE_KEY, end) + len(_OPAQUE_KEY)
    stop = header.find(b",", at)
    return int(header[8:end]), int(header[at : stop if stop >= 0 else header.index(b"}", at)])


def ext_field(header: bytes, key: str) -> str | None:
    """One ext field's value from a JSON header (values are plain strings)."""
    match = re.search(rb'"' + re.escape(key.encode()) + rb'":"([^"\\]*)"', header)
    return None if match is None else match.group(1).decode()


def count_messages(body: bytes) -> int:
    """How many stored messages a PULL_MESSAGE answer's body holds (each
    record opens with its total size)."""
    count = position = 0
    while position + 4 <= len(body):
        size = int.from_bytes(body[position : position + 4], "big")
        if size <= 0:
            raise ValueError(f"bad message record size {size} at {position}")
        position += size
        count += 1
    return count


# ---------------------------------------------------------------------------
# Blocking one-at-a-time calls (setup: create a topic, register brokers)


class Caller:
    """One blocking connection for setup requests, one answer at a time."""

    def __init__(self, addr: str, timeout: float = 30.0) -> None:
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()

    def call(self, frame: bytes) -> tuple[int, bytes, bytes]:
        """Send one frame; (code, header, body) of the next answer."""
        self.sock.sendall(frame)
        while True:
            if len(self._buffer) >= 8:
                length, word = _HEAD.unpack_from(self._buffer)
                if len(self._buffer) >= 4 + length:
                    size = word & 0xFFFFFF
                    header = bytes(self._buffer[8 : 8 + size])
                    body = bytes(self._buffer[8 + size : 4 + length])
                    del self._buffer[: 4 + length]
                    code, _ = answer_code_opaque(word >> 24, header)
                    return code, header, body
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("the server closed the connection")
            self._buffer += data

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------------------
# Pipelined load


class Workload(Protocol):
    """What one connection sends, and how it reads the answers."""

    #: Whether :meth:`answer` needs the answers' headers and bodies.
    wants_body: bool

    def frame(self, opaque: int) -> bytes | None:
        """The next request with ``opaque``; None when there is no more."""

    def answer(self, opaque: int, code: int, header: bytes, body: bytes) -> int:
        """How many messages an answer counts for (0 or more); negative for a
        failed request."""


class Repeat:
    """A workload sending ``make(opaque)`` for ever and expecting ``ok_code``."""

    wants_body = False

    def __init__(self, make: Callable[[int], bytes], ok_code: int = 0) -> None:
        self.make = make
        self.ok_code = ok_code

    def frame(self, opaque: int) -> bytes | None:
        return self.make(opaque)

    def answer(self, opaque: int, code: int, header: bytes, body: bytes) -> int:
        return 1 if code == self.ok_code else -1


@dataclass
class Shape:
    connections: int = 4
    inflight: int = 16
    warmup: float = 3.0
    seconds: float = 10.0
    processes: int = 1


@dataclass
class Outcome:
    """The figures of one run."""

    counted: int  # messages answered inside the measured window
    errors: int
    seconds: float  # the measured window (a finite run: first request to last answer)
    latencies_ns: list[int]  # sorted, of the answers counted
    generator_cpu_s: float
    server_cpu_s: float | None
    first_error: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return self.counted / self.seconds if self.seconds > 0 else 0.0

    def percentile_us(self, fraction: float) -> float:
        values = self.latencies_ns
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(fraction * len(values)))] / 1000

    def generator_us_per_msg(self) -> float:
        return self.generator_cpu_s * 1e6 / max(1, self.counted)

    def server_us_per_msg(self) -> float | None:
        if self.server_cpu_s is None:
            return None
        return self.server_cpu_s * 1e6 / max(1, self.counted)

    def generator_share(self) -> float:
        """Share of the whole machine (all its cores) the generator used."""
        return self.generator_cpu_s / max(1e-9, self.seconds) / (os.cpu_count() or 1)


def run_options(description: str, server: str) -> argparse.ArgumentParser:
    """A parser with the options every server benchmark shares: the load's
    shape, the windows, which side to measure, a running ``server`` to drive
    instead (``--addr``) and ``--quick`` (see :func:`apply_quick`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--java-warmup",
        type=float,
        default=8.0,
        help="Java's warm-up, seconds (its JIT compiler needs longer)",
    )
    parser.add_argument("--only", choices=["pyrocket", "java"], help="measure only this server")
    parser.add_argument("--generators", type=int, default=1, help="load generator processes")
    parser.add_argument(
        "--no-java",
        dest="java",
        action="store_false",
        help="skip Java even when ROCKETMQ_HOME is set",
    )
    parser.add_argument("--addr", help=f"drive this running {server} instead (host:port)")
    parser.add_argument("--pid", type=int, help="with --addr: measure this process")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 0.5 s warm-up, 1 s measured"
    )
    return parser


def apply_quick(args: argparse.Namespace) -> None:
    """``--quick``: the windows of a smoke run."""
    if args.quick:
        args.warmup, args.java_warmup, args.seconds = 0.5, 0.5, 1.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory (VmRSS) of a process, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


class _Link:
    __slots__ = ("buffer", "done", "opaque", "sent", "sock", "work")

    def __init__(self, sock: socket.socket, work: Workload) -> None:
        self.sock = sock
        self.work = work
        self.sent: dict[int, int] = {}
        self.opaque = 0
        self.buffer = bytearray()
        self.done = False


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(
    addr: str,
    workloads: list[Workload],
    inflight: int,
    finite: bool,
    pipe: Connection,
) -> None:
    host, port = addr.rsplit(":", 1)
    links = []
    for work in workloads:
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        links.append(_Link(sock, work))
    pipe.send("ready")
    start_ns, from_ns, to_ns, drain_ns = pipe.recv()
    time.sleep(max(0.0, (start_ns - time.monotonic_ns()) / 1e9))
    counted = errors = answered = 0
    first_error = ""
    latencies = array("q")
    clock = time.monotonic_ns
    last_answer = first_send = clock()
    selector = selectors.DefaultSelector()
    for link in links:
        batch = []
        for _ in range(inflight):
            link.opaque += 1
            frame = link.work.frame(link.opaque)
            if frame is None:
                link.opaque -= 1
                break
            batch.append(frame)
        now = clock()
        for opaque in range(link.opaque - len(batch) + 1, link.opaque + 1):
            link.sent[opaque] = now
        if batch:
            link.sock.sendall(b"".join(batch))
            selector.register(link.sock, selectors.EVENT_READ, link)
        else:
            link.done = True
    active = sum(1 for link in links if not link.done)
    head = _HEAD
    cpu_from = _own_cpu() if finite else -1.0
    cpu_to = -1.0
    while active:
        if clock() > drain_ns:
            first_error = first_error or "answers still outstanding after the drain time"
            errors += sum(len(link.sent) for link in links)
            break
        for key, _ in selector.select(0.5):
            link = key.data
            data = link.sock.recv(1 << 18)
            if not data:
                raise ConnectionError("the server closed a connection")
            buffer = link.buffer
            buffer += data
            now = clock()
            measuring = from_ns <= now <= to_ns
            sending = now < to_ns
            if cpu_to < 0 and not finite:
                if cpu_from < 0 and measuring:
                    cpu_from = _own_cpu()
                elif not sending:
                    cpu_to = _own_cpu()
            work = link.work
            sent = link.sent
            wants_body = work.wants_body
            position = 0
            size = len(buffer)
            batch = []
            while size - position >= 8:
                length, word = head.unpack_from(buffer, position)
                end = position + 4 + length
                if end > size:
                    break
                start = position + 8
                header_end = start + (word & 0xFFFFFF)
                header = bytes(buffer[start:header_end])
                code, opaque = answer_code_opaque(word >> 24, header)
                body = bytes(buffer[header_end:end]) if wants_body else b""
                position = end
                answered += 1
                sent_at = sent.pop(opaque)
                got = work.answer(opaque, code, header, body)
                if got < 0:
                    errors += 1
                    answered -= 1
                    if not first_error:
                        first_error = f"code {code}: {header[:300]!r}"
                elif measuring:
                    counted += got
                    latencies.append(now - sent_at)
                if sending:
                    link.opaque += 1
                    frame = work.frame(link.opaque)
                    if frame is None:
                        link.opaque -= 1
                    else:
                        batch.append(frame)
            del buffer[:position]
            if batch:
                at = clock()
                for opaque in range(link.opaque - len(batch) + 1, link.opaque + 1):
                    sent[opaque] = at
                link.sock.sendall(b"".join(batch))
            elif not sent:
                selector.unregister(link.sock)
                link.done = True
                active -= 1
            last_answer = now
    if cpu_to < 0:
        cpu_to = _own_cpu()
    for link in links:
        link.sock.close()
    elapsed = (last_answer - first_send) / 1e9 if finite else (to_ns - from_ns) / 1e9
    cpu = cpu_to - cpu_from if cpu_from >= 0 else 0.0
    pipe.send((counted, errors, elapsed, latencies.tobytes(), first_error, answered, cpu))
    pipe.close()


def run(
    addr: str,
    make_workload: Callable[[int], Workload],
    shape: Shape,
    server_pid: int | None = None,
    finite: bool = False,
    drain: float = 30.0,
) -> Outcome:
    """Drive ``addr`` with ``shape.connections`` connections (connection n
    sends ``make_workload(n)``), spread over ``shape.processes`` processes.

    ``server_pid``: the server whose CPU to measure over the same window.
    """
    context = multiprocessing.get_context("fork")
    processes = max(1, min(shape.processes, shape.connections))
    children = []
    for number in range(processes):
        mine = [make_workload(n) for n in range(shape.connections) if n % processes == number]
        ours, theirs = context.Pipe()
        child = context.Process(
            target=_child, args=(addr, mine, shape.inflight, finite, theirs), daemon=True
        )
        child.start()
        theirs.close()
        children.append((child, ours))
    try:
        for _, pipe in children:
            if not pipe.poll(60) or pipe.recv() != "ready":
                raise RuntimeError("a load generator process did not connect")
        start = time.monotonic_ns() + 50_000_000
        if finite:  # all of it may take a while on a busy machine
            drain = max(drain, 300.0)
            from_ns, to_ns = start, 1 << 62
            drain_ns = start + int(drain * 1e9)
        else:
            from_ns = start + int(shape.warmup * 1e9)
            to_ns = from_ns + int(shape.seconds * 1e9)
            drain_ns = to_ns + int(drain * 1e9)
        for _, pipe in children:
            pipe.send((start, from_ns, to_ns, drain_ns))
        time.sleep(max(0.0, (from_ns - time.monotonic_ns()) / 1e9))
        server0 = cpu_seconds(server_pid) if server_pid else None
        results = []
        if not finite:
            time.sleep(max(0.0, (to_ns - time.monotonic_ns()) / 1e9))
            server1 = cpu_seconds(server_pid) if server_pid else None
        for _, pipe in children:
            if not pipe.poll(drain + shape.seconds + 120):
                raise RuntimeError("a load generator process did not finish")
            try:
                results.append(pipe.recv())
            except EOFError:
                raise RuntimeError("a load generator process failed (its error above)") from None
        if finite:
            server1 = cpu_seconds(server_pid) if server_pid else None
    finally:
        for child, _ in children:
            child.join(10)
            if child.is_alive():
                child.kill()
    latencies: list[int] = []
    for result in results:
        values = array("q")
        values.frombytes(result[3])
        latencies.extend(values)
    latencies.sort()
    return Outcome(
        counted=sum(r[0] for r in results),
        errors=sum(r[1] for r in results),
        seconds=max(r[2] for r in results),
        latencies_ns=latencies,
        generator_cpu_s=sum(r[6] for r in results),
        server_cpu_s=None if server0 is None or server1 is None else server1 - server0,
        first_error=next((r[4] for r in results if r[4]), ""),
        extra={"answered": sum(r[5] for r in results)},
    )


Figures = dict[str, float | int | str]


def record(figures: Figures, key: str, outcome: Outcome, totals: list[float]) -> None:
    """Add a run's figures as ``<key>_per_s``, ``<key>_p99_us``, ...; add its
    generator CPU and messages to ``totals`` [CPU s, messages, largest share]."""
    figures[f"{key}_per_s"] = round(outcome.per_s)
    figures[f"{key}_p50_us"] = round(outcome.percentile_us(0.5))
    figures[f"{key}_p99_us"] = round(outcome.percentile_us(0.99))
    server = outcome.server_us_per_msg()
    if server is not None:
        figures[f"{key}_cpu_us_per_msg"] = round(server, 1)
    figures[f"{key}_generator_cpu_us_per_msg"] = round(outcome.generator_us_per_msg(), 1)
    figures[f"{key}_generator_machine_share"] = round(outcome.generator_share(), 3)
    if outcome.errors:
        figures[f"{key}_errors"] = outcome.errors
    totals[0] += outcome.generator_cpu_s
    totals[1] += outcome.counted
    totals[2] = max(totals[2], outcome.generator_share())


def ratios(figures: Figures, keys: Sequence[str]) -> None:
    """``<key>_ratio_vs_java`` (and the p99 and CPU ratios): pyrocket's figure
    over Java's (``java_<key>_...``), for the keys both sides have."""
    for key in keys:
        for figure, name in (
            ("per_s", "ratio"),
            ("p99_us", "p99_ratio"),
            ("cpu_us_per_msg", "cpu_ratio"),
        ):
            ours, theirs = figures.get(f"{key}_{figure}"), figures.get(f"java_{key}_{figure}")
            if isinstance(ours, int | float) and isinstance(theirs, int | float) and theirs:
                figures[f"{key}_{name}_vs_java"] = round(ours / theirs, 3)


def summary(figures: Figures, totals: list[float], **shape: float | int | str) -> None:
    """The closing figures: the generator's CPU over every run, the shape, the load."""
    figures["generator_cpu_us_per_msg"] = round(totals[0] * 1e6 / max(1.0, totals[1]), 1)
    figures["generator_machine_share_max"] = round(totals[2], 3)
    figures.update(shape)
    figures["cpus"] = os.cpu_count() or 1
    figures["loadavg_1m"] = float(Path("/proc/loadavg").read_text().split()[0])


def describe(what: str, outcome: Outcome, rss: float | None = None) -> str:
    """One human-readable line for a run."""
    server = outcome.server_us_per_msg()
    parts = [
        f"{what}: {outcome.per_s:,.0f} msgs/s",
        f"p50 {outcome.percentile_us(0.5):,.0f} us, p99 {outcome.percentile_us(0.99):,.0f} us",
    ]
    if server is not None:
        parts.append(f"server CPU {server:.1f} us/msg")
    if rss is not None:
        parts.append(f"RSS {rss:.1f} MiB")
    parts.append(
        f"generator CPU {outcome.generator_us_per_msg():.1f} us/msg "
        f"({outcome.generator_share():.0%} of the machine's {os.cpu_count()} cores)"
    )
    if outcome.errors:
        parts.append(f"{outcome.errors} failed requests (first: {outcome.first_error})")
    return ", ".join(parts)
