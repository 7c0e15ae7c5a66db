"""Packet captures: reading pcap / pcapng files and reassembling TCP streams.

Pure Python and sans-I/O: :func:`read_packets` takes the bytes of a capture
file (classic pcap in either byte order, microsecond or nanosecond stamps, or
pcapng with its section, interface, enhanced and simple packet blocks) and
yields the link-layer packets; :func:`tcp_segment` peels Ethernet (with VLAN
tags), Linux cooked (SLL, SLL2), BSD loopback / null and raw IP framing, then
IPv4 or IPv6 (extension headers skipped) down to a TCP segment.
:class:`TcpReassembler` orders each connection's segments by sequence number
per direction, so retransmitted, overlapping and out-of-order segments yield
every byte exactly once, and reports SYN / FIN / RST and the holes it could
not fill.

Everything that is not a well-formed capture raises :class:`CaptureError`.
Packets that are no TCP over IP (ARP, UDP, ...) are skipped, not errors.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from pyrocket.errors import ProtocolError


class CaptureError(ProtocolError):
    """A capture file, packet or TCP stream that cannot be read as one."""


# Link types (tcpdump.org/linktypes.html).
LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276

_ETHERTYPE_IPV4: Final = 0x0800
_ETHERTYPE_IPV6: Final = 0x86DD
_ETHERTYPE_VLAN: Final = frozenset({0x8100, 0x88A8, 0x9100})
# BSD address families for IPv6 as the null / loopback header writes them.
_AF_INET6: Final = frozenset({10, 24, 28, 30})

_PCAP_MAGIC_US: Final = 0xA1B2C3D4
_PCAP_MAGIC_NS: Final = 0xA1B23C4D
_PCAPNG_SHB: Final = 0x0A0D0D0A
_PCAPNG_BYTE_ORDER: Final = 0x1A2B3C4D

TCP_FIN: Final = 0x01
TCP_SYN: Final = 0x02
TCP_RST: Final = 0x04
TCP_ACK: Final = 0x10


@dataclass(frozen=True, slots=True)
class Packet:
    """One captured packet: its position in the file, time and link layer."""

    index: int
    #: capture time, nanoseconds since the epoch
    t_ns: int
    linktype: int
    data: bytes
    #: the packet's length on the wire (more than ``len(data)`` if cut short)
    original_length: int


def read_packets(data: bytes) -> Iterator[Packet]:
    """The packets of a pcap or pcapng file, in file order.

    Raises CaptureError for a file that is neither, or is cut inside a header.
    """
    if len(data) < 4:
        raise CaptureError(f"{len(data)} bytes are no capture file", 0)
    first = int.from_bytes(data[:4], "little")
    if first == _PCAPNG_SHB:
        yield from _read_pcapng(data)
        return
    for order in ("<", ">"):
        (magic,) = struct.unpack_from(order + "I", data)
        if magic in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS):
            yield from _read_pcap(data, order, magic == _PCAP_MAGIC_NS)
            return
    raise CaptureError(f"not a pcap or pcapng file (magic {data[:4].hex()})", 0)


def _read_pcap(data: bytes, order: str, nanos: bool) -> Iterator[Packet]:
    if len(data) < 24:
        raise CaptureError("pcap file header cut short", 0)
    # The upper bits of the link-type word carry FCS information.
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    offset, index = 24, 0
    while offset < len(data):
        if offset + 16 > len(data):
            raise CaptureError(f"packet {index}: record header cut short", offset)
        seconds, fraction, captured, original = record.unpack_from(data, offset)
        start = offset + 16
        if start + captured > len(data):
            raise CaptureError(f"packet {index}: {captured} bytes announced, file ends", offset)
        t_ns = seconds * 1_000_000_000 + (fraction if nanos else fraction * 1000)
        yield Packet(index, t_ns, linktype, data[start : start + captured], original)
        offset = start + captured
        index += 1


@dataclass(slots=True)
class _Interface:
    linktype: int
    #: timestamp units per second
    resolution: int


def _read_pcapng(data: bytes) -> Iterator[Packet]:
    order = "<"
    interfaces: list[_Interface] = []
    offset, index = 0, 0
    while offset < len(data):
        if offset + 12 > len(data):
            raise CaptureError("pcapng block header cut short", offset)
        if int.from_bytes(data[offset : offset + 4], "little") == _PCAPNG_SHB:
            magic = data[offset + 8 : offset + 12]
            if magic == _PCAPNG_BYTE_ORDER.to_bytes(4, "little"):
                order = "<"
            elif magic == _PCAPNG_BYTE_ORDER.to_bytes(4, "big"):
                order = ">"
            else:
                raise CaptureError(f"pcapng section with byte-order magic {magic.hex()}", offset)
            interfaces = []  # interface ids are per section
        block_type, length = struct.unpack_from(order + "II", data, offset)
        if length < 12 or length % 4 or offset + length > len(data):
            raise CaptureError(f"pcapng block of length {length}", offset + 4)
        body = data[offset + 8 : offset + length - 4]
        if block_type == 1:
            interfaces.append(_interface(body, order, offset))
        elif block_type in (2, 3, 6):
            yield _packet_block(block_type, body, order, interfaces, index, offset)
            index += 1
        offset += length


def _interface(body: bytes, order: str, offset: int) -> _Interface:
    if len(body) < 8:
        raise CaptureError("pcapng interface block cut short", offset)
    (linktype,) = struct.unpack_from(order + "H", body)
    resolution = 1_000_000
    position = 8
    while position + 4 <= len(body):
        code, size = struct.unpack_from(order + "HH", body, position)
        value = body[position + 4 : position + 4 + size]
        if code == 0:
            break
        if code == 9 and size >= 1:  # if_tsresol
            exponent = value[0] & 0x7F
            resolution = 2**exponent if value[0] & 0x80 else 10**exponent
        position += 4 + (size + 3) // 4 * 4
    return _Interface(linktype, resolution)


def _packet_block(
    block_type: int,
    body: bytes,
    order: str,
    interfaces: list[_Interface],
    index: int,
    offset: int,
) -> Packet:
    if block_type == 3:  # simple packet block: interface 0, no time stamp
        if len(body) < 4:
            raise CaptureError("pcapng simple packet block cut short", offset)
        (original,) = struct.unpack_from(order + "I", body)
        interface_id, stamp, payload = 0, 0, body[4 : 4 + original]
    else:
        if len(body) < 20:
            raise CaptureError("pcapng packet block cut short", offset)
        if block_type == 6:
            interface_id, high, low, captured, original = struct.unpack_from(order + "IIIII", body)
        else:  # the obsolete packet block: 16-bit interface id and drop count
            interface_id, _drops, high, low, captured, original = struct.unpack_from(
                order + "HHIIII", body
            )
        if 20 + captured > len(body):
            raise CaptureError(f"packet {index}: {captured} bytes announced, block ends", offset)
        stamp = (high << 32) | low
        payload = body[20 : 20 + captured]
    if interface_id >= len(interfaces):
        raise CaptureError(f"packet {index}: no interface {interface_id} described", offset)
    interface = interfaces[interface_id]
    t_ns = stamp * 1_000_000_000 // interface.resolution
    return Packet(index, t_ns, interface.linktype, payload, original)


# ---------------------------------------------------------------------------
# Link, IP and TCP layers


@dataclass(frozen=True, slots=True)
class Segment:
    """One TCP segment with its endpoints (address text, port)."""

    src: tuple[str, int]
    dst: tuple[str, int]
    seq: int
    flags: int
    payload: bytes


def tcp_segment(packet: Packet) -> Segment | None:
    """The TCP segment a packet carries, or None for anything else.

    Raises CaptureError for a TCP/IP packet that is cut short or is an IP
    fragment (which this reader does not reassemble).
    """
    ip = _network_layer(packet)
    if ip is None:
        return None
    version, data = ip
    parsed = _ipv4(data, packet.index) if version == 4 else _ipv6(data, packet.index)
    if parsed is None:
        return None
    src, dst, tcp = parsed
    if len(tcp) < 20:
        raise CaptureError(f"packet {packet.index}: TCP header cut short")
    src_port, dst_port, seq, _ack, offset_byte, flags = struct.unpack_from("!HHIIBB", tcp)
    header_length = (offset_byte >> 4) * 4
    if header_length < 20 or header_length > len(tcp):
        raise CaptureError(f"packet {packet.index}: TCP header length {header_length}")
    return Segment((src, src_port), (dst, dst_port), seq, flags, tcp[header_length:])


def _network_layer(packet: Packet) -> tuple[int, bytes] | None:
    data, link = packet.data, packet.linktype
    ethertype: int | None = None
    if link == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        ethertype, data = int.from_bytes(data[12:14], "big"), data[14:]
        while ethertype in _ETHERTYPE_VLAN and len(data) >= 4:
            ethertype, data = int.from_bytes(data[2:4], "big"), data[4:]
    elif link == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            return None
        ethertype, data = int.from_bytes(data[14:16], "big"), data[16:]
    elif link == LINKTYPE_LINUX_SLL2:
        if len(data) < 20:
            return None
        ethertype, data = int.from_bytes(data[0:2], "big"), data[20:]
    elif link in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(data) < 4:
            return None
        # DLT_NULL writes the family in the capturing host's byte order.
        family = int.from_bytes(data[:4], "big" if link == LINKTYPE_LOOP else "little")
        if family > 0xFFFF:
            family = int.from_bytes(data[:4], "big")
        data = data[4:]
        if family == 2:
            return 4, data
        return (6, data) if family in _AF_INET6 else None
    elif link in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not data:
            return None
        version = data[0] >> 4
        return (version, data) if version in (4, 6) else None
    else:
        raise CaptureError(f"packet {packet.index}: link type {link} is not supported")
    if ethertype == _ETHERTYPE_IPV4:
        return 4, data
    if ethertype == _ETHERTYPE_IPV6:
        return 6, data
    return None


def _ipv4(data: bytes, index: int) -> tuple[str, str, bytes] | None:
    if len(data) < 20:
        raise CaptureError(f"packet {index}: IPv4 header cut short")
    header_length = (data[0] & 0x0F) * 4
    total = int.from_bytes(data[2:4], "big")
    fragment = int.from_bytes(data[6:8], "big")
    protocol = data[9]
    if protocol != 6:
        return None
    if fragment & 0x3FFF:  # more-fragments bit or a fragment offset
        raise CaptureError(f"packet {index}: IPv4 fragment (not reassembled)")
    if total == 0 and len(data) > header_length:
        # Segmentation offload hands the capture oversized packets with a
        # total length of 0; the captured bytes are the packet.
        total = len(data)
    if header_length < 20 or total < header_length:
        raise CaptureError(f"packet {index}: IPv4 header length {header_length}, total {total}")
    if total > len(data):
        raise CaptureError(f"packet {index}: IPv4 packet of {total} bytes captured short")
    src, dst = _address(data[12:16]), _address(data[16:20])
    # Slicing at the total length drops Ethernet padding.
    return src, dst, data[header_length:total]


@lru_cache(maxsize=4096)
def _address(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


_IPV6_EXTENSIONS: Final = frozenset({0, 43, 60, 135, 139, 140})


def _ipv6(data: bytes, index: int) -> tuple[str, str, bytes] | None:
    if len(data) < 40:
        raise CaptureError(f"packet {index}: IPv6 header cut short")
    payload_length = int.from_bytes(data[4:6], "big")
    next_header = data[6]
    if 40 + payload_length > len(data):
        raise CaptureError(f"packet {index}: IPv6 packet of {payload_length} bytes captured short")
    src, dst = _address(data[8:24]), _address(data[24:40])
    rest = data[40 : 40 + payload_length]
    while next_header != 6:
        if next_header == 44:
            raise CaptureError(f"packet {index}: IPv6 fragment (not reassembled)")
        if len(rest) < 8:
            return None
        if next_header in _IPV6_EXTENSIONS:
            size = (rest[1] + 1) * 8
        elif next_header == 51:  # authentication header counts in 4-byte words
            size = (rest[1] + 2) * 4
        else:
            return None
        next_header, rest = rest[0], rest[size:]
    return src, dst, rest


# ---------------------------------------------------------------------------
# TCP reassembly

Endpoint = tuple[str, int]


@dataclass(frozen=True, slots=True)
class StreamData:
    """In-order bytes of one direction, and the index of the packet that
    carried them (:attr:`TcpReassembler.times` has its time)."""

    packet: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamGap:
    """Bytes that never arrived: ``size`` bytes are missing before what follows."""

    packet: int
    size: int


@dataclass(frozen=True, slots=True)
class StreamClose:
    """The end closed its direction (``FIN``) or the connection (``RST``)."""

    packet: int
    how: str


StreamEvent = StreamData | StreamGap | StreamClose


@dataclass(slots=True)
class Direction:
    """The bytes one end sent, put back in sequence order."""

    sender: Endpoint
    #: the sequence number of the next byte expected, once known
    next_seq: int | None = None
    #: segments ahead of ``next_seq``: sequence number -> (packet index, bytes)
    ahead: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    #: sequence number of the FIN, once seen
    fin_seq: int | None = None
    closed: bool = False
    events: list[StreamEvent] = field(default_factory=list)

    def segment(self, packet: int, seq: int, flags: int, payload: bytes) -> None:
        if self.closed:
            return
        if flags & TCP_SYN:
            if self.next_seq is None:
                self.next_seq = (seq + 1) & 0xFFFFFFFF
            seq = (seq + 1) & 0xFFFFFFFF
        if self.next_seq is None:
            # Capture started mid-connection: the stream starts here.
            self.next_seq = seq
        if payload:
            self._data(packet, seq, payload)
        if flags & TCP_FIN:
            self.fin_seq = (seq + len(payload)) & 0xFFFFFFFF
        if flags & TCP_RST:
            self.close(packet, "RST")
            return
        self._check_fin(packet)

    def _data(self, packet: int, seq: int, payload: bytes) -> None:
        assert self.next_seq is not None
        behind = _seq_diff(self.next_seq, seq)
        if behind >= len(payload):
            return  # retransmitted: every byte was delivered already
        if behind > 0:
            self._deliver(packet, payload[behind:])
        elif behind == 0:
            self._deliver(packet, payload)
        else:
            kept = self.ahead.get(seq)
            if kept is None or len(kept[1]) < len(payload):
                self.ahead[seq] = (packet, payload)
            return
        self._drain()

    def _deliver(self, packet: int, data: bytes) -> None:
        assert self.next_seq is not None
        self.events.append(StreamData(packet, data))
        self.next_seq = (self.next_seq + len(data)) & 0xFFFFFFFF

    def _drain(self) -> None:
        while self.ahead:
            assert self.next_seq is not None
            usable = None
            for seq in list(self.ahead):
                packet, payload = self.ahead[seq]
                behind = _seq_diff(self.next_seq, seq)
                if behind >= len(payload):
                    del self.ahead[seq]  # wholly covered by what came since
                elif behind >= 0:
                    usable = (seq, packet, payload[behind:])
                    break
            if usable is None:
                return
            seq, packet, rest = usable
            del self.ahead[seq]
            self._deliver(packet, rest)

    def _check_fin(self, packet: int) -> None:
        if self.fin_seq is not None and self.next_seq == self.fin_seq and not self.ahead:
            self.close(packet, "FIN")

    def close(self, packet: int, how: str) -> None:
        if not self.closed:
            self.flush_gaps(packet)
            self.closed = True
            self.events.append(StreamClose(packet, how))

    def flush_gaps(self, packet: int) -> None:
        """Give up on missing bytes: skip each hole to the next held segment."""
        while self.ahead:
            assert self.next_seq is not None
            seq = min(self.ahead, key=lambda s: _seq_diff(s, self.next_seq or 0))
            missing = _seq_diff(seq, self.next_seq)
            if missing > 0:
                self.events.append(StreamGap(self.ahead[seq][0], missing))
                self.next_seq = seq
            self._drain()
        if self.fin_seq is not None and not self.closed and self.next_seq != self.fin_seq:
            assert self.next_seq is not None
            missing = _seq_diff(self.fin_seq, self.next_seq)
            if missing > 0:
                self.events.append(StreamGap(packet, missing))
                self.next_seq = self.fin_seq


def _seq_diff(a: int, b: int) -> int:
    """``a - b`` in 32-bit sequence space, as a signed number."""
    diff = (a - b) & 0xFFFFFFFF
    return diff - (1 << 32) if diff >= 1 << 31 else diff


@dataclass(slots=True)
class Connection:
    """Both directions of one TCP connection, in the order it was first seen."""

    number: int
    first: Endpoint
    second: Endpoint
    #: the endpoint that sent a SYN without ACK (the client), when seen
    syn_from: Endpoint | None = None
    #: the endpoint that sent SYN+ACK (the server), when seen
    syn_ack_from: Endpoint | None = None
    #: index of its first packet
    first_packet: int = 0
    directions: dict[Endpoint, Direction] = field(default_factory=dict)

    def direction(self, sender: Endpoint) -> Direction:
        found = self.directions.get(sender)
        if found is None:
            found = self.directions[sender] = Direction(sender)
        return found

    @property
    def finished(self) -> bool:
        """Both ends closed, or one reset."""
        ends = list(self.directions.values())
        if any(
            e.events and isinstance(e.events[-1], StreamClose) and e.events[-1].how == "RST"
            for e in ends
        ):
            return True
        return len(ends) == 2 and all(e.closed for e in ends)


class TcpReassembler:
    """Every TCP connection of a capture, reassembled per direction.

    Feed segments in capture order with :meth:`feed`, then call
    :meth:`finish`; :attr:`connections` lists them in the order they were
    first seen. A SYN on the endpoints of a connection that has finished
    opens a new one (port reuse).
    """

    def __init__(self) -> None:
        self.connections: list[Connection] = []
        #: capture time (ns) of each packet, by index
        self.times: list[int] = []
        self._open: dict[frozenset[Endpoint], Connection] = {}

    def feed(self, packet: int, segment: Segment) -> None:
        key = frozenset((segment.src, segment.dst))
        connection = self._open.get(key)
        is_syn = bool(segment.flags & TCP_SYN)
        if connection is not None and is_syn and not segment.flags & TCP_ACK:
            # A new SYN on the same endpoints opens a new connection once the
            # old one finished, or when it starts at another sequence number
            # (the end of the old one was not captured).
            known = connection.direction(segment.src).next_seq
            if connection.finished or known not in (None, (segment.seq + 1) & 0xFFFFFFFF):
                connection = None
        if connection is None:
            connection = Connection(
                len(self.connections), segment.src, segment.dst, first_packet=packet
            )
            self.connections.append(connection)
            self._open[key] = connection
            connection.direction(segment.src)
            connection.direction(segment.dst)
        if is_syn:
            if segment.flags & TCP_ACK:
                connection.syn_ack_from = connection.syn_ack_from or segment.src
            else:
                connection.syn_from = connection.syn_from or segment.src
        connection.direction(segment.src).segment(
            packet, segment.seq, segment.flags, segment.payload
        )
        if segment.flags & TCP_RST:
            # A reset ends the connection for both ends' pending bytes.
            connection.direction(segment.dst).flush_gaps(packet)

    def finish(self, packet: int) -> None:
        """End of capture: report the holes nothing filled."""
        for connection in self.connections:
            for direction in connection.directions.values():
                if not direction.closed:
                    direction.flush_gaps(packet)


def reassemble(
    data: bytes,
    *,
    lenient: bool = False,
    warnings: list[str] | None = None,
    ports: frozenset[int] = frozenset(),
) -> TcpReassembler:
    """Read a capture file's bytes and reassemble every TCP connection in it.

    Raises CaptureError for an unreadable file and, unless ``lenient``, for a
    TCP/IP packet that cannot be read or was captured short; lenient, such a
    packet is skipped (its bytes become a hole in its stream) and the reason
    appended to ``warnings``. With ``ports``, only segments to or from one of
    them are taken.
    """
    reassembler = TcpReassembler()
    for packet in read_packets(data):
        reassembler.times.append(packet.t_ns)
        try:
            segment = tcp_segment(packet)
            if segment is not None and packet.original_length > len(packet.data):
                raise CaptureError(
                    f"packet {packet.index}: captured {len(packet.data)} of "
                    f"{packet.original_length} bytes (snap length too small)"
                )
        except CaptureError as exc:
            if not lenient:
                raise
            if warnings is not None:
                warnings.append(f"{exc}; packet skipped")
            continue
        if segment is None:
            continue
        if not ports or segment.src[1] in ports or segment.dst[1] in ports:
            reassembler.feed(packet.index, segment)
    reassembler.finish(len(reassembler.times) - 1)
    return reassembler
