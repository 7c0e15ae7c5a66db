"""``pyrocket namesrv``: run a NameServer from the namesrv.properties a Java
user has.

    pyrocket namesrv [-c namesrv.properties] [-p 9876] [--set KEY=VALUE ...]
                     [--host 0.0.0.0] [--printConfigItem]

``-c`` is mqnamesrv's; ``-p`` is the listen port (mqnamesrv's ``-p`` prints
the config, here ``--printConfigItem`` does); ``--set`` overrides any
property. The serialize type comes from ``$ROCKETMQ_SERIALIZE_TYPE`` (JSON
or ROCKETMQ), as for Java. SIGINT and SIGTERM stop the NameServer.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

import trio

from pyrocket.errors import ConfigError
from pyrocket.namesrv.app import NameServer
from pyrocket.namesrv.config import NamesrvConfig, load_config
from pyrocket.protocol.codes import SerializeType

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
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a namesrv.properties key (repeatable)",
    )
    parser.add_argument(
        "--printConfigItem", action="store_true", help="Print all config item and exit"
    )
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> NamesrvConfig:
    """The configuration the arguments name. Raises ConfigError."""
    overrides: dict[str, str] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = value
    if args.listenPort is not None:
        overrides["listenPort"] = str(args.listenPort)
    config = load_config(args.configFile, overrides)
    wire = os.environ.get("ROCKETMQ_SERIALIZE_TYPE", "JSON").strip().upper()
    if wire not in SerializeType.__members__:
        raise ConfigError(f"ROCKETMQ_SERIALIZE_TYPE={wire!r}: expected JSON or ROCKETMQ")
    return config.replace(serialize_type=SerializeType[wire])


async def _serve(config: NamesrvConfig, host: str) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            server = NameServer(config)
            await nursery.start(server.serve, host)
            print(
                f"The Name Server boot success. serializeType={config.serialize_type.name}",
                flush=True,
            )
            async for signum in signals:
                log.info("signal %s received, shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


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
        for leaf in _leaves(group):
            print(f"pyrocket namesrv: {leaf}", file=sys.stderr)
        status = 1
    return status


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]
