"""The message index (Java 4.7's ``store/index``): files under
``<storePathRootDir>/index`` that map ``topic#key`` to commit-log offsets,
for QUERY_MESSAGE by key and by unique key.

One index file, named after its creation time (``yyyyMMddHHmmssSSS``, local
time, as Java's ``UtilAll.timeMillisToHumanString``), all big-endian::

    offset  size
    0       40                   header
      0       8  beginTimestamp  store time of the first message indexed
      8       8  endTimestamp    store time of the last message indexed
      16      8  beginPhyOffset  commit-log offset of the first message
      24      8  endPhyOffset    commit-log offset of the last message
      32      4  hashSlotCount   bumped on every entry (Java's counting)
      36      4  indexCount      next entry number; starts at 1, entry 0 unused
    40      4 * maxHashSlotNum   slot -> number of the newest entry hashing there
    ...     20 * maxIndexNum     entries
      0       4  keyHash         abs(String.hashCode(topic#key)), 0 for MIN_VALUE
      4       8  phyOffset       commit-log offset of the message
      12      4  timeDiff        (storeTimestamp - beginTimestamp) // 1000
      16      4  prevIndex       previous entry of the same slot, 0 at the end

A file is full after ``maxIndexNum - 1`` entries; the next one is created in
a worker thread (:meth:`IndexService.prepare_spare`, driven by the append
path's :class:`~pyrocket.broker.store.commitlog.FileNotReady`) and starts
where the previous ended. Writes go to a shared mmap (no system call); a
rolled file is fsynced by the store's flush loop, which then records its end
time as the checkpoint's index timestamp, as Java does.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from pyrocket.broker.store.model import StoreError
from pyrocket.protocol.message import MessageSysFlag

log = logging.getLogger(__name__)

INDEX_HEADER_SIZE = 40
HASH_SLOT_SIZE = 4
INDEX_ENTRY_SIZE = 20
#: Java's ``MessageConst.KEY_SEPARATOR``.
KEY_SEPARATOR = " "

_HEADER = struct.Struct(">qqqqii")
_ENTRY = struct.Struct(">iqii")
_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_INT_MAX = 2**31 - 1
_TRANSACTION_MASK = 0x0C
_PREFIX_CACHE_MAX = 4096


def _allocate(fd: int, length: int) -> None:
    """Give the first ``length`` bytes disk blocks now (zeros written), so
    that the random writes into the hash slots never wait for the file
    system to allocate a block (blocking; the file is being created)."""
    chunk = bytes(1 << 20)
    for start in range(0, length, len(chunk)):
        os.pwrite(fd, chunk[: min(len(chunk), length - start)], start)


def _continue_hash(h: int, text: str) -> int:
    """Java's ``String.hashCode`` fold continued from ``h`` over ``text``
    (unmasked: the caller masks once)."""
    if text.isascii():
        units: Sequence[int] = text.encode("ascii")
    else:
        raw = text.encode("utf-16-be")
        units = struct.unpack(f">{len(raw) // 2}H", raw)
    for unit in units:
        h = h * 31 + unit
    return h


def _signed(h: int) -> int:
    h &= 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode`` (over UTF-16 code units), as a signed int."""
    return _signed(_continue_hash(0, text))


def _folded_key_hash(prefix: int, text: str) -> int:
    """``_abs_hash(_signed(_continue_hash(prefix, text)))`` in one step."""
    h = _continue_hash(prefix, text) & 0xFFFFFFFF
    if h & 0x80000000:
        return 0 if h == 0x80000000 else 0x100000000 - h
    return h


def _abs_hash(h: int) -> int:
    """``indexKeyHashMethod`` of a signed hash: abs, 0 for ``Integer.MIN_VALUE``."""
    return 0 if h == -(2**31) else abs(h)


def index_key_hash(key: str) -> int:
    """``indexKeyHashMethod``: the absolute hash, 0 for ``Integer.MIN_VALUE``."""
    return _abs_hash(java_string_hash(key))


def index_file_name(now_ms: int) -> str:
    """``UtilAll.timeMillisToHumanString``: local time to the millisecond."""
    moment = time.localtime(now_ms // 1000)
    return time.strftime("%Y%m%d%H%M%S", moment) + f"{now_ms % 1000:03d}"


def index_file_size(hash_slot_num: int, index_num: int) -> int:
    return INDEX_HEADER_SIZE + hash_slot_num * HASH_SLOT_SIZE + index_num * INDEX_ENTRY_SIZE


def message_keys(topic: str, properties: Mapping[str, str] | None) -> list[str]:
    """The index keys of one message (``buildIndex``): ``topic#UNIQ_KEY``
    first, then ``topic#key`` for every non-empty key of KEYS."""
    if not properties:
        return []
    found: list[str] = []
    unique = properties.get("UNIQ_KEY")
    if unique is not None:
        found.append(f"{topic}#{unique}")
    keys = properties.get("KEYS")
    if keys:
        found.extend(f"{topic}#{key}" for key in keys.split(KEY_SEPARATOR) if key)
    return found


def is_indexed_type(sys_flag: int) -> bool:
    """Rolled-back transaction messages get no index entries (as Java)."""
    return sys_flag & _TRANSACTION_MASK != MessageSysFlag.TRANSACTION_ROLLBACK_TYPE


class IndexFile:
    """One mapped index file. Mutated only by the trio thread (or by
    recovery before the store runs); read by query threads."""

    def __init__(self, path: Path, hash_slot_num: int, index_num: int) -> None:
        self.path = path
        self.hash_slot_num = hash_slot_num
        self.index_num = index_num
        size = index_file_size(hash_slot_num, index_num)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            actual = os.fstat(fd).st_size
            if actual == 0:
                os.ftruncate(fd, size)
                _allocate(fd, INDEX_HEADER_SIZE + hash_slot_num * HASH_SLOT_SIZE)
            elif actual != size:
                raise StoreError(
                    f"{path}: {actual} bytes, but maxHashSlotNum / maxIndexNum make {size}"
                )
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        header: tuple[int, int, int, int, int, int] = _HEADER.unpack_from(self._map, 0)
        self.begin_timestamp: int = header[0]
        self.end_timestamp: int = header[1]
        self.begin_phy_offset: int = header[2]
        self.end_phy_offset: int = header[3]
        self.hash_slot_count: int = header[4]
        self.index_count: int = max(header[5], 1)
        self._entries_at = INDEX_HEADER_SIZE + hash_slot_num * HASH_SLOT_SIZE
        self.closed = False

    # Header fields are written through at once, as Java's IndexHeader does.
    def start_after(self, end_phy_offset: int, end_timestamp: int) -> None:
        """Begin where the previous file ended (Java's constructor arguments)."""
        if end_phy_offset > 0:
            self.begin_phy_offset = self.end_phy_offset = end_phy_offset
            _LONG.pack_into(self._map, 16, end_phy_offset)
            _LONG.pack_into(self._map, 24, end_phy_offset)
        if end_timestamp > 0:
            self.begin_timestamp = self.end_timestamp = end_timestamp
            _LONG.pack_into(self._map, 0, end_timestamp)
            _LONG.pack_into(self._map, 8, end_timestamp)

    @property
    def is_write_full(self) -> bool:
        return self.index_count >= self.index_num

    @property
    def room(self) -> int:
        return max(0, self.index_num - self.index_count)

    @property
    def is_empty(self) -> bool:
        """Never written (a spare, or a file whose header was lost)."""
        return self.index_count <= 1 and self.end_timestamp == 0 and self.end_phy_offset == 0

    def put_key(self, key: str, phy_offset: int, store_timestamp: int) -> bool:
        """Add one entry (``putKey``); False when the file is full."""
        return self.put_hash(index_key_hash(key), phy_offset, store_timestamp)

    def put_hash(self, key_hash: int, phy_offset: int, store_timestamp: int) -> bool:
        """:meth:`put_key` with the key's index hash already worked out."""
        count = self.index_count
        if count >= self.index_num:
            return False
        slot_at = INDEX_HEADER_SIZE + (key_hash % self.hash_slot_num) * HASH_SLOT_SIZE
        mapped = self._map
        (previous,) = _INT.unpack_from(mapped, slot_at)
        if previous <= 0 or previous > count:
            previous = 0
        begin = self.begin_timestamp
        diff = (store_timestamp - begin) // 1000 if begin > 0 else 0
        diff = min(max(diff, 0), _INT_MAX)
        _ENTRY.pack_into(
            mapped,
            self._entries_at + count * INDEX_ENTRY_SIZE,
            key_hash,
            phy_offset,
            diff,
            previous,
        )
        _INT.pack_into(mapped, slot_at, count)
        if count <= 1:
            self.begin_phy_offset = phy_offset
            self.begin_timestamp = store_timestamp
            _LONG.pack_into(mapped, 16, phy_offset)
            _LONG.pack_into(mapped, 0, store_timestamp)
        self.hash_slot_count += 1
        self.index_count = count + 1
        self.end_phy_offset = phy_offset
        self.end_timestamp = store_timestamp
        _HEADER.pack_into(
            mapped,
            0,
            self.begin_timestamp,
            store_timestamp,
            self.begin_phy_offset,
            phy_offset,
            self.hash_slot_count,
            count + 1,
        )
        return True

    def is_time_matched(self, begin: int, end: int) -> bool:
        first, last = self.begin_timestamp, self.end_timestamp
        return (begin < first and end > last) or first <= begin <= last or first <= end <= last

    def select(self, found: list[int], key: str, max_num: int, begin: int, end: int) -> None:
        """Append to ``found`` the offsets of entries for ``key`` stored in
        ``[begin, end]``, newest first (``selectPhyOffset``). A closed file
        (deleted meanwhile) adds nothing."""
        key_hash = index_key_hash(key)
        slot_at = INDEX_HEADER_SIZE + (key_hash % self.hash_slot_num) * HASH_SLOT_SIZE
        try:
            mapped = self._map
            count = self.index_count
            (current,) = _INT.unpack_from(mapped, slot_at)
            if current <= 0 or current > count or count <= 1:
                return
            base = self.begin_timestamp
            while len(found) < max_num:
                hash_read, phy_read, diff, previous = _ENTRY.unpack_from(
                    mapped, self._entries_at + current * INDEX_ENTRY_SIZE
                )
                if diff < 0:
                    break
                stored = base + diff * 1000
                if hash_read == key_hash and begin <= stored <= end:
                    found.append(phy_read)
                if previous <= 0 or previous > count or previous == current or stored < begin:
                    break
                current = previous
        except ValueError:
            return

    def flush(self) -> None:
        """Write the mapping back to disk (blocking)."""
        if not self.closed:
            self._map.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._map.close()


@dataclass(slots=True)
class QueryOffsetResult:
    """``QueryOffsetResult``: offsets found and where the index stands."""

    phy_offsets: list[int] = field(default_factory=list)
    index_last_update_timestamp: int = 0
    index_last_update_phyoffset: int = 0


@dataclass(slots=True)
class QueryMessageResult:
    """``QueryMessageResult``: the stored records found, in commit-log
    order, and where the index stands."""

    messages: list[bytes] = field(default_factory=list)
    index_last_update_timestamp: int = 0
    index_last_update_phyoffset: int = 0

    @property
    def buffer_total_size(self) -> int:
        return sum(len(message) for message in self.messages)


class IndexService:
    """The index files of one store (``IndexService``)."""

    def __init__(self, directory: Path, hash_slot_num: int, index_num: int) -> None:
        if hash_slot_num <= 0 or index_num <= 1:
            raise StoreError("maxHashSlotNum must be positive and maxIndexNum above 1")
        self.directory = directory
        self.hash_slot_num = hash_slot_num
        self.index_num = index_num
        self.files: list[IndexFile] = []
        #: Files made ahead for the next rolls, not yet in ``files``.
        self.spares: list[IndexFile] = []
        #: Rolled files waiting for the flush loop to fsync them.
        self.rolled: list[IndexFile] = []
        #: Query threads under way: index files are not closed meanwhile.
        self.readers = 0
        self._creating: trio.Event | None = None
        #: topic -> hash fold of ``topic#`` (bounded; cleared when full).
        self._prefixes: dict[str, int] = {}

    # ------------------------------------------------------------------
    # Loading (blocking, before the store runs)

    def load(self, last_exit_ok: bool, index_msg_timestamp: int) -> None:
        """Open the files; after a crash drop those that end after the
        checkpoint's index timestamp (as Java) or were still being written,
        and spares never written."""
        if not self.directory.is_dir():
            return
        dropping = False
        for path in sorted(self.directory.iterdir()):
            if not (path.is_file() and path.name.isdigit()):
                continue
            index_file = IndexFile(path, self.hash_slot_num, self.index_num)
            if not last_exit_ok:
                # Java drops what ends after the checkpoint; the file being
                # written (not full, so never fsynced) and everything after
                # a dropped file go too.
                dropping = dropping or (
                    index_file.end_timestamp > index_msg_timestamp or not index_file.is_write_full
                )
            if dropping or (index_file.is_empty and bool(self.files)):
                log.warning("dropping index file %s (rebuilt from the commit log)", path.name)
                index_file.close()
                path.unlink()
                continue
            self.files.append(index_file)

    @property
    def indexed_through(self) -> int:
        """Commit-log offset of the last message indexed, -1 for none."""
        if not self.files:
            return -1
        last = self.files[-1]
        if last.index_count <= 1 and last.end_phy_offset == 0 and len(self.files) == 1:
            return -1
        return last.end_phy_offset

    def holds(self, key: str, phy_offset: int) -> bool:
        """Whether the last file has an entry for ``key`` at ``phy_offset``."""
        if not self.files:
            return False
        found: list[int] = []
        self.files[-1].select(found, key, self.index_num, 0, 2**63 - 1)
        return phy_offset in found

    # ------------------------------------------------------------------
    # Building

    def room_for(self, count: int) -> bool:
        """Whether ``count`` entries fit without creating a file."""
        if count == 0:
            return True
        room = self.files[-1].room if self.files else 0
        return room + len(self.spares) * (self.index_num - 1) >= count

    async def prepare_spare(self, base: int) -> None:
        """Create files in a worker thread until ``base`` entries fit (the
        append path's FileNotReady protocol, which names the entries needed
        ``base``). Raises OSError."""
        while not self.room_for(base):
            if self._creating is not None:
                await self._creating.wait()
                continue
            creating = self._creating = trio.Event()
            try:
                made = await trio.to_thread.run_sync(self._create_file, time.time_ns() // 1_000_000)
                self.spares.append(made)
            finally:
                self._creating = None
                creating.set()

    def _create_file(self, now_ms: int) -> IndexFile:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = index_file_name(now_ms)
        taken = {f.path.name for f in (*self.files, *self.spares)}
        while name in taken or (self.directory / name).exists():
            now_ms += 1
            name = index_file_name(now_ms)
        return IndexFile(self.directory / name, self.hash_slot_num, self.index_num)

    def _next_file(self, *, blocking: bool) -> IndexFile | None:
        """The file to write to, rolling into the spare when the last is full."""
        if self.files and not self.files[-1].is_write_full:
            return self.files[-1]
        if self.spares:
            spare = self.spares.pop(0)
        elif blocking:
            spare = self._create_file(time.time_ns() // 1_000_000)
        else:
            return None
        if self.files:
            previous = self.files[-1]
            spare.start_after(previous.end_phy_offset, previous.end_timestamp)
            self.rolled.append(previous)
        self.files.append(spare)
        return spare

    def key_hashes(self, topic: str, properties: Mapping[str, str] | None) -> list[int]:
        """The index hashes of :func:`message_keys`, computed from a cached
        fold of ``topic#`` (the hot path of every put)."""
        if not properties:
            return []
        unique = properties.get("UNIQ_KEY")
        keys = properties.get("KEYS")
        if unique is None and not keys:
            return []
        prefix = self._prefixes.get(topic)
        if prefix is None:
            if len(self._prefixes) >= _PREFIX_CACHE_MAX:
                self._prefixes.clear()
            prefix = self._prefixes[topic] = _continue_hash(0, topic + "#") & 0xFFFFFFFF
        found: list[int] = []
        if unique is not None:
            found.append(_folded_key_hash(prefix, unique))
        if keys:
            for key in keys.split(KEY_SEPARATOR):
                if key:
                    found.append(_folded_key_hash(prefix, key))
        return found

    def build(
        self, keys: Sequence[str], phy_offset: int, store_timestamp: int, *, blocking: bool = False
    ) -> bool:
        """Index one message's keys (``buildIndex``); False when a file was
        needed and could not be had without blocking (the rest is lost)."""
        hashes = [index_key_hash(key) for key in keys]
        return self.build_hashes(hashes, phy_offset, store_timestamp, blocking=blocking)

    def build_hashes(
        self,
        hashes: Sequence[int],
        phy_offset: int,
        store_timestamp: int,
        *,
        blocking: bool = False,
    ) -> bool:
        """:meth:`build` with the keys' index hashes already worked out."""
        if not hashes:
            return True
        current = self._next_file(blocking=blocking)
        if current is None:
            return False
        if phy_offset < current.end_phy_offset:
            return True
        for key_hash in hashes:
            while not current.put_hash(key_hash, phy_offset, store_timestamp):
                following = self._next_file(blocking=blocking)
                if following is None:
                    log.error("no index file for the message at offset %d", phy_offset)
                    return False
                current = following
        return True

    # ------------------------------------------------------------------
    # Querying (any thread; see the module doc)

    def query_offset(
        self, topic: str, key: str, max_num: int, begin: int, end: int
    ) -> QueryOffsetResult:
        result = QueryOffsetResult()
        files = list(self.files)
        full_key = f"{topic}#{key}"
        for number in range(len(files) - 1, -1, -1):
            index_file = files[number]
            if number == len(files) - 1:
                result.index_last_update_timestamp = index_file.end_timestamp
                result.index_last_update_phyoffset = index_file.end_phy_offset
            if index_file.is_time_matched(begin, end):
                index_file.select(result.phy_offsets, full_key, max_num, begin, end)
            if index_file.begin_timestamp < begin or len(result.phy_offsets) >= max_num:
                break
        return result

    # ------------------------------------------------------------------
    # Expiry and shutdown (trio thread; the caller deletes in a thread)

    def take_expired(self, min_offset: int) -> list[IndexFile]:
        """Remove and return the files wholly before ``min_offset`` (never
        the last), as ``deleteExpiredFile``; none while a query runs."""
        if self.readers or not self.files or self.files[0].end_phy_offset >= min_offset:
            return []
        expired: list[IndexFile] = []
        for index_file in self.files[:-1]:
            if index_file.end_phy_offset >= min_offset:
                break
            expired.append(index_file)
        del self.files[: len(expired)]
        for index_file in expired:
            if index_file in self.rolled:
                self.rolled.remove(index_file)
        return expired

    def take_rolled(self) -> list[IndexFile]:
        rolled, self.rolled = self.rolled, []
        return rolled

    def flush_all(self) -> None:
        """Write every open file back (blocking; at shutdown)."""
        for index_file in self.files:
            index_file.flush()

    def close(self) -> None:
        for index_file in self.files:
            index_file.close()
        for spare in self.spares:
            # An unused spare holds nothing: remove it so no reader sees an empty file.
            spare.close()
            spare.path.unlink(missing_ok=True)
        self.spares = []
        self.files = []


def delete_index_files(files: Iterable[IndexFile]) -> None:
    """Close and unlink (blocking)."""
    for index_file in files:
        index_file.close()
        index_file.path.unlink(missing_ok=True)


__all__ = [
    "HASH_SLOT_SIZE",
    "INDEX_ENTRY_SIZE",
    "INDEX_HEADER_SIZE",
    "IndexFile",
    "IndexService",
    "QueryMessageResult",
    "QueryOffsetResult",
    "delete_index_files",
    "index_file_name",
    "index_file_size",
    "index_key_hash",
    "is_indexed_type",
    "java_string_hash",
    "message_keys",
]
