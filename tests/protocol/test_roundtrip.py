"""Property tests: any command survives encode -> decode in both header forms."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from pyrocket.protocol.codes import LanguageCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, encode, encode_json_header
from pyrocket.protocol.frame import NEED_DATA, FrameSplitter

_int16 = st.integers(-(1 << 15), (1 << 15) - 1)
_int32 = st.integers(-(1 << 31), (1 << 31) - 1)
# Text that stresses the escaping: controls, C1 controls, the JSON-breaking
# line separators, quotes, backslashes, astral characters.
_special = st.sampled_from(
    [
        *("\x00", "\x01", "\x02", "\x1f", "\x7f", "\x85", "\x9f", "\u2028", "\u2029"),
        *('"', "\\", "/", "\n", "\r", "\t", "é", "☃", "\U0001f600", "\U00010000", "\ufeff"),
    ]
)
_text = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(_special, st.text(max_size=3)), max_size=10).map("".join),
)


@st.composite
def commands(draw: st.DrawFn, serialize_type: SerializeType) -> RemotingCommand:
    rocketmq = serialize_type == SerializeType.ROCKETMQ
    number = _int16 if rocketmq else _int32
    # JSON names the language; a code Java does not know cannot travel there.
    language = (
        st.integers(0, 255).map(LanguageCode) if rocketmq else st.sampled_from(list(LanguageCode))
    )
    return RemotingCommand(
        code=draw(number),
        opaque=draw(_int32),
        flag=draw(_int32),
        remark=draw(st.none() | _text),
        ext_fields=draw(st.none() | st.dictionaries(_text, _text, max_size=8)),
        body=draw(st.none() | st.binary(min_size=1, max_size=64)),
        language=draw(language),
        version=draw(number),
        serialize_type=serialize_type,
    )


def _as_received(command: RemotingCommand) -> RemotingCommand:
    """What the peer reads: the binary header cannot tell "" from no remark,
    nor an empty ext map from none."""
    if command.serialize_type != SerializeType.ROCKETMQ:
        return command
    return command.replace(
        remark=command.remark or None,
        ext_fields=command.ext_fields or None,
    )


@given(commands(SerializeType.JSON) | commands(SerializeType.ROCKETMQ))
def test_command_round_trip(command: RemotingCommand) -> None:
    frame = encode(command)
    received = decode(frame)
    expected = _as_received(command)
    assert received == expected
    if expected.ext_fields is not None:
        assert list(received.ext_fields or {}) == list(expected.ext_fields)
    assert encode(received) == frame
    splitter = FrameSplitter()
    splitter.feed(frame + frame[:3])
    assert splitter.next_frame() == frame[4:]
    assert splitter.next_frame() is NEED_DATA


@given(commands(SerializeType.JSON))
def test_json_header_is_standard_json_with_fastjson_escapes(command: RemotingCommand) -> None:
    header = encode_json_header(command)
    text = header.decode("utf-8")
    # Escaped, never raw: the characters fastjson escapes.
    assert not any(ch in text for ch in ("\u2028", "\u2029", "\x7f", "\x00", "\n"))
    parsed = json.loads(text)
    assert parsed["code"] == command.code
    assert parsed.get("remark") == command.remark
    assert parsed.get("extFields") == (
        None if command.ext_fields is None else dict(command.ext_fields)
    )
    assert list(parsed) == sorted(parsed)  # bean properties in name order
