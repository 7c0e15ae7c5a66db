"""Captures for people: what ``pyrocket decode`` shows and checks, and what
``pyrocket record`` makes of a packet capture.

A capture is either a JSON Lines file in the golden-vector format (one record
per frame, see :mod:`pyrocket.cli.capture.records`) or a raw byte stream of concatenated
frames (length word first). The two are told apart by the first byte: a JSON
Lines file starts with ``{``, which as a length word would announce a frame
far beyond the 16 MiB limit.

:func:`decode_files` prints every command (code name, request / response /
oneway, opaque, header fields, the body as text when it is text) and, when
checking, re-encodes every frame and every body it has a typed codec for
from its typed values in Java's iteration order, stopping at the first byte
that differs.

:func:`record_capture` turns a pcap / pcapng file (read and reassembled by
:mod:`pyrocket.cli.capture.pcap`) into records of that same format.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from pyrocket.cli.capture.pcap import (
    CaptureError,
    Connection,
    Direction,
    Endpoint,
    StreamData,
    StreamGap,
    reassemble,
)
from pyrocket.cli.capture.records import read_records
from pyrocket.errors import CommandError, ProtocolError, PyrocketError
from pyrocket.protocol.bodies import (
    Bean,
    BrokerData,
    ClusterInfo,
    ConsumerConnection,
    ConsumerData,
    ConsumerOffsetSerializeWrapper,
    ConsumeStats,
    DelayOffsetSerializeWrapper,
    GroupList,
    KVTable,
    LockBatchRequestBody,
    LockBatchResponseBody,
    SubscriptionData,
    SubscriptionGroupWrapper,
    TopicConfigSerializeWrapper,
    TopicList,
    TopicRouteData,
    TopicStatsTable,
    UnlockBatchRequestBody,
)
from pyrocket.protocol.catalog import (
    request_body_codec,
    request_header_type,
    response_body_codec,
    response_header_type,
)
from pyrocket.protocol.codes import LanguageCode, RequestCode, ResponseCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode_payload, encode
from pyrocket.protocol.fastjson import loads as fastjson_loads
from pyrocket.protocol.frame import DEFAULT_MAX_FRAME_SIZE, NEED_DATA, FrameSplitter
from pyrocket.protocol.javahash import (
    MAXIMUM_CAPACITY,
    hashmap_order,
    int_hash,
    long_hash,
    spread,
    string_hash,
    table_size_for,
)

_TEXT_CONTROLS = frozenset("\n\r\t")

# Unicode's control characters (category Cc) other than TAB, LF and CR.
_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

#: The ``client`` of connections whose client frames no Java process wrote.
HANDCRAFTED = "handcrafted"


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """One frame of a capture, with where it came from."""

    source: str
    #: the record's ``seq`` (JSON Lines) or the frame's position (raw stream)
    index: int
    data: bytes
    #: connection and sending end, when the capture says
    conn: str | None = None
    sender: str | None = None
    #: why Java could not parse it, for records marked ``malformed``
    malformed: str | None = None
    #: the connection's client kind, when the capture says (``handcrafted``
    #: marks a client that is no Java process)
    client: str | None = None
    #: a close record (FIN/RST) rather than a frame
    close: str | None = None
    #: an error met while reading the stream itself (raw streams)
    stream_error: ProtocolError | None = None
    #: bytes left over at the end of a raw stream
    trailing: int = 0

    @property
    def where(self) -> str:
        return f"{self.source} record {self.index}"


def read_capture(path: Path) -> Iterator[CapturedFrame]:
    """The frames of a capture file, JSON Lines or raw. Raises OSError for an
    unreadable file and ProtocolError for a JSON Lines line that is no record."""
    data = path.read_bytes()
    if data.lstrip()[:1] == b"{":
        yield from _read_jsonl(path)
    else:
        yield from _read_raw(path.name, data)


def _read_jsonl(path: Path) -> Iterator[CapturedFrame]:
    for record in read_records(path):
        if record.dir == "close":
            yield CapturedFrame(
                path.name,
                record.seq,
                b"",
                record.conn,
                record.sender,
                close=str(record.raw.get("close", "")),
            )
            continue
        malformed = record.raw.get("malformed")
        yield CapturedFrame(
            path.name,
            record.seq,
            record.frame,
            record.conn,
            record.sender,
            malformed=str(malformed) if malformed else None,
            client=record.client or None,
        )


def _read_raw(name: str, data: bytes) -> Iterator[CapturedFrame]:
    splitter = FrameSplitter()
    splitter.feed(data)
    index = 0
    while True:
        try:
            payload = splitter.next_frame()
        except ProtocolError as exc:
            yield CapturedFrame(name, index, b"", stream_error=exc)
            return
        if payload is NEED_DATA:
            break
        assert isinstance(payload, bytes)
        yield CapturedFrame(name, index, len(payload).to_bytes(4, "big") + payload)
        index += 1
    if splitter.buffered:
        yield CapturedFrame(name, index, b"", trailing=splitter.buffered)


@dataclass
class DecodeReport:
    """Counts of what :func:`decode_files` saw."""

    frames: int = 0
    identical: int = 0
    bodies: int = 0
    bodies_identical: int = 0
    undecodable: int = 0
    #: frames of a ``handcrafted`` client, checked in their recorded ext order
    handcrafted: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "frames": self.frames,
            "identical": self.identical,
            "bodies": self.bodies,
            "bodies_identical": self.bodies_identical,
            "handcrafted": self.handcrafted,
        }


class CheckFailed(PyrocketError):
    """Re-encoding gave different bytes (or did not work at all)."""


def decode_files(paths: list[Path], out: TextIO, *, check: bool = False) -> DecodeReport:
    """Print every command of every capture to ``out``.

    With ``check``, re-encode every frame and typed body and raise
    :class:`CheckFailed` at the first difference, naming file and record.
    Frames that do not decode are reported (``undecodable``); with ``check``
    they fail it unless the capture marks them malformed. Raises OSError and
    ProtocolError for files that cannot be read as captures.
    """
    report = DecodeReport()
    for path in paths:
        # Requests by (connection, sender, opaque) so answers find their code.
        pending: dict[tuple[str | None, str | None, int], RemotingCommand] = {}
        for item in read_capture(path):
            _decode_item(item, pending, report, out, check)
    return report


def _decode_item(
    item: CapturedFrame,
    pending: dict[tuple[str | None, str | None, int], RemotingCommand],
    report: DecodeReport,
    out: TextIO,
    check: bool,
) -> None:
    if item.close is not None:
        print(f"{item.where}: {item.conn} closed by {item.sender} ({item.close})", file=out)
        return
    if item.stream_error is not None:
        report.undecodable += 1
        _fail_or_note(report, out, check, f"{item.where}: stream unreadable: {item.stream_error}")
        return
    if item.trailing:
        report.undecodable += 1
        message = f"{item.where}: {item.trailing} bytes of an incomplete frame at the end"
        _fail_or_note(report, out, check, message)
        return
    try:
        command = _decode_frame(item.data)
    except ProtocolError as exc:
        report.undecodable += 1
        if item.malformed is not None:
            print(f"{item.where}: undecodable, as recorded: {exc}", file=out)
            return
        _fail_or_note(report, out, check, f"{item.where}: undecodable: {exc}")
        return
    if item.malformed is not None:
        _fail_or_note(
            report, out, check, f"{item.where}: recorded as malformed but decodes: {command!r}"
        )
        return
    request = _pair(command, item, pending)
    print(describe(item, command, request), file=out)
    report.frames += 1
    if check:
        _check_frame(item, command, request, report)
    _check_body(item, command, request, report, check)


def _decode_frame(frame: bytes) -> RemotingCommand:
    # Through the splitter, as a server reads: the length word is checked the
    # same way (limit, sign) before the payload is parsed.
    splitter = FrameSplitter()
    splitter.feed(frame)
    payload = splitter.next_frame()
    if not isinstance(payload, bytes):
        raise ProtocolError(f"incomplete frame: {len(frame)} bytes", 0)
    if splitter.buffered:
        raise ProtocolError(f"{splitter.buffered} bytes after the frame", len(frame))
    return decode_payload(payload, base_offset=4)


def _pair(
    command: RemotingCommand,
    item: CapturedFrame,
    pending: dict[tuple[str | None, str | None, int], RemotingCommand],
) -> RemotingCommand | None:
    other = {"client": "server", "server": "client"}.get(item.sender or "")
    if command.is_response:
        return pending.pop((item.conn, other, command.opaque), None)
    if not command.is_oneway:
        pending[(item.conn, item.sender, command.opaque)] = command
    return None


def _fail_or_note(report: DecodeReport, out: TextIO, check: bool, message: str) -> None:
    print(message, file=out)
    report.failures.append(message)
    if check:
        raise CheckFailed(message)


def rebuild_ext_fields(
    command: RemotingCommand, request: RemotingCommand | None = None
) -> tuple[dict[str, str] | None, str]:
    """The ext fields a Java process would send for ``command``'s values, in
    the order its ``HashMap`` iterates them, and how they were rebuilt.

    The header class is the one Java picks for the request code (for an
    answer, the code of ``request``). Its fields are parsed into typed values
    and put back as Java's ``makeCustomHeaderToNet`` does, after the keys the
    class does not declare (Java adds those with ``addExtField`` before
    encoding, e.g. an RPC hook's ``AccessKey``/``Signature`` or the broker's
    ``MSG_REGION``); their recorded order stands in for their insertion order,
    which only matters between keys sharing a bucket. With no header class
    for the code, or ext fields the class does not parse, the map is rebuilt
    as a plain ``HashMap<String,String>`` of the recorded strings.
    """
    ext = command.ext_fields
    if ext is None:
        return None, "none"
    if command.is_response:
        header_type = None if request is None else response_header_type(request.code)
    else:
        header_type = request_header_type(command.code)
    if header_type is not None:
        try:
            header = header_type.from_ext_fields(ext)
        except CommandError:
            header = None
        if header is not None:
            declared = set(header_type.wire_names())
            extra = {key: value for key, value in ext.items() if key not in declared}
            return header.to_ext_fields(extra), header_type.__name__
    values = dict(ext)
    return {key: values[key] for key in hashmap_order(values)}, "HashMap<String,String>"


def _check_frame(
    item: CapturedFrame,
    command: RemotingCommand,
    request: RemotingCommand | None,
    report: DecodeReport,
) -> None:
    try:
        if _handcrafted(item):
            # Not written by Java: only the bytes of its own values are checked.
            ext, how = command.ext_fields, "recorded"
            report.handcrafted += 1
        else:
            ext, how = rebuild_ext_fields(command, request)
        again = encode(command.replace(ext_fields=ext))
    except (ProtocolError, CommandError) as exc:
        raise CheckFailed(f"{item.where}: frame does not re-encode: {exc}") from exc
    if again != item.data:
        message = f"{item.where}: frame {_first_difference(item.data, again)}"
        recorded = command.ext_fields
        if ext is not None and recorded is not None and list(ext.items()) != list(recorded.items()):
            message += (
                f"; ext fields as {how} would send them: {', '.join(ext)}"
                f" (recorded: {', '.join(recorded)})"
            )
        raise CheckFailed(message)
    report.identical += 1


def _handcrafted(item: CapturedFrame) -> bool:
    return item.client == HANDCRAFTED and item.sender == "client"


def _check_body(
    item: CapturedFrame,
    command: RemotingCommand,
    request: RemotingCommand | None,
    report: DecodeReport,
    check: bool,
) -> None:
    if command.body is None:
        return
    if command.is_response:
        codec = None if request is None else response_body_codec(request.code)
    else:
        codec = request_body_codec(command.code, command.ext_fields)
    if codec is None or not check:
        return
    report.bodies += 1
    notes: list[str] = []
    try:
        value = codec.decode(command.body)
        if not _handcrafted(item):
            value = java_order(value, notes)
        again = codec.encode(value)
    except ProtocolError as exc:
        raise CheckFailed(f"{item.where}: body ({codec.name}) does not decode: {exc}") from exc
    if again != command.body:
        difference = _first_difference(command.body, again)
        because = "".join(f"; {note}" for note in notes)
        raise CheckFailed(f"{item.where}: body ({codec.name}) {difference}{because}")
    report.bodies_identical += 1


def _first_difference(expected: bytes, actual: bytes) -> str:
    offset = next(
        (i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
        min(len(expected), len(actual)),
    )
    window = slice(max(0, offset - 16), offset + 16)
    return (
        f"differs at byte {offset} (recorded {len(expected)} bytes, re-encoded {len(actual)}): "
        f"recorded {expected[window].hex()} re-encoded {actual[window].hex()}"
    )


def describe(
    item: CapturedFrame, command: RemotingCommand, request: RemotingCommand | None = None
) -> str:
    """A few readable lines for one command."""
    if command.is_response:
        kind = "response"
        name = ResponseCode(command.code).name
        if request is not None:
            name += f" to {RequestCode(request.code).name}"
    else:
        kind = "oneway" if command.is_oneway else "request"
        name = RequestCode(command.code).name
    route = ""
    if item.conn is not None:
        route = f" {item.conn} {item.sender}"
    lines = [
        f"{item.where}{route}: {name} ({command.code}) {kind} opaque={command.opaque} "
        f"flag={command.flag} {command.serialize_type.name} {command.language.name} "
        f"v{command.version}"
    ]
    if command.remark is not None:
        lines.append(f"  remark: {json.dumps(command.remark, ensure_ascii=False)}")
    if command.ext_fields is not None:
        if not command.ext_fields:
            lines.append("  ext: {}")
        for key, value in command.ext_fields.items():
            lines.append(f"  ext {key} = {json.dumps(value, ensure_ascii=False)}")
    if command.body is not None:
        lines.append(f"  body ({len(command.body)} bytes): {_body_text(command.body)}")
    return "\n".join(lines)


def _body_text(body: bytes) -> str:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(ch.isprintable() or ch in _TEXT_CONTROLS for ch in text):
        return text.rstrip("\n").replace("\n", "\n    ")
    preview = body[:48].hex(" ")
    return f"binary {preview}{' ...' if len(body) > 48 else ''}"


# ---------------------------------------------------------------------------
# Recording: packet captures -> JSON Lines records


#: Ports taken as a NameServer's / broker's when nothing else decides
#: (the stock ``listenPort`` values and the broker's fast port).
DEFAULT_NAMESRV_PORTS: Final = frozenset({9876})
DEFAULT_BROKER_PORTS: Final = frozenset({10911, 10909})

# Requests only a NameServer serves, and only a broker serves.
_NAMESRV_CODES: Final = frozenset(
    {
        RequestCode.PUT_KV_CONFIG,
        RequestCode.GET_KV_CONFIG,
        RequestCode.DELETE_KV_CONFIG,
        RequestCode.REGISTER_BROKER,
        RequestCode.UNREGISTER_BROKER,
        RequestCode.GET_ROUTEINFO_BY_TOPIC,
        RequestCode.GET_BROKER_CLUSTER_INFO,
        RequestCode.WIPE_WRITE_PERM_OF_BROKER,
        RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
        RequestCode.DELETE_TOPIC_IN_NAMESRV,
        RequestCode.GET_KVLIST_BY_NAMESPACE,
        RequestCode.GET_TOPICS_BY_CLUSTER,
        RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS,
        RequestCode.GET_UNIT_TOPIC_LIST,
        RequestCode.GET_HAS_UNIT_SUB_TOPIC_LIST,
        RequestCode.GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST,
        RequestCode.UPDATE_NAMESRV_CONFIG,
        RequestCode.GET_NAMESRV_CONFIG,
        RequestCode.QUERY_DATA_VERSION,
    }
)
_BROKER_CODES: Final = frozenset(
    {
        RequestCode.SEND_MESSAGE,
        RequestCode.SEND_MESSAGE_V2,
        RequestCode.SEND_BATCH_MESSAGE,
        RequestCode.PULL_MESSAGE,
        RequestCode.QUERY_CONSUMER_OFFSET,
        RequestCode.UPDATE_CONSUMER_OFFSET,
        RequestCode.UPDATE_AND_CREATE_TOPIC,
        RequestCode.GET_ALL_TOPIC_CONFIG,
        RequestCode.UPDATE_BROKER_CONFIG,
        RequestCode.GET_BROKER_CONFIG,
        RequestCode.GET_BROKER_RUNTIME_INFO,
        RequestCode.GET_MAX_OFFSET,
        RequestCode.GET_MIN_OFFSET,
        RequestCode.HEART_BEAT,
        RequestCode.UNREGISTER_CLIENT,
        RequestCode.CONSUMER_SEND_MSG_BACK,
        RequestCode.GET_CONSUMER_LIST_BY_GROUP,
        RequestCode.GET_ALL_CONSUMER_OFFSET,
        RequestCode.GET_ALL_DELAY_OFFSET,
        RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
        RequestCode.GET_TOPIC_STATS_INFO,
        RequestCode.GET_CONSUME_STATS,
    }
)
# Requests a broker sends as a client: registration, and a slave's sync.
_BROKER_CLIENT_CODES: Final = frozenset(
    {
        RequestCode.REGISTER_BROKER,
        RequestCode.UNREGISTER_BROKER,
        RequestCode.QUERY_DATA_VERSION,
        RequestCode.GET_ALL_TOPIC_CONFIG,
        RequestCode.GET_ALL_CONSUMER_OFFSET,
        RequestCode.GET_ALL_DELAY_OFFSET,
        RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
    }
)
_SEND_CODES: Final = frozenset(
    {RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2, RequestCode.SEND_BATCH_MESSAGE}
)


@dataclass(frozen=True, slots=True)
class RecordOptions:
    """How :func:`record_capture` reads a capture."""

    #: keep going past gaps, trailing bytes and unparsable frames (as warnings)
    lenient: bool = False
    #: ports known to be a NameServer's / a broker's (decide both the server
    #: end and its kind, before anything else)
    namesrv_ports: frozenset[int] = frozenset()
    broker_ports: frozenset[int] = frozenset()
    #: record only connections with an end on one of these ports (all if empty)
    ports: frozenset[int] = frozenset()


@dataclass
class Recording:
    """What :func:`record_capture` made of a capture."""

    records: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Item:
    #: index of the packet that carried the first byte (or the FIN / RST)
    packet: int
    #: (connection, direction, position): the tie-breaker within a packet
    order: tuple[int, int, int]
    sender: Endpoint
    command: RemotingCommand | None = None
    frame: bytes = b""
    malformed: str | None = None
    close: str | None = None


def record_capture(data: bytes, options: RecordOptions | None = None) -> Recording:
    """Turn a pcap / pcapng capture of RocketMQ traffic into vector records.

    Every TCP connection is reassembled per direction and cut into frames with
    the same splitter a server uses; each frame becomes one record in the
    golden-vector format, each FIN / RST one close record. Raises
    :class:`~pyrocket.cli.capture.pcap.CaptureError` for an unreadable capture and, unless
    ``options.lenient``, for a hole in a stream, bytes left after the last
    frame of a direction, or a frame that does not parse; lenient, those are
    listed in :attr:`Recording.warnings` and the rest is recorded.
    """
    options = options or RecordOptions()
    recording = Recording()
    reassembler = reassemble(
        data, lenient=options.lenient, warnings=recording.warnings, ports=options.ports
    )
    times = reassembler.times
    first_ns = min((times[c.first_packet] for c in reassembler.connections), default=0)
    per_connection = [
        [
            item
            for side, direction in enumerate(connection.directions.values())
            for item in _direction_items(connection, side, direction, options, recording)
        ]
        for connection in reassembler.connections
    ]
    roles = _all_roles(reassembler.connections, per_connection, options)
    items = [
        (connection, item)
        for connection, conn_items in zip(reassembler.connections, per_connection, strict=True)
        for item in conn_items
    ]
    items.sort(key=lambda pair: (times[pair[1].packet], pair[1].packet, pair[1].order))
    for seq, (connection, item) in enumerate(items):
        t_ms = round((times[item.packet] - first_ns) / 1_000_000, 3)
        recording.records.append(_record(seq, connection, item, roles[connection.number], t_ms))
    return recording


def _where(connection: Connection, sender: Endpoint) -> str:
    return f"connection c{connection.number} ({_endpoint(sender)} sending)"


def _endpoint(endpoint: Endpoint) -> str:
    host, port = endpoint
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _problem(recording: Recording, options: RecordOptions, message: str) -> None:
    if not options.lenient:
        raise CaptureError(message)
    recording.warnings.append(message)


def _direction_items(
    connection: Connection,
    side: int,
    direction: Direction,
    options: RecordOptions,
    recording: Recording,
) -> list[_Item]:
    cutter = _Cutter(connection, side, direction.sender, options, recording)
    for event in direction.events:
        if isinstance(event, StreamData):
            cutter.data(event.packet, event.data)
        elif isinstance(event, StreamGap):
            cutter.gap(event.size)
        else:
            cutter.end(f"before {event.how}")
            cutter.emit(_Item(event.packet, (0, 0, 0), direction.sender, close=event.how))
    if not direction.closed:
        cutter.end("at the end of the capture")
    return cutter.items


class _Cutter:
    """Cuts one direction's bytes into frames, with the time of the packet
    that carried each frame's first byte."""

    def __init__(
        self,
        connection: Connection,
        side: int,
        sender: Endpoint,
        options: RecordOptions,
        recording: Recording,
    ) -> None:
        self.connection, self.side, self.sender = connection, side, sender
        self.options, self.recording = options, recording
        self.where = _where(connection, sender)
        self.items: list[_Item] = []
        self.splitter = FrameSplitter()
        # Bytes not yet cut into frames, and (stream offset, packet index) of the
        # chunks they came in.
        self.tail = bytearray()
        self.chunks: deque[tuple[int, int]] = deque()
        self.fed = self.consumed = 0
        #: the bytes from a length word the splitter refused, as one record
        self.broken: _Item | None = None
        #: after a gap: looking for a segment that starts like a frame
        self.resync = False
        self.skipped = 0

    def emit(self, item: _Item) -> None:
        item.order = (self.connection.number, self.side, len(self.items))
        if self.items:
            # A frame whose first byte arrived early (out of order) still
            # comes after the frames before it in the stream.
            item.packet = max(item.packet, self.items[-1].packet)
        self.items.append(item)

    def problem(self, message: str) -> None:
        _problem(self.recording, self.options, f"{self.where}: {message}")

    def data(self, packet: int, data: bytes) -> None:
        if self.resync:
            if not _looks_like_a_frame_start(data):
                self.skipped += len(data)
                self.fed += len(data)
                return
            if self.skipped:
                self.recording.warnings.append(
                    f"{self.where}: skipped {self.skipped} bytes after the gap, up to the "
                    f"segment at stream byte {self.fed} that starts like a frame"
                )
            self.resync, self.skipped = False, 0
            self.consumed = self.fed
        self.chunks.append((self.fed, packet))
        self.fed += len(data)
        if self.broken is not None:
            self.broken.frame += data
            return
        self.tail += data
        self.splitter.feed(data)
        while True:
            start = self.consumed
            while len(self.chunks) > 1 and self.chunks[1][0] <= start:
                self.chunks.popleft()
            first_packet = self.chunks[0][1]
            try:
                payload = self.splitter.next_frame()
            except ProtocolError as exc:
                self.problem(f"stream byte {start}: {exc}")
                self.recording.warnings.append(
                    f"{self.where}: the bytes from stream byte {start} up to the next gap or "
                    "close are recorded as one malformed frame"
                )
                self.broken = _Item(
                    first_packet, (0, 0, 0), self.sender, frame=bytes(self.tail), malformed=str(exc)
                )
                self.emit(self.broken)
                return
            if payload is NEED_DATA:
                return
            assert isinstance(payload, bytes)
            frame = len(payload).to_bytes(4, "big") + payload
            self.consumed += len(frame)
            del self.tail[: len(frame)]
            item = _Item(first_packet, (0, 0, 0), self.sender, frame=frame)
            try:
                item.command = decode_payload(payload, base_offset=4)
            except ProtocolError as exc:
                self.problem(f"stream byte {start}: {exc}")
                item.malformed = str(exc)
            self.emit(item)

    def gap(self, size: int) -> None:
        self.problem(f"{size} bytes missing from the capture after stream byte {self.fed}")
        if self.splitter.buffered and self.broken is None:
            self.recording.warnings.append(
                f"{self.where}: dropped {self.splitter.buffered} bytes of a frame cut by the gap"
            )
        # Cutting resumes at the first segment after the hole that starts
        # like a frame: a writer flushes each frame into fresh segments, so
        # frames mostly begin at a segment's first byte.
        self.fed += size
        self.consumed = self.fed
        self.splitter = FrameSplitter()
        self.tail.clear()
        self.chunks.clear()
        self.broken = None
        self.resync = True

    def end(self, when: str) -> None:
        if self.splitter.buffered and self.broken is None:
            self.problem(f"{self.splitter.buffered} bytes of an incomplete frame {when}")
        if self.skipped:
            self.recording.warnings.append(
                f"{self.where}: skipped {self.skipped} bytes after the gap, {when}"
            )
            self.skipped = 0


def _looks_like_a_frame_start(data: bytes) -> bool:
    """A sane length word, serialize type and header length, and a header
    that starts as one of that type does."""
    if len(data) < 9:
        return False
    length = int.from_bytes(data[:4], "big", signed=True)
    kind, header_length = data[4], int.from_bytes(data[5:8], "big")
    if not 4 <= length <= DEFAULT_MAX_FRAME_SIZE - 4 or header_length > length - 4:
        return False
    if kind == SerializeType.JSON:
        return data[8:9] == b"{"
    # ROCKETMQ: code, language, version, opaque, flag, remark and ext lengths.
    return kind == SerializeType.ROCKETMQ and header_length >= 21


@dataclass(frozen=True, slots=True)
class _Roles:
    client: Endpoint
    server: Endpoint
    client_kind: str
    server_kind: str


def _all_roles(
    connections: list[Connection], items: list[list[_Item]], options: RecordOptions
) -> dict[int, _Roles]:
    """Who is client and server on each connection, and what they are.

    A server endpoint's kind follows from the requests of every connection
    to it, and an endpoint's language from the first frame it sent on any.
    """
    ends = [_ends(c, conn_items, options) for c, conn_items in zip(connections, items, strict=True)]
    languages: dict[Endpoint, str] = {}
    requests_to: dict[Endpoint, list[RemotingCommand]] = {}
    requests_from: list[list[RemotingCommand]] = []
    for (client, server), conn_items in zip(ends, items, strict=True):
        sent: list[RemotingCommand] = []
        for item in conn_items:
            if item.command is None:
                continue
            language = LanguageCode(item.command.language).name.lower()
            languages.setdefault(item.sender, language)
            if item.sender == client and not item.command.is_response:
                sent.append(item.command)
        requests_from.append(sent)
        requests_to.setdefault(server, []).extend(sent)
    roles = {}
    for connection, (client, server), sent in zip(connections, ends, requests_from, strict=True):
        server_kind = _server_kind(server[1], requests_to[server], options)
        roles[connection.number] = _Roles(
            client,
            server,
            f"{languages.get(client, 'unknown')}-{_client_kind(sent)}",
            f"{languages.get(server, 'unknown')}-{server_kind}",
        )
    return roles


def _ends(
    connection: Connection, items: list[_Item], options: RecordOptions
) -> tuple[Endpoint, Endpoint]:
    """(client, server) of a connection."""
    a, b = connection.first, connection.second
    server_ports = (
        options.namesrv_ports | options.broker_ports | DEFAULT_NAMESRV_PORTS | DEFAULT_BROKER_PORTS
    )
    if connection.syn_from is not None:
        client = connection.syn_from
    elif connection.syn_ack_from is not None:
        client = b if connection.syn_ack_from == a else a
    elif (a[1] in server_ports) != (b[1] in server_ports):
        client = b if a[1] in server_ports else a
    else:
        first_request = next(
            (i.sender for i in items if i.command is not None and not i.command.is_response), a
        )
        client = first_request
    return client, b if client == a else a


def _server_kind(port: int, requests: list[RemotingCommand], options: RecordOptions) -> str:
    if port in options.namesrv_ports:
        return "namesrv"
    if port in options.broker_ports:
        return "broker"
    codes = {c.code for c in requests}
    if codes & _NAMESRV_CODES and not codes & _BROKER_CODES:
        return "namesrv"
    if codes & _BROKER_CODES and not codes & _NAMESRV_CODES:
        return "broker"
    if port in DEFAULT_NAMESRV_PORTS:
        return "namesrv"
    if port in DEFAULT_BROKER_PORTS:
        return "broker"
    return "server"


def _client_kind(requests: list[RemotingCommand]) -> str:
    codes = {c.code for c in requests}
    if any("AccessKey" in (c.ext_fields or {}) for c in requests):
        # mqadmin signs every request (its stock tools.yml credentials); so
        # would any client with ACL credentials.
        return "mqadmin"
    if codes & _BROKER_CLIENT_CODES:
        return "broker"
    for command in requests:
        if command.code == RequestCode.HEART_BEAT and command.body:
            consume_types = _consume_types(command.body)
            if "CONSUME_PASSIVELY" in consume_types:
                return "push-consumer"
            if "CONSUME_ACTIVELY" in consume_types:
                return "pull-consumer"
    if codes & {RequestCode.PULL_MESSAGE}:
        return "consumer"
    if codes & _SEND_CODES or RequestCode.HEART_BEAT in codes:
        return "producer"
    return "client"


def _consume_types(body: bytes) -> set[str]:
    try:
        value = fastjson_loads(body)
    except ProtocolError:
        return set()
    consumers = value.get("consumerDataSet") if isinstance(value, dict) else None
    if not isinstance(consumers, list):
        return set()
    return {str(c.get("consumeType")) for c in consumers if isinstance(c, dict)}


def _record(
    seq: int, connection: Connection, item: _Item, roles: _Roles, t_ms: float
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "seq": seq,
        "conn": f"c{connection.number}",
        "client": roles.client_kind,
        "server": roles.server_kind,
        "client_port": roles.client[1],
        "server_port": roles.server[1],
    }
    sender = "client" if item.sender == roles.client else "server"
    if item.close is not None:
        record.update(dir="close", sender=sender, t_ms=t_ms, close=item.close)
        return record
    command = item.command
    if command is None:
        serialize = {0: "JSON", 1: "ROCKETMQ"}.get(item.frame[4]) if len(item.frame) > 4 else None
        record.update(
            dir="request",
            sender=sender,
            t_ms=t_ms,
            serialize=serialize,
            code=None,
            opaque=None,
            flag=None,
            oneway=None,
            header=None,
            header_text=None,
            body_b64=None,
            body_text=None,
            frame_hex=item.frame.hex(),
            malformed=item.malformed,
        )
        return record
    record.update(frame_fields(item.frame, command))
    record["t_ms"] = t_ms
    record["sender"] = sender
    # Keep the vectors' key order: dir, sender, t_ms right after the ports.
    ordered = {
        k: record[k]
        for k in (
            "seq",
            "conn",
            "client",
            "server",
            "client_port",
            "server_port",
            "dir",
            "sender",
            "t_ms",
        )
    }
    ordered.update((k, v) for k, v in record.items() if k not in ordered)
    return ordered


def frame_fields(frame: bytes, command: RemotingCommand) -> dict[str, Any]:
    """The per-frame keys of a vector record (``dir``, ``serialize`` ...
    ``frame_hex``) for a frame and the command it decodes to."""
    header_length = int.from_bytes(frame[5:8], "big")
    header_bytes = frame[8 : 8 + header_length]
    header: Any
    if command.serialize_type == SerializeType.JSON:
        header_text: str | None = header_bytes.decode("utf-8", "replace")
        # As the decoder reads it (bad UTF-8 replaced); it parsed there.
        header = json.loads(header_text or "")
    else:
        header_text = None
        header = {
            "code": command.code,
            "language": LanguageCode(command.language).name,
            "version": command.version,
            "opaque": command.opaque,
            "flag": command.flag,
            "remark": command.remark,
            "extFields": None if command.ext_fields is None else dict(command.ext_fields),
        }
    body = command.body
    return {
        "dir": "response" if command.is_response else "request",
        "serialize": SerializeType(command.serialize_type).name,
        "code": command.code,
        "opaque": command.opaque,
        "flag": command.flag,
        "oneway": command.is_oneway,
        "header": header,
        "header_text": header_text,
        "body_b64": None if body is None else base64.b64encode(body).decode("ascii"),
        "body_text": None if body is None else _vector_body_text(body),
        "frame_hex": frame.hex(),
    }


def _vector_body_text(body: bytes) -> str | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(text) else text


# ---------------------------------------------------------------------------
# Java's iteration order inside bodies


@dataclass(frozen=True, slots=True)
class _Hashed:
    """A Java hash-based collection inside a body: a map (``HashMap`` or
    ``ConcurrentHashMap``, which iterate alike: by bucket, the bucket being
    the low bits of the spread hash) or a ``HashSet``, with how its keys hash
    and, for maps of collections, what the values are."""

    java: str
    hasher: Callable[[Any], int]
    values: _Hashed | None = None


def _nullable(hasher: Callable[[Any], int]) -> Callable[[Any], int]:
    # Java's HashMap puts a null key in bucket 0.
    return lambda key: 0 if key is None else hasher(key)


_STRING: Final = _nullable(string_hash)
_MQ: Final = _nullable(lambda mq: mq.java_hash_code())

#: (bean, property) -> the Java collection behind it, for the bodies whose
#: Java type is a hash map or hash set with keys of a known hashCode. Lists,
#: TreeMaps, Hashtables (Properties) and sets of beans without a hashCode
#: (ProducerData, ConsumerData, Connection) are not listed: their order is
#: taken as recorded. One list is: a route's brokerDatas, which the NameServer
#: fills by walking a HashSet of broker names.
_HASHED: Final[dict[tuple[type[Bean], str], _Hashed]] = {
    (BrokerData, "brokerAddrs"): _Hashed("HashMap<Long,String>", long_hash),
    (TopicRouteData, "filterServerTable"): _Hashed("HashMap<String,List>", _STRING),
    # A list, filled by walking a fresh HashSet of the topic's broker names.
    (TopicRouteData, "brokerDatas"): _Hashed(
        "HashSet<String> of broker names", lambda bd: _STRING(bd.broker_name)
    ),
    (ClusterInfo, "brokerAddrTable"): _Hashed("HashMap<String,BrokerData>", _STRING),
    (ClusterInfo, "clusterAddrTable"): _Hashed(
        "HashMap<String,Set>", _STRING, _Hashed("HashSet<String>", _STRING)
    ),
    (KVTable, "table"): _Hashed("HashMap<String,String>", _STRING),
    (TopicList, "topicList"): _Hashed("HashSet<String>", _STRING),
    (GroupList, "groupList"): _Hashed("HashSet<String>", _STRING),
    (TopicConfigSerializeWrapper, "topicConfigTable"): _Hashed(
        "ConcurrentHashMap<String,TopicConfig>", _STRING
    ),
    (SubscriptionGroupWrapper, "subscriptionGroupTable"): _Hashed(
        "ConcurrentHashMap<String,SubscriptionGroupConfig>", _STRING
    ),
    (ConsumerOffsetSerializeWrapper, "offsetTable"): _Hashed(
        "ConcurrentHashMap<String,ConcurrentMap>",
        _STRING,
        _Hashed("ConcurrentHashMap<Integer,Long>", int_hash),
    ),
    (DelayOffsetSerializeWrapper, "offsetTable"): _Hashed(
        "ConcurrentHashMap<Integer,Long>", int_hash
    ),
    (TopicStatsTable, "offsetTable"): _Hashed("HashMap<MessageQueue,TopicOffset>", _MQ),
    (ConsumeStats, "offsetTable"): _Hashed("HashMap<MessageQueue,OffsetWrapper>", _MQ),
    (ConsumerConnection, "subscriptionTable"): _Hashed(
        "ConcurrentHashMap<String,SubscriptionData>", _STRING
    ),
    (ConsumerData, "subscriptionDataSet"): _Hashed(
        "HashSet<SubscriptionData>", lambda sd: sd.java_hash_code()
    ),
    (SubscriptionData, "tagsSet"): _Hashed("HashSet<String>", _STRING),
    (SubscriptionData, "codeSet"): _Hashed("HashSet<Integer>", int_hash),
    (LockBatchRequestBody, "mqSet"): _Hashed("HashSet<MessageQueue>", _MQ),
    (UnlockBatchRequestBody, "mqSet"): _Hashed("HashSet<MessageQueue>", _MQ),
    (LockBatchResponseBody, "lockOKMQSet"): _Hashed("HashSet<MessageQueue>", _MQ),
}


def java_order(value: Any, notes: list[str] | None = None, path: str = "body") -> Any:
    """``value`` (a decoded body) with every hash map and hash set whose Java
    type is known (see ``_HASHED``) put in an order a Java one iterates in.

    The recorded order is kept when it is one: sorted by bucket for some
    power-of-two table size at least the one its size needs at load factor
    0.75 (a table never shrinks, and within a bucket any insertion order
    may have happened). Otherwise the keys are sorted into the buckets of the
    smallest such table, which is not the recorded order, and ``notes`` gets
    a line naming the collection.
    """
    if not isinstance(value, Bean):
        return value
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(value):  # type: ignore[arg-type]
        wire = f.metadata.get("wire", f.name)
        item = getattr(value, f.name)
        if item is None:
            continue
        where = f"{path}.{wire}"
        rebuilt = _walk(item, _HASHED.get((type(value), wire)), notes, where)
        if rebuilt is not item:
            changes[f.name] = rebuilt
    return dataclasses.replace(value, **changes) if changes else value  # type: ignore[type-var]


def _walk(item: Any, hashed: _Hashed | None, notes: list[str] | None, where: str) -> Any:
    if isinstance(item, Bean):
        return java_order(item, notes, where)
    if isinstance(item, Mapping):
        values = hashed.values if hashed is not None else None
        walked = {k: _walk(v, values, notes, f"{where}[{k!r}]") for k, v in item.items()}
        if hashed is not None:
            keys = _bucket_order(list(walked), hashed, notes, where)
            return {k: walked[k] for k in keys}
        changed = any(walked[k] is not v for k, v in item.items())
        return walked if changed else item
    if isinstance(item, tuple):
        walked_items = [_walk(v, None, notes, f"{where}[{i}]") for i, v in enumerate(item)]
        if hashed is not None:
            return tuple(_bucket_order(walked_items, hashed, notes, where))
        changed = any(a is not b for a, b in zip(walked_items, item, strict=True))
        return tuple(walked_items) if changed else item
    return item


def _bucket_order(
    keys: list[Any], hashed: _Hashed, notes: list[str] | None, where: str
) -> list[Any]:
    spreads = [spread(hashed.hasher(key)) for key in keys]
    smallest = max(1, table_size_for(-(-len(keys) * 4 // 3)))
    size = smallest
    while size <= MAXIMUM_CAPACITY:
        mask = size - 1
        buckets = [s & mask for s in spreads]
        if all(a <= b for a, b in itertools.pairwise(buckets)):
            return keys
        size <<= 1
    if notes is not None:
        notes.append(f"{where}: no Java {hashed.java} iterates its {len(keys)} keys in this order")
    mask = smallest - 1
    order = sorted(range(len(keys)), key=lambda i: spreads[i] & mask)
    return [keys[i] for i in order]
