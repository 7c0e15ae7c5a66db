"""``CommandHeader.from_ext_fields`` builds headers through their slots; for
every header class and any ext-field map it gives what the keyword
constructor fed by the field rules gives, or the same CommandError."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pyrocket.errors import CommandError
from pyrocket.protocol import headers
from pyrocket.protocol.headers import CommandHeader
from pyrocket.protocol.headers.base import _from_wire

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


@given(cases())
def test_from_ext_fields_matches_the_keyword_constructor(
    case: tuple[type[CommandHeader], dict[str, str]],
) -> None:
    cls, ext = case
    assert outcome(cls, cls.from_ext_fields, ext) == outcome(
        cls, lambda e: reference_decode(cls, e), ext
    )
