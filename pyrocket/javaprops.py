"""One engine for configuration objects read from Java properties.

A configuration object is a frozen dataclass whose fields are Java config
fields in snake_case, declared in Java's order. Each field is a property
unless declared with :func:`not_property`; :func:`prop` declares one with a
Java key that camel-casing does not give (``brokerIP1``), a ``runtime`` flag
(UPDATE_*_CONFIG may change it while the server runs) or a ``group`` (the
Java object it belongs to, when one dataclass holds more than one). The value
type comes from the annotation: ``int`` (a Java int), :data:`JavaLong`,
``bool``, ``str`` (``| None`` allowed) or an :class:`enum.Enum`.

On top of the declarations: :func:`read_properties_file`,
:func:`apply_properties` (Java's
``properties2Object``, except that a value that does not parse is a
ConfigError naming the key), :func:`object_properties` (``object2Properties``,
the order of --printConfigItem and GET_*_CONFIG), :class:`PropertiesTable`
(Java's ``Configuration``: every property in one ``java.util.Properties``),
:func:`refuse_unimplemented` and the in-place file rewriter
(:func:`update_properties_text`, :func:`save_properties`,
:func:`persist_changes`).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

import trio

from pyrocket.errors import ConfigError, ProtocolError
from pyrocket.persist import write_atomically, write_atomically_async
from pyrocket.protocol.bodies.properties import parse_properties
from pyrocket.protocol.codes import SerializeType
from pyrocket.protocol.javahash import JavaConcurrentHashMap

#: A Java ``long`` field (the annotation text tells the parser the range).
JavaLong: TypeAlias = int

#: A value kind: "int", "long", "bool", "str" or an enum class.
Kind: TypeAlias = str | type[enum.Enum]

_META: Final = "pyrocket.javaprops"
_INTEGER: Final = re.compile(r"[-+]?[0-9]+")


@dataclass(frozen=True, slots=True)
class Wording:
    """How a refused value is reported: ``quote`` writes the text as a Python
    literal (``listenPort='x'``); ``not_integer`` says what the value is not."""

    quote: bool = False
    not_integer: str = "not an integer"
    #: Whether a text value loses its surrounding blanks.
    strip_text: bool = True


#: The broker's wording (``fileReservedTime=72h: not an integer``).
JAVA_WORDING: Final = Wording()
#: The NameServer's wording (``listenPort='port': expected an integer``).
QUOTED_WORDING: Final = Wording(quote=True, not_integer="expected an integer", strip_text=False)


@dataclass(frozen=True, slots=True)
class _Declared:
    key: str | None
    runtime: bool
    group: str | None
    is_property: bool


def prop(
    default: Any = dataclasses.MISSING,
    *,
    factory: Any = dataclasses.MISSING,
    key: str | None = None,
    runtime: bool = False,
    group: str | None = None,
) -> Any:
    """A property field: ``default`` or ``factory``, the Java ``key`` when
    camel-casing the attribute does not give it, ``runtime`` when it may
    change while the server runs, ``group`` when not the class's own."""
    meta = {_META: _Declared(key, runtime, group, True)}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def not_property(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING) -> Any:
    """A field of the object that is no Java property (never read nor listed)."""
    meta = {_META: _Declared(None, False, None, False)}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def camel_key(attribute: str) -> str:
    """``register_broker_timeout_mills`` -> ``registerBrokerTimeoutMills``."""
    head, *rest = attribute.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def java_text(value: object) -> str:
    """A value as Java's ``toString`` writes it (``true``, ``ASYNC_MASTER``, ``42``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return value.name
    return str(value)


@dataclass(frozen=True, slots=True)
class JavaField:
    """One property of a configuration class."""

    key: str
    attr: str
    kind: Kind
    runtime: bool
    group: str
    wording: Wording

    def parse(self, text: str) -> Any:
        """The value of ``text``; raises ConfigError naming the key."""
        shown = repr(text) if self.wording.quote else text
        value = text.strip()
        kind = self.kind
        if kind in ("int", "long"):
            if not _INTEGER.fullmatch(value):
                raise ConfigError(f"{self.key}={shown}: {self.wording.not_integer}")
            number = int(value)
            bits = 63 if kind == "long" else 31
            if not -(1 << bits) <= number < (1 << bits):
                raise ConfigError(f"{self.key}={shown}: out of range for a Java {kind}")
            return number
        if kind == "bool":
            lowered = value.lower()
            if lowered not in ("true", "false"):
                raise ConfigError(f"{self.key}={shown}: expected true or false")
            return lowered == "true"
        if isinstance(kind, type):
            try:
                return kind[value]
            except KeyError:
                names = ", ".join(member.name for member in kind)
                raise ConfigError(f"{self.key}={shown}: expected one of {names}") from None
        return value if self.wording.strip_text else text


def _kind(cls: type[Any], name: str, annotation: object) -> Kind:
    text = str(annotation).replace(" | None", "").strip()
    simple = {"int": "int", "JavaLong": "long", "bool": "bool", "str": "str"}.get(text)
    if simple is not None:
        return simple
    resolved = eval(text, vars(sys.modules[cls.__module__]))
    if isinstance(resolved, type) and issubclass(resolved, enum.Enum):
        return resolved
    raise TypeError(f"{cls.__name__}.{name}: {text} is not a property type")


def _group_of(cls: type[Any], attribute: str) -> str:
    # The class that declares the field names its group (NamesrvConfig's
    # netty fields come from NettyServerConfig).
    for klass in reversed(cls.__mro__):
        if attribute in getattr(klass, "__annotations__", {}):
            return str(vars(klass).get("JAVA_GROUP", klass.__name__))
    return cls.__name__


def java_fields(cls: type[Any]) -> tuple[JavaField, ...]:
    """The properties of ``cls``, in declaration order."""
    key: object = cls
    return _java_fields(key)


def java_keys(cls: type[Any]) -> Mapping[str, JavaField]:
    """Java key -> property of ``cls``, in declaration order."""
    key: object = cls
    return _java_keys(key)


# Keyed by class: a class's declarations never change once it is built.
@functools.cache
def _java_fields(cls: Any) -> tuple[JavaField, ...]:
    wording = getattr(cls, "JAVA_WORDING", JAVA_WORDING)
    found = []
    for f in dataclasses.fields(cls):
        declared = f.metadata.get(_META, _Declared(None, False, None, True))
        if not declared.is_property:
            continue
        found.append(
            JavaField(
                key=declared.key or camel_key(f.name),
                attr=f.name,
                kind=_kind(cls, f.name, f.type),
                runtime=declared.runtime,
                group=declared.group or _group_of(cls, f.name),
                wording=wording,
            )
        )
    return tuple(found)


@functools.cache
def _java_keys(cls: Any) -> Mapping[str, JavaField]:
    return {spec.key: spec for spec in java_fields(cls)}


def runtime_keys(*classes: type[Any]) -> frozenset[str]:
    """The keys of ``classes`` declared ``runtime``."""
    return frozenset(spec.key for cls in classes for spec in java_fields(cls) if spec.runtime)


def read_properties_file(path: Path) -> dict[str, str]:
    """The entries of a properties file (UTF-8), in file order. Raises
    ConfigError naming the file when it cannot be read or parsed."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        return parse_properties(text)
    except ProtocolError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def apply_properties(obj: Any, properties: Mapping[str, str]) -> Any:
    """``obj`` with every key of ``properties`` it has set (other keys are
    ignored); ``obj`` itself when none applies. Raises ConfigError naming the
    key of a value that does not parse."""
    keys = java_keys(type(obj))
    changes = {
        keys[key].attr: keys[key].parse(text) for key, text in properties.items() if key in keys
    }
    return dataclasses.replace(obj, **changes) if changes else obj


def object_properties(obj: Any, group: str | None = None) -> list[tuple[str, str]]:
    """``MixAll.object2Properties``: (Java key, text) of every non-null
    property (of ``group`` only, if given), in declaration order."""
    entries = []
    for spec in java_fields(type(obj)):
        if group is not None and spec.group != group:
            continue
        value = getattr(obj, spec.attr)
        if value is not None:
            entries.append((spec.key, java_text(value)))
    return entries


class PropertiesTable:
    """Java's ``Configuration``: every property in one ``java.util.Properties``
    (Java 9+: a ``ConcurrentHashMap(8)``), each source merged in its own
    iteration order, so that listing it gives Java's order."""

    def __init__(self) -> None:
        self._all: JavaConcurrentHashMap[str, str] = JavaConcurrentHashMap(8)

    def merge(self, entries: Iterable[tuple[str, str]]) -> None:
        """Add a source (itself a ``java.util.Properties`` filled in order)."""
        source: JavaConcurrentHashMap[str, str] = JavaConcurrentHashMap(8)
        for key, value in entries:
            source[key] = value
        for key, value in source.items():
            self._all[key] = value

    def merge_if_exist(self, changes: Mapping[str, str]) -> None:
        """Set the keys already present (``mergeIfExist``)."""
        for key, value in changes.items():
            if key in self._all:
                self._all[key] = value

    def as_dict(self) -> dict[str, str]:
        return dict(self._all.items())


@dataclass(frozen=True, slots=True)
class Unimplemented:
    """A key that switches on a feature pyrocket lacks: ``on`` is the value
    that does (None: any value but ``safe``)."""

    feature: str
    safe: str = "false"
    on: str | None = "true"

    def switched_on(self, value: str) -> bool:
        lowered = value.lower()
        return lowered != self.safe if self.on is None else lowered == self.on


def refuse_unimplemented(
    properties: Mapping[str, str], features: Mapping[str, Unimplemented], where: str = ""
) -> None:
    """Raise ConfigError naming the first key of ``properties`` that switches
    on one of ``features``."""
    for key, text in properties.items():
        wanted = features.get(key)
        value = text.strip()
        if wanted is not None and wanted.switched_on(value):
            raise ConfigError(
                f"{where}{key}={value}: pyrocket does not implement {wanted.feature} and will "
                f"not run without it; remove {key} or set it to {wanted.safe}"
            )


# ---------------------------------------------------------------------------
# Writing changed keys back into a properties file

_WS: Final = " \t\f"


def _escape_value(value: str) -> str:
    out = []
    for index, ch in enumerate(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\f":
            out.append("\\f")
        elif ch == " " and index == 0:
            out.append("\\ ")
        else:
            out.append(ch)
    return "".join(out)


def _ends_continued(line: str) -> bool:
    stripped = line.rstrip("\r\n")
    count = len(stripped) - len(stripped.rstrip("\\"))
    return count % 2 == 1


def update_properties_text(text: str, changes: Mapping[str, str]) -> str:
    """``text`` (a properties file) with each key of ``changes`` set: lines that
    define the key are replaced, missing keys appended; everything else stays."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    written: set[str] = set()
    index = 0
    while index < len(lines):
        first = index
        line = lines[index]
        stripped = line.lstrip(_WS)
        index += 1
        if not stripped.strip() or stripped[0] in "#!":
            out.append(line)
            continue
        while _ends_continued(lines[index - 1]) and index < len(lines):
            index += 1
        logical = "".join(lines[first:index])
        try:
            keys = list(parse_properties(logical))
        except ProtocolError:  # a line Java's loader would reject: leave it alone
            keys = []
        key = keys[0] if keys else None
        if key is not None and key in changes:
            if key not in written:
                out.append(f"{key}={_escape_value(changes[key])}\n")
                written.add(key)
            continue
        out.extend(lines[first:index])
    missing = [key for key in changes if key not in written]
    if missing:
        if out and not out[-1].endswith(("\n", "\r")):
            out.append("\n")
        out.extend(f"{key}={_escape_value(changes[key])}\n" for key in missing)
    return "".join(out)


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return ""


def save_properties(path: str | Path, changes: Mapping[str, str]) -> None:
    """Write ``changes`` into the properties file at ``path`` in place
    (:func:`update_properties_text`), atomically. Blocking; raises OSError
    or UnicodeDecodeError."""
    target = Path(path)
    write_atomically(target, update_properties_text(_read_or_empty(target), changes))


async def persist_changes(path: Path, changes: Mapping[str, str]) -> None:
    """Write ``changes`` into the properties file at ``path`` (atomically, the
    old content kept in ``<path>.bak``). Raises ConfigError if it cannot."""
    try:
        text = await trio.to_thread.run_sync(_read_or_empty, path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read to record the change: {exc}") from exc
    try:
        await write_atomically_async(path, update_properties_text(text, changes))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be written: {exc.strerror or exc}") from exc


def serialize_type_from_env() -> SerializeType:
    """The header form a server writes, as Java's RemotingCommand picks it:
    ``$ROCKETMQ_SERIALIZE_TYPE`` (JSON or ROCKETMQ), JSON when unset or empty.
    Read where configuration is loaded (the protocol layer reads no
    environment). Raises ConfigError for another value."""
    name = os.environ.get("ROCKETMQ_SERIALIZE_TYPE", "JSON").strip().upper() or "JSON"
    try:
        return SerializeType[name]
    except KeyError:
        raise ConfigError(f"ROCKETMQ_SERIALIZE_TYPE={name}: expected JSON or ROCKETMQ") from None
