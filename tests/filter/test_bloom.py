"""The SQL92 consumers' bloom filter: the same sizes and bit positions as Java."""

from __future__ import annotations

import pytest

from pyrocket.filter.bloom import BitsArray, BloomFilter, murmur3_x64_128

# Published MurmurHash3 x64/128 results (seed 0): (h1, h2).
_VECTORS = [
    (b"", 0, 0),
    (b"hello", 0xCBD8A7B341BD9B02, 0x5B1E906A48AE1D19),
    (b"The quick brown fox jumps over the lazy dog", 0xE34BBC7BBC071B6C, 0x7A433CA9C49A9347),
]


@pytest.mark.parametrize(("data", "h1", "h2"), _VECTORS)
def test_murmur3_reference_vectors(data: bytes, h1: int, h2: int) -> None:
    assert murmur3_x64_128(data) == (h1, h2)


def test_murmur3_block_boundaries() -> None:
    # One whole 16-byte block; and other published h1 values.
    assert murmur3_x64_128(b"0123456789abcdef")[0] == 0x4BE06D94CF4AD1A7
    assert murmur3_x64_128(b"hello, world")[0] == 0x342FAC623A5EBC8E


def test_sizes_follow_java_formulas() -> None:
    # f=20%, n=32 (the broker defaults): k = ceil(log0.5(0.2)) = ceil(2.32) = 3;
    # m = ceil(32 * log2(5) * log2(e)) = ceil(107.2) = 108, rounded up to 112.
    default = BloomFilter(20, 32)
    assert (default.k, default.m) == (3, 112)
    # f=10%, n=128: k = ceil(3.32) = 4; m = ceil(128 * 3.3219 * 1.4427) = 614 -> 616.
    other = BloomFilter(10, 128)
    assert (other.k, other.m) == (4, 616)
    with pytest.raises(ValueError):
        BloomFilter(0, 32)
    with pytest.raises(ValueError):
        BloomFilter(100, 32)
    with pytest.raises(ValueError):
        BloomFilter(20, 0)


def test_positions_computed_by_hand() -> None:
    bloom = BloomFilter(20, 32)
    # "hello": h1 = 0xcbd8a7b341bd9b02; low int = 0x41bd9b02 = 1102945026,
    # high int = 0xcbd8a7b3 = -874993741.
    #   i=1: 1102945026 - 874993741 = 227951285 -> % 112 = 37
    #   i=2: 1102945026 - 1749987482 = -647042456 -> ~ = 647042455 -> % 112 = 87
    #   i=3: 1102945026 - 2624981223 = -1522036197 -> ~ = 1522036196 -> % 112 = 100
    assert bloom.positions("hello") == (37, 87, 100)
    # the fox: h1 = 0xe34bbc7bbc071b6c; low = 0xbc071b6c = -1140384916,
    # high = 0xe34bbc7b = -481575813.
    #   i=1: -1621960729 -> ~ = 1621960728 -> % 112 = 24
    #   i=2: -2103536542 -> ~ = 2103536541 -> % 112 = 29
    #   i=3: -2585112355 wraps (+2^32) to 1709854941 -> % 112 = 109
    assert bloom.positions("The quick brown fox jumps over the lazy dog") == (24, 29, 109)


def test_hash_to_and_is_hit() -> None:
    bloom = BloomFilter(20, 32)
    bits = bloom.new_bits()
    hello = bloom.generate("hello")
    fox = bloom.generate("The quick brown fox jumps over the lazy dog")
    assert not bloom.is_hit(hello, bits)
    bloom.hash_to(hello, bits)
    assert bloom.is_hit(hello, bits)
    assert not bloom.is_hit(fox, bits)
    # bits 37, 87, 100: bytes 4 (bit 5), 10 (bit 7), 12 (bit 4)
    expected = bytearray(14)
    expected[4], expected[10], expected[12] = 0x20, 0x80, 0x10
    assert bits.to_bytes() == bytes(expected)
    with pytest.raises(ValueError):
        bloom.is_hit(hello, BitsArray(8))
    with pytest.raises(ValueError):
        bloom.is_hit(BloomFilter(10, 128).generate("hello"), bits)


def test_bits_array() -> None:
    bits = BitsArray(12)
    assert len(bits.to_bytes()) == 2
    bits.set_bit(9)
    assert bits.to_bytes() == b"\x00\x02"
    assert bits.get_bit(9) and not bits.get_bit(8)
    bits.set_bit(9, False)
    assert bits.to_bytes() == b"\x00\x00"
    with pytest.raises(ValueError):
        bits.get_bit(12)
    with pytest.raises(ValueError):
        BitsArray(16, b"\x00")
