"""Any input decodes or raises ProtocolError (header decoders: CommandError).

A bounded pass over the fuzz targets of ``fuzz/targets.py`` (the long
campaigns live in ``fuzz/``): arbitrary bytes, plus structured inputs that get
past the first checks (JSON headers with wrong types, JSON bodies using the
real property names with wrong values, ext fields with the header's names).
"""

from __future__ import annotations

import dataclasses
import string
import zlib

from hypothesis import given
from hypothesis import strategies as st

from fuzz.targets import (
    BODY_CODECS,
    HEADER_TYPES,
    TARGETS,
    body_target,
    compressed_body_target,
    header_target,
    payload_target,
)
from pyrocket.errors import CommandError, ProtocolError
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies import Bean, Properties, parse_properties

_names = sorted(
    {
        f.metadata["wire"]
        for module_bean in Bean.__subclasses__()
        for f in dataclasses.fields(module_bean)  # type: ignore[arg-type]
    }
)
_header_names = sorted({spec.wire for header_type in HEADER_TYPES for spec in header_type._specs()})

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["SINGLE_TAG", "CLUSTERING", "CONSUME_PASSIVELY", "TAG", "*"]),
)
_keys = st.one_of(st.sampled_from(_names), st.text(max_size=6), st.integers(-5, 5))


def _json_values(names: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.recursive(
        _scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(names, children, max_size=5)
        ),  # type: ignore[arg-type]
        max_leaves=25,
    )


@given(st.binary(max_size=512))
def test_targets_on_arbitrary_bytes(data: bytes) -> None:
    for target in TARGETS.values():
        target(data)


_header_objects = st.dictionaries(
    st.sampled_from(["code", "extFields", "flag", "language", "opaque", "remark", "version", "x"]),
    _json_values(st.text(max_size=4)),
    max_size=8,
)


@given(_header_objects)
def test_json_headers_with_wrong_types(header: dict[str, object]) -> None:
    payload_target(fastjson.dumps_bytes(header))


@given(_json_values(_keys))
def test_json_bodies_with_real_property_names(value: object) -> None:
    body_target(fastjson.dumps_bytes(value))


@given(st.dictionaries(st.sampled_from(_names), _json_values(_keys), max_size=6))
def test_json_body_objects_with_real_property_names(value: dict[str, object]) -> None:
    body_target(fastjson.dumps_bytes(value))


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=6),
            st.integers(-3, 60).map(lambda n: n.to_bytes(4, "big", signed=True)),
            st.sampled_from([b'{"counter":1,"timestamp":2}', b"T 1 1 6 SINGLE_TAG", b"[]"]),
        ),
        max_size=8,
    )
)
def test_compressed_register_bodies_from_parts(parts: list[bytes]) -> None:
    compressed_body_target(zlib.decompress(zlib.compress(b"".join(parts))))


@given(
    st.dictionaries(
        st.one_of(st.sampled_from(_header_names), st.text(max_size=4)),
        st.one_of(
            st.text(max_size=8),
            st.integers().map(str),
            st.sampled_from(["true", "TRUE", "false", "+1", "-0", "1.5", " 1", "1e3"]),
        ),
        max_size=10,
    )
)
def test_header_decoders_raise_only_command_error(ext: dict[str, str]) -> None:
    for header_type in HEADER_TYPES:
        try:
            header = header_type.from_ext_fields(ext)
        except CommandError:
            continue
        assert header_type.from_ext_fields(header.to_ext_fields()) == header


@given(st.binary(max_size=200))
def test_header_target(data: bytes) -> None:
    header_target(data)


@given(st.text(alphabet=st.sampled_from(string.printable + "\\\x0c é☃"), max_size=80))
def test_properties_parser_takes_any_text(text: str) -> None:
    try:
        entries = parse_properties(text)
    except ProtocolError as exc:  # only a malformed \\uXXXX may fail
        assert "uxxxx" in str(exc)
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in entries.items())


@given(
    st.dictionaries(
        st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=10),
        st.text(
            alphabet=st.characters(exclude_characters="\\\n\r", exclude_categories=("Cs",)),
            max_size=10,
        ).map(str.strip),
        max_size=6,
    )
)
def test_properties_round_trip_for_plain_values(entries: dict[str, str]) -> None:
    # properties2String writes values raw; values without backslashes, line
    # breaks or leading blanks read back as written.
    body = Properties(entries)
    assert Properties.decode(body.encode()) == body


def test_every_body_codec_is_exercised() -> None:
    names = {codec.name for codec in BODY_CODECS}
    assert {"RegisterBrokerBody", "RegisterBrokerBody(compressed)", "Properties"} <= names
    assert len(names) >= 20
