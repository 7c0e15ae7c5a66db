"""Java's hash codes and the iteration order of Java's hash-based collections.

fastjson writes a ``HashMap``/``HashSet``/``ConcurrentHashMap`` in the order the
Java collection iterates, which is bucket order, not insertion order. A
pyrocket body is byte-identical to Java's only if it walks its maps in that
same order, so this module models the collections structurally:

* the table size (a power of two) and when it grows: a ``HashMap`` doubles when
  its size goes *past* 0.75 of the table, a ``ConcurrentHashMap`` when its size
  *reaches* 0.75 of it; constructors with an initial capacity or a source map
  pick the first table size as Java does;
* the bucket of a key: the key's Java ``hashCode`` spread by ``h ^ (h >>> 16)``
  and masked by the table size;
* the order inside a bucket: insertion order; on growth a ``HashMap`` keeps the
  relative order in both halves, while a ``ConcurrentHashMap`` rebuilds each
  half by prepending, except for the longest common tail (its "lastRun");
* removals take the key out of its bucket; tables never shrink.

What is not modelled: Java turns a bucket of more than eight colliding keys in
a table of 64 or more into a red-black tree whose iteration order follows the
tree. Such buckets keep insertion order here. Reaching them takes nine keys
whose spread hashes agree in every table bit, which real topic, group and
broker names do not do by accident.
"""

from __future__ import annotations

from collections.abc import (
    Callable,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    MutableSet,
)
from functools import lru_cache
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MASK32 = 0xFFFFFFFF
MAXIMUM_CAPACITY = 1 << 30
DEFAULT_CAPACITY = 16
TREEIFY_THRESHOLD = 8
MIN_TREEIFY_CAPACITY = 64


def to_int32(value: int) -> int:
    """Wrap an integer to Java's signed 32-bit ``int``."""
    value &= _MASK32
    return value - (1 << 32) if value & 0x80000000 else value


@lru_cache(maxsize=65536)
def string_hash(text: str) -> int:
    """``String.hashCode()``: 31-polynomial over UTF-16 code units, as int32."""
    h = 0
    if text.isascii():
        for ch in text.encode("ascii"):
            h = (31 * h + ch) & _MASK32
    else:
        data = text.encode("utf-16-be", "surrogatepass")
        for i in range(0, len(data), 2):
            h = (31 * h + ((data[i] << 8) | data[i + 1])) & _MASK32
    return to_int32(h)


def long_hash(value: int) -> int:
    """``Long.hashCode()``: the two 32-bit halves xor-ed."""
    value &= 0xFFFFFFFFFFFFFFFF
    return to_int32(value ^ (value >> 32))


def int_hash(value: int) -> int:
    """``Integer.hashCode()``: the value itself."""
    return to_int32(value)


def bool_hash(value: bool) -> int:
    """``Boolean.hashCode()``."""
    return 1231 if value else 1237


def java_hash(key: object) -> int:
    """The default hash for keys: ``str`` as String, ``bool`` as Boolean,
    ``int`` as Long (RocketMQ's integer map keys are broker ids, ``Long``).

    Use :func:`int_hash` explicitly for ``Integer``-keyed maps; objects with a
    ``java_hash_code()`` method supply their own.
    """
    if isinstance(key, str):
        return string_hash(key)
    if isinstance(key, bool):
        return bool_hash(key)
    if isinstance(key, int):
        return long_hash(key)
    method = getattr(key, "java_hash_code", None)
    if method is None:
        raise TypeError(f"no Java hashCode known for {type(key).__name__}")
    code: int = method()
    return code


def spread(h: int) -> int:
    """``HashMap.hash``: fold the high half into the low half (unsigned 32)."""
    h &= _MASK32
    return h ^ (h >> 16)


def table_size_for(capacity: int) -> int:
    """The smallest power of two >= ``capacity`` (1 for 0), capped as Java caps it."""
    if capacity <= 1:
        return 1
    n = 1 << (capacity - 1).bit_length()
    return min(n, MAXIMUM_CAPACITY)


class _Table(MutableMapping[K, V]):
    """Shared machinery: buckets of keys, a value dict, a cached key order."""

    def __init__(self, hasher: Callable[[K], int]) -> None:
        self._hasher = hasher
        self._values: dict[K, V] = {}
        self._hashes: dict[K, int] = {}
        self._buckets: list[list[K]] = []
        self._order: list[K] | None = None

    @property
    def capacity(self) -> int:
        """The current table length (0 before the first insertion)."""
        return len(self._buckets)

    def __getitem__(self, key: K) -> V:
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[K]:
        order = self._order
        if order is None:
            order = [k for bucket in self._buckets for k in bucket]
            self._order = order
        return iter(order)

    def __delitem__(self, key: K) -> None:
        del self._values[key]
        h = self._hashes.pop(key)
        self._buckets[h & (len(self._buckets) - 1)].remove(key)
        self._order = None

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: {v!r}" for k, v in self.items())
        return f"{type(self).__name__}({{{items}}})"

    def _insert_new(self, key: K, value: V) -> list[K]:
        h = spread(self._hasher(key))
        self._hashes[key] = h
        self._values[key] = value
        bucket = self._buckets[h & (len(self._buckets) - 1)]
        bucket.append(key)
        self._order = None
        return bucket

    def _split(self, old: list[list[K]], new_cap: int) -> list[list[K]]:
        raise NotImplementedError


class JavaHashMap(_Table[K, V]):
    """A mapping that iterates exactly as ``java.util.HashMap`` does.

    ``initial_capacity`` mirrors ``new HashMap<>(n)``; ``None`` is the
    no-argument constructor. Use :meth:`copy_of` for ``new HashMap<>(map)``.
    """

    def __init__(
        self,
        initial_capacity: int | None = None,
        *,
        hasher: Callable[[K], int] = java_hash,
    ) -> None:
        super().__init__(hasher)
        # Java keeps the first table size in ``threshold`` until the table exists.
        self._threshold = 0 if initial_capacity is None else table_size_for(initial_capacity)

    @classmethod
    def copy_of(
        cls, source: Mapping[K, V], *, hasher: Callable[[K], int] = java_hash
    ) -> JavaHashMap[K, V]:
        """``new HashMap<>(source)``: sized for ``source``, filled in its order."""
        result: JavaHashMap[K, V] = cls(hasher=hasher)
        size = len(source)
        if size:
            wanted = int(size / 0.75 + 1.0)
            if wanted > result._threshold:
                result._threshold = table_size_for(wanted)
        for key, value in source.items():
            result[key] = value
        return result

    def __setitem__(self, key: K, value: V) -> None:
        if key in self._values:
            self._values[key] = value
            return
        if not self._buckets:
            self._resize()
        bucket = self._insert_new(key, value)
        # Java grows instead of building a tree while the table is small.
        if len(bucket) > TREEIFY_THRESHOLD and len(self._buckets) < MIN_TREEIFY_CAPACITY:
            self._resize()
        if len(self._values) > self._threshold:
            self._resize()

    def put_all(self, source: Mapping[K, V]) -> None:
        """``HashMap.putAll``: may grow once up front, then inserts in order."""
        size = len(source)
        if size:
            if not self._buckets:
                wanted = int(size / 0.75 + 1.0)
                if wanted > self._threshold:
                    self._threshold = table_size_for(wanted)
            elif size > self._threshold:
                self._resize()
        for key, value in source.items():
            self[key] = value

    def _resize(self) -> None:
        old_cap = len(self._buckets)
        old_thr = self._threshold
        if old_cap > 0:
            if old_cap >= MAXIMUM_CAPACITY:
                self._threshold = (1 << 31) - 1
                return
            new_cap = old_cap << 1
            new_thr = old_thr << 1 if old_cap >= DEFAULT_CAPACITY else 0
        elif old_thr > 0:
            new_cap, new_thr = old_thr, 0
        else:
            new_cap, new_thr = DEFAULT_CAPACITY, int(DEFAULT_CAPACITY * 0.75)
        if new_thr == 0:
            new_thr = int(new_cap * 0.75)
        self._threshold = new_thr
        self._buckets = self._split(self._buckets, new_cap)
        self._order = None

    def _split(self, old: list[list[K]], new_cap: int) -> list[list[K]]:
        buckets: list[list[K]] = [[] for _ in range(new_cap)]
        mask = new_cap - 1
        hashes = self._hashes
        for bucket in old:
            for key in bucket:
                buckets[hashes[key] & mask].append(key)
        return buckets


class JavaConcurrentHashMap(_Table[K, V]):
    """A mapping that iterates exactly as ``java.util.concurrent.ConcurrentHashMap``
    does when no other thread is changing it.

    ``initial_capacity`` mirrors ``new ConcurrentHashMap<>(n)`` on Java 17
    (first table = next power of two of ``1 + n / 0.75``).
    """

    def __init__(
        self,
        initial_capacity: int | None = None,
        *,
        hasher: Callable[[K], int] = java_hash,
    ) -> None:
        super().__init__(hasher)
        if initial_capacity is None:
            self._first_cap = DEFAULT_CAPACITY
        else:
            self._first_cap = table_size_for(int(1.0 + initial_capacity / 0.75))
        self._size_ctl = 0

    @classmethod
    def copy_of(
        cls, source: Mapping[K, V], *, hasher: Callable[[K], int] = java_hash
    ) -> JavaConcurrentHashMap[K, V]:
        """``new ConcurrentHashMap<>()`` followed by ``putAll(source)``.

        putAll presizes the empty table first (``tryPresize``): to the next
        power of two of 1.5 times the size plus one, doubled until that fits
        under three quarters of the table, so a copy can iterate in another
        order than its source."""
        result: JavaConcurrentHashMap[K, V] = cls(hasher=hasher)
        size = len(source)
        wanted = table_size_for(size + (size >> 1) + 1)
        cap = wanted
        while wanted > cap - (cap >> 2):
            cap <<= 1
        result._first_cap = cap
        for key, value in source.items():
            result[key] = value
        return result

    def __setitem__(self, key: K, value: V) -> None:
        if key in self._values:
            self._values[key] = value
            return
        if not self._buckets:
            cap = self._first_cap
            self._buckets = [[] for _ in range(cap)]
            self._size_ctl = cap - (cap >> 2)
        bucket = self._insert_new(key, value)
        if len(bucket) > TREEIFY_THRESHOLD and len(self._buckets) < MIN_TREEIFY_CAPACITY:
            # tryPresize(n << 1): grow until the table could hold 1.5x that.
            wanted = len(self._buckets) << 1
            target = table_size_for(wanted + (wanted >> 1) + 1)
            while self._size_ctl < target and len(self._buckets) < MAXIMUM_CAPACITY:
                self._grow()
        while len(self._values) >= self._size_ctl and len(self._buckets) < MAXIMUM_CAPACITY:
            self._grow()

    def _grow(self) -> None:
        new_cap = len(self._buckets) << 1
        self._buckets = self._split(self._buckets, new_cap)
        self._size_ctl = new_cap - (new_cap >> 2)
        self._order = None

    def _split(self, old: list[list[K]], new_cap: int) -> list[list[K]]:
        old_cap = len(old)
        buckets: list[list[K]] = [[] for _ in range(new_cap)]
        hashes = self._hashes
        # Java transfers bins from the highest index down; each bin lands only in
        # its own two target slots, so the visiting order does not matter here.
        for index, bucket in enumerate(old):
            if not bucket:
                continue
            bits = [hashes[key] & old_cap for key in bucket]
            last_run = len(bucket) - 1
            while last_run > 0 and bits[last_run - 1] == bits[last_run]:
                last_run -= 1
            low: list[K] = []
            high: list[K] = []
            tail = bucket[last_run:]
            if bits[last_run]:
                high = list(tail)
            else:
                low = list(tail)
            for key, bit in zip(bucket[:last_run], bits[:last_run], strict=True):
                if bit:
                    high.insert(0, key)
                else:
                    low.insert(0, key)
            buckets[index] = low
            buckets[index + old_cap] = high
        return buckets


class JavaHashSet(MutableSet[K]):
    """A set that iterates as ``java.util.HashSet`` (a HashMap of its elements)."""

    def __init__(
        self,
        initial_capacity: int | None = None,
        *,
        hasher: Callable[[K], int] = java_hash,
    ) -> None:
        self._map: JavaHashMap[K, None] = JavaHashMap(initial_capacity, hasher=hasher)

    @classmethod
    def copy_of(
        cls, source: Iterable[K], *, hasher: Callable[[K], int] = java_hash
    ) -> JavaHashSet[K]:
        """``new HashSet<>(collection)``: table sized for max(n/.75 + 1, 16)."""
        items = list(source)
        result: JavaHashSet[K] = cls(max(int(len(items) / 0.75) + 1, 16), hasher=hasher)
        for item in items:
            result.add(item)
        return result

    @property
    def capacity(self) -> int:
        return self._map.capacity

    def __contains__(self, item: object) -> bool:
        return item in self._map

    def __iter__(self) -> Iterator[K]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def add(self, value: K) -> None:
        if value not in self._map:
            self._map[value] = None

    def discard(self, value: K) -> None:
        if value in self._map:
            del self._map[value]

    def __repr__(self) -> str:
        return f"JavaHashSet({list(self)!r})"


def hashmap_order(
    keys: Iterable[K],
    initial_capacity: int | None = None,
    *,
    hasher: Callable[[K], int] = java_hash,
) -> list[K]:
    """The order in which a fresh ``HashMap`` filled with ``keys`` (in that
    order) iterates them."""
    table: JavaHashMap[K, None] = JavaHashMap(initial_capacity, hasher=hasher)
    for key in keys:
        table[key] = None
    return list(table)


def concurrent_hashmap_order(keys: Iterable[K]) -> list[K]:
    """The order in which a fresh ``ConcurrentHashMap`` filled with ``keys``
    (in that order) iterates them."""
    table: JavaConcurrentHashMap[K, None] = JavaConcurrentHashMap()
    for key in keys:
        table[key] = None
    return list(table)
