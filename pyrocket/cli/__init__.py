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
import logging
import sys
from collections.abc import Sequence

#: Modules contributing top-level commands (``register``).
COMMAND_MODULES: tuple[str, ...] = ("pyrocket.cli.broker",)

#: Modules contributing ``pyrocket admin`` commands (``register_admin``).
ADMIN_MODULES: tuple[str, ...] = ("pyrocket.cli.admin_broker",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyrocket",
        description="Apache RocketMQ 4.7 NameServer, broker and clients in Python.",
    )
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
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    status = args.func(args)
    raise SystemExit(int(status or 0))
