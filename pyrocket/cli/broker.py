"""``pyrocket broker``: run a broker from the broker.conf a Java user has.

    pyrocket broker -c broker.conf [-n "127.0.0.1:9876;127.0.0.2:9876"]
                    [--set listenPort=10921 ...] [--metrics-port PORT] [-p]

``-c`` and ``-n`` are mqbroker's; ``-p`` prints every config item and exits,
as ``mqbroker -p`` does; ``--set KEY=VALUE`` overrides any broker.conf key. ``--metrics-port PORT``
(or the key ``metricsPort``) serves Prometheus ``/metrics`` on that port of
the listen address (0: any free port); it is off by default.
SIGINT and SIGTERM shut the broker down gracefully: it unregisters from every
NameServer, closes its servers and flushes its store.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import trio

from pyrocket.broker.app import serve_broker
from pyrocket.broker.config import BrokerSettings, load_broker_settings, object_properties
from pyrocket.broker.store import StoreError
from pyrocket.cli.serving import (
    add_set_option,
    report_failures,
    serve_until_signalled,
    set_overrides,
)
from pyrocket.errors import ConfigError
from pyrocket.metrics_http import metrics_url

log = logging.getLogger("pyrocket.broker")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "broker",
        help="run a broker (mqbroker)",
        description="Run a broker configured by a Java broker.conf.",
    )
    parser.add_argument("-c", "--configFile", help="Broker config properties file")
    parser.add_argument(
        "-n",
        "--namesrvAddr",
        help='Name server address list, eg: "192.168.0.1:9876;192.168.0.2:9876"',
    )
    parser.add_argument(
        "-p", "--printConfigItem", action="store_true", help="Print all config item"
    )
    add_set_option(parser, "broker.conf")
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus /metrics on PORT (metricsPort; default off)",
    )
    parser.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    overrides = set_overrides(args.set)
    if args.namesrvAddr is not None:
        overrides["namesrvAddr"] = args.namesrvAddr
    if args.metrics_port is not None:
        overrides["metricsPort"] = str(args.metrics_port)
    return overrides


def settings_from_args(args: argparse.Namespace) -> BrokerSettings:
    """The broker settings the arguments name. Raises ConfigError."""
    path = Path(args.configFile) if args.configFile else None
    return load_broker_settings(path, _overrides(args))


async def _serve(settings: BrokerSettings) -> None:
    async def start(nursery: trio.Nursery) -> None:
        broker = await nursery.start(serve_broker, settings)
        name = broker.settings.broker.broker_name
        tip = f"The broker[{name}, {broker.broker_addr}] boot success."
        wire = broker.settings.serialize_type.name
        namesrv = broker.settings.broker.namesrv_addr
        if namesrv:
            tip += f" serializeType={wire} and name server is {namesrv}"
        print(tip, flush=True)
        if broker.metrics_port is not None:
            shown = broker.settings.broker.broker_ip1
            print(f"Metrics: {metrics_url(shown, broker.metrics_port)}", flush=True)

    await serve_until_signalled(start, log)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"pyrocket broker: {exc}", file=sys.stderr)
        return 2
    if args.printConfigItem:
        for obj in settings.config_objects():
            for key, value in object_properties(obj):
                print(f"{key}={value}")
        return 0
    status = 0
    try:
        trio.run(_serve, settings)
    except* (ConfigError, StoreError, OSError) as group:
        report_failures("pyrocket broker", group)
        status = 1
    return status
