"""Reads through the commit log's mappings: the same bytes as ``pread``, a
resident set bounded by the read budget, safe truncation, and only in the
store's trio thread (worker threads read with ``pread``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pyrocket.broker.store import GetMessageStatus, PutMessageStatus, open_message_store
from pyrocket.broker.store.files import MAPPED_REGION, DataFile, FileQueue, MappedReads
from pyrocket.protocol.message import decode_messages
from tests.broker.store.helpers import message, small_config

FILE_SIZE = 32 * 1024 * 1024
BUDGET = 4 * 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def _resident_bytes(directory: Path) -> int:
    """The resident size of this process's mappings of files in ``directory`` (smaps)."""
    total = 0
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:
                inside = len(fields) >= 6 and Path(fields[5]).parent == directory
            elif inside and fields[0] == "Rss:":
                total += int(fields[1]) * 1024
    return total


def _filled_queue(
    tmp_path: Path, budget: int, file_size: int = FILE_SIZE
) -> tuple[FileQueue, DataFile, bytes]:
    """A queue of mapped files holding :data:`FILE_SIZE` random bytes in
    all; its first file."""
    queue = FileQueue(tmp_path / "log", file_size, mapped_reads=True)
    content = os.urandom(FILE_SIZE)
    for base in range(0, FILE_SIZE, file_size):
        data_file = queue.create(base)
        data_file.write(0, content[base : base + file_size])
        data_file.wrote = file_size
        assert data_file.mapped is not None
    assert queue.reads is not None
    queue.reads.regions = budget // MAPPED_REGION
    return queue, queue.files[0], content


@pytest.mark.parametrize("file_size", [FILE_SIZE, MAPPED_REGION // 4])
@pytest.mark.parametrize("stride", [1200, 256 * 1024 + 1200])
@pytest.mark.parametrize("budget", [BUDGET, 2 * FILE_SIZE])
def test_mapped_reads_match_pread_and_the_budget_bounds_what_stays_resident(
    tmp_path: Path, budget: int, stride: int, file_size: int
) -> None:
    """Records read one after the other, and sparse reads far apart (which
    map much more than they read), from one file or from many files smaller
    than a region: with a budget smaller than the data, no more than the
    budget and the regions in flight stay resident."""
    queue, _, content = _filled_queue(tmp_path, budget, file_size)
    try:
        size = 1200  # record-sized pieces, not page aligned
        for offset in range(0, FILE_SIZE - size, stride):
            data_file = queue.find(offset)
            assert data_file is not None
            position = offset - data_file.base
            length = min(size, file_size - position)
            piece = data_file.read_in_loop(position, length)
            assert piece == content[offset : offset + length]
            assert piece == data_file.read(position, length)
        resident = _resident_bytes(queue.directory)
        if budget < FILE_SIZE:
            assert resident <= budget + 2 * MAPPED_REGION
        elif stride < PAGE:
            # Without a drop everything read stays mapped in: the measure sees it.
            assert resident >= FILE_SIZE // 2
    finally:
        queue.close()
    assert all(f.mapped is None for f in queue.files)


def test_a_read_across_a_region_boundary_counts_both_regions(tmp_path: Path) -> None:
    queue, data_file, content = _filled_queue(tmp_path, 2 * MAPPED_REGION)
    reads = queue.reads
    assert reads is not None
    try:
        straddling = MAPPED_REGION - 600
        assert data_file.read_in_loop(straddling, 1200) == content[straddling : straddling + 1200]
        assert reads.seen == {0, 1}
        # A third region passes the budget of two: the two are dropped and
        # every region the new read touches counts anew.
        far = 2 * MAPPED_REGION + MAPPED_REGION - 600
        assert data_file.read_in_loop(far, 1200) == content[far : far + 1200]
        assert reads.seen == {2, 3}
        assert (
            data_file.read_in_loop(2 * MAPPED_REGION, 100)
            == content[2 * MAPPED_REGION : 2 * MAPPED_REGION + 100]
        )
        assert reads.seen == {2, 3}
    finally:
        queue.close()


def test_a_cut_file_reads_zeros_after_the_cut_through_a_new_mapping(tmp_path: Path) -> None:
    queue, data_file, content = _filled_queue(tmp_path, FILE_SIZE)
    try:
        assert data_file.read_in_loop(0, 4096) == content[:4096]
        before = data_file.mapped
        data_file.cut(10_000)
        assert data_file.mapped is not None and data_file.mapped is not before
        assert data_file.read_in_loop(9_000, 2_000) == content[9_000:10_000] + bytes(1_000)
        assert data_file.read_in_loop(FILE_SIZE - 100, 100) == bytes(100)
        assert os.fstat(data_file.fd).st_size == FILE_SIZE
    finally:
        queue.close()


def test_a_read_past_the_file_end_is_short_as_pread_is(tmp_path: Path) -> None:
    queue, data_file, content = _filled_queue(tmp_path, FILE_SIZE)
    try:
        assert data_file.read_in_loop(FILE_SIZE - 10, 100) == content[-10:]
        assert data_file.read_in_loop(FILE_SIZE + 10, 100) == b""
        assert data_file.read(FILE_SIZE + 10, 100) == b""
    finally:
        queue.close()


async def test_pulls_read_mapped_only_in_the_trio_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every read through a mapping counts its regions first.
    threads: list[int] = []
    original = MappedReads.note

    def recording(self: MappedReads, first: int, last: int) -> None:
        threads.append(threading.get_ident())
        original(self, first, last)

    monkeypatch.setattr(MappedReads, "note", recording)
    main = threading.get_ident()
    config = small_config(tmp_path)
    async with open_message_store(config) as store:
        for i in range(40):
            put = await store.put_message(message(queue_id=i % 2, body=b"%06d" % i))
            assert put.status is PutMessageStatus.PUT_OK
        hot = await store.get_message("g", "TopicTest", 0, 0, 32)
        assert hot is not None and hot.status is GetMessageStatus.FOUND
        assert [m.body for m in decode_messages(hot.body())] == [
            b"%06d" % i for i in range(0, 40, 2)
        ]
        assert threads and set(threads) == {main}
    # Everything counts as on disk here: the read runs in a worker thread,
    # with pread.
    threads.clear()
    async with open_message_store(config, total_physical_memory=100) as store:
        cold = await store.get_message("g", "TopicTest", 1, 0, 32)
        assert cold is not None and cold.status is GetMessageStatus.FOUND
        assert [m.body for m in decode_messages(cold.body())] == [
            b"%06d" % i for i in range(1, 17, 2)
        ]
        assert threads == []
