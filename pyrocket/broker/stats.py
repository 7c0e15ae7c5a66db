"""Put and get statistics behind GET_BROKER_RUNTIME_INFO (Java's
``StoreStatsService`` and ``BrokerStats``).

The message path reports each put (:meth:`StoreStats.record_put`) and each
get (:meth:`StoreStats.record_get`); :meth:`StoreStats.run` samples the
counters every second so that TPS over the last 10, 60 and 600 seconds can be
given, and records the day's totals at midnight for ``msgPutTotal*Morning``.
:meth:`StoreStats.runtime_info` renders the entries Java puts in the runtime
table, formatted as Java formats them.
"""

from __future__ import annotations

import collections
import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

import trio

from pyrocket.protocol.fastjson import java_double

#: StoreStatsService's sampling interval (s) and history length (samples).
SAMPLING_INTERVAL: Final = 1.0
MAX_SAMPLES: Final = 60 * 10

PUT_TIME_BUCKETS: Final = (
    "[<=0ms]",
    "[0~10ms]",
    "[10~50ms]",
    "[50~100ms]",
    "[100~200ms]",
    "[200~500ms]",
    "[500ms~1s]",
    "[1~2s]",
    "[2~3s]",
    "[3~4s]",
    "[4~5s]",
    "[5~10s]",
    "[10s~]",
)
_BUCKET_LIMITS: Final = (0, 10, 50, 100, 200, 500, 1000, 2000, 3000, 4000, 5000, 10000)


def put_time_bucket(elapsed_ms: int) -> int:
    """The index of the put-latency bucket ``elapsed_ms`` falls in."""
    if elapsed_ms <= 0:
        return 0
    for index, limit in enumerate(_BUCKET_LIMITS[1:], start=1):
        if elapsed_ms < limit:
            return index
    return len(_BUCKET_LIMITS)


def format_runtime(elapsed_ms: int) -> str:
    """``getFormatRuntime``: ``[ 0 days, 0 hours, 0 minutes, 8 seconds ]``."""
    days, rest = divmod(max(0, elapsed_ms), 24 * 3600 * 1000)
    hours, rest = divmod(rest, 3600 * 1000)
    minutes, rest = divmod(rest, 60 * 1000)
    return f"[ {_group(days)} days, {hours} hours, {minutes} minutes, {rest // 1000} seconds ]"


def _group(number: int) -> str:
    # MessageFormat groups thousands: "1,234".
    return f"{number:,}"


@dataclass(frozen=True, slots=True)
class _Snapshot:
    timestamp_ms: int
    total: int


def _tps(history: collections.deque[_Snapshot], window: int) -> float | None:
    if len(history) <= window:
        return None
    begin, end = history[-(window + 1)], history[-1]
    span = end.timestamp_ms - begin.timestamp_ms
    if span <= 0:
        return None  # a clock that stood still: no rate to give
    return (end.total - begin.total) / span * 1000


def _tps_text(value: float | None) -> str:
    return "" if value is None else java_double(value)


class StoreStats:
    """Counters of the message path and their per-second samples."""

    def __init__(self, now_ms: Callable[[], int] | None = None) -> None:
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self.boot_timestamp = self._now_ms()
        self.put_times_by_topic: dict[str, int] = {}
        self.put_size_by_topic: dict[str, int] = {}
        self.put_failed_times = 0
        self.put_message_entire_time_max = 0
        self.get_message_entire_time_max = 0
        self.dispatch_max_buffer = 0
        self.get_times_found = 0
        self.get_times_miss = 0
        self.get_transferred_msg_count = 0
        self.put_time_distribution = [0] * len(PUT_TIME_BUCKETS)
        self._put_history: collections.deque[_Snapshot] = collections.deque(maxlen=MAX_SAMPLES + 1)
        self._found_history: collections.deque[_Snapshot] = collections.deque(
            maxlen=MAX_SAMPLES + 1
        )
        self._miss_history: collections.deque[_Snapshot] = collections.deque(maxlen=MAX_SAMPLES + 1)
        self._transferred_history: collections.deque[_Snapshot] = collections.deque(
            maxlen=MAX_SAMPLES + 1
        )
        # BrokerStats: totals recorded at the last two midnights.
        self.msg_put_total_yesterday_morning = 0
        self.msg_put_total_today_morning = 0
        self.msg_get_total_yesterday_morning = 0
        self.msg_get_total_today_morning = 0

    # -- what the message path reports ------------------------------------

    def record_put(
        self, topic: str, *, wrote_bytes: int, elapsed_ms: int, ok: bool, msg_num: int = 1
    ) -> None:
        """One put (a message or a batch of ``msg_num``): its topic, stored
        bytes, the time it took and whether it was stored."""
        self.put_time_distribution[put_time_bucket(elapsed_ms)] += 1
        self.put_message_entire_time_max = max(self.put_message_entire_time_max, elapsed_ms)
        if not ok:
            self.put_failed_times += 1
            return
        self.put_times_by_topic[topic] = self.put_times_by_topic.get(topic, 0) + msg_num
        self.put_size_by_topic[topic] = self.put_size_by_topic.get(topic, 0) + wrote_bytes

    def record_get(self, *, found: bool, transferred: int, elapsed_ms: int) -> None:
        """One get: whether messages were found, how many went out, its time."""
        if found:
            self.get_times_found += 1
        else:
            self.get_times_miss += 1
        self.get_transferred_msg_count += transferred
        self.get_message_entire_time_max = max(self.get_message_entire_time_max, elapsed_ms)

    @property
    def put_message_times_total(self) -> int:
        return sum(self.put_times_by_topic.values())

    @property
    def put_message_size_total(self) -> int:
        return sum(self.put_size_by_topic.values())

    # -- sampling -----------------------------------------------------------

    def sample(self) -> None:
        """Take one sample of every counter (Java does it every second)."""
        now = self._now_ms()
        self._put_history.append(_Snapshot(now, self.put_message_times_total))
        self._found_history.append(_Snapshot(now, self.get_times_found))
        self._miss_history.append(_Snapshot(now, self.get_times_miss))
        self._transferred_history.append(_Snapshot(now, self.get_transferred_msg_count))

    def record_morning(self) -> None:
        """``BrokerStats.record``: shift today's totals to yesterday's."""
        self.msg_put_total_yesterday_morning = self.msg_put_total_today_morning
        self.msg_get_total_yesterday_morning = self.msg_get_total_today_morning
        self.msg_put_total_today_morning = self.put_message_times_total
        self.msg_get_total_today_morning = self.get_transferred_msg_count

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Sample every second and record totals at each local midnight."""
        self.sample()
        task_status.started()
        next_morning = _next_morning_ms(self._now_ms())
        while True:
            await trio.sleep(SAMPLING_INTERVAL)
            self.sample()
            if self._now_ms() >= next_morning:
                self.record_morning()
                next_morning = _next_morning_ms(self._now_ms())

    # -- reporting ----------------------------------------------------------

    def _window_text(self, history: collections.deque[_Snapshot]) -> str:
        return " ".join(_tps_text(_tps(history, window)) for window in (10, 60, 600))

    def _total_tps_text(self) -> str:
        parts = []
        for window in (10, 60, 600):
            found = _tps(self._found_history, window) or 0.0
            miss = _tps(self._miss_history, window) or 0.0
            parts.append(java_double(found + miss))
        return " ".join(parts)

    def runtime_info(self) -> dict[str, str]:
        """StoreStatsService's runtime entries, in Java's insertion order."""
        total = self.put_message_times_total or 1
        size_total = self.put_message_size_total
        distribution = "".join(
            f"{name}:{count} "
            for name, count in zip(PUT_TIME_BUCKETS, self.put_time_distribution, strict=True)
        )
        return {
            "bootTimestamp": str(self.boot_timestamp),
            "runtime": format_runtime(self._now_ms() - self.boot_timestamp),
            "putMessageEntireTimeMax": str(self.put_message_entire_time_max),
            "putMessageTimesTotal": str(total),
            "putMessageSizeTotal": str(size_total),
            "putMessageDistributeTime": distribution,
            "putMessageAverageSize": java_double(size_total / total),
            "dispatchMaxBuffer": str(self.dispatch_max_buffer),
            "getMessageEntireTimeMax": str(self.get_message_entire_time_max),
            "putTps": self._window_text(self._put_history),
            "getFoundTps": self._window_text(self._found_history),
            "getMissTps": self._window_text(self._miss_history),
            "getTotalTps": self._total_tps_text(),
            "getTransferedTps": self._window_text(self._transferred_history),
        }

    def broker_stats(self) -> dict[str, str]:
        """BrokerStats' entries: message totals at the last midnights and now."""
        return {
            "msgPutTotalYesterdayMorning": str(self.msg_put_total_yesterday_morning),
            "msgPutTotalTodayMorning": str(self.msg_put_total_today_morning),
            "msgPutTotalTodayNow": str(self.put_message_times_total),
            "msgGetTotalYesterdayMorning": str(self.msg_get_total_yesterday_morning),
            "msgGetTotalTodayMorning": str(self.msg_get_total_today_morning),
            "msgGetTotalTodayNow": str(self.get_transferred_msg_count),
        }


def _next_morning_ms(now_ms: int) -> int:
    """``UtilAll.computeNextMorningTimeMillis``: the next local midnight."""
    now = datetime.datetime.fromtimestamp(now_ms / 1000).astimezone()
    midnight = (now + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp() * 1000)


def human_readable_byte_count(size: int, si: bool = False) -> str:
    """``MixAll.humanReadableByteCount``: ``965 B``, ``252.0 GiB``."""
    unit = 1000 if si else 1024
    if size < unit:
        return f"{size} B"
    exponent = 0
    value = float(size)
    while value >= unit and exponent < 6:
        value /= unit
        exponent += 1
    # Java picks the exponent by int(log(bytes)/log(unit)); the loop agrees.
    prefix = ("kMGTPE" if si else "KMGTPE")[exponent - 1] + ("" if si else "i")
    return f"{_half_up_one_decimal(size / unit**exponent)} {prefix}B"


def _half_up_one_decimal(value: float) -> str:
    # String.format("%.1f") rounds HALF_UP on the decimal expansion.
    return str(Decimal(value).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


__all__ = [
    "PUT_TIME_BUCKETS",
    "StoreStats",
    "format_runtime",
    "human_readable_byte_count",
    "put_time_bucket",
]
