"""``pyrocket up``: a NameServer and a broker together on loopback, ready for
clients, keeping their data in one local directory.

    pyrocket up [--dir pyrocket-data] [--host 127.0.0.1]
                [--namesrv-port 9876] [--broker-port 10911]
                [--cluster DefaultCluster] [--broker-name broker-a]

The data directory holds ``namesrv/`` (kvConfig.json, namesrv.properties) and
``broker/`` (the store: commit log, consume queues, checkpoint, and
``config/`` with topics.json, consumerOffset.json, ...). Running ``up`` again
on the same directory picks up where the last run stopped. Auto-created
topics are on, as in a Java quick start. Ports 0 pick free ones; the ready
line names the addresses. SIGINT and SIGTERM stop both, the broker first
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
from pyrocket.namesrv.app import NameServer
from pyrocket.namesrv.config import NamesrvConfig, load_config

log = logging.getLogger("pyrocket.up")

DEFAULT_DIR = "pyrocket-data"


@dataclass(frozen=True)
class UpOptions:
    """Where ``up`` keeps its data and what it listens on."""

    data_dir: Path = Path(DEFAULT_DIR)
    host: str = "127.0.0.1"
    namesrv_port: int = 9876
    broker_port: int = 10911
    cluster: str = "DefaultCluster"
    broker_name: str = "broker-a"


@dataclass(frozen=True)
class Running:
    """The NameServer and broker an ``up`` is running."""

    namesrv: NameServer
    namesrv_addr: str
    broker: Broker


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
        },
    )
    return config.replace(serialize_type=serialize_type_from_env())


def broker_settings(options: UpOptions, namesrv_addr: str) -> BrokerSettings:
    """The broker's configuration: a master on ``host``, its store under
    ``<dir>/broker``, registered with ``namesrv_addr``."""
    root = options.data_dir.resolve() / "broker"
    return load_broker_settings(
        None,
        {
            "brokerClusterName": options.cluster,
            "brokerName": options.broker_name,
            "brokerId": "0",
            "brokerRole": "ASYNC_MASTER",
            "brokerIP1": options.host,
            "brokerIP2": options.host,
            "namesrvAddr": namesrv_addr,
            "listenPort": str(options.broker_port),
            "storePathRootDir": str(root),
            "autoCreateTopicEnable": "true",
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
                task_status.started(Running(namesrv, namesrv_addr, broker))
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
    parser.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> UpOptions:
    return UpOptions(
        data_dir=Path(args.dir),
        host=args.host,
        namesrv_port=args.namesrv_port,
        broker_port=args.broker_port,
        cluster=args.cluster,
        broker_name=args.broker_name,
    )


async def _serve(options: UpOptions) -> None:
    async def start(nursery: trio.Nursery) -> None:
        running: Running = await nursery.start(serve_up, options)
        broker = running.broker
        print(
            f"pyrocket is up: NameServer {running.namesrv_addr}, "
            f"broker {broker.settings.broker.broker_name} {broker.broker_addr} "
            f"in cluster {broker.settings.broker.broker_cluster_name}, "
            f"data in {options.data_dir.resolve()}",
            flush=True,
        )
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


__all__ = ["Running", "UpOptions", "broker_settings", "namesrv_config", "serve_up"]
