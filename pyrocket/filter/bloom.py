"""The bloom filter of SQL92 consumers (Java's ``BloomFilter``, ``BitsArray``
and ``BloomFilterData`` of ``org.apache.rocketmq.filter.util``).

Each ``consumerGroup#topic`` maps to ``k`` bit positions in an ``m``-bit map;
a message's bit map has the positions of every filter it matched set. The
positions are those Java computes: the first 64 bits of MurmurHash3 x64/128
(seed 0) of the key's UTF-8 bytes, split into two 32-bit halves and combined
as in Kirsch and Mitzenmacher, with Java's 32-bit int arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_MASK64 = (1 << 64) - 1
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F


def _rotl64(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (64 - shift))) & _MASK64


def _fmix64(value: int) -> int:
    value ^= value >> 33
    value = (value * 0xFF51AFD7ED558CCD) & _MASK64
    value ^= value >> 33
    value = (value * 0xC4CEB9FE1A85EC53) & _MASK64
    value ^= value >> 33
    return value


def murmur3_x64_128(data: bytes, seed: int = 0) -> tuple[int, int]:
    """MurmurHash3 x64/128 of ``data``: the two unsigned 64-bit halves
    ``(h1, h2)``; Guava's ``asLong()`` is ``h1``."""
    h1 = h2 = seed & _MASK64
    length = len(data)
    blocks = length // 16
    for index in range(blocks):
        k1 = int.from_bytes(data[index * 16 : index * 16 + 8], "little")
        k2 = int.from_bytes(data[index * 16 + 8 : index * 16 + 16], "little")
        k1 = (_rotl64((k1 * _C1) & _MASK64, 31) * _C2) & _MASK64
        h1 ^= k1
        h1 = (_rotl64(h1, 27) + h2) & _MASK64
        h1 = (h1 * 5 + 0x52DCE729) & _MASK64
        k2 = (_rotl64((k2 * _C2) & _MASK64, 33) * _C1) & _MASK64
        h2 ^= k2
        h2 = (_rotl64(h2, 31) + h1) & _MASK64
        h2 = (h2 * 5 + 0x38495AB5) & _MASK64
    tail = data[blocks * 16 :]
    if len(tail) > 8:
        k2 = int.from_bytes(tail[8:], "little")
        h2 ^= (_rotl64((k2 * _C2) & _MASK64, 33) * _C1) & _MASK64
    if tail:
        k1 = int.from_bytes(tail[:8], "little")
        h1 ^= (_rotl64((k1 * _C1) & _MASK64, 31) * _C2) & _MASK64
    h1 ^= length
    h2 ^= length
    h1 = (h1 + h2) & _MASK64
    h2 = (h2 + h1) & _MASK64
    h1 = _fmix64(h1)
    h2 = _fmix64(h2)
    h1 = (h1 + h2) & _MASK64
    h2 = (h2 + h1) & _MASK64
    return h1, h2


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


class BitsArray:
    """A bit map: bit ``i`` is bit ``i % 8`` (least significant first) of byte ``i // 8``."""

    __slots__ = ("bit_length", "data")

    def __init__(self, bit_length: int, data: bytes | None = None) -> None:
        if bit_length < 1:
            raise ValueError("a bit map has at least one bit")
        size = (bit_length + 7) // 8
        if data is not None and len(data) != size:
            raise ValueError(f"{len(data)} bytes for {bit_length} bits")
        self.bit_length = bit_length
        self.data = bytearray(data) if data is not None else bytearray(size)

    def _check(self, position: int) -> None:
        if not 0 <= position < self.bit_length:
            raise ValueError(f"bit {position} outside 0..{self.bit_length - 1}")

    def set_bit(self, position: int, value: bool = True) -> None:
        self._check(position)
        if value:
            self.data[position >> 3] |= 1 << (position & 7)
        else:
            self.data[position >> 3] &= ~(1 << (position & 7)) & 0xFF

    def get_bit(self, position: int) -> bool:
        self._check(position)
        return bool(self.data[position >> 3] & (1 << (position & 7)))

    def to_bytes(self) -> bytes:
        return bytes(self.data)

    def java_text(self) -> str:
        """``BitsArray.toString`` of whole bytes: '0'/'1' from the last byte's
        highest bit down to the first byte's lowest."""
        return "".join(format(byte, "08b") for byte in reversed(self.data))


@dataclass(frozen=True, slots=True)
class BloomFilterData:
    """The positions of one key and the bit count they belong to (``bitPos``, ``bitNum``)."""

    bit_positions: tuple[int, ...]
    bit_num: int


class BloomFilter:
    """``BloomFilter.createByFn(f, n)``: ``f`` the error rate in percent (1..99),
    ``n`` the number of keys expected."""

    __slots__ = ("f", "k", "m", "n")

    def __init__(self, f: int, n: int) -> None:
        if not 1 <= f < 100:
            raise ValueError("the error rate must be 1 to 99 (percent)")
        if n < 1:
            raise ValueError("the expected number of keys must be at least 1")
        self.f = f
        self.n = n
        error_rate = f / 100.0
        self.k = math.ceil(math.log(error_rate) / math.log(0.5))
        if self.k < 1:
            raise ValueError("the error rate gives no hash function")
        bits = math.ceil(
            n * (math.log(1 / error_rate) / math.log(2)) * (math.log(math.e) / math.log(2))
        )
        self.m = 8 * math.ceil(bits / 8.0)

    def positions(self, key: str) -> tuple[int, ...]:
        """The ``k`` bit positions of ``key`` (``calcBitPositions``)."""
        hash64 = murmur3_x64_128(key.encode("utf-8"))[0]
        low = _int32(hash64)
        high = _int32(hash64 >> 32)
        result: list[int] = []
        for i in range(1, self.k + 1):
            combined = _int32(low + i * high)
            if combined < 0:
                combined = ~combined
            result.append(combined % self.m)
        return tuple(result)

    def generate(self, key: str) -> BloomFilterData:
        return BloomFilterData(self.positions(key), self.m)

    def is_valid(self, data: BloomFilterData | None) -> bool:
        return data is not None and data.bit_num == self.m and len(data.bit_positions) == self.k

    def new_bits(self) -> BitsArray:
        return BitsArray(self.m)

    def hash_to(self, data: BloomFilterData, bits: BitsArray) -> None:
        """Set the positions of ``data`` in ``bits``."""
        self._check(data, bits)
        for position in data.bit_positions:
            bits.set_bit(position)

    def is_hit(self, data: BloomFilterData, bits: BitsArray) -> bool:
        """Whether every position of ``data`` is set in ``bits``."""
        self._check(data, bits)
        return all(bits.get_bit(position) for position in data.bit_positions)

    def _check(self, data: BloomFilterData, bits: BitsArray) -> None:
        if not self.is_valid(data):
            raise ValueError(
                f"bloom filter data {data} is not of this filter (k={self.k}, m={self.m})"
            )
        if bits.bit_length != self.m:
            raise ValueError(f"a bit map of {bits.bit_length} bits where the filter has {self.m}")

    def __repr__(self) -> str:
        return f"BloomFilter(f={self.f}, n={self.n}, k={self.k}, m={self.m})"
