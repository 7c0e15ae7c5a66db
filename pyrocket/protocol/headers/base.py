"""Typed custom headers: the ``extFields`` of a command as a frozen dataclass.

Java builds ``extFields`` from a ``CommandCustomHeader`` by walking the class's
declared fields in declaration order and putting each non-null value, as its
``toString()``, into a fresh ``HashMap``; reading does the reverse, parsing each
field by its Java type. A pyrocket header declares the same fields, in the same
order, with :func:`jfield` giving the Java name and type::

    @dataclass(frozen=True, slots=True)
    class GetRouteInfoRequestHeader(CommandHeader):
        topic: str = jfield("topic", STRING, required=True)

Decoding follows Java (``@CFNotNull`` fields must be present: "the custom
field <name> is null") except that a value that does not parse as its Java type
is an error naming the field and value, where Java logs and leaves the default.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from operator import attrgetter
from typing import Any, ClassVar, Self

from pyrocket.errors import CommandError
from pyrocket.protocol.fastjson import java_double
from pyrocket.protocol.javahash import hashmap_order


class JType(Enum):
    """The Java type of a header field, which decides parsing and range."""

    STRING = "String"
    INT = "Integer"
    LONG = "Long"
    BOOLEAN = "Boolean"
    DOUBLE = "Double"


STRING = JType.STRING
INT = JType.INT
LONG = JType.LONG
BOOLEAN = JType.BOOLEAN
DOUBLE = JType.DOUBLE

_JAVA_INTEGER = re.compile(r"[-+]?[0-9]+")
_JAVA_DOUBLE = re.compile(
    r"\s*[-+]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)[fFdD]?)\s*", re.ASCII
)
_RANGES = {JType.INT: (-(1 << 31), (1 << 31) - 1), JType.LONG: (-(1 << 63), (1 << 63) - 1)}


def jfield(
    wire: str,
    jtype: JType,
    *,
    required: bool = False,
    default: Any = None,
) -> Any:
    """Declare a header field: its Java name, Java type and ``@CFNotNull``."""
    return dataclasses.field(
        default=default, metadata={"wire": wire, "jtype": jtype, "required": required}
    )


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    attr: str
    wire: str
    jtype: JType
    required: bool


@dataclass(frozen=True, slots=True)
class CommandHeader:
    """Base of every typed header. Subclasses are frozen dataclasses whose
    fields are declared with :func:`jfield`, in the Java class's field order."""

    #: Java's HashMap capacity for the map the fields go into.
    ext_capacity: ClassVar[int | None] = None

    @classmethod
    def _specs(cls) -> tuple[_FieldSpec, ...]:
        specs = _SPECS.get(cls)
        if specs is None:
            specs = _SPECS[cls] = _specs_of(cls)
        return specs

    @classmethod
    def wire_names(cls) -> tuple[str, ...]:
        """The Java field names, in declaration order."""
        return tuple(spec.wire for spec in cls._specs())

    def to_ext_fields(self, preceding: Mapping[str, str] | None = None) -> dict[str, str]:
        """The ext fields Java would send, in Java's HashMap iteration order.

        ``preceding`` are entries already in the command's map before the
        header's fields are put (Java's ``addExtField`` before encoding, as an
        RPC hook's ``AccessKey``/``Signature``); a header field of the same name
        replaces the value and keeps the position.
        """
        if preceding:
            present: list[tuple[str, str]] = list(preceding.items())
            for spec in self._specs():
                value = getattr(self, spec.attr)
                if value is not None:
                    present.append((spec.wire, _to_wire(value, spec)))
            merged = dict(present)
            order = _order_for(tuple(merged), self.ext_capacity)
            return {key: merged[key] for key in order}
        cls = type(self)
        writer = _WRITERS.get(cls)
        if writer is None:
            writer = _WRITERS[cls] = _Writer(cls)
        values: dict[str, str] = {}
        # Which fields are present, as bits: the key order is looked up by it.
        present_bits = 0
        bit = 1
        for value, (wire, kind, low, high, spec) in zip(
            writer.read(self), writer.fields, strict=True
        ):
            if value is not None:
                # The common cases inline; anything else (and every error)
                # through _to_wire.
                if kind == _TEXT and type(value) is str:
                    values[wire] = value
                elif kind == _WHOLE and type(value) is int and low <= value <= high:
                    values[wire] = str(value)
                elif kind == _FLAG:
                    values[wire] = "true" if value else "false"
                else:
                    values[wire] = _to_wire(value, spec)
                present_bits |= bit
            bit <<= 1
        known = writer.orders.get(present_bits)
        if known is None:
            known = writer.orders[present_bits] = _order_for(tuple(values), cls.ext_capacity)
        order = known
        return {key: values[key] for key in order}

    @classmethod
    def from_ext_fields(cls, ext: Mapping[str, str]) -> Self:
        """Parse ``ext``; raises CommandError for a missing required field or a
        value that is not of the field's Java type. Unknown keys are ignored."""
        plan = _PLANS.get(cls)
        if plan is None:
            plan = _PLANS[cls] = _plan_of(cls)
        get = ext.get
        # Built field by field through the slots, as the dataclass's own
        # constructor would (headers have no __post_init__), at a fraction
        # of the cost of a keyword call of a frozen class.
        header = _new_header(cls)
        for setter, spec, default in plan:
            raw = get(spec.wire)
            if raw is None:
                if spec.required:
                    raise CommandError(f"the custom field <{spec.wire}> is null")
                setter(header, default)
            elif spec.jtype is STRING_TYPE:
                setter(header, raw)
            else:
                setter(header, _from_wire(raw, spec))
        return header


_SPECS: dict[type[CommandHeader], tuple[_FieldSpec, ...]] = {}


class _Writer:
    """How :meth:`CommandHeader.to_ext_fields` writes one header class: its
    fields read at once, and the key order for each set of present fields."""

    __slots__ = ("fields", "orders", "read")

    def __init__(self, cls: type[CommandHeader]) -> None:
        specs = cls._specs()
        self.fields: tuple[tuple[str, int, int, int, _FieldSpec], ...] = tuple(
            (spec.wire, _KINDS[spec.jtype], *_RANGES.get(spec.jtype, (0, 0)), spec)
            for spec in specs
        )
        attrs = [spec.attr for spec in specs]
        if len(attrs) == 1:
            one = attrgetter(attrs[0])
            self.read: Callable[[Any], tuple[Any, ...]] = lambda header: (one(header),)
        elif attrs:
            self.read = attrgetter(*attrs)
        else:
            self.read = lambda header: ()
        self.orders: dict[int, tuple[str, ...]] = {}


_WRITERS: dict[type[CommandHeader], _Writer] = {}
_TEXT, _FLAG, _WHOLE, _REAL = range(4)
_KINDS: dict[JType, int] = {
    JType.STRING: _TEXT,
    JType.BOOLEAN: _FLAG,
    JType.INT: _WHOLE,
    JType.LONG: _WHOLE,
    JType.DOUBLE: _REAL,
}
#: Per header class: each field's slot setter, spec and default.
_PLANS: dict[
    type[CommandHeader], tuple[tuple[Callable[[Any, Any], None], _FieldSpec, Any], ...]
] = {}
_new_header = object.__new__
STRING_TYPE = JType.STRING


def _plan_of(
    cls: type[CommandHeader],
) -> tuple[tuple[Callable[[Any, Any], None], _FieldSpec, Any], ...]:
    if "__post_init__" in dir(cls):
        raise TypeError(f"{cls.__name__} has a __post_init__, which from_ext_fields skips")
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    if any(value is dataclasses.MISSING for value in defaults.values()):
        raise TypeError(f"{cls.__name__} has a field without a default")
    return tuple(
        (getattr(cls, spec.attr).__set__, spec, defaults[spec.attr]) for spec in cls._specs()
    )


def _specs_of(cls: type[CommandHeader]) -> tuple[_FieldSpec, ...]:
    specs = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "wire" not in meta:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with jfield()")
        specs.append(_FieldSpec(f.name, meta["wire"], meta["jtype"], meta["required"]))
    return tuple(specs)


@cache
def _order_for(keys: tuple[str, ...], capacity: int | None) -> tuple[str, ...]:
    return tuple(hashmap_order(keys, capacity))


def _to_wire(value: Any, spec: _FieldSpec) -> str:
    jtype = spec.jtype
    if jtype is JType.STRING:
        return str(value)
    if jtype is JType.BOOLEAN:
        return "true" if value else "false"
    if jtype is JType.DOUBLE:
        return java_double(float(value))
    low, high = _RANGES[jtype]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CommandError(f"header field {spec.wire}={value!r} does not fit Java {jtype.value}")
    return str(value)


def _show(raw: str) -> str:
    """``raw`` for an error message, cut short if it is long."""
    return repr(raw) if len(raw) <= 64 else repr(raw[:64]) + f"... ({len(raw)} chars)"


def plain_java_number(text: str | None, digits: int) -> int | None:
    """A plain decimal (an optional ``-``, then ASCII digits) of at most
    ``digits`` digits, hence in range, as an int; else None, for the general
    parse (or refusal) as Java does it."""
    if text is None:
        return None
    if text.isdigit() and text.isascii() and len(text) <= digits:
        return int(text)
    if text[:1] == "-" and text[1:].isdigit() and text.isascii() and len(text) <= digits + 1:
        return int(text)
    return None


def _from_wire(raw: str, spec: _FieldSpec) -> Any:
    jtype = spec.jtype
    if jtype is JType.STRING:
        return raw
    if jtype is JType.BOOLEAN:
        # Boolean.parseBoolean: "true" in any case is true, everything else false.
        return raw.lower() == "true"
    if jtype is JType.DOUBLE:
        if _JAVA_DOUBLE.fullmatch(raw) is None:
            raise CommandError(f"the custom field <{spec.wire}> is not a Double: {_show(raw)}")
        return float(raw.strip().rstrip("fFdD"))
    plain = plain_java_number(raw, 9 if jtype is JType.INT else 18)
    if plain is not None:
        return plain  # the usual case
    if _JAVA_INTEGER.fullmatch(raw) is None:
        raise CommandError(f"the custom field <{spec.wire}> is not a {jtype.value}: {_show(raw)}")
    low, high = _RANGES[jtype]
    # Skip int() on absurdly long digit strings (it refuses past 4300 digits).
    value = int(raw) if len(raw) <= 40 else high + 1
    if not low <= value <= high:
        raise CommandError(
            f"the custom field <{spec.wire}> is out of {jtype.value} range: {_show(raw)}"
        )
    return value
