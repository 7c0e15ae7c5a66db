"""Replay of every recorded client request to a Java broker, in every capture
that has one, against pyrocket brokers set up like the recorded ones,
comparing each answer with Java's.

What the replay needs is read from the capture, never written here:

- the servers: one pyrocket broker per recorded broker listen port; its
  cluster, name and id come from the REGISTER_BROKER requests that address
  sent the NameServer (id > 0 makes it a SLAVE), its other keys from a
  recorded GET_BROKER_CONFIG answer when there is one, its serialize type
  from the type its answers were in. A recorded port two below a listen
  port is that broker's fast ("VIP") port and is replayed on ours;
- the deliberate deviations, recognised by rule (see :func:`deviation_of`):
  a request code the pyrocket broker has no processor for (Java is silent,
  pyrocket answers REQUEST_CODE_NOT_SUPPORTED), a request missing a field its
  header class requires (SYSTEM_ERROR "the custom field <x> is null"), an
  UPDATE_BROKER_CONFIG with a key the run-time allow-list refuses;
- races between Java's executors, recognised by rule (see
  :func:`race_of`): a PULL_MESSAGE Java answered SUBSCRIPTION_NOT_LATEST /
  SUBSCRIPTION_NOT_EXIST while a HEART_BEAT sent before it on the same
  connection (another Java executor) was still unanswered. The replay sends
  in order, so pyrocket sees the heartbeat first; such answers are counted
  and reported, not compared.

Frames are sent verbatim on one TCP connection per recorded connection, in
capture order; before each request every server frame recorded earlier must
have arrived (so causality holds across connections and brokers), and so must
the answers to the connection's earlier requests. Answers are compared after
the normalisations the vectors README lists, and no others:

- ``msgId`` of send answers: the store host part is this broker's address
  (the commit-log offset part must be Java's: same records, same offsets);
- stored messages in PULL bodies: the born-host port (the replaying client's
  port), the store-host port and the store timestamp;
- server-initiated requests (NOTIFY_CONSUMER_IDS_CHANGED): their opaque;
- the statistics bodies of GET_BROKER_RUNTIME_INFO, GET_BROKER_CONFIG,
  GET_TOPIC_STATS_INFO and GET_CONSUME_STATS: times, TPS, paths, ports;
- the ``dataVersion`` of the slave-sync tables (GET_ALL_TOPIC_CONFIG,
  GET_ALL_CONSUMER_OFFSET, GET_ALL_DELAY_OFFSET,
  GET_ALL_SUBSCRIPTIONGROUP_CONFIG), the topics a Java broker creates on a
  timer (``RMQ_SYS_TRANS_HALF_TOPIC``, about 60 s after start) and each
  topic's ``order`` flag (the NameServer's ORDER_TOPIC_CONFIG, learnt from a
  registration answer);
- on a slave, the GET_BROKER_RUNTIME_INFO figures Java takes from HA
  replication, which pyrocket does not have (counted as a named deviation
  when they differ).

After normalisation each answer is re-encoded and must equal Java's frame
byte for byte. Each scenario and broker gets one summary line (compared,
identical, named deviations, recognised races, skipped-with-reason).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from pyrocket.broker.app import Broker
from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.configuration import refusal_reason
from pyrocket.broker.registration import RegistrationTiming
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies import Properties
from pyrocket.protocol.bodies.admin import ConsumeStats
from pyrocket.protocol.bodies.topic import KVTable
from pyrocket.protocol.catalog import request_header_type
from pyrocket.protocol.codes import RequestCode, ResponseCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, decode_payload, encode
from pyrocket.protocol.fastjson import dumps, loads
from pyrocket.protocol.frame import FrameSplitter
from pyrocket.protocol.headers import CreateTopicRequestHeader, RegisterBrokerRequestHeader
from pyrocket.remoting import not_supported_remark
from tests.broker.helpers import broker_properties, running_broker
from tests.broker.java_layout import decode_body
from tests.broker.recording_namesrv import RecordingNameServer, recording_namesrv
from tests.broker.test_replay_admin_broker import (
    LOCAL_CONFIG_KEYS,
    compare_broker_config,
    compare_runtime_info,
    compare_topic_stats,
)
from tests.conftest import report_replay
from tests.vectorset import Record, pair_requests, read_records, scenario_files

SLOW = RegistrationTiming(first_delay=600, period=600)
#: How long a recorded answer may take.
ANSWER_TIMEOUT = 5.0

#: Java 4.7.0's executor for each broker request code (BrokerController
#: .registerProcessor); every other code runs on the admin executor. Two
#: requests on different executors may be processed in either order.
JAVA_EXECUTOR: dict[int, str] = {
    RequestCode.SEND_MESSAGE: "send",
    RequestCode.SEND_MESSAGE_V2: "send",
    RequestCode.SEND_BATCH_MESSAGE: "send",
    RequestCode.CONSUMER_SEND_MSG_BACK: "send",
    RequestCode.PULL_MESSAGE: "pull",
    RequestCode.QUERY_MESSAGE: "query",
    RequestCode.VIEW_MESSAGE_BY_ID: "query",
    RequestCode.HEART_BEAT: "heartbeat",
    RequestCode.UNREGISTER_CLIENT: "client-manage",
    RequestCode.CHECK_CLIENT_CONFIG: "client-manage",
    RequestCode.GET_CONSUMER_LIST_BY_GROUP: "consumer-manage",
    RequestCode.UPDATE_CONSUMER_OFFSET: "consumer-manage",
    RequestCode.QUERY_CONSUMER_OFFSET: "consumer-manage",
    RequestCode.END_TRANSACTION: "end-transaction",
}

#: Pull answers that say the broker did not know the consumer's subscription
#: yet: what Java answers when it ran the pull before the heartbeat.
SUBSCRIPTION_RACE_CODES = frozenset(
    {ResponseCode.SUBSCRIPTION_NOT_LATEST, ResponseCode.SUBSCRIPTION_NOT_EXIST}
)

#: Topics a Java broker creates on a timer, not in answer to a request.
TIMED_TOPICS = frozenset({"RMQ_SYS_TRANS_HALF_TOPIC"})

#: GET_BROKER_RUNTIME_INFO figures a Java slave takes from HA replication
#: (its first transfer from the master creates the commit log's first file);
#: the replayed pyrocket slave runs without its master, so nothing was transferred.
REPLICATION_FIGURES = frozenset({"commitLogMinOffset"})

#: Slave-sync answers whose ``dataVersion`` is a time and a change counter.
SYNC_TABLES = frozenset(
    {
        RequestCode.GET_ALL_TOPIC_CONFIG,
        RequestCode.GET_ALL_CONSUMER_OFFSET,
        RequestCode.GET_ALL_DELAY_OFFSET,
        RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
    }
)


def executor(code: int | None) -> str:
    return JAVA_EXECUTOR.get(code or 0, "admin")


@dataclass
class RecordedBroker:
    """A Java broker of the capture, as far as the capture shows it."""

    listen_port: int
    cluster: str | None = None
    name: str | None = None
    broker_id: int | None = None
    config: dict[str, str] | None = None
    serialize: SerializeType = SerializeType.JSON

    @property
    def label(self) -> str:
        who = f"{self.name}/{self.broker_id}" if self.name is not None else "unregistered"
        return f"broker {self.listen_port} ({who})"


def port_of(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def recorded_brokers(records: list[Record]) -> tuple[dict[int, RecordedBroker], dict[int, int]]:
    """The capture's Java brokers by listen port, and for every recorded
    broker-bound server port the listen port of the broker behind it."""
    brokers: dict[int, RecordedBroker] = {}
    for record in records:
        if record.is_frame and record.is_request and record.code == RequestCode.REGISTER_BROKER:
            try:
                header = decode(record.frame).decode_header(RegisterBrokerRequestHeader)
            except PyrocketError:
                continue  # a hand-made registration; not a broker that ran
            port = port_of(header.broker_addr)
            brokers.setdefault(port, RecordedBroker(port))
            broker = brokers[port]
            broker.cluster, broker.name = header.cluster_name, header.broker_name
            broker.broker_id = header.broker_id
    ports = sorted({r.server_port for r in records if r.server == "java-broker" and r.server_port})
    route: dict[int, int] = {}
    for port in ports:
        if port in brokers:
            route[port] = port
        elif port + 2 in brokers or port + 2 in ports:
            route[port] = port + 2
        else:
            route[port] = port
        brokers.setdefault(route[port], RecordedBroker(route[port]))
    pairs = pair_requests(records)
    for record in records:
        if record.server != "java-broker" or not record.is_frame or record.sender != "server":
            continue
        broker = brokers[route[record.server_port or 0]]
        if record.raw.get("serialize") == "ROCKETMQ":
            broker.serialize = SerializeType.ROCKETMQ
        request = pairs.get(record.seq)
        if (
            request is not None
            and request.code == RequestCode.GET_BROKER_CONFIG
            and record.body
            and broker.config is None
            and record.code == ResponseCode.SUCCESS
        ):
            broker.config = dict(Properties.decode(record.body).entries)
    return {port: brokers[port] for port in sorted(set(route.values()))}, route


def settings_for(recorded: RecordedBroker, root: Path, namesrv: str) -> BrokerSettings:
    """A pyrocket broker configured from what the capture shows of ``recorded``."""
    local = {
        "storePathRootDir": str(root / "store"),
        "storePathCommitLog": str(root / "store" / "commitlog"),
        "listenPort": "0",
        "namesrvAddr": namesrv,
    }
    if recorded.config is not None:
        properties = {k: v for k, v in recorded.config.items() if k not in LOCAL_CONFIG_KEYS}
        properties.update(local)
    else:
        identity: dict[str, str] = {}
        if recorded.name is not None:
            identity = {
                "brokerClusterName": recorded.cluster or "DefaultCluster",
                "brokerName": recorded.name,
                "brokerId": str(recorded.broker_id or 0),
                "brokerRole": "SLAVE" if recorded.broker_id else "ASYNC_MASTER",
            }
        properties = broker_properties(
            root,
            [namesrv],
            mappedFileSizeCommitLog=4 * 1024 * 1024,
            mappedFileSizeConsumeQueue=20 * 1000,
            maxMessageSize=1024 * 1024,
            **identity,
        )
        properties.update(local)
    settings = BrokerSettings.from_properties(properties)
    return dataclasses.replace(settings, serialize_type=recorded.serialize)


class Wire:
    """One replayed connection: raw frames out, decoded frames in."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.splitter = FrameSplitter(64 * 1024 * 1024)
        self.inbox: list[RemotingCommand] = []
        self.closed_by_peer = False
        self.changed = trio.Event()
        #: Opaques of requests whose answers are not compared (races).
        self.ignored: set[int] = set()

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
                    command = decode_payload(payload)
                    if command.is_response and command.opaque in self.ignored:
                        continue
                    self.inbox.append(command)
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


def normalise_sync_table(ours: bytes, java: bytes) -> tuple[bytes, bytes]:
    """Both slave-sync tables with Java's ``dataVersion``, and Java's without
    the topics Java creates on a timer that ours does not have (yet)."""
    mine = loads(ours)
    theirs = loads(java)
    assert isinstance(mine, dict) and isinstance(theirs, dict)
    if "dataVersion" in theirs:
        assert "dataVersion" in mine
        mine["dataVersion"] = theirs["dataVersion"]
    table = theirs.get("topicConfigTable")
    if isinstance(table, dict):
        ours_table = mine.get("topicConfigTable")
        assert isinstance(ours_table, dict)
        for topic in (TIMED_TOPICS & set(table)) - set(ours_table):
            del table[topic]
        # A topic's ``order`` flag is the NameServer's ORDER_TOPIC_CONFIG,
        # learnt from a registration answer (not part of this replay).
        for topic, config in ours_table.items():
            if isinstance(config, dict) and isinstance(table.get(topic), dict):
                config["order"] = table[topic].get("order", config.get("order"))
    return dumps(mine).encode(), dumps(theirs).encode()


@dataclass
class Tally:
    """What one replay did on one broker."""

    compared: Counter[str] = field(default_factory=Counter)
    identical: int = 0
    deviations: Counter[str] = field(default_factory=Counter)
    races: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    silences: int = 0
    closes: int = 0

    def line(self, scenario: str, label: str) -> str:
        def show(counter: Counter[str]) -> str:
            return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items())) or "none"

        return (
            f"{scenario} {label}: {sum(self.compared.values())} compared, {self.identical} "
            f"identical before normalisation, {sum(self.deviations.values())} named deviations "
            f"({show(self.deviations)}), {sum(self.races.values())} recognised races "
            f"({show(self.races)}), {sum(self.skipped.values())} skipped ({show(self.skipped)}), "
            f"{self.silences} silences, {self.closes} closes"
        )


def race_of(request: Record, answer: Record | None, records: list[Record]) -> str | None:
    """The race Java's answer to ``request`` shows, or None.

    Java processed a pull before the heartbeat that preceded it on the same
    connection: the heartbeat (heartbeat executor) was still unanswered when
    the pull (pull executor) was sent, and Java answered the pull as if it
    had not seen that heartbeat's subscription."""
    if request.code != RequestCode.PULL_MESSAGE or answer is None:
        return None
    if answer.code not in SUBSCRIPTION_RACE_CODES:
        return None
    answered_after = {
        r.opaque
        for r in records
        if r.conn == request.conn and r.is_response and r.seq > request.seq
    }
    for earlier in records:
        if earlier.seq >= request.seq:
            break
        if (
            earlier.conn == request.conn
            and earlier.is_frame
            and earlier.is_request
            and earlier.sender == "client"
            and earlier.code == RequestCode.HEART_BEAT
            and executor(earlier.code) != executor(request.code)
            and earlier.opaque in answered_after
        ):
            return f"PULL_MESSAGE before HEART_BEAT: {ResponseCode(answer.code).name}"
    return None


@dataclass(frozen=True)
class Deviation:
    why: str
    check: Callable[[RemotingCommand], None]


def deviation_of(request: Record, broker: Broker) -> Deviation | None:
    """pyrocket's deliberate deviation for ``request``, by rule, or None."""
    code = request.code
    if code is None:
        return None
    if broker.server.processors.lookup(code) is None:

        def not_supported(answer: RemotingCommand) -> None:
            assert answer.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
            assert answer.remark == not_supported_remark(code)

        return Deviation("unknown request code: REQUEST_CODE_NOT_SUPPORTED", not_supported)
    command = decode(request.frame)
    header_type = request_header_type(code)
    if header_type is not None:
        try:
            command.decode_header(header_type)
        except PyrocketError as exc:
            missing = re.fullmatch(r"the custom field <(\w+)> is null", str(exc))
            if missing is not None and missing.group(1) not in (command.ext_fields or {}):
                remark = str(exc)

                def refused(answer: RemotingCommand) -> None:
                    assert answer.code == ResponseCode.SYSTEM_ERROR
                    assert answer.remark == remark

                return Deviation(f"{RequestCode(code).name} without a required field", refused)
    if code == RequestCode.UPDATE_BROKER_CONFIG and command.body:
        keys = Properties.decode(command.body).entries
        refused_keys = [key for key in keys if refusal_reason(key) is not None]
        if refused_keys:

            def not_allowed(answer: RemotingCommand) -> None:
                assert answer.code != ResponseCode.SUCCESS
                assert all(key in (answer.remark or "") for key in refused_keys), answer.remark

            return Deviation("UPDATE_BROKER_CONFIG key outside the allow-list", not_allowed)
    return None


class Replay:
    def __init__(
        self,
        records: list[Record],
        brokers: dict[int, Broker],
        route: dict[int, int],
        namesrv: RecordingNameServer,
    ) -> None:
        self.all_records = records
        self.namesrv = namesrv
        self.records = [r for r in records if r.server == "java-broker"]
        self.brokers = brokers
        self.route = route
        self.wires: dict[str, Wire] = {}
        self.requests: dict[tuple[str, int], Record] = {}
        self.tallies: dict[int, Tally] = {port: Tally() for port in brokers}
        self.answers = {
            (r.conn, r.opaque): r
            for r in self.records
            if r.is_frame and r.is_response and r.sender == "server"
        }
        self.last_seq: dict[str, int] = {}
        for r in self.records:
            self.last_seq[r.conn] = r.seq
        self.skip_seqs: set[int] = set()

    def listen_port_of(self, record: Record) -> int:
        return self.route[record.server_port or 0]

    def tally(self, record: Record) -> Tally:
        return self.tallies[self.listen_port_of(record)]

    def broker_of(self, record: Record) -> Broker:
        return self.brokers[self.listen_port_of(record)]

    def expected_server_frames(self, request: Record) -> list[Record]:
        """The server frames to have before sending ``request``: everything
        recorded before it, and the recorded answers to the requests sent
        earlier on its connection. (The Java client pipelined some requests;
        pyrocket runs the requests of a connection concurrently, like Java's
        executors, so the replay waits to make the order the recorded one.)"""
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
            and r.seq not in self.skip_seqs
            and (
                r.seq < request.seq
                or (r.conn == request.conn and r.dir == "response" and r.opaque in answered)
            )
        ]

    async def run(self, nursery: trio.Nursery) -> None:
        done: set[int] = set()
        closed: set[str] = set()
        for record in self.records:
            if record.conn not in self.wires:
                broker = self.broker_of(record)
                fast = record.server_port != self.listen_port_of(record)
                port = broker.fast_listen_port if fast else broker.listen_port
                assert port is not None
                stream = await trio.open_tcp_stream("127.0.0.1", port)
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
                    self.tally(record).closes += 1
                    closed.add(record.conn)
                else:
                    await self.finish(record, wire, done)
                    closed.add(record.conn)
            if record.seq == self.last_seq[record.conn] and record.conn not in closed:
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
                and expected.seq not in self.skip_seqs
            ):
                await self.receive(expected)
                done.add(expected.seq)
        await trio.sleep(0.05)
        assert not wire.inbox, f"{record.conn}: unexpected frames {wire.inbox}"
        await wire.stream.aclose()

    async def send(self, wire: Wire, record: Record) -> None:
        await wire.stream.send_all(record.frame)
        if record.raw.get("malformed"):
            return
        tally = self.tally(record)
        self.requests[(record.conn, record.opaque or 0)] = record
        answer = self.answers.get((record.conn, record.opaque))
        race = race_of(record, answer, self.records)
        if race is not None and answer is not None:
            # Not compared: Java ran this pull before the heartbeat, pyrocket
            # after it. Whatever pyrocket answers is dropped.
            wire.ignored.add(record.opaque or 0)
            self.skip_seqs.add(answer.seq)
            tally.races[race] += 1
            return
        deviation = deviation_of(record, self.broker_of(record))
        if deviation is not None:
            request = decode(record.frame)
            if answer is not None:
                self.skip_seqs.add(answer.seq)
            if not record.oneway:
                ours = await wire.take(
                    lambda c: c.is_response and c.opaque == request.opaque,
                    f"answer to seq {record.seq}",
                )
                deviation.check(ours)
            tally.deviations[deviation.why] += 1
            return
        if answer is None and (record.oneway or record.seq != self.last_seq[record.conn]):
            tally.silences += 1  # checked when the connection ends: nothing may come
        elif answer is None:
            # The client left before Java answered: whatever we answer is dropped.
            wire.ignored.add(record.opaque or 0)
            tally.skipped["client left before the answer"] += 1
        if record.code == RequestCode.UPDATE_AND_CREATE_TOPIC:
            topic = decode(record.frame).decode_header(CreateTopicRequestHeader).topic
            broker = self.broker_of(record)
            # Java answers before it applies the change; wait until the
            # NameServer learnt the topic (the broker registers it last).
            if not broker.is_slave:
                with trio.fail_after(ANSWER_TIMEOUT):
                    name = broker.settings.broker.broker_name
                    await self.namesrv.wait_for(lambda: self.namesrv.has_topic(topic, name))

    async def receive(self, expected: Record) -> None:
        wire = self.wires[expected.conn]
        tally = self.tally(expected)
        java = decode(expected.frame)
        if expected.dir == "request":
            ours = await wire.take(
                lambda c: not c.is_response and c.code == java.code,
                f"request like seq {expected.seq}",
            )
            assert encode(ours.replace(opaque=java.opaque)) == expected.frame
            tally.compared[f"{RequestCode(java.code).name} (server request)"] += 1
            tally.identical += 1
            return
        request = self.requests[(expected.conn, java.opaque)]
        ours = await wire.take(
            lambda c: c.is_response and c.opaque == java.opaque, f"answer like seq {expected.seq}"
        )
        code = request.code or 0
        tally.compared[RequestCode(code).name] += 1
        normalised = ours
        if code in (RequestCode.SEND_MESSAGE_V2, RequestCode.SEND_BATCH_MESSAGE) and (
            java.code == ResponseCode.SUCCESS
        ):
            ext = dict(ours.ext_fields or {})
            broker = self.broker_of(expected)
            prefix = bytes([127, 0, 0, 1]).hex().upper() + f"{broker.listen_port:08X}"
            ext["msgId"] = normalise_msg_id(ext["msgId"], (java.ext_fields or {})["msgId"], prefix)
            assert list(ext) == list(java.ext_fields or {})
            normalised = ours.replace(ext_fields=ext)
        elif code == RequestCode.PULL_MESSAGE and java.code == ResponseCode.SUCCESS:
            assert ours.body is not None and java.body is not None, (ours, java)
            normalised = ours.replace(body=normalise_pull_body(ours.body, java.body))
        elif code == RequestCode.GET_BROKER_RUNTIME_INFO:
            broker = self.broker_of(expected)
            ignore = REPLICATION_FIGURES if broker.is_slave else frozenset()
            compare_runtime_info(ours.body or b"", java.body or b"", ignore)
            mine = KVTable.decode(ours.body or b"").table
            theirs = KVTable.decode(java.body or b"").table
            if any(mine[key] != theirs[key] for key in ignore):
                tally.deviations["slave replayed without its master: commit-log figures"] += 1
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
        elif code in SYNC_TABLES and java.code == ResponseCode.SUCCESS:
            assert ours.body is not None and java.body is not None
            mine, theirs = normalise_sync_table(ours.body, java.body)
            if encode(ours) == expected.frame:
                tally.identical += 1
            assert encode(ours.replace(body=mine)) == encode(java.replace(body=theirs)), (
                f"seq {expected.seq}: ours {mine!r}\njava {theirs!r}"
            )
            return
        if encode(ours) == expected.frame:
            tally.identical += 1
        assert encode(normalised) == expected.frame, (
            f"seq {expected.seq}: ours {normalised!r} java {java!r}"
        )


def broker_scenarios() -> list[str]:
    """Every capture with traffic to a Java broker."""
    return [
        path.stem
        for path in scenario_files()
        if any(r.server == "java-broker" for r in read_records(path))
    ]


def replayed_requests(records: list[Record]) -> set[tuple[str, int | None]]:
    """(server, request code) of every request this replay sends or checks:
    everything sent over a connection to a Java broker."""
    return {(r.server, r.code) for r in records if r.server == "java-broker" and r.is_request}


@pytest.mark.parametrize("scenario", broker_scenarios())
async def test_broker_replay(scenario: str, tmp_path: Path, vectors_dir: Path) -> None:
    records = read_records(vectors_dir / f"{scenario}.jsonl")
    recorded, route = recorded_brokers(records)
    with trio.fail_after(120):
        async with recording_namesrv(tmp_path / "ns") as namesrv, trio.open_nursery() as outer:
            brokers: dict[int, Broker] = {}
            stops: list[trio.CancelScope] = []
            for port, java in recorded.items():
                settings = settings_for(java, tmp_path / f"broker-{port}", namesrv.addr)
                brokers[port] = await outer.start(_serve, settings, stops)
            replay = Replay(records, brokers, route, namesrv)
            async with trio.open_nursery() as nursery:
                await replay.run(nursery)
                nursery.cancel_scope.cancel()
            outer.cancel_scope.cancel()
    for port, java in recorded.items():
        report_replay(replay.tallies[port].line(scenario, java.label))
    pairs = pair_requests(records)
    for port, tally in replay.tallies.items():
        answered = [
            r
            for r in replay.records
            if r.is_response and r.sender == "server" and route[r.server_port or 0] == port
        ]
        accounted = (
            sum(tally.compared.values())
            - sum(v for k, v in tally.compared.items() if k.endswith("(server request)"))
            + sum(1 for r in answered if r.seq in replay.skip_seqs)
        )
        assert accounted == len(answered), (port, accounted, len(answered))
        expected_races = sum(
            1 for r in answered if race_of(pairs[r.seq], r, replay.records) is not None
        )
        assert sum(tally.races.values()) == expected_races


async def _serve(
    settings: BrokerSettings,
    stops: list[trio.CancelScope],
    task_status: trio.TaskStatus[Broker] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with running_broker(settings, timing=SLOW) as broker:
        task_status.started(broker)
        await trio.sleep_forever()
