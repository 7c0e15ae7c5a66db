"""NameServer configuration: Java's NamesrvConfig and NettyServerConfig keys.

A Java operator's ``namesrv.properties`` works as it is: the keys are the Java
property names (the table :data:`PROPERTIES` maps them to attributes; the
fields are declared with :mod:`pyrocket.javaprops`, the NettyServerConfig
ones once, in :mod:`pyrocket.remoting.netty`, for the broker too). Values
are checked (Java ignores a value it cannot parse and keeps the default; here
it is a ConfigError naming the key). Keys the NameServer does not know are
kept and listed by GET_NAMESRV_CONFIG, as Java does, with a warning.

:class:`Configuration` is Java's ``Configuration`` object: every property in
one ``java.util.Properties`` whose iteration order (a ``ConcurrentHashMap(8)``
filled NamesrvConfig first, then NettyServerConfig, then the file's entries)
is GET_NAMESRV_CONFIG's body order.

Java's NameServer serves TLS as the ``tls.*`` system properties say; here
those keys are read from the file and the command line as well
(:data:`~pyrocket.remoting.tls.TLS_KEYS`, into ``NamesrvConfig.tls``; the
file ``tls.config.file`` names is read when the server starts). Their
passwords are never listed by GET_NAMESRV_CONFIG.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, TypeAlias

import trio

from pyrocket.errors import ConfigError
from pyrocket.javaprops import (
    QUOTED_WORDING,
    JavaField,
    JavaLong,
    PropertiesTable,
    Wording,
    apply_properties,
    java_fields,
    java_keys,
    not_property,
    object_properties,
    prop,
    read_properties_file,
    runtime_keys,
    save_properties,
)
from pyrocket.persist import CoalescingWriter
from pyrocket.protocol.bodies.properties import (
    UpdatePlan,
    properties_to_string,
)
from pyrocket.protocol.codes import SerializeType
from pyrocket.remoting.netty import NAMESRV_LISTEN_PORT, NettyServerConfig
from pyrocket.remoting.tls import SECRET_TLS_KEYS, TLS_KEYS

log = logging.getLogger("pyrocket.namesrv")

DEFAULT_LISTEN_PORT: Final = NAMESRV_LISTEN_PORT


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def _default_kv_config_path() -> str:
    return str(_home() / "namesrv" / "kvConfig.json")


def _default_config_store_path() -> str:
    return str(_home() / "namesrv" / "namesrv.properties")


def _default_rocketmq_home() -> str | None:
    return os.environ.get("ROCKETMQ_HOME") or None


@dataclass(frozen=True, slots=True)
class NamesrvConfig(NettyServerConfig):
    """Everything a NameServer is configured with: Java's NettyServerConfig
    (inherited, listenPort as NamesrvStartup sets it before reading the file)
    and NamesrvConfig.

    Attributes are Java's property names in snake_case (see
    :data:`PROPERTIES`). The three ``*_millis`` liveness settings are
    pyrocket's own (Java hard-codes them). ``serialize_type`` is Java's
    ``rocketmq.serialize.type`` system property, not a NameServer property.
    ``file_properties`` are the entries of the file the config was read
    from, in file order (GET_NAMESRV_CONFIG lists them too).
    """

    JAVA_GROUP: ClassVar[str] = "namesrv"
    JAVA_WORDING: ClassVar[Wording] = QUOTED_WORDING

    listen_port: int = DEFAULT_LISTEN_PORT
    # NamesrvConfig, in Java's declaration order
    rocketmq_home: str | None = prop(factory=_default_rocketmq_home)
    kv_config_path: str = prop(factory=_default_kv_config_path)
    config_store_path: str = prop(factory=_default_config_store_path)
    product_env_name: str = "center"
    cluster_test: bool = False
    order_message_enable: bool = prop(False, runtime=True)
    # pyrocket: broker liveness (RouteInfoManager's constants in Java)
    scan_not_active_broker_delay_millis: JavaLong = prop(5_000, group="pyrocket")
    scan_not_active_broker_interval_millis: JavaLong = prop(10_000, group="pyrocket")
    broker_channel_expired_time_millis: JavaLong = prop(120_000, group="pyrocket")
    # pyrocket: the port of /metrics (-1: not served; 0: any free port)
    metrics_port: int = prop(-1, group="pyrocket")
    # pyrocket: ACL on the NameServer's writes (same plain_acl.yml as the broker)
    acl_enable: bool = prop(False, group="pyrocket")
    # not properties
    serialize_type: SerializeType = not_property(SerializeType.JSON)
    file_properties: Mapping[str, str] = not_property(factory=dict)

    def replace(self, **changes: Any) -> NamesrvConfig:
        return dataclasses.replace(self, **changes)

    def with_properties(self, properties: Mapping[str, str]) -> NamesrvConfig:
        """This config with ``properties`` (Java names) applied.

        Raises ConfigError naming the first unknown key or bad value.
        """
        for key in properties:
            if key not in _BY_JAVA_NAME and key not in TLS_KEYS:
                raise ConfigError(f"{key}: not a NameServer property")
        known = {k: v for k, v in properties.items() if k in _BY_JAVA_NAME}
        changed: NamesrvConfig = apply_properties(self, known)
        if not -1 <= changed.metrics_port <= 65535:
            raise ConfigError(
                f"metricsPort={changed.metrics_port}: expected -1 (off) or a port 0..65535"
            )
        tls = self.tls.with_properties(properties)
        return changed if tls is self.tls else changed.replace(tls=tls)

    def java_properties(self, group: str) -> list[tuple[str, str]]:
        """The properties of one Java config object (``"namesrv"`` or
        ``"netty"``) as ``MixAll.object2Properties`` lists them: declared
        order, null fields left out."""
        return object_properties(self, group)


#: One configuration key: Java name, attribute, type and owning object.
Property: TypeAlias = JavaField

_GROUP_ORDER: Final = ("namesrv", "netty", "pyrocket")
#: Every key, Java name <-> attribute: NamesrvConfig's, NettyServerConfig's,
#: then pyrocket's, each in Java's declaration order.
PROPERTIES: Final = tuple(
    sorted(java_fields(NamesrvConfig), key=lambda spec: _GROUP_ORDER.index(spec.group))
)
_BY_JAVA_NAME: Final = java_keys(NamesrvConfig)

#: Keys UPDATE_NAMESRV_CONFIG may change: read at use time, no paths, no peers.
RUNTIME_KEYS: Final = runtime_keys(NamesrvConfig)
#: Keys naming files or directories: never changed over the network.
PATH_KEYS: Final = frozenset({"rocketmqHome", "kvConfigPath", "configStorePath"})


def property_for(java_name: str) -> Property | None:
    """The key named ``java_name``, or None."""
    return _BY_JAVA_NAME.get(java_name)


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
        entries = read_properties_file(path)
        known = {k: v for k, v in entries.items() if k in _BY_JAVA_NAME or k in TLS_KEYS}
        for key in entries:
            if key not in _BY_JAVA_NAME and key not in TLS_KEYS:
                log.warning("%s: %s is not a NameServer property; kept, not used", path, key)
        try:
            config = config.with_properties(known)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        config = config.replace(config_store_path=str(path), file_properties=dict(entries))
    if overrides:
        config = config.with_properties(overrides)
    return config


def refusal_reason(key: str, value: str) -> str | None:
    """Why UPDATE_NAMESRV_CONFIG refuses ``key=value``, or None if it may change."""
    if key in TLS_KEYS:
        return f"{key} is only read at start; edit the config file and restart"
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
        self._all = PropertiesTable()
        self._merge_objects(config)
        # NamesrvStartup registers the file's own entries after the objects.
        self._all.merge(
            (k, v) for k, v in config.file_properties.items() if k not in SECRET_TLS_KEYS
        )

    def _merge_objects(self, config: NamesrvConfig) -> None:
        for group in ("namesrv", "netty"):
            self._all.merge(config.java_properties(group))

    def all_configs(self, config: NamesrvConfig) -> dict[str, str]:
        """Every property, refreshed from ``config`` as Java re-reads its
        objects on each call."""
        self._merge_objects(config)
        return self._all.as_dict()

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


__all__ = [
    "PATH_KEYS",
    "PROPERTIES",
    "RUNTIME_KEYS",
    "ConfigFileWriter",
    "Configuration",
    "NamesrvConfig",
    "Property",
    "load_config",
    "plan_update",
    "property_for",
    "refusal_reason",
    "save_properties",
]
