"""Operator requests about statistics, housekeeping and consumers (the rest
of Java's ``AdminBrokerProcessor``):

- VIEW_BROKER_STATS_DATA: one BrokerStatsManager item over the last minute,
  hour and day (:mod:`pyrocket.broker.statsitems`);
- GET_BROKER_CONSUME_STATS: every subscription group's offsets and consume
  TPS per topic, and the broker's total backlog;
- GET_SYSTEM_TOPIC_LIST_FROM_BROKER, CLEAN_EXPIRED_CONSUMEQUEUE,
  CLEAN_UNUSED_TOPIC, QUERY_CONSUME_QUEUE (raw consume-queue entries);
- CONSUME_MESSAGE_DIRECTLY: the stored message (looked up by its offset
  message id) forwarded to the consumer named, which consumes it and says
  how that went.
"""

from __future__ import annotations

import base64
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Final

from pyrocket.broker.consumer_filter import PullFilter, SqlMessageFilter
from pyrocket.broker.message_filter import ExpressionMessageFilter, is_tag_type
from pyrocket.broker.processors.ports import AdminBroker, MessagePath
from pyrocket.broker.store.config import CQ_STORE_UNIT_SIZE
from pyrocket.broker.store.consumequeue_ext import CqExtUnit, is_ext_addr
from pyrocket.errors import ProtocolError
from pyrocket.filter.bloom import BitsArray
from pyrocket.protocol.bodies.admin import ConsumeStats, OffsetWrapper
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.ops import (
    BrokerStatsData,
    BrokerStatsItem,
    ConsumeQueueData,
    ConsumeStatsList,
    QueryConsumeQueueResponseBody,
)
from pyrocket.protocol.bodies.topic import TopicList
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    ConsumeMessageDirectlyResultRequestHeader,
    GetConsumeStatsInBrokerHeader,
    QueryConsumeQueueRequestHeader,
    ViewBrokerStatsDataRequestHeader,
)
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message.ids import decode_offset_message_id
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.broker")

#: Forwards a request to a group member and gives its answer (the admin
#: processor's ``call_consumer``).
CallConsumer = Callable[[RemotingCommand, str, str], Awaitable[RemotingCommand]]

_ENTRY: Final = struct.Struct(">qiq")
#: Most entries one QUERY_CONSUME_QUEUE returns (Java reads up to the end of
#: the queue's file, 300,000 entries); the answer is built inline.
MAX_QUERY_ENTRIES: Final = 10_000


def _response(code: int, remark: str | None = None, body: bytes | None = None) -> RemotingCommand:
    return RemotingCommand.response(code, remark, body=body)


class OpsAdminProcessor:
    """Answers the requests listed in the module doc."""

    def __init__(
        self, broker: AdminBroker, plane: MessagePath, call_consumer: CallConsumer
    ) -> None:
        self.broker = broker
        self.plane = plane
        self.call_consumer = call_consumer

    def install(self) -> None:
        register = self.broker.register_processor
        register(RequestCode.VIEW_BROKER_STATS_DATA, self.view_broker_stats_data)
        register(RequestCode.GET_BROKER_CONSUME_STATS, self.get_broker_consume_stats)
        register(RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_BROKER, self.get_system_topic_list)
        register(RequestCode.CLEAN_EXPIRED_CONSUMEQUEUE, self.clean_expired_consume_queue)
        register(RequestCode.CLEAN_UNUSED_TOPIC, self.clean_unused_topic)
        register(RequestCode.QUERY_CONSUME_QUEUE, self.query_consume_queue)
        register(RequestCode.CONSUME_MESSAGE_DIRECTLY, self.consume_message_directly)

    # -- statistics ------------------------------------------------------------

    def view_broker_stats_data(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(ViewBrokerStatsDataRequestHeader)
        item = self.broker.stats_manager.stats_item(header.stats_name, header.stats_key)
        if item is None:
            return _response(
                ResponseCode.SYSTEM_ERROR,
                f"The stats <{header.stats_name}> <{header.stats_key}> not exist",
            )
        minute, hour, day = item.in_minute(), item.in_hour(), item.in_day()
        body = BrokerStatsData(
            stats_day=BrokerStatsItem(day.avgpt, day.sum, day.tps),
            stats_hour=BrokerStatsItem(hour.avgpt, hour.sum, hour.tps),
            stats_minute=BrokerStatsItem(minute.avgpt, minute.sum, minute.tps),
        )
        return _response(ResponseCode.SUCCESS, body=body.encode())

    def get_broker_consume_stats(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(GetConsumeStatsInBrokerHeader)
        broker = self.broker
        store = broker.store
        topics = broker.topic_config_manager
        offsets = self.plane.consumer_offset_manager
        consumers = self.plane.consumer_manager
        broker_name = broker.settings.broker.broker_name
        total_diff = 0
        groups_stats: list[JavaHashMap[str, tuple[ConsumeStats, ...]]] = []
        for group in list(broker.subscription_group_manager.subscription_group_table):
            stats_of_group: list[ConsumeStats] = []
            for topic in offsets.which_topic_by_consumer(group):
                config = topics.select_topic_config(topic)
                if config is None:
                    log.warning("consumeStats, topic config not exist, %s", topic)
                    continue
                if header.is_order and not config.order:
                    continue
                if (
                    consumers.find_subscription_data(group, topic) is None
                    and consumers.find_subscription_data_count(group) > 0
                ):
                    log.warning(
                        "consumeStats, the consumer group[%s], topic[%s] not exist", group, topic
                    )
                    continue
                table: JavaHashMap[MessageQueue, OffsetWrapper] = JavaHashMap()
                for queue_id in range(config.write_queue_nums):
                    broker_offset = max(0, store.get_max_offset_in_queue(topic, queue_id))
                    consumer_offset = max(0, offsets.query_offset(group, topic, queue_id))
                    last = 0
                    if consumer_offset - 1 >= 0:
                        stamp = store.get_message_store_timestamp(
                            topic, queue_id, consumer_offset - 1
                        )
                        if stamp > 0:
                            last = stamp
                    table[MessageQueue(topic, broker_name, queue_id)] = OffsetWrapper(
                        broker_offset, consumer_offset, last
                    )
                stats = ConsumeStats(table, self.plane.group_get_tps(group, topic))
                total_diff += stats.compute_total_diff()
                stats_of_group.append(stats)
            entry: JavaHashMap[str, tuple[ConsumeStats, ...]] = JavaHashMap()
            entry[group] = tuple(stats_of_group)
            groups_stats.append(entry)
        body = ConsumeStatsList(broker.broker_addr, tuple(groups_stats), total_diff)
        return _response(ResponseCode.SUCCESS, body=body.encode())

    # -- housekeeping ------------------------------------------------------------

    def get_system_topic_list(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        names = tuple(self.broker.topic_config_manager.system_topic_list)
        return _response(ResponseCode.SUCCESS, body=TopicList(names).encode())

    def clean_expired_consume_queue(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        log.warning("invoke cleanExpiredConsumeQueue start.")
        self.broker.store.clean_expired_consume_queues()
        log.warning("invoke cleanExpiredConsumeQueue end.")
        return _response(ResponseCode.SUCCESS)

    def clean_unused_topic(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        log.warning("invoke cleanUnusedTopic start.")
        self.broker.store.clean_unused_topics(
            set(self.broker.topic_config_manager.topic_config_table)
        )
        log.warning("invoke cleanUnusedTopic end.")
        return _response(ResponseCode.SUCCESS)

    def query_consume_queue(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(QueryConsumeQueueRequestHeader)
        topic = header.topic or ""
        queue = self.broker.store.consume_queue(topic, header.queue_id)
        if queue is None:
            return _response(
                ResponseCode.SYSTEM_ERROR, f"{header.queue_id}@{header.topic} is not exist!"
            )
        subscription = None
        filter_data: str | None = None
        group = header.consumer_group
        if group is not None:
            subscription = self.plane.consumer_manager.find_subscription_data(group, topic)
            if subscription is None:
                filter_data = f"{group}@{header.topic} is not online!"
            else:
                # Tag subscriptions have no consumer filter data: JSON null
                # (and only consume-queue extension entries are evaluated).
                filter_data = "null"
        count = max(0, min(header.count, MAX_QUERY_ENTRIES))
        raw = queue.read_entries(header.index, count * CQ_STORE_UNIT_SIZE)
        if raw is None:
            return RemotingCommand.response(
                ResponseCode.SUCCESS,
                f"Index {header.index} of {header.queue_id}@{header.topic} is not exist!",
            )
        message_filter: PullFilter | None = None
        if subscription is not None and group is not None:
            if is_tag_type(subscription.expression_type):
                message_filter = ExpressionMessageFilter(subscription)
            else:
                filters = self.plane.consumer_filter_manager
                message_filter = SqlMessageFilter(
                    subscription, filters.get(topic, group), filters.bloom
                )
        entries = []
        for position in range(0, len(raw) - CQ_STORE_UNIT_SIZE + 1, CQ_STORE_UNIT_SIZE):
            offset, size, tags = _ENTRY.unpack_from(raw, position)
            if not is_ext_addr(tags):
                entries.append(
                    ConsumeQueueData(physic_offset=offset, physic_size=size, tags_code=tags)
                )
                continue
            unit = queue.ext.get(tags) if queue.ext is not None else None
            if unit is None:
                entries.append(
                    ConsumeQueueData(
                        physic_offset=offset,
                        physic_size=size,
                        tags_code=tags,
                        msg=f"Cq extend not exist!addr: {tags}",
                    )
                )
                continue
            entries.append(
                ConsumeQueueData(
                    physic_offset=offset,
                    physic_size=size,
                    tags_code=tags,
                    extend_data_json=_ext_unit_json(unit),
                    bit_map=(
                        BitsArray(len(unit.bit_map) * 8, unit.bit_map).java_text()
                        if unit.bit_map
                        else None
                    ),
                    eval=(
                        message_filter.is_matched_by_consume_queue(unit.tags_code, unit)
                        if message_filter is not None
                        else False
                    ),
                )
            )
        body = QueryConsumeQueueResponseBody(
            filter_data=filter_data,
            max_queue_index=queue.max_offset_in_queue,
            min_queue_index=queue.min_offset_in_queue,
            queue_data=tuple(entries),
            subscription_data=subscription,
        )
        return _response(ResponseCode.SUCCESS, body=body.encode())

    # -- consumers -------------------------------------------------------------

    async def consume_message_directly(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(ConsumeMessageDirectlyResultRequestHeader)
        fields = dict(request.ext_fields or {})
        fields["brokerName"] = self.broker.settings.broker.broker_name
        try:
            _, offset = decode_offset_message_id(header.msg_id or "")
        except ProtocolError as exc:
            return _response(ResponseCode.SYSTEM_ERROR, f"bad msgId {header.msg_id!r}: {exc}")
        record = self.broker.store.select_one_message_by_offset(offset)
        if record is None:
            return _response(
                ResponseCode.SYSTEM_ERROR, f"can not find message by the offset, {offset}"
            )
        forwarded = request.replace(ext_fields=fields, body=record)
        return await self.call_consumer(forwarded, header.consumer_group, header.client_id or "")


__all__ = ["MAX_QUERY_ENTRIES", "OpsAdminProcessor"]


def _ext_unit_json(unit: CqExtUnit) -> str:
    """``JSON.toJSONString(cqExtUnit)``: fastjson's sorted properties, the bit
    map in base64, left out when there is none."""
    fields: list[str] = []
    if unit.bit_map:
        fields.append(f'"filterBitMap":"{base64.b64encode(unit.bit_map).decode("ascii")}"')
    fields += [
        f'"msgStoreTime":{unit.store_timestamp}',
        f'"size":{unit.size}',
        f'"tagsCode":{unit.tags_code}',
    ]
    return "{" + ",".join(fields) + "}"
