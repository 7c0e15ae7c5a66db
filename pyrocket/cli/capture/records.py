"""Capture files: JSON Lines, one record per frame (or close).

The format is that of the golden vectors recorded from Java RocketMQ 4.7.0
(``tests/vectors/README.md`` in the repository): each record names its
connection, direction and sender, and carries the frame as hex.
``pyrocket decode`` and ``pyrocket record`` read and write it; the tests read
their capture sets through it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyrocket.errors import ProtocolError


@dataclass(frozen=True, slots=True)
class Record:
    """One line of a capture file. ``raw`` keeps every key as recorded."""

    scenario: str
    seq: int
    conn: str
    client: str
    server: str
    dir: str
    sender: str
    raw: dict[str, Any]

    @property
    def is_frame(self) -> bool:
        """A frame record (not a close record) whose bytes Java could parse."""
        return self.dir != "close" and not self.raw.get("malformed")

    @property
    def is_request(self) -> bool:
        return self.dir == "request"

    @property
    def is_response(self) -> bool:
        return self.dir == "response"

    @property
    def frame(self) -> bytes:
        """The whole frame, length word included (as sent, for malformed ones)."""
        text = self.raw.get("frame_hex")
        return bytes.fromhex(text) if text else b""

    @property
    def body(self) -> bytes | None:
        text = self.raw.get("body_b64")
        return base64.b64decode(text) if text else None

    @property
    def code(self) -> int | None:
        code = self.raw.get("code")
        return code if isinstance(code, int) else None

    @property
    def opaque(self) -> int | None:
        opaque = self.raw.get("opaque")
        return opaque if isinstance(opaque, int) else None

    @property
    def oneway(self) -> bool:
        return bool(self.raw.get("oneway"))

    @property
    def server_port(self) -> int | None:
        port = self.raw.get("server_port")
        return port if isinstance(port, int) else None

    @property
    def case(self) -> str | None:
        case = self.raw.get("case")
        return case if isinstance(case, str) else None


def read_records(path: Path) -> list[Record]:
    """All records of one capture file, in file order.

    Raises ProtocolError naming the file and line for a line that is not a
    record.
    """
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                records.append(
                    Record(
                        scenario=path.stem,
                        seq=int(raw["seq"]),
                        conn=str(raw["conn"]),
                        client=str(raw.get("client", "")),
                        server=str(raw.get("server", "")),
                        dir=str(raw["dir"]),
                        sender=str(raw.get("sender", "")),
                        raw=raw,
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ProtocolError(f"{path}:{number}: not a capture record ({exc})") from exc
    return records


def pair_requests(records: list[Record]) -> dict[int, Record]:
    """Map each response's ``seq`` to its request: same connection, same
    opaque, sent by the other end, earlier in the file."""
    pending: dict[tuple[str, str, int], Record] = {}
    pairs: dict[int, Record] = {}
    for record in records:
        if not record.is_frame or record.opaque is None:
            continue
        if record.is_request and not record.oneway:
            pending[(record.conn, record.sender, record.opaque)] = record
        elif record.is_response:
            other = "server" if record.sender == "client" else "client"
            request = pending.pop((record.conn, other, record.opaque), None)
            if request is not None:
                pairs[record.seq] = request
    return pairs
