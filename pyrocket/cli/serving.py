"""What the commands that run a server (``pyrocket namesrv``, ``pyrocket
broker``) share: ``--set KEY=VALUE`` overrides, running until SIGINT or
SIGTERM, and the failures of a trio run reported one by one."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable

import trio

from pyrocket.errors import ConfigError


def add_set_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--set KEY=VALUE`` (repeatable), overriding a key of ``what``."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a {what} key (repeatable)",
    )


def set_overrides(items: Iterable[str]) -> dict[str, str]:
    """The ``--set`` items as a dict; raises ConfigError for one without ``=``
    or without a key."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = value
    return overrides


async def serve_until_signalled(
    start: Callable[[trio.Nursery], Awaitable[None]], log: logging.Logger
) -> None:
    """Run ``start(nursery)`` (which starts the server in the nursery), then
    serve until SIGINT or SIGTERM, when the nursery is cancelled: the
    server's own shutdown."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await start(nursery)
            async for signum in signals:
                log.info("signal %s received, shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside ``error``, exception groups flattened."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def report_failures(program: str, group: BaseExceptionGroup[BaseException]) -> None:
    """Print each failure in ``group`` as ``<program>: <reason>`` on stderr."""
    for leaf in leaves(group):
        print(f"{program}: {leaf}", file=sys.stderr)
