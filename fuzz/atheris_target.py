"""libFuzzer (atheris) harness for the fuzz targets, coverage-guided.

    pip install atheris
    python -m fuzz.corpus fuzz/corpus            # seed inputs from the vectors
    python -m fuzz.atheris_target all fuzz/corpus -max_total_time=600

The first argument may name a target of fuzz/targets.py (default ``all``); the
rest goes to libFuzzer (corpus directories, -runs=N, -max_total_time=S, -jobs=N).
A finding is saved by libFuzzer as ./crash-<sha1>; replay it with
``python -m fuzz.atheris_target TARGET crash-<sha1>``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["pyrocket"]):
    from fuzz.targets import TARGETS, all_targets


def main() -> None:
    args = list(sys.argv)
    name = "all"
    if len(args) > 1 and (args[1] == "all" or args[1] in TARGETS):
        name = args.pop(1)
    target = all_targets if name == "all" else TARGETS[name]
    atheris.Setup(args, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
