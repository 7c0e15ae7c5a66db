"""Frames: the stream splitter on the recorded connections, the malformed
frames Java refused, and the fast frame/header path against the construct
reference layouts (FRAME, ROCKETMQ_HEADER)."""

from __future__ import annotations

import random
import re
import struct
from collections import defaultdict

import construct as c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrocket.errors import ProtocolError
from pyrocket.protocol.codes import SerializeType
from pyrocket.protocol.command import RemotingCommand, decode_payload, encode
from pyrocket.protocol.frame import (
    DEFAULT_MAX_FRAME_SIZE,
    FRAME,
    NEED_DATA,
    ROCKETMQ_HEADER,
    FrameSplitter,
    SplitFrame,
    build_frame_head,
    build_rocketmq_header,
    parse_rocketmq_header,
)
from tests.vectorset import Record, iter_all_records


def _streams() -> dict[str, list[bytes]]:
    """One direction of one recorded connection -> its frames, in order."""
    streams: dict[str, list[bytes]] = defaultdict(list)
    spoiled: set[str] = set()
    for record in iter_all_records():
        if record.dir == "close":
            continue
        key = f"{record.scenario}:{record.conn}:{record.sender}"
        if record.raw.get("malformed"):
            spoiled.add(key)  # the stream was cut off by design
            continue
        streams[key].append(record.frame)
    return {key: frames for key, frames in sorted(streams.items()) if key not in spoiled}


STREAMS = _streams()


def _split(
    chunks: list[bytes], splitter: FrameSplitter | None = None
) -> tuple[list[bytes], FrameSplitter]:
    splitter = splitter or FrameSplitter()
    frames = []
    for chunk in chunks:
        splitter.feed(chunk)
        while (frame := splitter.next_frame()) is not NEED_DATA:
            assert isinstance(frame, bytes)
            frames.append(frame)
    return frames, splitter


def _random_chunks(data: bytes, rng: random.Random) -> list[bytes]:
    chunks, pos = [], 0
    while pos < len(data):
        size = rng.choice([1, 2, 3, 4, 5, 7, 8, 13, 64, 500, 4096])
        chunks.append(data[pos : pos + size])
        pos += size
    return chunks


def test_streams_are_discovered() -> None:
    assert len(STREAMS) > 100
    assert sum(len(frames) for frames in STREAMS.values()) > 1900


@pytest.mark.parametrize("key", list(STREAMS))
def test_stream_splits_into_the_recorded_frames(key: str) -> None:
    frames = STREAMS[key]
    expected = [frame[4:] for frame in frames]
    stream = b"".join(frames)
    whole, splitter = _split([stream])
    assert whole == expected and splitter.buffered == 0
    bytewise, _ = _split([stream[i : i + 1] for i in range(len(stream))])
    assert bytewise == expected
    rng = random.Random(key)
    for _ in range(3):
        chunked, _ = _split(_random_chunks(stream, rng))
        assert chunked == expected
    # A partial frame at the end: every whole frame first, then NEED_DATA.
    partial = frames[0][: rng.randrange(1, len(frames[0]))]
    frames_then, splitter = _split([stream, partial])
    assert frames_then == expected
    assert splitter.next_frame() is NEED_DATA
    assert splitter.buffered == len(partial)


@pytest.mark.parametrize("key", list(STREAMS)[:40])
def test_collected_frames_split_the_same(key: str) -> None:
    # With a tiny collection threshold nearly every frame that arrives in
    # pieces is gathered as chunks: the frames come out the same.
    frames = STREAMS[key]
    expected = [frame[4:] for frame in frames]
    stream = b"".join(frames)
    bytewise, splitter = _split(
        [stream[i : i + 1] for i in range(len(stream))], FrameSplitter(collect_over=8)
    )
    assert bytewise == expected and splitter.buffered == 0
    rng = random.Random(key)
    for _ in range(3):
        chunked, splitter = _split(_random_chunks(stream, rng), FrameSplitter(collect_over=8))
        assert chunked == expected and splitter.buffered == 0
    partial = frames[0][: rng.randrange(1, len(frames[0]))]
    frames_then, splitter = _split([stream, partial], FrameSplitter(collect_over=0))
    assert frames_then == expected
    assert splitter.next_frame() is NEED_DATA
    assert splitter.buffered == len(partial)


def test_a_large_frame_is_collected_in_chunks_and_the_next_follows() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB payload
    small = b"\x00\x00\x00\x02ab"
    stream = struct.pack(">i", len(big)) + big + small + small
    splitter = FrameSplitter()
    frames: list[bytes] = []
    for at in range(0, len(stream), 65536):
        splitter.feed(stream[at : at + 65536])
        while (frame := splitter.next_frame()) is not NEED_DATA:
            assert isinstance(frame, bytes)
            frames.append(frame)
        if not frames:
            # While collecting, what is held counts the length word too.
            assert splitter.buffered == min(len(stream), at + 65536)
    assert frames == [big, b"ab", b"ab"]
    assert splitter.buffered == 0
    # A bad frame after a collected one is reported at its own offset.
    splitter.feed(struct.pack(">i", -5))
    with pytest.raises(ProtocolError) as info:
        splitter.next_frame()
    assert info.value.offset == len(stream)


def _split_parts(
    chunks: list[bytes], splitter: FrameSplitter
) -> tuple[list[bytes | SplitFrame], FrameSplitter]:
    frames: list[bytes | SplitFrame] = []
    for chunk in chunks:
        splitter.feed(chunk)
        while not isinstance(frame := splitter.next_split(), type(NEED_DATA)):
            frames.append(frame)
    return frames, splitter


def _check_split(frame: bytes | SplitFrame, payload: bytes) -> None:
    """``frame`` is ``payload``, whole or split, and decodes the same."""
    if isinstance(frame, bytes):
        assert frame == payload
        return
    assert frame.payload() == payload
    assert all(type(part) is bytes for part in frame.body)
    assert frame.body_size == sum(map(len, frame.body))
    if frame.head is None:
        assert frame.body_size == len(payload)
        return
    assert frame.head == payload[: len(frame.head)]
    assert len(frame.head) == 4 + int.from_bytes(payload[1:4], "big")
    assert frame.body_size == len(payload) - len(frame.head)
    body = frame.join_body()
    head_only = decode_payload(frame.head)
    assert head_only.body is None
    assert head_only.replace(body=body or None) == decode_payload(payload)


@pytest.mark.parametrize("key", list(STREAMS)[:40])
def test_split_frames_carry_the_same_payloads(key: str) -> None:
    # With tiny thresholds nearly every frame that arrives in pieces comes
    # out split: head and body give back the payload and decode the same.
    frames = STREAMS[key]
    expected = [frame[4:] for frame in frames]
    stream = b"".join(frames)

    def splitter() -> FrameSplitter:
        return FrameSplitter(collect_over=8, split_over=8)

    rng = random.Random(key)
    runs = [[stream[i : i + 1] for i in range(len(stream))]]
    runs += [_random_chunks(stream, rng) for _ in range(3)]
    for chunks in runs:
        got, left = _split_parts(chunks, splitter())
        assert len(got) == len(expected) and left.buffered == 0
        for frame, payload in zip(got, expected, strict=True):
            _check_split(frame, payload)
    assert any(isinstance(f, SplitFrame) for f in _split_parts(runs[0], splitter())[0])


def _big_command(serialize_type: SerializeType, body_size: int, opaque: int) -> RemotingCommand:
    ext = {f"key{i:04d}": f"value-{i}-" + "x" * (i % 50) for i in range(1000)}
    body = bytes(random.Random(opaque).randbytes(body_size))
    return RemotingCommand.request(10, body=body).replace(
        ext_fields=ext, opaque=opaque, serialize_type=serialize_type, remark="big"
    )


@pytest.mark.parametrize("serialize_type", [SerializeType.JSON, SerializeType.ROCKETMQ])
def test_big_frames_split_the_same_whole_chunked_and_bytewise(
    serialize_type: SerializeType,
) -> None:
    big = encode(_big_command(serialize_type, 3 * 1024 * 1024 + 17, 1))
    small = encode(RemotingCommand.request(11).replace(opaque=2, serialize_type=serialize_type))
    stream = big + small + big + small
    expected = [big[4:], small[4:], big[4:], small[4:]]
    rng = random.Random(serialize_type)

    def chunked(sizes: list[int]) -> list[bytes]:
        chunks, pos = [], 0
        while pos < len(stream):
            size = rng.choice(sizes)
            chunks.append(stream[pos : pos + size])
            pos += size
        return chunks

    # A header cut byte by byte, then the rest in large pieces.
    head_bytewise = [stream[i : i + 1] for i in range(64 * 1024)]
    head_bytewise += [stream[i : i + 65536] for i in range(64 * 1024, len(stream), 65536)]
    runs = {
        "whole": [stream],
        "64 KiB reads": [stream[i : i + 65536] for i in range(0, len(stream), 65536)],
        "random": chunked([1, 3, 4, 5, 4096, 65536, 100_000]),
        "head byte-at-a-time": head_bytewise,
    }
    for name, chunks in runs.items():
        whole, splitter = _split(chunks)
        assert whole == expected and splitter.buffered == 0, name
        got, splitter = _split_parts(chunks, FrameSplitter())
        assert splitter.buffered == 0, name
        assert len(got) == len(expected), name
        for frame, payload in zip(got, expected, strict=True):
            _check_split(frame, payload)
        if name != "whole":
            # Collected from pieces: the big frames come split, the small whole.
            assert [type(f) for f in got] == [SplitFrame, bytes, SplitFrame, bytes], name


@pytest.mark.parametrize(
    ("header_length", "reason"),
    [
        (0xFFFFFF, "runs past the frame"),
        (512 * 1024, "exceeds the limit of"),
    ],
)
def test_a_split_frame_with_an_unbounded_header_keeps_its_payload(
    header_length: int, reason: str
) -> None:
    payload = bytes([SerializeType.JSON]) + header_length.to_bytes(3, "big")
    payload += b"{" * (2 * 1024 * 1024)
    stream = struct.pack(">i", len(payload)) + payload
    got, _ = _split_parts(
        [stream[i : i + 65536] for i in range(0, len(stream), 65536)], FrameSplitter()
    )
    [frame] = got
    assert isinstance(frame, SplitFrame) and frame.head is None
    _check_split(frame, payload)
    with pytest.raises(ProtocolError, match=reason):
        decode_payload(frame.join_body())


# Java's reason (the record's `malformed` text) -> pyrocket's, for the same bytes.
MALFORMED_REASONS = [
    (r"JSONDecodeError", r"JSON header does not parse"),
    (r"unknown serialize type (\d+)", r"unknown serialize type \1"),
    (r"header length (\d+) exceeds frame", r"header length \1 runs past the frame"),
    (r"frame too short for the header length word", r"frame of 0 bytes has no header-length word"),
    (r"incomplete frame: declared (\d+) bytes", r"exceeds the limit of 16777216"),
]

MALFORMED = [r for r in iter_all_records() if r.dir != "close" and r.raw.get("malformed")]


def test_malformed_records_are_present() -> None:
    assert len(MALFORMED) >= 7


@pytest.mark.parametrize("record", MALFORMED, ids=lambda r: f"{r.scenario}-{r.seq}")
def test_malformed_frame_raises_protocol_error_for_its_reason(record: Record) -> None:
    why = str(record.raw["malformed"])
    for java_pattern, ours in MALFORMED_REASONS:
        match = re.search(java_pattern, why)
        if match:
            expected = match.expand(ours)
            break
    else:
        pytest.fail(f"no expectation for malformed reason {why!r}")
    splitter = FrameSplitter()
    splitter.feed(record.frame)
    with pytest.raises(ProtocolError) as info:
        payload = splitter.next_frame()
        assert isinstance(payload, bytes), "a whole frame was sent"
        decode_payload(payload)
    assert expected in str(info.value)


def test_negative_length_word_is_refused() -> None:
    splitter = FrameSplitter()
    splitter.feed(struct.pack(">i", -1))
    with pytest.raises(ProtocolError, match="negative frame length -1"):
        splitter.next_frame()


def test_frame_limit_counts_the_length_word() -> None:
    splitter = FrameSplitter(max_frame_size=12)
    splitter.feed(struct.pack(">i", 8) + bytes(8))
    assert splitter.next_frame() == bytes(8)
    splitter.feed(struct.pack(">i", 9))
    with pytest.raises(ProtocolError, match="frame of 13 bytes exceeds the limit of 12"):
        splitter.next_frame()
    assert DEFAULT_MAX_FRAME_SIZE == 16 * 1024 * 1024


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (bytes(16), "16 bytes, the fixed part needs 17"),
        (bytes(13) + b"\x00\x00\x00\x05ab", "remark of 5 bytes runs past the header"),
        (bytes(13) + b"\xff\xff\xff\xff", "remark of 4294967295 bytes"),
        (bytes(17) + b"\x00\x00", "ext fields length cut short"),
        (bytes(17) + b"\x01\x00\x00\x00", "ext fields of 16777216 bytes run past the header"),
        (bytes(21) + b"x", "1 bytes after the ext fields"),
        (bytes(17) + b"\x00\x00\x00\x01" + b"\x00", "ext field key length cut short"),
        (bytes(17) + b"\x00\x00\x00\x03" + b"\x00\x05a", "ext field key runs past"),
        (
            bytes(17) + b"\x00\x00\x00\x07" + b"\x00\x01k\x00\x00\x00\x09",
            "ext field value runs past",
        ),
    ],
)
def test_bad_rocketmq_headers(header: bytes, reason: str) -> None:
    # Java's own reader would take the declared lengths on trust (or treat a
    # negative one as absent); pyrocket refuses the frame.
    with pytest.raises(ProtocolError, match=reason):
        parse_rocketmq_header(header)


# ---------------------------------------------------------------------------
# The fast path against the reference layouts

_int16 = st.integers(-(1 << 15), (1 << 15) - 1)
_int32 = st.integers(-(1 << 31), (1 << 31) - 1)
_text = st.text(max_size=40)
_ext = st.lists(st.tuples(_text, _text), max_size=6, unique_by=lambda kv: kv[0])


@given(
    kind=st.integers(0, 255),
    header=st.binary(max_size=300),
    body=st.binary(max_size=300),
)
def test_frame_head_matches_reference(kind: int, header: bytes, body: bytes) -> None:
    frame = FRAME.build({"serialize_type": kind, "header": header, "body": body})
    fast = build_frame_head(4 + len(header) + len(body), kind, len(header)) + header + body
    assert fast == frame
    parsed = FRAME.parse(frame)
    splitter = FrameSplitter()
    splitter.feed(frame)
    payload = splitter.next_frame()
    assert payload == frame[4:]
    assert isinstance(payload, bytes)
    assert payload[0] == parsed.serialize_type == kind
    assert int.from_bytes(payload[1:4], "big") == parsed.header_length == len(header)
    assert parsed.length == len(payload)
    assert (parsed.header, parsed.body) == (header, body)


@given(
    code=_int16,
    language=st.integers(0, 255),
    version=_int16,
    opaque=_int32,
    flag=_int32,
    remark=st.binary(max_size=60),
    ext=_ext,
)
def test_rocketmq_header_matches_reference(
    code: int,
    language: int,
    version: int,
    opaque: int,
    flag: int,
    remark: bytes,
    ext: list[tuple[str, str]],
) -> None:
    reference = ROCKETMQ_HEADER.build(
        {
            "code": code,
            "language": language,
            "version": version,
            "opaque": opaque,
            "flag": flag,
            "remark": remark,
            "ext_fields": [{"key": k, "value": v} for k, v in ext],
        }
    )
    fast = build_rocketmq_header(code, language, version, opaque, flag, remark, ext)
    assert fast == reference
    assert parse_rocketmq_header(reference) == (
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        dict(ext),
    )


def _reference_parse(data: bytes) -> tuple[object, ...] | None:
    """The reference reading of ``data``, or None if it does not read exactly."""
    try:
        parsed = ROCKETMQ_HEADER.parse(data)
        if ROCKETMQ_HEADER.build(parsed) != data:
            return None  # trailing bytes that the reference silently skips
    except (c.ConstructError, UnicodeDecodeError):
        return None
    ext = {item.key: item.value for item in parsed.ext_fields}
    if len(ext) != len(parsed.ext_fields):
        return None  # repeated keys: a list in the reference, a map on the wire
    return (
        parsed.code,
        parsed.language,
        parsed.version,
        parsed.opaque,
        parsed.flag,
        parsed.remark,
        ext,
    )


@st.composite
def _mutated_headers(draw: st.DrawFn) -> bytes:
    header = build_rocketmq_header(
        draw(_int16),
        draw(st.integers(0, 255)),
        draw(_int16),
        draw(_int32),
        draw(_int32),
        draw(st.binary(max_size=20)),
        draw(_ext),
    )
    data = bytearray(header)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["flip", "cut", "add"]))
        if action == "flip" and data:
            index = draw(st.integers(0, len(data) - 1))
            data[index] = draw(st.integers(0, 255))
        elif action == "cut" and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        else:
            data += draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


@given(data=st.one_of(_mutated_headers(), st.binary(max_size=80)))
def test_rocketmq_header_parse_agrees_with_reference(data: bytes) -> None:
    reference = _reference_parse(data)
    try:
        fast: tuple[object, ...] | None = parse_rocketmq_header(data)
    except ProtocolError:
        fast = None
    if reference is not None:
        assert fast == reference
    elif fast is not None:
        # The fast path reads what the reference refuses only where Java
        # does too: text that is not UTF-8 (read with U+FFFD) or repeated keys.
        ext = fast[-1]
        assert isinstance(ext, dict)
        assert any("\ufffd" in k + v for k, v in ext.items()) or _has_repeated_keys(data)


def _has_repeated_keys(data: bytes) -> bool:
    try:
        parsed = ROCKETMQ_HEADER.parse(data)
    except (c.ConstructError, UnicodeDecodeError):
        return False
    keys = [item.key for item in parsed.ext_fields]
    return len(keys) != len(set(keys))
