"""Fuzz targets: each takes arbitrary bytes and checks pyrocket's promise
about bad input, "a decoder returns a value or raises ProtocolError (header
decoders: CommandError; SQL92 selectors: SelectorError, and EvaluationError
when evaluated), nothing else", plus that whatever does decode
re-encodes to a fixed point.

The same functions run under hypothesis (``fuzz/run_hypothesis.py``, and a
short bounded pass in ``tests/protocol/test_bad_input.py``) and under atheris
(``fuzz/atheris_target.py``). A target signals a finding by raising anything
other than the errors it is allowed to raise.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable

from pyrocket.errors import CommandError, ProtocolError
from pyrocket.filter import EvaluationError, SelectorError, compile_selector
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies import Bean, Properties, RegisterBrokerBody
from pyrocket.protocol.catalog import all_body_codecs, all_header_types
from pyrocket.protocol.command import decode, decode_payload, encode
from pyrocket.protocol.frame import NEED_DATA, FrameSplitter, parse_rocketmq_header

BODY_CODECS = all_body_codecs()
HEADER_TYPES = all_header_types()


def frame_target(data: bytes) -> None:
    """Whole-frame decoding, payload decoding and the stream splitter."""
    for decoder in (decode, decode_payload):
        try:
            command = decoder(data)
        except ProtocolError:
            continue
        _check_command_fixed_point(command)
    splitter = FrameSplitter(max_frame_size=1 << 16)
    middle = len(data) // 2
    try:
        for chunk in (data[:middle], data[middle:]):
            splitter.feed(chunk)
            while (payload := splitter.next_frame()) is not NEED_DATA:
                assert isinstance(payload, bytes)
                with contextlib.suppress(ProtocolError):
                    _check_command_fixed_point(decode_payload(payload))
    except ProtocolError:
        pass


def _check_command_fixed_point(command: object) -> None:
    from pyrocket.protocol.command import RemotingCommand

    assert isinstance(command, RemotingCommand)
    try:
        first = encode(command)
    except ProtocolError:
        return  # a decoded value that does not fit the wire again (none known)
    again = decode(first)
    assert encode(again) == first, "re-encoding a decoded frame is not stable"


def rocketmq_header_target(data: bytes) -> None:
    """The binary header parser on its own."""
    try:
        parse_rocketmq_header(data)
    except ProtocolError:
        return


def payload_target(data: bytes) -> None:
    """Arbitrary header bytes behind a well-formed frame head, both kinds."""
    for kind in (0, 1):
        payload = bytes([kind]) + len(data).to_bytes(3, "big") + data
        with contextlib.suppress(ProtocolError):
            _check_command_fixed_point(decode_payload(payload))


def json_target(data: bytes) -> None:
    """The fastjson reader; what it reads the writer must write again."""
    try:
        value = fastjson.loads(data)
    except ProtocolError:
        return
    text = fastjson.dumps(value)
    fastjson.loads(text)


def body_target(data: bytes) -> None:
    """Every typed body decoder; decoded bodies re-encode to a fixed point."""
    for codec in BODY_CODECS:
        try:
            value = codec.decode(data)
        except ProtocolError:
            continue
        first = codec.encode(value)
        if isinstance(value, Bean):
            # The direct writer and the to_json + dumps route agree.
            assert value.encode() == fastjson.dumps_bytes(value.to_json())
        if isinstance(value, Properties):
            # properties2String does not escape, so keys or values holding
            # separators, line breaks or backslashes read back differently,
            # as in Java: no fixed point to check.
            continue
        assert codec.encode(codec.decode(first)) == first, f"{codec.name} is not stable"


def compressed_body_target(data: bytes) -> None:
    """The compressed RegisterBrokerBody reader behind a real zlib stream."""
    for candidate in (data, zlib.compress(data, 1)):
        try:
            body = RegisterBrokerBody.decode(candidate, compressed=True)
        except ProtocolError:
            continue
        first = body.encode(compress=True, clone_order=False)
        again = RegisterBrokerBody.decode(first, compressed=True)
        assert again.encode(compress=True, clone_order=False) == first


def header_target(data: bytes) -> None:
    """Every typed header decoder, on ext fields made from ``data``: pairs of
    NUL-separated strings, with keys drawn from the header's own names."""
    parts = data.decode("utf-8", "replace").split("\x00")
    for header_type in HEADER_TYPES:
        names = list(header_type.wire_names())
        ext: dict[str, str] = {}
        for index in range(0, len(parts) - 1, 2):
            key = parts[index]
            if names and key and key[0] in "0123456789":
                key = names[int(key[0]) % len(names)]
            ext[key] = parts[index + 1]
        try:
            header = header_type.from_ext_fields(ext)
        except CommandError:
            continue
        assert header_type.from_ext_fields(header.to_ext_fields()) == header


def selector_target(data: bytes) -> None:
    """SQL92 selectors: any text compiles or raises SelectorError (never a
    RecursionError, whatever the nesting); a compiled selector evaluates
    over property maps to TRUE, FALSE or unknown, or raises
    EvaluationError."""
    text = data.decode("utf-8", "replace")
    try:
        selector = compile_selector(text)
    except SelectorError:
        return
    words = text.split()
    properties = {word: words[(i + 1) % len(words)] for i, word in enumerate(words[:8])}
    for candidate in ({}, properties, {key: "1" for key in properties}):
        try:
            result = selector.evaluate(candidate)
        except EvaluationError:
            continue
        assert result in (True, False, None), result


TARGETS: dict[str, Callable[[bytes], None]] = {
    "frame": frame_target,
    "payload": payload_target,
    "rocketmq_header": rocketmq_header_target,
    "json": json_target,
    "body": body_target,
    "compressed_body": compressed_body_target,
    "header": header_target,
    "selector": selector_target,
}


def all_targets(data: bytes) -> None:
    """Every target on the same input (what the atheris harness runs)."""
    for target in TARGETS.values():
        target(data)
