"""The Java collection-order model against orders worked out by hand.

Each expected order below was derived on paper from the Java 17 sources:
``String.hashCode`` (31-polynomial), ``HashMap.hash`` (h ^ h >>> 16, which
changes nothing for the small hashes used here), bucket = hash & (table - 1),
insertion order inside a bucket, HashMap growth when size > 0.75 * table,
ConcurrentHashMap growth when size >= 0.75 * table and its transfer, which
keeps the longest same-side tail of a bin ("lastRun") and prepends the rest.

Hashes used: "a".."q" = 97..113; "B" = 66; "ab" = 31*97+98 = 3105 (3105 & 31 =
1); "Aa" = "BB" = 2112; "!3" = 31*33+51 = 1074.
"""

from __future__ import annotations

import pytest

from pyrocket.protocol.javahash import (
    JavaConcurrentHashMap,
    JavaHashMap,
    JavaHashSet,
    hashmap_order,
    int_hash,
    long_hash,
    string_hash,
)

TWELVE = ["q", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]


def test_hand_computed_hashes() -> None:
    assert string_hash("a") == 97
    assert string_hash("ab") == 3105
    assert string_hash("Aa") == string_hash("BB") == 2112
    assert string_hash("!3") == 1074
    assert string_hash("") == 0
    # Overflow wraps to int: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
    assert string_hash("polygenelubricants") == -(1 << 31)
    # Long.hashCode: high and low halves xor-ed.
    assert long_hash(0) == 0
    assert long_hash(1 << 32) == 1
    assert long_hash(-1) == 0


@pytest.mark.parametrize(
    ("keys", "capacity", "expected"),
    [
        # Distinct buckets 1, 2, 3: bucket order, not insertion order.
        (["c", "a", "b"], None, ["a", "b", "c"]),
        # "Aa" and "BB" collide: insertion order inside the bucket.
        (["BB", "Aa"], None, ["BB", "Aa"]),
        (["Aa", "BB"], None, ["Aa", "BB"]),
        # 12 keys fit the default table of 16 (threshold 12): "q" (113 & 15 = 1)
        # shares bucket 1 with "a" and was put first.
        (TWELVE, None, TWELVE),
        # The 13th key exceeds the threshold: the table grows to 32, "q" moves
        # to bucket 17, behind everything else.
        ([*TWELVE, "l"], None, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "q"]),
        # Initial capacity: in 64 slots "a" is bucket 33 and "B" bucket 2.
        (["a", "B"], None, ["a", "B"]),
        (["a", "B"], 64, ["B", "a"]),
        # new HashMap(1024): "!3" (1074) lands in bucket 50, before "a" (97).
        (["a", "!3"], 1024, ["!3", "a"]),
        # new HashMap(0): a table of 1 that doubles as it fills and stops at 4
        # for three keys; "e" (101 & 3 = 1) then shares bucket 1 with "a".
        (["e", "a", "c"], 0, ["e", "a", "c"]),
        (["e", "a", "c"], None, ["a", "c", "e"]),
    ],
)
def test_hashmap_orders(keys: list[str], capacity: int | None, expected: list[str]) -> None:
    assert hashmap_order(keys, capacity) == expected
    table: JavaHashMap[str, int] = JavaHashMap(capacity)
    for index, key in enumerate(keys):
        table[key] = index
    assert list(table) == expected
    assert {key: table[key] for key in keys} == {key: i for i, key in enumerate(keys)}


def test_hashmap_table_sizes() -> None:
    table: JavaHashMap[str, int] = JavaHashMap()
    assert table.capacity == 0  # no table before the first put
    for index, key in enumerate(TWELVE):
        table[key] = index
    assert table.capacity == 16
    table["l"] = 12
    assert table.capacity == 32
    assert JavaHashMap.copy_of(dict.fromkeys(TWELVE, 0)).capacity == 32  # 12/0.75 + 1 = 17


def test_hashmap_copy_is_sized_for_its_source() -> None:
    # new HashMap(map) sizes for 12/0.75+1 = 17 -> 32 slots: "q" (bucket 17) last.
    copy = JavaHashMap.copy_of(dict.fromkeys(TWELVE, 0))
    assert list(copy) == [*TWELVE[1:], "q"]


def test_hashmap_removal_order_is_bucket_order() -> None:
    table: JavaHashMap[str, int] = JavaHashMap()
    for key in ("BB", "Aa", "a"):
        table[key] = 0
    assert list(table) == ["BB", "Aa", "a"]  # bucket 0: BB, Aa; bucket 1: a
    del table["BB"]
    assert list(table) == ["Aa", "a"]
    table["BB"] = 0  # re-put: the end of bucket 0
    assert list(table) == ["Aa", "BB", "a"]
    assert len(table) == 3


def test_hashset_copy_of_sizing() -> None:
    # HashSet() grows only past 12 elements; new HashSet(collection) asks for
    # max(12/0.75 + 1, 16) = 17 -> 32 slots up front, which separates "q".
    grown: JavaHashSet[str] = JavaHashSet()
    for key in TWELVE:
        grown.add(key)
    assert list(grown) == TWELVE
    assert grown.capacity == 16
    copied = JavaHashSet.copy_of(TWELVE)
    assert list(copied) == [*TWELVE[1:], "q"]
    assert copied.capacity == 32
    # Small collections still get 16 slots: "q" and "a" share bucket 1.
    assert list(JavaHashSet.copy_of(["q", "a"])) == ["q", "a"]
    grown.discard("q")
    assert "q" not in grown and len(grown) == 11


def test_concurrent_hash_map_grows_at_three_quarters() -> None:
    # A ConcurrentHashMap of 16 grows when its size reaches 12 (a HashMap waits
    # for 13), so the twelfth put already splits bucket 1.
    table: JavaConcurrentHashMap[str, int] = JavaConcurrentHashMap()
    for index, key in enumerate(TWELVE[:-1]):
        table[key] = index
    assert table.capacity == 16
    assert list(table) == TWELVE[:-1]
    table[TWELVE[-1]] = 11
    assert table.capacity == 32
    assert list(table) == [*TWELVE[1:], "q"]


def test_concurrent_hash_map_copy_is_presized_by_put_all() -> None:
    # putAll of n entries into a fresh map presizes it to
    # tableSizeFor(1.5n + 1), doubled while that exceeds three quarters:
    # two entries give a table of 8, where 8 lands in bucket 0 before 1;
    # the source (16 buckets) has 1 first.
    source: JavaConcurrentHashMap[int, str] = JavaConcurrentHashMap(hasher=int_hash)
    source[8] = "eight"
    source[1] = "one"
    assert list(source) == [1, 8]
    copy = JavaConcurrentHashMap.copy_of(source, hasher=int_hash)
    assert copy.capacity == 8 and list(copy) == [8, 1]
    assert dict(copy) == dict(source)
    single = JavaConcurrentHashMap.copy_of({"only": 1})
    assert single.capacity == 2
    # Six entries: tableSizeFor(10) = 16, doubled to 32 (16 * 0.75 < 16).
    six = JavaConcurrentHashMap.copy_of({str(i): i for i in range(6)})
    assert six.capacity == 32


def test_concurrent_hash_map_last_run_reorders_a_bin() -> None:
    # Bucket 1 of 16 holds a, ab, q (put in that order). On growth to 32, "a"
    # and "ab" stay low (bucket 1), "q" goes high (bucket 17). Java keeps the
    # tail run [q] as is and prepends the others one by one: low = [ab, a].
    keys = ["a", "ab", "q", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
    table: JavaConcurrentHashMap[str, int] = JavaConcurrentHashMap()
    for key in keys:
        table[key] = 0
    assert list(table) == ["ab", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "q"]
    # A HashMap holding the same keys has not grown and keeps insertion order.
    assert hashmap_order(keys) == keys


def test_concurrent_hash_map_last_run_keeps_a_same_side_tail() -> None:
    # Bucket 1 holds q, a, ab: the tail run [a, ab] (both low) is kept as is,
    # "q" is prepended to the high bin: low = [a, ab], high = [q].
    keys = ["q", "a", "ab", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
    table: JavaConcurrentHashMap[str, int] = JavaConcurrentHashMap()
    for key in keys:
        table[key] = 0
    assert list(table) == ["a", "ab", "b", "c", "d", "e", "f", "g", "h", "i", "j", "q"]


@pytest.mark.parametrize(
    ("capacity", "table_size"),
    # Java 17: tableSizeFor((long) (1.0 + n / 0.75))
    [(None, 16), (8, 16), (16, 32), (32, 64), (512, 1024), (1024, 2048)],
)
def test_concurrent_hash_map_initial_capacity(capacity: int | None, table_size: int) -> None:
    table: JavaConcurrentHashMap[str, int] = JavaConcurrentHashMap(capacity)
    table["a"] = 0
    assert table.capacity == table_size


def test_concurrent_hash_map_1024_order() -> None:
    # 2048 slots: "a" in 97, "!3" in 1074 -> "a" first (a HashMap(1024) has
    # 1024 slots and puts "!3" in bucket 50, first).
    table: JavaConcurrentHashMap[str, int] = JavaConcurrentHashMap(1024)
    table["!3"] = 0
    table["a"] = 1
    assert list(table) == ["a", "!3"]
    del table["a"]
    assert list(table) == ["!3"]


def test_long_keys_use_long_hash() -> None:
    # Broker ids are Long keys; 1 << 32 hashes to 1 and shares bucket 1 with 1.
    assert hashmap_order([1 << 32, 0, 1]) == [0, 1 << 32, 1]
