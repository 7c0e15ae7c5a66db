"""Operator requests to a broker (the control-plane subset of Java's
``AdminBrokerProcessor``): topics, consumer-group settings, broker
configuration, runtime figures, topic statistics, the connections of a client
group, and the tables a slave copies from its master.

Answers are Java's: codes, remarks, header fields (an empty ``extFields``
object where Java's response has a header class, none where it has not) and
bodies. UPDATE_AND_CREATE_TOPIC is answered first and then applied and
registered with the NameServers, as Java does. The deliberate differences:
UPDATE_BROKER_CONFIG applies only keys allowed at run time
(:mod:`pyrocket.broker.configuration`), and a bad ``topicFilterType`` is
refused before anything is answered (Java answers SUCCESS and then fails);
an UPDATE_AND_CREATE_SUBSCRIPTIONGROUP without a body, with a body that is not
a SubscriptionGroupConfig, or with one lacking ``groupName`` is refused with
SYSTEM_ERROR and a plain remark (Java fails with an exception text).

Java registers this processor as the default one, silently dropping unknown
codes; here only the codes below are registered and everything else gets the
remoting layer's REQUEST_CODE_NOT_SUPPORTED.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import trio

from pyrocket.broker.processors.ports import AdminBroker, ClientTables
from pyrocket.broker.topic_config import topic_error
from pyrocket.errors import (
    CommandError,
    ConfigError,
    ConnectionClosedError,
    ProtocolError,
    PyrocketError,
    RemotingTimeoutError,
)
from pyrocket.logtext import clipped
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies.admin import Connection as ConnectionBody
from pyrocket.protocol.bodies.admin import (
    ConsumerConnection,
    ProducerConnection,
    SubscriptionGroupConfig,
    TopicOffset,
    TopicStatsTable,
)
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.properties import Properties
from pyrocket.protocol.bodies.topic import KVTable, TopicConfig, TopicFilterType
from pyrocket.protocol.codes import LanguageCode, RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    CreateTopicRequestHeader,
    DeleteSubscriptionGroupRequestHeader,
    DeleteTopicRequestHeader,
    GetAllTopicConfigResponseHeader,
    GetBrokerConfigResponseHeader,
    GetConsumerConnectionListRequestHeader,
    GetConsumerRunningInfoRequestHeader,
    GetProducerConnectionListRequestHeader,
    GetTopicStatsInfoRequestHeader,
)
from pyrocket.protocol.javahash import JavaConcurrentHashMap, JavaHashMap
from pyrocket.protocol.version import VERSION_V3_1_8_SNAPSHOT, version_desc
from pyrocket.remoting import Connection

if TYPE_CHECKING:
    from pyrocket.broker.consumer_manager import ClientChannelInfo

log = logging.getLogger("pyrocket.broker")

#: Broker2Client.callClient's wait for a client's answer, in seconds.
CALL_CLIENT_TIMEOUT = 10.0

#: UPDATE_BROKER_CONFIG bodies up to this size are parsed inline, larger ones in
#: a worker thread.
INLINE_BODY_LIMIT = 64 * 1024
#: The Java exception a timed-out forward is reported as.
_TIMEOUT_EXCEPTION = "org.apache.rocketmq.remoting.exception.RemotingTimeoutException"


#: Most queues an UPDATE_AND_CREATE_TOPIC may give a topic. Java has no
#: bound; its per-queue answers (topic stats, consume stats) then walk
#: billions of queue ids.
MAX_QUEUE_NUMS: Final = 4096


def topic_config_from_header(header: CreateTopicRequestHeader) -> TopicConfig:
    """The topic an UPDATE_AND_CREATE_TOPIC request describes, as Java builds
    it (``order`` is not taken from the request: the NameServer's order table
    decides it). Raises CommandError for an unknown ``topicFilterType``."""
    try:
        filter_type = TopicFilterType[header.topic_filter_type]
    except KeyError:
        raise CommandError(
            f"topicFilterType {header.topic_filter_type!r} is not SINGLE_TAG or MULTI_TAG"
        ) from None
    for name, count in (
        ("readQueueNums", header.read_queue_nums),
        ("writeQueueNums", header.write_queue_nums),
    ):
        if count > MAX_QUEUE_NUMS:
            raise CommandError(
                f"{name} {count} is more than the {MAX_QUEUE_NUMS} queues a topic may have"
            )
    return TopicConfig(
        header.topic,
        read_queue_nums=header.read_queue_nums,
        write_queue_nums=header.write_queue_nums,
        perm=header.perm,
        topic_filter_type=filter_type,
        topic_sys_flag=header.topic_sys_flag or 0,
    )


def subscription_group_from_body(body: bytes | None) -> SubscriptionGroupConfig | None:
    """The group an UPDATE_AND_CREATE_SUBSCRIPTIONGROUP body describes (None
    for a JSON ``null``, which Java accepts and ignores). Raises CommandError
    for a missing or malformed body or a group without a name."""
    if body is None:
        raise CommandError("the request has no SubscriptionGroupConfig body")
    try:
        document = fastjson.loads(body)
        if document is None:
            return None
        config = SubscriptionGroupConfig.from_json(document)
    except ProtocolError as exc:
        raise CommandError(f"bad SubscriptionGroupConfig body: {exc}") from exc
    if not config.group_name:
        raise CommandError("the SubscriptionGroupConfig has no groupName")
    return config


def connection_of(info: ClientChannelInfo) -> ConnectionBody:
    """A group member as the connection lists show it."""
    return ConnectionBody(
        client_addr=info.conn.remote_address,
        client_id=info.client_id,
        language=LanguageCode(info.language),
        version=info.version,
    )


def _error(remark: str) -> RemotingCommand:
    return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, remark)


def _ok(body: bytes | None = None) -> RemotingCommand:
    return RemotingCommand.response(ResponseCode.SUCCESS, body=body)


class AdminBrokerProcessor:
    """Answers the topic, subscription-group, configuration, status,
    connection-list and slave-sync requests listed in :meth:`install`."""

    def __init__(self, broker: AdminBroker, clients: ClientTables | None = None) -> None:
        self.broker = broker
        #: The producer and consumer groups online (None without a message path).
        self.clients = clients
        #: Seconds to wait for a client's answer to a forwarded request
        #: (Broker2Client.callClient's 10 s).
        self.call_client_timeout = CALL_CLIENT_TIMEOUT
        # Java's topic and config handlers are synchronized.
        self._lock = trio.Lock()

    def install(self) -> None:
        """Register every handled code on both of the broker's servers."""
        handlers = {
            RequestCode.UPDATE_AND_CREATE_TOPIC: self.update_and_create_topic,
            RequestCode.DELETE_TOPIC_IN_BROKER: self.delete_topic,
            RequestCode.GET_ALL_TOPIC_CONFIG: self.get_all_topic_config,
            RequestCode.UPDATE_BROKER_CONFIG: self.update_broker_config,
            RequestCode.GET_BROKER_CONFIG: self.get_broker_config,
            RequestCode.GET_BROKER_RUNTIME_INFO: self.get_broker_runtime_info,
            RequestCode.GET_TOPIC_STATS_INFO: self.get_topic_stats_info,
            RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: self.update_subscription_group,
            RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG: self.get_all_subscription_group,
            RequestCode.DELETE_SUBSCRIPTIONGROUP: self.delete_subscription_group,
            RequestCode.GET_ALL_DELAY_OFFSET: self.get_all_delay_offset,
            RequestCode.GET_CONSUMER_CONNECTION_LIST: self.get_consumer_connection_list,
            RequestCode.GET_PRODUCER_CONNECTION_LIST: self.get_producer_connection_list,
            RequestCode.GET_CONSUMER_RUNNING_INFO: self.get_consumer_running_info,
        }
        for code, handler in handlers.items():
            self.broker.register_processor(code, handler)

    # -- topics ---------------------------------------------------------------

    async def update_and_create_topic(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand | None:
        header = request.decode_header(CreateTopicRequestHeader)
        log.info("updateAndCreateTopic called by %s", conn.remote_address)
        topic = header.topic
        if topic == self.broker.settings.broker.broker_cluster_name:
            remark = f"the topic[{topic}] is conflict with system reserved words."
            log.warning("%s", clipped(remark))
            return _error(remark)
        remark_or_none = topic_error(topic)
        if remark_or_none is not None:
            return _error(remark_or_none)
        try:
            config = topic_config_from_header(header)
        except CommandError as exc:
            return _error(str(exc))
        async with self._lock:
            # Java answers before applying and registering the change, and
            # applies it even when the client has gone by then.
            try:
                await conn.send(_ok().answering(request))
            except ConnectionClosedError:
                log.debug("updateAndCreateTopic: %s left before the answer", conn.remote_address)
            topics = self.broker.topic_config_manager
            await topics.update_topic_config(config)
            await self.broker.registration.register_increment_broker_data(
                config, topics.data_version
            )
        return None

    async def delete_topic(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(DeleteTopicRequestHeader)
        log.info("deleteTopic called by %s", conn.remote_address)
        async with self._lock:
            topics = self.broker.topic_config_manager
            await topics.delete_topic_config(header.topic)
            self.broker.store.clean_unused_topics(set(topics.topic_config_table))
        return _ok()

    async def get_all_topic_config(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        content = self.broker.topic_config_manager.encode()
        return RemotingCommand.response(
            ResponseCode.SUCCESS,
            header=GetAllTopicConfigResponseHeader(),
            body=content.encode("utf-8", "replace"),
        )

    async def get_topic_stats_info(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(GetTopicStatsInfoRequestHeader)
        topic = header.topic
        config = self.broker.topic_config_manager.select_topic_config(topic)
        if config is None:
            return RemotingCommand.response(
                ResponseCode.TOPIC_NOT_EXIST, f"topic[{topic}] not exist"
            )
        store = self.broker.store
        broker_name = self.broker.settings.broker.broker_name
        table: JavaHashMap[MessageQueue, TopicOffset] = JavaHashMap()
        for queue_id in range(config.write_queue_nums):
            minimum = max(0, store.get_min_offset_in_queue(topic, queue_id))
            maximum = max(0, store.get_max_offset_in_queue(topic, queue_id))
            timestamp = 0
            if maximum > 0:
                timestamp = store.get_message_store_timestamp(topic, queue_id, maximum - 1)
            table[MessageQueue(topic, broker_name, queue_id)] = TopicOffset(
                minimum, maximum, timestamp
            )
        return _ok(TopicStatsTable(table).encode())

    # -- subscription groups and slave sync --------------------------------------

    async def update_subscription_group(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        log.info("updateAndCreateSubscriptionGroup called by %s", conn.remote_address)
        try:
            config = subscription_group_from_body(request.body)
        except CommandError as exc:
            return _error(str(exc))
        if config is not None:
            await self.broker.subscription_group_manager.update_subscription_group_config(config)
        return _ok()

    async def get_all_subscription_group(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        # The manager's own JSON (dataVersion first), not the wrapper bean:
        # Java encodes the manager object here too. It is never empty.
        content = self.broker.subscription_group_manager.encode()
        return _ok(content.encode("utf-8", "replace"))

    async def delete_subscription_group(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(DeleteSubscriptionGroupRequestHeader)
        log.info("deleteSubscriptionGroup called by %s", conn.remote_address)
        await self.broker.subscription_group_manager.delete_subscription_group_config(
            header.group_name
        )
        return _ok()

    async def get_all_delay_offset(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        content = self.broker.store.schedule.encode()
        return _ok(content.encode("utf-8", "replace"))

    # -- client connections ---------------------------------------------------

    async def get_consumer_connection_list(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(GetConsumerConnectionListRequestHeader)
        clients = self.clients
        group = header.consumer_group
        info = clients.consumer_manager.get_consumer_group_info(group) if clients else None
        if info is None:
            return RemotingCommand.response(
                ResponseCode.CONSUMER_NOT_ONLINE, f"the consumer group[{group}] not online"
            )
        body = ConsumerConnection(
            connection_set=tuple(connection_of(m) for m in info.channel_info_table.values()),
            consume_from_where=info.consume_from_where,
            consume_type=info.consume_type,
            message_model=info.message_model,
            # Java copies into a fresh ConcurrentHashMap with putAll, whose
            # presizing can order it unlike the group's own table.
            subscription_table=JavaConcurrentHashMap.copy_of(info.subscription_table),
        )
        return _ok(body.encode())

    async def get_producer_connection_list(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(GetProducerConnectionListRequestHeader)
        clients = self.clients
        group = header.producer_group
        table = clients.producer_manager.group_channel_table.get(group) if clients else None
        if table is None:
            return _error(f"the producer group[{group}] not exist")
        body = ProducerConnection(tuple(connection_of(m) for m in table.values()))
        return _ok(body.encode())

    async def get_consumer_running_info(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(GetConsumerRunningInfoRequestHeader)
        return await self.call_consumer(request, header.consumer_group, header.client_id)

    async def call_consumer(
        self, request: RemotingCommand, group: str, client_id: str
    ) -> RemotingCommand:
        """Forward ``request`` (its code, header fields and body) to the
        consumer ``client_id`` of ``group`` over its own connection and
        answer with the consumer's response."""
        clients = self.clients
        info = clients.consumer_manager.find_channel(group, client_id) if clients else None
        if info is None:
            return _error(f"The Consumer <{group}> <{client_id}> not online")
        if info.version < VERSION_V3_1_8_SNAPSHOT:
            return _error(
                f"The Consumer <{client_id}> Version <{version_desc(info.version)}> too low"
                " to finish, please upgrade it to V3_1_8_SNAPSHOT"
            )
        fields: JavaHashMap[str, str] = JavaHashMap()
        for key, value in (request.ext_fields or {}).items():
            fields[key] = value
        forwarded = RemotingCommand.request(request.code, body=request.body).replace(
            ext_fields=fields
        )
        try:
            return await info.conn.invoke(forwarded, self.call_client_timeout)
        except RemotingTimeoutError as exc:
            return RemotingCommand.response(
                ResponseCode.CONSUME_MSG_TIMEOUT,
                f"consumer <{group}> <{client_id}> Timeout: {_TIMEOUT_EXCEPTION}: {exc}",
            )
        except PyrocketError as exc:
            return _error(f"invoke consumer <{group}> <{client_id}> Exception: {exc}")

    # -- configuration and status -----------------------------------------------

    async def update_broker_config(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        log.info("updateBrokerConfig called by %s", conn.remote_address)
        if request.body is None:
            return _ok()
        try:
            if len(request.body) > INLINE_BODY_LIMIT:
                # Megabytes of properties text: parsed in a worker thread.
                decoded = await trio.to_thread.run_sync(Properties.decode, request.body)
            else:
                decoded = Properties.decode(request.body)
            properties = decoded.entries
        except ProtocolError:
            log.error("string2Properties error")
            return _error("string2Properties error")
        log.info(
            "updateBrokerConfig, new config: [%s] client: %s",
            clipped(dict(properties), 1024),
            conn.remote_address,
        )
        try:
            plan = await self.broker.update_config(dict(properties))
        except ConfigError as exc:
            return _error(str(exc))
        remark = plan.remark()
        if remark is not None:
            log.warning("updateBrokerConfig from %s: %s", conn.remote_address, clipped(remark))
            return _error(remark)
        return _ok()

    async def get_broker_config(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        broker = self.broker
        content = broker.configuration.format_string(broker.settings)
        version = broker.configuration.data_version.encode().decode("utf-8")
        return RemotingCommand.response(
            ResponseCode.SUCCESS,
            header=GetBrokerConfigResponseHeader(version=version),
            body=content.encode("utf-8", "replace"),
        )

    async def get_broker_runtime_info(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        return _ok(KVTable(self.broker.runtime_info()).encode())


__all__ = ["AdminBrokerProcessor", "topic_config_from_header"]
