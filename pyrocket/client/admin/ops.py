"""The offset, statistics and consumer operations of :class:`Admin`
(``DefaultMQAdminExt``'s resetOffsetByTimestamp, resetOffsetByTimestampOld,
getConsumeStatus, examineConsumeStats, viewBrokerStatsData,
fetchConsumeStatsInBroker, consumeMessageDirectly and statsAll's per-topic
figures), as a base class of :class:`Admin` built on
:class:`~pyrocket.client.ops_api.BrokerOpsAPI` (``admin.ops``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Final

from pyrocket.client.admin.walks import RETRY_GROUP_TOPIC_PREFIX, select_broker_addr
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.ops_api import BrokerOpsAPI
from pyrocket.errors import PyrocketError, ResponseError
from pyrocket.protocol.bodies.admin import ConsumeStats, OffsetWrapper
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.ops import BrokerStatsData, ConsumeMessageDirectlyResult
from pyrocket.protocol.bodies.route import MASTER_ID, TopicRouteData
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message.ids import decode_offset_message_id

TOPIC_PUT_NUMS: Final = "TOPIC_PUT_NUMS"
GROUP_GET_NUMS: Final = "GROUP_GET_NUMS"

_NO_CONSUME_STATS: Final = (
    "Not found the consumer group consume stats, because return offset table is empty, "
    "maybe the consumer not consume any message"
)


@dataclass(frozen=True, slots=True)
class RollbackStats:
    """One queue of an old-style reset (``RollbackStats``)."""

    broker_name: str
    queue_id: int
    broker_offset: int
    consumer_offset: int
    timestamp_offset: int
    rollback_offset: int


@dataclass(frozen=True, slots=True)
class GroupFlow:
    """statsAll's figures of one group of a topic."""

    group: str
    accumulation: int
    out_tps: float
    out_msg_24h: int


@dataclass(frozen=True, slots=True)
class TopicFlow:
    """statsAll's figures of one topic: in TPS and messages over 24 hours
    from its masters, and each consuming group's."""

    topic: str
    in_tps: float
    in_msg_24h: int
    groups: list[GroupFlow] = field(default_factory=list)


def sum_24_hours(data: BrokerStatsData) -> int:
    """``compute24HourSum``: the day's sum, else the hour's, else the minute's."""
    for item in (data.stats_day, data.stats_hour, data.stats_minute):
        if item is not None and item.sum != 0:
            return item.sum
    return 0


class OpsAdmin:
    """The operations in the module doc; :class:`Admin` provides the
    requests (``brokers``, ``ops``) and the route lookups."""

    brokers: BrokerAPI
    ops: BrokerOpsAPI

    async def topic_route(self, topic: str) -> TopicRouteData:
        raise NotImplementedError

    async def reset_offset_by_timestamp(
        self, topic: str, group: str, timestamp: int, force: bool, cplus: bool = False
    ) -> JavaHashMap[MessageQueue, int]:
        """INVOKE_BROKER_TO_RESET_OFFSET on each broker of the topic's route,
        the offsets merged; ResponseError CONSUMER_NOT_ONLINE when a broker
        sees no consumer of the group online (then use
        :meth:`reset_offset_by_timestamp_old`, as mqadmin does)."""
        route = await self.topic_route(topic)
        merged: JavaHashMap[MessageQueue, int] = JavaHashMap()
        for data in route.broker_datas or ():
            addr = select_broker_addr(data)
            if addr is not None:
                table = await self.ops.reset_offset(addr, topic, group, timestamp, force, cplus)
                for queue, offset in table.items():
                    merged[queue] = offset
        return merged

    async def reset_offset_by_timestamp_old(
        self, group: str, topic: str, timestamp: int, force: bool
    ) -> list[RollbackStats]:
        """The reset without consumers online: per queue, the offset at
        ``timestamp`` (-1: the end) written with UPDATE_CONSUMER_OFFSET when
        forced or not ahead of the group's."""
        route = await self.topic_route(topic)
        read_queues: dict[str, int] = {}
        for data in route.broker_datas or ():
            for queue_data in route.queue_datas or ():
                addr = select_broker_addr(data)
                if addr is not None:
                    read_queues[addr] = queue_data.read_queue_nums
        stats: list[RollbackStats] = []
        for data in route.broker_datas or ():
            addr = select_broker_addr(data)
            if addr is None:
                continue
            consume = await self.ops.consume_stats(addr, group)
            consumed = False
            for queue, wrapper in consume.offset_table.items():
                if queue.topic == topic:
                    consumed = True
                    stats.append(
                        await self._rollback(addr, group, queue, wrapper, timestamp, force)
                    )
            if consumed:
                continue
            table = (await self.brokers.get_topic_stats_info(addr, topic)).offset_table
            for queue_id in range(read_queues.get(addr, 0)):
                queue = MessageQueue(topic, data.broker_name, queue_id)
                offsets = table.get(queue)
                if offsets is None:
                    continue
                wrapper = OffsetWrapper(offsets.max_offset, offsets.min_offset)
                stats.append(await self._rollback(addr, group, queue, wrapper, timestamp, force))
        return stats

    async def _rollback(
        self,
        addr: str,
        group: str,
        queue: MessageQueue,
        wrapper: OffsetWrapper,
        timestamp: int,
        force: bool,
    ) -> RollbackStats:
        topic = queue.topic or ""
        if timestamp == -1:
            target = await self.brokers.get_max_offset(addr, topic, queue.queue_id)
        else:
            target = await self.brokers.search_offset(addr, topic, queue.queue_id, timestamp)
        rollback = wrapper.consumer_offset
        if force or target <= wrapper.consumer_offset:
            rollback = target
            await self.brokers.update_consumer_offset(
                addr, group, topic, queue.queue_id, target, oneway=False
            )
        return RollbackStats(
            queue.broker_name or "",
            queue.queue_id,
            wrapper.broker_offset,
            wrapper.consumer_offset,
            target,
            rollback,
        )

    async def consumer_status(
        self, topic: str, group: str, client_addr: str | None = None
    ) -> dict[str, dict[MessageQueue, int]]:
        """``getConsumeStatus``: each online member's offsets of the topic,
        through the route's first broker."""
        route = await self.topic_route(topic)
        for data in (route.broker_datas or ())[:1]:
            addr = select_broker_addr(data)
            if addr is not None:
                return await self.ops.consumer_status(addr, topic, group, client_addr)
        return {}

    async def examine_consume_stats(self, group: str, topic: str | None = None) -> ConsumeStats:
        """``examineConsumeStats``: the group's offsets from every broker of
        its retry topic, merged; ResponseError CONSUMER_NOT_ONLINE when none
        has any."""
        route = await self.topic_route(RETRY_GROUP_TOPIC_PREFIX + group)
        table: JavaHashMap[MessageQueue, OffsetWrapper] = JavaHashMap()
        tps = 0.0
        for data in route.broker_datas or ():
            addr = select_broker_addr(data)
            if addr is None:
                continue
            stats = await self.ops.consume_stats(addr, group, topic)
            for queue, wrapper in stats.offset_table.items():
                table[queue] = wrapper
            tps += stats.consume_tps
        if not table:
            raise ResponseError(ResponseCode.CONSUMER_NOT_ONLINE, _NO_CONSUME_STATS)
        return ConsumeStats(table, tps)

    async def consume_message_directly(
        self, group: str, client_id: str, msg_id: str
    ) -> ConsumeMessageDirectlyResult:
        """``consumeMessageDirectly``: the consumer ``client_id`` of ``group``
        consumes the message of offset message id ``msg_id``, asked through
        the broker that stores it. Raises ProtocolError for an id that is not
        an offset message id."""
        store_host, _ = decode_offset_message_id(msg_id)
        return await self.ops.consume_message_directly(str(store_host), group, client_id, msg_id)

    async def topic_flow(self, topic: str, groups: list[str]) -> TopicFlow:
        """statsAll's figures of ``topic`` and of each of ``groups``, from
        the masters of its route (a master without the figure counts 0)."""
        route = await self.topic_route(topic)
        masters = [
            addr
            for data in route.broker_datas or ()
            if (addr := (data.broker_addrs or {}).get(MASTER_ID)) is not None
        ]
        in_tps, in_24h = await self._flow(masters, TOPIC_PUT_NUMS, topic)
        flow = TopicFlow(topic, in_tps, in_24h)
        for group in groups:
            out_tps, out_24h = await self._flow(masters, GROUP_GET_NUMS, f"{topic}@{group}")
            accumulation = 0
            # mqadmin prints 0 for a group without consume stats.
            with contextlib.suppress(PyrocketError):
                accumulation = max(
                    0, (await self.examine_consume_stats(group, topic)).compute_total_diff()
                )
            flow.groups.append(GroupFlow(group, accumulation, out_tps, out_24h))
        return flow

    async def _flow(self, addrs: list[str], name: str, key: str) -> tuple[float, int]:
        tps, total = 0.0, 0
        for addr in addrs:
            try:
                data = await self.ops.view_broker_stats_data(addr, name, key)
            except PyrocketError:
                continue
            if data.stats_minute is not None:
                tps += data.stats_minute.tps
            total += sum_24_hours(data)
        return tps, total


__all__ = ["GroupFlow", "OpsAdmin", "RollbackStats", "TopicFlow", "sum_24_hours"]
