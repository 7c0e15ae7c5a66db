"""Consumer groups and their offsets (Java's ``ConsumerManageProcessor``, plus
the offset commands of ``AdminBrokerProcessor`` that read the same tables).

- GET_CONSUMER_LIST_BY_GROUP: the client ids of a group (SYSTEM_ERROR
  "no consumer for this group, <group>" when it has none).
- QUERY_CONSUMER_OFFSET / UPDATE_CONSUMER_OFFSET: a group's committed offset
  of a queue. A group that never committed gets QUERY_NOT_FOUND, except for a
  queue whose first message is still at offset 0 and in memory: then 0, so a
  new group starts at the beginning (Java's rule).
- GET_CONSUME_STATS (mqadmin consumerProgress), GET_ALL_CONSUMER_OFFSET (a
  slave's copy, the consumerOffset.json text) and QUERY_TOPIC_CONSUME_BY_WHO.
"""

from __future__ import annotations

import logging

from pyrocket.broker.processors.ports import MessageBroker, MessagePath
from pyrocket.protocol.bodies.admin import ConsumeStats, GroupList, OffsetWrapper
from pyrocket.protocol.bodies.client import GetConsumerListByGroupResponseBody, MessageQueue
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RESPONSE_FLAG, RemotingCommand
from pyrocket.protocol.headers import (
    GetConsumerListByGroupRequestHeader,
    GetConsumeStatsRequestHeader,
    QueryConsumerOffsetRequestHeader,
    QueryConsumerOffsetResponseHeader,
    QueryTopicConsumeByWhoRequestHeader,
    UpdateConsumerOffsetRequestHeader,
)
from pyrocket.protocol.javahash import JavaHashMap, JavaHashSet
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.broker")


def _response(
    code: int,
    remark: str | None = None,
    *,
    ext_fields: dict[str, str] | None = None,
    body: bytes | None = None,
) -> RemotingCommand:
    return RemotingCommand(
        code=code, flag=RESPONSE_FLAG, remark=remark, ext_fields=ext_fields, body=body
    )


class ConsumerManageProcessor:
    """Answers the consumer-group and offset requests listed in the module doc."""

    def __init__(self, broker: MessageBroker, plane: MessagePath) -> None:
        self.broker = broker
        self.plane = plane

    def install(self) -> None:
        register = self.broker.register_processor
        register(RequestCode.GET_CONSUMER_LIST_BY_GROUP, self.get_consumer_list_by_group)
        register(RequestCode.UPDATE_CONSUMER_OFFSET, self.update_consumer_offset)
        register(RequestCode.QUERY_CONSUMER_OFFSET, self.query_consumer_offset)
        register(RequestCode.GET_CONSUME_STATS, self.get_consume_stats)
        register(RequestCode.GET_ALL_CONSUMER_OFFSET, self.get_all_consumer_offset)
        register(RequestCode.QUERY_TOPIC_CONSUME_BY_WHO, self.query_topic_consume_by_who)

    def get_consumer_list_by_group(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(GetConsumerListByGroupRequestHeader)
        group = header.consumer_group
        info = self.plane.consumer_manager.get_consumer_group_info(group)
        if info is not None:
            client_ids = info.all_client_ids()
            if client_ids:
                body = GetConsumerListByGroupResponseBody(tuple(client_ids)).encode()
                return _response(ResponseCode.SUCCESS, ext_fields={}, body=body)
            log.warning("getAllClientId failed, %s %s", group, conn.remote_address)
        else:
            log.warning("getConsumerGroupInfo failed, %s %s", group, conn.remote_address)
        return _response(
            ResponseCode.SYSTEM_ERROR, f"no consumer for this group, {group}", ext_fields={}
        )

    def update_consumer_offset(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(UpdateConsumerOffsetRequestHeader)
        self.plane.consumer_offset_manager.commit_offset(
            conn.remote_address,
            header.consumer_group,
            header.topic,
            header.queue_id,
            header.commit_offset,
        )
        return _response(ResponseCode.SUCCESS, ext_fields={})

    def query_consumer_offset(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(QueryConsumerOffsetRequestHeader)
        topic, queue_id = header.topic, header.queue_id
        offset = self.plane.consumer_offset_manager.query_offset(
            header.consumer_group, topic, queue_id
        )
        if offset < 0:
            store = self.broker.store
            minimum = store.get_min_offset_in_queue(topic, queue_id)
            if minimum <= 0 and not store.check_in_disk_by_consume_offset(topic, queue_id, 0):
                offset = 0
        if offset >= 0:
            ext = QueryConsumerOffsetResponseHeader(offset).to_ext_fields()
            return _response(ResponseCode.SUCCESS, ext_fields=ext)
        return _response(
            ResponseCode.QUERY_NOT_FOUND,
            "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first",
            ext_fields={},
        )

    # -- operator commands (Java's AdminBrokerProcessor) -----------------------

    def get_consume_stats(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(GetConsumeStatsRequestHeader)
        group = header.consumer_group
        plane = self.plane
        topics: JavaHashSet[str]
        if header.topic is None or not header.topic.strip():
            topics = plane.consumer_offset_manager.which_topic_by_consumer(group)
        else:
            topics = JavaHashSet()
            topics.add(header.topic)
        broker = self.broker
        store = broker.store
        broker_name = broker.settings.broker.broker_name
        table: JavaHashMap[MessageQueue, OffsetWrapper] = JavaHashMap()
        consume_tps = 0.0
        for topic in topics:
            config = broker.topic_config_manager.select_topic_config(topic)
            if config is None:
                log.warning("consumeStats, topic config not exist, %s", topic)
                continue
            manager = plane.consumer_manager
            if (
                manager.find_subscription_data(group, topic) is None
                and manager.find_subscription_data_count(group) > 0
            ):
                log.warning(
                    "consumeStats, the consumer group[%s], topic[%s] not exist", group, topic
                )
                continue
            for queue_id in range(config.read_queue_nums):
                broker_offset = max(0, store.get_max_offset_in_queue(topic, queue_id))
                consumer_offset = max(
                    0, plane.consumer_offset_manager.query_offset(group, topic, queue_id)
                )
                last = 0
                if consumer_offset - 1 >= 0:
                    stamp = store.get_message_store_timestamp(topic, queue_id, consumer_offset - 1)
                    if stamp > 0:
                        last = stamp
                table[MessageQueue(topic, broker_name, queue_id)] = OffsetWrapper(
                    broker_offset, consumer_offset, last
                )
            consume_tps += plane.group_get_tps(group, topic)
        body = ConsumeStats(table, consume_tps).encode()
        return _response(ResponseCode.SUCCESS, body=body)

    def get_all_consumer_offset(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        content = self.plane.consumer_offset_manager.encode()
        if not content:
            log.error("No consumer offset in this broker, client: %s", conn.remote_address)
            return _response(ResponseCode.SYSTEM_ERROR, "No consumer offset in this broker")
        return _response(ResponseCode.SUCCESS, body=content.encode("utf-8"))

    def query_topic_consume_by_who(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(QueryTopicConsumeByWhoRequestHeader)
        groups = self.plane.consumer_manager.query_topic_consume_by_who(header.topic)
        for group in self.plane.consumer_offset_manager.which_group_by_topic(header.topic):
            groups.add(group)
        body = GroupList(tuple(groups)).encode()
        return _response(ResponseCode.SUCCESS, body=body)


__all__ = ["ConsumerManageProcessor"]
