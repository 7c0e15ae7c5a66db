"""``java.util.Properties`` text bodies (GET_NAMESRV_CONFIG, GET_BROKER_CONFIG,
UPDATE_NAMESRV_CONFIG, UPDATE_BROKER_CONFIG).

Java writes them with ``MixAll.properties2String``: one ``key=value\\n`` per
entry, in the Properties' iteration order, nothing escaped, no date comment.
It reads them with ``Properties.load``, whose rules :func:`parse_properties`
follows: comment lines (``#``, ``!``), blank lines, ``=``/``:``/whitespace
separators, backslash escapes (``\\t \\n \\r \\f \\uXXXX``, anything else stands
for itself) and backslash line continuations.

One deviation: ``MixAll.string2Properties`` hands ``Properties.load`` the
UTF-8 bytes, which it reads as ISO-8859-1, garbling every non-ASCII character.
pyrocket reads the text as the UTF-8 it was written in.

A Java ``Properties`` iterates as a ``ConcurrentHashMap`` of initial capacity 8;
:meth:`Properties.java_ordered` computes that order for entries put in a given
order.

:class:`UpdatePlan` is how pyrocket's servers answer UPDATE_NAMESRV_CONFIG and
UPDATE_BROKER_CONFIG: keys that may change are applied, the others refused
with a reason in the remark (Java applies anything to its config objects).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from pyrocket.errors import ProtocolError
from pyrocket.protocol.javahash import JavaConcurrentHashMap

_WHITESPACE: Final = " \t\f"
_ESCAPES: Final = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def properties_to_string(entries: Mapping[str, str | None]) -> str:
    """``MixAll.properties2String``: ``key=value\\n`` per non-null entry."""
    return "".join(f"{key}={value}\n" for key, value in entries.items() if value is not None)


def parse_properties(text: str) -> dict[str, str]:
    """``Properties.load`` on ``text``: the entries in document order (a later
    duplicate key replaces the value, keeping the first position).

    Raises ProtocolError for a malformed ``\\uXXXX`` escape, as Java's
    ``IllegalArgumentException``.
    """
    entries: dict[str, str] = {}
    for line in _logical_lines(text):
        key_end, value_start = _split_key(line)
        entries[_unescape(line[:key_end])] = _unescape(line[value_start:])
    return entries


def _logical_lines(text: str) -> Iterable[str]:
    """Properties.LineReader: logical lines with comments, blank lines and
    continuation backslashes removed, and leading whitespace skipped."""
    pos, end = 0, len(text)
    line: list[str] = []
    skip_ws = True
    appended_begin = False  # inside a continuation: newlines are not skipped
    backslash = False
    while pos < end:
        ch = text[pos]
        pos += 1
        if skip_ws:
            if ch in _WHITESPACE:
                continue
            if not appended_begin and ch in "\r\n":
                continue
            skip_ws = False
            appended_begin = False
        if not line and ch in "#!":
            while pos < end and text[pos] not in "\r\n":
                pos += 1
            skip_ws = True
            continue
        if ch not in "\r\n":
            line.append(ch)
            backslash = not backslash if ch == "\\" else False
            continue
        if not line:
            skip_ws = True
            continue
        if pos >= end:  # newline at the very end: the line is complete
            if backslash:
                line.pop()
            break
        if backslash:
            line.pop()
            skip_ws = True
            appended_begin = True
            backslash = False
            if ch == "\r" and text[pos] == "\n":
                pos += 1
            continue
        yield "".join(line)
        line = []
        skip_ws = True
    else:
        if line and backslash:
            line.pop()
    if line:
        yield "".join(line)


def _split_key(line: str) -> tuple[int, int]:
    """Where the key ends and the value starts (Properties.load0)."""
    limit = len(line)
    key_len = 0
    value_start = limit
    has_sep = False
    backslash = False
    while key_len < limit:
        ch = line[key_len]
        if ch in "=:" and not backslash:
            value_start = key_len + 1
            has_sep = True
            break
        if ch in _WHITESPACE and not backslash:
            value_start = key_len + 1
            break
        backslash = not backslash if ch == "\\" else False
        key_len += 1
    while value_start < limit:
        ch = line[value_start]
        if ch not in _WHITESPACE:
            if has_sep or ch not in "=:":
                break
            has_sep = True
        value_start += 1
    return key_len, value_start


def _unescape(text: str) -> str:
    """Properties.loadConvert."""
    if "\\" not in text:
        return text
    out: list[str] = []
    pos, end = 0, len(text)
    while pos < end:
        ch = text[pos]
        pos += 1
        if ch != "\\":
            out.append(ch)
            continue
        if pos >= end:
            break  # a lone trailing backslash stands for nothing
        ch = text[pos]
        pos += 1
        if ch == "u":
            digits = text[pos : pos + 4]
            if len(digits) < 4 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise ProtocolError(f"malformed \\uxxxx escape in properties text: {text!r}")
            out.append(chr(int(digits, 16)))
            pos += 4
        else:
            out.append(_ESCAPES.get(ch, ch))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Properties:
    """A Properties text body, entries in wire order."""

    entries: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def java_ordered(cls, entries: Iterable[tuple[str, str]]) -> Properties:
        """A ``new Properties()`` with ``entries`` put in this order: the keys
        come out in Java's iteration order (a ``ConcurrentHashMap(8)``)."""
        table: JavaConcurrentHashMap[str, str] = JavaConcurrentHashMap(8)
        for key, value in entries:
            table[key] = value
        return cls(dict(table.items()))

    def encode(self) -> bytes:
        """``properties2String(...).getBytes(UTF-8)``."""
        return properties_to_string(self.entries).encode("utf-8", "replace")

    @classmethod
    def decode(cls, data: bytes) -> Properties:
        """Parse a Properties body; raises ProtocolError for text that is not
        UTF-8 or holds a malformed ``\\uXXXX`` escape."""
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                f"properties body is not valid UTF-8: {exc.reason}", exc.start
            ) from exc
        return cls(parse_properties(text))


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """An UPDATE_*_CONFIG request split into applied and refused keys (with
    the reason for each refusal)."""

    accepted: Mapping[str, str] = field(default_factory=dict)
    refused: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, properties: Mapping[str, str], refusal: Callable[[str, str], str | None]
    ) -> UpdatePlan:
        """Sort ``properties`` by ``refusal(key, value)``: None accepts the
        key, a text refuses it for that reason."""
        accepted: dict[str, str] = {}
        refused: dict[str, str] = {}
        for key, value in properties.items():
            reason = refusal(key, value)
            if reason is None:
                accepted[key] = value
            else:
                refused[key] = reason
        return cls(accepted, refused)

    def remark(self) -> str | None:
        """The answer's remark when something was refused."""
        if not self.refused:
            return None
        reasons = "; ".join(self.refused.values())
        applied = ", ".join(self.accepted) or "nothing"
        return f"refused: {reasons} (applied: {applied})"


__all__ = ["Properties", "UpdatePlan", "parse_properties", "properties_to_string"]
