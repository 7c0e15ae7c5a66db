"""Storing messages (Java's ``SendMessageProcessor`` and
``AbstractSendMessageProcessor``): SEND_MESSAGE, SEND_MESSAGE_V2 (the same
header with one-letter keys), SEND_BATCH_MESSAGE and CONSUMER_SEND_MSG_BACK.

The checks are Java's, in Java's order, with its codes and remarks: the
broker must be writeable for an ordered topic; the topic name must be valid
(and not TBW102); an unknown topic is created from the default topic (TBW102)
when that one may be inherited (``autoCreateTopicEnable``), a ``%RETRY%``
topic in any case; the queue id must exist. A message sent to a retry topic
that was consumed too often goes to the group's ``%DLQ%`` topic. The store's
status becomes the response code (``handlePutMessageResult``). Bodies the
client compressed (sysFlag bit 0) are stored as sent, properties strings
verbatim but for a request's ``CLUSTER`` (:mod:`.request_message`).

A successful answer carries ``msgId`` (the offset message id: store host and
commit-log offset; for a batch the ids joined by ``,``), ``queueId`` and
``queueOffset``, with the ``MSG_REGION`` and ``TRACE_ON`` fields Java adds
first, all in Java's HashMap order. Where Java crashes this answers: a queue
id chosen by the broker is never negative, a missing ``maxReconsumeTimes``
falls back to the group's ``retryMaxTimes`` (Java: NullPointerException).
A prepared (transactional) message goes to the half queue
(:mod:`pyrocket.broker.transaction`), or is refused with
``rejectTransactionMessage=true``.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Awaitable, Mapping
from typing import Final

from pyrocket.broker.processors.common import (
    dlq_topic,
    host_port,
    is_writeable,
    resolve_host_port,
    suggest_todo,
    topic_config_string,
)
from pyrocket.broker.processors.ports import MessageBroker
from pyrocket.broker.processors.request_message import with_request_cluster
from pyrocket.broker.processors.send_common import (
    HOST_FLAGS,
    MESSAGE_ILLEGAL_REMARK,
    SEND_OK,
    decode_send_header,
    parse_properties,
    preceding_fields,
    send_response,
    time_human_string,
)
from pyrocket.broker.store import (
    BrokerBatch,
    BrokerMessage,
    PutMessageResult,
    PutMessageStatus,
)
from pyrocket.broker.store.cleanup import disk_used_ratio
from pyrocket.broker.topic_config import (
    RETRY_GROUP_TOPIC_PREFIX,
    build_sys_flag,
    topic_error,
)
from pyrocket.broker.transaction import to_half_message
from pyrocket.later import Later
from pyrocket.logtext import clip
from pyrocket.protocol.bodies.topic import PERM_READ, PERM_WRITE, TopicConfig, TopicFilterType
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    ConsumerSendMsgBackRequestHeader,
    SendMessageRequestHeader,
    SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
)
from pyrocket.protocol.message import (
    HostPort,
    MessageConst,
    MessageSysFlag,
    encode_properties,
    host_flags,
    java_properties,
)
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.broker")

#: MQVersion.Version.V3_4_9.ordinal(): from this version on the client says
#: how often a message may be consumed again.
VERSION_V3_4_9: Final = 121
#: AbstractSendMessageProcessor.DLQ_NUMS_PER_GROUP.
DLQ_NUMS_PER_GROUP: Final = 1


class SendMessageProcessor:
    """Answers SEND_MESSAGE, SEND_MESSAGE_V2, SEND_BATCH_MESSAGE and
    CONSUMER_SEND_MSG_BACK for one broker."""

    def __init__(self, broker: MessageBroker) -> None:
        self.broker = broker
        self._random = random.Random()
        self._topic_errors: dict[str, str | None] = {}

    def install(self) -> None:
        for code in (
            RequestCode.SEND_MESSAGE,
            RequestCode.SEND_MESSAGE_V2,
            RequestCode.SEND_BATCH_MESSAGE,
        ):
            self.broker.register_processor(code, self.send_message)
        self.broker.register_processor(
            RequestCode.CONSUMER_SEND_MSG_BACK, self.consumer_send_msg_back
        )

    # -- helpers --------------------------------------------------------------

    @property
    def store_host(self) -> HostPort:
        """``brokerIP1:listenPort``, the store host of every message."""
        settings = self.broker.settings
        return resolve_host_port(settings.broker.broker_ip1, settings.server.listen_port)

    def _random_queue_id(self, queue_nums: int) -> int:
        return self._random.randrange(queue_nums) if queue_nums > 0 else 0

    def _disk_util(self) -> str:
        root = self.broker.settings.store.store_path_root_dir
        store = self.broker.settings.store
        ratios = (
            disk_used_ratio(str(store.commit_log_dir)),
            disk_used_ratio(f"{root}/consumequeue"),
            disk_used_ratio(f"{root}/index"),
        )
        return "CL: {:5.2f} CQ: {:5.2f} INDEX: {:5.2f}".format(*ratios)

    # -- SEND_MESSAGE / SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE ----------------------

    def send_message(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand | Awaitable[RemotingCommand]:
        """A plain-function processor: a send that waits for nothing (an
        existing topic that passes the checks, an append that needs no new
        file, no flush or slave to wait for) is stored and answered right
        where the connection reads it, with no task switch. Anything else
        continues as a coroutine on a worker, from the step that waits: a
        check that may create a topic, a retry topic's group lookup, a batch,
        an append waiting for a file (holding the connection's ordered turn
        until it is appended), or the slave a stored message waits for (the
        turn passed on at once, since it is appended). A stored message that
        waits for its group commit hands back a Later of its answer, which
        the commit settles and sends."""
        header = decode_send_header(request)
        stray = header.sys_flag & HOST_FLAGS
        if stray and stray & ~host_flags(host_port(conn.remote_address), self.store_host):
            return self._refuse_sys_flag(conn, header.sys_flag)
        broker = self.broker
        broker_config = broker.settings.broker
        preceding = preceding_fields(broker_config.region_id, broker_config.trace_on)
        topic = header.topic
        config = broker.topic_config_manager.select_topic_config(topic)
        if (
            config is None
            or header.batch
            or topic.startswith(RETRY_GROUP_TOPIC_PREFIX)
            or not self._passes_pre_send(header, config)
        ):
            return self._send_checked(conn, request, header, preceding)
        queue_id = header.queue_id
        if queue_id < 0:
            queue_id = self._random_queue_id(config.write_queue_nums)
        message = self._message(conn, request, header, config, topic, queue_id, preceding)
        if isinstance(message, RemotingCommand):
            return message
        put = broker.put_message_nowait(message)
        if put is None:
            return self._store(conn, request, message, queue_id, preceding)
        if isinstance(put, PutMessageResult):
            return self._put_answer(put, queue_id, preceding)
        conn.release_order(request)
        if isinstance(put, Later):
            # Answered by the group commit that puts it on disk.
            return put.then(lambda result: self._put_answer(result, queue_id, preceding))
        return self._answer_when_done(put, queue_id, preceding)

    async def _send_checked(
        self,
        conn: Connection,
        request: RemotingCommand,
        header: SendMessageRequestHeader | SendMessageRequestHeaderV2,
        preceding: Mapping[str, str],
    ) -> RemotingCommand:
        """A send the plain path does not finish: the checks in Java's order
        (creating the topic, or refusing), then the message or batch."""
        broker = self.broker
        topic = header.topic
        config = broker.topic_config_manager.select_topic_config(topic)
        if config is None or not self._passes_pre_send(header, config):
            # The checks again, in Java's order, for the refusal's answer
            # (or to create the topic).
            refused = await self._pre_send(conn, header, preceding)
            if refused is not None:
                return refused
            config = broker.topic_config_manager.select_topic_config(topic)
            assert config is not None  # _pre_send found or created it
        queue_id = header.queue_id
        if queue_id < 0:
            queue_id = self._random_queue_id(config.write_queue_nums)
        if header.batch:
            return await self._send_batch(conn, request, header, config, queue_id, preceding)
        return await self._send_one(conn, request, header, config, queue_id, preceding)

    async def _answer_when_done(
        self,
        put: Awaitable[PutMessageResult],
        queue_id: int,
        preceding: Mapping[str, str],
    ) -> RemotingCommand:
        return self._put_answer(await put, queue_id, preceding)

    def _refuse_sys_flag(self, conn: Connection, sys_flag: int) -> RemotingCommand:
        """MESSAGE_ILLEGAL for a sysFlag that marks an IPv4 host as IPv6: no
        record could be stored with it (Java would write a corrupt one)."""
        remark = (
            f"the message sysFlag {sys_flag} is illegal: it marks the born or store "
            "host as IPv6, and it is not"
        )
        log.warning("send from %s refused: %s", conn.remote_address, remark)
        return send_response(ResponseCode.MESSAGE_ILLEGAL, remark)

    async def _put(
        self, conn: Connection, request: RemotingCommand, item: BrokerMessage | BrokerBatch
    ) -> PutMessageResult:
        """Store ``item``, ending the connection's ordered phase as soon as it
        is appended: the next send on the connection is appended while this
        one waits for its group commit (which then covers both)."""

        appended = functools.partial(conn.release_order, request)
        if isinstance(item, BrokerBatch):
            return await self.broker.put_messages(item, appended=appended)
        return await self.broker.put_message(item, appended=appended)

    def _passes_pre_send(
        self, header: SendMessageRequestHeader | SendMessageRequestHeaderV2, config: TopicConfig
    ) -> bool:
        """True when ``_pre_send`` would let a send to the existing topic of
        ``config`` through (the hot path skips it then); every refusal of
        ``_pre_send`` must fail one of these conditions."""
        broker_config = self.broker.settings.broker
        queue_id = header.queue_id
        return (
            self.broker.store.now() >= broker_config.start_accept_send_request_time_stamp
            and (is_writeable(broker_config.broker_permission) or not config.order)
            and self._topic_error(header.topic) is None
            and queue_id < max(config.write_queue_nums, config.read_queue_nums)
            and (queue_id >= 0 or config.write_queue_nums > 0)
        )

    def _topic_error(self, topic: str) -> str | None:
        """``TopicValidator.validateTopic``'s remark for ``topic``, memoised."""
        cache = self._topic_errors
        try:
            return cache[topic]
        except KeyError:
            pass
        if len(cache) >= 10_000:
            cache.clear()
        error = cache[topic] = topic_error(topic)
        return error

    async def _pre_send(
        self,
        conn: Connection,
        header: SendMessageRequestHeader | SendMessageRequestHeaderV2,
        preceding: Mapping[str, str],
    ) -> RemotingCommand | None:
        """``preSend`` / ``msgCheck``: the refusal, or None to go on (the topic
        then exists)."""
        broker = self.broker
        broker_config = broker.settings.broker
        start = broker_config.start_accept_send_request_time_stamp
        if broker.store.now() < start:
            remark = f"broker unable to service, until {time_human_string(start)}"
            return send_response(ResponseCode.SYSTEM_ERROR, remark, preceding)
        topics = broker.topic_config_manager
        topic = header.topic
        if not is_writeable(broker_config.broker_permission) and topics.is_order_topic(topic):
            remark = f"the broker[{broker_config.broker_ip1}] sending message is forbidden"
            return send_response(ResponseCode.NO_PERMISSION, remark, preceding)
        remark_or_none = self._topic_error(topic)
        if remark_or_none is not None:
            return send_response(ResponseCode.SYSTEM_ERROR, remark_or_none, preceding)
        config = topics.select_topic_config(topic)
        if config is None:
            sys_flag = 0
            if header.unit_mode:
                retry = topic.startswith(RETRY_GROUP_TOPIC_PREFIX)
                sys_flag = build_sys_flag(not retry, retry)
            log.warning("the topic %s not exist, producer: %s", topic, conn.remote_address)
            config = await topics.create_topic_in_send_message_method(
                topic,
                header.default_topic,
                conn.remote_address,
                header.default_topic_queue_nums,
                sys_flag,
            )
            if config is None and topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
                config = await topics.create_topic_in_send_message_back_method(
                    topic, 1, PERM_WRITE | PERM_READ, sys_flag
                )
            if config is None:
                remark = f"topic[{topic}] not exist, apply first please!" + suggest_todo()
                return send_response(ResponseCode.TOPIC_NOT_EXIST, remark, preceding)
        valid = max(config.write_queue_nums, config.read_queue_nums)
        if header.queue_id >= valid or (header.queue_id < 0 and config.write_queue_nums <= 0):
            remark = (
                f"request queueId[{header.queue_id}] is illegal, {topic_config_string(config)} "
                f"Producer: {conn.remote_address}"
            )
            log.warning("%s", remark)
            return send_response(ResponseCode.SYSTEM_ERROR, remark, preceding)
        return None

    async def _retry_and_dlq(
        self,
        request: RemotingCommand,
        header: SendMessageRequestHeader | SendMessageRequestHeaderV2,
        preceding: Mapping[str, str],
    ) -> tuple[str, int | None] | RemotingCommand:
        """``handleRetryAndDLQ``: a message sent to ``%RETRY%<group>`` after
        too many attempts goes to ``%DLQ%<group>`` (returns its topic and
        queue); anything else keeps its topic (queue None)."""
        topic = header.topic
        if not topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
            return topic, None
        group = topic[len(RETRY_GROUP_TOPIC_PREFIX) :]
        groups = self.broker.subscription_group_manager
        group_config = await groups.find_subscription_group_config(group)
        if group_config is None:
            remark = f"subscription group not exist, {group} " + suggest_todo()
            return send_response(ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, remark, preceding)
        max_reconsume = group_config.retry_max_times
        if request.version >= VERSION_V3_4_9 and header.max_reconsume_times is not None:
            max_reconsume = header.max_reconsume_times
        reconsume_times = header.reconsume_times or 0
        if reconsume_times < max_reconsume:
            return topic, None
        dlq = dlq_topic(group)
        queue_id = self._random_queue_id(DLQ_NUMS_PER_GROUP)
        await self.broker.topic_config_manager.create_topic_in_send_message_back_method(
            dlq, DLQ_NUMS_PER_GROUP, PERM_WRITE, 0
        )
        return dlq, queue_id

    def _put_answer(
        self,
        result: PutMessageResult,
        queue_id: int,
        preceding: Mapping[str, str],
    ) -> RemotingCommand:
        """``handlePutMessageResult``: the store's status as Java answers it."""
        status = result.status
        appended = result.append_result
        code = ResponseCode.SUCCESS if status is PutMessageStatus.PUT_OK else SEND_OK.get(status)
        if code is not None and appended is not None:
            ext = SendMessageResponseHeader.answer_ext_fields(
                appended.msg_id, queue_id, appended.logics_offset, preceding
            )
            return send_response(code, None, ext)
        if status is PutMessageStatus.CREATE_MAPEDFILE_FAILED:
            code, remark = (
                ResponseCode.SYSTEM_ERROR,
                "create mapped file failed, server is busy or broken.",
            )
        elif status in (
            PutMessageStatus.MESSAGE_ILLEGAL,
            PutMessageStatus.PROPERTIES_SIZE_EXCEEDED,
        ):
            code, remark = ResponseCode.MESSAGE_ILLEGAL, MESSAGE_ILLEGAL_REMARK
        elif status is PutMessageStatus.SERVICE_NOT_AVAILABLE:
            code = ResponseCode.SERVICE_NOT_AVAILABLE
            remark = (
                f"service not available now, maybe disk full, {self._disk_util()}, "
                "maybe your broker machine memory too small."
            )
        elif status is PutMessageStatus.OS_PAGECACHE_BUSY:
            code, remark = (
                ResponseCode.SYSTEM_ERROR,
                "[PC_SYNCHRONIZED]broker busy, start flow control for a while",
            )
        elif status is PutMessageStatus.UNKNOWN_ERROR:
            code, remark = ResponseCode.SYSTEM_ERROR, "UNKNOWN_ERROR"
        else:
            code, remark = ResponseCode.SYSTEM_ERROR, "UNKNOWN_ERROR DEFAULT"
        return send_response(code, remark, preceding)

    async def _send_one(
        self,
        conn: Connection,
        request: RemotingCommand,
        header: SendMessageRequestHeader | SendMessageRequestHeaderV2,
        config: TopicConfig,
        queue_id: int,
        preceding: Mapping[str, str],
    ) -> RemotingCommand:
        topic = header.topic
        if topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
            routed = await self._retry_and_dlq(request, header, preceding)
            if isinstance(routed, RemotingCommand):
                return routed
            topic, dlq_queue = routed
            if dlq_queue is not None:
                queue_id = dlq_queue
        message = self._message(conn, request, header, config, topic, queue_id, preceding)
        if isinstance(message, RemotingCommand):
            return message
        return await self._store(conn, request, message, queue_id, preceding)

    def _message(
        self,
        conn: Connection,
        request: RemotingCommand,
        header: SendMessageRequestHeader | SendMessageRequestHeaderV2,
        config: TopicConfig,
        topic: str,
        queue_id: int,
        preceding: Mapping[str, str],
    ) -> BrokerMessage | RemotingCommand:
        """The message to store for a send to ``topic`` (a prepared one as
        its half message), or the refusal of a transactional message."""
        sys_flag = header.sys_flag
        if config.topic_filter_type is TopicFilterType.MULTI_TAG:
            sys_flag |= MessageSysFlag.MULTI_TAGS_FLAG
        message = BrokerMessage.from_properties_string(
            topic,
            queue_id,
            request.body or b"",
            with_request_cluster(
                header.properties or "", self.broker.settings.broker.broker_cluster_name
            ),
            flag=header.flag,
            sys_flag=sys_flag,
            born_timestamp=header.born_timestamp,
            born_host=host_port(conn.remote_address),
            store_host=self.store_host,
            reconsume_times=header.reconsume_times or 0,
        )
        transaction = message.properties.get(MessageConst.PROPERTY_TRANSACTION_PREPARED)
        if transaction is not None and transaction.lower() == "true":
            if self.broker.settings.broker.reject_transaction_message:
                remark = (
                    f"the broker[{self.broker.settings.broker.broker_ip1}] sending transaction "
                    "message is forbidden"
                )
                return send_response(ResponseCode.NO_PERMISSION, remark, preceding)
            message = to_half_message(message)
        return message

    async def _store(
        self,
        conn: Connection,
        request: RemotingCommand,
        message: BrokerMessage,
        queue_id: int,
        preceding: Mapping[str, str],
    ) -> RemotingCommand:
        result = await self._put(conn, request, message)
        return self._put_answer(result, queue_id, preceding)

    async def _send_batch(
        self,
        conn: Connection,
        request: RemotingCommand,
        header: SendMessageRequestHeader | SendMessageRequestHeaderV2,
        config: TopicConfig,
        queue_id: int,
        preceding: Mapping[str, str],
    ) -> RemotingCommand:
        topic = header.topic
        if len(topic) > 127:
            remark = f"message topic length too long {len(topic)}"
            return send_response(ResponseCode.MESSAGE_ILLEGAL, remark, preceding)
        sys_flag = header.sys_flag
        if config.topic_filter_type is TopicFilterType.MULTI_TAG:
            sys_flag |= MessageSysFlag.MULTI_TAGS_FLAG
        # Java adds CLUSTER to the batch's own properties; only DELAY and WAIT
        # of those matter to the store, each message keeps its own.
        batch = BrokerBatch(
            topic,
            queue_id,
            request.body or b"",
            properties=parse_properties(header.properties),
            sys_flag=sys_flag,
            born_timestamp=header.born_timestamp,
            born_host=host_port(conn.remote_address),
            store_host=self.store_host,
            reconsume_times=header.reconsume_times or 0,
        )
        result = await self._put(conn, request, batch)
        return self._put_answer(result, queue_id, preceding)

    # -- CONSUMER_SEND_MSG_BACK -------------------------------------------------

    async def consumer_send_msg_back(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        """A consumer could not consume a message: store a copy in the
        group's retry topic, delayed by the next delay level, or in its dead
        letter topic once it was retried too often."""
        header = request.decode_header(ConsumerSendMsgBackRequestHeader)
        broker = self.broker
        group = header.group
        # Checked before anything is looked up or created: a group whose
        # retry or dead-letter topic is not a valid topic name would be
        # refused by every later step, or worse, stored under a bad name.
        for derived in (f"{RETRY_GROUP_TOPIC_PREFIX}{group}", dlq_topic(group)):
            error = self._topic_error(derived)
            if error is not None:
                remark = (
                    f"the consumer group {clip(group)} cannot send messages back: its topic "
                    f"{clip(derived)} is not valid: {error}"
                )
                log.warning("send back from %s refused: %s", conn.remote_address, remark)
                return send_response(ResponseCode.MESSAGE_ILLEGAL, remark)
        group_config = await broker.subscription_group_manager.find_subscription_group_config(group)
        if group_config is None:
            remark = f"subscription group not exist, {group} " + suggest_todo()
            return send_response(ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, remark)
        broker_config = broker.settings.broker
        if not is_writeable(broker_config.broker_permission):
            remark = f"the broker[{broker_config.broker_ip1}] sending message is forbidden"
            return send_response(ResponseCode.NO_PERMISSION, remark)
        if group_config.retry_queue_nums <= 0:
            return send_response(ResponseCode.SUCCESS)
        new_topic = f"{RETRY_GROUP_TOPIC_PREFIX}{group}"
        queue_id = self._random_queue_id(group_config.retry_queue_nums)
        topic_sys_flag = build_sys_flag(False, True) if header.unit_mode else 0
        topics = broker.topic_config_manager
        config = await topics.create_topic_in_send_message_back_method(
            new_topic, group_config.retry_queue_nums, PERM_WRITE | PERM_READ, topic_sys_flag
        )
        if not is_writeable(config.perm):
            remark = f"the topic[{new_topic}] sending message is forbidden"
            return send_response(ResponseCode.NO_PERMISSION, remark)
        original = broker.store.look_message_by_offset(header.offset)
        if original is None:
            remark = f"look message by offset failed, {header.offset}"
            return send_response(ResponseCode.SYSTEM_ERROR, remark)
        # Java edits the decoded message's HashMap in place, in this order.
        properties = java_properties(original.properties)
        if MessageConst.PROPERTY_RETRY_TOPIC not in properties:
            properties[MessageConst.PROPERTY_RETRY_TOPIC] = original.topic
        properties[MessageConst.PROPERTY_WAIT_STORE_MSG_OK] = "false"
        delay_level = header.delay_level
        max_reconsume = group_config.retry_max_times
        if request.version >= VERSION_V3_4_9 and header.max_reconsume_times is not None:
            max_reconsume = header.max_reconsume_times
        if original.reconsume_times >= max_reconsume or delay_level < 0:
            new_topic = dlq_topic(group)
            queue_id = self._random_queue_id(DLQ_NUMS_PER_GROUP)
            await topics.create_topic_in_send_message_back_method(
                new_topic, DLQ_NUMS_PER_GROUP, PERM_WRITE, 0
            )
        else:
            if delay_level == 0:
                delay_level = 3 + original.reconsume_times
            properties[MessageConst.PROPERTY_DELAY_TIME_LEVEL] = str(delay_level)
        # The string is taken before ORIGIN_MESSAGE_ID is added to the map:
        # only a delayed copy (re-encoded by the store) carries that property.
        properties_string = encode_properties(properties)
        origin = properties.get(MessageConst.PROPERTY_ORIGIN_MESSAGE_ID)
        properties[MessageConst.PROPERTY_ORIGIN_MESSAGE_ID] = (
            origin if origin and origin.strip() else original.msg_id
        )
        message = BrokerMessage(
            new_topic,
            queue_id,
            original.body,
            properties,
            properties_string,
            flag=original.flag,
            sys_flag=original.sys_flag & ~MessageSysFlag.HOST_V6_FLAGS,
            born_timestamp=original.born_timestamp,
            born_host=original.born_host,
            store_host=original.store_host,
            reconsume_times=original.reconsume_times + 1,
        )
        result = await broker.put_message(message, topic_stats=False)
        if result.status is PutMessageStatus.PUT_OK:
            back_topic = properties[MessageConst.PROPERTY_RETRY_TOPIC]
            broker.stats_manager.on_send_back(group, back_topic)
            return send_response(ResponseCode.SUCCESS)
        return send_response(ResponseCode.SYSTEM_ERROR, result.status.name)


__all__ = ["DLQ_NUMS_PER_GROUP", "VERSION_V3_4_9", "SendMessageProcessor"]
