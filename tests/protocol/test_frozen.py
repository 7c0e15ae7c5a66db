"""quick_init keeps every behaviour of the dataclass constructor it replaces."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrocket.broker.store.model import BrokerMessage
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.frozen import quick_init


def _twins() -> tuple[type[Any], type[Any]]:
    """The same class twice: with the dataclass's own ``__init__``, and with
    :func:`quick_init`'s."""

    def make() -> type[Any]:
        @dataclass(frozen=True, slots=True)
        class Record:
            name: str
            size: int = 7
            tags: list[str] = field(default_factory=list)
            note: str | None = None
            derived: int = 0

            def __post_init__(self) -> None:
                if not self.derived:
                    object.__setattr__(self, "derived", self.size * 2)

        return Record

    return make(), quick_init(make())


PLAIN, QUICK = _twins()


def _fields(record: Any) -> tuple[Any, ...]:
    return tuple(getattr(record, f.name) for f in dataclasses.fields(record))


@given(
    st.text(max_size=5),
    st.tuples(st.integers(), st.lists(st.text(max_size=3), max_size=3), st.text(max_size=3)),
    st.integers(min_value=0, max_value=3),
    st.booleans(),
)
def test_same_values_as_the_generated_constructor(
    name: str, optional: tuple[int, list[str], str], given_count: int, keywords: bool
) -> None:
    names = ("size", "tags", "note")[:given_count]
    values = optional[:given_count]
    if keywords:
        plain = PLAIN(name=name, **dict(zip(names, values, strict=True)))
        quick = QUICK(name=name, **dict(zip(names, values, strict=True)))
    else:
        plain, quick = PLAIN(name, *values), QUICK(name, *values)
    assert _fields(plain) == _fields(quick)
    assert repr(plain) == repr(quick)


def test_default_factory_runs_per_instance_and_post_init_runs() -> None:
    first, second = QUICK("a"), QUICK("b", 3)
    assert first.tags == [] and first.tags is not second.tags
    assert (first.derived, second.derived) == (14, 6)


def test_still_frozen_hashable_and_replaceable() -> None:
    record = QUICK("a", 1, ["x"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.size = 2
    assert dataclasses.replace(record, size=5).size == 5
    assert QUICK("a", 1, note="n") == QUICK("a", 1, note="n")
    assert hash(QUICK("a", 1, note="n", tags=None)) == hash(QUICK("a", 1, note="n", tags=None))


def test_argument_errors_as_the_generated_constructor() -> None:
    for cls in (PLAIN, QUICK):
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            cls("a", 1, [], None, 0, "extra")
        with pytest.raises(TypeError):
            cls("a", unknown=1)
        with pytest.raises(TypeError):
            cls("a", name="b")


def test_refuses_what_it_cannot_serve_exactly() -> None:
    @dataclass(slots=True)
    class Mutable:
        value: int

    @dataclass(frozen=True)
    class NoSlots:
        value: int

    @dataclass(frozen=True, slots=True)
    class Hidden:
        value: int
        cached: int = field(default=0, init=False)

    @dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordOnly:
        value: int

    for cls in (Mutable, NoSlots, Hidden, KeywordOnly):
        with pytest.raises(TypeError):
            quick_init(cls)


def test_the_hot_classes_use_it() -> None:
    command = RemotingCommand(10, opaque=3, remark="r")
    assert (command.code, command.opaque, command.remark, command.ext_fields) == (10, 3, "r", None)
    message = BrokerMessage("T", 1, b"body", properties_string="TAGS\x01a\x02")
    assert message.properties == {"TAGS": "a"}
    assert type(RemotingCommand.__init__).__name__ == "function"
    assert "_set0" in RemotingCommand.__init__.__globals__
