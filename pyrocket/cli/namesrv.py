"""``pyrocket namesrv``: run a NameServer from the namesrv.properties a Java
user has.

    pyrocket namesrv [-c namesrv.properties] [-p 9876] [--set KEY=VALUE ...]
                     [--host 0.0.0.0] [--metrics-port PORT] [--printConfigItem]

``-c`` is mqnamesrv's; ``-p`` is the listen port (mqnamesrv's ``-p`` prints
the config, here ``--printConfigItem`` does); ``--set`` overrides any
property. ``--metrics-port PORT`` (or the property ``metricsPort``) serves
Prometheus ``/metrics`` on that port of ``--host`` (0: any free port); it is
off by default. The serialize type comes from ``$ROCKETMQ_SERIALIZE_TYPE`` (JSON
or ROCKETMQ), as for Java. SIGINT and SIGTERM stop the NameServer.
"""

from __future__ import annotations

import argparse
import logging
import sys

import trio

from pyrocket.cli.serving import (
    add_set_option,
    report_failures,
    serve_until_signalled,
    set_overrides,
)
from pyrocket.errors import ConfigError
from pyrocket.javaprops import serialize_type_from_env
from pyrocket.metrics_http import metrics_url
from pyrocket.namesrv.app import NameServer
from pyrocket.namesrv.config import NamesrvConfig, load_config

log = logging.getLogger("pyrocket.namesrv")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "namesrv",
        help="run a NameServer (mqnamesrv)",
        description="Run a NameServer configured by a Java namesrv.properties.",
    )
    parser.add_argument("-c", "--configFile", help="Name server config properties file")
    parser.add_argument("-p", "--listenPort", type=int, help="port to listen on (0: any free port)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    add_set_option(parser, "namesrv.properties")
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus /metrics on PORT (metricsPort; default off)",
    )
    parser.add_argument(
        "--printConfigItem", action="store_true", help="Print all config item and exit"
    )
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> NamesrvConfig:
    """The configuration the arguments name. Raises ConfigError."""
    overrides = set_overrides(args.set)
    if args.listenPort is not None:
        overrides["listenPort"] = str(args.listenPort)
    if args.metrics_port is not None:
        overrides["metricsPort"] = str(args.metrics_port)
    config = load_config(args.configFile, overrides)
    return config.replace(serialize_type=serialize_type_from_env())


async def _serve(config: NamesrvConfig, host: str) -> None:
    async def start(nursery: trio.Nursery) -> None:
        namesrv = NameServer(config)
        await nursery.start(namesrv.serve, host)
        print(
            f"The Name Server boot success. serializeType={config.serialize_type.name}",
            flush=True,
        )
        if namesrv.metrics_port is not None:
            print(f"Metrics: {metrics_url(host, namesrv.metrics_port)}", flush=True)

    await serve_until_signalled(start, log)


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"pyrocket namesrv: {exc}", file=sys.stderr)
        return 2
    if args.printConfigItem:
        for group in ("namesrv", "netty", "pyrocket"):
            for key, value in config.java_properties(group):
                print(f"{key}={value}")
        return 0
    status = 0
    try:
        trio.run(_serve, config, args.host)
    except* (ConfigError, OSError) as group:
        report_failures("pyrocket namesrv", group)
        status = 1
    return status
