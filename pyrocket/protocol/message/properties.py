"""A message's properties string, ``name \\x01 value \\x02`` repeated, both
ways, and the ``HashMap`` that gives Java's property order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pyrocket.errors import ProtocolError
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message.constants import NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR


def encode_properties(properties: Mapping[str, str]) -> str:
    """``messageProperties2String``: ``name \\x01 value \\x02`` per entry, in the
    mapping's iteration order (pass a :class:`JavaHashMap` for Java's order).

    Raises ValueError when a name or value contains a separator character:
    the receiver would split it into different properties.
    """
    parts: list[str] = []
    for name, value in properties.items():
        if "\x01" in name or "\x02" in name or "\x01" in value or "\x02" in value:
            raise ValueError(f"property {name!r} contains a separator character")
        parts.append(f"{name}\x01{value}\x02")
    return "".join(parts)


def _java_split(text: str, sep: str) -> list[str]:
    """``String.split`` with a one-character separator: trailing empty strings
    are dropped."""
    parts = text.split(sep)
    while len(parts) > 1 and not parts[-1]:
        parts.pop()
    if parts == [""] and text:
        # Java drops every trailing empty string, even when all of them are.
        return []
    return parts


def decode_properties(text: str) -> dict[str, str]:
    """``string2messageProperties``, keeping the order of the string.

    Java's parsing, exactly: entries that do not split into exactly a name and
    a value (an empty value, a stray ``\\x01``) are skipped, a repeated name
    keeps its first position and its last value. It never fails.
    """
    result: dict[str, str] = {}
    if not text:
        return result
    for item in text.split(PROPERTY_SEPARATOR):
        # The usual entry, "name\x01value" with a non-empty value and no
        # second separator, needs no Java split; anything else takes it.
        name, _, value = item.partition(NAME_VALUE_SEPARATOR)
        if value and NAME_VALUE_SEPARATOR not in value:
            result[name] = value
        elif value:
            pair = _java_split(item, NAME_VALUE_SEPARATOR)
            if len(pair) == 2:
                result[pair[0]] = pair[1]
    return result


def java_properties(
    entries: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> JavaHashMap[str, str]:
    """A ``HashMap<String, String>`` (default capacity) filled in the given
    order: what Java's ``Message.putProperty`` calls or ``string2messageProperties``
    build, so that iterating it gives Java's order on the wire."""
    result: JavaHashMap[str, str] = JavaHashMap()
    items = entries.items() if isinstance(entries, Mapping) else entries
    for name, value in items:
        result[name] = value
    return result


def decode_utf8(data: bytes | bytearray | memoryview, what: str, offset: int) -> str:
    """Strict UTF-8 text of a topic or properties field (the record and batch
    decoders share it). Raises ProtocolError naming ``what`` and the offset of
    the first bad byte, counted from ``offset``."""
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{what} is not valid UTF-8", offset + exc.start) from exc


__all__ = [
    "decode_properties",
    "decode_utf8",
    "encode_properties",
    "java_properties",
]
