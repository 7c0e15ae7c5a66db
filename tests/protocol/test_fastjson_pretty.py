"""fastjson's PrettyFormat layout (the broker's JSON files)."""

from __future__ import annotations

from pyrocket.protocol.bodies.topic import DataVersion
from pyrocket.protocol.fastjson import dumps_pretty


def test_objects_break_before_string_keys() -> None:
    assert dumps_pretty({"a": 1, "b": {"c": "x"}}) == '{\n\t"a":1,\n\t"b":{\n\t\t"c":"x"\n\t}\n}'
    assert dumps_pretty({}) == "{}"
    assert dumps_pretty({"a": None, "b": True}) == '{\n\t"b":true\n}'


def test_non_string_keys_stay_on_the_line() -> None:
    assert dumps_pretty({"offsetTable": {1: 100, 2: 200}}) == (
        '{\n\t"offsetTable":{1:100,2:200\n\t}\n}'
    )


def test_arrays_and_beans() -> None:
    assert dumps_pretty({"l": ["a", 1]}) == '{\n\t"l":[\n\t\t"a",\n\t\t1\n\t]\n}'
    assert dumps_pretty(DataVersion(5, 2)) == '{\n\t"counter":2,\n\t"timestamp":5\n}'
    assert dumps_pretty("x") == '"x"'
    assert dumps_pretty({"l": [], "m": {}}) == '{\n\t"l":[],\n\t"m":{}\n}'
