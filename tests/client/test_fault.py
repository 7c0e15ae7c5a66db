"""The latency fault strategy (Java's MQFaultStrategy and
LatencyFaultToleranceImpl) with a clock moved by hand."""

from __future__ import annotations

import random

import pytest

from pyrocket.client.fault import (
    LATENCY_MAX,
    NOT_AVAILABLE_DURATION,
    FaultStrategy,
    LatencyFaultTolerance,
    TopicPublishInfo,
)
from pyrocket.protocol.bodies.client import MessageQueue

TOPIC = "FaultTopic"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def info(brokers: list[str], queues: int = 2, start: int = 0) -> TopicPublishInfo:
    return TopicPublishInfo(
        [MessageQueue(TOPIC, b, q) for b in brokers for q in range(queues)], start
    )


def test_java_tables_and_duration_lookup() -> None:
    assert LATENCY_MAX == (50, 100, 550, 1000, 2000, 3000, 15000)
    assert NOT_AVAILABLE_DURATION == (0, 0, 30000, 60000, 120000, 180000, 600000)
    strategy = FaultStrategy(True)
    cases = {0: 0, 49: 0, 100: 0, 549: 0, 550: 30000, 999: 30000, 1000: 60000}
    cases |= {2500: 120000, 3000: 180000, 14999: 180000, 15000: 600000, 10**9: 600000}
    for latency, duration in cases.items():
        assert strategy.compute_not_available_duration(latency) == duration, latency
    with pytest.raises(ValueError, match="differ in length"):
        FaultStrategy(True, latency_max=(1, 2), not_available_duration=(1,))


def test_tolerance_marks_and_releases_with_time() -> None:
    clock = Clock()
    tolerance = LatencyFaultTolerance(clock, random.Random(1))
    assert tolerance.is_available("a") and tolerance.pick_one_at_least() is None
    tolerance.update_fault_item("a", 600, 30000)
    assert not tolerance.is_available("a") and tolerance.is_available("b")
    clock.now += 29999
    assert not tolerance.is_available("a")
    clock.now += 1
    assert tolerance.is_available("a")
    tolerance.remove("a")
    assert len(tolerance) == 0


def test_pick_one_at_least_prefers_available_then_low_latency() -> None:
    clock = Clock()
    tolerance = LatencyFaultTolerance(clock, random.Random(7))
    tolerance.update_fault_item("slow-ok", 900, 0)  # available, slow
    tolerance.update_fault_item("fast-ok", 10, 0)  # available, fast
    tolerance.update_fault_item("down-1", 5, 60000)
    tolerance.update_fault_item("down-2", 1, 60000)
    # Four items: the better half is the two available ones, taken in turn.
    picks = {tolerance.pick_one_at_least() for _ in range(10)}
    assert picks == {"fast-ok", "slow-ok"}
    single = LatencyFaultTolerance(clock)
    single.update_fault_item("only", 10, 60000)
    assert single.pick_one_at_least() == "only"


def test_disabled_strategy_is_round_robin_avoiding_last_broker() -> None:
    strategy = FaultStrategy(False)
    publish = info(["a", "b"])
    strategy.update_fault_item("a", 99999, True)  # ignored when off
    assert len(strategy.tolerance) == 0
    picked = [strategy.select_one_message_queue(publish) for _ in range(4)]
    assert [q.broker_name for q in picked].count("a") == 2
    for _ in range(5):
        assert strategy.select_one_message_queue(publish, "a").broker_name == "b"


def test_enabled_strategy_avoids_an_isolated_broker_until_its_time_is_up() -> None:
    clock = Clock()
    strategy = FaultStrategy(True, clock=clock, rng=random.Random(3))
    publish = info(["a", "b", "c"])
    strategy.update_fault_item("b", 20, True)  # failed: 30 s latency, 600 s aside
    strategy.update_fault_item("a", 20, False)  # fast: stays available
    chosen = [strategy.select_one_message_queue(publish).broker_name for _ in range(30)]
    assert "b" not in chosen and {"a", "c"} == set(chosen)
    # A retry after a failure on "a" goes elsewhere, and never to "b".
    for _ in range(10):
        assert strategy.select_one_message_queue(publish, "a").broker_name == "c"
    clock.now += 600_000
    chosen = [strategy.select_one_message_queue(publish).broker_name for _ in range(30)]
    assert "b" in chosen


def test_slow_answers_put_a_broker_aside_for_the_table_duration() -> None:
    clock = Clock()
    strategy = FaultStrategy(True, clock=clock)
    publish = info(["a", "b"])
    strategy.update_fault_item("a", 1200, False)  # >= 1000 ms: 60 s aside
    assert {strategy.select_one_message_queue(publish).broker_name for _ in range(8)} == {"b"}
    clock.now += 59_999
    assert {strategy.select_one_message_queue(publish).broker_name for _ in range(8)} == {"b"}
    clock.now += 1
    assert {strategy.select_one_message_queue(publish).broker_name for _ in range(8)} == {
        "a",
        "b",
    }


def test_all_brokers_down_falls_back_to_the_least_bad_one() -> None:
    clock = Clock()
    strategy = FaultStrategy(True, clock=clock, rng=random.Random(5))
    publish = info(["a", "b"], queues=3)
    strategy.update_fault_item("a", 700, False)  # 30 s aside, lower latency
    strategy.update_fault_item("b", 2500, False)  # 120 s aside
    # Two items, half is one: the better item ("a", lower latency) each time.
    for _ in range(6):
        queue = strategy.select_one_message_queue(publish)
        assert queue.broker_name == "a" and 0 <= queue.queue_id < 3 and queue.topic == TOPIC
    # A broker with fault items but no queue in this topic is dropped.
    strategy.tolerance.remove("a")
    strategy.tolerance.remove("b")
    strategy.update_fault_item("gone", 2500, False)
    other = info(["a"])
    queue = strategy.select_one_message_queue(other, "a")
    assert queue.broker_name == "a"
    assert len(strategy.tolerance) == 0  # "gone" has no queue of the topic: dropped
    strategy.update_fault_item("a", 700, False)
    queue = strategy.select_one_message_queue(other)
    assert queue.broker_name == "a"
