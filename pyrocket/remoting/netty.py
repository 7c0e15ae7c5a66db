"""Java's ``NettyServerConfig`` and ``NettyClientConfig`` as configuration
objects (:mod:`pyrocket.javaprops` declarations), shared by the NameServer
and the broker, and the remoting settings they turn into.

The defaults are Java's (port 8888, NettySystemConfig's 64 KiB socket
buffers); each server starts from its own (:data:`NAMESRV_LISTEN_PORT`,
:func:`broker_server_defaults`, :func:`broker_client_defaults`). Thread
counts and buffer sizes are kept so that a Java file round-trips and the
config listings match Java's; trio tasks do not use them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar, Final

from pyrocket.errors import ConfigError
from pyrocket.javaprops import JavaLong, not_property, prop
from pyrocket.remoting.client import ClientConfig
from pyrocket.remoting.server import ServerConfig
from pyrocket.remoting.tls import TlsSettings

#: NamesrvStartup's listen port.
NAMESRV_LISTEN_PORT: Final = 9876
#: BrokerStartup's listen port when the file names none.
BROKER_LISTEN_PORT: Final = 10911
#: BrokerStartup's socket buffer sizes (it overrides NettySystemConfig's 65535).
BROKER_SOCKET_BUF_SIZE: Final = 131072


def _cpus() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class NettyServerConfig:
    """Java's ``NettyServerConfig``, fields in Java's order, and the ``tls.*``
    settings (Java's ``TlsSystemConfig`` system properties; pyrocket reads
    them from the server's own file and command line too)."""

    JAVA_GROUP: ClassVar[str] = "netty"

    listen_port: int = 8888
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
    tls: TlsSettings = not_property(factory=TlsSettings)

    def validate(self) -> None:
        """The broker's checks. Raises ConfigError naming the key."""
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
            tls=self.tls,
        )


def broker_server_defaults() -> NettyServerConfig:
    """NettyServerConfig as BrokerStartup prepares it (port 10911, 128 KiB buffers)."""
    return NettyServerConfig(
        listen_port=BROKER_LISTEN_PORT,
        server_socket_snd_buf_size=BROKER_SOCKET_BUF_SIZE,
        server_socket_rcv_buf_size=BROKER_SOCKET_BUF_SIZE,
    )


@dataclass(frozen=True, slots=True)
class NettyClientConfig:
    """Java's ``NettyClientConfig``, fields in Java's order."""

    JAVA_GROUP: ClassVar[str] = "netty-client"

    client_worker_threads: int = 4
    client_callback_executor_threads: int = prop(factory=_cpus)
    client_oneway_semaphore_value: int = 65535
    client_async_semaphore_value: int = 65535
    connect_timeout_millis: int = 3000
    channel_not_active_interval: JavaLong = 1000 * 60
    client_channel_max_idle_time_seconds: int = 120
    client_socket_snd_buf_size: int = 65535
    client_socket_rcv_buf_size: int = 65535
    client_pooled_byte_buf_allocator_enable: bool = False
    client_close_socket_if_timeout: bool = False
    use_tls: bool = prop(False, key="useTLS")

    def validate(self) -> None:
        """Raises ConfigError naming the key of a value the client cannot use."""
        if self.connect_timeout_millis <= 0:
            raise ConfigError(
                f"connectTimeoutMillis={self.connect_timeout_millis}: must be positive"
            )
        if self.client_oneway_semaphore_value <= 0 or self.client_async_semaphore_value <= 0:
            raise ConfigError(
                "clientOnewaySemaphoreValue / clientAsyncSemaphoreValue: must be positive"
            )

    def client_config(self, tls: TlsSettings | None = None) -> ClientConfig:
        """The remoting client settings for this config: with ``tls`` when
        ``useTLS`` is on (a TLS client without settings uses the defaults)."""
        return ClientConfig(
            connect_timeout=self.connect_timeout_millis / 1000,
            async_permits=self.client_async_semaphore_value,
            oneway_permits=self.client_oneway_semaphore_value,
            channel_max_idle_seconds=float(self.client_channel_max_idle_time_seconds),
            close_socket_if_timeout=self.client_close_socket_if_timeout,
            tls=(tls or TlsSettings()) if self.use_tls else None,
        )


def broker_client_defaults() -> NettyClientConfig:
    """NettyClientConfig as BrokerStartup prepares it (128 KiB buffers)."""
    return NettyClientConfig(
        client_socket_snd_buf_size=BROKER_SOCKET_BUF_SIZE,
        client_socket_rcv_buf_size=BROKER_SOCKET_BUF_SIZE,
    )
