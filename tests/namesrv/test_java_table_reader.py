"""The reading of a topicConfigTable in Java's exact form without the JSON
parser: whatever the body, it gives what the JSON path gives (the same
table in the same order, or the same error), and bodies it does not take are
read by the JSON path."""

from __future__ import annotations

import time
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrocket.errors import CommandError
from pyrocket.protocol.bodies import (
    DataVersion,
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.bodies import register as register_module
from pyrocket.protocol.bodies.register import RegistrationBody, decode_register_body

_JSON_ONLY = "pyrocket.protocol.bodies.register._read_java_table"


def outcome(raw: bytes, java_table: bool) -> tuple[object, ...]:
    """What decoding ``raw`` gives, with the table in its order; or the error."""
    try:
        decoded = decode_register_body(raw, False, java_table=java_table)
    except CommandError as exc:
        return ("error", str(exc))
    # A DataVersion (or its timestamp) missing from the body is stamped at
    # decoding, as Java's new DataVersion() is: not the same in two decodings.
    stamp: object = decoded.data_version.timestamp
    if abs(decoded.data_version.timestamp - now_ms()) < 60_000:
        stamp = "now"
    version = (decoded.data_version.counter, stamp)
    return (version, list(decoded.topics.items()), decoded.filter_server_list)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def assert_same_both_ways(raw: bytes) -> tuple[object, ...]:
    fast = outcome(raw, java_table=True)
    assert fast == outcome(raw, java_table=False)
    return fast


def java_body(configs: list[TopicConfig], servers: tuple[str, ...] = ()) -> bytes:
    table = {config.topic_name or "": config for config in configs}
    wrapper = TopicConfigSerializeWrapper(table, DataVersion(1_600_000_000_000, 7))
    return RegisterBrokerBody(wrapper, servers).encode()


def test_a_java_body_is_read_without_the_json_parser() -> None:
    raw = java_body(
        [TopicConfig("A", 4, 8, 6), TopicConfig("%RETRY%g", 1, 1, 2, topic_sys_flag=3)], ("f:1",)
    )
    assert register_module._read_java_table(raw) is not None
    result = assert_same_both_ways(raw)
    assert result[1] == [("A", (4, 8, 6, 0)), ("%RETRY%g", (1, 1, 2, 3))]
    assert result[2] == ("f:1",)


# Bodies around a table of Java's form that the reader must either read
# exactly as the JSON path does or leave to it.
_HEAD = '{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":'
_HEAD += '{"counter":1,"timestamp":2},"topicConfigTable":'


def entry(key: str, name: str | None = None, perm: str = "6", queues: str = "4") -> str:
    return (
        f'"{key}":{{"order":false,"perm":{perm},"readQueueNums":{queues},'
        f'"topicFilterType":"SINGLE_TAG","topicName":"{key if name is None else name}",'
        f'"topicSysFlag":0,"writeQueueNums":{queues}}}'
    )


@pytest.mark.parametrize(
    "text",
    [
        _HEAD + "{" + entry("A") + "," + entry("A", queues="9") + "}}}",  # a key twice
        _HEAD + "{" + entry("A") + "," + entry("B", name="C") + "}}}",  # key != name
        _HEAD + "{" + entry("A", perm="06") + "}}}",  # not JSON
        _HEAD + "{" + entry("A", queues="2147483648") + "}}}",  # past int
        _HEAD + "{" + entry("A", perm="-1") + "}}}",
        _HEAD + "{" + entry("A") + ", " + entry("B") + "}}}",  # a blank
        _HEAD + "{" + entry("A") + entry("B") + "}}}",  # no comma
        _HEAD + "{" + entry("A") + "}" + "}",  # unbalanced
        _HEAD + "{" + entry("A") + "}},",
        _HEAD + "{" + entry("A\\u0042") + "}}}",  # an escape in the table
        _HEAD + "{" + entry("A") + '}},"x":"\\u0041"}',  # an escape elsewhere
        _HEAD + "{" + entry("\u00e9t\u00e9") + "}}}",  # non-ASCII names
        _HEAD + "{}}}",
        # The table is not the wrapper's, or the wrapper's is given again.
        '{"x":{"topicConfigTable":{' + entry("A") + '}},"topicConfigSerializeWrapper":{}}',
        _HEAD + "{" + entry("A") + '},"topicConfig\\u0054able":{' + entry("B") + "}}}",
        _HEAD + "{" + entry("A") + '},"topicConfig\\u0054able":0}}',
        _HEAD + "{" + entry("A") + '},"topicConfigTable" :{' + entry("B") + "}}}",
        _HEAD + "{" + entry("A") + '}},"topicConfigSerializeWrapper":{}}',
        # Something wrong beside the table.
        _HEAD + "{" + entry("A") + '}},"filterServerList":[1]}',
        _HEAD.replace('"counter":1', '"counter":"x"') + "{" + entry("A") + "}}}",
        _HEAD + "{" + entry("A") + "}}}x",
        '{"topicConfigSerializeWrapper":[' + _HEAD[1:] + "{" + entry("A") + "}}]}",
    ],
)
def test_a_body_reads_the_same_either_way(text: str) -> None:
    assert_same_both_ways(text.encode())


def test_a_body_that_is_not_utf8_is_refused_as_by_the_json_path() -> None:
    raw = (_HEAD + "{" + entry("A") + "}}}").encode().replace(b'"A"', b'"\xff"')
    result = assert_same_both_ways(raw)
    assert result[0] == "error"


_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=6
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(_names, st.integers(-3, 2**31), st.integers(0, 40), st.integers(0, 7)),
        max_size=8,
    ),
    st.lists(_names, max_size=2),
)
def test_generated_bodies_read_the_same_either_way(
    rows: list[tuple[str, int, int, int]], servers: list[str]
) -> None:
    configs = [
        TopicConfig(name, read, write, perm, topic_sys_flag=read % 4)
        for name, read, write, perm in rows
    ]
    assert_same_both_ways(java_body(configs, tuple(servers)))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mangled_java_bodies_read_the_same_either_way(data: st.DataObject) -> None:
    raw = bytearray(java_body([TopicConfig(f"T{i}", i, i) for i in range(4)], ("f:1",)))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at : at + 1] = data.draw(st.sampled_from([b"", b",", b"}", b"{", b'"', b"\\", b"1"]))
    assert_same_both_ways(bytes(raw))


def test_the_registration_decoder_gives_the_json_paths_table() -> None:
    raw = java_body([TopicConfig(f"T{i}", i % 5 + 1, 4) for i in range(300)])
    fast = decode_register_body(raw, False)
    with patch(_JSON_ONLY, return_value=None):
        slow = decode_register_body(raw, False)
    assert isinstance(fast, RegistrationBody)
    assert list(fast.topics.items()) == list(slow.topics.items())
    assert fast == slow
