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
so that a person decides. Those functions block; async code calls
:func:`write_atomically_async` or runs :func:`load_with_backup` in a thread.

A table that changes often is written by a :class:`CoalescingWriter` (see
:func:`file_writer`): one writer per table, and a burst of changes shares
writes instead of queueing one write each, as the store's group commit shares
an fsync.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import NoReturn, TypeVar

import trio
from trio_util import AsyncValue, wait_any

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


class PersistError(PyrocketError):
    """A change is in memory but the write meant to make it durable failed
    (the message names the table and the OS error)."""


class CoalescingWriter:
    """One table's durable writes, shared by every change that waits for one.

    A change calls :meth:`request` (or :meth:`commit`, which also waits): it
    takes the next generation number. A *round* notes the newest generation,
    runs ``write_round`` (which snapshots the table before its first await,
    then writes it) and marks that generation finished, so one round answers
    every change made before it started, however many there were. Rounds
    never overlap. Waiting changes are parked tasks and the table itself is
    the only state, so a burst of changes costs memory for the waiters only.

    :meth:`run` is the writer task (in the owning app's nursery): it starts a
    round whenever a generation is unwritten. Without a running writer (a
    table used on its own, or after the app's tasks stopped) a waiting change
    runs the round itself, one at a time, with the same coalescing.

    A round that fails with OSError is logged; the changes it covered get
    :class:`PersistError` and the table stays dirty: the next change writes it
    all again (or :meth:`flush`).
    """

    def __init__(
        self, name: str, write_round: Callable[[], Awaitable[None]], log: logging.Logger
    ) -> None:
        self.name = name
        self._write_round = write_round
        self._log = log
        #: The newest generation asked for.
        self.requested: AsyncValue[int] = AsyncValue(0)
        #: The newest generation a finished round (successful or not) covered.
        self.finished: AsyncValue[int] = AsyncValue(0)
        #: The newest generation a successful round covered.
        self.written = 0
        #: Rounds started so far.
        self.rounds = 0
        self._error: OSError | None = None
        self._running: AsyncValue[bool] = AsyncValue(False)
        self._lock = trio.Lock()

    def request(self) -> int:
        """Note a change; returns its generation (for :meth:`wait`)."""
        generation: int = self.requested.value + 1
        self.requested.value = generation
        return generation

    @property
    def dirty(self) -> bool:
        """Some change is not in a successful write yet."""
        wanted: int = self.requested.value
        return self.written < wanted

    async def wait(self, generation: int) -> None:
        """Return once a round that started after ``generation`` was requested
        has finished. Raises PersistError when that round failed and no later
        one succeeded."""
        while self.finished.value < generation:
            if self._running.value:
                await wait_any(
                    partial(self.finished.wait_value, lambda done: done >= generation),
                    partial(self._running.wait_value, False),
                )
            else:
                async with self._lock:
                    if self.finished.value < generation:
                        await self._round()
        if self.written < generation:
            raise PersistError(f"{self.name}: {self._error}")

    async def commit(self) -> None:
        """:meth:`request` and :meth:`wait`: the change made before this call
        is durable when it returns. Raises PersistError."""
        await self.wait(self.request())

    async def flush(self) -> None:
        """Write the table if some change is not durable yet (shutdown, or a
        retry after a failure). Raises PersistError."""
        if self.dirty:
            await self.commit()

    async def _round(self) -> None:
        target = self.requested.value
        self.rounds += 1
        try:
            await self._write_round()
        except OSError as exc:
            self._error = exc
            self._log.error("writing %s failed (the next change retries): %s", self.name, exc)
        else:
            self.written = max(self.written, target)
        # Set last: woken waiters read ``written``.
        self.finished.value = max(self.finished.value, target)

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """The writer task: a round whenever a change is unwritten, until
        cancelled. Only one may run at a time (RuntimeError otherwise)."""
        if self._running.value:
            raise RuntimeError(f"{self.name}: a writer is already running")
        self._running.value = True
        try:
            task_status.started()
            while True:
                await self.requested.wait_value(lambda wanted: wanted > self.finished.value)
                async with self._lock:
                    if self.requested.value > self.finished.value:
                        await self._round()
        finally:
            self._running.value = False


def file_writer(
    path: str | os.PathLike[str],
    encode: Callable[[], str | bytes],
    log: logging.Logger,
) -> CoalescingWriter:
    """A :class:`CoalescingWriter` whose round encodes the table once, on the
    event loop (a consistent snapshot), and writes it with
    :func:`write_atomically` in a worker thread."""

    async def write_round() -> None:
        data = encode()
        await trio.to_thread.run_sync(write_atomically, path, data)

    return CoalescingWriter(os.fspath(path), write_round, log)


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
