"""The typed headers' quick paths give what the field rules give.

``CommandHeader.from_ext_fields`` builds headers through their slots: for
every header class and any ext-field map it gives what the keyword
constructor fed by the field rules gives, or the same CommandError.
``CommandHeader.to_ext_fields`` reads the fields at once and looks the key
order up by the set of fields present: for every header class and any field
values it gives the map (same order) or the error the field-by-field rules
give."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pyrocket.errors import CommandError
from pyrocket.protocol import headers
from pyrocket.protocol.headers import CommandHeader
from pyrocket.protocol.headers.base import JType, _from_wire, _order_for, _to_wire

HEADER_CLASSES = sorted(
    (
        value
        for value in vars(headers).values()
        if isinstance(value, type)
        and issubclass(value, CommandHeader)
        and value is not CommandHeader
    ),
    key=lambda cls: cls.__name__,
)

RAW = st.sampled_from(
    [
        "",
        "0",
        "-1",
        "12",
        "+7",
        "007",
        "true",
        "TRUE",
        "false",
        "x",
        "1.5",
        " 2 ",
        "2147483648",
        "-9223372036854775809",
        "9" * 50,
    ]
) | st.text(max_size=6)


def reference_decode(cls: type[CommandHeader], ext: Mapping[str, str]) -> CommandHeader:
    kwargs: dict[str, Any] = {}
    for spec in cls._specs():
        raw = ext.get(spec.wire)
        if raw is None:
            if spec.required:
                raise CommandError(f"the custom field <{spec.wire}> is null")
            continue
        kwargs[spec.attr] = _from_wire(raw, spec)
    return cls(**kwargs)


def outcome(cls: type[CommandHeader], decode: Any, ext: Mapping[str, str]) -> object:
    try:
        header = decode(ext)
    except CommandError as exc:
        return ("error", str(exc))
    assert type(header) is cls
    return header, [getattr(header, spec.attr) for spec in cls._specs()], hash(header)


@st.composite
def cases(draw: st.DrawFn) -> tuple[type[CommandHeader], dict[str, str]]:
    cls = draw(st.sampled_from(HEADER_CLASSES))
    names = [*cls.wire_names(), "unknownKey"]
    ext = draw(st.dictionaries(st.sampled_from(names), RAW, max_size=len(names)))
    if draw(st.booleans()):
        # Every required field present, so that the rest gets decoded too.
        for spec in cls._specs():
            if spec.required and spec.wire not in ext:
                ext[spec.wire] = draw(RAW)
    return cls, ext


def test_every_header_class_is_covered() -> None:
    assert len(HEADER_CLASSES) > 50


@settings(max_examples=500)
@given(cases())
def test_from_ext_fields_matches_the_keyword_constructor(
    case: tuple[type[CommandHeader], dict[str, str]],
) -> None:
    cls, ext = case
    assert outcome(cls, cls.from_ext_fields, ext) == outcome(
        cls, lambda e: reference_decode(cls, e), ext
    )


def reference_encode(header: CommandHeader, preceding: Mapping[str, str] | None) -> dict[str, str]:
    present: list[tuple[str, str]] = list(preceding.items()) if preceding else []
    for spec in header._specs():
        value = getattr(header, spec.attr)
        if value is not None:
            present.append((spec.wire, _to_wire(value, spec)))
    values = dict(present)
    order = _order_for(tuple(values), header.ext_capacity)
    return {key: values[key] for key in order}


VALUES = {
    JType.STRING: st.text(max_size=5) | st.integers(-5, 5),
    JType.INT: st.integers(-(1 << 31) - 1, 1 << 31) | st.booleans() | st.just(1.5),
    JType.LONG: st.integers(-(1 << 63) - 1, 1 << 63) | st.sampled_from([0, -1, 7]),
    JType.BOOLEAN: st.booleans() | st.sampled_from([0, 1, "x"]),
    JType.DOUBLE: st.floats(allow_nan=False) | st.integers(-3, 3),
}


@st.composite
def filled_headers(draw: st.DrawFn) -> tuple[CommandHeader, dict[str, str] | None]:
    cls = draw(st.sampled_from(HEADER_CLASSES))
    kwargs = {spec.attr: draw(st.none() | VALUES[spec.jtype]) for spec in cls._specs()}
    preceding = draw(
        st.none()
        | st.dictionaries(st.sampled_from(["AccessKey", "Signature", *cls.wire_names()]), RAW)
    )
    return cls(**kwargs), preceding


def encoded(work: Any) -> object:
    try:
        ext = work()
    except CommandError as exc:
        return ("error", str(exc))
    return list(ext.items())


@settings(max_examples=500)
@given(filled_headers())
def test_to_ext_fields_matches_the_field_rules(
    case: tuple[CommandHeader, dict[str, str] | None],
) -> None:
    header, preceding = case
    expected = encoded(lambda: reference_encode(header, preceding))
    assert encoded(lambda: header.to_ext_fields(preceding)) == expected
    # Again: the second call uses the key order remembered by the first.
    assert encoded(lambda: header.to_ext_fields(preceding)) == expected
