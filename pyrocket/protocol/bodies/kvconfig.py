"""The NameServer's KV config file: Java's ``KVConfigSerializeWrapper``
(``{"configTable": {namespace: {key: value}}}``), written as fastjson writes
it and read into Java HashMaps in the file's order."""

from __future__ import annotations

from typing import Any, TypeAlias

from pyrocket.errors import ProtocolError
from pyrocket.protocol import fastjson
from pyrocket.protocol.javahash import JavaHashMap

#: namespace -> (key -> value), both Java HashMaps.
KVConfigTable: TypeAlias = JavaHashMap[str, JavaHashMap[str, str]]

_CONFIG_TABLE = "configTable"


def encode_kv_config(table: KVConfigTable) -> str:
    """The file's text for ``table`` (compact, as Java's ``toJson``)."""
    return fastjson.dumps({_CONFIG_TABLE: table})


def decode_kv_config(text: str) -> KVConfigTable:
    """The table a KV config file holds (empty for no ``configTable``).
    Raises ProtocolError saying what is wrong."""
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
