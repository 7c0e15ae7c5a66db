"""``pyrocket decode [--check] FILE...``: print (and re-check) captures.

The work is done by :mod:`pyrocket.capture`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pyrocket.capture import CheckFailed, decode_files
from pyrocket.errors import ProtocolError


def register(commands: Any) -> None:
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
    decode.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
