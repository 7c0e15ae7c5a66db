"""The NameServer app: one nursery with the remoting server, the expiry scan,
the writers of the KV and config files and, when ``metricsPort`` is set,
``/metrics`` over HTTP (:mod:`pyrocket.namesrv.metrics`).

::

    config = load_config("namesrv.properties")
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_namesrv, config)

:func:`serve_namesrv` loads the KV store (a damaged file is a ConfigError and
nothing starts), binds, reports the bound port through ``task_status`` and
serves until cancelled; cancelling is the shutdown. :class:`NameServer` is the
same with its state reachable, for tests and tools that run one in-process.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import NoReturn

import trio
from trio_util import periodic

from pyrocket.acl.validator import NAMESRV_ADMIN_CODES, NAMESRV_CHECKED_CODES
from pyrocket.aclserve import AclGuard, acl_file
from pyrocket.namesrv.config import NamesrvConfig
from pyrocket.namesrv.housekeeping import BrokerHousekeeping
from pyrocket.namesrv.metrics import NamesrvMetrics, serve_namesrv_metrics
from pyrocket.namesrv.processor import DefaultRequestProcessor, NamesrvState
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import Connection, RemotingServer, ServerConfig

log = logging.getLogger("pyrocket.namesrv")

#: The requests that change the NameServer's tables, applied per connection
#: strictly in arrival order.
ORDERED_REQUEST_CODES: frozenset[int] = frozenset(
    {
        RequestCode.REGISTER_BROKER,
        RequestCode.UNREGISTER_BROKER,
        RequestCode.PUT_KV_CONFIG,
        RequestCode.DELETE_KV_CONFIG,
        RequestCode.UPDATE_NAMESRV_CONFIG,
        RequestCode.WIPE_WRITE_PERM_OF_BROKER,
        RequestCode.DELETE_TOPIC_IN_NAMESRV,
    }
)


def _no_resources(request: RemotingCommand) -> dict[str, int]:
    return {}


def load_namesrv_acl(path: Path) -> AclGuard:
    """The NameServer's ACL (beyond Java): its writes need an admin account,
    broker registrations a white-listed address or a signature, queries
    nothing. Raises ConfigError."""
    return AclGuard.load(
        path,
        admin_codes=NAMESRV_ADMIN_CODES,
        needed=_no_resources,
        checked=NAMESRV_CHECKED_CODES,
    )


def current_time_ms() -> int:
    """trio's clock in milliseconds: the liveness clock (MockClock-friendly)."""
    return int(trio.current_time() * 1000)


def server_config(config: NamesrvConfig) -> ServerConfig:
    """The remoting settings a NameServer config asks for."""
    return dataclasses.replace(config.server_config(), serialize_type=config.serialize_type)


class NameServer:
    """A NameServer: its state, its housekeeping and its server."""

    def __init__(self, config: NamesrvConfig) -> None:
        self.state = NamesrvState(config, clock=current_time_ms)
        self.housekeeping = BrokerHousekeeping(self.state.routes)
        self.server = RemotingServer(server_config(config), listener=self.housekeeping)
        self.port: int | None = None
        #: The bound port of ``/metrics`` (None: not served).
        self.metrics_port: int | None = None
        #: The ACL of the writes (``aclEnable=true``), set when serving starts.
        self.acl: AclGuard | None = None

    @property
    def config(self) -> NamesrvConfig:
        return self.state.config

    async def serve(
        self,
        host: str | None = "0.0.0.0",
        port: int | None = None,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Load the KV store, bind ``host:port`` (default: ``listenPort``),
        report the port, serve until cancelled.

        Raises ConfigError for a damaged KV file or, with ``aclEnable=true``,
        a missing or bad ``plain_acl.yml``; OSError when the address cannot
        be bound.
        """
        state = self.state
        if state.config.acl_enable:
            # Fails closed: no NameServer without a good plain_acl.yml.
            path = acl_file(state.config.rocketmq_home)
            self.acl = await trio.to_thread.run_sync(load_namesrv_acl, path)
            self.server.processors.set_guard(self.acl)
        await trio.to_thread.run_sync(state.kv.load)
        async with trio.open_nursery() as nursery:
            await nursery.start(state.kv.run)
            await nursery.start(state.config_file.writer.run)
            DefaultRequestProcessor(state).register_all(self.server)
            # Table updates of one connection land in the order they were sent.
            self.server.processors.set_ordered(ORDERED_REQUEST_CODES)
            metrics_port = state.config.metrics_port
            metrics = NamesrvMetrics(state.routes) if metrics_port >= 0 else None
            if metrics is not None:
                metrics.instrument(self.server)
            bound = await nursery.start(self.server.serve, host, port)
            self.port = bound
            if metrics is not None:
                self.metrics_port = await nursery.start(
                    serve_namesrv_metrics, metrics, host, metrics_port
                )
            nursery.start_soon(expire_brokers, state)
            if self.acl is not None:
                nursery.start_soon(self.acl.watch)
            log.info(
                "NameServer ready on %s:%d (serialize type %s)",
                host or "0.0.0.0",
                bound,
                state.config.serialize_type.name,
            )
            task_status.started(bound)
            await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover


async def serve_namesrv(
    config: NamesrvConfig,
    host: str | None = "0.0.0.0",
    port: int | None = None,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Run a NameServer until cancelled; reports the bound port."""
    await NameServer(config).serve(host, port, task_status=task_status)


async def expire_brokers(state: NamesrvState) -> NoReturn:
    """The expiry scan: first after ``scanNotActiveBrokerDelayMillis``, then
    every ``scanNotActiveBrokerIntervalMillis``, drop brokers unheard of for
    ``brokerChannelExpiredTimeMillis`` and close their connections."""
    config = state.config
    await trio.sleep(config.scan_not_active_broker_delay_millis / 1000)
    async for _ in periodic(config.scan_not_active_broker_interval_millis / 1000):
        expired_after = state.config.broker_channel_expired_time_millis
        for dropped in state.routes.scan_not_active_brokers(state.clock(), expired_after):
            log.warning(
                "broker %s expired: %s (limit %dms)",
                dropped.broker_addr,
                dropped.reason,
                expired_after,
            )
            if isinstance(dropped.connection, Connection):
                dropped.connection.close()
    raise AssertionError("unreachable")  # pragma: no cover
