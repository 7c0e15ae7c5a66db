"""``pyrocket``: the command line, a thin shell over the package.

Each command group lives in its own module here and exposes
``register(subparsers)``, adding its sub-command(s) with ``func`` set to a
callable taking the parsed arguments and returning the exit status. Admin
commands (``pyrocket admin <command>``, named and flagged as ``mqadmin``'s)
register under the ``admin`` parser through ``register_admin(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import io
import logging
import os
import sys
from collections.abc import Sequence

from pyrocket import __version__

#: Modules contributing top-level commands (``register``).
COMMAND_MODULES: tuple[str, ...] = (
    "pyrocket.cli.decode",
    "pyrocket.cli.record",
    "pyrocket.cli.namesrv",
    "pyrocket.cli.broker",
    "pyrocket.cli.up",
    "pyrocket.cli.clients",
)

#: Modules contributing ``pyrocket admin`` commands (``register_admin``).
ADMIN_MODULES: tuple[str, ...] = (
    "pyrocket.cli.admin_namesrv",
    "pyrocket.cli.admin_broker",
    "pyrocket.cli.admin_ops",
    "pyrocket.cli.admin_message",
    "pyrocket.cli.admin_acl",
    "pyrocket.cli.admin_tools",
    "pyrocket.cli.admin_msgtools",
    "pyrocket.cli.admin_rt",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyrocket",
        description="Apache RocketMQ 4.7 NameServer, broker and clients in Python.",
    )
    parser.add_argument("--version", action="version", version=f"pyrocket {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", help="logging level (DEBUG, INFO, WARNING, ...)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    if ADMIN_MODULES:
        admin = commands.add_parser("admin", help="mqadmin's commands, same names and flags")
        admin_commands = admin.add_subparsers(
            dest="admin_command", metavar="COMMAND", required=True
        )
        for name in ADMIN_MODULES:
            importlib.import_module(name).register_admin(admin_commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; raises SystemExit with the exit status
    (0 success, 1 a failure the command reports, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Captured text may hold anything; never fail on a terminal's encoding.
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        status = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and point stdout
        # at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = 1
    raise SystemExit(int(status or 0))
