"""Write the recorded frames, headers, bodies and ext fields of the golden
vectors into a directory, one file per input, as a seed corpus for atheris.

    python -m fuzz.corpus fuzz/corpus
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from fuzz.strategies import seeds


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fuzz.corpus DIRECTORY", file=sys.stderr)
        return 2
    directory = Path(args[0])
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for kind, pool in seeds().items():
        for data in pool:
            name = f"{kind}-{hashlib.sha1(data).hexdigest()[:16]}"
            (directory / name).write_bytes(data)
            written += 1
    print(f"{written} seed inputs in {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
