"""BrokerStatsManager's sampling (Java's StatsItem / StatsItemSet) driven by
trio's MockClock: the 10 s / 10 min / 1 h samplings, the seeded first
snapshot, the figures over each history and the keys the message path uses."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from pyrocket.broker.statsitems import (
    BROKER_PUT_NUMS,
    GROUP_GET_LATENCY,
    GROUP_GET_NUMS,
    GROUP_GET_SIZE,
    SNDBCK_PUT_NUMS,
    TOPIC_PUT_NUMS,
    TOPIC_PUT_SIZE,
    BrokerStatsManager,
    SamplingSchedule,
    StatsItem,
    StatsItemSet,
)
from pyrocket.protocol.bodies.ops import (
    BrokerStatsData,
    BrokerStatsItem,
    CMResult,
    ConsumeMessageDirectlyResult,
    ConsumeStatsList,
)


def test_a_new_history_is_seeded_one_period_back() -> None:
    item = StatsItem(TOPIC_PUT_NUMS, "T")
    item.value, item.times = 30, 3
    item.sample_seconds(100_000)
    # Seed (90 s, 0, 0) and (100 s, 3, 30): 30 in 10 s, 10 per call.
    minute = item.in_minute()
    assert (minute.sum, minute.tps, minute.avgpt) == (30, 3.0, 10.0)


def test_the_minute_history_keeps_seven_snapshots() -> None:
    item = StatsItem(TOPIC_PUT_NUMS, "T")
    for step in range(10):
        item.value += 10
        item.times += 1
        item.sample_seconds(step * 10_000)
    # The last seven: values 40..100 at 30 s..90 s.
    minute = item.in_minute()
    assert minute.sum == 60
    assert minute.tps == pytest.approx(1.0)
    assert minute.avgpt == pytest.approx(10.0)


def test_no_snapshot_gives_zeros() -> None:
    item = StatsItem(TOPIC_PUT_NUMS, "T")
    item.value = 5
    assert (item.in_day().sum, item.in_day().tps, item.in_day().avgpt) == (0, 0.0, 0.0)


def test_schedule_runs_all_at_start_then_at_fixed_rates() -> None:
    schedule = SamplingSchedule(0)
    assert schedule.due(0) == ["sample_seconds", "sample_minutes", "sample_hour"]
    assert schedule.due(9_999) == []
    assert schedule.due(10_000) == ["sample_seconds"]
    assert schedule.next_deadline() == 20_000
    # A late wake-up runs a sampling once and keeps the fixed rate.
    assert schedule.due(35_000) == ["sample_seconds"]
    assert schedule.next_deadline() == 40_000
    assert schedule.due(600_000) == ["sample_seconds", "sample_minutes"]
    assert schedule.due(3_600_000) == ["sample_seconds", "sample_minutes", "sample_hour"]


def test_keys_of_the_message_path() -> None:
    manager = BrokerStatsManager("DefaultCluster", lambda: 0)
    manager.on_put("T", 3, 300)
    manager.on_put("T", 1, 100)
    manager.on_get("g", "T", 2, 4, 400, 7)
    manager.on_send_back("g", "T")
    put = manager.stats_item(TOPIC_PUT_NUMS, "T")
    assert put is not None and (put.value, put.times) == (4, 2)
    size = manager.stats_item(TOPIC_PUT_SIZE, "T")
    assert size is not None and size.value == 400
    broker_put = manager.stats_item(BROKER_PUT_NUMS, "DefaultCluster")
    # Java adds to the broker item's value only.
    assert broker_put is not None and (broker_put.value, broker_put.times) == (4, 0)
    nums = manager.stats_item(GROUP_GET_NUMS, "T@g")
    assert nums is not None and (nums.value, nums.times) == (4, 1)
    got_size = manager.stats_item(GROUP_GET_SIZE, "T@g")
    assert got_size is not None and got_size.value == 400
    latency = manager.stats_item(GROUP_GET_LATENCY, "2@T@g")
    assert latency is not None and latency.value == 7
    back = manager.stats_item(SNDBCK_PUT_NUMS, "T@g")
    assert back is not None and back.value == 1
    assert manager.stats_item("NO_SUCH_STATS", "T") is None
    assert manager.stats_item(TOPIC_PUT_NUMS, "other") is None


def test_counted_sends_reach_every_reader_of_the_items() -> None:
    """Sends are counted per topic and added to the items in one go when
    anything reads them: a set read directly (as the metrics do), an item
    asked for, a sampling."""
    manager = BrokerStatsManager("C", lambda: 0)
    for _ in range(5):
        manager.on_put("T", 2, 20)
    manager.on_put("U", 1, 10)
    topic_nums = manager.sets[TOPIC_PUT_NUMS]
    assert (topic_nums.items["T"].value, topic_nums.items["T"].times) == (10, 5)
    assert topic_nums.items["U"].value == 1
    assert manager.sets[BROKER_PUT_NUMS].items["C"].value == 11
    manager.on_put("T", 3, 30)
    manager.sample(["sample_seconds"], 10_000)
    item = topic_nums.items["T"]
    assert (item.value, item.times) == (13, 6)
    size = manager.stats_item(TOPIC_PUT_SIZE, "T")
    assert size is not None and (size.value, size.times) == (130, 6)


def test_a_full_set_adds_no_more_keys() -> None:
    item_set = StatsItemSet(GROUP_GET_NUMS, max_keys=2)
    for key in ("a", "b", "c"):
        item_set.add_value(key, 1, 1)
    assert sorted(item_set.items) == ["a", "b"]
    item_set.add_value("a", 1, 1)
    assert item_set.items["a"].value == 2


async def test_sampling_task_under_a_mock_clock(autojump_clock: trio.testing.MockClock) -> None:
    manager = BrokerStatsManager("C", lambda: int(trio.current_time() * 1000))
    manager.on_put("T", 1, 10)  # before the first sampling
    with trio.fail_after(24 * 3600):
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            start = trio.current_time()
            # 100 messages a second for 70 s, half a second off the samplings.
            await trio.sleep(0.5)
            manager.on_put("T", 100, 1000)
            for _ in range(69):
                await trio.sleep(1)
                manager.on_put("T", 100, 1000)
            await trio.sleep_until(start + 75)
            minute = manager.stats_item(TOPIC_PUT_NUMS, "T")
            assert minute is not None
            figures = minute.in_minute()
            # The seven snapshots span 60 s (10 s .. 70 s): 6,000 messages.
            assert figures.sum == 6000
            assert figures.tps == pytest.approx(100.0)
            assert figures.avgpt == pytest.approx(100.0)
            assert manager.tps_group_get_nums("g", "T") == 0.0
            # The hour history has its start sampling only: the zero seed
            # (600 s back) and the message put before it.
            assert minute.in_hour().sum == 1
            await trio.sleep_until(start + 600.5)
            hour = minute.in_hour()
            assert hour.sum == 7001
            assert hour.tps == pytest.approx(7001 / 1200)
            await trio.sleep_until(start + 3600.5)
            assert minute.in_day().sum == 7001
            assert minute.in_day().tps == pytest.approx(7001 / 7200)
            nursery.cancel_scope.cancel()


def test_bodies_as_fastjson_writes_them() -> None:
    item = BrokerStatsItem(avgpt=1.5, sum=30, tps=3.0)
    empty = BrokerStatsItem()
    data = BrokerStatsData(stats_day=empty, stats_hour=empty, stats_minute=item)
    assert data.encode() == (
        b'{"statsDay":{"avgpt":0.0,"sum":0,"tps":0.0},'
        b'"statsHour":{"avgpt":0.0,"sum":0,"tps":0.0},'
        b'"statsMinute":{"avgpt":1.5,"sum":30,"tps":3.0}}'
    )
    result = ConsumeMessageDirectlyResult(consume_result=CMResult.CR_SUCCESS, spent_time_mills=3)
    assert result.encode() == (
        b'{"autoCommit":true,"consumeResult":"CR_SUCCESS","order":false,"spentTimeMills":3}'
    )
    assert ConsumeStatsList(broker_addr="1.2.3.4:10911").encode() == (
        b'{"brokerAddr":"1.2.3.4:10911","consumeStatsList":[],"totalDiff":0}'
    )
