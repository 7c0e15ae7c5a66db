"""Delayed delivery: SCHEDULE_TOPIC_XXXX queues per level, delivery when
due, delayOffset.json in Java's layout. Timing runs on trio's MockClock."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import trio

from pyrocket.broker.store import (
    SCHEDULE_TOPIC,
    MessageStore,
    PutMessageStatus,
    TagsFilter,
    open_message_store,
)
from pyrocket.protocol.message import decode_messages, tags_hash_code
from tests.broker.store.helpers import message, small_config
from tests.vectorset import default_vectors_dir, pair_requests, read_records

BASE_MS = 1_790_000_000_000


def mock_ms() -> int:
    """The store clock follows trio's (mock) clock."""
    return BASE_MS + int(trio.current_time() * 1000)


async def _wait_for(store: MessageStore, topic: str, queue_id: int, count: int) -> None:
    await store.queue_max_offset(topic, queue_id).wait_value(lambda value: value >= count)


async def test_delayed_message_is_delivered_when_due(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_message_store(small_config(tmp_path), now_ms=mock_ms) as store:
        sent = message(
            topic="DelayTopic", queue_id=1, body=b"later", tags="TagD", extra={"DELAY": "3"}
        )
        result = await store.put_message(sent)
        assert result.status is PutMessageStatus.PUT_OK
        assert result.append_result is not None
        put_at = result.append_result.store_timestamp
        # Stored in the schedule topic, queue level - 1, real destination recorded.
        assert store.get_max_offset_in_queue(SCHEDULE_TOPIC, 2) == 1
        assert store.get_max_offset_in_queue("DelayTopic", 1) == 0
        held = store.look_message_by_offset(result.append_result.wrote_offset)
        assert held is not None and held.topic == SCHEDULE_TOPIC and held.queue_id == 2
        assert held.properties["REAL_TOPIC"] == "DelayTopic"
        assert held.properties["REAL_QID"] == "1"
        schedule_queue = store.consume_queue(SCHEDULE_TOPIC, 2)
        assert schedule_queue is not None
        assert schedule_queue.entry(0) == (
            result.append_result.wrote_offset,
            held.store_size,
            put_at + 10_000,
        )

        with trio.fail_after(60):
            await _wait_for(store, "DelayTopic", 1, 1)
        got = await store.get_message(
            "g", "DelayTopic", 1, 0, 32, TagsFilter({tags_hash_code("TagD")})
        )
        assert got is not None and got.message_count == 1
        delivered = decode_messages(got.body())[0]
        assert delivered.store_timestamp >= put_at + 10_000  # level 3 is 10 s
        assert delivered.store_timestamp < put_at + 12_000
        assert delivered.body == b"later" and delivered.born_host == sent.born_host
        # As in Java, the delivered properties string still names the delay.
        assert delivered.properties == {
            **dict(sent.properties),
            "DELAY": "3",
            "REAL_TOPIC": "DelayTopic",
            "REAL_QID": "1",
        }
        assert store.schedule.offset_table[3] == 1
        assert store.schedule.running_stats() == {"scheduleMessageOffset_3": "1,1"}


async def test_levels_above_the_maximum_are_clamped(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    config = small_config(tmp_path, message_delay_level="1s 2s")
    async with open_message_store(config, now_ms=mock_ms) as store:
        result = await store.put_message(message(topic="T", extra={"DELAY": "9"}))
        assert result.append_result is not None
        held = store.look_message_by_offset(result.append_result.wrote_offset)
        assert held is not None and (held.queue_id, held.properties["DELAY"]) == (1, "2")
        with trio.fail_after(30):
            await _wait_for(store, "T", 0, 1)


async def test_order_within_a_level_and_offsets_persist(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    config = small_config(tmp_path)
    async with open_message_store(config, now_ms=mock_ms) as store:
        for number in range(3):
            await store.put_message(message(topic="D", body=b"%d" % number, extra={"DELAY": "2"}))
            await trio.sleep(1)
        with trio.fail_after(60):
            await _wait_for(store, "D", 0, 3)
        got = await store.get_message("g", "D", 0, 0, 32)
        assert got is not None
        assert [m.body for m in decode_messages(got.body())] == [b"0", b"1", b"2"]
        # One more, not yet due when the store stops.
        await store.put_message(message(topic="D", body=b"3", extra={"DELAY": "5"}))
    text = (tmp_path / "config" / "delayOffset.json").read_text()
    assert text == '{\n\t"offsetTable":{2:3\n\t}\n}'
    async with open_message_store(config, now_ms=mock_ms) as store:
        assert dict(store.schedule.offset_table) == {2: 3}
        with trio.fail_after(120):
            await _wait_for(store, "D", 0, 4)
        await trio.sleep(30)
        # Nothing delivered twice after the restart.
        assert store.get_max_offset_in_queue("D", 0) == 4
        assert dict(store.schedule.offset_table) == {2: 3, 5: 1}
    text = (tmp_path / "config" / "delayOffset.json").read_text()
    assert text == '{\n\t"offsetTable":{2:3,5:1\n\t}\n}'
    assert (tmp_path / "config" / "delayOffset.json.bak").exists()


async def test_delivery_keeps_retry_properties(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # What CONSUMER_SEND_MSG_BACK stores: a retry topic message with a delay
    # and WAIT=false; the map decides (no wait), the string is stored.
    async with open_message_store(small_config(tmp_path), now_ms=mock_ms) as store:
        retry = message(
            topic="%RETRY%group",
            reconsume_times=1,
            extra={"RETRY_TOPIC": "TopicTest", "WAIT": "false", "DELAY": "1"},
        )
        await store.put_message(retry)
        with trio.fail_after(30):
            await _wait_for(store, "%RETRY%group", 0, 1)
        got = await store.get_message("g", "%RETRY%group", 0, 0, 1)
        assert got is not None
        stored = decode_messages(got.messages[0])[0]
        assert stored.reconsume_times == 1
        assert stored.properties["RETRY_TOPIC"] == "TopicTest"
        assert stored.properties["WAIT"] == "false"
        assert (stored.properties["DELAY"], stored.properties["REAL_TOPIC"]) == (
            "1",
            "%RETRY%group",
        )


async def test_offset_table_encodes_as_java_answers_it(tmp_path: Path) -> None:
    records = read_records(default_vectors_dir() / "cluster-multi.jsonl")
    pairs = pair_requests(records)
    java = {r.body for r in records if r.is_response and r.seq in pairs and pairs[r.seq].code == 45}
    async with open_message_store(small_config(tmp_path)) as store:
        assert {store.schedule.encode().encode()} == java  # an empty table, as captured
        store.schedule.offset_table[3] = 7
        store.schedule.offset_table[1] = 2
        assert store.schedule.encode() == '{"offsetTable":{1:2,3:7}}'
        assert store.schedule.encode(pretty=True) == '{\n\t"offsetTable":{1:2,3:7\n\t}\n}'


async def test_a_message_that_cannot_be_put_back_is_moved_aside(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    config = small_config(tmp_path, max_message_size=8000)
    async with open_message_store(config, now_ms=mock_ms) as store:
        bodies = [b"first", b"big" * 2000, b"third"]
        for body in bodies:
            result = await store.put_message(message(topic="D", body=body, extra={"DELAY": "2"}))
            assert result.status is PutMessageStatus.PUT_OK
        # The big one was stored; now the store refuses it in its real topic.
        store.update_config(dataclasses.replace(store.config, max_message_size=2000))
        with trio.fail_after(120):
            await _wait_for(store, "D", 0, 2)
        got = await store.get_message("g", "D", 0, 0, 32)
        assert got is not None
        assert [m.body for m in decode_messages(got.body())] == [b"first", b"third"]
        assert store.schedule.offset_table[2] == 3
        assert store.schedule.moved_aside == 1
        await trio.sleep(60)  # no retries: one error, nothing more delivered
        assert store.get_max_offset_in_queue("D", 0) == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "moved aside" in r.msg]
    assert len(errors) == 1
    # It stays in the schedule topic, where the error says.
    assert store.get_max_offset_in_queue(SCHEDULE_TOPIC, 1) == 3


async def test_a_store_that_refuses_everything_holds_the_level(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    disk = {"ratio": 0.0}
    async with open_message_store(
        small_config(tmp_path), now_ms=mock_ms, disk_used_ratio=lambda path: disk["ratio"]
    ) as store:
        for body in (b"a", b"b"):
            await store.put_message(message(topic="D", body=body, extra={"DELAY": "1"}))
        disk["ratio"] = 0.99  # the store stops taking messages: retry, do not skip
        await store.clean_expired_files()
        await trio.sleep(60)
        assert store.get_max_offset_in_queue("D", 0) == 0
        assert store.schedule.moved_aside == 0
        disk["ratio"] = 0.1
        await store.clean_expired_files()
        with trio.fail_after(120):
            await _wait_for(store, "D", 0, 2)
        got = await store.get_message("g", "D", 0, 0, 32)
        assert got is not None
        assert [m.body for m in decode_messages(got.body())] == [b"a", b"b"]
    retries = [r for r in caplog.records if r.levelno >= logging.ERROR and "retrying" in r.msg]
    assert len(retries) == 1
