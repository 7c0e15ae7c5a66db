"""``pyrocket record``: pcap / pcapng captures written here, byte by byte, from
known frames, read back into vector records.

The packets are built by hand with struct (Ethernet / Linux cooked / loopback
/ raw links, IPv4 and IPv6 with an extension header, TCP), independently of
the reader under test.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrocket.cli import main
from pyrocket.cli.capture import RecordOptions, frame_fields, record_capture
from pyrocket.cli.capture.pcap import CaptureError
from pyrocket.errors import ProtocolError
from pyrocket.protocol.codes import RequestCode, ResponseCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.headers import GetRouteInfoRequestHeader, PutKVConfigRequestHeader
from tests.vectorset import Record, iter_all_records, read_records, scenario_files

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# ---------------------------------------------------------------------------
# Writing packets and capture files


def _tcp(sport: int, dport: int, seq: int, flags: int, payload: bytes) -> bytes:
    # Checksums stay zero, as with checksum offloading on the loopback.
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload


def _ipv4(src: str, dst: str, segment: bytes) -> bytes:
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(segment),
        1,
        0x4000,  # don't fragment
        64,
        6,
        0,
        bytes(int(x) for x in src.split(".")),
        bytes(int(x) for x in dst.split(".")),
    )
    return head + segment


def _ipv6(src: int, dst: int, segment: bytes) -> bytes:
    # A hop-by-hop options header (8 bytes of PadN) before TCP.
    hop_by_hop = bytes([6, 0, 1, 4, 0, 0, 0, 0])
    payload = hop_by_hop + segment
    head = struct.pack("!IHBB", 6 << 28, len(payload), 0, 64)
    return head + src.to_bytes(16, "big") + dst.to_bytes(16, "big") + payload


def _link(linktype: int, ip: bytes) -> bytes:
    version = ip[0] >> 4
    ethertype = 0x0800 if version == 4 else 0x86DD
    if linktype == 1:  # Ethernet, with a VLAN tag on IPv6 for good measure
        macs = bytes(range(12))
        if version == 6:
            return macs + struct.pack("!HHH", 0x8100, 7, ethertype) + ip
        return macs + struct.pack("!H", ethertype) + ip
    if linktype == 113:  # Linux cooked
        return struct.pack("!HHH8sH", 0, 772, 6, bytes(8), ethertype) + ip
    if linktype == 276:  # Linux cooked v2
        return struct.pack("!HHIHBB8s", ethertype, 0, 1, 772, 0, 6, bytes(8)) + ip
    if linktype == 0:  # BSD null: the family in host (here little-endian) order
        return struct.pack("<I", 2 if version == 4 else 30) + ip
    if linktype == 101:  # raw IP
        return ip
    raise AssertionError(linktype)


def _pcap(packets: list[tuple[int, bytes]], linktype: int, order: str, nanos: bool) -> bytes:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for t_ns, data in packets:
        fraction = t_ns % 1_000_000_000 if nanos else (t_ns % 1_000_000_000) // 1000
        out.append(
            struct.pack(order + "IIII", t_ns // 1_000_000_000, fraction, len(data), len(data))
        )
        out.append(data)
    return b"".join(out)


def _block(order: str, block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def _pcapng(
    packets: list[tuple[int, bytes]], linktype: int, order: str, simple: bool = False
) -> bytes:
    shb = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    # Nanosecond stamps (if_tsresol 9), then the end-of-options marker.
    options = (
        struct.pack(order + "HH", 9, 1) + b"\x09\x00\x00\x00" + struct.pack(order + "HH", 0, 0)
    )
    idb = _block(order, 1, struct.pack(order + "HHI", linktype, 0, 262144) + options)
    out = [shb, _block(order, 5, b"statistics block, skipped"), idb]
    for t_ns, data in packets:
        if simple:  # simple packet blocks: no interface id, no time stamp
            out.append(_block(order, 3, struct.pack(order + "I", len(data)) + data))
            continue
        head = struct.pack(order + "IIIII", 0, t_ns >> 32, t_ns & 0xFFFFFFFF, len(data), len(data))
        out.append(_block(order, 6, head + data))
    return b"".join(out)


@dataclass(frozen=True)
class Format:
    name: str
    linktype: int
    ipv6: bool
    write: Callable[[list[tuple[int, bytes]], int], bytes]
    timed: bool = True


FORMATS = [
    Format("pcap-le-us-ethernet-ipv4", 1, False, lambda p, lt: _pcap(p, lt, "<", False)),
    Format("pcap-be-ns-sll-ipv6", 113, True, lambda p, lt: _pcap(p, lt, ">", True)),
    Format("pcap-le-ns-raw-ipv4", 101, False, lambda p, lt: _pcap(p, lt, "<", True)),
    Format("pcapng-le-sll2-ipv4", 276, False, lambda p, lt: _pcapng(p, lt, "<")),
    Format("pcapng-be-ethernet-ipv6", 1, True, lambda p, lt: _pcapng(p, lt, ">")),
    Format("pcapng-le-null-ipv6", 0, True, lambda p, lt: _pcapng(p, lt, "<")),
    Format("pcapng-spb-raw-ipv6", 101, True, lambda p, lt: _pcapng(p, lt, "<", True), False),
]


@dataclass
class Capture:
    """A conversation written as packets: each end has its sequence number."""

    fmt: Format = FORMATS[0]
    packets: list[tuple[int, bytes]] = field(default_factory=list)
    hosts: dict[int, str | int] = field(default_factory=dict)
    seqs: dict[tuple[int, int], int] = field(default_factory=dict)
    t_ns: int = 1_790_000_000_000_000_000
    #: time between two packets
    step_ns: int = 1_000_000

    def host(self, port: int) -> str | int:
        return self.hosts.setdefault(
            port, 0x20010DB8 << 96 | port if self.fmt.ipv6 else "127.0.0.1"
        )

    def packet(self, src: int, dst: int, seq: int, flags: int, payload: bytes = b"") -> None:
        segment = _tcp(src, dst, seq & 0xFFFFFFFF, flags, payload)
        a, b = self.host(src), self.host(dst)
        if isinstance(a, int) and isinstance(b, int):
            ip = _ipv6(a, b, segment)
        else:
            assert isinstance(a, str) and isinstance(b, str)
            ip = _ipv4(a, b, segment)
        self.packets.append((self.t_ns, _link(self.fmt.linktype, ip)))
        self.t_ns += self.step_ns

    def handshake(self, client: int, server: int, isn: int = 1000) -> None:
        up, down = (client, server), (server, client)
        self.seqs[up], self.seqs[down] = isn, 0xFFFFFF00  # the server's wraps around
        self.packet(client, server, self.seqs[up], SYN)
        self.packet(server, client, self.seqs[down], SYN | ACK)
        self.seqs[up] += 1
        self.seqs[down] += 1
        self.packet(client, server, self.seqs[up], ACK)

    def segments(self, src: int, dst: int, data: bytes, size: int) -> list[tuple[int, bytes]]:
        """``data`` cut into segments of ``size`` (not sent); advances seq."""
        start = self.seqs.setdefault((src, dst), 5000)
        self.seqs[(src, dst)] = start + len(data)
        return [(start + i, data[i : i + size]) for i in range(0, len(data), size)]

    def send(self, src: int, dst: int, data: bytes, size: int = 1460) -> None:
        for seq, chunk in self.segments(src, dst, data, size):
            self.packet(src, dst, seq, PSH | ACK, chunk)

    def close(self, src: int, dst: int, flags: int = FIN | ACK) -> None:
        seq = self.seqs.setdefault((src, dst), 5000)
        self.packet(src, dst, seq, flags)
        if flags & FIN:
            self.seqs[(src, dst)] += 1

    def file(self, tmp_path: Path, name: str = "capture.pcap") -> Path:
        path = tmp_path / name
        path.write_bytes(self.fmt.write(self.packets, self.fmt.linktype))
        return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    assert isinstance(info.value.code, int)
    return info.value.code, captured.out, captured.err


def _records(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------------------
# Known frames

ROUTE = RemotingCommand.request(
    RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader("TopicTest"), opaque=7
)
ROUTE_ANSWER = RemotingCommand.response(
    ResponseCode.TOPIC_NOT_EXIST, "No topic route info in name server for the topic: TopicTest"
).answering(ROUTE)
PUT_KV = RemotingCommand.request(
    RequestCode.PUT_KV_CONFIG,
    PutKVConfigRequestHeader("ns", "k", "v" * 3000),  # spans segments
    oneway=True,
    opaque=8,
    serialize_type=SerializeType.ROCKETMQ,
)


def _conversation(fmt: Format) -> tuple[Capture, list[tuple[str, bytes]]]:
    """A client (port 40001) asks a NameServer (9876) for a route, the answer
    comes back, then a ROCKETMQ oneway whose segments arrive out of order,
    retransmitted and overlapping; both ends close."""
    capture = Capture(fmt)
    capture.handshake(40001, 9876)
    route = encode(ROUTE)
    # The request in three segments: the second arrives first; the first is
    # sent twice (a retransmission).
    parts = capture.segments(40001, 9876, route, 40)
    for seq, chunk in (parts[1], parts[0], parts[0], *parts[2:]):
        capture.packet(40001, 9876, seq, PSH | ACK, chunk)
    capture.send(9876, 40001, encode(ROUTE_ANSWER))
    put = encode(PUT_KV)
    parts = capture.segments(40001, 9876, put, 1000)
    last_seq, last = parts[-1]
    # The last segment first, then one overlapping the first two, then all.
    capture.packet(40001, 9876, last_seq, PSH | ACK, last)
    capture.packet(40001, 9876, parts[0][0] + 500, PSH | ACK, put[500:1500])
    for seq, chunk in parts:
        capture.packet(40001, 9876, seq, PSH | ACK, chunk)
    capture.close(40001, 9876)
    capture.close(9876, 40001)
    expected = [("client", route), ("server", encode(ROUTE_ANSWER)), ("client", put)]
    return capture, expected


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.name for f in FORMATS])
def test_records_of_known_frames(
    fmt: Format, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture, expected = _conversation(fmt)
    status, out, err = _run(["record", str(capture.file(tmp_path))], capsys)
    assert status == 0, err
    records = _records(out)
    frames = [r for r in records if r["dir"] != "close"]
    assert [(r["sender"], bytes.fromhex(str(r["frame_hex"]))) for r in frames] == expected
    assert [r["seq"] for r in records] == list(range(len(records)))
    for record in records:
        assert record["conn"] == "c0"
        assert record["client_port"] == 40001 and record["server_port"] == 9876
        assert record["server"] == "java-namesrv"
        assert record["client"] == "java-client"
    for record, (_, frame) in zip(frames, expected, strict=True):
        fields = frame_fields(frame, decode(frame))
        assert {k: record[k] for k in fields} == fields
    assert [r["dir"] for r in frames] == ["request", "response", "request"]
    assert frames[2]["oneway"] is True and frames[2]["serialize"] == "ROCKETMQ"
    assert frames[0]["serialize"] == "JSON" and frames[0]["header_text"] is not None
    closes = [(r["sender"], r["close"]) for r in records if r["dir"] == "close"]
    assert closes == [("client", "FIN"), ("server", "FIN")]
    # t_ms: from the first packet (the SYN), to the packet carrying each
    # frame's first byte (1 ms per packet): the request's first byte came in
    # the 5th packet (after the handshake and the out-of-order segment).
    assert frames[0]["t_ms"] == (4.0 if fmt.timed else 0.0)
    assert "3 frames, 2 close records, 1 connections" in err
    # What was recorded passes decode --check.
    path = tmp_path / "recorded.jsonl"
    path.write_text(out)
    status, out, err = _run(["decode", "--check", str(path)], capsys)
    assert status == 0, err
    assert json.loads(out.splitlines()[-1])["identical"] == len(expected)


def test_gap_is_an_error_unless_lenient(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = Capture()
    capture.handshake(40002, 10911)
    first, second, third = (
        encode(ROUTE.replace(opaque=n, ext_fields={"topic": f"T{n}"})) for n in (1, 2, 3)
    )
    capture.send(40002, 10911, first)
    lost = capture.segments(40002, 10911, second, 1460)  # never sent
    capture.send(40002, 10911, third)
    capture.close(40002, 10911)
    path = capture.file(tmp_path)
    status, out, err = _run(["record", str(path)], capsys)
    assert status == 1 and out == ""
    assert f"{len(second)} bytes missing from the capture after stream byte {len(first)}" in err
    assert lost
    status, out, err = _run(["record", "--lenient", str(path)], capsys)
    assert status == 0
    assert "warning:" in err and "bytes missing" in err
    frames = [bytes.fromhex(str(r["frame_hex"])) for r in _records(out) if r["dir"] != "close"]
    assert frames == [first, third]


def test_gap_inside_a_frame_drops_that_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = Capture()
    capture.handshake(40003, 9876)
    frame = encode(PUT_KV)
    parts = capture.segments(40003, 9876, frame, 1000)
    for seq, chunk in parts[:1] + parts[2:]:
        capture.packet(40003, 9876, seq, PSH | ACK, chunk)
    after = encode(ROUTE)
    capture.send(40003, 9876, after)
    capture.close(40003, 9876)
    path = capture.file(tmp_path)
    with pytest.raises(CaptureError, match="bytes missing"):
        record_capture(path.read_bytes())
    recording = record_capture(path.read_bytes(), RecordOptions(lenient=True))
    assert any("dropped 1000 bytes of a frame cut by the gap" in w for w in recording.warnings)
    # The rest of the cut frame is skipped; cutting resumes at the segment
    # that starts the next frame.
    skipped = len(frame) - 2000
    assert any(f"skipped {skipped} bytes after the gap" in w for w in recording.warnings)
    frames = [r["frame_hex"] for r in recording.records if r["dir"] != "close"]
    assert frames == [after.hex()]


def test_trailing_bytes_are_an_error_unless_lenient(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = Capture()
    capture.handshake(40004, 9876)
    capture.send(40004, 9876, encode(ROUTE) + b"\x00\x00\x01")
    capture.close(40004, 9876)
    path = capture.file(tmp_path)
    status, out, err = _run(["record", str(path)], capsys)
    assert status == 1 and out == ""
    assert "3 bytes of an incomplete frame before FIN" in err
    status, out, err = _run(["record", "--lenient", str(path)], capsys)
    assert status == 0 and "warning:" in err
    records = _records(out)
    assert [r["dir"] for r in records] == ["request", "close"]
    # Without a FIN the leftover bytes are reported at the end of the capture.
    capture = Capture()
    capture.handshake(40005, 9876)
    capture.send(40005, 9876, encode(ROUTE)[:-1])
    with pytest.raises(CaptureError, match="incomplete frame at the end of the capture"):
        record_capture(capture.fmt.write(capture.packets, capture.fmt.linktype))


def test_unparsable_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = Capture()
    capture.handshake(40006, 9876)
    bad = encode(ROUTE)
    bad = bad[:4] + b"\x09" + bad[5:]  # serialize type 9
    capture.send(40006, 9876, bad)
    capture.send(40006, 9876, encode(ROUTE))
    path = capture.file(tmp_path)
    status, _, err = _run(["record", str(path)], capsys)
    assert status == 1 and "unknown serialize type 9" in err
    status, out, err = _run(["record", "--lenient", str(path)], capsys)
    assert status == 0
    first, second = _records(out)
    assert first["malformed"] and "unknown serialize type 9" in str(first["malformed"])
    assert first["code"] is None and first["frame_hex"] == bad.hex()
    assert second["code"] == RequestCode.GET_ROUTEINFO_BY_TOPIC
    # decode --check accepts frames recorded as malformed.
    path = tmp_path / "recorded.jsonl"
    path.write_text(out)
    status, out, err = _run(["decode", "--check", str(path)], capsys)
    assert status == 0, err


def test_server_end_without_a_handshake(capsys: pytest.CaptureFixture[str]) -> None:
    # Capture started mid-connection, server on an unusual port: the end that
    # sent the first request is the client; --broker-port names the kind.
    capture = Capture()
    capture.send(31000, 45000, encode(ROUTE))
    capture.send(45000, 31000, encode(ROUTE_ANSWER))
    data = capture.fmt.write(capture.packets, capture.fmt.linktype)
    records = record_capture(data).records
    assert [(r["sender"], r["dir"]) for r in records] == [
        ("client", "request"),
        ("server", "response"),
    ]
    assert records[0]["client_port"] == 31000 and records[0]["server_port"] == 45000
    assert records[0]["server"] == "java-namesrv"  # a NameServer-only code
    options = RecordOptions(broker_ports=frozenset({45000}))
    assert record_capture(data, options).records[0]["server"] == "java-broker"
    # A well-known port decides before the first frame does: the answer is
    # captured first here (the request was missed).
    capture = Capture()
    capture.send(9876, 45001, encode(ROUTE_ANSWER))
    records = record_capture(capture.fmt.write(capture.packets, 1)).records
    assert records[0]["sender"] == "server" and records[0]["server_port"] == 9876


def test_reset_and_port_reuse() -> None:
    capture = Capture()
    capture.handshake(40007, 9876)
    capture.send(40007, 9876, encode(ROUTE))
    capture.close(40007, 9876, RST)
    capture.handshake(40007, 9876, isn=777)
    capture.send(40007, 9876, encode(ROUTE))
    capture.close(40007, 9876)
    capture.close(9876, 40007)
    records = record_capture(capture.fmt.write(capture.packets, 1)).records
    assert [(r["conn"], r["dir"], r.get("close")) for r in records] == [
        ("c0", "request", None),
        ("c0", "close", "RST"),
        ("c1", "request", None),
        ("c1", "close", "FIN"),
        ("c1", "close", "FIN"),
    ]


def test_not_a_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "not.pcap"
    path.write_bytes(b"hello world")
    status, _, err = _run(["record", str(path)], capsys)
    assert status == 1 and "not a pcap or pcapng file" in err
    capture, _ = _conversation(FORMATS[0])
    data = capture.fmt.write(capture.packets, 1)
    with pytest.raises(CaptureError, match="file ends"):
        record_capture(data[:-10])


def test_help_says_how_roles_are_decided(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(["record", "--help"], capsys)
    assert status == 0
    text = " ".join(out.split())
    for phrase in ("sent the SYN", "--namesrv-port", "--lenient", "<language>-<kind>", "pcapng"):
        assert phrase in text


# ---------------------------------------------------------------------------
# The shipped vectors, through a capture and back


def test_frame_fields_match_every_vector() -> None:
    checked = 0
    for record in iter_all_records():
        if not record.is_frame:
            continue
        fields = frame_fields(record.frame, decode(record.frame))
        assert {k: record.raw[k] for k in fields} == fields, record.seq
        checked += 1
    assert checked > 0


def _vector_capture(records: list[Record]) -> bytes:
    """The records of one scenario as packets in a pcapng, at their recorded
    times: a handshake before each connection's first record, each frame in
    1448-byte segments, the recorded closes, and a FIN from each end that had
    none after the connection's last record."""
    capture = Capture(FORMATS[3], step_ns=1)
    base = capture.t_ns
    last = {record.conn: index for index, record in enumerate(records)}
    # Client ports repeat across connections of a file: give each its own.
    ports: dict[str, tuple[int, int]] = {}
    closed: dict[str, set[str]] = {}
    for index, record in enumerate(records):
        raw = record.raw
        if record.conn not in ports:
            ports[record.conn] = (20000 + len(ports), int(raw["server_port"]))
            capture.t_ns = base + int(float(raw["t_ms"]) * 1_000_000) - 3
            capture.handshake(*ports[record.conn])
        client, server = ports[record.conn]
        ends = {"client": (client, server), "server": (server, client)}
        capture.t_ns = max(capture.t_ns, base + int(float(raw["t_ms"]) * 1_000_000))
        src, dst = ends[record.sender]
        done = closed.setdefault(record.conn, set())
        if record.dir == "close":
            capture.close(src, dst, FIN | ACK if raw["close"] == "FIN" else RST | ACK)
            done.add("reset" if raw["close"] == "RST" else record.sender)
        else:
            capture.send(src, dst, record.frame, 1448)
        if last[record.conn] == index and "reset" not in done:
            for side in ("client", "server"):
                if side not in done:
                    capture.close(*ends[side])
    return capture.fmt.write(capture.packets, capture.fmt.linktype)


def _scenarios() -> list[Path]:
    try:
        return scenario_files()
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("path", _scenarios(), ids=lambda p: p.stem)
def test_vectors_round_trip_through_a_capture(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vectors = read_records(path)
    pcap = tmp_path / f"{path.stem}.pcapng"
    pcap.write_bytes(_vector_capture(vectors))
    out_path = tmp_path / "out.jsonl"
    malformed = [v for v in vectors if v.dir != "close" and v.raw.get("malformed")]
    argv = ["record", str(pcap), "-o", str(out_path)]
    if malformed:
        status, _, err = _run(argv, capsys)
        assert status == 1 and not out_path.exists()
        argv.insert(1, "--lenient")
    status, _, err = _run(argv, capsys)
    assert status == 0, err
    recorded = _records(out_path.read_text())
    # Each connection's client port says which vector connection it carries.
    order = list(dict.fromkeys(v.conn for v in vectors))
    vector_conn = {str(r["conn"]): order[int(str(r["client_port"])) - 20000] for r in recorded}

    def frames(
        records: list[dict[str, object]], conn: Callable[[str], str]
    ) -> dict[str, list[object]]:
        by_conn: dict[str, list[object]] = {}
        for r in records:
            if r["dir"] != "close":
                by_conn.setdefault(conn(str(r["conn"])), []).append((r["sender"], r["frame_hex"]))
        return by_conn

    assert frames(recorded, vector_conn.__getitem__) == frames([v.raw for v in vectors], str)
    # Every frame record carries the vector's fields.
    kinds = {v.conn: (v.client, v.server) for v in vectors}
    by_hex = {v.raw["frame_hex"]: v.raw for v in vectors if v.dir != "close"}
    for r in recorded:
        client, server = kinds[vector_conn[str(r["conn"])]]
        assert r["server"] == server
        # The client's kind is what its requests on that connection show.
        assert (
            r["client"] == client
            or client == "handcrafted"
            or (
                r["client"] == "java-client"
                or (r["client"], client) == ("java-consumer", "java-pull-consumer")
            )
        )
        if r["dir"] == "close":
            continue
        vector = by_hex[r["frame_hex"]]
        assert bool(r.get("malformed")) == bool(vector.get("malformed"))
        if r.get("malformed"):
            continue  # the vector has what Java could read of it, this null
        for key in ("dir", "sender", "serialize", "code", "opaque", "header", "body_text"):
            assert r[key] == vector[key], key
    # decode --check passes on what was recorded, once connections from a
    # hand-made client are marked as such (a capture cannot tell).
    for r in recorded:
        if kinds[vector_conn[str(r["conn"])]][0] == "handcrafted":
            r["client"] = "handcrafted"
    out_path.write_text("".join(json.dumps(r) + "\n" for r in recorded))
    status, out, err = _run(["decode", "--check", str(out_path)], capsys)
    assert status == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["identical"] == sum(1 for v in vectors if v.is_frame)
    assert out.count("undecodable, as recorded") == len(malformed)


def test_packet_cut_by_the_snap_length(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = Capture()
    capture.handshake(40008, 9876)
    first, second = encode(ROUTE), encode(ROUTE.replace(opaque=9))
    capture.send(40008, 9876, first)
    capture.send(40008, 9876, second)
    capture.close(40008, 9876)
    # Cut the second frame's packet to 60 bytes, as a small snap length does.
    index = next(i for i, (_, data) in enumerate(capture.packets) if data.endswith(second))
    packets = [data for _, data in capture.packets]
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 60, 1)]
    for i, data in enumerate(packets):
        kept = data[:60] if i == index else data
        out.append(struct.pack("<IIII", 0, i, len(kept), len(data)) + kept)
    path = tmp_path / "cut.pcap"
    path.write_bytes(b"".join(out))
    status, _, err = _run(["record", str(path)], capsys)
    assert status == 1 and f"packet {index}:" in err and "captured short" in err
    status, out_text, err = _run(["record", "--lenient", str(path)], capsys)
    assert status == 0 and "packet skipped" in err and "bytes missing" in err
    frames = [r["frame_hex"] for r in _records(out_text) if r["dir"] != "close"]
    assert frames == [first.hex()]


def test_new_syn_without_the_old_close_opens_a_new_connection() -> None:
    capture = Capture()
    capture.handshake(40009, 9876)
    capture.send(40009, 9876, encode(ROUTE))
    # The FIN was not captured; the port comes back with a fresh handshake.
    capture.handshake(40009, 9876, isn=90000)
    capture.send(40009, 9876, encode(ROUTE))
    records = record_capture(capture.fmt.write(capture.packets, 1)).records
    assert [r["conn"] for r in records] == ["c0", "c1"]


def test_port_filter_leaves_other_traffic_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = Capture()
    capture.handshake(40010, 8080)
    capture.send(40010, 8080, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    capture.handshake(40011, 9876)
    capture.send(40011, 9876, encode(ROUTE))
    path = capture.file(tmp_path)
    status, _, err = _run(["record", str(path)], capsys)
    assert status == 1 and "connection c0" in err
    status, out, err = _run(["record", "--port", "9876", str(path)], capsys)
    assert status == 0, err
    records = _records(out)
    assert [(r["conn"], r["server_port"], r["code"]) for r in records] == [
        ("c0", 9876, RequestCode.GET_ROUTEINFO_BY_TOPIC)
    ]


def test_header_with_bad_utf8_is_recorded_as_read() -> None:
    header = b'{"code":105,"extFields":{"topic":"T\xa0"},"flag":0,"opaque":5}'
    frame = (4 + len(header)).to_bytes(4, "big") + len(header).to_bytes(4, "big") + header
    capture = Capture()
    capture.handshake(40012, 9876)
    capture.send(40012, 9876, frame)
    (record,) = record_capture(capture.fmt.write(capture.packets, 1)).records
    assert record["frame_hex"] == frame.hex()
    assert record["header_text"] == header.decode("utf-8", "replace")
    assert record["header"]["extFields"] == {"topic": "T\ufffd"}  # type: ignore[index]


def test_ipv4_fragments_and_offloaded_packets() -> None:
    frame = encode(ROUTE)
    segment = _tcp(40013, 9876, 5000, PSH | ACK, frame)
    # Segmentation offload: an IPv4 total length of 0.
    offloaded = bytearray(_ipv4("127.0.0.1", "127.0.0.1", segment))
    offloaded[2:4] = b"\x00\x00"
    data = _pcap([(0, _link(101, bytes(offloaded)))], 101, "<", False)
    (record,) = record_capture(data).records
    assert record["frame_hex"] == frame.hex()
    # A fragment (more-fragments bit set) is not reassembled: an error.
    fragment = bytearray(_ipv4("127.0.0.1", "127.0.0.1", segment))
    fragment[6:8] = b"\x20\x00"
    data = _pcap([(0, _link(101, bytes(fragment)))], 101, "<", False)
    with pytest.raises(CaptureError, match="packet 0: IPv4 fragment"):
        record_capture(data)
    recording = record_capture(data, RecordOptions(lenient=True))
    assert recording.records == [] and "packet skipped" in recording.warnings[0]


def test_frames_keep_stream_order_when_segments_arrive_out_of_order() -> None:
    capture = Capture()
    capture.handshake(40014, 9876)
    first, second = encode(ROUTE.replace(opaque=1)), encode(ROUTE.replace(opaque=2))
    (seq_a, a), (seq_b, b) = capture.segments(40014, 9876, first + second, len(first))
    capture.packet(40014, 9876, seq_b, PSH | ACK, b)  # the second frame first
    capture.packet(40014, 9876, seq_a, PSH | ACK, a)
    records = record_capture(capture.fmt.write(capture.packets, 1)).records
    assert [r["opaque"] for r in records] == [1, 2]
    assert records[0]["t_ms"] == records[1]["t_ms"]  # both readable from then on


_SAMPLE = [fmt.write(_conversation(fmt)[0].packets, fmt.linktype) for fmt in FORMATS]


@given(
    sample=st.sampled_from(_SAMPLE),
    cut=st.integers(min_value=0, max_value=20_000),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8),
    lenient=st.booleans(),
)
def test_damaged_captures_give_records_or_a_protocol_error(
    sample: bytes, cut: int, flips: list[tuple[int, int]], lenient: bool
) -> None:
    data = bytearray(sample[: len(sample) - cut % len(sample)])
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    try:
        recording = record_capture(bytes(data), RecordOptions(lenient=lenient))
    except ProtocolError:
        return
    for record in recording.records:
        json.dumps(record)  # every record is JSON
