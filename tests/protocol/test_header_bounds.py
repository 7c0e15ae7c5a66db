"""Header bounds: a header longer than MAX_HEADER_SIZE or with more than
MAX_EXT_FIELDS ext fields is refused with ProtocolError, in both header forms;
everything up to the bounds decodes as before. The bulk of a frame (the body)
is not bounded by them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyrocket.errors import ProtocolError
from pyrocket.protocol.codes import SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, decode_payload, encode
from pyrocket.protocol.frame import MAX_EXT_FIELDS, MAX_HEADER_SIZE, build_frame_head
from tests.vectorset import iter_all_records

FORMS = [SerializeType.JSON, SerializeType.ROCKETMQ]


def _command(fields: int, form: SerializeType, value: str = "v") -> RemotingCommand:
    ext = {f"k{i}": value for i in range(fields)}
    return RemotingCommand(code=10, opaque=7, ext_fields=ext, serialize_type=form)


@pytest.mark.parametrize("form", FORMS)
def test_the_most_ext_fields_allowed_decode(form: SerializeType) -> None:
    command = _command(MAX_EXT_FIELDS, form)
    decoded = decode(encode(command))
    assert decoded.ext_fields == command.ext_fields


@pytest.mark.parametrize("form", FORMS)
def test_one_ext_field_too_many_is_refused(form: SerializeType) -> None:
    frame = encode(_command(MAX_EXT_FIELDS + 1, form))
    with pytest.raises(ProtocolError, match=f"more than {MAX_EXT_FIELDS} ext fields"):
        decode(frame)


def test_repeated_binary_keys_count_as_entries() -> None:
    # A binary header may repeat a key; every entry costs decoding time, so
    # the bound counts entries on the wire, not distinct keys.
    entry = b"\x00\x01k\x00\x00\x00\x01v"
    blob = entry * (MAX_EXT_FIELDS + 1)
    header = (
        b"\x00\x0a\x00\x01\x61\x00\x00\x00\x07\x00\x00\x00\x00"
        + b"\x00\x00\x00\x00"
        + len(blob).to_bytes(4, "big")
        + blob
    )
    payload = build_frame_head(4 + len(header), SerializeType.ROCKETMQ, len(header))[4:] + header
    with pytest.raises(ProtocolError, match="ext fields"):
        decode_payload(payload)
    # The same header under a higher bound decodes to the one key.
    command = decode_payload(payload, max_ext_fields=MAX_EXT_FIELDS + 1)
    assert command.ext_fields == {"k": "v"}


@pytest.mark.parametrize("form", FORMS)
def test_header_at_the_size_bound_decodes_and_one_byte_more_is_refused(
    form: SerializeType,
) -> None:
    base = encode(RemotingCommand(code=10, remark="", serialize_type=form))
    base_header = int.from_bytes(base[5:8], "big")
    fill = MAX_HEADER_SIZE - base_header
    at_bound = encode(RemotingCommand(code=10, remark="x" * fill, serialize_type=form))
    assert int.from_bytes(at_bound[5:8], "big") == MAX_HEADER_SIZE
    assert decode(at_bound).remark == "x" * fill
    over = encode(RemotingCommand(code=10, remark="x" * (fill + 1), serialize_type=form))
    with pytest.raises(ProtocolError, match=f"exceeds the limit of {MAX_HEADER_SIZE}"):
        decode(over)


@pytest.mark.parametrize("form", FORMS)
def test_a_large_body_is_not_bounded_by_the_header_limits(form: SerializeType) -> None:
    body = bytes(range(256)) * (4 * MAX_HEADER_SIZE // 256)
    command = RemotingCommand(code=10, ext_fields={"a": "b"}, body=body, serialize_type=form)
    assert decode(encode(command)).body == body


def test_size_bound_is_checked_before_the_header_is_parsed() -> None:
    # A header that would not even parse is refused for its size alone: the
    # decoder never spends time on it.
    header = b"{" * (MAX_HEADER_SIZE + 1)
    payload = build_frame_head(4 + len(header), SerializeType.JSON, len(header))[4:] + header
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        decode_payload(payload)


def test_every_recorded_header_is_far_below_the_bounds(vectors_dir: Path) -> None:
    # Java's own frames decode under the bounds with room to spare.
    largest_header = most_fields = 0
    for record in iter_all_records(vectors_dir):
        if not record.is_frame or not record.frame:
            continue
        frame = record.frame
        command = decode(frame)
        largest_header = max(largest_header, int.from_bytes(frame[5:8], "big"))
        most_fields = max(most_fields, len(command.ext_fields or {}))
    assert 0 < largest_header * 16 < MAX_HEADER_SIZE
    assert 0 < most_fields * 16 < MAX_EXT_FIELDS


def test_json_bound_counts_distinct_keys_after_parsing() -> None:
    ext = {f"k{i}": "v" for i in range(MAX_EXT_FIELDS)}
    text = json.dumps({"code": 1, "extFields": ext}).encode()
    payload = build_frame_head(4 + len(text), SerializeType.JSON, len(text))[4:] + text
    assert len(decode_payload(payload).ext_fields or {}) == MAX_EXT_FIELDS
    with pytest.raises(ProtocolError):
        decode_payload(payload, max_ext_fields=MAX_EXT_FIELDS - 1)
