"""The Java-properties engine on a configuration class of its own: keys,
types, the run-time flag, listing order, refusals and the file rewriter."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from pyrocket.errors import ConfigError
from pyrocket.javaprops import (
    QUOTED_WORDING,
    JavaLong,
    PropertiesTable,
    Unimplemented,
    Wording,
    apply_properties,
    java_fields,
    java_keys,
    not_property,
    object_properties,
    prop,
    refuse_unimplemented,
    runtime_keys,
    save_properties,
    update_properties_text,
)
from pyrocket.protocol.bodies.properties import parse_properties


class Mode(enum.Enum):
    FAST = "FAST"
    SAFE = "SAFE"


@dataclass(frozen=True, slots=True)
class Sample:
    JAVA_GROUP: ClassVar[str] = "sample"

    port: int = 10
    max_wait_millis: JavaLong = prop(5, runtime=True)
    host_ip1: str = prop("h", key="hostIP1")
    enabled: bool = False
    mode: Mode = Mode.SAFE
    home: str | None = None
    extra: str = prop("x", group="other")
    cache: dict[str, str] = not_property(factory=dict)


@dataclass(frozen=True, slots=True)
class Quoted(Sample):
    JAVA_WORDING: ClassVar[Wording] = QUOTED_WORDING

    name: str = "n"


def test_declarations_give_keys_kinds_groups_and_runtime_flags() -> None:
    specs = {spec.key: spec for spec in java_fields(Sample)}
    assert list(specs) == [
        "port",
        "maxWaitMillis",
        "hostIP1",
        "enabled",
        "mode",
        "home",
        "extra",
    ]
    assert specs["maxWaitMillis"].kind == "long" and specs["port"].kind == "int"
    assert specs["mode"].kind is Mode and specs["home"].kind == "str"
    assert specs["extra"].group == "other" and specs["port"].group == "sample"
    assert runtime_keys(Sample) == frozenset({"maxWaitMillis"})
    # A subclass's own fields take its group; inherited ones keep theirs.
    quoted = java_keys(Quoted)
    assert quoted["name"].group == "Quoted" and quoted["port"].group == "sample"


def test_apply_parses_each_type_and_ignores_other_keys() -> None:
    sample = apply_properties(
        Sample(),
        {
            "port": " 12 ",
            "maxWaitMillis": str(1 << 40),
            "hostIP1": " 10.0.0.1 ",
            "enabled": "TRUE",
            "mode": "FAST",
            "unknown": "1",
        },
    )
    assert sample == Sample(
        port=12, max_wait_millis=1 << 40, host_ip1="10.0.0.1", enabled=True, mode=Mode.FAST
    )
    untouched = Sample()
    assert apply_properties(untouched, {"unknown": "1"}) is untouched


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"port": "ten"}, "port=ten: not an integer"),
        ({"port": str(1 << 31)}, f"port={1 << 31}: out of range for a Java int"),
        ({"maxWaitMillis": str(1 << 63)}, "out of range for a Java long"),
        ({"enabled": "yes"}, "enabled=yes: expected true or false"),
        ({"mode": "fast"}, "mode=fast: expected one of FAST, SAFE"),
    ],
)
def test_bad_values_name_the_key(properties: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_properties(Sample(), properties)


def test_quoted_wording_and_unstripped_text() -> None:
    with pytest.raises(ConfigError, match="port='ten': expected an integer"):
        apply_properties(Quoted(), {"port": "ten"})
    assert apply_properties(Quoted(), {"name": " a "}).name == " a "


def test_listing_is_declaration_order_without_nulls_and_by_group() -> None:
    assert object_properties(Sample(mode=Mode.FAST)) == [
        ("port", "10"),
        ("maxWaitMillis", "5"),
        ("hostIP1", "h"),
        ("enabled", "false"),
        ("mode", "FAST"),
        ("extra", "x"),
    ]
    assert object_properties(Sample(), "other") == [("extra", "x")]


def test_table_merges_sources_and_updates_only_present_keys() -> None:
    table = PropertiesTable()
    table.merge([("b", "1"), ("a", "2")])
    table.merge([("a", "3")])
    table.merge_if_exist({"b": "4", "c": "5"})
    assert table.as_dict() == {"a": "3", "b": "4"}


def test_unimplemented_features_refuse_naming_the_key() -> None:
    features = {
        "x.on": Unimplemented("feature x"),
        "y.mode": Unimplemented("feature y", safe="off", on=None),
    }
    refuse_unimplemented({"x.on": "false", "y.mode": "OFF"}, features)
    with pytest.raises(
        ConfigError, match=re.escape("f: x.on=true: pyrocket does not implement feature x")
    ):
        refuse_unimplemented({"x.on": " true "}, features, "f: ")
    with pytest.raises(ConfigError, match=re.escape("remove y.mode or set it to off")):
        refuse_unimplemented({"y.mode": "on"}, features)


def test_rewriter_replaces_in_place_and_drops_later_duplicates(tmp_path: Path) -> None:
    text = "# c\nport = 1\nhome=/a/\\\n  b\nport=2\n"
    updated = update_properties_text(text, {"port": "3", "enabled": "true"})
    assert updated == "# c\nport=3\nhome=/a/\\\n  b\nenabled=true\n"
    assert parse_properties(updated) == {"port": "3", "home": "/a/b", "enabled": "true"}
    path = tmp_path / "sample.properties"
    save_properties(path, {"port": "4"})
    save_properties(path, {"enabled": "false"})
    assert path.read_text() == "port=4\nenabled=false\n"
