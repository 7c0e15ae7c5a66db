"""Consume-queue extension files: Java's unit layout, addresses, recovery, deletion."""

from __future__ import annotations

import struct
from pathlib import Path

from pyrocket.broker.store.consumequeue import ConsumeQueue
from pyrocket.broker.store.consumequeue_ext import (
    MAX_ADDR,
    NOT_STORED,
    ConsumeQueueExt,
    CqExtUnit,
    decorate,
    is_ext_addr,
    undecorate,
)

_LONG_MIN = -(2**63)


def _ext(tmp_path: Path, file_size: int = 1024) -> ConsumeQueueExt:
    return ConsumeQueueExt("T", 3, tmp_path / "consumequeue_ext" / "T" / "3", file_size)


def test_addresses() -> None:
    assert MAX_ADDR == -(2**31) - 1
    assert decorate(0) == _LONG_MIN
    assert decorate(40) == _LONG_MIN + 40
    assert undecorate(_LONG_MIN + 40) == 40
    assert is_ext_addr(_LONG_MIN) and is_ext_addr(-(2**31) - 1)
    assert not is_ext_addr(-(2**31)) and not is_ext_addr(0) and not is_ext_addr(12345)
    assert decorate(_LONG_MIN + 5) == _LONG_MIN + 5  # already decorated


def test_unit_bytes_written_by_hand(tmp_path: Path) -> None:
    ext = _ext(tmp_path)
    first = ext.put(CqExtUnit(tags_code=0x1122, store_timestamp=1700000000123, bit_map=b"\x01\x80"))
    second = ext.put(CqExtUnit(tags_code=-7, store_timestamp=5, bit_map=None))
    assert first == _LONG_MIN
    assert second == _LONG_MIN + 22
    # size i16, tags code i64, store time i64, bit-map size i16, bit map; big-endian
    expected = (
        b"\x00\x16"
        + b"\x00\x00\x00\x00\x00\x00\x11\x22"
        + (1700000000123).to_bytes(8, "big")
        + b"\x00\x02"
        + b"\x01\x80"
        + b"\x00\x14"
        + b"\xff\xff\xff\xff\xff\xff\xff\xf9"
        + b"\x00\x00\x00\x00\x00\x00\x00\x05"
        + b"\x00\x00"
    )
    path = tmp_path / "consumequeue_ext" / "T" / "3" / "00000000000000000000"
    raw = path.read_bytes()
    assert len(raw) == 1024
    assert raw[: len(expected)] == expected
    assert not any(raw[len(expected) :])
    assert ext.get(first) == CqExtUnit(0x1122, 1700000000123, b"\x01\x80")
    assert ext.get(second) == CqExtUnit(-7, 5, None)
    assert ext.get(5) is None  # a plain tags code is no address
    assert ext.get(_LONG_MIN + 500) is None  # beyond what was written
    assert ext.max_address == _LONG_MIN + 42


def test_unit_that_does_not_fit_goes_to_the_next_file(tmp_path: Path) -> None:
    ext = _ext(tmp_path, file_size=64)
    bit_map = bytes(range(14))  # 34-byte units: one per 64-byte file (60 usable)
    a = ext.put(CqExtUnit(1, 10, bit_map))
    b = ext.put(CqExtUnit(2, 20, bit_map))
    assert undecorate(a) == 0 and undecorate(b) == 64
    directory = tmp_path / "consumequeue_ext" / "T" / "3"
    first = (directory / "00000000000000000000").read_bytes()
    # The rest of the first file starts with i16 -1.
    assert first[34:36] == b"\xff\xff"
    second = (directory / "00000000000000000064").read_bytes()
    assert second[:2] == struct.pack(">h", 34)
    assert ext.get(b) == CqExtUnit(2, 20, bit_map)
    # Too big for any file: not stored.
    assert ext.put(CqExtUnit(3, 30, bytes(60))) == NOT_STORED


def test_recovery_finds_the_end_and_truncates_by_max_address(tmp_path: Path) -> None:
    ext = _ext(tmp_path, file_size=64)
    addresses = [ext.put(CqExtUnit(n, n * 10, bytes([n]) * 10)) for n in range(1, 6)]
    # 30-byte units: two per file (60 usable), files at 0, 64, 128.
    assert [undecorate(a) for a in addresses] == [0, 30, 64, 94, 128]
    ext.files.close()

    again = _ext(tmp_path, file_size=64)
    again.load()
    again.recover()
    assert again.max_address == _LONG_MIN + 158
    assert [again.get(a) for a in addresses] == [
        CqExtUnit(n, n * 10, bytes([n]) * 10) for n in range(1, 6)
    ]
    # The consume queue's last entry points at the third unit: the rest goes.
    again.truncate_by_max_address(addresses[2])
    assert again.max_address == _LONG_MIN + 94
    assert again.get(addresses[3]) is None
    directory = tmp_path / "consumequeue_ext" / "T" / "3"
    assert not (directory / "00000000000000000128").exists()
    assert not any((directory / "00000000000000000064").read_bytes()[30:])
    # A new unit follows the kept ones.
    assert undecorate(again.put(CqExtUnit(9, 90, None))) == 94
    again.files.close()


def test_expired_files_and_destroy(tmp_path: Path) -> None:
    ext = _ext(tmp_path, file_size=64)
    addresses = [ext.put(CqExtUnit(n, n, bytes(10))) for n in range(6)]
    assert len(ext.files) == 3
    # The first still-wanted unit is in the third file: the first two go.
    removed = ext.expired_files(addresses[4])
    assert [f.base for f in removed] == [0]  # the second ends at 128 >= 128
    for data_file in removed:
        data_file.destroy()
    assert ext.min_address == _LONG_MIN + 64
    assert ext.get(addresses[0]) is None
    assert ext.get(addresses[3]) == CqExtUnit(3, 3, bytes(10))
    assert ext.expired_files(5) == []  # not an address
    ext.destroy()
    assert not (tmp_path / "consumequeue_ext" / "T" / "3").exists()


def _queue(tmp_path: Path) -> ConsumeQueue:
    ext = ConsumeQueueExt("T", 0, tmp_path / "consumequeue_ext" / "T" / "0", 64)
    return ConsumeQueue("T", 0, tmp_path / "consumequeue" / "T" / "0", 20 * 8, ext)


def test_consume_queue_entries_point_at_units(tmp_path: Path) -> None:
    queue = _queue(tmp_path)
    assert queue.ext is not None
    # Records of 100 bytes at 0, 100, ...; units of 30 bytes, two per ext file.
    for n in range(6):
        assert queue.put(n * 100, 100, 1000 + n, n, 5000 + n, bytes([n]) * 10)
    raw = queue.read_entries(0, 6 * 20)
    assert raw is not None
    tags = [struct.unpack_from(">qiq", raw, i * 20)[2] for i in range(6)]
    assert [undecorate(t) for t in tags] == [0, 30, 64, 94, 128, 158]
    # entry() answers the real tags code; the unit has the store time and bit map.
    assert queue.entry(4) == (400, 100, 1004)
    assert queue.ext.get(tags[4]) == CqExtUnit(1004, 5004, b"\x04" * 10)

    # The commit log lost everything from offset 400 on: entries and units go.
    queue.truncate_dirty(400)
    assert queue.max_offset_in_queue == 4
    assert queue.ext.max_address == tags[3] + 30
    assert queue.ext.get(tags[4]) is None

    # Messages before offset 300 left the commit log: the first ext file
    # (units 0 and 1) is wholly before the unit of the first entry kept.
    expired = queue.correct_min_offset(300)
    assert [f.base for f in expired] == [0]
    for data_file in expired:
        data_file.destroy()
    assert queue.min_offset_in_queue == 3
    assert queue.entry(3) == (300, 100, 1003)
    queue.files.close()
    queue.ext.files.close()

    # After a restart the files are found again and recovered.
    again = _queue(tmp_path)
    assert again.ext is not None
    again.load()
    again.recover()
    assert again.max_offset_in_queue == 4
    assert again.ext.min_address == tags[2]
    assert again.ext.max_address == tags[3] + 30
    assert again.entry(3) == (300, 100, 1003)
    assert again.put(400, 100, 2000, 4, 6000, None)
    assert again.entry(4) == (400, 100, 2000)
    again.destroy()
    assert not (tmp_path / "consumequeue_ext" / "T" / "0").exists()
    assert not (tmp_path / "consumequeue" / "T" / "0").exists()
