"""Operator requests to one broker by address (the offset, statistics and
housekeeping half of Java's ``MQClientAPIImpl`` admin calls): resets,
consumer status, consume statistics, VIEW_BROKER_STATS_DATA,
GET_BROKER_CONSUME_STATS, consume-queue views and CONSUME_MESSAGE_DIRECTLY.

Each call raises ResponseError for an answer other than SUCCESS (its code
and remark) and the remoting errors when no answer comes.
"""

from __future__ import annotations

from pyrocket.client.calls import invoke_checked
from pyrocket.errors import ResponseError
from pyrocket.protocol.bodies.admin import ConsumeStats
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.ops import (
    BrokerStatsData,
    ConsumeMessageDirectlyResult,
    ConsumeStatsList,
    GetConsumerStatusBody,
    QueryConsumeQueueResponseBody,
    QueryConsumeTimeSpanBody,
    QueryCorrectionOffsetBody,
    QueueTimeSpan,
    ResetOffsetBody,
)
from pyrocket.protocol.bodies.topic import TopicList
from pyrocket.protocol.codes import LanguageCode, RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    CloneGroupOffsetRequestHeader,
    CommandHeader,
    ConsumeMessageDirectlyResultRequestHeader,
    GetConsumerStatusRequestHeader,
    GetConsumeStatsInBrokerHeader,
    GetConsumeStatsRequestHeader,
    QueryConsumeQueueRequestHeader,
    QueryConsumeTimeSpanRequestHeader,
    QueryCorrectionOffsetHeader,
    ResetOffsetRequestHeader,
    ViewBrokerStatsDataRequestHeader,
)
from pyrocket.remoting import RemotingClient

#: DefaultMQAdminExt's timeout (s); brokerConsumeStats defaults to 50 s.
DEFAULT_TIMEOUT = 5.0


class BrokerOpsAPI:
    """Operator requests to brokers by address (``"host:port"``)."""

    def __init__(self, client: RemotingClient, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.client = client
        self.timeout = timeout

    async def _call(
        self,
        addr: str,
        code: int,
        header: CommandHeader | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        language: LanguageCode | None = None,
    ) -> RemotingCommand:
        request = RemotingCommand.request(code, header)
        wait = self.timeout if timeout is None else timeout
        if language is None:
            return await invoke_checked(self.client, addr, request, wait)
        # A request in another language than the client's (mqadmin's -c
        # speaks as a C++ client): sent as it is, in the client's version
        # and serialize type.
        config = self.client.config
        request = request.replace(
            language=language, version=config.version, serialize_type=config.serialize_type
        )
        response = await self.client.invoke_sync(addr, request, wait, as_is=True)
        if response.code != ResponseCode.SUCCESS:
            raise ResponseError(response.code, response.remark)
        return response

    async def reset_offset(
        self, addr: str, topic: str, group: str, timestamp: int, force: bool, cplus: bool = False
    ) -> dict[MessageQueue, int]:
        """INVOKE_BROKER_TO_RESET_OFFSET (``cplus``: asked as a C++ client,
        so the consumers get the list body). ResponseError CONSUMER_NOT_ONLINE
        when the group has no online member there."""
        response = await self._call(
            addr,
            RequestCode.INVOKE_BROKER_TO_RESET_OFFSET,
            ResetOffsetRequestHeader(topic, group, timestamp, force),
            language=LanguageCode.CPP if cplus else None,
        )
        if response.body is None:
            return {}
        return dict(ResetOffsetBody.decode(response.body).offset_table)

    async def consumer_status(
        self, addr: str, topic: str, group: str, client_addr: str | None = None
    ) -> dict[str, dict[MessageQueue, int]]:
        """INVOKE_BROKER_TO_GET_CONSUMER_STATUS: each member's offsets."""
        response = await self._call(
            addr,
            RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS,
            GetConsumerStatusRequestHeader(topic, group, client_addr),
        )
        body = GetConsumerStatusBody.decode(response.body or b"{}")
        return {client: dict(table) for client, table in body.consumer_table.items()}

    async def consume_stats(self, addr: str, group: str, topic: str | None = None) -> ConsumeStats:
        """GET_CONSUME_STATS: the group's offsets per queue and consume TPS."""
        response = await self._call(
            addr, RequestCode.GET_CONSUME_STATS, GetConsumeStatsRequestHeader(group, topic)
        )
        return ConsumeStats.decode(response.body or b"{}")

    async def view_broker_stats_data(self, addr: str, name: str, key: str) -> BrokerStatsData:
        """VIEW_BROKER_STATS_DATA; SYSTEM_ERROR for an item the broker lacks."""
        response = await self._call(
            addr, RequestCode.VIEW_BROKER_STATS_DATA, ViewBrokerStatsDataRequestHeader(name, key)
        )
        return BrokerStatsData.decode(response.body or b"{}")

    async def broker_consume_stats(
        self,
        addr: str,
        is_order: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ConsumeStatsList:
        """GET_BROKER_CONSUME_STATS: every group's consume statistics there."""
        response = await self._call(
            addr,
            RequestCode.GET_BROKER_CONSUME_STATS,
            GetConsumeStatsInBrokerHeader(is_order),
            timeout=timeout,
        )
        return ConsumeStatsList.decode(response.body or b"{}")

    async def query_correction_offset(
        self, addr: str, topic: str, group: str, filter_groups: str | None = None
    ) -> dict[int, int]:
        """QUERY_CORRECTION_OFFSET: per queue, the lowest offset of the other
        groups (Long.MAX_VALUE where ``group`` is behind it)."""
        response = await self._call(
            addr,
            RequestCode.QUERY_CORRECTION_OFFSET,
            QueryCorrectionOffsetHeader(filter_groups, group, topic),
        )
        return dict(QueryCorrectionOffsetBody.decode(response.body or b"{}").correction_offsets)

    async def clone_group_offset(
        self, addr: str, src_group: str, dest_group: str, topic: str | None, offline: bool
    ) -> None:
        """CLONE_GROUP_OFFSET."""
        await self._call(
            addr,
            RequestCode.CLONE_GROUP_OFFSET,
            CloneGroupOffsetRequestHeader(src_group, dest_group, topic, offline),
        )

    async def query_consume_time_span(
        self, addr: str, topic: str, group: str
    ) -> tuple[QueueTimeSpan, ...]:
        """QUERY_CONSUME_TIME_SPAN: stored and consumed times per queue."""
        response = await self._call(
            addr,
            RequestCode.QUERY_CONSUME_TIME_SPAN,
            QueryConsumeTimeSpanRequestHeader(topic, group),
        )
        return QueryConsumeTimeSpanBody.decode(response.body or b"{}").consume_time_span_set

    async def system_topic_list(self, addr: str) -> list[str]:
        """GET_SYSTEM_TOPIC_LIST_FROM_BROKER."""
        response = await self._call(addr, RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_BROKER)
        return list(TopicList.decode(response.body or b"{}").topic_list)

    async def clean_expired_consume_queue(self, addr: str) -> None:
        """CLEAN_EXPIRED_CONSUMEQUEUE."""
        await self._call(addr, RequestCode.CLEAN_EXPIRED_CONSUMEQUEUE)

    async def clean_unused_topic(self, addr: str) -> None:
        """CLEAN_UNUSED_TOPIC."""
        await self._call(addr, RequestCode.CLEAN_UNUSED_TOPIC)

    async def query_consume_queue(
        self,
        addr: str,
        topic: str,
        queue_id: int,
        index: int,
        count: int,
        group: str | None = None,
    ) -> tuple[QueryConsumeQueueResponseBody | None, str | None]:
        """QUERY_CONSUME_QUEUE: the entries from ``index`` (None with the
        broker's remark when there are none)."""
        response = await self._call(
            addr,
            RequestCode.QUERY_CONSUME_QUEUE,
            QueryConsumeQueueRequestHeader(topic, queue_id, index, count, group),
        )
        if response.body is None:
            return None, response.remark
        return QueryConsumeQueueResponseBody.decode(response.body), response.remark

    async def consume_message_directly(
        self, addr: str, group: str, client_id: str, msg_id: str
    ) -> ConsumeMessageDirectlyResult:
        """CONSUME_MESSAGE_DIRECTLY: the consumer ``client_id`` consumes the
        stored message ``msg_id`` (an offset message id) and says how it went."""
        response = await self._call(
            addr,
            RequestCode.CONSUME_MESSAGE_DIRECTLY,
            ConsumeMessageDirectlyResultRequestHeader(group, client_id, msg_id),
            timeout=3 * self.timeout,
        )
        return ConsumeMessageDirectlyResult.decode(response.body or b"{}")


__all__ = ["BrokerOpsAPI"]
