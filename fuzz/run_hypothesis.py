"""A long hypothesis campaign over the fuzz targets.

    python -m fuzz.run_hypothesis                     # every target, 20000 inputs each
    python -m fuzz.run_hypothesis --examples 200000 --target body

Failures are saved in .hypothesis/fuzz and replayed first on the next run.
Exit status 1 when a target fails (the falsifying input is printed).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Sequence

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from fuzz.strategies import inputs_for
from fuzz.targets import TARGETS


def run(target: str, examples: int, database: str | None) -> None:
    """Run one target for ``examples`` inputs; raises what the target raises."""
    check = TARGETS[target]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None if database is None else DirectoryBasedExampleDatabase(database),
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        print_blob=True,
    )
    @given(inputs_for(target))
    def campaign(data: bytes) -> None:
        check(data)

    campaign()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run_hypothesis")
    parser.add_argument("--examples", type=int, default=20000, help="inputs per target")
    parser.add_argument(
        "--target", action="append", choices=sorted(TARGETS), help="repeatable; default all"
    )
    parser.add_argument(
        "--database", default=".hypothesis/fuzz", help="where failing inputs are kept"
    )
    parser.add_argument("--no-database", action="store_true", help="keep nothing")
    args = parser.parse_args(argv)
    failed = False
    for target in args.target or sorted(TARGETS):
        start = time.perf_counter()
        try:
            run(target, args.examples, None if args.no_database else args.database)
        except Exception as exc:  # a finding: report it and go on with the others
            failed = True
            traceback.print_exception(exc)
            print(f"{target}: FAILED: {type(exc).__name__}: {exc}", flush=True)
            continue
        elapsed = time.perf_counter() - start
        print(f"{target}: {args.examples} inputs in {elapsed:.1f} s, no finding", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
