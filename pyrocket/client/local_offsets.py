"""A broadcasting consumer's offsets in a local file (Java's
``LocalFileOffsetStore``).

The file is ``<dir>/<clientId>/<group>/offsets.json``; ``<dir>`` is the
``local_offset_store_dir`` given, else the environment variable
``ROCKETMQ_CLIENT_LOCAL_OFFSET_STORE_DIR`` (where Java reads the system
property ``rocketmq.client.localOffsetStoreDir``), else
``$HOME/.rocketmq_offsets``, as in Java. A consumer resumes from the file
only under the same client id (``ip@instance_name``): Java's and pyrocket's
consumers on one machine have different ids and so different files.

Writes follow ``MixAll.string2File``: the new text goes to ``offsets.json.tmp``,
the previous content to ``offsets.json.bak``, then the ``.tmp`` is renamed over
the file (pyrocket also fsyncs each step; see :mod:`pyrocket.persist`). A
missing, empty or unreadable file falls back to the ``.bak``, as Java reads
it; a ``.bak`` that does not parse either stops the consumer's start with
:class:`~pyrocket.errors.ConfigError` (Java throws MQClientException there).
File access runs in a worker thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import trio

from pyrocket.errors import ConfigError, ProtocolError
from pyrocket.persist import BAK_SUFFIX, write_atomically
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.offset_file import decode_offset_file, encode_offset_file

log = logging.getLogger("pyrocket.client.consumer")

#: The environment variable standing for Java's system property
#: ``rocketmq.client.localOffsetStoreDir``.
LOCAL_OFFSET_STORE_DIR_ENV = "ROCKETMQ_CLIENT_LOCAL_OFFSET_STORE_DIR"
OFFSETS_FILE = "offsets.json"


def default_store_dir() -> Path:
    """``LocalFileOffsetStore.LOCAL_OFFSET_STORE_DIR``'s equivalent."""
    configured = os.environ.get(LOCAL_OFFSET_STORE_DIR_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".rocketmq_offsets"


def store_path(store_dir: str | os.PathLike[str] | None, client_id: str, group: str) -> Path:
    """Where the offsets of ``group`` read by ``client_id`` live."""
    root = default_store_dir() if store_dir is None else Path(store_dir)
    return root / client_id / group / OFFSETS_FILE


def _read(path: Path) -> str | None:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read the offsets in %s: %s", path, exc)
        return None
    return text if text.strip() else None


def read_offset_file(path: Path) -> dict[MessageQueue, int]:
    """``readLocalOffset``: the offsets in ``path``, else in its ``.bak``
    when ``path`` is missing, empty or bad; empty when neither exists.
    Raises ConfigError when the ``.bak`` is needed and bad. Blocks."""
    text = _read(path)
    if text is not None:
        try:
            return decode_offset_file(text)
        except ProtocolError as exc:
            log.warning("%s is damaged (%s); reading its backup", path, exc)
    bak = path.with_name(path.name + BAK_SUFFIX)
    text = _read(bak)
    if text is None:
        return {}
    try:
        return decode_offset_file(text)
    except ProtocolError as exc:
        raise ConfigError(f"{bak}: cannot be parsed ({exc})") from exc


class LocalOffsetStore:
    """The offset table of one broadcasting consumer and its file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.table: dict[MessageQueue, int] = {}
        self._lock = trio.Lock()

    async def load(self) -> None:
        """Read the file (``load``); raises ConfigError as
        :func:`read_offset_file` does."""
        self.table = await trio.to_thread.run_sync(read_offset_file, self.path)
        for queue, offset in self.table.items():
            log.info("local offset of %s: %d (%s)", queue, offset, self.path)

    def read(self, queue: MessageQueue) -> int | None:
        """The stored offset of ``queue``, None when it has none."""
        return self.table.get(queue)

    def update(self, queue: MessageQueue, offset: int) -> None:
        """Set ``queue``'s offset (in memory until the next :meth:`persist`)."""
        if offset >= 0:
            self.table[queue] = offset

    async def persist(self, queues: Iterable[MessageQueue]) -> None:
        """``persistAll``: write the offsets of ``queues`` (those assigned
        now) to the file; an OS error is logged, as Java does. Nothing is
        written for no queues."""
        assigned = list(queues)
        if not assigned:
            return
        wanted = {q: self.table[q] for q in assigned if q in self.table}
        text = encode_offset_file(wanted)
        async with self._lock:
            try:
                await trio.to_thread.run_sync(write_atomically, self.path, text)
            except OSError as exc:
                log.error("writing the offsets to %s failed: %s", self.path, exc)


__all__ = [
    "LOCAL_OFFSET_STORE_DIR_ENV",
    "LocalOffsetStore",
    "default_store_dir",
    "read_offset_file",
    "store_path",
]
