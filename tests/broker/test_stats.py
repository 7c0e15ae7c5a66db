"""GET_BROKER_RUNTIME_INFO's statistics, formatted as Java formats them."""

from __future__ import annotations

from pyrocket.broker.stats import (
    StoreStats,
    format_runtime,
    human_readable_byte_count,
    put_time_bucket,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def test_buckets_runtime_and_sizes() -> None:
    assert [put_time_bucket(ms) for ms in (-1, 0, 1, 9, 10, 49, 999, 1000, 9999, 10000)] == [
        0, 0, 1, 1, 2, 2, 6, 7, 11, 12,
    ]  # fmt: skip
    assert format_runtime(8_500) == "[ 0 days, 0 hours, 0 minutes, 8 seconds ]"
    day = 24 * 3600 * 1000
    assert format_runtime(1234 * day + 3_723_000) == "[ 1,234 days, 1 hours, 2 minutes, 3 seconds ]"
    assert human_readable_byte_count(965) == "965 B"
    assert human_readable_byte_count(1024) == "1.0 KiB"
    assert human_readable_byte_count(270_582_939_648) == "252.0 GiB"
    assert human_readable_byte_count(1536 * 1024) == "1.5 MiB"
    # Java's %.1f rounds half up.
    assert human_readable_byte_count(1280) == "1.3 KiB"  # Python's format would say 1.2
    assert human_readable_byte_count(1500, si=True) == "1.5 kB"


def test_counters_and_tps_windows() -> None:
    clock = Clock()
    stats = StoreStats(clock)
    info = stats.runtime_info()
    # No samples yet: Java's TPS strings are empty between the separators.
    assert info["putTps"] == "  " and info["getTotalTps"] == "0.0 0.0 0.0"
    assert info["putMessageTimesTotal"] == "1" and info["putMessageAverageSize"] == "0.0"
    stats.sample()
    for second in range(11):
        clock.now += 1000
        stats.record_put("T", wrote_bytes=193, elapsed_ms=second, ok=True)
        stats.record_get(found=second % 2 == 0, transferred=2, elapsed_ms=3)
        stats.sample()
    stats.record_put("T", wrote_bytes=0, elapsed_ms=20_000, ok=False)
    info = stats.runtime_info()
    assert info["putMessageTimesTotal"] == "11" and info["putMessageSizeTotal"] == str(11 * 193)
    assert info["putMessageAverageSize"] == "193.0"
    assert info["putMessageEntireTimeMax"] == "20000"
    assert info["putMessageDistributeTime"].startswith("[<=0ms]:1 [0~10ms]:9 [10~50ms]:1 ")
    assert info["putMessageDistributeTime"].endswith("[10s~]:1 ")
    assert info["putTps"] == "1.0  "  # 10 s window full, 60 s and 600 s not yet
    assert info["getTotalTps"] == "1.0 0.0 0.0"
    assert info["getTransferedTps"] == "2.0  "
    assert info["runtime"] == "[ 0 days, 0 hours, 0 minutes, 11 seconds ]"
    assert stats.put_failed_times == 1
    assert stats.broker_stats()["msgPutTotalTodayNow"] == "11"
    stats.record_morning()
    stats.record_morning()
    assert stats.broker_stats()["msgPutTotalYesterdayMorning"] == "11"
    assert stats.broker_stats()["msgGetTotalTodayMorning"] == "22"
