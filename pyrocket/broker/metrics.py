"""The broker's Prometheus figures, under rocketmq-exporter's metric names
and labels, served on ``metricsPort`` by :func:`serve_broker_metrics`.

What a broker knows of itself: per-topic put rates and sizes
(``rocketmq_producer_tps``, ``rocketmq_producer_message_size``), per-group
get rates and sizes (``rocketmq_consumer_tps``,
``rocketmq_consumer_message_size``), messages given back
(``rocketmq_send_back_nums``), the broker's own put and get rates
(``rocketmq_broker_tps``, ``rocketmq_broker_qps``), the topics' offsets
(``rocketmq_producer_offset``, ``rocketmq_topic_retry_offset``,
``rocketmq_topic_dlq_offset``), each group's offsets and backlog
(``rocketmq_consumer_offset``, ``rocketmq_group_diff``,
``rocketmq_group_retrydiff``, ``rocketmq_group_dlqdiff``,
``rocketmq_message_accumulation``), a few of the runtime figures
(``rocketmq_brokeruntime_*``) and the process collector's.

The figures come through :class:`BrokerMetricsSource`;
:class:`BrokerStatsSource` implements it over what the broker keeps: the
rates are BrokerStatsManager's per-minute figures
(:mod:`pyrocket.broker.statsitems`: TOPIC_PUT_NUMS, TOPIC_PUT_SIZE,
GROUP_GET_NUMS, GROUP_GET_SIZE, SNDBCK_PUT_NUMS, BROKER_PUT_NUMS,
BROKER_GET_NUMS, as
rocketmq-exporter reads them), the offsets come from the topic table, the
consume queues and the offset table, the runtime figures from
:class:`~pyrocket.broker.stats.StoreStats` and the store. Another source
can be set as ``broker.metrics_source``.

A scrape is bounded: :meth:`BrokerCollector.refresh` walks the tables on
the event loop in slices of :data:`SLICE` entries or :data:`SLICE_SECONDS`
(a checkpoint between slices) and stops at :data:`MAX_SERIES` entries; the
text is then built from that snapshot in a worker thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

import trio
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from pyrocket.broker.dataplane import DataPlane
from pyrocket.broker.parts import BROKER_VERSION_DESC, BrokerParts
from pyrocket.broker.statsitems import (
    BROKER_GET_NUMS,
    BROKER_PUT_NUMS,
    GROUP_GET_NUMS,
    GROUP_GET_SIZE,
    SNDBCK_PUT_NUMS,
    TOPIC_PUT_NUMS,
    TOPIC_PUT_SIZE,
    StatsItemSet,
)
from pyrocket.broker.topic_config import DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX
from pyrocket.metrics_http import render_registry, serve_metrics
from pyrocket.protocol.bodies.client import MessageModel
from pyrocket.protocol.codes import VERSION_V4_7_0

log = logging.getLogger("pyrocket.broker")

#: Table entries walked between two checkpoints of a scrape at most, and
#: the longest a scrape runs on the event loop between two (seconds): a
#: topic may have thousands of queues, so time bounds a slice too.
SLICE: Final = 256
SLICE_SECONDS: Final = 0.002
#: Topics (and, separately, topic-group pairs) one scrape reports at most.
MAX_SERIES: Final = 20_000

_MESSAGE_MODEL_ORDINAL: Final = {MessageModel.BROADCASTING: "0", MessageModel.CLUSTERING: "1"}


@dataclass(frozen=True, slots=True)
class Rate:
    """Messages and bytes per second."""

    messages: float = 0.0
    size: float = 0.0


@dataclass(frozen=True, slots=True)
class BrokerLabels:
    """What names the broker in the labels."""

    cluster: str
    broker: str
    broker_ip: str
    broker_addr: str
    boot_timestamp: int


class BrokerMetricsSource(Protocol):
    """The broker's figures as the metrics read them. Rates are per second
    over a recent window; offsets are sums over a topic's queues."""

    def labels(self) -> BrokerLabels: ...

    def broker_rates(self) -> tuple[float, float]:
        """Messages put and messages got per second, the whole broker."""

    def topic_put_rates(self) -> Mapping[str, Rate]:
        """Messages and bytes put per second, by topic."""

    def group_get_rates(self) -> Mapping[tuple[str, str], Rate]:
        """Messages and bytes got per second, by ``(topic, group)``."""

    def send_back_rates(self) -> Mapping[tuple[str, str], float]:
        """Messages given back per second (CONSUMER_SEND_MSG_BACK), by
        ``(topic, group)``."""

    def topic_names(self) -> list[str]:
        """The topics the broker serves."""

    def topic_max_offset(self, topic: str) -> int:
        """The sum of the max offsets of the topic's consume queues."""

    def offset_keys(self) -> list[tuple[str, str]]:
        """``(topic, group)`` of every committed consumer offset."""

    def group_offsets(self, topic: str, group: str) -> tuple[int, int] | None:
        """``(broker offset, consumer offset)`` summed over the queues the
        group has offsets for, or None when it has none."""

    def online_consumers(self, group: str) -> tuple[int, str]:
        """How many consumers of ``group`` are connected, and the ordinal of
        their message model ("" when none is)."""

    def runtime_figures(self) -> Mapping[str, float]:
        """Runtime entries (GET_BROKER_RUNTIME_INFO keys) with a number."""


def _per_minute(item_set: StatsItemSet) -> dict[str, float]:
    return {key: item.in_minute().tps for key, item in list(item_set.items.items())}


def _topic_group(key: str) -> tuple[str, str] | None:
    # ``topic@group``: a topic name has no "@", a group may.
    topic, sep, group = key.partition("@")
    return (topic, group) if sep else None


class BrokerStatsSource:
    """:class:`BrokerMetricsSource` over what the broker keeps: the rates are
    BrokerStatsManager's per-minute TPS (``getStatsDataInMinute``, what
    rocketmq-exporter reads through VIEW_BROKER_STATS_DATA), the offsets
    come from the topic table, the consume queues and the offset table."""

    def __init__(self, broker: BrokerParts, plane: DataPlane) -> None:
        self._broker = broker
        self._plane = plane

    # -- BrokerMetricsSource ------------------------------------------------

    def labels(self) -> BrokerLabels:
        settings = self._broker.settings
        return BrokerLabels(
            settings.broker.broker_cluster_name,
            settings.broker.broker_name,
            settings.broker.broker_ip1,
            self._broker.broker_addr,
            self._broker.stats.boot_timestamp,
        )

    def broker_rates(self) -> tuple[float, float]:
        manager = self._broker.stats_manager
        cluster = self._broker.settings.broker.broker_cluster_name
        return (
            manager.sets[BROKER_PUT_NUMS].in_minute(cluster).tps,
            manager.sets[BROKER_GET_NUMS].in_minute(cluster).tps,
        )

    def topic_put_rates(self) -> Mapping[str, Rate]:
        sets = self._broker.stats_manager.sets
        sizes = _per_minute(sets[TOPIC_PUT_SIZE])
        return {
            topic: Rate(tps, sizes.get(topic, 0.0))
            for topic, tps in _per_minute(sets[TOPIC_PUT_NUMS]).items()
        }

    def group_get_rates(self) -> Mapping[tuple[str, str], Rate]:
        sets = self._broker.stats_manager.sets
        sizes = _per_minute(sets[GROUP_GET_SIZE])
        return {
            pair: Rate(tps, sizes.get(key, 0.0))
            for key, tps in _per_minute(sets[GROUP_GET_NUMS]).items()
            if (pair := _topic_group(key)) is not None
        }

    def send_back_rates(self) -> Mapping[tuple[str, str], float]:
        per_minute = _per_minute(self._broker.stats_manager.sets[SNDBCK_PUT_NUMS])
        return {
            pair: tps for key, tps in per_minute.items() if (pair := _topic_group(key)) is not None
        }

    def topic_names(self) -> list[str]:
        return list(self._broker.topic_config_manager.topic_config_table)

    def topic_max_offset(self, topic: str) -> int:
        config = self._broker.topic_config_manager.select_topic_config(topic)
        if config is None:
            return 0
        store = self._broker.store
        queues = max(config.read_queue_nums, config.write_queue_nums)
        return sum(store.get_max_offset_in_queue(topic, queue_id) for queue_id in range(queues))

    def offset_keys(self) -> list[tuple[str, str]]:
        keys = []
        for key in list(self._plane.consumer_offset_manager.offset_table):
            topic, sep, group = key.partition("@")
            if sep:
                keys.append((topic, group))
        return keys

    def group_offsets(self, topic: str, group: str) -> tuple[int, int] | None:
        offsets = self._plane.consumer_offset_manager.query_offsets(group, topic)
        if offsets is None:
            return None
        store = self._broker.store
        broker_offset = consumer_offset = 0
        for queue_id, offset in list(offsets.items()):
            broker_offset += store.get_max_offset_in_queue(topic, queue_id)
            consumer_offset += max(0, offset)
        return broker_offset, consumer_offset

    def online_consumers(self, group: str) -> tuple[int, str]:
        info = self._plane.consumer_manager.get_consumer_group_info(group)
        if info is None:
            return 0, ""
        count = len(info.all_client_ids())
        model = _MESSAGE_MODEL_ORDINAL.get(info.message_model) if info.message_model else None
        return count, model or ""

    def runtime_figures(self) -> Mapping[str, float]:
        stats = self._broker.stats
        store = self._broker.store
        entries = {**stats.runtime_info(), **stats.broker_stats(), **store.running_stats()}
        entries["dispatchBehindBytes"] = str(store.dispatch_behind_bytes())
        figures: dict[str, float] = {}
        for key, text in entries.items():
            fields = text.split(" ")
            for suffix, field_text in zip(("", "60", "600"), fields, strict=False):
                try:
                    figures[key + suffix] = float(field_text)
                except ValueError:
                    break
        return figures


# -- the collector -------------------------------------------------------------

_TOPIC_LABELS: Final = ("cluster", "broker", "topic")
_GROUP_LABELS: Final = ("cluster", "broker", "topic", "group")
_BROKER_LABELS: Final = ("cluster", "brokerIP", "broker")
_DIFF_LABELS: Final = ("group", "topic", "countOfOnlineConsumers", "msgModel")
_DLQ_OFFSET_LABELS: Final = ("cluster", "broker", "group")
_RUNTIME_LABELS: Final = ("cluster", "brokerIP", "brokerHost", "des", "boottime", "broker_version")

#: rocketmq-exporter's runtime gauges (name, help) by runtime-info key. A
#: TPS entry holds three figures (10, 60 and 600 seconds); its key alone
#: names the first, the key with ``60`` / ``600`` appended the others.
RUNTIME_GAUGES: Final = {
    key: (f"rocketmq_brokeruntime_{name}", help_text)
    for key, name, help_text in (
        ("msgPutTotalTodayNow", "msg_put_total_today_now", "brokerRuntimeMsgPutTotalTodayNow"),
        ("msgGetTotalTodayNow", "msg_gettotal_today_now", "brokerRuntimeMsgGetTotalTodayNow"),
        (
            "msgPutTotalTodayMorning",
            "msg_puttotal_todaymorning",
            "brokerRuntimeMsgPutTotalTodayMorning",
        ),
        (
            "msgGetTotalTodayMorning",
            "msg_gettotal_todaymorning",
            "brokerRuntimeMsgGetTotalTodayMorning",
        ),
        (
            "msgPutTotalYesterdayMorning",
            "msg_puttotal_yesterdaymorning",
            "brokerRuntimeMsgPutTotalYesterdayMorning",
        ),
        (
            "msgGetTotalYesterdayMorning",
            "msg_gettotal_yesterdaymorning",
            "brokerRuntimeMsgGetTotalYesterdayMorning",
        ),
        ("putMessageTimesTotal", "putmessage_times_total", "brokerRuntimePutMessageTimesTotal"),
        ("putMessageSizeTotal", "put_message_size_total", "brokerRuntimePutMessageSizeTotal"),
        (
            "putMessageAverageSize",
            "put_message_average_size",
            "brokerRuntimePutMessageAverageSize",
        ),
        (
            "putMessageEntireTimeMax",
            "putmessage_entire_time_max",
            "brokerRuntimePutMessageEntireTimeMax",
        ),
        (
            "getMessageEntireTimeMax",
            "getmessage_entire_time_max",
            "brokerRuntimeGetMessageEntireTimeMax",
        ),
        ("dispatchMaxBuffer", "dispatch_maxbuffer", "brokerRuntimeDispatchMaxBuffer"),
        ("dispatchBehindBytes", "dispatch_behind_bytes", "brokerRuntimeDispatchBehindBytes"),
        ("commitLogMaxOffset", "commitlog_maxoffset", "brokerRuntimeCommitLogMaxOffset"),
        ("commitLogMinOffset", "commitlog_minoffset", "brokerRuntimeCommitLogMinOffset"),
        ("commitLogDiskRatio", "commitlog_disk_ratio", "brokerRuntimeCommitLogDiskRatio"),
        (
            "consumeQueueDiskRatio",
            "consumequeue_disk_ratio",
            "brokerRuntimeConsumeQueueDiskRatio",
        ),
        ("putTps", "put_tps10", "brokerRuntimePutTps10"),
        ("putTps60", "put_tps60", "brokerRuntimePutTps60"),
        ("putTps600", "put_tps600", "brokerRuntimePutTps600"),
        ("getFoundTps", "getfound_tps10", "brokerRuntimeGetFoundTps10"),
        ("getFoundTps60", "getfound_tps60", "brokerRuntimeGetFoundTps60"),
        ("getFoundTps600", "getfound_tps600", "brokerRuntimeGetFoundTps600"),
        ("getMissTps", "getmiss_tps10", "brokerRuntimeGetMissTps10"),
        ("getMissTps60", "getmiss_tps60", "brokerRuntimeGetMissTps60"),
        ("getMissTps600", "getmiss_tps600", "brokerRuntimeGetMissTps600"),
        ("getTotalTps", "gettotal_tps10", "brokerRuntimeGetTotalTps10"),
        ("getTotalTps60", "gettotal_tps60", "brokerRuntimeGetTotalTps60"),
        ("getTotalTps600", "gettotal_tps600", "brokerRuntimeGetTotalTps600"),
        ("getTransferedTps", "gettransfered_tps10", "brokerRuntimeGetTransferedTps10"),
        ("getTransferedTps60", "gettransfered_tps60", "brokerRuntimeGetTransferedTps60"),
        ("getTransferedTps600", "gettransfered_tps600", "brokerRuntimeGetTransferedTps600"),
    )
}


@dataclass(slots=True)
class _Snapshot:
    labels: BrokerLabels
    broker_rates: tuple[float, float] = (0.0, 0.0)
    topic_rates: Mapping[str, Rate] = field(default_factory=dict)
    group_rates: Mapping[tuple[str, str], Rate] = field(default_factory=dict)
    send_back_rates: Mapping[tuple[str, str], float] = field(default_factory=dict)
    topic_offsets: list[tuple[str, int]] = field(default_factory=list)
    #: (topic, group, broker offset, consumer offset, online consumers, model)
    group_offsets: list[tuple[str, str, int, int, int, str]] = field(default_factory=list)
    runtime: Mapping[str, float] = field(default_factory=dict)
    truncated: bool = False


class _Slicer:
    """Checkpoints every :data:`SLICE` ticks or :data:`SLICE_SECONDS`."""

    def __init__(self) -> None:
        self._count = 0
        self._since = time.perf_counter()

    async def tick(self) -> None:
        self._count += 1
        if self._count >= SLICE or time.perf_counter() - self._since >= SLICE_SECONDS:
            await trio.lowlevel.checkpoint()
            self._count = 0
            self._since = time.perf_counter()


class BrokerCollector(Collector):
    """Yields the broker's families from the snapshot :meth:`refresh` took."""

    def __init__(self, source: BrokerMetricsSource) -> None:
        self.source = source
        self._snapshot: _Snapshot | None = None

    async def refresh(self) -> None:
        """Take the snapshot a scrape reports, in bounded slices."""
        source = self.source
        snap = _Snapshot(
            source.labels(),
            source.broker_rates(),
            source.topic_put_rates(),
            source.group_get_rates(),
            source.send_back_rates(),
            runtime=source.runtime_figures(),
        )
        topics = source.topic_names()
        if len(topics) > MAX_SERIES:
            topics, snap.truncated = topics[:MAX_SERIES], True
        pause = _Slicer()
        for topic in topics:
            await pause.tick()
            snap.topic_offsets.append((topic, source.topic_max_offset(topic)))
        keys = source.offset_keys()
        if len(keys) > MAX_SERIES:
            keys, snap.truncated = keys[:MAX_SERIES], True
        for topic, group in keys:
            await pause.tick()
            offsets = source.group_offsets(topic, group)
            if offsets is None:
                continue
            online, model = source.online_consumers(group)
            snap.group_offsets.append((topic, group, *offsets, online, model))
        if snap.truncated:
            log.warning("metrics: over %d topics or offsets, the rest left out", MAX_SERIES)
        self._snapshot = snap

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot
        if snap is None:
            return
        me = snap.labels
        yield from self._broker_families(snap, me)
        yield from self._topic_families(snap, me)
        yield from self._group_families(snap, me)
        yield from self._runtime_families(snap, me)

    def _broker_families(self, snap: _Snapshot, me: BrokerLabels) -> Iterator[Metric]:
        ident = [me.cluster, me.broker_addr, me.broker]
        put, get = snap.broker_rates
        tps = GaugeMetricFamily("rocketmq_broker_tps", "BrokerPutNums", labels=_BROKER_LABELS)
        tps.add_metric(ident, put)
        qps = GaugeMetricFamily("rocketmq_broker_qps", "BrokerGetNums", labels=_BROKER_LABELS)
        qps.add_metric(ident, get)
        yield tps
        yield qps

    def _topic_families(self, snap: _Snapshot, me: BrokerLabels) -> Iterator[Metric]:
        tps = GaugeMetricFamily("rocketmq_producer_tps", "TopicPutNums", labels=_TOPIC_LABELS)
        size = GaugeMetricFamily(
            "rocketmq_producer_message_size", "TopicPutMessageSize", labels=_TOPIC_LABELS
        )
        for topic, rate in snap.topic_rates.items():
            tps.add_metric([me.cluster, me.broker, topic], rate.messages)
            size.add_metric([me.cluster, me.broker, topic], rate.size)
        offset = GaugeMetricFamily("rocketmq_producer_offset", "TopicOffset", labels=_TOPIC_LABELS)
        retry = GaugeMetricFamily(
            "rocketmq_topic_retry_offset", "TopicRetryOffset", labels=_TOPIC_LABELS
        )
        dlq = GaugeMetricFamily(
            "rocketmq_topic_dlq_offset", "TopicRetryOffset", labels=_DLQ_OFFSET_LABELS
        )
        for topic, value in snap.topic_offsets:
            if topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
                retry.add_metric([me.cluster, me.broker, topic], value)
            elif topic.startswith(DLQ_GROUP_TOPIC_PREFIX):
                group = topic[len(DLQ_GROUP_TOPIC_PREFIX) :]
                dlq.add_metric([me.cluster, me.broker, group], value)
            else:
                offset.add_metric([me.cluster, me.broker, topic], value)
        yield from (tps, size, offset, retry, dlq)

    def _group_families(self, snap: _Snapshot, me: BrokerLabels) -> Iterator[Metric]:
        tps = GaugeMetricFamily("rocketmq_consumer_tps", "GroupGetNums", labels=_GROUP_LABELS)
        size = GaugeMetricFamily(
            "rocketmq_consumer_message_size", "GroupGetMessageSize", labels=_GROUP_LABELS
        )
        for (topic, group), rate in snap.group_rates.items():
            tps.add_metric([me.cluster, me.broker, topic, group], rate.messages)
            size.add_metric([me.cluster, me.broker, topic, group], rate.size)
        send_back = GaugeMetricFamily(
            "rocketmq_send_back_nums", "SendBackNums", labels=_GROUP_LABELS
        )
        for (topic, group), value in snap.send_back_rates.items():
            send_back.add_metric([me.cluster, me.broker, topic, group], value)
        offset = GaugeMetricFamily(
            "rocketmq_consumer_offset", "GroupBrokerTotalOffset", labels=_GROUP_LABELS
        )
        accumulation = GaugeMetricFamily(
            "rocketmq_message_accumulation",
            "Messages stored but not yet consumed, by topic and group",
            labels=_GROUP_LABELS,
        )
        diff = GaugeMetricFamily("rocketmq_group_diff", "GroupDiff", labels=_DIFF_LABELS)
        retry = GaugeMetricFamily("rocketmq_group_retrydiff", "GroupRetryDiff", labels=_DIFF_LABELS)
        dlq = GaugeMetricFamily("rocketmq_group_dlqdiff", "GroupDLQDiff", labels=_DIFF_LABELS)
        for topic, group, broker_offset, consumer_offset, online, model in snap.group_offsets:
            backlog = max(0, broker_offset - consumer_offset)
            offset.add_metric([me.cluster, me.broker, topic, group], consumer_offset)
            accumulation.add_metric([me.cluster, me.broker, topic, group], backlog)
            family = diff
            if topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
                family = retry
            elif topic.startswith(DLQ_GROUP_TOPIC_PREFIX):
                family = dlq
            family.add_metric([group, topic, str(online), model], backlog)
        yield from (tps, size, send_back, offset, accumulation, diff, retry, dlq)

    def _runtime_families(self, snap: _Snapshot, me: BrokerLabels) -> Iterator[Metric]:
        ident = [
            me.cluster,
            me.broker_addr,
            me.broker_ip,
            BROKER_VERSION_DESC,
            str(me.boot_timestamp),
            str(VERSION_V4_7_0),
        ]
        for key, (name, help_text) in RUNTIME_GAUGES.items():
            if key not in snap.runtime:
                continue
            family = GaugeMetricFamily(name, help_text, labels=_RUNTIME_LABELS)
            family.add_metric(ident, snap.runtime[key])
            yield family
        truncated = GaugeMetricFamily(
            "pyrocket_metrics_truncated",
            "1 when the last scrape left topics or offsets out (over its bound)",
        )
        truncated.add_metric([], 1.0 if snap.truncated else 0.0)
        yield truncated


def broker_registry(source: BrokerMetricsSource) -> tuple[CollectorRegistry, BrokerCollector]:
    """A registry with the broker's families and the process figures."""
    registry = CollectorRegistry(auto_describe=False)
    collector = BrokerCollector(source)
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry, collector


async def serve_broker_metrics(
    broker: BrokerParts,
    plane: DataPlane,
    host: str | None,
    port: int,
    *,
    source: BrokerMetricsSource | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/metrics`` on ``host:port`` until cancelled, from ``source``
    (default: a :class:`BrokerStatsSource`); reports the bound port. Raises
    OSError when the address cannot be bound."""
    registry, collector = broker_registry(source or BrokerStatsSource(broker, plane))
    render = render_registry(registry, collector.refresh)
    await serve_metrics(host, port, render, task_status=task_status)


__all__ = [
    "MAX_SERIES",
    "SLICE",
    "SLICE_SECONDS",
    "BrokerCollector",
    "BrokerLabels",
    "BrokerMetricsSource",
    "BrokerStatsSource",
    "Rate",
    "broker_registry",
    "serve_broker_metrics",
]
