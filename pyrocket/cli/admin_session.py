"""What the ``pyrocket admin`` command modules share: a command's
:class:`~pyrocket.client.admin.Admin` (the NameServers named by ``-n`` or
``$NAMESRV_ADDR``), mqadmin's failure line, option parsing helpers and the
argparse wiring of a command.

A command is ``async def command(admin, args, out)``; :func:`add_command`
registers it with a ``-n`` option (and the signing options of
:mod:`pyrocket.cli.credentials`) and runs it in its own trio run. A
PyrocketError it raises (each one, if several) is printed as
``<JavaClass> command failed: <reason>`` on stderr and the exit status is 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TextIO

import trio

from pyrocket.acl.signing import SessionCredentials
from pyrocket.cli.credentials import add_credential_options, credentials
from pyrocket.cli.serving import report_failures
from pyrocket.cli.tls_options import add_tls_options, client_tls
from pyrocket.client.admin import (
    CLUSTER_ERROR,
    Admin,
    AdminError,
    UnknownClusterError,
)
from pyrocket.errors import PyrocketError
from pyrocket.remoting.tls import TlsSettings

#: The hint a command without NameServers gives.
NAMESRV_HINT = "give -n or set NAMESRV_ADDR"


class CommandFailed(AdminError):
    """A command that cannot go on (mqadmin throws and prints the reason)."""


@asynccontextmanager
async def open_admin(
    namesrv: str | None,
    tls: TlsSettings | None = None,
    keys: SessionCredentials | None = None,
) -> AsyncIterator[Admin]:
    """An admin for ``-n namesrv`` (None: ``$NAMESRV_ADDR``), with TLS when
    ``tls`` is given, signing with ``keys``."""
    async with Admin(namesrv, namesrv_hint=NAMESRV_HINT, tls=tls, credentials=keys) as admin:
        yield admin


Command = Callable[[Admin, argparse.Namespace, TextIO], Awaitable[None]]


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
            keys = credentials(args, tools_yml=True)
            async with open_admin(args.namesrvAddr, client_tls(args), keys) as admin:
                await command(admin, args, sys.stdout)

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
    ``-n`` option and the TLS options; returns its parser for the command's own options."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.add_argument(
        "-n",
        "--namesrvAddr",
        help='Name server address list, eg: "192.168.0.1:9876;192.168.0.2:9876"',
    )
    add_tls_options(parser)
    add_credential_options(parser)
    parser.set_defaults(func=_runner(java_class, command))
    return parser


def write_unknown_cluster(out: TextIO) -> None:
    """mqadmin's line for a cluster it cannot find (it then goes on)."""
    out.write(f"[error] {CLUSTER_ERROR}")


async def delete_topic_everywhere(admin: Admin, cluster: str, topic: str, out: TextIO) -> None:
    """mqadmin's deleteTopic: from every broker of a cluster (an unknown one
    is reported and skipped), then from the NameServers."""
    try:
        await admin.delete_topic_in_cluster(topic, cluster)
    except UnknownClusterError:
        write_unknown_cluster(out)
    out.write(f"delete topic [{topic}] from cluster [{cluster}] success.\n")
    await admin.delete_topic_in_namesrvs(topic)
    out.write(f"delete topic [{topic}] from NameServer success.\n")
