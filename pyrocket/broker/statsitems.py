"""Java's ``StatsItem`` / ``StatsItemSet`` / ``BrokerStatsManager``: the
broker's per-topic and per-group counters behind VIEW_BROKER_STATS_DATA,
GET_BROKER_CONSUME_STATS and GET_CONSUME_STATS' consume TPS.

Sans-I/O: each :class:`StatsItem` holds a running value and call count and
three short histories of snapshots, appended by the sampling calls
(``sample_seconds`` every 10 s keeping 7 snapshots, i.e. the last minute;
``sample_minutes`` every 10 minutes keeping 7, the last hour;
``sample_hour`` every hour keeping 25, the last day), each history seeded
with a zero snapshot one interval back, as Java seeds it. Figures over a
history are ``(sum, tps, avgpt)`` between its first and last snapshot.

:class:`SamplingSchedule` says which samplings are due at a given time (all
three at start, then at their fixed rates); :meth:`BrokerStatsManager.run`
drives it from the broker clock, so a test drives it with trio's MockClock.

The message path feeds the counters with a dictionary lookup and two
integer additions per call; nothing is logged or built per message.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import trio

log = logging.getLogger("pyrocket.broker.stats")

TOPIC_PUT_NUMS: Final = "TOPIC_PUT_NUMS"
TOPIC_PUT_SIZE: Final = "TOPIC_PUT_SIZE"
GROUP_GET_NUMS: Final = "GROUP_GET_NUMS"
GROUP_GET_SIZE: Final = "GROUP_GET_SIZE"
SNDBCK_PUT_NUMS: Final = "SNDBCK_PUT_NUMS"
BROKER_PUT_NUMS: Final = "BROKER_PUT_NUMS"
BROKER_GET_NUMS: Final = "BROKER_GET_NUMS"
GROUP_GET_FROM_DISK_NUMS: Final = "GROUP_GET_FROM_DISK_NUMS"
GROUP_GET_FROM_DISK_SIZE: Final = "GROUP_GET_FROM_DISK_SIZE"
BROKER_GET_FROM_DISK_NUMS: Final = "BROKER_GET_FROM_DISK_NUMS"
BROKER_GET_FROM_DISK_SIZE: Final = "BROKER_GET_FROM_DISK_SIZE"
GROUP_GET_LATENCY: Final = "GROUP_GET_LATENCY"
COMMERCIAL_SEND_TIMES: Final = "COMMERCIAL_SEND_TIMES"
COMMERCIAL_SNDBCK_TIMES: Final = "COMMERCIAL_SNDBCK_TIMES"
COMMERCIAL_RCV_TIMES: Final = "COMMERCIAL_RCV_TIMES"
COMMERCIAL_RCV_EPOLLS: Final = "COMMERCIAL_RCV_EPOLLS"
COMMERCIAL_SEND_SIZE: Final = "COMMERCIAL_SEND_SIZE"
COMMERCIAL_RCV_SIZE: Final = "COMMERCIAL_RCV_SIZE"
COMMERCIAL_PERM_FAILURES: Final = "COMMERCIAL_PERM_FAILURES"

#: Every item set BrokerStatsManager keeps (VIEW_BROKER_STATS_DATA names).
STATS_NAMES: Final = (
    TOPIC_PUT_NUMS,
    TOPIC_PUT_SIZE,
    GROUP_GET_NUMS,
    GROUP_GET_SIZE,
    GROUP_GET_LATENCY,
    SNDBCK_PUT_NUMS,
    BROKER_PUT_NUMS,
    BROKER_GET_NUMS,
    GROUP_GET_FROM_DISK_NUMS,
    GROUP_GET_FROM_DISK_SIZE,
    BROKER_GET_FROM_DISK_NUMS,
    BROKER_GET_FROM_DISK_SIZE,
    COMMERCIAL_SEND_TIMES,
    COMMERCIAL_RCV_TIMES,
    COMMERCIAL_SEND_SIZE,
    COMMERCIAL_RCV_SIZE,
    COMMERCIAL_RCV_EPOLLS,
    COMMERCIAL_SNDBCK_TIMES,
    COMMERCIAL_PERM_FAILURES,
)

#: Sampling periods (ms) and how many snapshots each history keeps.
SECONDS_PERIOD_MS: Final = 10_000
MINUTES_PERIOD_MS: Final = 10 * 60_000
HOUR_PERIOD_MS: Final = 3_600_000
_MINUTE_KEEP: Final = 7
_HOUR_KEEP: Final = 7
_DAY_KEEP: Final = 25

#: Most keys one item set tracks. Keys come from peers (group names of
#: pulls); Java grows without bound, pyrocket stops adding keys here.
MAX_KEYS_PER_SET: Final = 100_000


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """Figures over one history: the value added, per second, per call."""

    sum: int = 0
    tps: float = 0.0
    avgpt: float = 0.0


@dataclass(frozen=True, slots=True)
class _CallSnapshot:
    timestamp: int
    times: int
    value: int


def _compute(history: collections.deque[_CallSnapshot]) -> StatsSnapshot:
    if not history:
        return StatsSnapshot()
    first, last = history[0], history[-1]
    total = last.value - first.value
    span = last.timestamp - first.timestamp
    # Java divides by a zero span too (NaN or Infinity); a span of zero
    # means one snapshot only, so nothing happened between two.
    tps = total * 1000.0 / span if span > 0 else 0.0
    times = last.times - first.times
    avgpt = total / times if times > 0 else 0.0
    return StatsSnapshot(total, tps, avgpt)


class StatsItem:
    """One key's counters (``value``, ``times``) and snapshot histories."""

    __slots__ = ("_day", "_hour", "_minute", "key", "name", "times", "value")

    def __init__(self, name: str, key: str) -> None:
        self.name = name
        self.key = key
        self.value = 0
        self.times = 0
        self._minute: collections.deque[_CallSnapshot] = collections.deque(maxlen=_MINUTE_KEEP)
        self._hour: collections.deque[_CallSnapshot] = collections.deque(maxlen=_HOUR_KEEP)
        self._day: collections.deque[_CallSnapshot] = collections.deque(maxlen=_DAY_KEEP)

    def _sample(
        self, history: collections.deque[_CallSnapshot], now_ms: int, period_ms: int
    ) -> None:
        if not history:
            history.append(_CallSnapshot(now_ms - period_ms, 0, 0))
        history.append(_CallSnapshot(now_ms, self.times, self.value))

    def sample_seconds(self, now_ms: int) -> None:
        self._sample(self._minute, now_ms, SECONDS_PERIOD_MS)

    def sample_minutes(self, now_ms: int) -> None:
        self._sample(self._hour, now_ms, MINUTES_PERIOD_MS)

    def sample_hour(self, now_ms: int) -> None:
        self._sample(self._day, now_ms, HOUR_PERIOD_MS)

    def in_minute(self) -> StatsSnapshot:
        return _compute(self._minute)

    def in_hour(self) -> StatsSnapshot:
        return _compute(self._hour)

    def in_day(self) -> StatsSnapshot:
        return _compute(self._day)


class StatsItemSet:
    """The items of one statistic, by key."""

    def __init__(self, name: str, max_keys: int = MAX_KEYS_PER_SET) -> None:
        self.name = name
        self.items: dict[str, StatsItem] = {}
        self.max_keys = max_keys
        self._full_logged = False

    def item(self, key: str) -> StatsItem | None:
        """The item of ``key``, created if new (None once the set is full)."""
        found = self.items.get(key)
        if found is None:
            if len(self.items) >= self.max_keys:
                if not self._full_logged:
                    log.warning("%s tracks %d keys; not adding %s", self.name, self.max_keys, key)
                    self._full_logged = True
                return None
            found = self.items[key] = StatsItem(self.name, key)
        return found

    def add_value(self, key: str, value: int, times: int) -> None:
        found = self.items.get(key) or self.item(key)
        if found is not None:
            found.value += value
            found.times += times

    def remove(self, key: str) -> None:
        self.items.pop(key, None)

    def in_minute(self, key: str) -> StatsSnapshot:
        found = self.items.get(key)
        return found.in_minute() if found is not None else StatsSnapshot()

    def sample_seconds(self, now_ms: int) -> None:
        for found in list(self.items.values()):
            found.sample_seconds(now_ms)

    def sample_minutes(self, now_ms: int) -> None:
        for found in list(self.items.values()):
            found.sample_minutes(now_ms)

    def sample_hour(self, now_ms: int) -> None:
        for found in list(self.items.values()):
            found.sample_hour(now_ms)


class SamplingSchedule:
    """When each sampling is next due (Java's three fixed-rate tasks, all
    first run at start)."""

    PERIODS: Final = (
        ("sample_seconds", SECONDS_PERIOD_MS),
        ("sample_minutes", MINUTES_PERIOD_MS),
        ("sample_hour", HOUR_PERIOD_MS),
    )

    def __init__(self, start_ms: int) -> None:
        self.next_due = {name: start_ms for name, _ in self.PERIODS}

    def due(self, now_ms: int) -> list[str]:
        """The samplings due at ``now_ms`` (each advanced by its period)."""
        names = []
        for name, period in self.PERIODS:
            if now_ms >= self.next_due[name]:
                names.append(name)
                # Fixed rate: a late run does not move the next one.
                while self.next_due[name] <= now_ms:
                    self.next_due[name] += period
        return names

    def next_deadline(self) -> int:
        return min(self.next_due.values())


def stats_key(topic: str, group: str) -> str:
    """``buildStatsKey``: ``topic@group``."""
    return f"{topic}@{group}"


class BrokerStatsManager:
    """Java's BrokerStatsManager: every item set by name, the message
    path's increments and the sampling task."""

    def __init__(self, cluster_name: str, now_ms: Callable[[], int]) -> None:
        self.cluster_name = cluster_name
        self._now_ms = now_ms
        self._sets = {name: StatsItemSet(name) for name in STATS_NAMES}
        self._topic_put_nums = self._sets[TOPIC_PUT_NUMS]
        self._topic_put_size = self._sets[TOPIC_PUT_SIZE]
        self._group_get_nums = self._sets[GROUP_GET_NUMS]
        self._group_get_size = self._sets[GROUP_GET_SIZE]
        self._group_get_latency = self._sets[GROUP_GET_LATENCY]
        self._send_back = self._sets[SNDBCK_PUT_NUMS]
        self._broker_put = self._sets[BROKER_PUT_NUMS]
        self._broker_get = self._sets[BROKER_GET_NUMS]
        #: Sends counted but not yet added to their items, per topic:
        #: [messages, bytes, puts]; added whenever the items are read.
        self._pending_puts: dict[str, list[int]] = {}
        self._pending_broker_puts = 0

    @property
    def sets(self) -> dict[str, StatsItemSet]:
        """Every item set by name, with all counted sends in it."""
        self._add_pending_puts()
        return self._sets

    def stats_item(self, name: str, key: str) -> StatsItem | None:
        """``getStatsItem``: None for an unknown name or key."""
        found = self.sets.get(name)
        return found.items.get(key) if found is not None else None

    # -- what the message path reports ------------------------------------

    def on_put(self, topic: str, msg_num: int, wrote_bytes: int) -> None:
        """A stored send: TOPIC_PUT_NUMS, TOPIC_PUT_SIZE and BROKER_PUT_NUMS
        (counted here, added to the items when they are next read)."""
        pending = self._pending_puts.get(topic)
        if pending is None:
            self._pending_puts[topic] = [msg_num, wrote_bytes, 1]
        else:
            pending[0] += msg_num
            pending[1] += wrote_bytes
            pending[2] += 1
        self._pending_broker_puts += msg_num

    def _add_pending_puts(self) -> None:
        pending = self._pending_puts
        if not pending:
            return
        self._pending_puts = {}
        for topic, (nums, size, times) in pending.items():
            self._topic_put_nums.add_value(topic, nums, times)
            self._topic_put_size.add_value(topic, size, times)
        # Java adds to the broker item's value only, never to its times.
        self._broker_put.add_value(self.cluster_name, self._pending_broker_puts, 0)
        self._pending_broker_puts = 0

    def on_get(
        self, group: str, topic: str, queue_id: int, count: int, size: int, latency_ms: int
    ) -> None:
        """A successful pull: GROUP_GET_NUMS, GROUP_GET_SIZE, BROKER_GET_NUMS
        and GROUP_GET_LATENCY (``queueId@topic@group``)."""
        key = f"{topic}@{group}"
        self._group_get_nums.add_value(key, count, 1)
        self._group_get_size.add_value(key, size, 1)
        self._broker_get.add_value(self.cluster_name, count, 0)
        self._group_get_latency.add_value(f"{queue_id}@{key}", latency_ms, 1)

    def on_send_back(self, group: str, topic: str) -> None:
        """A message given back by a consumer: SNDBCK_PUT_NUMS."""
        self._send_back.add_value(f"{topic}@{group}", 1, 1)

    def tps_group_get_nums(self, group: str, topic: str) -> float:
        """``tpsGroupGetNums``: the group's pulled messages per second over
        the last minute."""
        return self._group_get_nums.in_minute(stats_key(topic, group)).tps

    # -- sampling -----------------------------------------------------------

    def sample(self, names: list[str], now_ms: int) -> None:
        """Run the named samplings (see :class:`SamplingSchedule`) on every set."""
        for item_set in self.sets.values():
            for name in names:
                getattr(item_set, name)(now_ms)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Sample at Java's rates until cancelled (first samplings now)."""
        schedule = SamplingSchedule(self._now_ms())
        self.sample(schedule.due(self._now_ms()), self._now_ms())
        task_status.started()
        while True:
            wait_ms = schedule.next_deadline() - self._now_ms()
            await trio.sleep(max(wait_ms, 1) / 1000)
            now = self._now_ms()
            due = schedule.due(now)
            if due:
                self.sample(due, now)


__all__ = [
    "BROKER_GET_NUMS",
    "BROKER_PUT_NUMS",
    "GROUP_GET_LATENCY",
    "GROUP_GET_NUMS",
    "GROUP_GET_SIZE",
    "SNDBCK_PUT_NUMS",
    "STATS_NAMES",
    "TOPIC_PUT_NUMS",
    "TOPIC_PUT_SIZE",
    "BrokerStatsManager",
    "SamplingSchedule",
    "StatsItem",
    "StatsItemSet",
    "StatsSnapshot",
    "stats_key",
]
