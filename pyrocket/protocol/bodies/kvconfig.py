"""KVConfigSerializeWrapper: the NameServer's KV tables as Java writes them
to ``kvConfig.json``::

    {"configTable":{"ORDER_TOPIC_CONFIG":{"TopicA":"broker-a:4"}}}

Namespaces and their entries are read into Java ``HashMap``s, so a loaded
table lists them in Java's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pyrocket.errors import ProtocolError
from pyrocket.protocol import fastjson
from pyrocket.protocol.javahash import JavaHashMap

KVConfigTable = JavaHashMap[str, JavaHashMap[str, str]]
"""namespace -> key -> value."""

_CONFIG_TABLE: Final = "configTable"


def encode_kv_config(table: Mapping[str, Mapping[str, str]]) -> str:
    """The file content: KVConfigSerializeWrapper as fastjson writes it."""
    return fastjson.dumps({_CONFIG_TABLE: table})


def decode_kv_config(text: str) -> KVConfigTable:
    """The table a ``kvConfig.json`` holds; raises ProtocolError saying
    what is wrong with it."""
    try:
        document = fastjson.loads(text)
    except ProtocolError as exc:
        raise ProtocolError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ProtocolError(f"expected a JSON object with a {_CONFIG_TABLE}")
    raw: Any = document.get(_CONFIG_TABLE)
    table: KVConfigTable = JavaHashMap()
    if raw is None:
        return table
    if not isinstance(raw, dict):
        raise ProtocolError(f"{_CONFIG_TABLE} is not an object")
    for namespace, entries in raw.items():
        if not isinstance(namespace, str) or not isinstance(entries, dict):
            raise ProtocolError(f"{_CONFIG_TABLE}[{namespace!r}] is not an object of strings")
        namespace_table: JavaHashMap[str, str] = JavaHashMap()
        for key, value in entries.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ProtocolError(f"{_CONFIG_TABLE}[{namespace!r}][{key!r}] is not a string")
            namespace_table[key] = value
        table[namespace] = namespace_table
    return table


__all__ = ["KVConfigTable", "decode_kv_config", "encode_kv_config"]
