"""Captures for people: what ``pyrocket decode`` shows and checks, and what
``pyrocket record`` makes of a packet capture.

The work is split by responsibility; this package re-exports the public names:

- :mod:`pyrocket.cli.capture.reading`: the frames of a capture file (JSON
  Lines in the golden-vector format, or a raw byte stream);
- :mod:`pyrocket.cli.capture.check`: :func:`decode_files`, which prints every
  command and, when checking, re-encodes every frame and typed body;
- :mod:`pyrocket.cli.capture.javaorder`: Java's iteration order of the hash
  maps and hash sets inside bodies;
- :mod:`pyrocket.cli.capture.recorder`: :func:`record_capture`, which turns a
  pcap / pcapng file into records, with who is who on each connection from
  :mod:`pyrocket.cli.capture.roles`;
- :mod:`pyrocket.cli.capture.records` and :mod:`pyrocket.cli.capture.pcap`:
  JSON Lines records, and pcap reading and TCP reassembly.
"""

from __future__ import annotations

from pyrocket.cli.capture.check import (
    CheckFailed,
    DecodeReport,
    decode_files,
    describe,
    rebuild_ext_fields,
)
from pyrocket.cli.capture.javaorder import java_order
from pyrocket.cli.capture.reading import HANDCRAFTED, CapturedFrame, read_capture
from pyrocket.cli.capture.recorder import Recording, RecordOptions, frame_fields, record_capture
from pyrocket.cli.capture.roles import DEFAULT_BROKER_PORTS, DEFAULT_NAMESRV_PORTS

__all__ = [
    "DEFAULT_BROKER_PORTS",
    "DEFAULT_NAMESRV_PORTS",
    "HANDCRAFTED",
    "CapturedFrame",
    "CheckFailed",
    "DecodeReport",
    "RecordOptions",
    "Recording",
    "decode_files",
    "describe",
    "frame_fields",
    "java_order",
    "read_capture",
    "rebuild_ext_fields",
    "record_capture",
]
