"""The ``pyrocket`` command line: argument parsing only; the work is done by
the package (``pyrocket decode`` -> :mod:`pyrocket.capture`).

Exit status: 0 success, 1 a failure the command reports, 2 bad usage.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pyrocket import __version__
from pyrocket.capture import CheckFailed, decode_files
from pyrocket.errors import ProtocolError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyrocket",
        description="Apache RocketMQ 4.7 NameServer, broker and clients on trio.",
    )
    parser.add_argument("--version", action="version", version=f"pyrocket {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    decode = commands.add_parser(
        "decode",
        help="print the commands of captures (JSON Lines vectors or raw frame streams)",
        description=(
            "Print every command of each capture: code, direction, opaque, header "
            "fields and the body (as text when it is text). A file starting with "
            "'{' is read as JSON Lines records, anything else as concatenated frames."
        ),
    )
    decode.add_argument(
        "--check",
        action="store_true",
        help=(
            "re-encode every frame and every body with a typed codec; exit 1 at the "
            "first byte that differs; print the counts as JSON last"
        ),
    )
    decode.add_argument("files", nargs="+", type=Path, metavar="FILE")
    decode.set_defaults(handler=_decode)
    return parser


def _decode(args: argparse.Namespace) -> int:
    out = sys.stdout
    try:
        report = decode_files(args.files, out, check=args.check)
    except CheckFailed as exc:
        print(f"check failed: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise
    except (OSError, ProtocolError) as exc:
        print(f"pyrocket decode: {exc}", file=sys.stderr)
        return 1
    if args.check:
        print(json.dumps(report.summary()), file=out)
    return 1 if report.failures else 0


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; raises SystemExit with the exit status."""
    args = build_parser().parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Captured text may hold anything; never fail on a terminal's encoding.
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        status: int = args.handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and point stdout
        # at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = 1
    raise SystemExit(status)
