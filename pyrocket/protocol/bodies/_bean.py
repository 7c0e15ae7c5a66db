"""The machinery behind the JSON bodies: Java beans as frozen dataclasses.

fastjson writes a bean as the properties its getters expose, sorted by name,
with nulls left out; it reads one by matching keys to properties, ignoring
keys it does not know and leaving missing ones at the constructor's defaults.
A body class mirrors that by declaring each property with :func:`prop`: the
Java property name, its :class:`Kind` (how the value looks in JSON) and the
Java constructor's default::

    @dataclass(frozen=True, slots=True)
    class QueueData(Bean):
        broker_name: str | None = prop("brokerName", STR)
        perm: int = prop("perm", INT, default=0)

The declarations double as the table from Java property names to Python
attributes. Encoding writes the JSON text directly from the declarations (the
same bytes as ``fastjson.dumps(bean.to_json())``, without the intermediate
dicts). Decoding checks every JSON type on the way in, so a body either
decodes or raises :class:`~pyrocket.errors.ProtocolError` naming the path of
the offending value; fastjson would coerce some mismatches where pyrocket
refuses them (it does accept a quoted integer, which real clients send).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Self

from pyrocket.errors import ProtocolError
from pyrocket.protocol import fastjson
from pyrocket.protocol.fastjson import ObjectKey, java_double, quote

_INT32 = (-(1 << 31), (1 << 31) - 1)
_DECIMAL_KEY = re.compile(r"-?[0-9]+")
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _wrong(path: str, expected: str, value: object) -> ProtocolError:
    return ProtocolError(f"{path}: expected {expected}, got {_type_name(value)}")


class Kind:
    """How one Java type appears in fastjson's JSON, both ways."""

    #: The Python type a JSON value of this kind arrives as, when it can be
    #: taken as it is (scalars); lets decoding skip :meth:`load`.
    plain: type | None = None

    def load(self, value: Any, path: str) -> Any:
        """The Python value for the JSON ``value``; raises ProtocolError."""
        raise NotImplementedError

    def write(self, value: Any, out: list[str]) -> None:
        """Append fastjson's text for ``value`` (what ``dumps(dump(value))`` gives)."""
        fastjson.write_to(self.dump(value), out)

    def write_key(self, key: Any, out: list[str]) -> None:
        """Append fastjson's text for ``key`` used as a map key."""
        fastjson.write_key_to(self.dump_key(key), out)

    def dump(self, value: Any) -> Any:
        """A value :func:`fastjson.dumps` writes as Java would."""
        return value

    def load_key(self, key: Any, path: str) -> Any:
        """The Python value of a map key (keys are strings, bare integers or
        objects in fastjson's output)."""
        return self.load(key, path)

    def dump_key(self, key: Any) -> Any:
        """A map key :func:`fastjson.dumps` writes as Java would."""
        return self.dump(key)


class _Int(Kind):
    plain = int

    def __init__(self, java: str, bounds: tuple[int, int]) -> None:
        self.java = java
        self.low, self.high = bounds

    def load(self, value: Any, path: str) -> int:
        if isinstance(value, str) and _DECIMAL_KEY.fullmatch(value) and len(value) <= 40:
            # fastjson reads a quoted integer into an int/long property, and the
            # C++ client quotes some (HEART_BEAT's subVersion).
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(path, f"a Java {self.java}", value)
        if not self.low <= value <= self.high:
            raise ProtocolError(f"{path}: {value} is out of Java {self.java} range")
        return value

    def write(self, value: Any, out: list[str]) -> None:
        out.append(str(value))

    def write_key(self, key: Any, out: list[str]) -> None:
        out.append(str(key))

    def load_key(self, key: Any, path: str) -> int:
        # fastjson writes integer keys bare; standard JSON writers quote them,
        # and fastjson reads those into Integer/Long keys too.
        if isinstance(key, str) and _DECIMAL_KEY.fullmatch(key):
            if len(key) > 40:
                raise ProtocolError(f"{path}: key {key[:20]}... is out of Java {self.java} range")
            key = int(key)
        return self.load(key, path)


class _Bool(Kind):
    plain = bool

    def load(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise _wrong(path, "a boolean", value)
        return value

    def write(self, value: Any, out: list[str]) -> None:
        out.append("true" if value else "false")


class _Str(Kind):
    plain = str

    def load(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise _wrong(path, "a string", value)
        return value

    def write(self, value: Any, out: list[str]) -> None:
        out.append(quote(value))

    def write_key(self, key: Any, out: list[str]) -> None:
        out.append(quote(key))


class _Double(Kind):
    def load(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(path, "a number", value)
        try:
            return float(value)
        except OverflowError as exc:
            raise ProtocolError(f"{path}: {value} is out of Java double range") from exc

    def dump(self, value: Any) -> float:
        return float(value)

    def write(self, value: Any, out: list[str]) -> None:
        number = float(value)
        out.append(java_double(number) if math.isfinite(number) else "null")


INT = _Int("int", _INT32)
"""Java ``int``/``Integer``."""
LONG = _Int("long", _INT64)
"""Java ``long``/``Long``/``AtomicLong`` (fastjson writes an AtomicLong as its value)."""
BOOL = _Bool()
STR = _Str()
DOUBLE = _Double()


class EnumKind(Kind):
    """A Java enum: written by name; read by name or, as fastjson also
    accepts, by ordinal (declaration order)."""

    def __init__(self, enum: type[Enum]) -> None:
        self.enum = enum
        self.members = list(enum)

    def load(self, value: Any, path: str) -> Enum:
        if isinstance(value, str):
            member = self.enum.__members__.get(value)
            if member is None:
                raise ProtocolError(f"{path}: {value!r} is not a {self.enum.__name__}")
            return member
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value < len(self.members):
                return self.members[value]
            raise ProtocolError(f"{path}: {value} is not a {self.enum.__name__} ordinal")
        raise _wrong(path, f"a {self.enum.__name__} name", value)

    def write(self, value: Any, out: list[str]) -> None:
        out.append(quote(value.name))


class BeanKind(Kind):
    """A nested bean; as a map key, a JSON object (fastjson's object keys)."""

    def __init__(self, bean: type[Bean]) -> None:
        self.bean = bean

    def load(self, value: Any, path: str) -> Bean:
        return self.bean.from_json(value, path)

    def dump(self, value: Any) -> Any:
        return value.to_json()

    def load_key(self, key: Any, path: str) -> Bean:
        if not isinstance(key, ObjectKey):
            raise _wrong(path, f"a {self.bean.__name__} object as key", key)
        return self.bean.from_json(key, path)

    def dump_key(self, key: Any) -> ObjectKey:
        return ObjectKey(key.to_json())

    def write(self, value: Any, out: list[str]) -> None:
        value._write(out)

    def write_key(self, key: Any, out: list[str]) -> None:
        key._write(out)


class ListKind(Kind):
    """A Java ``List`` or ``Set``: a JSON array, kept as a tuple in wire order.

    Sets travel in the order the Java set iterates; the caller supplies that
    order (see :mod:`pyrocket.protocol.javahash`). ``null`` elements are
    refused unless ``nullable``: Java collections may hold null, and a few
    really do on the wire (a cluster's broker-name set after a registration
    without ``brokerName``).
    """

    def __init__(self, item: Kind, nullable: bool = False) -> None:
        self.item = item
        self.nullable = nullable

    def load(self, value: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise _wrong(path, "an array", value)
        load = self.item.load
        result: list[Any] = []
        for index, item in enumerate(value):
            if item is None:
                if not self.nullable:
                    raise ProtocolError(f"{path}[{index}]: null element")
                result.append(None)
            else:
                result.append(load(item, f"{path}[{index}]"))
        return tuple(result)

    def dump(self, value: Any) -> list[Any]:
        dump = self.item.dump
        return [None if item is None else dump(item) for item in value]

    def write(self, value: Any, out: list[str]) -> None:
        write = self.item.write
        out.append("[")
        first = True
        for item in value:
            if not first:
                out.append(",")
            first = False
            if item is None:
                out.append("null")
            else:
                write(item, out)
        out.append("]")


class MapKind(Kind):
    """A Java ``Map``: a JSON object kept as a dict in wire order (writing
    follows the mapping's own order; pass Java's, e.g. a ``JavaHashMap``)."""

    def __init__(self, key: Kind, value: Kind) -> None:
        self.key = key
        self.value = value

    def load(self, value: Any, path: str) -> dict[Any, Any]:
        if not isinstance(value, Mapping):
            raise _wrong(path, "an object", value)
        load_key, load = self.key.load_key, self.value.load
        result: dict[Any, Any] = {}
        for key, item in value.items():
            where = f"{path}[{key!r}]" if not isinstance(key, ObjectKey) else f"{path}[{{...}}]"
            if item is None:
                raise ProtocolError(f"{where}: null value")
            result[load_key(key, where)] = load(item, where)
        return result

    def dump(self, value: Any) -> dict[Any, Any]:
        dump_key, dump = self.key.dump_key, self.value.dump
        return {dump_key(k): dump(v) for k, v in value.items()}

    def write(self, value: Any, out: list[str]) -> None:
        write_key, write = self.key.write_key, self.value.write
        out.append("{")
        first = True
        for key, item in value.items():
            if item is None:
                continue  # fastjson drops null map values
            if not first:
                out.append(",")
            first = False
            write_key(key, out)
            out.append(":")
            write(item, out)
        out.append("}")


def list_of(item: Kind, *, nullable: bool = False) -> ListKind:
    return ListKind(item, nullable)


def map_of(key: Kind, value: Kind) -> MapKind:
    return MapKind(key, value)


def bean(cls: type[Bean]) -> BeanKind:
    return BeanKind(cls)


def enum(cls: type[Enum]) -> EnumKind:
    return EnumKind(cls)


def prop(
    wire: str,
    kind: Kind,
    *,
    default: Any = None,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """Declare a bean property: Java name, kind and Java's default.

    ``factory`` builds a fresh default (for mutable or time-based defaults).
    """
    metadata = {"wire": wire, "kind": kind}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True, slots=True)
class _Prop:
    attr: str
    wire: str
    kind: Kind
    #: '"wire":' and ',"wire":', the text before the value
    first_prefix: str
    prefix: str
    #: for ints: the bounds a plain value must lie in
    bounds: tuple[int, int] | None


_PROPS: dict[type, tuple[_Prop, ...]] = {}  # a cache of a pure function of the class


def _props(cls: type[Bean]) -> tuple[_Prop, ...]:
    cached = _PROPS.get(cls)
    if cached is None:
        cached = _PROPS[cls] = _collect_props(cls)
    return cached


_READERS: dict[type, tuple[tuple[Any, ...], ...]] = {}  # likewise


def _readers(cls: type[Bean]) -> tuple[tuple[Any, ...], ...]:
    """(wire, attr, plain type, low, high, kind) per property, for from_json."""
    cached = _READERS.get(cls)
    if cached is None:
        cached = _READERS[cls] = tuple(
            (p.wire, p.attr, p.kind.plain, *(p.bounds or (None, None)), p.kind) for p in _props(cls)
        )
    return cached


def _collect_props(cls: type[Bean]) -> tuple[_Prop, ...]:
    props = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if "wire" not in f.metadata:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with prop()")
        wire, kind = f.metadata["wire"], f.metadata["kind"]
        bounds = (kind.low, kind.high) if isinstance(kind, _Int) else None
        name = quote(wire)
        props.append(_Prop(f.name, wire, kind, f"{name}:", f",{name}:", bounds))
    # fastjson sorts bean properties by name (String.compareTo: code units).
    props.sort(key=lambda p: p.wire.encode("utf-16-be"))
    return tuple(props)


class Bean:
    """Base of the JSON body classes and of the beans nested in them.

    Subclasses are ``@dataclass(frozen=True, slots=True)`` declared with
    :func:`prop`. ``to_json``/``from_json`` convert to and from the parsed
    JSON value; ``encode``/``decode`` to and from fastjson bytes.
    """

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        """The bean's properties in fastjson's order, nulls left out."""
        result: dict[str, Any] = {}
        for p in _props(type(self)):
            value = getattr(self, p.attr)
            if value is not None:
                result[p.wire] = p.kind.dump(value)
        return result

    @classmethod
    def from_json(cls, obj: Any, path: str | None = None) -> Self:
        """Build from a parsed JSON object; missing or null keys take Java's
        defaults, unknown keys are ignored. Raises ProtocolError."""
        where = path if path is not None else cls.__name__
        if not isinstance(obj, Mapping):
            raise _wrong(where, "an object", obj)
        kwargs: dict[str, Any] = {}
        get = obj.get
        for wire, attr, plain, low, high, kind in _readers(cls):
            raw = get(wire)
            if raw is None:
                continue
            # The common case without building a path: a scalar of the right
            # type (exact type: bool is an int subclass) and range.
            if type(raw) is plain and (low is None or low <= raw <= high):
                kwargs[attr] = raw
            else:
                kwargs[attr] = kind.load(raw, f"{where}.{wire}")
        return cls(**kwargs)

    def _write(self, out: list[str]) -> None:
        out.append("{")
        first = True
        for p in _props(type(self)):
            value = getattr(self, p.attr)
            if value is None:
                continue
            out.append(p.first_prefix if first else p.prefix)
            first = False
            p.kind.write(value, out)
        out.append("}")

    def encode(self) -> bytes:
        """fastjson's bytes for this bean (``RemotingSerializable.encode``)."""
        out: list[str] = []
        self._write(out)
        return "".join(out).encode("utf-8", "replace")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Parse fastjson (or any JSON) bytes; raises ProtocolError."""
        return cls.from_json(fastjson.loads(data))
