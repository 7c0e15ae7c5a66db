"""What the ``pyrocket admin`` command modules share: a command's session
(NameServer and broker requests over one RemotingClient, the NameServers
named by ``-n`` or ``$NAMESRV_ADDR``), mqadmin's failure line, and the
argparse wiring of a command.

A command is ``async def command(session, args, out)``; :func:`add_command`
registers it with a ``-n`` option and runs it in its own trio run. A
PyrocketError it raises (each one, if several) is printed as
``<JavaClass> command failed: <reason>`` on stderr and the exit status is 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final, TextIO

import trio

from pyrocket.cli.serving import report_failures
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.namesrv_api import NameServerAPI
from pyrocket.errors import PyrocketError, ResponseError
from pyrocket.remoting import RemotingClient

#: DefaultMQAdminExt's timeout (seconds).
TIMEOUT: Final = 5.0


class CommandFailed(PyrocketError):
    """A command that cannot go on (mqadmin throws and prints the reason)."""


class Session:
    """One command's client: the NameServers from ``-n``, and brokers."""

    def __init__(self, client: RemotingClient, namesrv_addresses: list[str]) -> None:
        self.client = client
        self.brokers = BrokerAPI(client, TIMEOUT)
        self._namesrv = NameServerAPI(client, TIMEOUT)
        self._namesrv_addresses = namesrv_addresses

    @property
    def namesrv_addresses(self) -> list[str]:
        """The NameServers named; raises CommandFailed when there are none."""
        if not self._namesrv_addresses:
            raise CommandFailed("no name server address: give -n or set NAMESRV_ADDR")
        return list(self._namesrv_addresses)

    @property
    def namesrv(self) -> NameServerAPI:
        """Requests to the NameServers (``addr=None``: the client's pick of
        them); raises CommandFailed when none was named."""
        self.namesrv_addresses  # noqa: B018 (the check)
        return self._namesrv

    async def on_every_namesrv(self, call: Callable[[str], Awaitable[None]]) -> None:
        """``call(addr)`` for each NameServer in turn; a refusal does not stop
        the others, the last one is raised at the end (mqadmin's
        ``putKVConfigValue``)."""
        failure: ResponseError | None = None
        for addr in self.namesrv_addresses:
            try:
                await call(addr)
            except ResponseError as exc:
                failure = exc
        if failure is not None:
            raise failure


@asynccontextmanager
async def open_session(namesrv: str | None) -> AsyncIterator[Session]:
    """A session for ``-n namesrv`` (None: ``$NAMESRV_ADDR``)."""
    text = namesrv if namesrv is not None else os.environ.get("NAMESRV_ADDR", "")
    addresses = [a.strip() for a in text.split(";") if a.strip()]
    async with RemotingClient(namesrv_addresses=addresses) as client:
        yield Session(client, addresses)


Command = Callable[[Session, argparse.Namespace, TextIO], Awaitable[None]]


def int_option(name: str, text: str) -> int:
    """The decimal value of option ``-name``; raises CommandFailed."""
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise CommandFailed(f"-{name} {text!r} is not an integer") from None


def java_bool(text: str) -> bool:
    """``Boolean.parseBoolean``: "true" in any case, anything else false."""
    return text.strip().lower() == "true"


def _runner(java_class: str, command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        # Connection chatter is for debugging; the command's output is the point.
        remoting_log = logging.getLogger("pyrocket.remoting")
        if not remoting_log.isEnabledFor(logging.DEBUG):
            remoting_log.setLevel(logging.WARNING)

        async def main() -> None:
            async with open_session(args.namesrvAddr) as session:
                await command(session, args, sys.stdout)

        status = 0
        try:
            trio.run(main)
        except* PyrocketError as group:
            report_failures(f"{java_class} command failed", group)
            status = 1
        sys.stdout.flush()
        return status

    return run


def add_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    command: Command,
    java_class: str,
) -> argparse.ArgumentParser:
    """Register ``command`` as ``pyrocket admin <name>`` with mqadmin's
    ``-n`` option; returns its parser for the command's own options."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.add_argument(
        "-n",
        "--namesrvAddr",
        help='Name server address list, eg: "192.168.0.1:9876;192.168.0.2:9876"',
    )
    parser.set_defaults(func=_runner(java_class, command))
    return parser
