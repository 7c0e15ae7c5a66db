"""Fixed-size data files named by their first offset (Java's ``MappedFile`` and
``MappedFileQueue``), written with ``pwrite`` and read with ``pread``.

A queue of files covers a contiguous range of offsets: file ``N`` holds
offsets ``[N, N + size)`` and is called ``N`` printed with 20 digits. Files are
created at their full size (sparse, like Java's ``RandomAccessFile.setLength``)
so a Java broker opening the directory accepts them.

Why pwrite rather than mmap: measured on the target machine, a 1.2 KiB
``pwrite`` into a fresh sparse file costs about 1.7 µs where copying into a
fresh mmap page costs about 4.5 µs (page faults), and a full disk surfaces as
an ``OSError`` instead of a SIGBUS that kills the process.

Reads in the store's trio thread may go through a read-only mapping of the
file instead (:meth:`DataFile.read_in_loop`, for files of a queue made with
``mapped_reads``; the commit log's): a slice of the mapping costs no system
call where a ``pread`` costs one per record (on the target machine about
0.45 µs against 0.9 µs for a 1.2 KiB record). Slicing a mapping holds the
interpreter lock while it copies, and waits for the disk with it held when
the page is not cached, so worker threads read with ``pread`` (which lets
the lock go) and the trio thread only reads through a mapping what it
would have read there anyway. The pages a mapping faults in count towards
the process's resident memory, and one fault may map a whole large folio of
the page cache (2 MiB seen on ext4), so the reads are counted by the
:data:`MAPPED_REGION` s of the file they touch: once a queue's mappings
have been read in :data:`MAPPED_READ_BUDGET` worth of regions, reading
another region first drops all their pages (``MADV_DONTNEED``; the data
stays in the page cache). The resident set grows by about that budget at
most.

Each file tracks ``wrote`` (bytes written from its start) and ``flushed``;
readers never see past ``wrote``. Everything here runs in the store's trio
thread except :meth:`DataFile.sync` and reads the store hands to worker
threads; those hold a reference (:meth:`DataFile.acquire`) so that deleting a
file never closes a descriptor a thread is using.

Creating a file (directory entries, ``ftruncate``) may block on a busy disk,
so a running store never does it in the trio thread: each queue keeps one
*spare*, the next file created ahead of need in a worker thread
(:meth:`FileQueue.prepare_spare`, driven by :class:`FileAllocator` as Java's
``AllocateMappedFileService`` is), and an append that finds no spare waits
for one to be made instead of making it in place.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import trio

from pyrocket.broker.store.model import StoreError
from pyrocket.persist import fsync_directory

log = logging.getLogger(__name__)

_NAME = re.compile(r"[0-9]{20}")
#: How long deleting an unneeded spare may hold up a cancelled caller.
_DISCARD_GRACE_S = 5.0
#: How much of a queue's files, in whole :data:`MAPPED_REGION` s, may be
#: read through their mappings before their pages are dropped.
MAPPED_READ_BUDGET = 16 * 1024 * 1024
#: log2 of the span one fault may map (the largest page-cache folio):
#: commit-log offsets shifted right by this many bits give their read region.
MAPPED_REGION_BITS: Final = 21
MAPPED_REGION = 1 << MAPPED_REGION_BITS
_PAGE = mmap.PAGESIZE


def file_name(offset: int) -> str:
    """``UtilAll.offset2FileName``: the offset with 20 digits."""
    return f"{offset:020d}"


def _make_directories(directory: Path) -> list[Path]:
    """``mkdir -p``; returns the directories it created, deepest first."""
    missing: list[Path] = []
    current = directory
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return missing


class DataFile:
    """One preallocated file of a :class:`FileQueue`."""

    __slots__ = (
        "_closed",
        "_refs",
        "base",
        "destroyed",
        "durable",
        "fd",
        "flushed",
        "mapped",
        "path",
        "reads",
        "size",
        "sync_dirs",
        "wrote",
    )

    def __init__(self, path: Path, base: int, size: int, fd: int, *, durable: bool) -> None:
        self.path = path
        self.base = base
        self.size = size
        self.fd = fd
        self.wrote = 0
        self.flushed = 0
        # False until the file's creation (directory entry and length) is on disk.
        self.durable = durable
        #: Directories to fsync with the first sync: the file's, and those
        #: created along with it.
        self.sync_dirs: tuple[Path, ...] = (path.parent,)
        self.destroyed = False
        self._refs = 0
        self._closed = False
        #: The read-only mapping :meth:`read_in_loop` uses, if any (see
        #: :meth:`map_for_reads`), and the budget it counts against.
        self.mapped: mmap.mmap | None = None
        self.reads: MappedReads | None = None

    @classmethod
    def create(cls, path: Path, base: int, size: int) -> DataFile:
        """A new file of ``size`` zero bytes. Raises OSError (FileExistsError
        when it is already there)."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            os.ftruncate(fd, size)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        return cls(path, base, size, fd, durable=False)

    @classmethod
    def open(cls, path: Path, base: int, size: int) -> DataFile:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        return cls(path, base, size, fd, durable=True)

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def is_full(self) -> bool:
        return self.wrote >= self.size

    def write(self, position: int, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data`` at ``position``. Raises OSError."""
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, position)
            view = view[written:]
            position += written

    def read(self, position: int, length: int) -> bytes:
        """``length`` bytes from ``position`` (fewer only past the file's end)."""
        return os.pread(self.fd, length, position)

    def read_in_loop(self, position: int, length: int) -> bytes:
        """:meth:`read` for the store's trio thread: through the file's
        mapping when it has one."""
        mapped = self.mapped
        if mapped is not None:
            reads = self.reads
            if reads is not None:
                start = self.base + position
                region = start >> MAPPED_REGION_BITS
                last = (start + length - 1) >> MAPPED_REGION_BITS
                if region != reads.region or last != region:
                    reads.note(region, last)
            return mapped[position : position + length]
        return os.pread(self.fd, length, position)

    def map_for_reads(self, reads: MappedReads) -> None:
        """Give the file a read-only mapping for :meth:`read_in_loop`,
        counting against ``reads``. Mapping costs no disk access; a file that
        cannot be mapped is read with ``pread``."""
        if self.mapped is None and not self._closed and self.size > 0:
            try:
                self.mapped = mmap.mmap(self.fd, self.size, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as error:
                log.warning("%s: reading without a mapping: %s", self.path, error)
                return
            self.reads = reads

    def _unmap(self) -> None:
        mapped, self.mapped = self.mapped, None
        if mapped is not None:
            mapped.close()

    def sync(self) -> None:
        """Make everything written durable (blocking; call from a thread).
        The first sync of a new file also syncs its length and directory entry."""
        if self.durable:
            os.fdatasync(self.fd)
        else:
            os.fsync(self.fd)
            for directory in self.sync_dirs:
                fsync_directory(directory)
            self.durable = True

    def mtime_ms(self) -> int:
        """Last modification time (what Java's ``getLastModifiedTimestamp`` reads)."""
        return os.fstat(self.fd).st_mtime_ns // 1_000_000

    def cut(self, position: int) -> None:
        """Zero everything from ``position`` on, keeping the file's length:
        stale records after a truncation point must not look valid later.
        The mapping goes first: touching a mapped page past a file's end is
        a SIGBUS."""
        reads = self.reads
        self._unmap()
        os.ftruncate(self.fd, position)
        os.ftruncate(self.fd, self.size)
        if reads is not None:
            self.map_for_reads(reads)

    def acquire(self) -> bool:
        """Take a reference for use outside the trio thread; False if the file
        is being deleted. References are taken and dropped in the trio thread."""
        if self.destroyed:
            return False
        self._refs += 1
        return True

    def release(self) -> None:
        self._refs -= 1
        if self.destroyed and self._refs == 0:
            self._close()

    def mark_destroyed(self) -> bool:
        """Start deleting the file (trio thread): no new references; returns
        whether it can be closed now, else the last :meth:`release` closes it."""
        self.destroyed = True
        return self._refs == 0

    def unlink(self, *, close: bool) -> None:
        """Remove the file from its directory, closing it when told (blocking;
        may run in a worker thread after :meth:`mark_destroyed`)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        if close:
            self._close()

    def destroy(self) -> None:
        """Delete the file now (trio thread or single-threaded recovery)."""
        if not self.destroyed:
            self.unlink(close=self.mark_destroyed())

    def close(self) -> None:
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._unmap()
            os.close(self.fd)

    def __repr__(self) -> str:
        return f"DataFile({self.path.name}, wrote={self.wrote}, flushed={self.flushed})"


class MappedReads:
    """The read budget of one queue's mappings (see the module's text)."""

    __slots__ = ("queue", "region", "regions", "seen")

    def __init__(self, queue: FileQueue, budget: int = MAPPED_READ_BUDGET) -> None:
        self.queue = queue
        #: How many :data:`MAPPED_REGION` s may be read before a drop.
        self.regions = max(1, budget // MAPPED_REGION)
        #: The regions (by offset) read since the last drop.
        self.seen: set[int] = set()
        #: The region the last read started in.
        self.region = -1

    def note(self, first: int, last: int) -> None:
        """A read is about to touch regions ``first`` to ``last``: count the
        ones not read since the last drop, dropping first when they would
        pass the budget (then every region of the read counts anew)."""
        span = range(first, last + 1)
        fresh = [region for region in span if region not in self.seen]
        if fresh:
            if len(self.seen) + len(fresh) > self.regions:
                self.drop()
                fresh = list(span)
            self.seen.update(fresh)
        # Reads that stay in one region skip this call while it is the last.
        self.region = first if first == last else -1

    def drop(self) -> None:
        """Unmap the pages the regions read since the last drop faulted in
        (one call per region and file: unmapping a whole 1 GiB mapping
        costs more than a millisecond)."""
        seen, self.seen = self.seen, set()
        self.region = -1
        find = self.queue.find
        for region in seen:
            start = region << MAPPED_REGION_BITS
            end = start + MAPPED_REGION
            while start < end:
                data_file = find(start)
                if data_file is None:
                    break
                stop = min(end, data_file.end)
                mapped = data_file.mapped
                if mapped is not None:
                    position = (start - data_file.base) & -_PAGE
                    # ValueError: closed meanwhile.
                    with contextlib.suppress(ValueError, OSError):
                        mapped.madvise(
                            mmap.MADV_DONTNEED, position, stop - data_file.base - position
                        )
                start = stop


class FileQueue:
    """The files of one directory, in offset order (``MappedFileQueue``).
    With ``mapped_reads`` its files are mapped for reads in the trio thread."""

    def __init__(self, directory: Path, file_size: int, *, mapped_reads: bool = False) -> None:
        self.directory = directory
        self.file_size = file_size
        self.files: list[DataFile] = []
        self.reads = MappedReads(self) if mapped_reads else None
        #: Files created ahead of need by base, not yet part of :attr:`files`
        #: (the next one; two when a batch's entries straddle a new file).
        self.spares: dict[int, DataFile] = {}
        #: Set while a worker thread creates the spare.
        self._creating: trio.Event | None = None
        #: Bumped whenever files are dropped from the end, so a spare made
        #: for the old layout is not installed into the new one.
        self._epoch = 0
        self._closed = False
        self._destroyed = False

    def load(self) -> None:
        """Open the files already there, each taken as full (recovery sets the
        real write positions). Raises StoreError naming a file whose size is
        not the configured one or a missing file in the middle; names that are
        not 20 digits are left alone."""
        if not self.directory.is_dir():
            return
        names = sorted(p.name for p in self.directory.iterdir() if _NAME.fullmatch(p.name))
        for name in names:
            path = self.directory / name
            base = int(name)
            length = path.stat().st_size
            if length != self.file_size:
                raise StoreError(
                    f"{path}: {length} bytes where the configured file size is {self.file_size}"
                )
            if base % self.file_size:
                raise StoreError(
                    f"{path}: offset is not a multiple of the file size {self.file_size}"
                )
            if self.files and base != self.files[-1].end:
                raise StoreError(
                    f"{path}: files between {self.files[-1].end} and {base} are missing"
                )
            data_file = DataFile.open(path, base, self.file_size)
            data_file.wrote = data_file.flushed = self.file_size
            if self.reads is not None:
                data_file.map_for_reads(self.reads)
            self.files.append(data_file)

    # -- lookups ------------------------------------------------------------

    @property
    def first(self) -> DataFile | None:
        return self.files[0] if self.files else None

    @property
    def last(self) -> DataFile | None:
        return self.files[-1] if self.files else None

    @property
    def min_offset(self) -> int:
        """Offset of the first file, -1 when there is none."""
        return self.files[0].base if self.files else -1

    @property
    def max_offset(self) -> int:
        """End of the written data (0 when there are no files)."""
        if not self.files:
            return 0
        last = self.files[-1]
        return last.base + last.wrote

    def find(self, offset: int) -> DataFile | None:
        """The file holding ``offset``, or None."""
        files = self.files
        if not files or offset < files[0].base or offset >= files[-1].end:
            return None
        index = offset // self.file_size - files[0].base // self.file_size
        if 0 <= index < len(files) and files[index].base <= offset < files[index].end:
            return files[index]
        for data_file in files:  # only reached if the list has holes
            if data_file.base <= offset < data_file.end:
                return data_file
        return None

    def dirty_files(self) -> list[DataFile]:
        """Files with bytes written but not yet synced, or not yet durable."""
        return [f for f in self.files if f.flushed < f.wrote or not f.durable]

    def __iter__(self) -> Iterator[DataFile]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    # -- changes ------------------------------------------------------------

    def create(self, base: int) -> DataFile:
        """Add the file starting at ``base`` (the next one, or the first): the
        spare when it is that file, else a new one made here (blocking: the
        running store only calls this once :meth:`has_file_ready` says so).
        Raises OSError when the file cannot be created."""
        data_file = self.spares.pop(base, None)
        if data_file is None:
            data_file = self._make(base)
        if self.reads is not None:
            data_file.map_for_reads(self.reads)
        self.files.append(data_file)
        return data_file

    def has_file_ready(self, base: int) -> bool:
        """Whether :meth:`create` of ``base`` would not touch the disk."""
        return base in self.spares

    def _make(self, base: int) -> DataFile:
        """A new file at ``base``, not yet in the queue (blocking)."""
        created = _make_directories(self.directory)
        path = self.directory / file_name(base)
        try:
            data_file = DataFile.create(path, base, self.file_size)
        except FileExistsError:
            # Left behind by a truncation or a spare of a run that crashed: it
            # lies beyond everything recovered, so its content is stale.
            os.unlink(path)
            data_file = DataFile.create(path, base, self.file_size)
        data_file.sync_dirs = (self.directory, *(d.parent for d in created))
        return data_file

    async def prepare_spare(self, base: int) -> None:
        """Make the file at ``base`` the spare, creating it in a worker thread
        unless it already is or is being made. Returns early (without a
        spare) when the queue changed meanwhile; callers check again. Raises
        OSError when the file cannot be created."""
        while not self.has_file_ready(base):
            if self._closed:
                return
            if self._creating is not None:
                await self._creating.wait()
                continue
            end = self.files[-1].end if self.files else 0
            if base < end:
                return  # the queue moved past it
            creating = self._creating = trio.Event()
            epoch = self._epoch
            # Spares the queue has moved past can never be used.
            stale = [self.spares.pop(b) for b in [b for b in self.spares if b < end]]
            try:
                data_file = await trio.to_thread.run_sync(self._replace_spares, stale, base)
            finally:
                self._creating = None
                creating.set()
            if self._closed or epoch != self._epoch:
                # Shielded (briefly) so that a cancelled caller leaves no file behind.
                with trio.move_on_after(_DISCARD_GRACE_S) as scope:
                    scope.shield = True
                    await trio.to_thread.run_sync(self._discard, data_file)
                return
            self.spares[base] = data_file

    def _discard(self, data_file: DataFile) -> None:
        """Delete a spare made for a layout that changed meanwhile (and the
        directory it may have made again, when the queue is gone)."""
        data_file.destroy()
        if self._destroyed:
            with contextlib.suppress(OSError):
                self.directory.rmdir()

    def _replace_spares(self, stale: list[DataFile], base: int) -> DataFile:
        for data_file in stale:
            data_file.destroy()
        return self._make(base)

    @property
    def creating(self) -> bool:
        """Whether a worker thread is making the spare."""
        return self._creating is not None

    def next_base(self) -> int | None:
        """Base of the file after the last, None when there is no file."""
        return self.files[-1].end if self.files else None

    def truncate(self, offset: int) -> None:
        """Drop everything from ``offset`` on (``truncateDirtyFiles``): later
        files are deleted, the file holding ``offset`` is cut there."""
        self._drop_spare()
        keep: list[DataFile] = []
        for data_file in self.files:
            if data_file.end <= offset:
                keep.append(data_file)
            elif data_file.base <= offset:
                position = offset - data_file.base
                if data_file.wrote > position:
                    data_file.cut(position)
                data_file.wrote = data_file.flushed = position
                keep.append(data_file)
            else:
                log.warning("deleting %s beyond offset %d", data_file.path, offset)
                data_file.destroy()
        self.files = keep

    def remove_first(self, count: int) -> list[DataFile]:
        """Take the first ``count`` files out of the queue (the caller deletes them)."""
        removed = self.files[:count]
        self.files = self.files[count:]
        return removed

    def remove_last(self) -> None:
        self._drop_spare()
        if self.files:
            self.files.pop().destroy()

    def destroy(self) -> None:
        """Delete every file and the directory; no spare is made after."""
        self._closed = self._destroyed = True
        self._drop_spare()
        for data_file in self.files:
            data_file.destroy()
        self.files = []
        with contextlib.suppress(OSError):
            self.directory.rmdir()

    def _drop_spare(self) -> None:
        self._epoch += 1
        for data_file in self.spares.values():
            data_file.destroy()
        self.spares.clear()

    def close(self) -> None:
        """Close every file; spares, empty, are deleted (recovery would)."""
        self._closed = True
        self._drop_spare()
        for data_file in self.files:
            data_file.close()


class FileAllocator:
    """Creates spares ahead of need in worker threads, one at a time, in the
    order asked (Java's ``AllocateMappedFileService``). Requests are keyed by
    queue, so pending work is bounded by the number of queues."""

    def __init__(self) -> None:
        self._wanted: dict[int, tuple[FileQueue, int]] = {}
        self._wakeup = trio.Event()

    def request(self, queue: FileQueue, base: int) -> None:
        """Ask for ``queue``'s spare at ``base`` (trio thread, never blocks)."""
        if queue.has_file_ready(base) or queue.creating:
            return
        self._wanted[id(queue)] = (queue, base)
        self._wakeup.set()

    async def run(self) -> None:
        """Serve requests until cancelled; a failure is logged (the append
        that needs the file reports it)."""
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            while self._wanted:
                key = next(iter(self._wanted))
                queue, base = self._wanted.pop(key)
                try:
                    await queue.prepare_spare(base)
                except OSError as exc:
                    log.error("cannot create %s: %s", queue.directory / file_name(base), exc)
