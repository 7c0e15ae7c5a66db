"""``pyrocket decode [--check] FILE...``: print (and re-check) captures.

The work is done by :mod:`pyrocket.cli.capture`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from pyrocket.cli.capture import CheckFailed, decode_files
from pyrocket.errors import ProtocolError

# What --check checks, one paragraph (argparse rewraps it).
_CHECK_HELP = re.sub(
    r"\s+",
    " ",
    """
re-encode every frame from its typed values and compare bytes; exit 1 at the first
difference; print the counts as JSON last. The header's ext fields are rebuilt from the
header class Java picks for the request code (for an answer: the code of the request it
answers, paired by connection, opaque and opposite sender), in the order Java's HashMap
iterates them; keys that class does not declare are put first, in their recorded order,
as Java adds them before encoding. A code with no header class, an answer whose request
is not in the capture, or ext fields the class does not parse, is rebuilt as a plain
HashMap<String,String>. So a frame whose ext field order no Java process would produce
is reported as not identical. Frames a 'handcrafted' client sent are re-encoded in their
recorded order, header and body. Every body with a typed codec (chosen by the request
code, as for headers) is decoded and re-encoded; inside it, each hash map or hash set
whose Java type and key hashCode are known (HashMap, ConcurrentHashMap, HashSet: routes,
cluster info, KV and topic lists, topic, offset and subscription tables, stats by queue,
tag and subscription sets, and a route's broker list, which Java fills from a HashSet)
must iterate by bucket for any power-of-two table size its size allows (the table may
have grown before entries were removed; within a bucket the recorded order stands), else
it is rebuilt in the smallest table's order and reported. Lists, TreeMaps, Properties
and sets of beans without a hashCode keep their recorded order.
""",
).strip()


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
    decode.add_argument("--check", action="store_true", help=_CHECK_HELP)
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
