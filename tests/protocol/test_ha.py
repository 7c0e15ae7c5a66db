"""The HA wire format against bytes written out by hand."""

from __future__ import annotations

import pytest

from pyrocket.errors import ProtocolError
from pyrocket.protocol.ha import (
    OffsetReportReader,
    TransferFrame,
    TransferReader,
    encode_offset_report,
    encode_transfer_header,
)


def test_offset_report_is_eight_big_endian_bytes() -> None:
    assert encode_offset_report(0) == b"\x00" * 8
    assert encode_offset_report(0x0102030405060708) == b"\x01\x02\x03\x04\x05\x06\x07\x08"


def test_transfer_header_is_offset_then_size() -> None:
    assert encode_transfer_header(65536, 0) == b"\x00\x00\x00\x00\x00\x01\x00\x00" + b"\x00" * 4
    assert (
        encode_transfer_header(1 << 32, 0x8000)
        == b"\x00\x00\x00\x01\x00\x00\x00\x00" + b"\x00\x00\x80\x00"
    )


def test_report_reader_keeps_only_the_newest_complete_report() -> None:
    reader = OffsetReportReader()
    first = b"\x00\x00\x00\x00\x00\x00\x00\x10"
    second = b"\x00\x00\x00\x00\x00\x00\x01\x00"
    third = b"\x00\x00\x00\x00\x00\x00\x02\x00"
    assert reader.feed(first[:5]) is None
    assert reader.feed(first[5:]) == 0x10
    # Two reports and the start of a third in one read: the second counts.
    assert reader.feed(second + third + first[:3]) == 0x200
    assert reader.feed(first[3:]) == 0x10
    # Byte at a time.
    for byte in second[:-1]:
        assert reader.feed(bytes([byte])) is None
    assert reader.feed(second[-1:]) == 0x100


def test_report_reader_refuses_a_negative_offset() -> None:
    with pytest.raises(ProtocolError):
        OffsetReportReader().feed(b"\xff" * 8)


WIRE = (
    # A frame of 3 bytes at offset 0x1000, then a heartbeat at 0x1003.
    b"\x00\x00\x00\x00\x00\x00\x10\x00" + b"\x00\x00\x00\x03" + b"abc"
    b"\x00\x00\x00\x00\x00\x00\x10\x03" + b"\x00\x00\x00\x00"
)
FRAMES = [TransferFrame(0x1000, b"abc"), TransferFrame(0x1003, b"")]


@pytest.mark.parametrize("step", [len(WIRE), 1, 5, 13])
def test_transfer_reader_splits_frames_however_the_bytes_arrive(step: int) -> None:
    reader = TransferReader()
    frames: list[TransferFrame] = []
    for start in range(0, len(WIRE), step):
        frames += reader.feed(WIRE[start : start + step])
    assert frames == FRAMES
    assert reader.buffered == 0


def test_transfer_reader_keeps_an_incomplete_tail() -> None:
    reader = TransferReader()
    assert reader.feed(WIRE + b"\x00\x00") == FRAMES
    assert reader.buffered == 2


@pytest.mark.parametrize(
    "header",
    [
        b"\xff" * 8 + b"\x00\x00\x00\x01",  # negative offset
        b"\x00" * 8 + b"\xff\xff\xff\xff",  # negative size
        b"\x00" * 8 + b"\x00\x40\x00\x00",  # 4 MiB body: over the Java slave's buffer
    ],
)
def test_transfer_reader_refuses_impossible_headers(header: bytes) -> None:
    with pytest.raises(ProtocolError):
        TransferReader().feed(header)
