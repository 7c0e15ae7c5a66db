"""The codec's quick paths give exactly what the general rules give.

``encode`` / ``encode_parts`` write the JSON header in one pass and the
decoders take the usual header shape (plain ints, a known language name,
string ext values) as it is. Here each is compared, on random commands and
random JSON headers of any shape, with a straightforward rendering of the
rules (the codec as it was written before the quick paths): same bytes, same
command, same error.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pyrocket.errors import ProtocolError
from pyrocket.protocol import command as codec
from pyrocket.protocol.codes import LanguageCode, SerializeType
from pyrocket.protocol.command import (
    RemotingCommand,
    decode_payload,
    encode,
    encode_json_header,
    encode_parts,
    make_command,
)
from pyrocket.protocol.fastjson import quote
from pyrocket.protocol.frame import MAX_EXT_FIELDS, build_rocketmq_header, parse_rocketmq_header

INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
INT16 = st.integers(-(1 << 15), (1 << 15) - 1)
# Text with what JSON must escape, what it need not, and lone surrogates.
TEXT = st.text(
    st.sampled_from(
        [
            "a",
            "Z",
            "0",
            " ",
            '"',
            "\\",
            "\x01",
            "\x02",
            "\n",
            "\x7f",
            "é",
            "\u2028",
            "\ud800",
            "中",
            "{",
            ":",
            ",",
        ]
    )
    | st.characters(),
    max_size=12,
)
EXT = st.none() | st.dictionaries(TEXT, TEXT, max_size=6)
LANGUAGE = st.integers(0, 255).map(LanguageCode)


def reference_json_header(command: RemotingCommand) -> bytes:
    """fastjson's bean order, one property at a time."""
    parts = ['{"code":', str(command.code)]
    ext = command.ext_fields
    if ext is not None:
        parts.append(',"extFields":{')
        parts.append(",".join(f"{quote(k)}:{quote(v)}" for k, v in ext.items()))
        parts.append("}")
    member = LanguageCode(command.language)
    name = member.name if member in frozenset(LanguageCode) else "OTHER"
    parts.append(f',"flag":{command.flag},"language":"{name}"')
    parts.append(f',"opaque":{command.opaque}')
    if command.remark is not None:
        parts.append(',"remark":')
        parts.append(quote(command.remark))
    parts.append(f',"serializeTypeCurrentRPC":"JSON","version":{command.version}}}')
    return "".join(parts).encode("utf-8", "replace")


def reference_encode(command: RemotingCommand) -> bytes:
    if command.serialize_type == SerializeType.ROCKETMQ:
        header = build_rocketmq_header(
            command.code,
            command.language,
            command.version,
            command.opaque,
            command.flag,
            command.remark.encode("utf-8", "replace") if command.remark else b"",
            list(command.ext_fields.items()) if command.ext_fields else [],
        )
    else:
        header = reference_json_header(command)
    body = command.body or b""
    head = struct.pack(
        ">iI", 4 + len(header) + len(body), command.serialize_type << 24 | len(header)
    )
    return head + header + body


def reference_decode_json(header: bytes, body: bytes | None) -> RemotingCommand:
    """The JSON header rules, every value through the general checks."""
    try:
        obj = json.loads(header.decode("utf-8", "replace"))
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"JSON header does not parse: {exc.msg}", exc.pos) from exc
    except RecursionError as exc:
        raise ProtocolError("JSON header nests too deeply") from exc
    except ValueError as exc:
        raise ProtocolError(f"JSON header does not parse: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("JSON header is not an object", 0)
    ext_raw = obj.get("extFields")
    ext: dict[str, str] | None
    if ext_raw is None:
        ext = None
    elif isinstance(ext_raw, dict):
        if len(ext_raw) > MAX_EXT_FIELDS:
            raise ProtocolError(f"more than {MAX_EXT_FIELDS} ext fields")
        ext = {}
        for key, value in ext_raw.items():
            if value is not None:
                ext[key] = codec._ext_value(key, value)
    else:
        raise ProtocolError("JSON header extFields is not an object")
    remark = obj.get("remark")
    if remark is not None and not isinstance(remark, str):
        raise ProtocolError("JSON header remark is not a string")
    return RemotingCommand(
        code=codec._int32(obj, "code", 0),
        opaque=codec._int32(obj, "opaque", 0),
        flag=codec._int32(obj, "flag", 0),
        remark=remark,
        ext_fields=ext,
        body=body,
        language=codec._json_language(obj.get("language")),
        version=codec._int32(obj, "version", 0),
        serialize_type=SerializeType.JSON,
    )


def outcome(work: Any) -> object:
    try:
        value = work()
    except (ProtocolError, struct.error) as exc:
        return ("error", type(exc), str(exc))
    if isinstance(value, RemotingCommand):
        # Field by field, with the types the codec hands out.
        return tuple((type(getattr(value, name)), getattr(value, name)) for name in value.__slots__)
    return value


@st.composite
def commands(draw: st.DrawFn) -> RemotingCommand:
    serialize_type = draw(st.sampled_from(SerializeType))
    rocketmq = serialize_type == SerializeType.ROCKETMQ
    return RemotingCommand(
        code=draw(INT16 if rocketmq else INT32),
        opaque=draw(INT32),
        flag=draw(INT32),
        remark=draw(st.none() | TEXT),
        ext_fields=draw(EXT),
        body=draw(st.none() | st.binary(min_size=1, max_size=40)),
        language=draw(LANGUAGE),
        version=draw(INT16 if rocketmq else INT32),
        serialize_type=serialize_type,
    )


@given(commands())
# Headers of the plain fields only (no ext fields, no remark), in JSON.
@example(RemotingCommand(0, opaque=-5, flag=1, body=b"{}"))
@example(RemotingCommand(17, opaque=2**31 - 1, flag=3, language=LanguageCode(200), version=-1))
def test_encoding_is_byte_identical_to_the_general_rules(command: RemotingCommand) -> None:
    expected = reference_encode(command)
    assert encode(command) == expected
    head, body = encode_parts(
        command,
        command.opaque,
        command.flag,
        command.language,
        command.version,
        command.serialize_type,
    )
    assert head + body == expected
    assert body == (command.body or b"")
    if command.serialize_type == SerializeType.JSON:
        assert encode_json_header(command) == reference_json_header(command)


@given(commands(), INT32, INT32, LANGUAGE, INT32, st.sampled_from(SerializeType))
def test_encode_parts_is_the_command_sent_with_other_settings(
    command: RemotingCommand,
    opaque: int,
    flag: int,
    language: LanguageCode,
    version: int,
    serialize_type: SerializeType,
) -> None:
    stamped = command.replace(
        opaque=opaque,
        flag=flag,
        language=language,
        version=version,
        serialize_type=serialize_type,
    )
    # Values that do not fit the ROCKETMQ header fail the same way.
    assert outcome(
        lambda: b"".join(encode_parts(command, opaque, flag, language, version, serialize_type))
    ) == outcome(lambda: reference_encode(stamped))


def reference_decode_rocketmq(header: bytes, body: bytes | None) -> RemotingCommand:
    code, language, version, opaque, flag = struct.unpack_from(">hBhii", header)
    remark_length = int.from_bytes(header[13:17], "big")
    remark = header[17 : 17 + remark_length]
    ext = parse_rocketmq_header(header)[6]
    return RemotingCommand(
        code=code,
        opaque=opaque,
        flag=flag,
        remark=remark.decode("utf-8", "replace") if remark else None,
        ext_fields=ext or None,
        body=body,
        language=LanguageCode(language),
        version=version,
        serialize_type=SerializeType.ROCKETMQ,
    )


@given(commands())
def test_decoding_an_encoded_command_matches_the_general_rules(command: RemotingCommand) -> None:
    payload = encode(command)[4:]
    header_length = int.from_bytes(payload[1:4], "big")
    header, body = payload[4 : 4 + header_length], payload[4 + header_length :] or None
    reference = (
        reference_decode_rocketmq
        if command.serialize_type == SerializeType.ROCKETMQ
        else reference_decode_json
    )
    decoded = outcome(lambda: decode_payload(payload))
    assert decoded == outcome(lambda: in_payload(lambda: reference(header, body)))
    assert decoded == outcome(lambda: codec.decode(encode(command)))


# JSON values of every kind a header field may hold.
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(1 << 33), 1 << 33)
    | INT32
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["12", "-7", "x", "", "JAVA", "CPP", "GO", "NOPE", "2147483648"])
    | TEXT
)
VALUE = SCALAR | st.lists(SCALAR, max_size=2) | st.dictionaries(TEXT, SCALAR, max_size=2)
KEYS = st.sampled_from(
    [
        "code",
        "opaque",
        "flag",
        "version",
        "language",
        "remark",
        "extFields",
        "serializeTypeCurrentRPC",
        "other",
    ]
)


@st.composite
def json_headers(draw: st.DrawFn) -> bytes:
    shape = draw(
        st.dictionaries(KEYS, VALUE | st.dictionaries(TEXT, SCALAR | st.just(["list"]), max_size=4))
    )
    if draw(st.booleans()):
        # Mostly the usual shape, with one field perhaps odd.
        usual: dict[str, Any] = {
            "code": draw(INT32),
            "extFields": draw(st.dictionaries(TEXT, TEXT, max_size=4)),
            "flag": draw(st.integers(0, 3)),
            "language": draw(st.sampled_from(["JAVA", "CPP", "GO", "OTHER", "BAD"])),
            "opaque": draw(INT32),
            "serializeTypeCurrentRPC": "JSON",
            "version": draw(INT16),
        }
        usual.update(dict(list(shape.items())[:1]))
        shape = usual
    text = json.dumps(shape, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]  # cut short
    return text.encode("utf-8", "surrogatepass")


def in_payload(work: Any) -> Any:
    """``work()``, its error's offset counted from the payload's start."""
    try:
        return work()
    except ProtocolError as exc:
        if exc.offset is None:
            raise
        raise ProtocolError(exc.what, 4 + exc.offset) from exc


@settings(max_examples=400)
@given(json_headers(), st.none() | st.binary(min_size=1, max_size=8))
@example(b'{"version": false, "language": false}', None)  # which error comes first
@example(b'{"code": "7", "opaque": true}', None)
@example(b' {"code": 1} ', b"x")  # whitespace around: json.loads's way
def test_json_header_decoding_matches_the_general_rules(header: bytes, body: bytes | None) -> None:
    payload = struct.pack(">I", len(header)) + header + (body or b"")
    assert outcome(lambda: decode_payload(payload)) == outcome(
        lambda: in_payload(lambda: reference_decode_json(header, body))
    )
    assert outcome(lambda: codec.decode_json_header(header)) == outcome(
        lambda: reference_decode_json(header, None)
    )


@given(commands())
def test_make_command_builds_what_the_constructor_builds(command: RemotingCommand) -> None:
    made = make_command(*(getattr(command, name) for name in command.__slots__))
    assert made == command
    assert type(made) is RemotingCommand
    assert hash(made.replace(ext_fields=None)) == hash(command.replace(ext_fields=None))
    request = RemotingCommand(code=1, opaque=command.opaque)
    assert command.answering(request) == command.replace(
        opaque=command.opaque, flag=command.flag | 1
    )
