"""mqadmin's ``startMonitoring`` (Java's ``MonitorService`` with its
``DefaultMonitorListener``): every round, for each consumer group the
NameServers know (by its retry topic), how many messages it has not yet
consumed per topic and how far behind it is, and what its clients report of
themselves; between rounds, each OFFSET_MOVED_EVENT a broker stores, read by
a push consumer of group ``__MONITOR_CONSUMER``.

The listener hears of it all; :class:`DefaultMonitorListener` logs it as
Java's does (``[MONITOR] ...``). Failures of a group are skipped, as Java
skips them; a failed round is logged and the next one runs.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Final, Protocol

import trio

from pyrocket.client.admin.analysis import process_queue_warnings, subscriptions_agree
from pyrocket.client.admin.progress import examine_consume_stats
from pyrocket.client.admin.reading import PullStatus, QueueReader
from pyrocket.client.admin.walks import RETRY_GROUP_TOPIC_PREFIX
from pyrocket.client.consumer import PushConsumer
from pyrocket.errors import ProtocolError, PyrocketError
from pyrocket.protocol.bodies.admin import ConsumerRunningInfo, OffsetWrapper
from pyrocket.protocol.bodies.client import MessageQueue, OffsetMovedEvent
from pyrocket.protocol.version import VERSION_V3_1_8_SNAPSHOT
from pyrocket.remoting.tls import TlsSettings

if TYPE_CHECKING:
    from pyrocket.client.admin import Admin

log = logging.getLogger("pyrocket.client.monitor")

#: MixAll.MONITOR_CONSUMER_GROUP and MixAll.OFFSET_MOVED_EVENT.
MONITOR_CONSUMER_GROUP: Final = "__MONITOR_CONSUMER"
OFFSET_MOVED_EVENT: Final = "OFFSET_MOVED_EVENT"
#: MonitorConfig's round interval and the delay before the first round (s).
ROUND_INTERVAL: Final = 60.0
FIRST_DELAY: Final = 20.0


@dataclasses.dataclass(frozen=True, slots=True)
class UndoneMsgs:
    """A group's backlog on one topic."""

    consumer_group: str
    topic: str
    undone_msgs_total: int = 0
    undone_msgs_single_mq: int = 0
    undone_msgs_delay_time_mills: int = 0

    def __str__(self) -> str:
        return (
            f"UndoneMsgs [consumerGroup={self.consumer_group}, topic={self.topic}, "
            f"undoneMsgsTotal={self.undone_msgs_total}, "
            f"undoneMsgsSingleMQ={self.undone_msgs_single_mq}, "
            f"undoneMsgsDelayTimeMills={self.undone_msgs_delay_time_mills}]"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class DeleteMsgsEvent:
    """An offset-moved event and when its message was stored."""

    offset_moved_event: OffsetMovedEvent
    event_timestamp: int

    def __str__(self) -> str:
        event = self.offset_moved_event
        queue = event.message_queue
        mq = (
            "null"
            if queue is None
            else f"MessageQueue [topic={queue.topic}, brokerName={queue.broker_name}, "
            f"queueId={queue.queue_id}]"
        )
        return (
            f"DeleteMsgsEvent [offsetMovedEvent=OffsetMovedEvent [consumerGroup="
            f"{event.consumer_group}, messageQueue={mq}, offsetRequest={event.offset_request}, "
            f"offsetNew={event.offset_new}], eventTimestamp={self.event_timestamp}]"
        )


class MonitorListener(Protocol):
    """What a :class:`MonitorService` reports to (Java's ``MonitorListener``)."""

    def begin_round(self) -> None: ...
    def report_undone_msgs(self, undone: UndoneMsgs) -> None: ...
    def report_delete_msgs_event(self, event: DeleteMsgsEvent) -> None: ...
    def report_consumer_running_info(self, table: dict[str, ConsumerRunningInfo]) -> None: ...
    def end_round(self) -> None: ...


class DefaultMonitorListener:
    """Logs every report at INFO, as Java's ``DefaultMonitorListener`` does."""

    def begin_round(self) -> None:
        log.info("[MONITOR] =========================================beginRound")

    def report_undone_msgs(self, undone: UndoneMsgs) -> None:
        log.info("[MONITOR] reportUndoneMsgs: %s", undone)

    def report_delete_msgs_event(self, event: DeleteMsgsEvent) -> None:
        log.info("[MONITOR] reportDeleteMsgsEvent: %s", event)

    def report_consumer_running_info(self, table: dict[str, ConsumerRunningInfo]) -> None:
        now = time.time_ns() // 1_000_000
        first = next(iter(table.values()))
        group = first.properties.get("consumerGroup", "null")
        if not subscriptions_agree(table, now):
            log.info(
                "[MONITOR]  [NOTIFY] reportConsumerRunningInfo: ConsumerGroup: %s, "
                "Subscription different",
                group,
            )
        for client_id, info in table.items():
            warnings = process_queue_warnings(client_id, info, now)
            if warnings:
                log.info(
                    "[MONITOR]  [NOTIFY] reportConsumerRunningInfo: ConsumerGroup: %s, "
                    "ClientId: %s, %s",
                    group,
                    client_id,
                    warnings,
                )

    def end_round(self) -> None:
        log.info("[MONITOR] =========================================endRound")


class MonitorService:
    """Runs the rounds and reads the offset-moved events until cancelled."""

    def __init__(
        self,
        admin: Admin,
        listener: MonitorListener,
        *,
        round_interval: float = ROUND_INTERVAL,
        first_delay: float = FIRST_DELAY,
        tls: TlsSettings | None = None,
    ) -> None:
        self.admin = admin
        self.listener = listener
        self.round_interval = round_interval
        self.first_delay = first_delay
        self.tls = tls
        self.reader = QueueReader(admin)

    async def run(self) -> None:
        """Never returns; raises what starting the event consumer raises."""
        events = PushConsumer(MONITOR_CONSUMER_GROUP, self.admin.namesrv_addresses, tls=self.tls)
        events.subscribe(OFFSET_MOVED_EVENT, "*")
        async with events, trio.open_nursery() as nursery:
            nursery.start_soon(self._read_events, events)
            await trio.sleep(self.first_delay)
            while True:
                try:
                    await self.do_round()
                except PyrocketError as exc:
                    log.error("doMonitorWork Exception: %s", exc)
                await trio.sleep(self.round_interval)

    async def _read_events(self, events: PushConsumer) -> None:
        async for message in events:
            try:
                event = OffsetMovedEvent.decode(message.body)
            except ProtocolError as exc:
                log.debug("undecodable offset-moved event: %s", exc)  # Java ignores it
                continue
            self.listener.report_delete_msgs_event(DeleteMsgsEvent(event, message.store_timestamp))

    async def do_round(self) -> None:
        """One round over every consumer group."""
        self.reader = QueueReader(self.admin)  # routes fetched afresh each round
        self.listener.begin_round()
        for topic in await self.admin.topic_list():
            if not topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
                continue
            group = topic[len(RETRY_GROUP_TOPIC_PREFIX) :]
            # Java skips a group it cannot examine; say why at DEBUG.
            try:
                await self._report_undone(group)
            except PyrocketError as exc:
                log.debug("reportUndoneMsgs of %s: %s", group, exc)
            try:
                await self._report_running_info(group)
            except PyrocketError as exc:
                log.debug("reportConsumerRunningInfo of %s: %s", group, exc)
        self.listener.end_round()

    async def _report_undone(self, group: str) -> None:
        stats = await examine_consume_stats(self.admin, group)
        await self.admin.consumer_connection(group)  # Java reports only online groups
        by_topic: dict[str, dict[MessageQueue, OffsetWrapper]] = {}
        for queue, wrapper in stats.offset_table.items():
            by_topic.setdefault(queue.topic or "", {})[queue] = wrapper
        for topic, table in by_topic.items():
            self.listener.report_undone_msgs(await self._undone(group, topic, table))

    async def _undone(
        self, group: str, topic: str, table: dict[MessageQueue, OffsetWrapper]
    ) -> UndoneMsgs:
        total = single = delay = 0
        for queue, wrapper in table.items():
            diff = wrapper.broker_offset - wrapper.consumer_offset
            single = max(single, diff)
            total += max(0, diff)
            if wrapper.last_timestamp <= 0:
                continue
            try:
                high = await self.reader.max_offset(queue)
                if high > 0:
                    result = await self.reader.pull(queue, "*", high - 1, 1)
                    if result.status is PullStatus.FOUND and result.messages:
                        newest = result.messages[0].store_timestamp
                        delay = max(delay, newest - wrapper.last_timestamp)
            except PyrocketError as exc:
                log.debug("delay of %s on %s: %s", group, queue, exc)
        return UndoneMsgs(group, topic, total, single, delay)

    async def _report_running_info(self, group: str) -> None:
        connection = await self.admin.consumer_connection(group)
        table: dict[str, ConsumerRunningInfo] = {}
        for conn in connection.connection_set:
            if conn.version < VERSION_V3_1_8_SNAPSHOT:
                continue
            client_id = conn.client_id or "null"
            try:
                info = await self.admin.consumer_running_info(group, client_id)
            except PyrocketError:
                continue
            if info is not None:
                table[client_id] = info
        if table:
            # A TreeMap: by client id, as Java strings compare.
            ordered = {k: table[k] for k in sorted(table, key=lambda k: k.encode("utf-16-be"))}
            self.listener.report_consumer_running_info(ordered)


__all__ = [
    "FIRST_DELAY",
    "MONITOR_CONSUMER_GROUP",
    "ROUND_INTERVAL",
    "DefaultMonitorListener",
    "DeleteMsgsEvent",
    "MonitorListener",
    "MonitorService",
    "UndoneMsgs",
]
