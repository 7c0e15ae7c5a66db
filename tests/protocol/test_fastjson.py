"""The fastjson writer and reader, against expectations written out by hand
from fastjson 1.2.62 (SerializeWriter.writeStringWithDoubleQuote, IOUtils
escape tables, RyuDouble) and Java's Double.toString."""

from __future__ import annotations

from enum import Enum

import pytest

from pyrocket.errors import ProtocolError
from pyrocket.protocol.fastjson import ObjectKey, dumps, dumps_bytes, java_double, loads, quote

# (character, how fastjson writes it inside a string)
ESCAPES = [
    ("\x00", "\\u0000"),
    ("\x01", "\\u0001"),
    ("\x02", "\\u0002"),
    ("\x07", "\\u0007"),
    ("\x08", "\\b"),
    ("\t", "\\t"),
    ("\n", "\\n"),
    ("\x0b", "\\u000B"),
    ("\x0c", "\\f"),
    ("\r", "\\r"),
    ("\x0e", "\\u000E"),
    ("\x1a", "\\u001A"),
    ("\x1f", "\\u001F"),
    (" ", " "),
    ('"', '\\"'),
    ("\\", "\\\\"),
    ("/", "/"),
    ("'", "'"),
    ("<", "<"),
    ("~", "~"),
    ("\x7f", "\\u007F"),
    ("\x80", "\\u0080"),
    ("\x85", "\\u0085"),
    ("\x9f", "\\u009F"),
    ("\xa0", "\xa0"),
    ("é", "é"),
    ("\u2027", "\u2027"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
    ("\u202a", "\u202a"),
    ("\ufeff", "\ufeff"),
    ("\U0001f600", "\U0001f600"),
]


@pytest.mark.parametrize(("char", "written"), ESCAPES)
def test_string_escaping_table(char: str, written: str) -> None:
    assert quote(char) == f'"{written}"'
    assert quote(f"a{char}b") == f'"a{written}b"'
    assert loads(quote(f"a{char}b")) == f"a{char}b"


def test_message_properties_escapes() -> None:
    # MessageDecoder separates properties with \u0001 and \u0002.
    assert quote("KEYS\x01k1\x02TAGS\x01t\x02") == '"KEYS\\u0001k1\\u0002TAGS\\u0001t\\u0002"'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (0.25, "0.25"),
        (-1.5, "-1.5"),
        (100.0, "100.0"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (0.00012, "1.2E-4"),
        (9999999.0, "9999999.0"),
        (9999999.5, "9999999.5"),
        (1e7, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (123456789.0, "1.23456789E8"),
        (1e21, "1.0E21"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1 / 3, "0.3333333333333333"),
        (2.5e-5, "2.5E-5"),
    ],
)
def test_java_double(value: float, text: str) -> None:
    assert java_double(value) == text
    assert dumps(value) == text


class Color(Enum):
    RED = 1


def test_values_and_containers() -> None:
    assert dumps(None) == "null"
    assert dumps(True) == "true" and dumps(False) == "false"
    assert dumps(-7) == "-7"
    assert dumps(float("nan")) == "null" and dumps(float("inf")) == "null"
    assert dumps(Color.RED) == '"RED"'
    assert dumps([1, None, "x"]) == '[1,null,"x"]'
    assert dumps(()) == "[]"
    assert dumps({}) == "{}"


def test_maps_keep_their_order_drop_nulls_and_write_int_keys_bare() -> None:
    assert dumps({"b": 1, "a": None, "c": 2}) == '{"b":1,"c":2}'
    assert dumps({0: "127.0.0.1:10911", 1: "127.0.0.1:10921"}) == (
        '{0:"127.0.0.1:10911",1:"127.0.0.1:10921"}'
    )
    assert dumps({-1: 5}) == "{-1:5}"
    assert dumps({Color.RED: 1}) == '{"RED":1}'
    assert dumps({"k\n": "v"}) == '{"k\\n":"v"}'
    key = ObjectKey({"brokerName": "b", "queueId": 1, "topic": "t"})
    assert dumps({key: {"a": 1}}) == '{{"brokerName":"b","queueId":1,"topic":"t"}:{"a":1}}'


def test_unorderable_values_are_refused() -> None:
    with pytest.raises(TypeError):
        dumps({1, 2})
    with pytest.raises(TypeError):
        dumps(object())


def test_dumps_bytes_replaces_lone_surrogates_like_java() -> None:
    assert dumps_bytes("a\ud800b") == b'"a?b"'
    assert dumps_bytes("é") == '"é"'.encode()


def test_reader_accepts_fastjson_output() -> None:
    assert loads(b'{"a":{0:"x",-12:"y"},"b":[1,2.5,true,null]}') == {
        "a": {0: "x", -12: "y"},
        "b": [1, 2.5, True, None],
    }
    nested = loads('{"m":{1:{2:{"k":[{}]}}}}')
    assert nested == {"m": {1: {2: {"k": [{}]}}}}
    keyed = loads('{"t":{{"queueId":1,"topic":"t"}:{"a":1},{"queueId":2}:{}}}')
    keys = list(keyed["t"])
    assert keys == [ObjectKey({"queueId": 1, "topic": "t"}), ObjectKey({"queueId": 2})]
    assert dict(keys[0]) == {"queueId": 1, "topic": "t"}
    assert hash(keys[0]) == hash(ObjectKey({"queueId": 1, "topic": "t"}))
    # Keys in document order, values kept as written.
    assert list(loads('{"z":1,"a":2}')) == ["z", "a"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        '{"a":}',
        "{1.5:2}",
        '{"a":1,}',
        "[1,]",
        "NaN",
        '{"a":Infinity}',
        "tru",
        '"\\x"',
        '{"a":1} x',
        "{a:1}",
        "[" * 2000 + "]" * 2000,
        "{1:" * 2000 + "1" + "}" * 2000,
        '{{"a":' * 300 + "1" + "}:1}" * 300,
    ],
    ids=lambda text: repr(text[:12]),
)
def test_reader_refuses_what_is_not_json(text: str) -> None:
    with pytest.raises(ProtocolError):
        loads(text)


def test_reader_reports_bad_utf8_with_its_offset() -> None:
    with pytest.raises(ProtocolError) as info:
        loads(b'{"a":"\xff"}')
    assert info.value.offset == 6
