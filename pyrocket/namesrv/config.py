"""NameServer configuration: Java's NamesrvConfig and NettyServerConfig keys.

A Java operator's ``namesrv.properties`` works as it is: the keys are the Java
property names (the table :data:`PROPERTIES` maps them to attributes). Values
are checked (Java ignores a value it cannot parse and keeps the default; here
it is a ConfigError naming the key). Keys the NameServer does not know are
kept and listed by GET_NAMESRV_CONFIG, as Java does, with a warning.

:class:`Configuration` is Java's ``Configuration`` object: every property in
one ``java.util.Properties`` whose iteration order (a ``ConcurrentHashMap(8)``
filled NamesrvConfig first, then NettyServerConfig, then the file's entries)
is GET_NAMESRV_CONFIG's body order.

Java's NameServer serves TLS when the ``tls.server.mode`` system property
says so (``useTLS`` / ``tls.enable`` for its client side); pyrocket has no
TLS, so those keys, in the file or on the command line, refuse to start
unless they leave TLS off (:func:`refuse_unimplemented`).

UPDATE_NAMESRV_CONFIG differs from Java on purpose: Java applies any key,
including the paths it writes to (CVE-2023-37582), and rewrites the config
file with every property. pyrocket applies only :data:`RUNTIME_KEYS` (read at
use time, naming no file or peer) and refuses the others with a reason;
accepted keys are written into the config file in place (other lines kept).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import trio

from pyrocket.errors import ConfigError, ProtocolError
from pyrocket.persist import CoalescingWriter, write_atomically
from pyrocket.protocol.bodies.properties import (
    UpdatePlan,
    parse_properties,
    properties_to_string,
)
from pyrocket.protocol.codes import SerializeType
from pyrocket.protocol.javahash import JavaConcurrentHashMap

log = logging.getLogger("pyrocket.namesrv")

DEFAULT_LISTEN_PORT: Final = 9876


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def _default_kv_config_path() -> str:
    return str(_home() / "namesrv" / "kvConfig.json")


def _default_config_store_path() -> str:
    return str(_home() / "namesrv" / "namesrv.properties")


def _default_rocketmq_home() -> str | None:
    return os.environ.get("ROCKETMQ_HOME") or None


@dataclass(frozen=True, slots=True)
class NamesrvConfig:
    """Everything a NameServer is configured with.

    Attributes are Java's property names in snake_case (see
    :data:`PROPERTIES`). The three ``*_millis`` liveness settings are
    pyrocket's own (Java hard-codes them). ``serialize_type`` is Java's
    ``rocketmq.serialize.type`` system property, not a NameServer property.
    ``file_properties`` are the entries of the file the config was read
    from, in file order (GET_NAMESRV_CONFIG lists them too).
    """

    # NamesrvConfig, in Java's declaration order
    rocketmq_home: str | None = field(default_factory=_default_rocketmq_home)
    kv_config_path: str = field(default_factory=_default_kv_config_path)
    config_store_path: str = field(default_factory=_default_config_store_path)
    product_env_name: str = "center"
    cluster_test: bool = False
    order_message_enable: bool = False
    # NettyServerConfig, in Java's declaration order (listenPort as
    # NamesrvStartup sets it before reading the file)
    listen_port: int = DEFAULT_LISTEN_PORT
    server_worker_threads: int = 8
    server_callback_executor_threads: int = 0
    server_selector_threads: int = 3
    server_oneway_semaphore_value: int = 256
    server_async_semaphore_value: int = 64
    server_channel_max_idle_time_seconds: int = 120
    server_socket_snd_buf_size: int = 65535
    server_socket_rcv_buf_size: int = 65535
    server_pooled_byte_buf_allocator_enable: bool = True
    use_epoll_native_selector: bool = False
    # pyrocket: broker liveness (RouteInfoManager's constants in Java)
    scan_not_active_broker_delay_millis: int = 5_000
    scan_not_active_broker_interval_millis: int = 10_000
    broker_channel_expired_time_millis: int = 120_000
    # not properties
    serialize_type: SerializeType = SerializeType.JSON
    file_properties: Mapping[str, str] = field(default_factory=dict)

    def replace(self, **changes: Any) -> NamesrvConfig:
        return dataclasses.replace(self, **changes)

    def with_properties(self, properties: Mapping[str, str]) -> NamesrvConfig:
        """This config with ``properties`` (Java names) applied.

        Raises ConfigError naming the first unknown key or bad value.
        """
        changes: dict[str, Any] = {}
        for key, text in properties.items():
            prop = _BY_JAVA_NAME.get(key)
            if prop is None:
                raise ConfigError(f"{key}: not a NameServer property")
            changes[prop.attr] = prop.parse(text)
        return dataclasses.replace(self, **changes)

    def java_properties(self, group: str) -> list[tuple[str, str]]:
        """The properties of one Java config object (``"namesrv"`` or
        ``"netty"``) as ``MixAll.object2Properties`` lists them: declared
        order, null fields left out."""
        entries = []
        for prop in PROPERTIES:
            if prop.group == group:
                value = getattr(self, prop.attr)
                if value is not None:
                    entries.append((prop.java, prop.format(value)))
        return entries


@dataclass(frozen=True, slots=True)
class Property:
    """One configuration key: Java name, attribute, type and owning object."""

    java: str
    attr: str
    kind: type
    group: str  # "namesrv", "netty" (Java objects) or "pyrocket"

    def parse(self, text: str) -> Any:
        """The value of ``text``; raises ConfigError naming the key."""
        value = text.strip()
        if self.kind is bool:
            lowered = value.lower()
            if lowered not in ("true", "false"):
                raise ConfigError(f"{self.java}={text!r}: expected true or false")
            return lowered == "true"
        if self.kind is int:
            if re.fullmatch(r"[-+]?[0-9]+", value) is None:
                raise ConfigError(f"{self.java}={text!r}: expected an integer")
            number = int(value)
            if not -(1 << 63) <= number < (1 << 63):
                raise ConfigError(f"{self.java}={text!r}: out of range")
            return number
        return text

    def format(self, value: Any) -> str:
        """Java's ``toString()`` of the value."""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


_NAMESRV_KEYS: Final = (
    ("rocketmqHome", str),
    ("kvConfigPath", str),
    ("configStorePath", str),
    ("productEnvName", str),
    ("clusterTest", bool),
    ("orderMessageEnable", bool),
)
_NETTY_KEYS: Final = (
    ("listenPort", int),
    ("serverWorkerThreads", int),
    ("serverCallbackExecutorThreads", int),
    ("serverSelectorThreads", int),
    ("serverOnewaySemaphoreValue", int),
    ("serverAsyncSemaphoreValue", int),
    ("serverChannelMaxIdleTimeSeconds", int),
    ("serverSocketSndBufSize", int),
    ("serverSocketRcvBufSize", int),
    ("serverPooledByteBufAllocatorEnable", bool),
    ("useEpollNativeSelector", bool),
)
_PYROCKET_KEYS: Final = (
    ("scanNotActiveBrokerDelayMillis", int),
    ("scanNotActiveBrokerIntervalMillis", int),
    ("brokerChannelExpiredTimeMillis", int),
)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


#: Every key, Java name <-> attribute, in Java's declaration order.
_GROUPS: Final = (("namesrv", _NAMESRV_KEYS), ("netty", _NETTY_KEYS), ("pyrocket", _PYROCKET_KEYS))
PROPERTIES: Final = tuple(
    Property(java, _snake(java), kind, group) for group, keys in _GROUPS for java, kind in keys
)
_BY_JAVA_NAME: Final = {prop.java: prop for prop in PROPERTIES}

#: Keys UPDATE_NAMESRV_CONFIG may change: read at use time, no paths, no peers.
RUNTIME_KEYS: Final = frozenset({"orderMessageEnable"})
#: Keys naming files or directories: never changed over the network.
PATH_KEYS: Final = frozenset({"rocketmqHome", "kvConfigPath", "configStorePath"})


def property_for(java_name: str) -> Property | None:
    """The key named ``java_name``, or None."""
    return _BY_JAVA_NAME.get(java_name)


#: Keys that would switch on TLS, which pyrocket does not implement, and the
#: value that keeps it off.
TLS_KEYS: Final[Mapping[str, str]] = {
    "tls.server.mode": "disabled",
    "useTLS": "false",
    "tls.enable": "false",
}


def refuse_unimplemented(properties: Mapping[str, str], where: str = "") -> None:
    """Raise ConfigError naming the first key of ``properties`` that asks
    for TLS (see :data:`TLS_KEYS`)."""
    for key, text in properties.items():
        off = TLS_KEYS.get(key)
        value = text.strip()
        if off is not None and value.lower() != off:
            raise ConfigError(
                f"{where}{key}={value}: pyrocket does not implement TLS and will not run "
                f"without it; remove {key} or set it to {off}"
            )


def load_config(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, str] | None = None,
    *,
    base: NamesrvConfig | None = None,
) -> NamesrvConfig:
    """The configuration ``mqnamesrv -c file`` would run with, then
    ``overrides`` (Java names, e.g. from the command line) applied.

    As in Java, the file becomes ``configStorePath``. Unknown keys in the
    file are kept (and logged); unknown override keys are an error. Raises
    ConfigError naming the file or key.
    """
    config = base or NamesrvConfig()
    if config_file is not None:
        path = Path(config_file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read: {exc}") from exc
        try:
            entries = parse_properties(text)
        except ProtocolError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        refuse_unimplemented(entries, f"{path}: ")
        known = {k: v for k, v in entries.items() if k in _BY_JAVA_NAME}
        for key in entries:
            if key not in _BY_JAVA_NAME and key not in TLS_KEYS:
                log.warning("%s: %s is not a NameServer property; kept, not used", path, key)
        try:
            config = config.with_properties(known)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        config = config.replace(config_store_path=str(path), file_properties=dict(entries))
    if overrides:
        refuse_unimplemented(overrides)
        config = config.with_properties(overrides)
    return config


def refusal_reason(key: str, value: str) -> str | None:
    """Why UPDATE_NAMESRV_CONFIG refuses ``key=value``, or None if it may change."""
    prop = _BY_JAVA_NAME.get(key)
    if prop is None:
        return f"{key} is not a NameServer config key"
    if key in PATH_KEYS:
        return f"{key} names a file or directory and cannot be changed remotely"
    if key not in RUNTIME_KEYS:
        return f"{key} is only read at start; edit the config file and restart"
    try:
        prop.parse(value)
    except ConfigError as exc:
        return str(exc)
    return None


def plan_update(properties: Mapping[str, str]) -> UpdatePlan:
    """Sort requested keys into accepted and refused (with reasons)."""
    return UpdatePlan.of(properties, refusal_reason)


class Configuration:
    """Java's ``Configuration`` of a NameServer: all properties, in Java's
    order, for GET_NAMESRV_CONFIG."""

    def __init__(self, config: NamesrvConfig) -> None:
        self._all: JavaConcurrentHashMap[str, str] = JavaConcurrentHashMap(8)
        self._merge_objects(config)
        # NamesrvStartup registers the file's own entries after the objects.
        self._merge(config.file_properties.items())

    def _merge_objects(self, config: NamesrvConfig) -> None:
        for group in ("namesrv", "netty"):
            self._merge(config.java_properties(group))

    def _merge(self, entries: Iterable[tuple[str, str]]) -> None:
        # Each source is itself a java.util.Properties: walk it in its order.
        source: JavaConcurrentHashMap[str, str] = JavaConcurrentHashMap(8)
        for key, value in entries:
            source[key] = value
        for key, value in source.items():
            self._all[key] = value

    def all_configs(self, config: NamesrvConfig) -> dict[str, str]:
        """Every property, refreshed from ``config`` as Java re-reads its
        objects on each call."""
        self._merge_objects(config)
        return dict(self._all.items())

    def format_string(self, config: NamesrvConfig) -> str:
        """GET_NAMESRV_CONFIG's body text (``getAllConfigsFormatString``)."""
        return properties_to_string(self.all_configs(config))


class ConfigFileWriter:
    """The one writer of the NameServer's properties file for the keys
    UPDATE_NAMESRV_CONFIG changes: every key changed since start-up (at most
    one entry per run-time key) is rewritten in place by each round, so
    updates that come together share one write and never undo each other."""

    def __init__(self, path: Callable[[], str]) -> None:
        self._path = path
        self._changes: dict[str, str] = {}
        self.writer = CoalescingWriter("NameServer config file", self._write_round, log)

    def record(self, accepted: Mapping[str, str]) -> int:
        """Note applied changes; returns the generation to wait for."""
        self._changes.update(accepted)
        return self.writer.request()

    async def _write_round(self) -> None:
        changes = dict(self._changes)
        await trio.to_thread.run_sync(save_properties, self._path(), changes)


def save_properties(path: str | os.PathLike[str], changes: Mapping[str, str]) -> None:
    """Write ``changes`` into the properties file at ``path``: each key's
    first ``key=value`` line is replaced, other lines (comments, order) are
    kept, missing keys are appended. Atomic; raises OSError."""
    target = Path(path)
    try:
        lines = target.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    pending = dict(changes)
    continued = False
    for index, line in enumerate(lines):
        stripped = line.lstrip(" \t\f")
        is_continuation = continued
        continued = _ends_with_continuation(line)
        if is_continuation or not stripped or stripped[0] in "#!":
            continue
        match = re.match(r"([^=:\s\\]+)", stripped)
        if match is not None and match.group(1) in pending and not continued:
            key = match.group(1)
            lines[index] = f"{key}={_escape_value(pending.pop(key))}"
    lines.extend(f"{key}={_escape_value(value)}" for key, value in pending.items())
    write_atomically(target, "\n".join(lines) + "\n")


def _ends_with_continuation(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
