"""Small durable files: configuration and offset tables, written atomically.

Java's ``ConfigManager`` keeps ``<file>``, ``<file>.tmp`` and ``<file>.bak``:
it writes the new content to ``.tmp``, copies the old content to ``.bak`` and
renames ``.tmp`` over the file, without fsync. On load it falls back to ``.bak``
when the file is missing or empty, and also when the file fails to parse; a
Java broker whose table failed to load runs with an empty table and its next
persist overwrites the damaged file.

pyrocket writes the same three names, so a Java operator finds what they
expect, but fsyncs each step and never replaces a file it could not read:
:func:`load_with_backup` raises :class:`ConfigError` naming the damaged file,
so that a person decides. Everything here blocks; async code calls
:func:`write_atomically_async` or runs :func:`load_with_backup` in a thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import trio

from pyrocket.errors import ConfigError, PyrocketError

T = TypeVar("T")

TMP_SUFFIX = ".tmp"
BAK_SUFFIX = ".bak"


def fsync_directory(directory: Path) -> None:
    """Make a rename or creation inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_atomically(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or
    the new content, and keep the old content in ``<path>.bak``.

    Strings are written as UTF-8. Raises OSError when the disk refuses.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = target.with_name(target.name + TMP_SUFFIX)
    _write_synced(tmp, payload)
    try:
        previous = target.read_bytes()
    except FileNotFoundError:
        previous = None
    if previous is not None:
        bak = target.with_name(target.name + BAK_SUFFIX)
        bak_tmp = target.with_name(target.name + BAK_SUFFIX + TMP_SUFFIX)
        _write_synced(bak_tmp, previous)
        os.replace(bak_tmp, bak)
    os.replace(tmp, target)
    fsync_directory(target.parent)


async def write_atomically_async(path: str | os.PathLike[str], data: str | bytes) -> None:
    """:func:`write_atomically` in a worker thread."""
    await trio.to_thread.run_sync(write_atomically, path, data)


async def persist_table(
    path: str | os.PathLike[str],
    lock: trio.Lock,
    encode: Callable[[], str],
    log: logging.Logger,
) -> None:
    """Java's ``ConfigManager.persist``: under ``lock`` (so that writes of the
    same table never interleave), encode the table and write it atomically.
    A disk failure is logged on ``log``, not raised: the table in memory
    stays and the next persist tries again."""
    async with lock:
        text = encode()
        try:
            await write_atomically_async(path, text)
        except OSError as exc:
            log.error("persist %s failed: %s", path, exc)


def _read_text(path: Path) -> str | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc


def load_with_backup(path: str | os.PathLike[str], parse: Callable[[str], T]) -> T | None:
    """Parse ``path``, or ``<path>.bak`` when ``path`` is missing or empty (an
    interrupted write); None when neither has content.

    Raises ConfigError naming the file when the chosen file cannot be read or
    ``parse`` rejects it (``parse`` signals that with ValueError, LookupError,
    TypeError or a PyrocketError). The file is left as it is.
    """
    target = Path(path)
    bak = target.with_name(target.name + BAK_SUFFIX)
    for candidate in (target, bak):
        text = _read_text(candidate)
        if text is None or not text.strip():
            continue
        try:
            return parse(text)
        except (PyrocketError, ValueError, LookupError, TypeError) as exc:
            hint = (
                f"; the previous version is in {bak}"
                if candidate == target and bak.exists()
                else ""
            )
            raise ConfigError(f"{candidate}: cannot be parsed ({exc}){hint}") from exc
    return None
