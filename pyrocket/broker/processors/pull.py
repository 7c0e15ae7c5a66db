"""Serving messages (Java's ``PullMessageProcessor``): PULL_MESSAGE.

The checks come in Java's order with its codes and remarks: broker readable,
consumer group known (or auto-created) and allowed to consume, topic known and
readable, queue id in range, then the subscription: parsed from the request
when it carries one (sysFlag bit 2), else the one the group's heartbeat
registered, which must be at least as new as the request's (else
SUBSCRIPTION_NOT_LATEST); for an SQL92 subscription the group's filter data
(:mod:`pyrocket.broker.consumer_filter`) must exist and be as new
(FILTER_DATA_NOT_EXIST / FILTER_DATA_NOT_LATEST), and ``enablePropertyFilter``
must be on (else SYSTEM_ERROR, as Java). An SQL92 expression carried by the
pull that does not compile is a SUBSCRIPTION_PARSE_FAILED (Java would serve
it unfiltered). With ``filterSupportRetry`` a pull of a retry topic checks
each message against the group's SQL92 subscription to its original topic.
The store's answer becomes the response code
(FOUND -> SUCCESS with the stored messages back to back as the body,
NO_NEW_MSG -> PULL_NOT_FOUND, illegal offsets -> PULL_OFFSET_MOVED with the
offset to go on from, unmatched -> PULL_RETRY_IMMEDIATELY), the remark is the
store status name, and the header carries ``nextBeginOffset``, ``minOffset``,
``maxOffset`` and ``suggestWhichBrokerId``.

A pull that finds nothing new and allows suspension (sysFlag bit 1) is held
by the :class:`~pyrocket.broker.longpolling.PullRequestHoldService` for the
request's ``suspendTimeoutMillis`` (``shortPollingTimeMills`` when long
polling is off) and answered later over the same connection; a connection
holding its maximum of pulls gets the answer at once instead, as a pull
without the suspend flag would. A tag expression longer than the allowed
tags is a SUBSCRIPTION_PARSE_FAILED. A pull with
sysFlag bit 0 also commits ``commitOffset`` for the group. An illegal offset
leaves an OFFSET_MOVED_EVENT message for operators, as Java does.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from pyrocket.broker.consumer_filter import (
    PullFilter,
    RetryMessageFilter,
    SqlMessageFilter,
    build_filter_data,
    compile_inline,
    compile_off_loop,
    is_retry_topic,
)
from pyrocket.broker.longpolling import PullRequest
from pyrocket.broker.message_filter import (
    ExpressionMessageFilter,
    is_tag_type,
)
from pyrocket.broker.processors.common import (
    MASTER_ID,
    is_readable,
    resolve_host_port,
    socket_address_string,
    suggest_todo,
)
from pyrocket.broker.processors.ports import MessageBroker, MessagePath
from pyrocket.broker.processors.pull_filter import (
    PullReply,
    SubscriptionParseError,
    build_subscription,
    no_property_filter,
    offset_moved_event_body,
    parse_failed,
    pull_response,
    request_filter,
    resolved,
)
from pyrocket.broker.store import BrokerMessage, BrokerRole, GetMessageResult, GetMessageStatus
from pyrocket.broker.topic_config import OFFSET_MOVED_EVENT
from pyrocket.errors import ConnectionClosedError
from pyrocket.filter import Selector, SelectorError
from pyrocket.protocol.bodies.admin import SubscriptionGroupConfig
from pyrocket.protocol.bodies.client import (
    MessageModel,
    MessageQueue,
)
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RESPONSE_FLAG, RemotingCommand
from pyrocket.protocol.headers import PullMessageRequestHeader, PullMessageResponseHeader
from pyrocket.protocol.message import MessageConst, java_properties
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.broker")

#: PullSysFlag bits.
FLAG_COMMIT_OFFSET: Final = 0x1
FLAG_SUSPEND: Final = 0x1 << 1
FLAG_SUBSCRIPTION: Final = 0x1 << 2
FLAG_CLASS_FILTER: Final = 0x1 << 3

_EMPTY: Final[dict[str, str]] = {}
#: Longest a woken pull's answer waits for room in a congested connection (s).
WAKE_SEND_WAIT: Final = 0.01


class PullMessageProcessor:
    """Answers PULL_MESSAGE (main server only, as Java)."""

    def __init__(self, broker: MessageBroker, plane: MessagePath) -> None:
        self.broker = broker
        self.plane = plane

    def install(self) -> None:
        self.broker.register_processor(RequestCode.PULL_MESSAGE, self.pull_message, fast=False)

    def pull_message(self, conn: Connection, request: RemotingCommand) -> PullReply:
        """A plain-function processor: a pull whose checks and read need no
        wait (a known group, a compiled filter, data in memory) is answered
        where the connection reads it; else it continues on a worker."""
        return self.process(conn, request, allow_suspend=True)

    async def wake(self, pull: PullRequest) -> None:
        """Run a held pull again (no holding this time) and answer it."""
        conn, request = pull.conn, pull.request
        try:
            response = await resolved(
                self.process(conn, request, allow_suspend=False, header=pull.header)
            )
        except Exception as exc:  # the pull was fine once; report, keep serving
            log.exception("held pull from %s failed when run again", conn.remote_address)
            response = RemotingCommand(
                code=ResponseCode.SYSTEM_ERROR, flag=RESPONSE_FLAG, remark=str(exc) or "error"
            )
        if response is None or not conn.is_open:
            return
        try:
            # Connection.send queues the frame, then waits while the outgoing
            # buffer is over its high-water mark; capping that wait means a
            # peer that does not read holds a wake worker only briefly. The
            # deadline is set once inside the scope: a scope entered with a
            # deadline already past (the process stalled a moment) would be
            # cancelled before the frame is queued, losing the answer, while
            # a deadline set later only takes effect when the task next waits.
            with trio.CancelScope() as cap:
                cap.deadline = trio.current_time() + WAKE_SEND_WAIT
                await conn.send(response.answering(request))
        except ConnectionClosedError:
            log.debug("held pull answer dropped: %s closed", conn.remote_address)

    def process(
        self,
        conn: Connection,
        request: RemotingCommand,
        *,
        allow_suspend: bool,
        header: PullMessageRequestHeader | None = None,
        selector: Selector | None = None,
    ) -> PullReply:
        """One pull; None when it is held (answered later) or answered
        already. ``header`` is the request's, when decoded already;
        ``selector``: the SQL92 expression it carries, compiled already.
        Done at once when nothing waits; else an awaitable of the same: a
        group still to be created and an expression still to be compiled
        are made ready first and the pull is then run again from the top,
        a read of data not in memory and an offset-moved event are awaited
        where they happen."""
        if header is None:
            header = PullMessageRequestHeader.from_ext_fields_fast(request.ext_fields or {})
        broker = self.broker
        settings = broker.settings
        broker_config = settings.broker
        if not is_readable(broker_config.broker_permission):
            remark = f"the broker[{broker_config.broker_ip1}] pulling message is forbidden"
            return pull_response(ResponseCode.NO_PERMISSION, remark)
        group = header.consumer_group
        group_config = broker.subscription_group_manager.subscription_group_table.get(group)
        if group_config is None:
            return self._find_group_first(conn, request, header, allow_suspend=allow_suspend)
        if not group_config.consume_enable:
            return pull_response(
                ResponseCode.NO_PERMISSION, f"subscription group no permission, {group}"
            )
        sys_flag = header.sys_flag
        has_suspend = bool(sys_flag & FLAG_SUSPEND)
        has_commit_offset = bool(sys_flag & FLAG_COMMIT_OFFSET)
        has_subscription = bool(sys_flag & FLAG_SUBSCRIPTION)
        suspend_timeout = header.suspend_timeout_millis if has_suspend else 0
        topic = header.topic
        topic_config = broker.topic_config_manager.select_topic_config(topic)
        if topic_config is None:
            log.error("the topic %s not exist, consumer: %s", topic, conn.remote_address)
            remark = f"topic[{topic}] not exist, apply first please! {suggest_todo()}"
            return pull_response(ResponseCode.TOPIC_NOT_EXIST, remark)
        if not is_readable(topic_config.perm):
            remark = f"the topic[{topic}] pulling message is forbidden"
            return pull_response(ResponseCode.NO_PERMISSION, remark)
        queue_id = header.queue_id
        if queue_id < 0 or queue_id >= topic_config.read_queue_nums:
            consumer = socket_address_string(conn.remote_address)
            remark = (
                f"queueId[{queue_id}] is illegal, topic:[{topic}] topicConfig.readQueueNums:"
                f"[{topic_config.read_queue_nums}] consumer:[{consumer}]"
            )
            log.warning("%s", remark)
            return pull_response(ResponseCode.SYSTEM_ERROR, remark)

        message_filter: PullFilter
        filters = self.plane.consumer_filter_manager
        property_filter = broker_config.enable_property_filter
        if has_subscription:
            expression_type = header.expression_type
            try:
                if is_tag_type(expression_type):
                    message_filter = request_filter(topic, header.subscription, expression_type)
                else:
                    carried = build_subscription(topic, header.subscription, expression_type)
                    if not property_filter:
                        return no_property_filter(expression_type)
                    if selector is None:
                        try:
                            selector = compile_inline(
                                expression_type, header.subscription, filters.selectors
                            )
                        except SelectorError as exc:
                            raise SubscriptionParseError(exc.java_text()) from exc
                        if selector is None:
                            return self._compile_first(
                                conn, request, header, allow_suspend=allow_suspend
                            )
                    filter_data = build_filter_data(
                        topic,
                        group,
                        header.subscription,
                        expression_type,
                        header.sub_version,
                        broker.now_ms(),
                        {header.subscription or "": selector},
                    )
                    if filter_data is None:
                        # Java would go on without a filter and deliver
                        # everything; pyrocket refuses the expression.
                        raise SubscriptionParseError("the expression does not compile")
                    message_filter = SqlMessageFilter(carried, filter_data)
            except SubscriptionParseError as exc:
                return parse_failed(header, exc)
        else:
            group_info = self.plane.consumer_manager.get_consumer_group_info(group)
            if group_info is None:
                log.warning("the consumer's group info not exist, group: %s", group)
                remark = "the consumer's group info not exist" + suggest_todo()
                return pull_response(ResponseCode.SUBSCRIPTION_NOT_EXIST, remark)
            if (
                not group_config.consume_broadcast_enable
                and group_info.message_model is MessageModel.BROADCASTING
            ):
                remark = f"the consumer group[{group}] can not consume by broadcast way"
                return pull_response(ResponseCode.NO_PERMISSION, remark)
            subscription = group_info.find_subscription_data(topic)
            if subscription is None:
                log.warning(
                    "the consumer's subscription not exist, group: %s, topic:%s", group, topic
                )
                remark = "the consumer's subscription not exist" + suggest_todo()
                return pull_response(ResponseCode.SUBSCRIPTION_NOT_EXIST, remark)
            if subscription.sub_version < header.sub_version:
                log.warning(
                    "The broker's subscription is not latest, group: %s %s",
                    group,
                    subscription.sub_string,
                )
                return pull_response(
                    ResponseCode.SUBSCRIPTION_NOT_LATEST, "the consumer's subscription not latest"
                )
            expression_type = subscription.expression_type
            if is_tag_type(expression_type):
                message_filter = group_info.message_filter(topic, subscription)
            else:
                filter_data = filters.get(topic, group)
                if filter_data is None:
                    return pull_response(
                        ResponseCode.FILTER_DATA_NOT_EXIST,
                        "The broker's consumer filter data is not exist!"
                        "Your expression may be wrong!",
                    )
                if filter_data.client_version < header.sub_version:
                    log.warning(
                        "The broker's consumer filter data is not latest, group: %s, topic: %s, "
                        "serverV: %d, clientV: %d",
                        group,
                        topic,
                        filter_data.client_version,
                        header.sub_version,
                    )
                    return pull_response(
                        ResponseCode.FILTER_DATA_NOT_LATEST,
                        "the consumer's consumer filter data not latest",
                    )
                if not property_filter:
                    return no_property_filter(expression_type)
                message_filter = SqlMessageFilter(subscription, filter_data, filters.bloom)
        if (
            broker_config.filter_support_retry
            and is_retry_topic(topic)
            and isinstance(message_filter, ExpressionMessageFilter)
        ):
            message_filter = RetryMessageFilter(message_filter, group, filters.get)

        begin = broker.now_ms()
        # A filter that takes everything is no filter for the read: the
        # store then asks nothing per message.
        read_filter = (
            None
            if isinstance(message_filter, ExpressionMessageFilter) and message_filter.match_all
            else message_filter
        )
        read = broker.get_message_nowait(
            group, topic, queue_id, header.queue_offset, header.max_msg_nums, read_filter
        )
        answer = functools.partial(
            self._answer_read,
            conn,
            request,
            header,
            group_config,
            message_filter,
            begin,
            allow_suspend=allow_suspend,
            suspend_timeout=suspend_timeout,
            has_suspend=has_suspend,
            has_commit_offset=has_commit_offset,
        )
        if read is None or isinstance(read, GetMessageResult):
            return answer(read)
        return self._answer_when_read(read, answer)

    async def _find_group_first(
        self,
        conn: Connection,
        request: RemotingCommand,
        header: PullMessageRequestHeader,
        *,
        allow_suspend: bool,
    ) -> RemotingCommand | None:
        """The pull of a group not in the table: created first, when it may
        be (which waits for the table's file), then the pull from the top."""
        group = header.consumer_group
        groups = self.broker.subscription_group_manager
        if await groups.find_subscription_group_config(group) is None:
            remark = f"subscription group [{group}] does not exist, {suggest_todo()}"
            return pull_response(ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, remark)
        return await resolved(
            self.process(conn, request, allow_suspend=allow_suspend, header=header)
        )

    async def _compile_first(
        self,
        conn: Connection,
        request: RemotingCommand,
        header: PullMessageRequestHeader,
        *,
        allow_suspend: bool,
    ) -> RemotingCommand | None:
        """The pull of an SQL92 expression too long to compile on the event
        loop: compiled in a worker thread first, then the pull from the top."""
        filters = self.plane.consumer_filter_manager
        try:
            selector = await compile_off_loop(
                header.expression_type, header.subscription, filters.selectors
            )
        except SelectorError as exc:
            return parse_failed(header, SubscriptionParseError(exc.java_text()))
        return await resolved(
            self.process(
                conn, request, allow_suspend=allow_suspend, header=header, selector=selector
            )
        )

    async def _answer_when_read(
        self,
        read: Awaitable[GetMessageResult],
        answer: Callable[[GetMessageResult | None], PullReply],
    ) -> RemotingCommand | None:
        return await resolved(answer(await read))

    def _answer_read(
        self,
        conn: Connection,
        request: RemotingCommand,
        header: PullMessageRequestHeader,
        group_config: SubscriptionGroupConfig,
        message_filter: PullFilter,
        begin: int,
        result: GetMessageResult | None,
        *,
        allow_suspend: bool,
        suspend_timeout: int,
        has_suspend: bool,
        has_commit_offset: bool,
    ) -> PullReply:
        """The answer to a pull the store has read for (``result``; None
        when the store is not running), and the offset it commits."""
        broker = self.broker
        response: PullReply
        if result is None:
            response = pull_response(ResponseCode.SYSTEM_ERROR, "store getMessage return null")
        else:
            response = self._answer(
                conn,
                request,
                header,
                result,
                group_config.which_broker_when_consume_slowly,
                group_config.broker_id,
                message_filter,
                allow_suspend=allow_suspend,
                suspend_timeout=suspend_timeout,
                has_suspend=has_suspend,
                read_ms=broker.now_ms() - begin,
            )
        store_config = broker.settings.store
        if allow_suspend and has_commit_offset and store_config.broker_role is not BrokerRole.SLAVE:
            self.plane.consumer_offset_manager.commit_offset(
                conn.remote_address,
                header.consumer_group,
                header.topic,
                header.queue_id,
                header.commit_offset,
            )
        return response

    def _answer(
        self,
        conn: Connection,
        request: RemotingCommand,
        header: PullMessageRequestHeader,
        result: GetMessageResult,
        slow_broker_id: int,
        group_broker_id: int,
        message_filter: PullFilter,
        *,
        allow_suspend: bool,
        suspend_timeout: int,
        has_suspend: bool,
        read_ms: int = 0,
    ) -> PullReply:
        settings = self.broker.settings
        broker_config = settings.broker
        store_config = settings.store
        # Java's sequence: the role may set a code that the status then replaces.
        if broker_config.slave_read_enable:
            suggest = slow_broker_id if result.suggest_pulling_from_slave else group_broker_id
        else:
            suggest = MASTER_ID
        status = result.status
        if status is GetMessageStatus.FOUND:
            code = ResponseCode.SUCCESS
        elif status in (GetMessageStatus.MESSAGE_WAS_REMOVING, GetMessageStatus.NO_MATCHED_MESSAGE):
            code = ResponseCode.PULL_RETRY_IMMEDIATELY
        elif status in (
            GetMessageStatus.NO_MATCHED_LOGIC_QUEUE,
            GetMessageStatus.NO_MESSAGE_IN_QUEUE,
        ):
            if header.queue_offset != 0:
                code = ResponseCode.PULL_OFFSET_MOVED
                log.info(
                    "the broker store no queue data, fix the request offset %d to %d, Topic: %s "
                    "QueueId: %d Consumer Group: %s",
                    header.queue_offset,
                    result.next_begin_offset,
                    header.topic,
                    header.queue_id,
                    header.consumer_group,
                )
            else:
                code = ResponseCode.PULL_NOT_FOUND
        elif status in (GetMessageStatus.OFFSET_FOUND_NULL, GetMessageStatus.OFFSET_OVERFLOW_ONE):
            code = ResponseCode.PULL_NOT_FOUND
        else:  # OFFSET_OVERFLOW_BADLY, OFFSET_TOO_SMALL
            code = ResponseCode.PULL_OFFSET_MOVED
            log.info(
                "the request offset %d is illegal (%s), broker min %d max %d, consumer: %s",
                header.queue_offset,
                status.name,
                result.min_offset,
                result.max_offset,
                conn.remote_address,
            )

        if code == ResponseCode.SUCCESS:
            body = result.body()
            self.plane.record_group_get(
                header.consumer_group,
                header.topic,
                header.queue_id,
                result.message_count,
                len(body),
                read_ms,
            )
            return RemotingCommand(
                code=code,
                flag=RESPONSE_FLAG,
                remark=status.name,
                ext_fields=PullMessageResponseHeader.answer_ext_fields(
                    suggest, result.next_begin_offset, result.min_offset, result.max_offset
                ),
                body=body or None,
            )
        if code == ResponseCode.PULL_NOT_FOUND and allow_suspend and has_suspend:
            polling_ms = suspend_timeout
            if not broker_config.long_polling_enable:
                polling_ms = broker_config.short_polling_time_mills
            held = PullRequest(
                conn,
                request,
                header.topic,
                header.queue_id,
                header.queue_offset,
                message_filter,
                trio.current_time() + polling_ms / 1000,
                header,
            )
            if self.plane.hold_service.suspend_pull_request(held):
                return None
        if code == ResponseCode.PULL_OFFSET_MOVED:
            if (
                store_config.broker_role is not BrokerRole.SLAVE
                or store_config.offset_check_in_slave
            ):
                queue = MessageQueue(header.topic, broker_config.broker_name, header.queue_id)
                body = offset_moved_event_body(
                    header.consumer_group, queue, header.queue_offset, result.next_begin_offset
                )
                log.warning(
                    "PULL_OFFSET_MOVED:correction offset. topic=%s, groupId=%s, requestOffset=%d, "
                    "newOffset=%d, suggestBrokerId=%d",
                    header.topic,
                    header.consumer_group,
                    header.queue_offset,
                    result.next_begin_offset,
                    suggest,
                )
                moved = PullMessageResponseHeader(
                    suggest, result.next_begin_offset, result.min_offset, result.max_offset
                )
                return self._answer_after_event(
                    header.consumer_group, body, pull_response(code, status.name, moved)
                )
            suggest = group_broker_id
            code = ResponseCode.PULL_RETRY_IMMEDIATELY
        response_header = PullMessageResponseHeader(
            suggest, result.next_begin_offset, result.min_offset, result.max_offset
        )
        return pull_response(code, status.name, response_header)

    async def _answer_after_event(
        self, group: str, body: bytes, response: RemotingCommand
    ) -> RemotingCommand:
        """``response`` once the OFFSET_MOVED_EVENT message is stored."""
        await self._offset_moved_event(group, body)
        return response

    async def _offset_moved_event(self, group: str, body: bytes) -> None:
        """``generateOffsetMovedEvent``: a message in OFFSET_MOVED_EVENT
        tagged and keyed by the group, for whoever watches corrections."""
        properties = java_properties(
            [
                (MessageConst.PROPERTY_TAGS, group),
                (MessageConst.PROPERTY_DELAY_TIME_LEVEL, "0"),
                (MessageConst.PROPERTY_KEYS, group),
            ]
        )
        settings = self.broker.settings
        host = resolve_host_port(settings.broker.broker_ip1, settings.server.listen_port)
        message = BrokerMessage(
            OFFSET_MOVED_EVENT,
            0,
            body,
            properties,
            born_timestamp=self.broker.now_ms(),
            born_host=host,
            store_host=host,
        )
        try:
            await self.broker.put_message(message, topic_stats=False)
        except Exception:
            log.warning("generateOffsetMovedEvent failed for %s", group, exc_info=True)


__all__ = [
    "FLAG_CLASS_FILTER",
    "FLAG_COMMIT_OFFSET",
    "FLAG_SUBSCRIPTION",
    "FLAG_SUSPEND",
    "PullMessageProcessor",
    "SubscriptionParseError",
    "build_subscription",
    "offset_moved_event_body",
]
