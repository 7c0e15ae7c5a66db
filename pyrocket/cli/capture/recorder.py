"""Recording: a pcap / pcapng file (read and reassembled by
:mod:`pyrocket.cli.capture.pcap`) turned into records of the golden-vector
format. Owns the options, the stream cutter that cuts each direction into
frames, and the record a frame becomes; who is client and server comes from
:mod:`pyrocket.cli.capture.roles`.
"""

from __future__ import annotations

import base64
import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from pyrocket.cli.capture.pcap import (
    CaptureError,
    Connection,
    Direction,
    Endpoint,
    StreamData,
    StreamGap,
    reassemble,
)
from pyrocket.cli.capture.roles import Roles, all_roles
from pyrocket.errors import ProtocolError
from pyrocket.protocol.codes import LanguageCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode_payload
from pyrocket.protocol.frame import DEFAULT_MAX_FRAME_SIZE, NEED_DATA, FrameSplitter

# Unicode's control characters (category Cc) other than TAB, LF and CR.
_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


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
    roles = all_roles(reassembler.connections, per_connection, options)
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


def _record(
    seq: int, connection: Connection, item: _Item, roles: Roles, t_ms: float
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
