"""The message index: Java 4.7's byte layout (checked against bytes written
out by hand), Java's String.hashCode, collisions, rolling, recovery after a
crash and deletion with the commit log."""

from __future__ import annotations

import itertools
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pyrocket.broker.store import BrokerBatch, PutMessageStatus, open_message_store
from pyrocket.broker.store.index import (
    IndexFile,
    IndexService,
    index_file_name,
    index_key_hash,
    java_string_hash,
    message_keys,
)
from pyrocket.protocol.message import (
    Message,
    MessageSysFlag,
    decode_messages,
    encode_batch,
    java_properties,
)
from tests.broker.store.helpers import BORN, STORE, message, small_config

HOUR_MS = 3600 * 1000


def test_java_string_hash_matches_known_values() -> None:
    # Values of java.lang.String.hashCode, worked out by hand / well known.
    assert java_string_hash("") == 0
    assert java_string_hash("T#k") == 84 * 31 * 31 + 35 * 31 + 107 == 81916
    assert java_string_hash("Aa") == java_string_hash("BB") == 2112
    assert java_string_hash("polygenelubricants") == -(2**31)
    # A supplementary character hashes as its two UTF-16 code units.
    assert java_string_hash("\U0001f600") == 0xD83D * 31 + 0xDE00
    assert java_string_hash("é") == 233
    assert java_string_hash("hello world") == 1794106052


def test_abs_hash_and_integer_min_value() -> None:
    assert index_key_hash("polygenelubricants") == 0
    assert index_key_hash("hello world") == 1794106052
    assert index_key_hash("Aa") == 2112


def test_file_name_is_java_human_time() -> None:
    at = int(time.mktime((2026, 3, 4, 5, 6, 7, 0, 0, -1))) * 1000 + 89
    assert index_file_name(at) == "20260304050607089"


def test_keys_of_a_message() -> None:
    props = {"UNIQ_KEY": "U1", "KEYS": "a  b c"}
    assert message_keys("T", props) == ["T#U1", "T#a", "T#b", "T#c"]
    assert message_keys("T", {"TAGS": "x"}) == []


def test_layout_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "20260101000000000"
    index_file = IndexFile(path, hash_slot_num=4, index_num=4)
    assert index_file.put_key("T#k", 100, 1_000_000)
    assert index_file.put_key("T#k", 200, 1_003_500)
    index_file.flush()
    index_file.close()
    expected = bytes.fromhex(
        # header: begin ts, end ts, begin phy, end phy, slot count, index count
        "00000000000F4240"
        "00000000000F4FEC"
        "0000000000000064"
        "00000000000000C8"
        "00000002"
        "00000003"
        # slots: hash 81916 % 4 == 0 -> newest entry 2
        "00000002"
        "00000000"
        "00000000"
        "00000000"
        # entry 0 (never used)
        "00000000"
        "0000000000000000"
        "00000000"
        "00000000"
        # entry 1: hash, phy 100, diff 0 s, no previous
        "00013FFC"
        "0000000000000064"
        "00000000"
        "00000000"
        # entry 2: hash, phy 200, (1003500 - 1000000) // 1000 = 3 s, previous 1
        "00013FFC"
        "00000000000000C8"
        "00000003"
        "00000001"
        # entry 3 (free)
        "00000000"
        "0000000000000000"
        "00000000"
        "00000000"
    )
    assert path.read_bytes() == expected
    # The file is now full (indexCount 4 == maxIndexNum) after one more entry.
    again = IndexFile(path, hash_slot_num=4, index_num=4)
    assert again.index_count == 3 and not again.is_write_full
    assert again.put_key("T#z", 300, 1_010_000)
    assert again.is_write_full
    assert not again.put_key("T#z", 400, 1_010_000)
    again.close()


def test_wrong_geometry_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "20260101000000000"
    IndexFile(path, 4, 4).close()
    with pytest.raises(Exception, match="maxHashSlotNum"):
        IndexFile(path, 8, 4)


def test_collisions_follow_the_chain_and_filter_by_hash(tmp_path: Path) -> None:
    service = IndexService(tmp_path, hash_slot_num=2, index_num=100)
    service.build(["T#k1"], 10, 5_000, blocking=True)
    service.build(["T#k2"], 20, 5_000, blocking=True)  # maybe the same slot
    service.build(["T#Aa"], 30, 6_000, blocking=True)
    service.build(["T#BB"], 40, 6_000, blocking=True)  # same Java hash as T#Aa
    service.build(["T#k1"], 50, 7_000, blocking=True)
    assert service.query_offset("T", "k1", 32, 0, 10**13).phy_offsets == [50, 10]
    assert service.query_offset("T", "k2", 32, 0, 10**13).phy_offsets == [20]
    # Java compares hashes only: both colliding keys answer both.
    assert service.query_offset("T", "Aa", 32, 0, 10**13).phy_offsets == [40, 30]
    # Time range and maxNum.
    assert service.query_offset("T", "k1", 32, 6_000, 10**13).phy_offsets == [50]
    assert service.query_offset("T", "k1", 1, 0, 10**13).phy_offsets == [50]
    result = service.query_offset("T", "nothing", 32, 0, 10**13)
    assert result.phy_offsets == []
    assert result.index_last_update_phyoffset == 50
    assert result.index_last_update_timestamp == 7_000
    service.close()


async def test_store_indexes_keys_and_unique_key(tmp_path: Path) -> None:
    config = small_config(tmp_path, max_hash_slot_num=64, max_index_num=1000)
    async with open_message_store(config) as store:
        for number in range(10):
            put = await store.put_message(
                message(keys=f"K{number % 3} common", extra={"UNIQ_KEY": f"U{number}"})
            )
            assert put.status is PutMessageStatus.PUT_OK
        found = await store.query_message("TopicTest", "K1", 32, 0, 2**62)
        bodies = decode_messages(b"".join(found.messages))
        assert [m.properties["UNIQ_KEY"] for m in bodies] == ["U1", "U4", "U7"]
        assert found.index_last_update_phyoffset == store.max_phy_offset - len(found.messages[0])
        assert len((await store.query_message("TopicTest", "common", 32, 0, 2**62)).messages) == 10
        assert len((await store.query_message("TopicTest", "common", 4, 0, 2**62)).messages) == 4
        unique = await store.query_message("TopicTest", "U5", 32, 0, 2**62)
        assert [m.properties["UNIQ_KEY"] for m in decode_messages(unique.messages[0])] == ["U5"]
        assert (await store.query_message("Other", "K1", 32, 0, 2**62)).messages == []
        # A rolled-back transaction message is not indexed; a prepared one is.
        rollback = message(keys="TXN", sys_flag=MessageSysFlag.TRANSACTION_ROLLBACK_TYPE)
        await store.put_message(rollback)
        prepared = message(keys="TXN", sys_flag=MessageSysFlag.TRANSACTION_PREPARED_TYPE)
        await store.put_message(prepared)
        assert len((await store.query_message("TopicTest", "TXN", 32, 0, 2**62)).messages) == 1
    names = os.listdir(tmp_path / "index")
    assert len(names) == 1 and re.fullmatch(r"\d{17}", names[0])


async def test_disabled_index_keeps_no_files(tmp_path: Path) -> None:
    config = small_config(tmp_path, message_index_enable=False)
    async with open_message_store(config) as store:
        await store.put_message(message(keys="K"))
        assert (await store.query_message("TopicTest", "K", 32, 0, 2**62)).messages == []
    assert not (tmp_path / "index").exists()


async def test_rolls_into_a_new_file_when_full(tmp_path: Path) -> None:
    # 4 entries per file hold 3 keys: 7 messages of 2 keys need 5 files.
    config = small_config(tmp_path, max_hash_slot_num=8, max_index_num=4)
    async with open_message_store(config) as store:
        for number in range(7):
            await store.put_message(message(keys=f"A B{number}"))
        found = await store.query_message("TopicTest", "A", 32, 0, 2**62)
        assert len(found.messages) == 7
        assert len((await store.query_message("TopicTest", "B6", 32, 0, 2**62)).messages) == 1
    names = sorted(os.listdir(tmp_path / "index"))
    assert len(names) == 5
    files = [IndexFile(tmp_path / "index" / name, 8, 4) for name in names]
    assert [f.index_count for f in files] == [4, 4, 4, 4, 3]
    # Each file begins at or after where the previous one ended.
    for before, after in itertools.pairwise(files):
        assert after.begin_phy_offset >= before.end_phy_offset
    for index_file in files:
        index_file.close()


async def _put_keyed(root: Path, count: int, **overrides: int) -> None:
    config = small_config(root, max_hash_slot_num=16, max_index_num=8, **overrides)
    async with open_message_store(config) as store:
        for number in range(count):
            await store.put_message(message(keys=f"K{number} ALL"))


async def _count(root: Path, key: str) -> int:
    config = small_config(root, max_hash_slot_num=16, max_index_num=8)
    async with open_message_store(config) as store:
        return len((await store.query_message("TopicTest", key, 64, 0, 2**62)).messages)


async def test_missing_index_is_rebuilt_at_start(tmp_path: Path) -> None:
    await _put_keyed(tmp_path, 12)
    for path in (tmp_path / "index").iterdir():
        path.unlink()
    assert await _count(tmp_path, "ALL") == 12
    assert await _count(tmp_path, "K11") == 1


async def test_crash_drops_unflushed_index_files_and_rebuilds(tmp_path: Path) -> None:
    await _put_keyed(tmp_path, 12)
    names = sorted(os.listdir(tmp_path / "index"))
    assert len(names) == 4  # 7 entries a file, 24 keys
    # A crash that tore the newest index file: its entries are zeros.
    newest = tmp_path / "index" / names[-1]
    raw = bytearray(newest.read_bytes())
    raw[40:] = bytes(len(raw) - 40)
    newest.write_bytes(bytes(raw))
    (tmp_path / "abort").touch()
    assert await _count(tmp_path, "ALL") == 12
    for number in range(12):
        assert await _count(tmp_path, f"K{number}") == 1  # no duplicate entries either


async def test_clean_restart_keeps_and_extends_the_index(tmp_path: Path) -> None:
    await _put_keyed(tmp_path, 5)
    await _put_keyed(tmp_path, 5)
    assert await _count(tmp_path, "ALL") == 10
    assert await _count(tmp_path, "K4") == 2


async def test_index_files_go_with_the_commit_log(tmp_path: Path) -> None:
    class Clock:
        now = time.time_ns() // 1_000_000

        def __call__(self) -> int:
            return self.now

    clock = Clock()
    hour = f"{time.localtime((clock.now + 2 * HOUR_MS) / 1000).tm_hour:02d}"
    config = small_config(
        tmp_path, max_hash_slot_num=16, max_index_num=20, file_reserved_time=1, delete_when=hour
    )
    async with open_message_store(config, now_ms=clock, disk_used_ratio=lambda _: 0.3) as store:
        number = 0
        while store.max_phy_offset < 3 * 64 * 1024 + 1000:
            await store.put_message(message(keys=f"K{number}", body=b"." * 900))
            number += 1
        index_dir = tmp_path / "index"
        before = sorted(os.listdir(index_dir))
        assert len(before) > 5
        clock.now += 2 * HOUR_MS
        assert await store.clean_expired_files() == 3
        after = sorted(os.listdir(index_dir))
        assert after and after == before[len(before) - len(after) :]
        assert len(after) < len(before)
        minimum = store.min_phy_offset
        for name in before[: len(before) - len(after)]:
            assert name not in after
        remaining = [IndexFile(index_dir / name, 16, 20) for name in after]
        assert remaining[0].end_phy_offset >= minimum
        for index_file in remaining:
            index_file.close()
        latest = await store.query_message("TopicTest", f"K{number - 1}", 32, 0, 2**62)
        assert len(latest.messages) == 1
        # An entry whose message left the commit log is skipped.
        assert (await store.query_message("TopicTest", "K0", 32, 0, 2**62)).messages == []


def test_key_hashes_agree_with_the_string_keys(tmp_path: Path) -> None:
    service = IndexService(tmp_path, 16, 16)
    for topic, props in [
        ("T", {"UNIQ_KEY": "0A000001C35000000000000000000001", "KEYS": "a  polygenelubricants"}),
        ("Tópico", {"KEYS": "clé \U0001f600 x"}),
        ("polygenelubricants", {"KEYS": "k"}),
        ("T", {"TAGS": "only"}),
    ]:
        expected = [index_key_hash(key) for key in message_keys(topic, props)]
        assert service.key_hashes(topic, props) == expected


def _key_hashing_to_integer_min_value(topic: str) -> str:
    """A 7-character key whose ``topic#key`` has Java's hash Integer.MIN_VALUE:
    the base-31 digits (all below a space) of what the key must add to the
    hash of ``topic#`` times 31^7."""
    shifted = java_string_hash(topic + "#") * 31**7
    target = (2**31 - shifted) % 2**32
    digits = []
    for _ in range(7):
        target, digit = divmod(target, 31)
        digits.append(chr(digit))
    assert target == 0
    return "".join(reversed(digits))


@given(
    topic=st.text(min_size=1, max_size=12),
    unique=st.none() | st.text(max_size=40),
    keys=st.lists(st.text(max_size=12), max_size=4).map(" ".join),
)
@example(topic="T", unique=None, keys=_key_hashing_to_integer_min_value("T"))
@example(topic="Tópico", unique=_key_hashing_to_integer_min_value("Tópico"), keys="")
def test_key_hashes_are_the_index_hashes_of_the_keys(
    topic: str, unique: str | None, keys: str
) -> None:
    """The folded hashes of the put path are ``index_key_hash`` of each
    ``topic#key``, Integer.MIN_VALUE (hashed to 0) included."""
    service = IndexService(Path("unused"), 16, 16)  # hashing touches no file
    props = {"KEYS": keys} if unique is None else {"UNIQ_KEY": unique, "KEYS": keys}
    expected = [index_key_hash(key) for key in message_keys(topic, props)]
    assert service.key_hashes(topic, props) == expected


def test_a_key_can_hash_to_integer_min_value() -> None:
    key = _key_hashing_to_integer_min_value("T")
    assert java_string_hash("T#" + key) == -(2**31)
    assert index_key_hash("T#" + key) == 0


async def test_batch_items_are_indexed_and_roll_across_files(tmp_path: Path) -> None:
    items = [
        Message(body=b"b%d" % n, properties=java_properties([("KEYS", f"B{n} batch")]))
        for n in range(5)
    ]
    # 3 entries a file: the batch's 10 keys need 4 files, made before it is stored.
    config = small_config(tmp_path, max_hash_slot_num=8, max_index_num=4)
    async with open_message_store(config) as store:
        batch = BrokerBatch("TopicTest", 0, encode_batch(items), born_host=BORN, store_host=STORE)
        assert (await store.put_messages(batch)).status is PutMessageStatus.PUT_OK
        found = await store.query_message("TopicTest", "batch", 32, 0, 2**62)
        assert [m.body for m in decode_messages(b"".join(found.messages))] == [
            b"b%d" % n for n in range(5)
        ]
        assert len((await store.query_message("TopicTest", "B3", 32, 0, 2**62)).messages) == 1
    assert len(os.listdir(tmp_path / "index")) == 4
