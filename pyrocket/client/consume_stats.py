"""A push consumer's pull and consume figures (Java's ``ConsumerStatsManager``
over ``StatsItemSet``), as GET_CONSUMER_RUNNING_INFO reports them per topic
in ``ConsumeStatus``.

Five counters per topic, each a running total of values and of calls:

* PULL_RT: the round trip of each pull the broker answered FOUND (ms, one
  call per pull); PULL_TPS: the messages such a pull brought (one call per
  pull that brought any);
* CONSUME_RT: the time a consumption took (ms, one call per consumption);
  CONSUME_OK_TPS / CONSUME_FAILED_TPS: the messages it consumed or failed.

Recording is two integer additions; nothing is allocated per message. A
sampling task (:meth:`ConsumerStats.run`, in the client instance's nursery)
snapshots every counter every 10 s, keeping the last 7 snapshots (the
"minute" window), and every 10 minutes, keeping 7 (the "hour" window), as
``StatsItem.samplingInSeconds`` / ``samplingInMinutes`` do; a counter's
first snapshot is preceded by a zero one dated one interval earlier. A
window's figures are those of its first and last snapshots: ``sum`` (value
difference), ``tps`` (sum per second between them) and ``avgpt`` (sum per
call). So, as in Java, a figure appears only after the next sample.

:meth:`ConsumerStats.status` builds ``ConsumeStatus``: pullRT and pullTPS,
consumeOKTPS and consumeFailedTPS from the minute window; consumeRT from the
minute window, else the hour window when nothing was consumed in the last
minute; consumeFailedMsgs the hour window's failed sum.

Any consumption path calls :meth:`~ConsumerStats.consumed` and
:meth:`~ConsumerStats.failed` (a handler: once per call, with its duration;
the async iterator: see :mod:`pyrocket.client.delivery`) and the pull path
:meth:`~ConsumerStats.pulled`. Topics are the queues' topics (a retry
queue's messages count under ``%RETRY%<group>``), as Java keys them.
"""

from __future__ import annotations

import time
from collections import deque
from typing import NoReturn

import trio

from pyrocket.client.instance import RETRY_GROUP_TOPIC_PREFIX
from pyrocket.protocol.bodies.admin import ConsumeStatus
from pyrocket.protocol.message import MessageConst, MessageExt


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def queue_topic_of(message: MessageExt, group: str) -> str:
    """The topic of the queue ``message`` was pulled from, as the figures
    are keyed: a message of ``group``'s retry queue is handed out under its
    original topic, but counts under ``%RETRY%<group>``."""
    if MessageConst.PROPERTY_RETRY_TOPIC in message.properties:
        return RETRY_GROUP_TOPIC_PREFIX + group
    return message.topic


class Window:
    """A window's figures (Java's ``StatsSnapshot``)."""

    __slots__ = ("avgpt", "sum", "tps")

    def __init__(self, total: int, tps: float, avgpt: float) -> None:
        self.sum = total
        self.tps = tps
        self.avgpt = avgpt


class StatsItem:
    """One counter of one topic and its two windows of snapshots."""

    __slots__ = ("hour", "minute", "times", "value")

    def __init__(self) -> None:
        self.value = 0
        self.times = 0
        #: (timestamp ms, times, value)
        self.minute: deque[tuple[int, int, int]] = deque(maxlen=7)
        self.hour: deque[tuple[int, int, int]] = deque(maxlen=7)

    def add(self, value: int, times: int = 1) -> None:
        self.value += value
        self.times += times

    def sample(self, window: deque[tuple[int, int, int]], interval: float, now: int) -> None:
        if not window:
            window.append((now - int(interval * 1000), 0, 0))
        window.append((now, self.times, self.value))

    @staticmethod
    def figures(window: deque[tuple[int, int, int]]) -> Window:
        """``computeStatsData``."""
        if not window:
            return Window(0, 0.0, 0.0)
        first_ts, first_times, first_value = window[0]
        last_ts, last_times, last_value = window[-1]
        total = last_value - first_value
        span = last_ts - first_ts
        tps = total * 1000.0 / span if span > 0 else 0.0
        calls = last_times - first_times
        return Window(total, tps, total / calls if calls > 0 else 0.0)


class _TopicStats:
    __slots__ = ("consume_failed", "consume_ok", "consume_rt", "pull_rt", "pull_tps")

    def __init__(self) -> None:
        self.pull_rt = StatsItem()
        self.pull_tps = StatsItem()
        self.consume_rt = StatsItem()
        self.consume_ok = StatsItem()
        self.consume_failed = StatsItem()

    def items(self) -> tuple[StatsItem, ...]:
        return (self.pull_rt, self.pull_tps, self.consume_rt, self.consume_ok, self.consume_failed)


class ConsumerStats:
    """The figures of one consumer, per topic; see the module."""

    def __init__(self, *, minute_sampling: float = 10.0, hour_sampling: float = 600.0) -> None:
        #: Seconds between the snapshots of the minute and hour windows
        #: (Java's 10 s and 10 min); read when :meth:`run` starts.
        self.minute_sampling = minute_sampling
        self.hour_sampling = hour_sampling
        self._topics: dict[str, _TopicStats] = {}

    def _of(self, topic: str) -> _TopicStats:
        found = self._topics.get(topic)
        if found is None:
            found = self._topics[topic] = _TopicStats()
        return found

    def pulled(self, topic: str, rt_ms: int, count: int) -> None:
        """A pull of ``topic`` answered FOUND after ``rt_ms``, bringing
        ``count`` messages to consume (``incPullRT``, and ``incPullTPS``
        when ``count`` > 0)."""
        stats = self._of(topic)
        stats.pull_rt.add(rt_ms)
        if count > 0:
            stats.pull_tps.add(count)

    def consumed(self, topic: str, rt_ms: int, ok_count: int) -> None:
        """One consumption of ``topic``'s messages took ``rt_ms`` and
        consumed ``ok_count`` of them (``incConsumeRT``,
        ``incConsumeOKTPS``)."""
        stats = self._of(topic)
        stats.consume_rt.add(rt_ms)
        stats.consume_ok.add(ok_count)

    def failed(self, topic: str, count: int) -> None:
        """``count`` messages of ``topic`` failed (``incConsumeFailedTPS``)."""
        self._of(topic).consume_failed.add(count)

    def sample_minute(self) -> None:
        """Snapshot every counter into its minute window (every 10 s)."""
        now = _now_ms()
        for stats in self._topics.values():
            for item in stats.items():
                item.sample(item.minute, self.minute_sampling, now)

    def sample_hour(self) -> None:
        """Snapshot every counter into its hour window (every 10 min)."""
        now = _now_ms()
        for stats in self._topics.values():
            for item in stats.items():
                item.sample(item.hour, self.hour_sampling, now)

    def status(self, topic: str) -> ConsumeStatus:
        """``consumeStatus(group, topic)``: zeros for a topic never seen."""
        stats = self._topics.get(topic)
        if stats is None:
            return ConsumeStatus()
        figures = StatsItem.figures
        consume_rt = figures(stats.consume_rt.minute)
        if consume_rt.sum == 0:
            consume_rt = figures(stats.consume_rt.hour)
        return ConsumeStatus(
            consume_failed_msgs=figures(stats.consume_failed.hour).sum,
            consume_failed_tps=figures(stats.consume_failed.minute).tps,
            consume_ok_tps=figures(stats.consume_ok.minute).tps,
            consume_rt=consume_rt.avgpt,
            pull_rt=figures(stats.pull_rt.minute).avgpt,
            pull_tps=figures(stats.pull_tps.minute).tps,
        )

    async def run(self) -> NoReturn:
        """The sampling task: both windows at once (as Java's first runs
        are), then each on its own interval, until cancelled."""
        minute, hour = self.minute_sampling, self.hour_sampling
        next_minute = next_hour = trio.current_time()
        while True:
            now = trio.current_time()
            if now >= next_minute:
                self.sample_minute()
                next_minute += minute
            if now >= next_hour:
                self.sample_hour()
                next_hour += hour
            await trio.sleep_until(min(next_minute, next_hour))


class HandlerStats:
    """The consume services' statistics hook (one call per handled batch)
    on a consumer's :class:`ConsumerStats`: the batch's RT and OK count, and
    its failures, under the topic its queue counts under."""

    __slots__ = ("_stats",)

    def __init__(self, stats: ConsumerStats) -> None:
        self._stats = stats

    def consumed(self, topic: str, ok: int, failed: int, rt_ms: float) -> None:
        self._stats.consumed(topic, int(rt_ms), ok)
        if failed:
            self._stats.failed(topic, failed)


__all__ = ["ConsumerStats", "HandlerStats", "StatsItem", "Window", "queue_topic_of"]
