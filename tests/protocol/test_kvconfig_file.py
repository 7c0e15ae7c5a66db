"""kvConfig.json (KVConfigSerializeWrapper): written as fastjson writes it,
read back into Java-ordered tables, and what is not one is named."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrocket.errors import ProtocolError
from pyrocket.protocol.bodies.kvconfig import decode_kv_config, encode_kv_config
from pyrocket.protocol.javahash import JavaHashMap

WORDS = st.text(st.characters(codec="utf-8"), max_size=6)


@given(st.dictionaries(WORDS, st.dictionaries(WORDS, WORDS, max_size=4), max_size=4))
def test_a_table_reads_back_as_written_in_java_order(raw: dict[str, dict[str, str]]) -> None:
    table: JavaHashMap[str, JavaHashMap[str, str]] = JavaHashMap()
    for namespace, entries in raw.items():
        inner: JavaHashMap[str, str] = JavaHashMap()
        inner.update(entries)
        table[namespace] = inner
    text = encode_kv_config(table)
    assert json.loads(text) == {"configTable": raw}
    loaded = decode_kv_config(text)
    assert list(loaded) == list(table)
    for namespace, entries in table.items():
        assert list(loaded[namespace].items()) == list(entries.items())


def test_a_file_without_a_table_is_an_empty_table() -> None:
    assert not decode_kv_config("{}")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("{", "not JSON"),
        ("[]", "expected a JSON object"),
        ('{"configTable":["NS"]}', "configTable is not an object"),
        ('{"configTable":{"NS":1}}', r"configTable\['NS'\] is not an object"),
        ('{"configTable":{"NS":{"k":1}}}', r"configTable\['NS'\]\['k'\] is not a string"),
    ],
)
def test_what_is_not_a_kv_config_file_is_named(text: str, complaint: str) -> None:
    with pytest.raises(ProtocolError, match=complaint):
        decode_kv_config(text)
