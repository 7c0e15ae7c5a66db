"""Decoding and checking captures: what ``pyrocket decode`` prints for every
command (code name, request / response / oneway, opaque, header fields, the
body as text when it is text) and, with ``--check``, the re-encoding of every
frame and every body it has a typed codec for from its typed values in Java's
iteration order, stopping at the first byte that differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pyrocket.cli.capture.javaorder import java_order
from pyrocket.cli.capture.reading import HANDCRAFTED, CapturedFrame, read_capture
from pyrocket.errors import CommandError, ProtocolError, PyrocketError
from pyrocket.protocol.catalog import (
    request_body_codec,
    request_header_type,
    response_body_codec,
    response_header_type,
)
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, decode_payload, encode
from pyrocket.protocol.frame import FrameSplitter
from pyrocket.protocol.javahash import hashmap_order

_TEXT_CONTROLS = frozenset("\n\r\t")


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
