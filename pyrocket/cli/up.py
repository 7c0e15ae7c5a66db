"""``pyrocket up``: a NameServer and a broker together on loopback, ready for
clients, keeping their data in one local directory.

    pyrocket up [--dir pyrocket-data] [--host 127.0.0.1]
                [--namesrv-port 9876] [--broker-port 10911]
                [--cluster DefaultCluster] [--broker-name broker-a]
                [--metrics-port 5557] [--namesrv-metrics-port 5558]
                [--slave [--slave-port 10921]]

The data directory holds ``namesrv/`` (kvConfig.json, namesrv.properties) and
``broker/`` (the store: commit log, consume queues, checkpoint, and
``config/`` with topics.json, consumerOffset.json, ...). Running ``up`` again
on the same directory picks up where the last run stopped. Auto-created
topics are on, as in a Java quick start. Ports 0 pick free ones; the ready
line names the addresses. Both servers serve Prometheus ``/metrics``: the
broker on ``--metrics-port``, the NameServer on ``--namesrv-metrics-port``
(by default 5557 and 5558, or free ports when the server's own port is 0;
-1 turns one off), and the second line of the banner gives their URLs.
With ``--slave`` a slave of the broker runs too (brokerId 1, brokerRole
SLAVE, the same broker name, its store in ``broker-slave/``, listening on
``--slave-port``, by default the broker's port + 10, or a free one when that
is 0; its HA and fast ports follow from it as for any broker, and it serves
no ``/metrics``): it learns its master from the NameServer, replicates its
commit log and copies its tables, and the banner names it.
SIGINT and SIGTERM stop both, the broker first
(it unregisters, then flushes its store, within a grace of
:data:`~pyrocket.broker.app.DEFAULT_SHUTDOWN_GRACE` seconds); a second signal
during that exits at once.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NoReturn

import trio

from pyrocket.broker.app import Broker, serve_broker
from pyrocket.broker.config import BrokerSettings, load_broker_settings
from pyrocket.broker.store import StoreError
from pyrocket.cli.serving import report_failures, serve_until_signalled
from pyrocket.errors import ConfigError
from pyrocket.javaprops import serialize_type_from_env
from pyrocket.metrics_http import metrics_url
from pyrocket.namesrv.app import NameServer
from pyrocket.namesrv.config import NamesrvConfig, load_config

log = logging.getLogger("pyrocket.up")

DEFAULT_DIR = "pyrocket-data"
#: Where ``up`` serves the broker's and the NameServer's ``/metrics``.
DEFAULT_BROKER_METRICS_PORT = 5557
DEFAULT_NAMESRV_METRICS_PORT = 5558


@dataclass(frozen=True)
class UpOptions:
    """Where ``up`` keeps its data and what it listens on."""

    data_dir: Path = Path(DEFAULT_DIR)
    host: str = "127.0.0.1"
    namesrv_port: int = 9876
    broker_port: int = 10911
    cluster: str = "DefaultCluster"
    broker_name: str = "broker-a"
    #: None: the default port, or any free one when the server's port is 0;
    #: -1: not served.
    broker_metrics_port: int | None = None
    namesrv_metrics_port: int | None = None
    #: Run a slave of the broker too; its port (None: broker_port + 10, or
    #: any free one when broker_port is 0).
    slave: bool = False
    slave_port: int | None = None

    def slave_listen_port(self) -> int:
        if self.slave_port is not None:
            return self.slave_port
        return 0 if self.broker_port == 0 else self.broker_port + 10

    def metrics_ports(self) -> tuple[int, int]:
        """The ``metricsPort`` of the NameServer and of the broker."""

        def pick(given: int | None, server_port: int, default: int) -> int:
            if given is not None:
                return given
            return 0 if server_port == 0 else default

        return (
            pick(self.namesrv_metrics_port, self.namesrv_port, DEFAULT_NAMESRV_METRICS_PORT),
            pick(self.broker_metrics_port, self.broker_port, DEFAULT_BROKER_METRICS_PORT),
        )


@dataclass(frozen=True)
class Running:
    """The NameServer and broker an ``up`` is running."""

    namesrv: NameServer
    namesrv_addr: str
    broker: Broker
    #: The slave (``--slave``), else None.
    slave: Broker | None = None


def namesrv_config(options: UpOptions) -> NamesrvConfig:
    """The NameServer's configuration: its files under ``<dir>/namesrv``."""
    home = options.data_dir.resolve() / "namesrv"
    config = load_config(
        None,
        {
            "rocketmqHome": str(home),
            "kvConfigPath": str(home / "kvConfig.json"),
            "configStorePath": str(home / "namesrv.properties"),
            "listenPort": str(options.namesrv_port),
            "metricsPort": str(options.metrics_ports()[0]),
        },
    )
    return config.replace(serialize_type=serialize_type_from_env())


def broker_settings(
    options: UpOptions, namesrv_addr: str, *, slave: bool = False
) -> BrokerSettings:
    """The broker's configuration: a master on ``host``, its store under
    ``<dir>/broker``, registered with ``namesrv_addr``; with ``slave``, its
    slave (store under ``<dir>/broker-slave``, no ``/metrics``)."""
    root = options.data_dir.resolve() / ("broker-slave" if slave else "broker")
    return load_broker_settings(
        None,
        {
            "brokerClusterName": options.cluster,
            "brokerName": options.broker_name,
            "brokerId": "1" if slave else "0",
            "brokerRole": "SLAVE" if slave else "ASYNC_MASTER",
            "brokerIP1": options.host,
            "brokerIP2": options.host,
            "namesrvAddr": namesrv_addr,
            "listenPort": str(options.slave_listen_port() if slave else options.broker_port),
            "storePathRootDir": str(root),
            "autoCreateTopicEnable": "true",
            "metricsPort": "-1" if slave else str(options.metrics_ports()[1]),
        },
    )


async def serve_up(
    options: UpOptions,
    *,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Run the pair until cancelled; report them once the broker has
    registered. Raises ConfigError, StoreError or OSError when either cannot
    start (a port in use, a damaged data file)."""
    options.data_dir.mkdir(parents=True, exist_ok=True)
    namesrv = NameServer(namesrv_config(options))
    # The NameServer outlives the broker's shutdown, so that the broker still
    # finds it to unregister from: it runs shielded and is stopped by hand
    # once the broker is done.
    namesrv_scope = trio.CancelScope(shield=True)

    async def run_namesrv(*, task_status: trio.TaskStatus[int]) -> None:
        with namesrv_scope:
            await namesrv.serve(options.host, options.namesrv_port, task_status=task_status)

    async with trio.open_nursery() as nursery:
        try:
            port = await nursery.start(run_namesrv)
            namesrv_addr = f"{options.host}:{port}"
            settings = broker_settings(options, namesrv_addr)
            async with trio.open_nursery() as brokers:
                # This block ends only once the broker's shutdown is complete.
                broker = await brokers.start(partial(serve_broker, settings, host=options.host))
                slave: Broker | None = None
                if options.slave:
                    slave_settings = broker_settings(options, namesrv_addr, slave=True)
                    slave = await brokers.start(
                        partial(serve_broker, slave_settings, host=options.host)
                    )
                task_status.started(Running(namesrv, namesrv_addr, broker, slave))
                await trio.sleep_forever()
        finally:
            namesrv_scope.cancel()
    raise AssertionError("unreachable")  # pragma: no cover


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "up",
        help="run a NameServer and a broker on loopback (a local quick start)",
        description="Run a NameServer and a broker together, data in one local directory.",
    )
    defaults = UpOptions()
    parser.add_argument(
        "--dir", default=DEFAULT_DIR, help=f"data directory (default ./{DEFAULT_DIR})"
    )
    parser.add_argument(
        "--host", default=defaults.host, help="address for both (default %(default)s)"
    )
    parser.add_argument(
        "--namesrv-port", type=int, default=defaults.namesrv_port, help="default %(default)s"
    )
    parser.add_argument(
        "--broker-port", type=int, default=defaults.broker_port, help="default %(default)s"
    )
    parser.add_argument("--cluster", default=defaults.cluster, help="default %(default)s")
    parser.add_argument("--broker-name", default=defaults.broker_name, help="default %(default)s")
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help=f"the broker's /metrics port (default {DEFAULT_BROKER_METRICS_PORT}; -1: off)",
    )
    parser.add_argument(
        "--namesrv-metrics-port",
        type=int,
        metavar="PORT",
        help=f"the NameServer's /metrics port (default {DEFAULT_NAMESRV_METRICS_PORT}; -1: off)",
    )
    parser.add_argument(
        "--slave",
        action="store_true",
        help="run a slave of the broker too (brokerId 1, brokerRole SLAVE)",
    )
    parser.add_argument(
        "--slave-port",
        type=int,
        metavar="PORT",
        help="the slave's port (default: the broker's port + 10; 0: any free port)",
    )
    parser.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> UpOptions:
    return UpOptions(
        data_dir=Path(args.dir),
        host=args.host,
        namesrv_port=args.namesrv_port,
        broker_port=args.broker_port,
        cluster=args.cluster,
        broker_name=args.broker_name,
        broker_metrics_port=args.metrics_port,
        namesrv_metrics_port=args.namesrv_metrics_port,
        slave=args.slave,
        slave_port=args.slave_port,
    )


def metrics_line(running: Running, host: str) -> str | None:
    """The banner line with the ``/metrics`` URLs (None when neither is served)."""
    urls = []
    if running.broker.metrics_port is not None:
        urls.append(f"broker {metrics_url(host, running.broker.metrics_port)}")
    if running.namesrv.metrics_port is not None:
        urls.append(f"NameServer {metrics_url(host, running.namesrv.metrics_port)}")
    return f"Metrics: {', '.join(urls)}" if urls else None


async def _serve(options: UpOptions) -> None:
    async def start(nursery: trio.Nursery) -> None:
        running: Running = await nursery.start(serve_up, options)
        broker = running.broker
        slave = "" if running.slave is None else f"with slave {running.slave.broker_addr} "
        print(
            f"pyrocket is up: NameServer {running.namesrv_addr}, "
            f"broker {broker.settings.broker.broker_name} {broker.broker_addr} {slave}"
            f"in cluster {broker.settings.broker.broker_cluster_name}, "
            f"data in {options.data_dir.resolve()}",
            flush=True,
        )
        line = metrics_line(running, options.host)
        if line is not None:
            print(line, flush=True)
        print(f"Clients: NAMESRV_ADDR={running.namesrv_addr}. Ctrl-C stops.", flush=True)

    await serve_until_signalled(start, log)


def run(args: argparse.Namespace) -> int:
    status = 0
    try:
        trio.run(_serve, options_from_args(args))
    except* (ConfigError, StoreError, OSError) as group:
        report_failures("pyrocket up", group)
        status = 1
    return status


__all__ = [
    "DEFAULT_BROKER_METRICS_PORT",
    "DEFAULT_NAMESRV_METRICS_PORT",
    "Running",
    "UpOptions",
    "broker_settings",
    "metrics_line",
    "namesrv_config",
    "serve_up",
]
