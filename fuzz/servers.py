"""A stateful fuzz campaign against running servers.

A pyrocket NameServer and broker run in this process (127.0.0.1, port 0,
data in a temporary directory). Request sequences are taken from the golden
vectors (the requests each recorded client connection sent), mutated (ext
field values, request codes, bodies, flags, serialize type, opaques, byte
flips, truncation, reordering) and sent, each on a fresh TCP connection.
Beside them, long-lived "canary" connections keep doing known-good work: a
route query to the NameServer, a send to a canary topic read back by PULL
and by VIEW_MESSAGE_BY_ID, a consumer offset query and update. After each
sequence a worker checks one known-good read at random, after every 8th
(``--full-every``) the whole round with its writes, at the end of an epoch
every canary message; the invariants:

- the servers still run and answer the canary connections, which stay open;
- canary messages and offsets read back exactly as written;
- no pyrocket log record carries a traceback (``exc_info``): a processor
  that raises on bad input (the "processor failed" SYSTEM_ERROR path), a
  decoder raising something other than ProtocolError, a failing connection
  task; nor is any record CRITICAL or about an answer that cannot be encoded.

    python -m fuzz.servers --seconds 60 --seed 1
    python -m fuzz.servers --requests 1000000 --seed 7 --findings findings.jsonl

The last line printed is one JSON object: requests sent, sequences, canary
rounds, findings. Exit status 1 when there was a finding.

UPDATE_BROKER_CONFIG and UPDATE_NAMESRV_CONFIG are never sent: applied with
fuzzed values they legitimately change how the canary is answered (broker
permission, message size), which would read as a finding.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from pyrocket.broker.app import Broker, serve_broker
from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.registration import RegistrationTiming
from pyrocket.errors import ProtocolError
from pyrocket.namesrv import NameServer, NamesrvConfig
from pyrocket.protocol.bodies import TopicRouteData
from pyrocket.protocol.codes import LanguageCode, RequestCode, ResponseCode, SerializeType
from pyrocket.protocol.command import ONEWAY_FLAG, RESPONSE_FLAG, RemotingCommand, decode, encode
from pyrocket.protocol.frame import NEED_DATA, FrameSplitter
from pyrocket.protocol.headers import (
    CreateTopicRequestHeader,
    GetRouteInfoRequestHeader,
    PullMessageRequestHeader,
    QueryConsumerOffsetRequestHeader,
    QueryConsumerOffsetResponseHeader,
    SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
    UpdateConsumerOffsetRequestHeader,
    ViewMessageRequestHeader,
)
from pyrocket.protocol.message import decode_message, decode_messages, decode_offset_message_id
from tests.vectorset import default_vectors_dir, iter_all_records

CANARY_CLUSTER = "FuzzCanaryCluster"
CANARY_BROKER = "fuzz-canary-broker"
CANARY_TOPIC = "FuzzCanaryTopic"
CANARY_GROUP = "FuzzCanaryGroup"
CANARY_PRODUCER = "FuzzCanaryProducer"
#: Codes never sent (see the module docstring).
EXCLUDED_CODES = frozenset({RequestCode.UPDATE_BROKER_CONFIG, RequestCode.UPDATE_NAMESRV_CONFIG})
#: How long a canary call may take before it counts as a finding.
CANARY_TIMEOUT = 10.0
#: Topics with millions of queues make the broker walk every queue id on
#: the event loop (GET_TOPIC_STATS_INFO, GET_CONSUME_STATS), an open finding
#: (tests/test_fuzz_findings.py); until it is fixed, sequences keep these
#: counts small unless run with --huge-queue-counts, so a run can go on.
QUEUE_COUNT_KEYS = ("readQueueNums", "writeQueueNums")
MAX_QUEUE_COUNT = 4096
#: A canary failure ends its epoch; the campaign stops after this many.
MAX_FAILED_EPOCHS = 5


# --- Seeds -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeedRequest:
    """One recorded client request: its frame, decoded unless malformed."""

    frame: bytes
    command: RemotingCommand | None


@dataclass(slots=True)
class Seeds:
    """The recorded request sequences by server, and pools of values."""

    sequences: dict[str, list[list[SeedRequest]]] = field(
        default_factory=lambda: {"namesrv": [], "broker": []}
    )
    values: dict[str, list[str]] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return list(self.values)


def load_seeds(directory: Path | None = None) -> Seeds:
    """Every client request of the vectors, grouped by recorded connection.
    Raises FileNotFoundError without the vectors."""
    seeds = Seeds()
    connections: dict[tuple[str, str], list[SeedRequest]] = {}
    server_of: dict[tuple[str, str], str] = {}
    values: dict[str, set[str]] = {}
    bodies: set[bytes] = set()
    codes: set[int] = {int(code) for code in RequestCode}
    for record in iter_all_records(directory):
        if record.dir != "request" or record.sender != "client":
            continue
        if record.server not in ("java-namesrv", "java-broker"):
            continue
        command: RemotingCommand | None = None
        if record.is_frame:
            try:
                command = decode(record.frame)
            except ProtocolError:
                command = None
        if command is not None:
            if command.code in EXCLUDED_CODES:
                continue
            codes.add(command.code)
            for key, value in (command.ext_fields or {}).items():
                values.setdefault(key, set()).add(value)
            if command.body:
                bodies.add(command.body)
        elif not record.frame:
            continue
        conn = (record.scenario, record.conn)
        connections.setdefault(conn, []).append(SeedRequest(record.frame, command))
        server_of[conn] = "namesrv" if record.server == "java-namesrv" else "broker"
    for conn, requests in connections.items():
        seeds.sequences[server_of[conn]].append(requests)
    seeds.values = {key: sorted(pool) for key, pool in sorted(values.items())}
    seeds.bodies = sorted(bodies)
    seeds.codes = sorted(codes - EXCLUDED_CODES)
    return seeds


# --- Mutation ----------------------------------------------------------------

EDGE_VALUES = [
    "",
    " ",
    "0",
    "-1",
    "1",
    "+1",
    "-0",
    "2147483647",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "9" * 40,
    "1.5",
    "1e3",
    "0x10",
    " 7",
    "true",
    "false",
    "TRUE",
    "null",
    "%RETRY%x",
    "DLQ%",
    "*",
    "||",
    "a||b",
    "TBW102",
    "SCHEDULE_TOPIC_XXXX",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "127.0.0.1:1",
    "127.0.0.1:-1",
    "127.0.0.1",
    ":",
    "[::1]:10911",
    "\x00",
    "\u0001\u0002",
    "é",
    "\U0001f600",
    "a\nb=c",
    "../../etc",
    "/tmp/x",
]


@dataclass(frozen=True, slots=True)
class FuzzSequence:
    """Frames for one fresh connection, and how many answers to wait for."""

    server: str
    frames: tuple[bytes, ...]
    answers: int
    fast_port: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "fast_port": self.fast_port,
            "frames_hex": [frame.hex() for frame in self.frames],
        }


class Mutator:
    """Mutated request sequences from the seeds, reproducible from ``rng``."""

    def __init__(
        self, seeds: Seeds, rng: random.Random, *, bound_queue_counts: bool = True
    ) -> None:
        self.seeds = seeds
        self.rng = rng
        self.bound_queue_counts = bound_queue_counts

    def bounded(self, ext: dict[str, str]) -> dict[str, str]:
        """``ext`` with queue counts of at most MAX_QUEUE_COUNT (see there)."""
        for key in QUEUE_COUNT_KEYS:
            try:
                count = int(ext.get(key, "").strip())
            except ValueError:
                continue
            if count > MAX_QUEUE_COUNT:
                ext[key] = str(self.rng.randint(0, 64))
        return ext

    def sequence(self) -> FuzzSequence:
        rng = self.rng
        server = "broker" if rng.random() < 0.6 else "namesrv"
        pool = self.seeds.sequences[server]
        recorded = rng.choice(pool)
        length = rng.choice([1, 2, 3, 4, 6, 8, 12, 16])
        start = rng.randrange(len(recorded))
        chosen = list(recorded[start : start + length])
        while len(chosen) < length and rng.random() < 0.7:
            # Most recorded connections are short: go on with another one's.
            other = rng.choice(pool)
            at = rng.randrange(len(other))
            chosen.extend(other[at : at + length - len(chosen)])
        if rng.random() < 0.2:  # splice in requests of another connection
            other = rng.choice(pool)
            chosen.insert(rng.randrange(len(chosen) + 1), rng.choice(other))
        if rng.random() < 0.1:
            rng.shuffle(chosen)
        if rng.random() < 0.1:
            chosen.append(rng.choice(chosen))
        frames: list[bytes] = []
        answers = 0
        opaques: list[int] = []
        for request in chosen:
            frame, answered = self.request(request, opaques)
            frames.append(frame)
            answers += answered
        if rng.random() < 0.05:
            frames.append(self.garbage())
        return FuzzSequence(
            server, tuple(frames), answers, server == "broker" and rng.random() < 0.1
        )

    def request(self, seed: SeedRequest, opaques: list[int]) -> tuple[bytes, int]:
        """One mutated frame and 1 if an answer may be expected."""
        rng = self.rng
        if seed.command is None:
            return self.bytes_mutation(seed.frame), 0
        command = seed.command
        if rng.random() < 0.85:
            for _ in range(rng.choice([1, 1, 1, 2, 3, 5])):
                command = self.command_mutation(command, opaques)
        if self.bound_queue_counts and command.ext_fields:
            command = command.replace(ext_fields=self.bounded(dict(command.ext_fields)))
        opaques.append(command.opaque)
        try:
            frame = encode(command)
        except (ProtocolError, ValueError, OverflowError):
            # A value the wire cannot carry (encode refuses it): send the seed.
            frame = seed.frame
            command = seed.command
        if rng.random() < 0.15:
            return self.bytes_mutation(frame), 0
        answered = 0 if command.flag & (ONEWAY_FLAG | RESPONSE_FLAG) else 1
        return frame, answered

    def command_mutation(self, command: RemotingCommand, opaques: list[int]) -> RemotingCommand:
        rng = self.rng
        kind = rng.choices(
            ["ext", "code", "body", "flag", "serialize", "opaque", "remark", "language", "version"],
            weights=[50, 10, 15, 6, 5, 4, 3, 3, 3],
        )[0]
        if kind == "ext":
            return command.replace(ext_fields=self.ext_mutation(dict(command.ext_fields or {})))
        if kind == "code":
            if rng.random() < 0.8:
                code = rng.choice(self.seeds.codes)
            else:
                code = rng.choice([-1, 0, 9999, (1 << 31) - 1, rng.randrange(-(1 << 31), 1 << 31)])
            return command.replace(code=code)
        if kind == "body":
            return command.replace(body=self.body_mutation(command.body))
        if kind == "flag":
            flag = rng.choice(
                [command.flag ^ ONEWAY_FLAG, command.flag | RESPONSE_FLAG, rng.randrange(1 << 31)]
            )
            return command.replace(flag=flag)
        if kind == "serialize":
            other = (
                SerializeType.ROCKETMQ
                if command.serialize_type is SerializeType.JSON
                else SerializeType.JSON
            )
            return command.replace(serialize_type=other)
        if kind == "opaque":
            choices = [0, -1, (1 << 31) - 1, rng.randrange(-(1 << 31), 1 << 31), *opaques]
            return command.replace(opaque=rng.choice(choices))
        if kind == "remark":
            return command.replace(remark=rng.choice([None, "", *EDGE_VALUES, "x" * 5000]))
        if kind == "language":
            return command.replace(
                language=LanguageCode(rng.choice([*range(-1, 14), 127, 200, rng.randrange(256)]))
            )
        return command.replace(version=rng.choice([-1, 0, 1, 353, 10000, (1 << 31) - 1]))

    def ext_mutation(self, ext: dict[str, str]) -> dict[str, str]:
        rng = self.rng
        keys = list(ext)
        action = rng.choices(["value", "delete", "add", "rename", "clear"], [70, 12, 12, 4, 2])[0]
        if action == "clear":
            return {}
        if action == "add" or not keys:
            ext[rng.choice(self.seeds.keys)] = self.value()
            return ext
        key = rng.choice(keys)
        if action == "delete":
            del ext[key]
        elif action == "rename":
            ext[self.value()] = ext.pop(key)
        else:
            ext[key] = self.value(key, ext[key])
        return ext

    def value(self, key: str | None = None, current: str = "") -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.3 and key in self.seeds.values:
            return rng.choice(self.seeds.values[key])
        if roll < 0.55:
            return rng.choice(EDGE_VALUES)
        if roll < 0.65:
            pool = self.seeds.values[rng.choice(self.seeds.keys)]
            return rng.choice(pool)
        if roll < 0.8 and current:
            return self.text_mutation(current)
        if roll < 0.9:
            return str(rng.choice([-1, 1, 1 << 16, 1 << 31, 1 << 32, 1 << 63]) + rng.randint(-2, 2))
        if roll < 0.97:
            alphabet = "abcXYZ019_-%|:.,;= \t\n\\\"'{}[]\x00\x7fé\u2028"
            return "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        return rng.choice(["a", "9", "%", "\u00ff"]) * rng.choice([256, 4096, 70000])

    def text_mutation(self, text: str) -> str:
        rng = self.rng
        chars = list(text)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(chars) + 1)
            op = rng.randrange(3)
            if op == 0 and chars:
                del chars[min(at, len(chars) - 1)]
            elif op == 1:
                chars.insert(
                    at, chr(rng.choice([0, 10, 37, 59, 124, 0xE9, rng.randrange(32, 127)]))
                )
            else:
                chars = chars[:at]
        return "".join(chars)

    def body_mutation(self, body: bytes | None) -> bytes | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.1:
            return None
        if roll < 0.35:
            return rng.choice(self.seeds.bodies)
        if roll < 0.85 and body:
            return self.bytes_mutation(body, frame=False)
        if roll < 0.95:
            return rng.randbytes(rng.randrange(1, 300))
        return rng.randbytes(rng.choice([1 << 16, 300_000]))

    def bytes_mutation(self, data: bytes, *, frame: bool = True) -> bytes:
        rng = self.rng
        out = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            if not out:
                out += rng.randbytes(rng.randint(1, 8))
                continue
            at = rng.randrange(len(out))
            op = rng.randrange(7 if frame else 5)
            if op == 0:
                out[at] = rng.randrange(256)
            elif op == 1:
                out[at] ^= 1 << rng.randrange(8)
            elif op == 2:
                out[at:at] = rng.randbytes(rng.randint(1, 8))
            elif op == 3:
                del out[at : at + rng.randint(1, 8)]
            elif op == 4:
                del out[at:]
            elif op == 5:  # the length word
                out[0:4] = rng.choice(
                    [0, 1, 3, 4, len(out) + 1, 1 << 24, (1 << 31) - 1, rng.randrange(1 << 32)]
                ).to_bytes(4, "big")
            else:  # the serialize type byte and header length
                if len(out) >= 8:
                    out[4] = rng.choice([0, 1, 2, 0x80, 0xFF])
                    if rng.random() < 0.5:
                        out[5:8] = rng.randrange(1 << 24).to_bytes(3, "big")
        return bytes(out)

    def garbage(self) -> bytes:
        rng = self.rng
        return rng.choice(
            [b"GET / HTTP/1.1\r\n\r\n", b"\x00" * 4, rng.randbytes(rng.randrange(64))]
        )


# --- Findings ----------------------------------------------------------------


@dataclass(slots=True)
class Findings:
    """Distinct findings (by kind and origin) with their first example."""

    seen: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    in_flight: dict[int, FuzzSequence] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, kind: str, detail: str, where: str = "") -> None:
        key = f"{kind}: {where or detail[:200]}"
        self.counts[key] += 1
        if key not in self.seen:
            self.seen[key] = {
                "kind": kind,
                "detail": detail,
                "sequences": [s.to_json() for s in self.in_flight.values()],
            }
            print(f"FINDING {key}\n{detail}", file=sys.stderr, flush=True)


class FindingHandler(logging.Handler):
    """Turns pyrocket log records that signal a bug into findings; counts
    the other warnings and errors by message template."""

    def __init__(self, findings: Findings) -> None:
        super().__init__(logging.WARNING)
        self.findings = findings
        self.templates: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        template = f"{record.levelname} {record.msg}"
        self.templates[template] += 1
        bug = (
            record.exc_info is not None
            or record.levelno >= logging.CRITICAL
            or "cannot be encoded" in str(record.msg)
        )
        if not bug:
            return
        detail = record.getMessage()
        where = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            detail += "\n" + "".join(traceback.format_exception(exc))
            where += f" / {type(exc).__name__} at {_origin(exc)}"
        self.findings.add("log", detail, where)


def _origin(exc: BaseException) -> str:
    """Where ``exc`` came from: the innermost frame of the servers' own code
    (broker, namesrv) and the innermost pyrocket frame, as path:line."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if "/pyrocket/" in f.filename] or list(frames)
    if not inside:
        return "?"

    def place(frame: traceback.FrameSummary) -> str:
        return f"{frame.filename.rsplit('/pyrocket/', 1)[-1]}:{frame.lineno}"

    servers = [f for f in inside if place(f).startswith(("broker/", "namesrv/"))]
    if servers and servers[-1] is not inside[-1]:
        return f"{place(servers[-1])} -> {place(inside[-1])}"
    return place(inside[-1])


@contextmanager
def capture_logs(findings: Findings) -> Iterator[FindingHandler]:
    logger = logging.getLogger("pyrocket")
    handler = FindingHandler(findings)
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


# --- Connections -------------------------------------------------------------


class CanaryFailure(Exception):
    """A known-good operation was not answered as it must be."""


class CanaryConnection:
    """One long-lived connection for known-good calls, one at a time."""

    def __init__(self, stream: trio.SocketStream, what: str) -> None:
        self.stream = stream
        self.what = what
        self.splitter = FrameSplitter(64 * 1024 * 1024)
        self.opaque = 0

    @classmethod
    async def open(cls, port: int, what: str) -> CanaryConnection:
        return cls(await trio.open_tcp_stream("127.0.0.1", port), what)

    async def call(self, request: RemotingCommand) -> RemotingCommand:
        self.opaque += 1
        await self.stream.send_all(encode(request.replace(opaque=self.opaque)))
        with trio.move_on_after(CANARY_TIMEOUT):
            while True:
                payload = self.splitter.next_frame()
                if payload is NEED_DATA:
                    data = await self.stream.receive_some(65536)
                    if not data:
                        raise CanaryFailure(f"{self.what}: the server closed the canary connection")
                    self.splitter.feed(data)
                    continue
                assert isinstance(payload, bytes)
                answer = decode(len(payload).to_bytes(4, "big") + payload)
                if answer.flag & RESPONSE_FLAG and answer.opaque == self.opaque:
                    return answer
        raise CanaryFailure(f"{self.what}: no answer to code {request.code} in {CANARY_TIMEOUT} s")

    async def aclose(self) -> None:
        await self.stream.aclose()


@dataclass(slots=True)
class CanaryQueue:
    """What one worker wrote to its canary queue."""

    queue_id: int
    bodies: list[bytes] = field(default_factory=list)
    msg_ids: list[str] = field(default_factory=list)
    committed: int | None = None


def _expect(answer: RemotingCommand, code: int, what: str) -> None:
    if answer.code != code:
        raise CanaryFailure(f"{what}: answered {answer.code} ({answer.remark!r}), expected {code}")


class Canary:
    """The known-good operations of one worker, on its own connections."""

    def __init__(
        self, namesrv: CanaryConnection, broker: CanaryConnection, queue: CanaryQueue, addr: str
    ) -> None:
        self.namesrv = namesrv
        self.broker = broker
        self.queue = queue
        self.broker_addr = addr
        self.rounds = 0

    async def check(self, rng: random.Random) -> None:
        """One known-good read, picked at random: the route, the committed
        offset, or a stored message by PULL or by id. Raises CanaryFailure."""
        action = rng.randrange(4)
        if action == 0:
            await self.check_route()
        elif action == 1:
            await self.check_offset()
        elif action == 2:
            await self.check_pull(rng.randrange(len(self.queue.bodies)), 1)
        else:
            await self.check_view(rng.randrange(len(self.queue.bodies)))

    async def check_route(self) -> None:
        answer = await self.namesrv.call(
            RemotingCommand.request(
                RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader(topic=CANARY_TOPIC)
            )
        )
        _expect(answer, ResponseCode.SUCCESS, "route query")
        route = TopicRouteData.decode(answer.body or b"")
        masters = [
            b.master_addr() for b in route.broker_datas or () if b.broker_name == CANARY_BROKER
        ]
        if masters != [self.broker_addr]:
            raise CanaryFailure(f"route query: canary broker {self.broker_addr} not in {route}")

    async def check_offset(self) -> None:
        queue = self.queue
        answer = await self.broker.call(
            RemotingCommand.request(
                RequestCode.QUERY_CONSUMER_OFFSET,
                QueryConsumerOffsetRequestHeader(
                    consumer_group=CANARY_GROUP, topic=CANARY_TOPIC, queue_id=queue.queue_id
                ),
            )
        )
        # Nothing committed yet on an empty queue: SUCCESS with offset 0, as Java.
        _expect(answer, ResponseCode.SUCCESS, "offset query")
        offset = answer.decode_header(QueryConsumerOffsetResponseHeader).offset
        if offset != (queue.committed or 0):
            raise CanaryFailure(f"offset query: {offset}, committed {queue.committed}")

    async def round(self, rng: random.Random) -> None:
        """Every known-good operation, writes included: route, offset query,
        send, PULL and VIEW of it and of an older message, offset update.
        Raises CanaryFailure."""
        queue = self.queue
        await self.check_route()
        await self.check_offset()
        number = len(queue.bodies)
        body = f"canary {queue.queue_id} {number} {rng.getrandbits(64):x}".encode()
        answer = await self.broker.call(send_request(queue.queue_id, body))
        _expect(answer, ResponseCode.SUCCESS, "canary send")
        sent = answer.decode_header(SendMessageResponseHeader)
        if (sent.queue_id, sent.queue_offset) != (queue.queue_id, number):
            raise CanaryFailure(f"canary send stored at {sent}, expected offset {number}")
        queue.bodies.append(body)
        queue.msg_ids.append(sent.msg_id)

        await self.check_pull(number, 1)
        older = rng.randrange(len(queue.bodies))
        await self.check_view(older)

        answer = await self.broker.call(
            RemotingCommand.request(
                RequestCode.UPDATE_CONSUMER_OFFSET,
                UpdateConsumerOffsetRequestHeader(
                    consumer_group=CANARY_GROUP,
                    topic=CANARY_TOPIC,
                    queue_id=queue.queue_id,
                    commit_offset=number + 1,
                ),
            )
        )
        _expect(answer, ResponseCode.SUCCESS, "offset update")
        queue.committed = number + 1
        self.rounds += 1

    async def check_pull(self, offset: int, count: int) -> None:
        queue = self.queue
        header = PullMessageRequestHeader(
            consumer_group=CANARY_GROUP,
            topic=CANARY_TOPIC,
            queue_id=queue.queue_id,
            queue_offset=offset,
            max_msg_nums=count,
            sys_flag=0x4,
            commit_offset=0,
            suspend_timeout_millis=0,
            subscription="*",
            sub_version=0,
            expression_type="TAG",
        )
        answer = await self.broker.call(RemotingCommand.request(RequestCode.PULL_MESSAGE, header))
        _expect(answer, ResponseCode.SUCCESS, f"canary pull at {offset}")
        got = [m.body for m in decode_messages(answer.body or b"")]
        want = queue.bodies[offset : offset + count]
        if got != want:
            raise CanaryFailure(f"canary pull at {offset}: {got!r}, stored {want!r}")

    async def check_view(self, index: int) -> None:
        _, physical = decode_offset_message_id(self.queue.msg_ids[index])
        answer = await self.broker.call(
            RemotingCommand.request(
                RequestCode.VIEW_MESSAGE_BY_ID, ViewMessageRequestHeader(offset=physical)
            )
        )
        _expect(answer, ResponseCode.SUCCESS, "canary view")
        message, _ = decode_message(answer.body or b"")
        if message.body != self.queue.bodies[index]:
            raise CanaryFailure(f"canary view of #{index}: {message.body!r}")

    async def check_all(self) -> None:
        """Every canary message of the queue, read back in pages."""
        total = len(self.queue.bodies)
        for offset in range(0, total, 32):
            await self.check_pull(offset, min(32, total - offset))


def send_request(queue_id: int, body: bytes) -> RemotingCommand:
    header = SendMessageRequestHeaderV2(
        producer_group=CANARY_PRODUCER,
        topic=CANARY_TOPIC,
        default_topic="TBW102",
        default_topic_queue_nums=4,
        queue_id=queue_id,
        sys_flag=0,
        born_timestamp=int(time.time() * 1000),
        flag=0,
        properties="TAGS\x01canary\x02WAIT\x01true\x02",
        reconsume_times=0,
        unit_mode=False,
        batch=False,
    )
    return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header, body=body)


async def send_sequence(port: int, sequence: FuzzSequence, rng: random.Random, wait: float) -> None:
    """Send the frames on a fresh connection; read answers until every
    expected one came, the server closed, or ``wait`` seconds passed."""
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError as exc:
        raise CanaryFailure(f"cannot connect to the {sequence.server}: {exc}") from exc
    splitter = FrameSplitter(1 << 30)
    try:
        data = b"".join(sequence.frames)
        if rng.random() < 0.1 and len(data) > 1:  # in pieces, split anywhere
            cuts = sorted(rng.sample(range(1, len(data)), min(4, len(data) - 1)))
            pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        else:
            pieces = [data]
        for piece in pieces:
            await stream.send_all(piece)
        answered = 0
        with trio.move_on_after(wait):
            while answered < sequence.answers:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                splitter.feed(chunk)
                try:
                    while splitter.next_frame() is not NEED_DATA:
                        answered += 1
                except ProtocolError:
                    break
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the server closed a connection that sent bad bytes: expected
    finally:
        await trio.aclose_forcefully(stream)


# --- The campaign --------------------------------------------------------------


@dataclass(slots=True)
class Limits:
    seconds: float | None
    requests: int | None
    epoch_requests: int
    workers: int
    wait: float
    full_every: int
    report_every: float = 0.0
    huge_queue_counts: bool = False


@dataclass(slots=True)
class Progress:
    requests: int = 0
    sequences: int = 0
    canary_rounds: int = 0
    epochs: int = 0
    started: float = field(default_factory=time.monotonic)

    def done(self, limits: Limits) -> bool:
        if limits.requests is not None and self.requests >= limits.requests:
            return True
        return limits.seconds is not None and time.monotonic() - self.started >= limits.seconds


def broker_settings(root: Path, namesrv_port: int) -> BrokerSettings:
    return BrokerSettings.from_properties(
        {
            "brokerClusterName": CANARY_CLUSTER,
            "brokerName": CANARY_BROKER,
            "brokerId": "0",
            "brokerIP1": "127.0.0.1",
            "brokerIP2": "127.0.0.1",
            "listenPort": "0",
            "namesrvAddr": f"127.0.0.1:{namesrv_port}",
            "storePathRootDir": str(root / "store"),
            "mappedFileSizeCommitLog": str(4 * 1024 * 1024),
            "mappedFileSizeConsumeQueue": str(20 * 10000),
            "flushDiskType": "ASYNC_FLUSH",
        }
    )


def namesrv_config(root: Path) -> NamesrvConfig:
    return NamesrvConfig(
        rocketmq_home=str(root / "home"),
        kv_config_path=str(root / "namesrv" / "kvConfig.json"),
        config_store_path=str(root / "namesrv.properties"),
        listen_port=0,
    )


@asynccontextmanager
async def serving(root: Path) -> AsyncIterator[tuple[int, Broker]]:
    """A NameServer and a broker registered with it, data under ``root``;
    yields the NameServer's port and the broker. On leaving, the broker
    stops (unregistering) before the NameServer."""
    namesrv = NameServer(namesrv_config(root))
    async with trio.open_nursery() as ns_nursery:
        ns_port: int = await ns_nursery.start(namesrv.serve, "127.0.0.1", 0)
        settings = broker_settings(root, ns_port)
        async with trio.open_nursery() as nursery:
            broker: Broker = await nursery.start(
                lambda task_status: serve_broker(
                    settings,
                    host="127.0.0.1",
                    timing=RegistrationTiming(first_delay=0.05, period=5.0),
                    task_status=task_status,
                )
            )
            yield ns_port, broker
            nursery.cancel_scope.cancel()
        ns_nursery.cancel_scope.cancel()


async def run_epoch(
    seeds: Seeds, limits: Limits, progress: Progress, findings: Findings, rng: random.Random
) -> bool:
    """Fresh servers in a fresh directory, fuzzed until the epoch's request
    budget or the campaign's limits are spent. False when a canary failed."""
    failed = False
    with tempfile.TemporaryDirectory(prefix="pyrocket-fuzz-") as tmp:
        async with serving(Path(tmp)) as (ns_port, broker):
            await prepare_canary_topic(broker, ns_port, limits.workers)
            epoch_end = progress.requests + limits.epoch_requests

            async def worker(index: int) -> None:
                worker_rng = random.Random(rng.getrandbits(64))
                mutator = Mutator(
                    seeds, worker_rng, bound_queue_counts=not limits.huge_queue_counts
                )
                canary = Canary(
                    await CanaryConnection.open(ns_port, "namesrv"),
                    await CanaryConnection.open(broker.listen_port, "broker"),
                    CanaryQueue(index),
                    broker.broker_addr,
                )
                sent = 0
                try:
                    await canary.round(worker_rng)
                    while progress.requests < epoch_end and not progress.done(limits):
                        sequence = mutator.sequence()
                        if sequence.server == "namesrv":
                            port = ns_port
                        elif sequence.fast_port and broker.fast_listen_port:
                            port = broker.fast_listen_port
                        else:
                            port = broker.listen_port
                        token = id(sequence)
                        findings.in_flight[token] = sequence
                        try:
                            await send_sequence(port, sequence, worker_rng, limits.wait)
                            progress.requests += len(sequence.frames)
                            progress.sequences += 1
                            sent += 1
                            if sent % limits.full_every == 0:
                                await canary.round(worker_rng)
                            else:
                                await canary.check(worker_rng)
                            progress.canary_rounds += 1
                        finally:
                            del findings.in_flight[token]
                    await canary.check_all()
                finally:
                    await canary.namesrv.aclose()
                    await canary.broker.aclose()

            try:
                async with trio.open_nursery() as workers:
                    for index in range(limits.workers):
                        workers.start_soon(worker, index)
            except* CanaryFailure as group:
                failed = True
                for exc in group.exceptions:
                    findings.add("canary", str(exc))
            progress.epochs += 1
    return not failed


async def prepare_canary_topic(broker: Broker, ns_port: int, queues: int) -> None:
    """Create the canary topic and wait until the NameServer routes it."""
    conn = await CanaryConnection.open(broker.listen_port, "broker")
    header = CreateTopicRequestHeader(
        topic=CANARY_TOPIC,
        default_topic="TBW102",
        read_queue_nums=max(4, queues),
        write_queue_nums=max(4, queues),
        perm=6,
        topic_filter_type="SINGLE_TAG",
        topic_sys_flag=0,
        order=False,
    )
    answer = await conn.call(RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_TOPIC, header))
    await conn.aclose()
    _expect(answer, ResponseCode.SUCCESS, "canary topic creation")
    ns = await CanaryConnection.open(ns_port, "namesrv")
    with trio.fail_after(30):
        while True:
            answer = await ns.call(
                RemotingCommand.request(
                    RequestCode.GET_ROUTEINFO_BY_TOPIC,
                    GetRouteInfoRequestHeader(topic=CANARY_TOPIC),
                )
            )
            if answer.code == ResponseCode.SUCCESS:
                break
            await trio.sleep(0.05)
    await ns.aclose()


async def campaign(
    seeds: Seeds,
    limits: Limits,
    seed: int,
    findings: Findings,
    progress: Progress,
    watchdog: Watchdog,
) -> None:
    rng = random.Random(seed)
    failed_epochs = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watchdog.beat)
        if limits.report_every:
            nursery.start_soon(report, progress, findings, limits.report_every)
        while not progress.done(limits):
            try:
                if not await run_epoch(seeds, limits, progress, findings, rng):
                    failed_epochs += 1
                    if failed_epochs >= MAX_FAILED_EPOCHS:
                        break
            except Exception as exc:  # the servers themselves died: a crash
                detail = "".join(traceback.format_exception(exc))
                findings.add("crash", detail, f"{type(exc).__name__}: {exc}")
                break
        nursery.cancel_scope.cancel()


class Watchdog:
    """Catches a blocked event loop, which no trio timeout can: a thread
    that, when the loop has not ticked for ``limit`` seconds, records the
    main thread's stack as a finding and calls ``on_stall`` (which ends the
    process: the servers cannot be stopped from outside the loop)."""

    def __init__(self, limit: float, findings: Findings, on_stall: Callable[[], None]) -> None:
        self.limit = limit
        self.findings = findings
        self.on_stall = on_stall
        self.last = time.monotonic()
        self.stopped = threading.Event()

    async def beat(self) -> None:
        while True:
            self.last = time.monotonic()
            await trio.sleep(0.5)

    def watch(self) -> None:
        main = threading.main_thread().ident
        while not self.stopped.wait(1.0):
            stalled = time.monotonic() - self.last
            if stalled < self.limit:
                continue
            frame = sys._current_frames().get(main or 0)
            stack = traceback.extract_stack(frame) if frame is not None else []
            inside = [f for f in stack if "/pyrocket/" in f.filename]
            where = "?"
            if inside:
                last = inside[-1]
                where = f"{last.filename.rsplit('/pyrocket/', 1)[-1]}:{last.lineno}"
            detail = f"event loop blocked for {stalled:.0f} s; main thread:\n"
            detail += "".join(traceback.format_list(stack))
            self.findings.add("stall", detail, f"event loop blocked at {where}")
            self.on_stall()
            return


async def report(progress: Progress, findings: Findings, every: float) -> None:
    """A progress line on stderr every ``every`` seconds."""
    while True:
        await trio.sleep(every)
        line = {
            "elapsed_s": round(time.monotonic() - progress.started),
            "requests": progress.requests,
            "sequences": progress.sequences,
            "findings": findings.total,
        }
        print(json.dumps(line), file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.servers")
    parser.add_argument("--seconds", type=float, help="stop after this long")
    parser.add_argument("--requests", type=int, help="stop after this many fuzzed requests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=4, help="concurrent fuzzing connections")
    parser.add_argument(
        "--epoch-requests",
        type=int,
        default=200_000,
        help="restart the servers on fresh data after this many requests",
    )
    parser.add_argument("--wait", type=float, default=0.5, help="seconds to wait for answers")
    parser.add_argument(
        "--full-every",
        type=int,
        default=8,
        help="a full canary round (with writes) after every Nth sequence; one read otherwise",
    )
    parser.add_argument(
        "--report-every", type=float, default=0.0, help="progress on stderr every S seconds"
    )
    parser.add_argument(
        "--huge-queue-counts",
        action="store_true",
        help="let readQueueNums/writeQueueNums exceed MAX_QUEUE_COUNT (an open finding)",
    )
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=60.0,
        help="a finding (and the end) when the event loop is blocked this long",
    )
    parser.add_argument("--findings", type=Path, help="write findings (JSON lines) here")
    parser.add_argument("--vectors", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.seconds is None and args.requests is None:
        parser.error("give --seconds or --requests")
    seeds = load_seeds(args.vectors or default_vectors_dir())
    limits = Limits(
        args.seconds,
        args.requests,
        args.epoch_requests,
        args.workers,
        args.wait,
        args.full_every,
        args.report_every,
        args.huge_queue_counts,
    )
    findings = Findings()
    progress = Progress()
    with capture_logs(findings) as handler:

        def finish() -> int:
            if args.findings is not None:
                with args.findings.open("w", encoding="utf-8") as out:
                    for key, example in list(findings.seen.items()):
                        line = {"key": key, "count": findings.counts[key], **example}
                        out.write(json.dumps(line) + "\n")
            elapsed = time.monotonic() - progress.started
            summary = {
                "seed": args.seed,
                "requests": progress.requests,
                "sequences": progress.sequences,
                "canary_rounds": progress.canary_rounds,
                "epochs": progress.epochs,
                "seconds": round(elapsed, 1),
                "requests_per_s": round(progress.requests / elapsed, 1) if elapsed else 0.0,
                "findings": findings.total,
                "distinct_findings": sorted(findings.counts),
                "log_templates": dict(handler.templates.most_common(40)),
            }
            print(json.dumps(summary), flush=True)
            return 1 if findings.total else 0

        def stalled() -> None:
            os._exit(finish())

        watchdog = Watchdog(args.stall_seconds, findings, stalled)
        thread = threading.Thread(target=watchdog.watch, name="fuzz-watchdog", daemon=True)
        thread.start()
        try:
            trio.run(campaign, seeds, limits, args.seed, findings, progress, watchdog)
        finally:
            watchdog.stopped.set()
        return finish()


if __name__ == "__main__":
    sys.exit(main())
