"""The broker's configuration: ``broker.conf`` as a Java broker reads it.

A Java broker spreads one properties file over four objects: ``BrokerConfig``,
``NettyServerConfig``, ``NettyClientConfig`` and ``MessageStoreConfig``. Here
they are :class:`BrokerConfig`, :class:`NettyServerConfig`,
:class:`NettyClientConfig` and the store's
:class:`~pyrocket.broker.store.MessageStoreConfig`, held together by
:class:`BrokerSettings`. Every attribute is the Java field in snake_case with
Java's default; :func:`java_key` / the ``JAVA_KEYS`` tables give the spelling
used in files and on the wire.

:func:`load_broker_settings` does what ``BrokerStartup`` does with ``-c
broker.conf`` and the command line: every key goes to each object that has it,
then the start-up rules apply (a master's ``brokerId`` is 0, a slave's must be
positive, ``haListenPort`` is ``listenPort + 1``, ``namesrvAddr`` must be
``host:port`` entries separated by ``;``). Where Java ignores a value that
does not parse, this raises :class:`ConfigError` naming the key; keys no
object knows are kept (Java lists them in GET_BROKER_CONFIG) and reported
through the ``warn`` callback.

Keys that switch on a Java security or durability feature pyrocket does not
have (:data:`UNIMPLEMENTED`: ACL, TLS, DLedger, the transient store pool)
refuse to start, naming the key, rather than run silently without it. The
other keys pyrocket parses but does not act on are listed in
docs/deviations.md.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import math
import os
import re
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Self, TypeAlias

from pyrocket.broker.store.config import JAVA_KEYS as STORE_JAVA_KEYS
from pyrocket.broker.store.config import BrokerRole, MessageStoreConfig
from pyrocket.errors import ConfigError, ProtocolError
from pyrocket.protocol.bodies.properties import parse_properties
from pyrocket.protocol.bodies.topic import PERM_READ, PERM_WRITE
from pyrocket.protocol.codes import SerializeType, serialize_type_from_env
from pyrocket.remoting import ClientConfig, ServerConfig
from pyrocket.remoting.address import split_address

log = logging.getLogger("pyrocket.broker")

#: A Java ``long`` field (the annotation text tells the parser the range).
JavaLong: TypeAlias = int

#: MixAll constants the broker's defaults and system topics use.
DEFAULT_CLUSTER: Final = "DefaultCluster"
RMQ_SYS_TRACE_TOPIC: Final = "RMQ_SYS_TRACE_TOPIC"
DEFAULT_TRACE_REGION_ID: Final = "DefaultRegion"

#: BrokerStartup's socket buffer sizes (it overrides NettySystemConfig's 65535).
BROKER_SOCKET_BUF_SIZE: Final = 131072
#: BrokerStartup's listen port when the file names none.
DEFAULT_LISTEN_PORT: Final = 10911


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
    broker_ip1: str = field(default_factory=local_address)
    broker_ip2: str = field(default_factory=local_address)
    broker_name: str = field(default_factory=local_host_name)
    broker_cluster_name: str = DEFAULT_CLUSTER
    broker_id: JavaLong = 0
    broker_permission: int = PERM_READ | PERM_WRITE
    default_topic_queue_nums: int = 8
    auto_create_topic_enable: bool = True
    cluster_topic_enable: bool = True
    broker_topic_enable: bool = True
    auto_create_subscription_group: bool = True
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
    reject_transaction_message: bool = False
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
    long_polling_enable: bool = True
    short_polling_time_mills: JavaLong = 1000
    notify_consumer_ids_changed_enable: bool = True
    high_speed_mode: bool = False
    commercial_enable: bool = True
    commercial_timer_count: int = 1
    commercial_trans_count: int = 1
    commercial_big_count: int = 1
    commercial_base_count: int = 1
    transfer_msg_by_heap: bool = True
    max_delay_time: int = 40
    region_id: str = DEFAULT_TRACE_REGION_ID
    register_broker_timeout_mills: int = 6000
    slave_read_enable: bool = False
    disable_consume_if_consumer_read_slowly: bool = False
    consumer_fallbehind_threshold: JavaLong = 1024 * 1024 * 1024 * 16
    broker_fast_failure_enable: bool = True
    wait_time_mills_in_send_queue: JavaLong = 200
    wait_time_mills_in_pull_queue: JavaLong = 5 * 1000
    wait_time_mills_in_heartbeat_queue: JavaLong = 31 * 1000
    wait_time_mills_in_transaction_queue: JavaLong = 3 * 1000
    start_accept_send_request_time_stamp: JavaLong = 0
    trace_on: bool = True
    enable_calc_filter_bit_map: bool = False
    expect_consumer_num_use_filter: int = 32
    max_error_rate_of_bloom_filter: int = 20
    filter_data_clean_time_span: JavaLong = 24 * 3600 * 1000
    filter_support_retry: bool = False
    enable_property_filter: bool = False
    compressed_register: bool = False
    force_register: bool = True
    register_name_server_period: int = 1000 * 30
    transaction_time_out: JavaLong = 6 * 1000
    transaction_check_max: int = 15
    transaction_check_interval: JavaLong = 60 * 1000
    acl_enable: bool = False
    store_reply_message_enable: bool = True

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


@dataclass(frozen=True, slots=True)
class NettyServerConfig:
    """Java's ``NettyServerConfig`` as a broker has it (port 10911 and
    BrokerStartup's 128 KiB socket buffers)."""

    listen_port: int = DEFAULT_LISTEN_PORT
    server_worker_threads: int = 8
    server_callback_executor_threads: int = 0
    server_selector_threads: int = 3
    server_oneway_semaphore_value: int = 256
    server_async_semaphore_value: int = 64
    server_channel_max_idle_time_seconds: int = 120
    server_socket_snd_buf_size: int = BROKER_SOCKET_BUF_SIZE
    server_socket_rcv_buf_size: int = BROKER_SOCKET_BUF_SIZE
    server_pooled_byte_buf_allocator_enable: bool = True
    use_epoll_native_selector: bool = False

    def validate(self) -> None:
        # The fast ("VIP") server listens on listenPort - 2, HA on listenPort + 1;
        # 0 lets the system pick both ports (tests).
        if self.listen_port != 0 and not 3 <= self.listen_port <= 65534:
            raise ConfigError(f"listenPort={self.listen_port}: must be 3 to 65534 (or 0)")
        if self.server_oneway_semaphore_value <= 0 or self.server_async_semaphore_value <= 0:
            raise ConfigError(
                "serverOnewaySemaphoreValue / serverAsyncSemaphoreValue: must be positive"
            )

    def server_config(self, *, listen_port: int | None = None) -> ServerConfig:
        """The remoting server settings for this config."""
        return ServerConfig(
            listen_port=self.listen_port if listen_port is None else listen_port,
            channel_max_idle_seconds=float(self.server_channel_max_idle_time_seconds),
            async_permits=self.server_async_semaphore_value,
            oneway_permits=self.server_oneway_semaphore_value,
        )


@dataclass(frozen=True, slots=True)
class NettyClientConfig:
    """Java's ``NettyClientConfig`` as a broker has it."""

    client_worker_threads: int = 4
    client_callback_executor_threads: int = field(default_factory=_cpus)
    client_oneway_semaphore_value: int = 65535
    client_async_semaphore_value: int = 65535
    connect_timeout_millis: int = 3000
    channel_not_active_interval: JavaLong = 1000 * 60
    client_channel_max_idle_time_seconds: int = 120
    client_socket_snd_buf_size: int = BROKER_SOCKET_BUF_SIZE
    client_socket_rcv_buf_size: int = BROKER_SOCKET_BUF_SIZE
    client_pooled_byte_buf_allocator_enable: bool = False
    client_close_socket_if_timeout: bool = False
    use_tls: bool = False

    def validate(self) -> None:
        if self.connect_timeout_millis <= 0:
            raise ConfigError(
                f"connectTimeoutMillis={self.connect_timeout_millis}: must be positive"
            )
        if self.client_oneway_semaphore_value <= 0 or self.client_async_semaphore_value <= 0:
            raise ConfigError(
                "clientOnewaySemaphoreValue / clientAsyncSemaphoreValue: must be positive"
            )

    def client_config(self) -> ClientConfig:
        """The remoting client settings for this config."""
        return ClientConfig(
            connect_timeout=self.connect_timeout_millis / 1000,
            async_permits=self.client_async_semaphore_value,
            oneway_permits=self.client_oneway_semaphore_value,
            channel_max_idle_seconds=float(self.client_channel_max_idle_time_seconds),
            close_socket_if_timeout=self.client_close_socket_if_timeout,
        )


# ---------------------------------------------------------------------------
# Java names and value parsing

_SPELLING: Final = {"brokerIp1": "brokerIP1", "brokerIp2": "brokerIP2", "useTls": "useTLS"}


def java_key(attribute: str) -> str:
    """The Java field name of a snake_case attribute (``broker_ip1`` -> ``brokerIP1``)."""
    head, *rest = attribute.split("_")
    key = head + "".join(part[:1].upper() + part[1:] for part in rest)
    return _SPELLING.get(key, key)


ConfigObject: TypeAlias = BrokerConfig | NettyServerConfig | NettyClientConfig


def _java_keys(cls: type[Any]) -> dict[str, str]:
    return {java_key(f.name): f.name for f in dataclasses.fields(cls)}


#: Java key -> (value that switches the feature on, what the feature is) for
#: features pyrocket lacks and must not silently run without. ``None``: any
#: value but ``disabled`` (``tls.server.mode``).
UNIMPLEMENTED: Final[Mapping[str, tuple[str | None, str]]] = {
    "aclEnable": ("true", "access control (ACL)"),
    "useTLS": ("true", "TLS"),
    "tls.enable": ("true", "TLS"),
    "tls.server.mode": (None, "TLS"),
    "enableDLegerCommitLog": ("true", "the DLedger commit log"),
    "transientStorePoolEnable": ("true", "the transient store pool"),
}


def refuse_unimplemented(properties: Mapping[str, str]) -> None:
    """Raise ConfigError naming the first key of ``properties`` that switches
    on a feature pyrocket does not implement (see :data:`UNIMPLEMENTED`)."""
    for key, text in properties.items():
        wanted = UNIMPLEMENTED.get(key)
        if wanted is None:
            continue
        on, feature = wanted
        value = text.strip()
        switched_on = value.lower() != "disabled" if on is None else value.lower() == on
        if switched_on:
            safe = "false" if on is not None else "disabled"
            raise ConfigError(
                f"{key}={value}: pyrocket does not implement {feature} and will not run "
                f"without it; remove {key} or set it to {safe}"
            )


#: Java key -> attribute, in Java's field order, per config class.
BROKER_JAVA_KEYS: Final[Mapping[str, str]] = _java_keys(BrokerConfig)
SERVER_JAVA_KEYS: Final[Mapping[str, str]] = _java_keys(NettyServerConfig)
CLIENT_JAVA_KEYS: Final[Mapping[str, str]] = _java_keys(NettyClientConfig)

_INTEGER = re.compile(r"[-+]?[0-9]+")


def parse_java_value(key: str, text: str, kind: str) -> Any:
    """Parse ``text`` as Java's ``properties2Object`` would for a field whose
    annotation is ``kind``. Raises ConfigError naming ``key`` for a bad value."""
    value = text.strip()
    if kind in ("int", "JavaLong"):
        if not _INTEGER.fullmatch(value):
            raise ConfigError(f"{key}={text}: not an integer")
        number = int(value)
        bits = 63 if kind == "JavaLong" else 31
        if not -(1 << bits) <= number < (1 << bits):
            raise ConfigError(f"{key}={text}: out of range for a Java {kind.lower()}")
        return number
    if kind == "bool":
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise ConfigError(f"{key}={text}: expected true or false")
        return lowered == "true"
    return value


def _apply(obj: Any, keys: Mapping[str, str], properties: Mapping[str, str]) -> Any:
    types = {f.name: str(f.type) for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, text in properties.items():
        attribute = keys.get(key)
        if attribute is not None:
            changes[attribute] = parse_java_value(key, text, types[attribute].split(" ")[0])
    return dataclasses.replace(obj, **changes) if changes else obj


def java_text(value: object) -> str:
    """A value as Java's ``toString`` writes it (``true``, ``ASYNC_MASTER``, ``42``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    name = getattr(value, "name", None)
    if isinstance(name, str) and not isinstance(value, str | int):
        return name
    return str(value)


def object_properties(obj: ConfigObject | MessageStoreConfig) -> list[tuple[str, str]]:
    """``MixAll.object2Properties``: (Java key, text) of every non-null field,
    in declaration order."""
    if isinstance(obj, MessageStoreConfig):
        return [(key, text) for key, text in _store_properties(obj)]
    keys = _keys_of(obj)
    result = []
    for key, attribute in keys.items():
        value = getattr(obj, attribute)
        if value is not None:
            result.append((key, java_text(value)))
    return result


def _store_properties(config: MessageStoreConfig) -> list[tuple[str, str]]:
    # The store config writes storePathCommitLog as the directory it uses.
    return list(config.to_java_properties().items())


def _keys_of(obj: object) -> Mapping[str, str]:
    if isinstance(obj, BrokerConfig):
        return BROKER_JAVA_KEYS
    if isinstance(obj, NettyServerConfig):
        return SERVER_JAVA_KEYS
    if isinstance(obj, NettyClientConfig):
        return CLIENT_JAVA_KEYS
    if isinstance(obj, MessageStoreConfig):
        return STORE_JAVA_KEYS
    raise TypeError(f"not a broker config object: {type(obj).__name__}")


def known_key(key: str) -> bool:
    """Whether some config object has a field named ``key``."""
    return any(key in keys for keys in _ALL_KEYS)


_ALL_KEYS: Final = (BROKER_JAVA_KEYS, SERVER_JAVA_KEYS, CLIENT_JAVA_KEYS, STORE_JAVA_KEYS)


# ---------------------------------------------------------------------------
# The whole configuration


def bloom_filter_bits(max_error_rate: int, expect_consumers: int) -> int:
    """The bit length of ConsumerFilterManager's bloom filter (a multiple of 8),
    which the broker sets as the store's ``bitMapLengthConsumeQueueExt``."""
    error_rate = max_error_rate / 100.0
    bits = math.ceil(expect_consumers * math.log(1 / error_rate, 2) * math.log(math.e, 2))
    return 8 * math.ceil(bits / 8)


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Everything a broker is configured with.

    ``file_properties`` are the entries of the broker.conf as read (Java
    remembers them: GET_BROKER_CONFIG lists keys no config object knows);
    ``config_file`` is where UPDATE_BROKER_CONFIG persists changes (None: not
    persisted). ``serialize_type`` is the header form the broker writes (Java's
    ``rocketmq.serialize.type`` / ``ROCKETMQ_SERIALIZE_TYPE``, not a broker.conf key).
    """

    broker: BrokerConfig = field(default_factory=BrokerConfig)
    server: NettyServerConfig = field(default_factory=NettyServerConfig)
    client: NettyClientConfig = field(default_factory=NettyClientConfig)
    store: MessageStoreConfig = field(default_factory=MessageStoreConfig)
    file_properties: Mapping[str, str] = field(default_factory=dict)
    config_file: Path | None = None
    serialize_type: SerializeType = field(default_factory=lambda: serialize_type_from_env())

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
        broker = _apply(start.broker, BROKER_JAVA_KEYS, merged)
        server = _apply(start.server, SERVER_JAVA_KEYS, merged)
        client = _apply(start.client, CLIENT_JAVA_KEYS, merged)
        store = MessageStoreConfig.from_java_properties(merged, base=start.store)
        return cls.startup_rules(
            broker,
            server,
            client,
            store,
            file_properties=dict(properties),
            config_file=config_file,
        )

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
                "aclEnable": java_text(broker.acl_enable),
                "useTLS": java_text(client.use_tls),
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
        broker = _apply(self.broker, BROKER_JAVA_KEYS, properties)
        server = _apply(self.server, SERVER_JAVA_KEYS, properties)
        client = _apply(self.client, CLIENT_JAVA_KEYS, properties)
        store = MessageStoreConfig.from_java_properties(properties, base=self.store)
        broker.validate()
        return dataclasses.replace(self, broker=broker, server=server, client=client, store=store)


def read_broker_conf(path: Path) -> dict[str, str]:
    """The entries of a properties file, in file order. Raises ConfigError
    when the file cannot be read or parsed."""
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
    "SERVER_JAVA_KEYS",
    "BrokerConfig",
    "BrokerSettings",
    "JavaLong",
    "NettyClientConfig",
    "NettyServerConfig",
    "bloom_filter_bits",
    "java_key",
    "java_text",
    "known_key",
    "load_broker_settings",
    "local_address",
    "object_properties",
    "parse_java_value",
    "read_broker_conf",
    "refuse_unimplemented",
]
