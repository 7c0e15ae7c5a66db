"""``pyrocket record CAPTURE``: turn a packet capture into vector records.

The work is done by :mod:`pyrocket.cli.capture.pcap` (reading, TCP reassembly) and
:mod:`pyrocket.cli.capture` (frames and records); this module parses arguments
and writes the JSON Lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pyrocket.cli.capture import RecordOptions, record_capture
from pyrocket.errors import ProtocolError

_DESCRIPTION = """\
Read a pcap or pcapng capture (tcpdump on the loopback or a real interface:
Ethernet, Linux cooked SLL/SLL2, BSD loopback or raw IP links; IPv4 and IPv6)
and write one JSON Lines record per RocketMQ frame, in the golden-vector
format, so that PYROCKET_VECTORS can point pyrocket's tests at your own
cluster's traffic. Each TCP connection is reassembled by sequence number per
direction (out-of-order, retransmitted and overlapping segments are put in
order once) and cut into frames; FIN and RST become close records. Both
serialize types are read.

The client end of a connection is the one that sent the SYN (else the one
that did not send the SYN+ACK, else the one not on a NameServer/broker port,
else the one that sent the first request). Records name the processes as
<language>-<kind>, the language being the one the frames declare (java, cpp,
...). The server kind is 'namesrv' or 'broker': from --namesrv-port /
--broker-port first, then from the requests the client sent (NameServer-only
or broker-only codes), then from the stock ports (9876; 10911 and 10909),
else 'server'. The client kind follows from the requests it sent on that
connection: 'mqadmin' (signed with AccessKey/Signature, as mqadmin's stock
credentials do; so would any client with ACL credentials), 'broker'
(registration, slave sync), 'push-consumer' / 'pull-consumer' (the consume
type its HEART_BEAT declares), 'consumer' (pulls), 'producer' (sends or
heartbeats), else 'client' (e.g. a client's NameServer connection, which
only asks for routes). Records are in the order of the packets that carried
each frame's first byte (never ahead of an earlier frame of the same stream);
t_ms is that packet's time, counted from the capture's first TCP packet.

Strict by default: a hole in a stream, bytes left after a direction's last
frame, a packet captured short, and a frame that does not parse are errors
(exit 1, nothing written). With --lenient they are warnings on stderr: a
frame that does not parse is written with a 'malformed' key (a length word
past the 16 MiB limit: with every byte up to the next hole or close), and a
hole drops the frame it cuts; reading resumes at the first segment after it
that starts like a frame."""


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port")
    return port


def register(commands: Any) -> None:
    record = commands.add_parser(
        "record",
        help="turn a pcap/pcapng capture of RocketMQ traffic into JSON Lines vectors",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument("capture", type=Path, metavar="CAPTURE", help="pcap or pcapng file")
    record.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write the records here (default: standard output)",
    )
    record.add_argument(
        "--lenient",
        action="store_true",
        help="report gaps, trailing bytes and unparsable frames as warnings and keep going",
    )
    record.add_argument(
        "--port",
        type=_port,
        action="append",
        default=[],
        metavar="PORT",
        help="record only connections with an end on this port (repeatable; default: all)",
    )
    record.add_argument(
        "--namesrv-port",
        type=_port,
        action="append",
        default=[],
        metavar="PORT",
        help="a port a NameServer listens on (repeatable)",
    )
    record.add_argument(
        "--broker-port",
        type=_port,
        action="append",
        default=[],
        metavar="PORT",
        help="a port a broker listens on (repeatable)",
    )
    record.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = RecordOptions(
        lenient=args.lenient,
        namesrv_ports=frozenset(args.namesrv_port),
        broker_ports=frozenset(args.broker_port),
        ports=frozenset(args.port),
    )
    try:
        recording = record_capture(args.capture.read_bytes(), options)
    except (OSError, ProtocolError) as exc:
        print(f"pyrocket record: {exc}", file=sys.stderr)
        return 1
    for warning in recording.warnings:
        print(f"pyrocket record: warning: {warning}", file=sys.stderr)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recording.records)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    frames = sum(1 for r in recording.records if r["dir"] != "close")
    print(
        f"pyrocket record: {frames} frames, {len(recording.records) - frames} close records, "
        f"{len({r['conn'] for r in recording.records})} connections",
        file=sys.stderr,
    )
    return 0
