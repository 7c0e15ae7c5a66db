"""What the commands that run a server (``pyrocket namesrv``, ``pyrocket
broker``) share: ``--set KEY=VALUE`` overrides, running until SIGINT or
SIGTERM (a second signal exits at once) with a short GIL switch interval
and a collector tuned for serving, and the failures of a trio run reported
one by one."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Final, NoReturn

import trio

from pyrocket.errors import ConfigError

#: The GIL switch interval while a server runs, in seconds (CPython's default
#: is 5 ms). Large bodies (a REGISTER_BROKER of thousands of topics, a
#: heartbeat of many tags) are decoded in worker threads, which hold the GIL
#: while they run Python code; the event loop lets the GIL go at every socket
#: or file call and then waits up to one interval to get it back, several
#: times per request it answers. A shorter interval bounds each such wait.
SERVER_SWITCH_INTERVAL: Final = 0.001

#: The cyclic collector's thresholds while a server serves (CPython's
#: default is 700, 10, 10). What a request allocates is freed by reference
#: counting as soon as it is answered; with the default, a young collection
#: runs every few milliseconds under load, promotes the objects of every
#: request still waiting (a SYNC_FLUSH send waiting for its fsync, say), and
#: their number soon triggers a full collection, which on a loaded broker
#: took 20-30 ms each: a stall of the event loop and most of a SYNC_FLUSH
#: send's p99. With objects made before serving frozen (they live as long
#: as the server) and a young generation of 10,000, a full collection only
#: walks what was made since, in about a millisecond.
SERVER_GC_THRESHOLD: Final = (10_000, 10, 10)


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


def exit_at_once(status: int) -> NoReturn:
    """End the process now, without running any more cleanup."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


async def serve_until_signalled(
    start: Callable[[trio.Nursery], Awaitable[None]],
    log: logging.Logger,
    *,
    force_exit: Callable[[int], None] = exit_at_once,
) -> None:
    """Run ``start(nursery)`` (which starts the server in the nursery), then
    serve until SIGINT or SIGTERM, when the nursery is cancelled: the
    server's own shutdown, which has a deadline of its own. A second signal
    during that shutdown ends the process at once
    (``force_exit(128 + signal)``): the store recovers on the next start as
    after a crash. The process runs with :data:`SERVER_SWITCH_INTERVAL`
    meanwhile."""
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(SERVER_SWITCH_INTERVAL)
    try:
        await _serve_until_signalled(start, log, force_exit)
    finally:
        sys.setswitchinterval(previous_interval)


async def _serve_until_signalled(
    start: Callable[[trio.Nursery], Awaitable[None]],
    log: logging.Logger,
    force_exit: Callable[[int], None],
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        serving = trio.CancelScope()

        async def watch() -> None:
            async for signum in signals:
                name = signal.Signals(signum).name
                if not serving.cancel_called:
                    log.info("signal %s received, shutting down (again to exit at once)", name)
                    serving.cancel()
                    continue
                log.warning("second signal %s received during shutdown, exiting at once", name)
                force_exit(128 + signum)

        async with trio.open_nursery() as outer:
            outer.start_soon(watch)
            with serving:
                async with trio.open_nursery() as nursery:
                    await start(nursery)
                    with collector_for_serving():
                        await trio.sleep_forever()
            outer.cancel_scope.cancel()


@contextlib.contextmanager
def collector_for_serving() -> Iterator[None]:
    """Collect once and freeze what survives (the loaded configuration,
    tables and code, which last as long as the server), then collect with
    :data:`SERVER_GC_THRESHOLD`; both undone on leaving."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVER_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside ``error``, exception groups flattened."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def report_failures(program: str, group: BaseExceptionGroup[BaseException]) -> None:
    """Print each failure in ``group`` as ``<program>: <reason>`` on stderr."""
    for leaf in leaves(group):
        print(f"{program}: {leaf}", file=sys.stderr)
