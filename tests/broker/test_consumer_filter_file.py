"""``consumerFilter.json`` over real sockets: the SQL92 subscription table
is written as Java writes it and read back at start, so that bit maps of
messages stored before a restart still spare commit-log reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.broker.consumer_filter import ConsumerFilterManager
from pyrocket.broker.consumer_filter_file import (
    DEAD_BEFORE_LOAD_MS,
    ConsumerFilterFile,
    consumer_filter_json_path,
)
from pyrocket.errors import ConfigError
from pyrocket.filter.bloom import BloomFilter
from pyrocket.protocol import fastjson
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.test_filter_bitmap import MINE, beat, pull_of
from tests.broker.test_sql92 import GROUP, TOPIC, fill, indexes

ENTRY_KEYS = [
    "bloomFilterData",
    "bornTime",
    "clientVersion",
    "consumerGroup",
    "dead",
    "deadTime",
    "expression",
    "expressionType",
    "topic",
]


def bitmap_settings(tmp_path: Path, **extra: str) -> object:
    return broker_settings(
        tmp_path,
        enablePropertyFilter="true",
        enableCalcFilterBitMap="true",
        enableConsumeQueueExt="true",
        **extra,
    )


async def test_the_table_survives_a_restart_with_its_birth_time(tmp_path: Path) -> None:
    settings = bitmap_settings(tmp_path)
    path = consumer_filter_json_path(tmp_path / "store")
    with trio.fail_after(40):
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            assert (await client.invoke_sync(addr, beat(GROUP, MINE, 7), 5)).code == 0
            born = broker.data_plane.consumer_filter_manager.get(TOPIC, GROUP)
            assert born is not None
            born_time = born.born_time
            await trio.sleep(0.01)
            await fill(client, addr, 20)
        # Written at shutdown, as Java's bean: properties in name order.
        form = fastjson.loads(path.read_text())
        assert list(form) == ["filterDataByTopic"]
        topic = form["filterDataByTopic"][TOPIC]
        assert list(topic) == ["groupFilterData", "topic"] and topic["topic"] == TOPIC
        entry = topic["groupFilterData"][GROUP]
        assert list(entry) == ENTRY_KEYS
        assert entry["bornTime"] == born_time and entry["clientVersion"] == 7
        # The group's connection closed before the broker did: dead, as in Java.
        assert entry["expression"] == MINE and entry["dead"] is True
        assert entry["deadTime"] >= born_time
        assert list(entry["bloomFilterData"]) == ["bitNum", "bitPos"]
        assert path.read_text().startswith("{\n\t")

        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            filters = broker.data_plane.consumer_filter_manager
            loaded = filters.get(TOPIC, GROUP)
            # Back as it was born, and dead until its group beats again.
            assert loaded is not None and loaded.born_time == born_time
            assert loaded.is_dead() and loaded.client_version == 7
            assert (await client.invoke_sync(addr, beat(GROUP, MINE, 7), 5)).code == 0
            assert not loaded.is_dead()
            assert filters.get(TOPIC, GROUP) is loaded
            answer = await client.invoke_sync(addr, pull_of(GROUP, 7), 5)
            assert indexes(answer) == [10, 11, 12, 13, 14]
            # The 15 messages of the last run that cannot match are refused by
            # their bit maps: the entry is the one they were computed for.
            assert broker.store.bit_map_skips >= 15


def manager(now: int, bloom: BloomFilter | None = None) -> ConsumerFilterManager:
    return ConsumerFilterManager(lambda: now, bloom=bloom)


def test_loading_marks_live_entries_dead_and_keeps_dead_ones(tmp_path: Path) -> None:
    path = tmp_path / "consumerFilter.json"
    source = manager(1_000_000)
    assert source.register(TOPIC, "alive", "a > 1", "SQL92", 3)
    assert source.register(TOPIC, "gone", "b = 'x'", "SQL92", 4)
    assert source.register("Other", "alive", "c IS NULL", "SQL92", 5)
    source.unregister("gone")
    gone = source.get(TOPIC, "gone")
    assert gone is not None and gone.is_dead()
    path.write_text(ConsumerFilterFile(source, path).encode())

    later = 1_000_000 + 90_000
    target = manager(later)
    ConsumerFilterFile(target, path).load()
    assert len(target) == 3
    alive = target.get(TOPIC, "alive")
    assert alive is not None and alive.born_time == 1_000_000
    assert alive.dead_time == later - DEAD_BEFORE_LOAD_MS and alive.is_dead()
    dead = target.get(TOPIC, "gone")
    assert dead is not None and dead.dead_time == gone.dead_time
    other = target.get("Other", "alive")
    assert other is not None and other.selector.matches({}) is True
    assert alive.selector.matches({"a": "2"}) is True
    assert alive.bloom_data == source.bloom.generate(f"alive#{TOPIC}")

    # Shortly after its birth, an entry is taken as dead since its birth.
    young = manager(1_000_000 + 5)
    ConsumerFilterFile(young, path).load()
    entry = young.get(TOPIC, "alive")
    assert entry is not None and entry.dead_time == entry.born_time


def test_a_changed_bloom_filter_drops_the_file_and_a_bad_file_stops_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "consumerFilter.json"
    source = manager(5_000)
    assert source.register(TOPIC, GROUP, "a > 1", "SQL92", 1)
    path.write_text(ConsumerFilterFile(source, path).encode())
    other_bits = manager(6_000, BloomFilter(10, 32))
    ConsumerFilterFile(other_bits, path).load()
    assert len(other_bits) == 0

    # An expression that no longer compiles is dropped; the rest loads.
    text = path.read_text().replace('"a > 1"', '"a >"')
    path.write_text(text)
    broken = manager(6_000)
    ConsumerFilterFile(broken, path).load()
    assert len(broken) == 0

    path.write_text('{"filterDataByTopic": [1, 2]}')
    with pytest.raises(ConfigError, match=r"consumerFilter\.json"):
        ConsumerFilterFile(manager(6_000), path).load()


def test_writing_drops_entries_dead_too_long(tmp_path: Path) -> None:
    path = tmp_path / "consumerFilter.json"
    clock = [100]
    table = ConsumerFilterManager(lambda: clock[0], lambda: 1000)
    assert table.register(TOPIC, "stays", "a > 1", "SQL92", 1)
    assert table.register(TOPIC, "goes", "a > 2", "SQL92", 1)
    clock[0] = 110
    table.unregister("goes")
    clock[0] = 2100
    text = ConsumerFilterFile(table, path).encode()
    groups = fastjson.loads(text)["filterDataByTopic"][TOPIC]["groupFilterData"]
    assert list(groups) == ["stays"]
    assert table.get(TOPIC, "goes") is None
