"""The broker's configuration: ``broker.conf`` as a Java broker reads it.

A Java broker spreads one properties file over four objects: ``BrokerConfig``,
``NettyServerConfig``, ``NettyClientConfig`` and ``MessageStoreConfig``. Here
they are :class:`BrokerConfig`, the NettyServerConfig and NettyClientConfig
of :mod:`pyrocket.remoting.netty` (the NameServer's too) and the store's
:class:`~pyrocket.broker.store.MessageStoreConfig`, held together by
:class:`BrokerSettings`, all declared with :mod:`pyrocket.javaprops`. Every
attribute is the Java field in snake_case with Java's default;
:func:`java_key` / the ``JAVA_KEYS`` tables give the spelling used in files
and on the wire.

:func:`load_broker_settings` does what ``BrokerStartup`` does with ``-c
broker.conf`` and the command line: every key goes to each object that has it,
then the start-up rules apply (a master's ``brokerId`` is 0, a slave's must be
positive, ``haListenPort`` is ``listenPort + 1``, ``namesrvAddr`` must be
``host:port`` entries separated by ``;``). Where Java ignores a value that
does not parse, this raises :class:`ConfigError` naming the key; keys no
object knows are kept (Java lists them in GET_BROKER_CONFIG) and reported
through the ``warn`` callback.

Keys that switch on a Java security or durability feature pyrocket does not
have (:data:`UNIMPLEMENTED`: DLedger, the transient store pool)
refuse to start, naming the key, rather than run silently without it.

The ``tls.*`` keys (Java's TlsSystemConfig system properties) are read from
broker.conf and the command line too, into ``server.tls``
(:mod:`pyrocket.remoting.tls`); the broker's own connections (to the
NameServers) use TLS when ``useTLS`` says so, else when ``tls.enable`` does,
else when the broker enforces TLS itself, as BrokerStartup decides. The
other keys pyrocket parses but does not act on are listed in
docs/deviations.md.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Self, TypeAlias

from pyrocket import javaprops
from pyrocket.broker.store.config import BrokerRole, MessageStoreConfig
from pyrocket.errors import ConfigError
from pyrocket.filter.bloom import BloomFilter
from pyrocket.javaprops import (
    JavaLong,
    Unimplemented,
    apply_properties,
    camel_key,
    java_fields,
    java_keys,
    java_text,
    prop,
    read_properties_file,
    serialize_type_from_env,
)
from pyrocket.protocol.bodies.topic import PERM_READ, PERM_WRITE
from pyrocket.protocol.codes import SerializeType
from pyrocket.remoting.address import split_address
from pyrocket.remoting.netty import (
    BROKER_LISTEN_PORT,
    NettyClientConfig,
    NettyServerConfig,
    broker_client_defaults,
    broker_server_defaults,
)
from pyrocket.remoting.tls import TLS_KEYS, TlsMode, TlsSettings

log = logging.getLogger("pyrocket.broker")

#: MixAll constants the broker's defaults and system topics use.
DEFAULT_CLUSTER: Final = "DefaultCluster"
RMQ_SYS_TRACE_TOPIC: Final = "RMQ_SYS_TRACE_TOPIC"
DEFAULT_TRACE_REGION_ID: Final = "DefaultRegion"

#: BrokerStartup's listen port when the file names none.
DEFAULT_LISTEN_PORT: Final = BROKER_LISTEN_PORT


def _cpus() -> int:
    return os.cpu_count() or 1


def local_host_name() -> str:
    """``BrokerConfig.localHostName()``: this host's name."""
    try:
        return socket.gethostname() or "DEFAULT_BROKER"
    except OSError:
        return "DEFAULT_BROKER"


def _interface_ipv4_addresses() -> list[str]:
    """IPv4 addresses of the network interfaces, in interface order (Linux)."""
    found: list[str] = []
    siocgifaddr = 0x8915
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return found
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for name in names:
            try:
                packed = fcntl.ioctl(
                    probe.fileno(), siocgifaddr, struct.pack("256s", name.encode()[:15])
                )
            except OSError:
                continue
            found.append(socket.inet_ntoa(packed[20:24]))
    return found


def local_address() -> str:
    """``RemotingUtil.getLocalAddress()``: the first IPv4 address that is not
    loopback nor 192.168.*, else the last IPv4 address found, else the host
    name's address, else 127.0.0.1."""
    addresses = [a for a in _interface_ipv4_addresses() if not a.startswith("127.")]
    for address in addresses:
        if not address.startswith("127.0") and not address.startswith("192.168"):
            return address
    if addresses:
        return addresses[-1]
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Java's ``BrokerConfig`` (common module), fields in Java's order.

    Thread-pool sizes and queue capacities are kept so that a Java
    ``broker.conf`` round-trips and GET_BROKER_CONFIG lists the same keys;
    pyrocket runs its processors as trio tasks and does not use them.
    """

    rocketmq_home: str | None = field(default_factory=lambda: os.environ.get("ROCKETMQ_HOME"))
    namesrv_addr: str | None = field(default_factory=lambda: os.environ.get("NAMESRV_ADDR"))
    broker_ip1: str = prop(factory=local_address, key="brokerIP1")
    broker_ip2: str = prop(factory=local_address, key="brokerIP2")
    broker_name: str = field(default_factory=local_host_name)
    broker_cluster_name: str = DEFAULT_CLUSTER
    broker_id: JavaLong = 0
    broker_permission: int = prop(PERM_READ | PERM_WRITE, runtime=True)
    default_topic_queue_nums: int = 8
    auto_create_topic_enable: bool = prop(True, runtime=True)
    cluster_topic_enable: bool = True
    broker_topic_enable: bool = True
    auto_create_subscription_group: bool = prop(True, runtime=True)
    message_store_plug_in: str = ""
    msg_trace_topic_name: str = RMQ_SYS_TRACE_TOPIC
    trace_topic_enable: bool = False
    send_message_thread_pool_nums: int = 1
    pull_message_thread_pool_nums: int = field(default_factory=lambda: 16 + _cpus() * 2)
    process_reply_message_thread_pool_nums: int = field(default_factory=lambda: 16 + _cpus() * 2)
    query_message_thread_pool_nums: int = field(default_factory=lambda: 8 + _cpus())
    admin_broker_thread_pool_nums: int = 16
    client_manage_thread_pool_nums: int = 32
    consumer_manage_thread_pool_nums: int = 32
    heartbeat_thread_pool_nums: int = field(default_factory=lambda: min(32, _cpus()))
    end_transaction_thread_pool_nums: int = field(default_factory=lambda: 8 + _cpus() * 2)
    flush_consumer_offset_interval: int = 1000 * 5
    flush_consumer_offset_history_interval: int = 1000 * 60
    reject_transaction_message: bool = prop(False, runtime=True)
    fetch_namesrv_addr_by_address_server: bool = False
    send_thread_pool_queue_capacity: int = 10000
    pull_thread_pool_queue_capacity: int = 100000
    reply_thread_pool_queue_capacity: int = 10000
    query_thread_pool_queue_capacity: int = 20000
    client_manager_thread_pool_queue_capacity: int = 1000000
    consumer_manager_thread_pool_queue_capacity: int = 1000000
    heartbeat_thread_pool_queue_capacity: int = 50000
    end_transaction_pool_queue_capacity: int = 100000
    filter_server_nums: int = 0
    long_polling_enable: bool = prop(True, runtime=True)
    short_polling_time_mills: JavaLong = prop(1000, runtime=True)
    notify_consumer_ids_changed_enable: bool = prop(True, runtime=True)
    high_speed_mode: bool = False
    commercial_enable: bool = True
    commercial_timer_count: int = 1
    commercial_trans_count: int = 1
    commercial_big_count: int = 1
    commercial_base_count: int = 1
    transfer_msg_by_heap: bool = prop(True, runtime=True)
    max_delay_time: int = prop(40, runtime=True)
    region_id: str = DEFAULT_TRACE_REGION_ID
    register_broker_timeout_mills: int = prop(6000, runtime=True)
    slave_read_enable: bool = prop(False, runtime=True)
    disable_consume_if_consumer_read_slowly: bool = prop(False, runtime=True)
    consumer_fallbehind_threshold: JavaLong = prop(1024 * 1024 * 1024 * 16, runtime=True)
    broker_fast_failure_enable: bool = prop(True, runtime=True)
    wait_time_mills_in_send_queue: JavaLong = prop(200, runtime=True)
    wait_time_mills_in_pull_queue: JavaLong = prop(5 * 1000, runtime=True)
    wait_time_mills_in_heartbeat_queue: JavaLong = prop(31 * 1000, runtime=True)
    wait_time_mills_in_transaction_queue: JavaLong = prop(3 * 1000, runtime=True)
    start_accept_send_request_time_stamp: JavaLong = prop(0, runtime=True)
    trace_on: bool = prop(True, runtime=True)
    enable_calc_filter_bit_map: bool = False
    expect_consumer_num_use_filter: int = 32
    max_error_rate_of_bloom_filter: int = 20
    filter_data_clean_time_span: JavaLong = 24 * 3600 * 1000
    filter_support_retry: bool = prop(False, runtime=True)
    enable_property_filter: bool = prop(False, runtime=True)
    compressed_register: bool = prop(False, runtime=True)
    force_register: bool = prop(True, runtime=True)
    register_name_server_period: int = 1000 * 30
    transaction_time_out: JavaLong = prop(6 * 1000, runtime=True)
    transaction_check_max: int = prop(15, runtime=True)
    transaction_check_interval: JavaLong = 60 * 1000
    acl_enable: bool = False
    store_reply_message_enable: bool = prop(True, runtime=True)

    @property
    def namesrv_addresses(self) -> list[str]:
        """``namesrvAddr`` split at ``;`` (empty entries dropped)."""
        if not self.namesrv_addr:
            return []
        return [a.strip() for a in self.namesrv_addr.split(";") if a.strip()]

    def validate(self) -> None:
        """Reject values the broker cannot run with; raises ConfigError naming the key."""
        for address in self.namesrv_addresses:
            try:
                split_address(address)
            except ConfigError:
                raise ConfigError(
                    f"namesrvAddr={self.namesrv_addr}: expected host:port entries separated "
                    'by ";", e.g. "127.0.0.1:9876;192.168.0.1:9876"'
                ) from None
        positive = {
            "registerNameServerPeriod": self.register_name_server_period,
            "registerBrokerTimeoutMills": self.register_broker_timeout_mills,
            "transactionCheckInterval": self.transaction_check_interval,
        }
        for key, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{key}={value}: must be positive")
        if self.default_topic_queue_nums < 0:
            raise ConfigError(
                f"defaultTopicQueueNums={self.default_topic_queue_nums}: must not be negative"
            )
        if not 0 <= self.broker_permission <= 15:
            raise ConfigError(
                f"brokerPermission={self.broker_permission}: expected permission bits 0..15"
            )
        if not 1 <= self.max_error_rate_of_bloom_filter < 100:
            raise ConfigError(
                f"maxErrorRateOfBloomFilter={self.max_error_rate_of_bloom_filter}: must be 1 to 99"
            )
        if self.expect_consumer_num_use_filter < 1:
            raise ConfigError(
                f"expectConsumerNumUseFilter={self.expect_consumer_num_use_filter}: "
                "must be positive"
            )
        for key, name in (
            ("brokerName", self.broker_name),
            ("brokerClusterName", self.broker_cluster_name),
        ):
            if not name.strip():
                raise ConfigError(f"{key}: must not be blank")


# ---------------------------------------------------------------------------
# Java names and value parsing

ConfigObject: TypeAlias = BrokerConfig | NettyServerConfig | NettyClientConfig
#: The config objects, in the order Java's Configuration registers them.
CONFIG_CLASSES: Final = (BrokerConfig, NettyServerConfig, NettyClientConfig, MessageStoreConfig)


def java_key(attribute: str) -> str:
    """The Java field name of a snake_case attribute (``broker_ip1`` -> ``brokerIP1``)."""
    for cls in CONFIG_CLASSES:
        for spec in java_fields(cls):
            if spec.attr == attribute:
                return spec.key
    return camel_key(attribute)


#: Features pyrocket lacks and must not silently run without, by the key
#: that switches them on.
UNIMPLEMENTED: Final[Mapping[str, Unimplemented]] = {
    "enableDLegerCommitLog": Unimplemented("the DLedger commit log"),
    "transientStorePoolEnable": Unimplemented("the transient store pool"),
}


def refuse_unimplemented(properties: Mapping[str, str]) -> None:
    """Raise ConfigError naming the first key of ``properties`` that switches
    on a feature pyrocket does not implement (see :data:`UNIMPLEMENTED`)."""
    javaprops.refuse_unimplemented(properties, UNIMPLEMENTED)


def _attributes(cls: type[Any]) -> Mapping[str, str]:
    return {key: spec.attr for key, spec in java_keys(cls).items()}


#: Java key -> attribute, in Java's field order, per config class.
BROKER_JAVA_KEYS: Final[Mapping[str, str]] = _attributes(BrokerConfig)
SERVER_JAVA_KEYS: Final[Mapping[str, str]] = _attributes(NettyServerConfig)
CLIENT_JAVA_KEYS: Final[Mapping[str, str]] = _attributes(NettyClientConfig)


def object_properties(obj: ConfigObject | MessageStoreConfig) -> list[tuple[str, str]]:
    """``MixAll.object2Properties``: (Java key, text) of every non-null field,
    in declaration order."""
    if isinstance(obj, MessageStoreConfig):
        # The store config writes storePathCommitLog as the directory it uses.
        return list(obj.to_java_properties().items())
    return javaprops.object_properties(obj)


#: pyrocket's key for the port of the broker's ``/metrics`` (absent or
#: negative: no metrics served; 0: any free port).
METRICS_PORT_KEY: Final = "metricsPort"


def parse_metrics_port(text: str) -> int:
    """A ``metricsPort`` value: -1 (off) or a port 0..65535. Raises ConfigError."""
    try:
        port = int(text.strip())
    except ValueError:
        raise ConfigError(f"{METRICS_PORT_KEY}={text}: expected a port number") from None
    if port < -1 or port > 65535:
        raise ConfigError(f"{METRICS_PORT_KEY}={text}: expected -1 (off) or a port 0..65535")
    return port


#: pyrocket's key for TLS on a slave's connection to its master's HA port
#: (Java 4.7's HA connection is plain TCP, so it is off unless asked for).
HA_USE_TLS_KEY: Final = "haUseTLS"


def parse_ha_use_tls(text: str) -> bool:
    """A ``haUseTLS`` value: true or false (any case). Raises ConfigError."""
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ConfigError(f"{HA_USE_TLS_KEY}={text}: expected true or false")
    return lowered == "true"


def known_key(key: str) -> bool:
    """Whether some config object has a field named ``key`` (or it is one
    of the ``tls.*`` keys, ``metricsPort`` or ``haUseTLS``)."""
    return (
        key in TLS_KEYS
        or key in (METRICS_PORT_KEY, HA_USE_TLS_KEY)
        or any(key in java_keys(cls) for cls in CONFIG_CLASSES)
    )


# ---------------------------------------------------------------------------
# The whole configuration


def bloom_filter_bits(max_error_rate: int, expect_consumers: int) -> int:
    """The bit length of ConsumerFilterManager's bloom filter (a multiple of 8),
    which the broker sets as the store's ``bitMapLengthConsumeQueueExt``."""
    return BloomFilter(max_error_rate, expect_consumers).m


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Everything a broker is configured with.

    ``file_properties`` are the entries of the broker.conf as read (Java
    remembers them: GET_BROKER_CONFIG lists keys no config object knows);
    ``config_file`` is where UPDATE_BROKER_CONFIG persists changes (None: not
    persisted). ``serialize_type`` is the header form the broker writes (Java's
    ``rocketmq.serialize.type`` / ``ROCKETMQ_SERIALIZE_TYPE``, not a broker.conf key).
    ``metrics_port`` is pyrocket's ``metricsPort``: where ``/metrics`` is
    served (-1: not served). ``ha_use_tls`` is pyrocket's ``haUseTLS``: a
    slave connects to its master's HA port with TLS (the ``tls.client.*``
    settings), for a pyrocket master whose HA port takes TLS.
    """

    broker: BrokerConfig = field(default_factory=BrokerConfig)
    server: NettyServerConfig = field(default_factory=broker_server_defaults)
    client: NettyClientConfig = field(default_factory=broker_client_defaults)
    store: MessageStoreConfig = field(default_factory=MessageStoreConfig)
    file_properties: Mapping[str, str] = field(default_factory=dict)
    config_file: Path | None = None
    serialize_type: SerializeType = field(default_factory=lambda: serialize_type_from_env())
    metrics_port: int = -1
    ha_use_tls: bool = False

    @property
    def broker_addr(self) -> str:
        """``getBrokerAddr()``: brokerIP1:listenPort."""
        return f"{self.broker.broker_ip1}:{self.server.listen_port}"

    @property
    def ha_server_addr(self) -> str:
        """``getHAServerAddr()``: brokerIP2:haListenPort."""
        return f"{self.broker.broker_ip2}:{self.store.ha_listen_port}"

    @property
    def fast_listen_port(self) -> int:
        """The fast ("VIP") server's port: listenPort - 2."""
        return self.server.listen_port - 2

    def config_objects(self) -> tuple[ConfigObject | MessageStoreConfig, ...]:
        """The objects in the order Java's Configuration registers them."""
        return (self.broker, self.server, self.client, self.store)

    @classmethod
    def from_properties(
        cls,
        properties: Mapping[str, str],
        *,
        overrides: Mapping[str, str] | None = None,
        config_file: Path | None = None,
        warn: Callable[[str], None] | None = None,
        base: BrokerSettings | None = None,
    ) -> Self:
        """Settings from broker.conf entries plus command-line ``overrides``
        (which win), with BrokerStartup's rules applied.

        Keys no config object knows are reported through ``warn`` and kept.
        Raises ConfigError naming the key of a bad value.
        """
        merged = dict(properties)
        merged.update(overrides or {})
        refuse_unimplemented(merged)
        for key in properties:
            if not known_key(key) and warn is not None:
                warn(f"unknown key {key!r} in broker.conf: kept, but nothing uses it")
        for key in overrides or {}:
            if not known_key(key):
                raise ConfigError(f"{key}: not a broker setting")
        start = base if base is not None else cls()
        broker = apply_properties(start.broker, merged)
        server = apply_properties(start.server, merged)
        tls = server.tls.with_properties(merged)
        server = dataclasses.replace(server, tls=tls)
        client = apply_properties(start.client, merged)
        if "useTLS" not in merged:
            client = dataclasses.replace(client, use_tls=client_uses_tls(tls))
        store = MessageStoreConfig.from_java_properties(merged, base=start.store)
        settings = cls.startup_rules(
            broker,
            server,
            client,
            store,
            file_properties=dict(properties),
            config_file=config_file,
        )
        metrics = merged.get(METRICS_PORT_KEY)
        port = parse_metrics_port(metrics) if metrics is not None else start.metrics_port
        ha_tls = merged.get(HA_USE_TLS_KEY)
        ha_use_tls = parse_ha_use_tls(ha_tls) if ha_tls is not None else start.ha_use_tls
        return dataclasses.replace(settings, metrics_port=port, ha_use_tls=ha_use_tls)

    @classmethod
    def startup_rules(
        cls,
        broker: BrokerConfig,
        server: NettyServerConfig,
        client: NettyClientConfig,
        store: MessageStoreConfig,
        *,
        file_properties: Mapping[str, str] | None = None,
        config_file: Path | None = None,
    ) -> Self:
        """Settings with BrokerStartup's and the controller's adjustments, validated."""
        if store.broker_role is BrokerRole.SLAVE:
            if broker.broker_id <= 0:
                raise ConfigError(f"brokerId={broker.broker_id}: a slave's brokerId must be > 0")
        else:
            broker = dataclasses.replace(broker, broker_id=0)
        refuse_unimplemented(
            {
                "enableDLegerCommitLog": java_text(store.enable_d_leger_commit_log),
                "transientStorePoolEnable": java_text(store.transient_store_pool_enable),
            }
        )
        broker.validate()
        server.validate()
        client.validate()
        store = dataclasses.replace(
            store,
            ha_listen_port=server.listen_port + 1,
            bit_map_length_consume_queue_ext=bloom_filter_bits(
                broker.max_error_rate_of_bloom_filter, broker.expect_consumer_num_use_filter
            ),
        )
        return cls(
            broker,
            server,
            client,
            store,
            dict(file_properties or {}),
            config_file,
            serialize_type_from_env(),
        )

    def with_changes(self, properties: Mapping[str, str]) -> Self:
        """These settings with ``properties`` (Java keys) applied to every object
        that has them. Raises ConfigError naming a bad key or value."""
        broker = apply_properties(self.broker, properties)
        server = apply_properties(self.server, properties)
        client = apply_properties(self.client, properties)
        store = MessageStoreConfig.from_java_properties(properties, base=self.store)
        broker.validate()
        return dataclasses.replace(self, broker=broker, server=server, client=client, store=store)


def client_uses_tls(tls: TlsSettings) -> bool:
    """BrokerStartup's ``useTLS`` when broker.conf does not set it:
    ``tls.enable``, else whether the broker itself enforces TLS."""
    if tls.enable is not None:
        return tls.enable
    return tls.server_mode is TlsMode.ENFORCING


def read_broker_conf(path: Path) -> dict[str, str]:
    """The entries of a properties file, in file order. Raises ConfigError
    when the file cannot be read or parsed."""
    return read_properties_file(path)


def load_broker_settings(
    path: Path | None,
    overrides: Mapping[str, str] | None = None,
    *,
    warn: Callable[[str], None] | None = None,
) -> BrokerSettings:
    """Read ``broker.conf`` (if given), apply ``overrides`` and BrokerStartup's
    rules. Raises ConfigError naming the file or key at fault."""
    properties = read_broker_conf(path) if path is not None else {}
    if warn is None:
        warn = log.warning
    return BrokerSettings.from_properties(
        properties, overrides=overrides, config_file=path, warn=warn
    )


__all__ = [
    "BROKER_JAVA_KEYS",
    "CLIENT_JAVA_KEYS",
    "METRICS_PORT_KEY",
    "SERVER_JAVA_KEYS",
    "BrokerConfig",
    "BrokerSettings",
    "JavaLong",
    "NettyClientConfig",
    "NettyServerConfig",
    "bloom_filter_bits",
    "client_uses_tls",
    "java_key",
    "java_text",
    "known_key",
    "load_broker_settings",
    "local_address",
    "object_properties",
    "parse_metrics_port",
    "read_broker_conf",
    "refuse_unimplemented",
]
