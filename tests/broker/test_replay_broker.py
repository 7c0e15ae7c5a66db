"""Replay of every recorded client request to the Java broker (scenarios
``produce-consume``, ``admin-broker``, ``serialize-rocketmq`` and the broker
cases of ``errors-handcrafted``) against a pyrocket broker configured like the
recorded one, comparing each answer with Java's.

Frames are sent verbatim on one TCP connection per recorded connection, in
capture order; before each request every server frame recorded earlier must
have arrived (so causality holds across connections), and so must the answers
to the connection's earlier requests. Requests Java never answered (pulls
held when their client left) must get no answer either.
Answers are compared after the normalisations the vectors README lists, and
no others:

- ``msgId`` of send answers: the store host part is this broker's address
  (the commit-log offset part must be Java's: same records, same offsets);
- stored messages in PULL bodies: the born-host port (the replaying client's
  port), the store-host port and the store timestamp;
- server-initiated requests (NOTIFY_CONSUMER_IDS_CHANGED): their opaque;
- the statistics bodies of GET_BROKER_RUNTIME_INFO, GET_BROKER_CONFIG,
  GET_TOPIC_STATS_INFO and GET_CONSUME_STATS: times, TPS, paths, ports.

After normalisation each answer is re-encoded and must equal Java's frame
byte for byte. The deviations README.md decides are expected instead of
Java's answers: an unknown request code is answered REQUEST_CODE_NOT_SUPPORTED,
a SEND_MESSAGE_V2 without its required producer group (``a``) is refused
with SYSTEM_ERROR and stores nothing.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from pyrocket.broker.app import Broker
from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.registration import RegistrationTiming
from pyrocket.protocol.bodies.admin import ConsumeStats
from pyrocket.protocol.codes import RequestCode, ResponseCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, decode_payload, encode
from pyrocket.protocol.frame import FrameSplitter
from pyrocket.protocol.headers import CreateTopicRequestHeader
from pyrocket.remoting import not_supported_remark
from pyrocket.vectors import Record, read_records
from tests.broker.helpers import broker_properties, running_broker
from tests.broker.java_layout import decode_body
from tests.broker.recording_namesrv import RecordingNameServer, recording_namesrv
from tests.broker.test_replay_admin_broker import (
    compare_broker_config,
    compare_runtime_info,
    compare_topic_stats,
    recorded_settings,
)

SLOW = RegistrationTiming(first_delay=600, period=600)
SCENARIOS = ["produce-consume", "admin-broker", "serialize-rocketmq", "errors-handcrafted"]
#: How long a recorded answer may take.
ANSWER_TIMEOUT = 5.0


class Wire:
    """One replayed connection: raw frames out, decoded frames in."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.splitter = FrameSplitter(64 * 1024 * 1024)
        self.inbox: list[RemotingCommand] = []
        self.closed_by_peer = False
        self.changed = trio.Event()

    async def read_loop(self) -> None:
        try:
            while True:
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                self.splitter.feed(data)
                while True:
                    payload = self.splitter.next_frame()
                    if not isinstance(payload, bytes):
                        break
                    self.inbox.append(decode_payload(payload))
                    self.changed.set()
                    self.changed = trio.Event()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self.closed_by_peer = True
        self.changed.set()

    async def take(self, match: Callable[[RemotingCommand], bool], what: str) -> RemotingCommand:
        with trio.move_on_after(ANSWER_TIMEOUT):
            while True:
                for index, command in enumerate(self.inbox):
                    if match(command):
                        return self.inbox.pop(index)
                assert not self.closed_by_peer, "broker closed the connection"
                await self.changed.wait()
        raise AssertionError(f"no {what} within {ANSWER_TIMEOUT} s; received: {self.inbox}")


def settings_for(scenario: str, records: list[Record], root: Path, namesrv: str) -> BrokerSettings:
    if scenario == "admin-broker":
        return recorded_settings(records, root, namesrv)
    properties = broker_properties(
        root,
        [namesrv],
        mappedFileSizeCommitLog=4 * 1024 * 1024,
        mappedFileSizeConsumeQueue=20 * 1000,
        maxMessageSize=1024 * 1024,
    )
    settings = BrokerSettings.from_properties(properties)
    if scenario == "serialize-rocketmq":
        settings = dataclasses.replace(settings, serialize_type=SerializeType.ROCKETMQ)
    return settings


def normalise_msg_id(ours: str, java: str, store_prefix: str) -> str:
    """Our send answer's msgId (one id, or a batch's comma-joined ids) with
    Java's store host: the offsets must already be Java's."""
    parts = []
    for mine, theirs in zip(ours.split(","), java.split(","), strict=True):
        assert mine.startswith(store_prefix), (mine, store_prefix)
        parts.append(theirs[:16] + mine[16:])
    return ",".join(parts)


def normalise_pull_body(ours: bytes, java: bytes) -> bytes:
    mine = decode_body(ours)
    theirs = decode_body(java)
    assert len(mine) == len(theirs)
    result = []
    for got, want in zip(mine, theirs, strict=True):
        assert got.born_ip == want.born_ip == bytes([127, 0, 0, 1])
        assert got.store_ip == want.store_ip
        assert got.store_timestamp > 0
        result.append(
            got.replace(
                born_port=want.born_port,
                store_port=want.store_port,
                store_timestamp=want.store_timestamp,
            ).encode()
        )
    return b"".join(result)


def compare_consume_stats(ours: bytes, recorded: bytes) -> bytes:
    mine = ConsumeStats.decode(ours)
    java = ConsumeStats.decode(recorded)
    assert list(mine.offset_table) == list(java.offset_table)
    for queue, wrapper in java.offset_table.items():
        got = mine.offset_table[queue]
        assert (got.broker_offset, got.consumer_offset) == (
            wrapper.broker_offset,
            wrapper.consumer_offset,
        )
        assert (got.last_timestamp > 0) == (wrapper.last_timestamp > 0)
    return recorded


class Replay:
    def __init__(
        self, scenario: str, records: list[Record], broker: Broker, namesrv: RecordingNameServer
    ) -> None:
        self.scenario = scenario
        self.namesrv = namesrv
        self.records = [r for r in records if r.server == "java-broker"]
        self.broker = broker
        self.wires: dict[str, Wire] = {}
        self.requests: dict[tuple[str, int], Record] = {}
        self.compared: Counter[str] = Counter()
        self.identical = 0
        self.deviations: list[str] = []
        self.store_prefix = ""

    def last_seq(self, conn: str) -> int:
        return max(r.seq for r in self.records if r.conn == conn)

    def expected_server_frames(self, request: Record) -> list[Record]:
        """The server frames to have before sending ``request``: everything
        recorded before it, and the recorded answers to the requests sent
        earlier on its connection. (The Java client pipelined some requests;
        Java happened to process them in order, but pyrocket runs the
        requests of a connection concurrently, like Java's executors, so the
        replay waits to make the order the recorded one.)"""
        answered = {
            r.opaque
            for r in self.records
            if r.conn == request.conn and r.seq < request.seq and r.sender == "client"
        }
        return [
            r
            for r in self.records
            if r.sender == "server"
            and r.dir in ("request", "response")
            and (
                r.seq < request.seq
                or (r.conn == request.conn and r.dir == "response" and r.opaque in answered)
            )
        ]

    async def run(self, nursery: trio.Nursery) -> None:
        host, port = "127.0.0.1", self.broker.listen_port
        self.store_prefix = bytes([127, 0, 0, 1]).hex().upper() + f"{port:08X}"
        done: set[int] = set()
        closed: set[str] = set()
        for record in self.records:
            if record.conn not in self.wires:
                stream = await trio.open_tcp_stream(host, port)
                wire = Wire(stream)
                self.wires[record.conn] = wire
                nursery.start_soon(wire.read_loop)
            wire = self.wires[record.conn]
            if record.sender == "client" and record.dir == "request":
                for expected in self.expected_server_frames(record):
                    if expected.seq not in done:
                        await self.receive(expected)
                        done.add(expected.seq)
                await self.send(wire, record)
            elif record.dir == "close" and record.conn not in closed:
                if record.sender == "server":
                    # The broker closes connections whose bytes are no frame.
                    with trio.fail_after(ANSWER_TIMEOUT):
                        while not wire.closed_by_peer:
                            await wire.changed.wait()
                    closed.add(record.conn)
                else:
                    await self.finish(record, wire, done)
                    closed.add(record.conn)
            if record.seq == self.last_seq(record.conn) and record.conn not in closed:
                await self.finish(record, wire, done)
                closed.add(record.conn)

    async def finish(self, record: Record, wire: Wire, done: set[int]) -> None:
        """Take the connection's last answers, check nothing else came, close."""
        for expected in self.records:
            if (
                expected.conn == record.conn
                and expected.sender == "server"
                and expected.dir in ("request", "response")
                and expected.seq not in done
            ):
                await self.receive(expected)
                done.add(expected.seq)
        await trio.sleep(0.05)
        assert not wire.inbox, f"{record.conn}: unexpected frames {wire.inbox}"
        await wire.stream.aclose()

    async def send(self, wire: Wire, record: Record) -> None:
        if record.raw.get("malformed"):
            await wire.stream.send_all(record.frame)
            return
        self.requests[(record.conn, record.opaque or 0)] = record
        await wire.stream.send_all(record.frame)
        request = decode(record.frame)
        if record.code == 9999:
            answer = await wire.take(
                lambda c: c.is_response and c.opaque == request.opaque,
                f"answer to seq {record.seq}",
            )
            assert answer.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
            assert answer.remark == not_supported_remark(9999)
            self.deviations.append("unknown request code 9999: REQUEST_CODE_NOT_SUPPORTED")
        elif record.code == RequestCode.UPDATE_AND_CREATE_TOPIC:
            topic = request.decode_header(CreateTopicRequestHeader).topic
            # Java answers before it applies the change; wait until the
            # NameServer learnt the topic (the broker registers it last).
            with trio.fail_after(ANSWER_TIMEOUT):
                broker_name = self.broker.settings.broker.broker_name
                await self.namesrv.wait_for(lambda: self.namesrv.has_topic(topic, broker_name))

    async def receive(self, expected: Record) -> None:
        wire = self.wires[expected.conn]
        java = decode(expected.frame)
        if expected.dir == "request":
            ours = await wire.take(
                lambda c: not c.is_response and c.code == java.code,
                f"request like seq {expected.seq}",
            )
            assert encode(ours.replace(opaque=java.opaque)) == expected.frame
            self.compared[f"{expected.code} (server request)"] += 1
            self.identical += 1
            return
        request = self.requests[(expected.conn, java.opaque)]
        ours = await wire.take(
            lambda c: c.is_response and c.opaque == java.opaque, f"answer like seq {expected.seq}"
        )
        code = request.code
        if request.case == "br-send-missing-producerGroup":
            assert ours.code == ResponseCode.SYSTEM_ERROR
            assert ours.remark == "the custom field <a> is null"
            self.deviations.append("SEND_MESSAGE_V2 without producerGroup: SYSTEM_ERROR")
            return
        self.compared[str(code)] += 1
        normalised = ours
        if code in (RequestCode.SEND_MESSAGE_V2, RequestCode.SEND_BATCH_MESSAGE) and (
            java.code == ResponseCode.SUCCESS
        ):
            ext = dict(ours.ext_fields or {})
            ext["msgId"] = normalise_msg_id(
                ext["msgId"], (java.ext_fields or {})["msgId"], self.store_prefix
            )
            assert list(ext) == list(java.ext_fields or {})
            normalised = ours.replace(ext_fields=ext)
        elif code == RequestCode.PULL_MESSAGE and java.code == ResponseCode.SUCCESS:
            assert ours.body is not None and java.body is not None
            normalised = ours.replace(body=normalise_pull_body(ours.body, java.body))
        elif code == RequestCode.GET_BROKER_RUNTIME_INFO:
            compare_runtime_info(ours.body or b"", java.body or b"")
            normalised = ours.replace(body=java.body)
        elif code == RequestCode.GET_BROKER_CONFIG:
            compare_broker_config(ours, java)
            normalised = ours.replace(body=java.body, ext_fields=java.ext_fields)
        elif code == RequestCode.GET_TOPIC_STATS_INFO:
            compare_topic_stats(ours.body or b"", java.body or b"")
            normalised = ours.replace(body=java.body)
        elif code == RequestCode.GET_CONSUME_STATS:
            normalised = ours.replace(
                body=compare_consume_stats(ours.body or b"", java.body or b"")
            )
        if encode(ours) == expected.frame:
            self.identical += 1
        assert encode(normalised) == expected.frame, (
            f"seq {expected.seq}: ours {normalised!r} java {java!r}"
        )


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_broker_replay(scenario: str, tmp_path: Path, vectors_dir: Path) -> None:
    records = read_records(vectors_dir / f"{scenario}.jsonl")
    with trio.fail_after(60):
        async with recording_namesrv(tmp_path / "ns") as namesrv:
            settings = settings_for(scenario, records, tmp_path, namesrv.addr)
            async with running_broker(settings, timing=SLOW) as broker:
                replay = Replay(scenario, records, broker, namesrv)
                async with trio.open_nursery() as nursery:
                    await replay.run(nursery)
                    nursery.cancel_scope.cancel()
    answered = sum(1 for r in replay.records if r.dir == "response" and r.sender == "server")
    compared = sum(replay.compared.values())
    print(
        f"{scenario}: {compared} answers compared ({replay.identical} byte-identical before "
        f"normalisation), {len(replay.deviations)} decided deviations: {dict(replay.compared)}"
    )
    assert compared + len(replay.deviations) >= answered
    if scenario == "errors-handcrafted":
        assert len(replay.deviations) == 2
    if scenario == "produce-consume":
        # Every message sent was pulled back and compared with Java's records.
        assert replay.compared[str(RequestCode.PULL_MESSAGE)] == 12
