"""Reading captures: the frames of a JSON Lines capture (the golden-vector
format, see :mod:`pyrocket.cli.capture.records`) or of a raw byte stream of
concatenated frames (length word first), as :class:`CapturedFrame` values.

The two kinds are told apart by the first byte: a JSON Lines file starts with
``{``, which as a length word would announce a frame far beyond the 16 MiB
limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pyrocket.cli.capture.records import read_records
from pyrocket.errors import ProtocolError
from pyrocket.protocol.frame import NEED_DATA, FrameSplitter

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
