"""JSON as fastjson 1.2.62 writes it, and a reader for everything it writes.

Writer rules (what ``JSON.toJSONString`` does with RocketMQ's default features):

* strings: ``"`` and ``\\`` escaped with a backslash; ``\\b \\t \\n \\f \\r`` in
  their short forms; every other control character, U+007F..U+009F and
  U+2028/U+2029 as ``\\uXXXX`` with upper-case hex; ``/`` and all other
  characters written as they are;
* mappings in their own iteration order (callers pass Java's order); ``str``
  keys quoted, ``int`` keys bare (``{0:"127.0.0.1:10911"}``); entries whose
  value is ``None`` left out, as fastjson does without WriteMapNullValue;
* sequences with ``null`` for ``None`` elements; ``bool`` as true/false;
  doubles as Java's ``Double.toString`` (scientific outside [1e-3, 1e7));
* enums by name. Beans are the caller's business: a body class hands over a
  mapping whose keys are its properties in alphabetical order, nulls dropped;
* a map key that is a bean (``HashMap<MessageQueue, ...>``) written as a JSON
  object, as fastjson's MapSerializer does: ``{{"brokerName":"b","queueId":0,
  "topic":"t"}:{...}}``. Such keys are :class:`ObjectKey` values or objects with
  a ``to_json()`` method.

The reader returns plain Python values with objects as ``dict`` in document
order; a bare integer key comes back as ``int``, an object key as an
:class:`ObjectKey`. It raises :class:`~pyrocket.errors.ProtocolError` for
anything that is not JSON.
"""

from __future__ import annotations

import json
import json.decoder
import math
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from pyrocket.errors import ProtocolError

_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\\x7f-\x9f\u2028\u2029]')
#: Matches a character that :func:`quote` escapes.
NEEDS_ESCAPE: Final = _NEEDS_ESCAPE
_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group()
    short = _SHORT.get(ch)
    return short if short is not None else f"\\u{ord(ch):04X}"


class ObjectKey(Mapping[Any, Any]):
    """A JSON object used as a map key: hashable and immutable.

    Nested objects become ObjectKeys and arrays tuples, so the whole key can be
    hashed. Iterates its members in document order.
    """

    __slots__ = ("_hash", "_items")

    def __init__(self, items: Mapping[Any, Any]) -> None:
        frozen = {key: _freeze(value) for key, value in items.items()}
        self._items = frozen
        self._hash = hash(tuple(frozen.items()))

    def __getitem__(self, key: Any) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ObjectKey):
            return self._items == other._items
        return NotImplemented

    def __repr__(self) -> str:
        return f"ObjectKey({self._items!r})"


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return ObjectKey(value)
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def escape(text: str) -> str:
    """``text`` with every character fastjson escapes in a string escaped
    (:func:`quote` without the quotes; each character on its own, so the
    escape of a concatenation is the concatenation of the escapes)."""
    return _NEEDS_ESCAPE.sub(_escape_char, text)


def quote(text: str) -> str:
    """``text`` as a fastjson string literal, quotes included."""
    if _NEEDS_ESCAPE.search(text) is None:
        return f'"{text}"'
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def java_double(value: float) -> str:
    """``Double.toString`` (which fastjson's Ryu writer follows)."""
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    # repr gives the shortest round-trip digits; lay them out Java's way.
    sign_bit, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    point = len(digits) + exponent  # digits before the decimal point
    digits = digits.rstrip("0")
    sign = "-" if sign_bit else ""
    exp10 = point - 1
    if -3 <= exp10 < 7:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exp10}"


def dumps(value: Any) -> str:
    """Serialize ``value`` as fastjson would; see the module notes."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def dumps_bytes(value: Any) -> bytes:
    """:func:`dumps` encoded as UTF-8, the form bodies travel in. A lone
    surrogate becomes ``?``, as in Java's ``String.getBytes(UTF_8)``."""
    return dumps(value).encode("utf-8", "replace")


def write_to(value: Any, out: list[str]) -> None:
    """Append the text :func:`dumps` gives for ``value`` to ``out``."""
    _write(value, out)


def write_key_to(key: Any, out: list[str]) -> None:
    """Append the text of ``key`` as a map key (quoted, bare int, object)."""
    _write_key(key, out)


def dumps_pretty(value: Any) -> str:
    """``JSON.toJSONString(value, PrettyFormat)``: the layout of the files
    Java's ``ConfigManager`` writes (``topics.json``, ``subscriptionGroup.json``).

    An object opens with ``{``; each string-keyed member starts on a new line
    indented one tab deeper, members separated by ``,``; the closing ``}`` goes
    on its own line at the object's depth. Members with a non-string key stay on
    the line (fastjson only breaks before string keys). Arrays break before
    every element and before ``]``. Empty objects and arrays are ``{}`` and
    ``[]``. Scalars are written as :func:`dumps` writes them.
    """
    parts: list[str] = []
    _write_pretty(value, parts, 0)
    return "".join(parts)


def _write_pretty(value: Any, out: list[str], depth: int) -> None:
    if value is not None and not isinstance(value, str | int | float | Enum):
        to_json = getattr(value, "to_json", None)
        if to_json is not None and not isinstance(value, Mapping):
            value = to_json()
    if isinstance(value, Mapping):
        if not value:
            out.append("{}")
            return
        out.append("{")
        inner = "\n" + "\t" * (depth + 1)
        first = True
        for key, item in value.items():
            if item is None:
                continue
            if not first:
                out.append(",")
            first = False
            if isinstance(key, str):
                out.append(inner)
                out.append(quote(key))
            else:
                _write_key(key, out)
            out.append(":")
            _write_pretty(item, out, depth + 1)
        out.append("\n" + "\t" * depth + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")  # ListSerializer writes an empty list inline
            return
        out.append("[")
        inner = "\n" + "\t" * (depth + 1)
        for index, item in enumerate(value):
            if index:
                out.append(",")
            out.append(inner)
            _write_pretty(item, out, depth + 1)
        out.append("\n" + "\t" * depth + "]")
    else:
        _write(value, out)


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(quote(value))
    elif isinstance(value, Enum):
        out.append(quote(value.name))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append("null" if math.isnan(value) or math.isinf(value) else java_double(value))
    elif isinstance(value, Mapping):
        out.append("{")
        first = True
        for key, item in value.items():
            if item is None:
                continue
            if not first:
                out.append(",")
            first = False
            _write_key(key, out)
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, set | frozenset):
        raise TypeError("sets have no defined order; pass a list in Java's order")
    else:
        to_json = getattr(value, "to_json", None)
        if to_json is None:
            raise TypeError(f"cannot write {type(value).__name__} as fastjson")
        _write(to_json(), out)


def _write_key(key: Any, out: list[str]) -> None:
    if isinstance(key, str):
        out.append(quote(key))
    elif isinstance(key, bool):
        out.append("true" if key else "false")
    elif isinstance(key, int):
        out.append(str(key))
    elif isinstance(key, Enum):
        out.append(quote(key.name))
    elif isinstance(key, Mapping) or hasattr(key, "to_json"):
        _write(key, out)
    else:
        raise TypeError(f"unsupported map key type {type(key).__name__}")


# ---------------------------------------------------------------------------
# Reader

# Far deeper than any RocketMQ body; keeps the recursive reader inside
# Python's default recursion limit (three frames per level).
_MAX_DEPTH = 200
# The C string scanner behind json.loads; typeshed does not declare it.
_scanstring: Any = getattr(json.decoder, "scanstring")  # noqa: B009
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_WS = re.compile(r"[ \t\n\r]*")


def loads(data: bytes | str) -> Any:
    """Parse fastjson output (standard JSON plus bare integer keys).

    Raises ProtocolError, with the offset of the problem, for anything else.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"JSON is not valid UTF-8: {exc.reason}", exc.start) from exc
    else:
        text = data
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError, RecursionError):
        pass
    # Bare integer keys (Map<Long, ...>, Map<Integer, ...>): quote them with a
    # marker and let the C parser do the work; the marker (a leading U+0000,
    # which no key can carry unless the text spells out \u0000) turns them back
    # into ints. A match inside a string cannot survive: the inserted quote
    # ends the string and leaves a bare backslash behind, which no JSON
    # parser accepts; counting the conversions makes sure of it. Anything
    # else goes to the pure-Python reader.
    if "\\u0000" not in text:
        marked, count = _BARE_KEY.subn(_mark_bare_key, text)
        if count:
            value, converted = _loads_marked(marked)
            if converted == count:
                return value
    reader = _Reader(text)
    try:
        return reader.document()
    except RecursionError as exc:  # a deep stack on entry; depth is bounded anyway
        raise ProtocolError("invalid JSON: nesting too deep", reader.pos) from exc


_BARE_KEY = re.compile(r"([{,])[ \t\n\r]*(-?(?:0|[1-9][0-9]*))[ \t\n\r]*:")
_FAILED = object()


def _mark_bare_key(match: re.Match[str]) -> str:
    return f'{match.group(1)}"\\u0000{match.group(2)}":'


def _loads_marked(text: str) -> tuple[Any, int]:
    """Parse ``text`` with marked keys made ints again; (value, conversions),
    or (_FAILED, -1) if it does not parse."""
    converted = 0

    def unmark(obj: dict[str, Any]) -> dict[Any, Any]:
        nonlocal converted
        if "\x00" not in "".join(obj):
            return obj
        result: dict[Any, Any] = {}
        for key, value in obj.items():
            if key[:1] == "\x00":
                result[int(key[1:])] = value
                converted += 1
            else:
                result[key] = value
        return result

    try:
        value = json.loads(text, parse_constant=_reject_constant, object_hook=unmark)
    except (json.JSONDecodeError, ValueError, RecursionError):
        return _FAILED, -1
    return value, converted


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _Reader:
    """Recursive-descent fallback for what the C parser refuses (bare keys)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> ProtocolError:
        return ProtocolError(f"invalid JSON: {what}", self.pos)

    def skip_ws(self) -> None:
        match = _WS.match(self.text, self.pos)
        if match:
            self.pos = match.end()

    def document(self) -> Any:
        self.skip_ws()
        value = self.value(0)
        self.skip_ws()
        if self.pos != len(self.text):
            raise self.fail("trailing data")
        return value

    def value(self, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise self.fail("nesting too deep")
        text, pos = self.text, self.pos
        if pos >= len(text):
            raise self.fail("unexpected end")
        ch = text[pos]
        if ch == "{":
            return self.obj(depth)
        if ch == "[":
            return self.array(depth)
        if ch == '"':
            return self.string()
        for word, result in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, pos):
                self.pos = pos + len(word)
                return result
        return self.number()

    def string(self) -> str:
        try:
            result: str
            result, end = _scanstring(self.text, self.pos + 1, True)
        except json.JSONDecodeError as exc:
            self.pos = exc.pos
            raise self.fail(exc.msg) from exc
        self.pos = end
        return result

    def number(self) -> int | float:
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a value")
        if match.group(1) is None and match.group(2) is None:
            try:
                number: int | float = int(match.group())
            except ValueError:  # longer than int() accepts (4300 digits)
                raise self.fail("integer too long") from None
        else:
            number = float(match.group())
        self.pos = match.end()
        return number

    def obj(self, depth: int) -> dict[Any, Any]:
        self.pos += 1
        result: dict[Any, Any] = {}
        self.skip_ws()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return result
        while True:
            self.skip_ws()
            if self.text.startswith('"', self.pos):
                key: Any = self.string()
            elif self.text.startswith("{", self.pos):
                if depth + 1 > _MAX_DEPTH:
                    raise self.fail("nesting too deep")
                key = ObjectKey(self.obj(depth + 1))
            else:
                key = self.number()
                if not isinstance(key, int):
                    raise self.fail("object key must be a string or an integer")
            self.skip_ws()
            if not self.text.startswith(":", self.pos):
                raise self.fail("expected ':'")
            self.pos += 1
            self.skip_ws()
            result[key] = self.value(depth + 1)
            self.skip_ws()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return result
            raise self.fail("expected ',' or '}'")

    def array(self, depth: int) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        self.skip_ws()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return result
        while True:
            self.skip_ws()
            result.append(self.value(depth + 1))
            self.skip_ws()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith("]", self.pos):
                self.pos += 1
                return result
            raise self.fail("expected ',' or ']'")
