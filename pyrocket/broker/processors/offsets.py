"""Operator requests about consumer offsets (the offset half of Java's
``AdminBrokerProcessor`` with ``Broker2Client``'s forwarding):

- INVOKE_BROKER_TO_RESET_OFFSET: per queue, the offset at the timestamp
  (-1: the queue's end), kept at the group's committed offset when that is
  lower unless forced; sent oneway to every online member of the group as
  RESET_CONSUMER_CLIENT_OFFSET (a C++ requester gets the list body C++
  clients read); CONSUMER_NOT_ONLINE when no member is online, which makes
  mqadmin fall back to its old-style reset (offsets written with
  UPDATE_CONSUMER_OFFSET);
- INVOKE_BROKER_TO_GET_CONSUMER_STATUS: GET_CONSUMER_STATUS_FROM_CLIENT to
  each member (or the one asked for), their offset tables merged;
- QUERY_CORRECTION_OFFSET, CLONE_GROUP_OFFSET, QUERY_CONSUME_TIME_SPAN.
"""

from __future__ import annotations

import logging
from typing import Final

from pyrocket.broker.processors.ports import AdminBroker, MessagePath
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.ops import (
    GetConsumerStatusBody,
    MessageQueueForC,
    QueryConsumeTimeSpanBody,
    QueryCorrectionOffsetBody,
    QueueTimeSpan,
    ResetOffsetBody,
    ResetOffsetBodyForC,
)
from pyrocket.protocol.codes import LanguageCode, RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    CloneGroupOffsetRequestHeader,
    GetConsumerStatusRequestHeader,
    QueryConsumeTimeSpanRequestHeader,
    QueryCorrectionOffsetHeader,
    ResetOffsetRequestHeader,
)
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.version import version_desc
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.broker")

#: ``MQVersion.Version.V3_0_7_SNAPSHOT.ordinal()``: the first client version
#: that obeys a reset and reports its status.
VERSION_V3_0_7_SNAPSHOT: Final = 28
#: Broker2Client's timeouts for the reset (oneway) and the status call (s).
RESET_TIMEOUT: Final = 5.0
STATUS_TIMEOUT: Final = 5.0
#: Long.MAX_VALUE, QUERY_CORRECTION_OFFSET's "no correction".
_LONG_MAX: Final = (1 << 63) - 1


def _response(code: int, remark: str | None = None, body: bytes | None = None) -> RemotingCommand:
    return RemotingCommand.response(code, remark, body=body)


class OffsetAdminProcessor:
    """Answers the offset requests listed in the module doc."""

    def __init__(self, broker: AdminBroker, plane: MessagePath) -> None:
        self.broker = broker
        self.plane = plane
        self.reset_timeout = RESET_TIMEOUT
        self.status_timeout = STATUS_TIMEOUT

    def install(self) -> None:
        register = self.broker.register_processor
        register(RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, self.reset_offset)
        register(RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS, self.get_consumer_status)
        register(RequestCode.QUERY_CORRECTION_OFFSET, self.query_correction_offset)
        register(RequestCode.CLONE_GROUP_OFFSET, self.clone_group_offset)
        register(RequestCode.QUERY_CONSUME_TIME_SPAN, self.query_consume_time_span)

    # -- reset --------------------------------------------------------------

    def reset_table(
        self, topic: str, group: str, timestamp: int, force: bool
    ) -> JavaHashMap[MessageQueue, int] | RemotingCommand:
        """The offsets a reset moves each queue to, or the error answer."""
        broker = self.broker
        config = broker.topic_config_manager.select_topic_config(topic)
        if config is None:
            remark = f"[reset-offset] reset offset failed, no topic in this broker. topic={topic}"
            log.error("%s", remark)
            return _response(ResponseCode.SYSTEM_ERROR, remark)
        store = broker.store
        offsets = self.plane.consumer_offset_manager
        broker_name = broker.settings.broker.broker_name
        table: JavaHashMap[MessageQueue, int] = JavaHashMap()
        for queue_id in range(config.write_queue_nums):
            committed = offsets.query_offset(group, topic, queue_id)
            if committed == -1:
                return _response(
                    ResponseCode.SYSTEM_ERROR, f"THe consumer group <{group}> not exist"
                )
            if timestamp == -1:
                target = store.get_max_offset_in_queue(topic, queue_id)
            else:
                target = store.get_offset_in_queue_by_time(topic, queue_id, timestamp)
            if target < 0:
                log.warning(
                    "reset offset is invalid. topic=%s, queueId=%d, timeStampOffset=%d",
                    topic,
                    queue_id,
                    target,
                )
                target = 0
            queue = MessageQueue(topic, broker_name, queue_id)
            table[queue] = target if force or target < committed else committed
        return table

    async def reset_offset(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(ResetOffsetRequestHeader)
        topic, group, timestamp = header.topic, header.group, header.timestamp
        log.info(
            "[reset-offset] reset offset started by %s. topic=%s, group=%s, timestamp=%d, "
            "isForce=%s",
            conn.remote_address,
            topic,
            group,
            timestamp,
            header.is_force,
        )
        table = self.reset_table(topic, group, timestamp, header.is_force)
        if isinstance(table, RemotingCommand):
            return table
        forward_header = ResetOffsetRequestHeader(topic, group, timestamp, False)
        if request.language == LanguageCode.CPP:
            forward_body = ResetOffsetBodyForC(
                tuple(
                    MessageQueueForC(q.broker_name, offset, q.queue_id, q.topic)
                    for q, offset in table.items()
                )
            ).encode()
        else:
            forward_body = ResetOffsetBody(table).encode()
        forward = RemotingCommand.request(
            RequestCode.RESET_CONSUMER_CLIENT_OFFSET, forward_header, body=forward_body
        )
        info = self.plane.consumer_manager.get_consumer_group_info(group)
        if info is None or not info.channel_info_table:
            remark = (
                "Consumer not online, so can not reset offset, "
                f"Group: {group} Topic: {topic} Timestamp: {timestamp}"
            )
            log.error("%s", remark)
            return _response(ResponseCode.CONSUMER_NOT_ONLINE, remark)
        for member_conn, member in list(info.channel_info_table.items()):
            if member.version < VERSION_V3_0_7_SNAPSHOT:
                remark = (
                    "the client does not support this feature. version="
                    f"{version_desc(member.version)}"
                )
                log.warning("[reset-offset] %s: %s", member_conn.remote_address, remark)
                return _response(ResponseCode.SYSTEM_ERROR, remark)
            try:
                await member_conn.invoke_oneway(forward, self.reset_timeout)
                log.info(
                    "[reset-offset] reset offset success. topic=%s, group=%s, clientId=%s",
                    topic,
                    group,
                    member.client_id,
                )
            except PyrocketError as exc:
                log.error(
                    "[reset-offset] reset offset exception. topic=%s, group=%s: %s",
                    topic,
                    group,
                    exc,
                )
        return _response(ResponseCode.SUCCESS, body=ResetOffsetBody(table).encode())

    # -- consumer status --------------------------------------------------------

    async def get_consumer_status(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(GetConsumerStatusRequestHeader)
        topic, group = header.topic, header.group
        log.info(
            "[get-consumer-status] get consumer status by %s. topic=%s, group=%s",
            conn.remote_address,
            topic,
            group,
        )
        info = self.plane.consumer_manager.get_consumer_group_info(group)
        if info is None or not info.channel_info_table:
            # Java fails with a NullPointerException for a group it never saw.
            return _response(
                ResponseCode.SYSTEM_ERROR,
                f"No Any Consumer online in the consumer group: [{group}]",
            )
        forward = RemotingCommand.request(
            RequestCode.GET_CONSUMER_STATUS_FROM_CLIENT,
            GetConsumerStatusRequestHeader(topic, group),
        )
        wanted = header.client_addr
        table: JavaHashMap[str, JavaHashMap[MessageQueue, int]] = JavaHashMap()
        for member_conn, member in list(info.channel_info_table.items()):
            if member.version < VERSION_V3_0_7_SNAPSHOT:
                remark = (
                    "the client does not support this feature. version="
                    f"{version_desc(member.version)}"
                )
                return _response(ResponseCode.SYSTEM_ERROR, remark)
            if wanted and wanted.strip() and wanted != member.client_id:
                continue
            try:
                answer = await member_conn.invoke(forward, self.status_timeout)
                if answer.code == ResponseCode.SUCCESS and answer.body is not None:
                    status = GetConsumerStatusBody.decode(answer.body)
                    queues: JavaHashMap[MessageQueue, int] = JavaHashMap()
                    for queue, offset in status.message_queue_table.items():
                        queues[queue] = offset
                    table[member.client_id] = queues
            except PyrocketError as exc:
                log.error(
                    "[get-consumer-status] get consumer status exception. topic=%s, group=%s: %s",
                    topic,
                    group,
                    exc,
                )
            if wanted and wanted.strip():
                break
        return _response(ResponseCode.SUCCESS, body=GetConsumerStatusBody(table).encode())

    # -- offsets between groups ------------------------------------------------

    def query_correction_offset(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(QueryCorrectionOffsetHeader)
        offsets = self.plane.consumer_offset_manager
        minimum = offsets.query_min_offset_in_all_group(header.topic, header.filter_groups)
        correction: JavaHashMap[int, int] = JavaHashMap()
        for queue_id, offset in minimum.items():
            correction[queue_id] = offset
        compare = offsets.query_offsets(header.compare_group, header.topic)
        for queue_id, offset in (compare or {}).items():
            current = correction.get(queue_id)
            if current is None:
                continue  # Java fails with a NullPointerException here
            correction[queue_id] = _LONG_MAX if current > offset else current
        body = QueryCorrectionOffsetBody(correction).encode()
        return _response(ResponseCode.SUCCESS, body=body)

    async def clone_group_offset(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(CloneGroupOffsetRequestHeader)
        offsets = self.plane.consumer_offset_manager
        consumers = self.plane.consumer_manager
        if header.topic is None or not header.topic.strip():
            topics = list(offsets.which_topic_by_consumer(header.src_group))
        else:
            topics = [header.topic]
        for topic in topics:
            if self.broker.topic_config_manager.select_topic_config(topic) is None:
                log.warning("[cloneGroupOffset], topic config not exist, %s", topic)
                continue
            if not header.offline:
                found = consumers.find_subscription_data(header.src_group, topic)
                if consumers.find_subscription_data_count(header.src_group) > 0 and found is None:
                    log.warning(
                        "[cloneGroupOffset], the consumer group[%s], topic[%s] not exist",
                        header.src_group,
                        topic,
                    )
                    continue
            # Java clones the header's topic (null without one: nothing).
            if header.topic is not None:
                offsets.clone_offset(header.src_group, header.dest_group, header.topic)
        return _response(ResponseCode.SUCCESS)

    def query_consume_time_span(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(QueryConsumeTimeSpanRequestHeader)
        topic = header.topic
        config = self.broker.topic_config_manager.select_topic_config(topic)
        if config is None:
            return _response(ResponseCode.TOPIC_NOT_EXIST, f"topic[{topic}] not exist")
        store = self.broker.store
        offsets = self.plane.consumer_offset_manager
        broker_name = self.broker.settings.broker.broker_name
        spans = []
        for queue_id in range(config.write_queue_nums):
            min_time = store.get_earliest_message_time(topic, queue_id)
            maximum = store.get_max_offset_in_queue(topic, queue_id)
            max_time = store.get_message_store_timestamp(topic, queue_id, maximum - 1)
            consumed = offsets.query_offset(header.group, topic, queue_id)
            if consumed > 0:
                consume_time = store.get_message_store_timestamp(topic, queue_id, consumed - 1)
            else:
                consume_time = min_time
            delay = 0
            if consumed < maximum:
                next_time = store.get_message_store_timestamp(topic, queue_id, consumed)
                delay = self.broker.now_ms() - next_time
            spans.append(
                QueueTimeSpan(
                    consume_time_stamp=consume_time,
                    delay_time=delay,
                    max_time_stamp=max_time,
                    message_queue=MessageQueue(topic, broker_name, queue_id),
                    min_time_stamp=min_time,
                )
            )
        body = QueryConsumeTimeSpanBody(tuple(spans)).encode()
        return _response(ResponseCode.SUCCESS, body=body)


__all__ = ["VERSION_V3_0_7_SNAPSHOT", "OffsetAdminProcessor"]
