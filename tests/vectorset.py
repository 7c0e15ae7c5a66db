"""Where the tests find their capture set: ``$PYROCKET_VECTORS``, else the
golden vectors shipped in ``tests/vectors`` (recorded from Java 4.7.0).

Any other capture set of the same scenarios (for example one made with
``pyrocket record``) can be named with ``PYROCKET_VECTORS``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from pyrocket.cli.capture.records import Record, pair_requests, read_records

#: Environment variable naming the vectors directory, overriding the default.
VECTORS_ENV = "PYROCKET_VECTORS"

#: The capture set shipped with the repository.
SHIPPED_VECTORS = Path(__file__).resolve().parent / "vectors"


def default_vectors_dir() -> Path:
    """``$PYROCKET_VECTORS``, else the shipped set (``tests/vectors``)."""
    env = os.environ.get(VECTORS_ENV)
    if env:
        return Path(env)
    return SHIPPED_VECTORS


def scenario_files(directory: Path | None = None) -> list[Path]:
    """Every ``*.jsonl`` capture in ``directory``, sorted by name.

    Raises FileNotFoundError when the directory is missing or holds none.
    """
    directory = directory or default_vectors_dir()
    if not directory.is_dir():
        raise FileNotFoundError(f"vectors directory {directory} does not exist")
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no *.jsonl captures in {directory}")
    return files


def iter_all_records(directory: Path | None = None) -> Iterator[Record]:
    """Every record of every capture in ``directory``."""
    for path in scenario_files(directory):
        yield from read_records(path)


__all__ = [
    "SHIPPED_VECTORS",
    "VECTORS_ENV",
    "Record",
    "default_vectors_dir",
    "iter_all_records",
    "pair_requests",
    "read_records",
    "scenario_files",
]
