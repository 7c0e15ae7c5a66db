"""Typed requests to a broker (Java's ``MQClientAPIImpl`` broker calls): the
admin side mqadmin uses (topics, broker configuration, runtime figures, topic
statistics) and the client side producers and consumers use (send, pull,
heartbeats, consumer lists and offsets).

Each method sends one request over a :class:`~pyrocket.remoting.RemotingClient`
(which must be running) and returns the decoded answer; an answer whose code
is not SUCCESS raises :class:`~pyrocket.errors.ResponseError` with the
broker's code and remark. Transport failures raise the remoting errors
(RemotingConnectError, RemotingTimeoutError, ConnectionClosedError), and an
answer that does not decode raises ProtocolError. The two calls whose
non-SUCCESS answers carry meaning (:meth:`BrokerAPI.send_message` and
:meth:`BrokerAPI.pull_message`) return the raw answer for the caller to map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pyrocket.client.calls import invoke_checked
from pyrocket.protocol.bodies.admin import (
    ConsumerConnection,
    ConsumerRunningInfo,
    DelayOffsetSerializeWrapper,
    GroupList,
    ProducerConnection,
    SubscriptionGroupConfig,
    SubscriptionGroupWrapper,
    TopicStatsTable,
)
from pyrocket.protocol.bodies.client import (
    CheckClientRequestBody,
    GetConsumerListByGroupResponseBody,
    HeartbeatData,
    SubscriptionData,
)
from pyrocket.protocol.bodies.properties import Properties
from pyrocket.protocol.bodies.topic import (
    DataVersion,
    KVTable,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    CommandHeader,
    ConsumerSendMsgBackRequestHeader,
    CreateTopicRequestHeader,
    DeleteSubscriptionGroupRequestHeader,
    DeleteTopicRequestHeader,
    GetBrokerConfigResponseHeader,
    GetConsumerConnectionListRequestHeader,
    GetConsumerListByGroupRequestHeader,
    GetConsumerRunningInfoRequestHeader,
    GetMaxOffsetRequestHeader,
    GetMaxOffsetResponseHeader,
    GetMinOffsetRequestHeader,
    GetMinOffsetResponseHeader,
    GetProducerConnectionListRequestHeader,
    GetTopicStatsInfoRequestHeader,
    PullMessageRequestHeader,
    QueryConsumerOffsetRequestHeader,
    QueryConsumerOffsetResponseHeader,
    QueryMessageRequestHeader,
    QueryTopicConsumeByWhoRequestHeader,
    SearchOffsetRequestHeader,
    SearchOffsetResponseHeader,
    SendMessageRequestHeader,
    SendMessageRequestHeaderV2,
    UnregisterClientRequestHeader,
    UpdateConsumerOffsetRequestHeader,
    ViewMessageRequestHeader,
)
from pyrocket.protocol.message import MessageConst, decode_properties
from pyrocket.remoting import RemotingClient

#: DefaultMQAdminExt's timeout (seconds).
DEFAULT_TIMEOUT = 5.0
#: MixAll.AUTO_CREATE_TOPIC_KEY_TOPIC: the default topic mqadmin names.
DEFAULT_TOPIC = "TBW102"
#: The admin's wait for GET_CONSUMER_RUNNING_INFO (DefaultMQAdminExtImpl's
#: three times its timeout, above the broker's 10 s wait for the client).
RUNNING_INFO_TIMEOUT = 3 * DEFAULT_TIMEOUT


class BrokerAPI:
    """Admin requests to brokers by address (``"host:port"``)."""

    def __init__(self, client: RemotingClient, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.client = client
        self.timeout = timeout

    async def _call(
        self,
        addr: str,
        code: int,
        header: CommandHeader | None = None,
        body: bytes | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> RemotingCommand:
        request = RemotingCommand.request(code, header, body=body)
        return await invoke_checked(
            self.client, addr, request, self.timeout if timeout is None else timeout
        )

    async def create_topic(
        self, addr: str, config: TopicConfig, default_topic: str = DEFAULT_TOPIC
    ) -> None:
        """UPDATE_AND_CREATE_TOPIC (``createTopic``)."""
        if config.topic_name is None:
            raise ValueError("the topic config has no name")
        header = CreateTopicRequestHeader(
            topic=config.topic_name,
            default_topic=default_topic,
            read_queue_nums=config.read_queue_nums,
            write_queue_nums=config.write_queue_nums,
            perm=config.perm,
            topic_filter_type=config.topic_filter_type.name,
            topic_sys_flag=config.topic_sys_flag,
            order=config.order,
        )
        await self._call(addr, RequestCode.UPDATE_AND_CREATE_TOPIC, header)

    async def delete_topic_in_broker(self, addr: str, topic: str) -> None:
        """DELETE_TOPIC_IN_BROKER."""
        await self._call(addr, RequestCode.DELETE_TOPIC_IN_BROKER, DeleteTopicRequestHeader(topic))

    async def get_all_topic_config(self, addr: str) -> TopicConfigSerializeWrapper:
        """GET_ALL_TOPIC_CONFIG: the broker's topic table with its version."""
        response = await self._call(addr, RequestCode.GET_ALL_TOPIC_CONFIG)
        return TopicConfigSerializeWrapper.decode(response.body or b"{}")

    async def create_subscription_group(self, addr: str, config: SubscriptionGroupConfig) -> None:
        """UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (``createSubscriptionGroup``)."""
        if not config.group_name:
            raise ValueError("the subscription group config has no name")
        code = RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
        await self._call(addr, code, body=config.encode())

    async def delete_subscription_group(self, addr: str, group_name: str) -> None:
        """DELETE_SUBSCRIPTIONGROUP."""
        await self._call(
            addr,
            RequestCode.DELETE_SUBSCRIPTIONGROUP,
            DeleteSubscriptionGroupRequestHeader(group_name),
        )

    async def get_all_subscription_group(self, addr: str) -> SubscriptionGroupWrapper:
        """GET_ALL_SUBSCRIPTIONGROUP_CONFIG: the broker's group table with its version."""
        response = await self._call(addr, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG)
        return SubscriptionGroupWrapper.decode(response.body or b"{}")

    async def get_all_delay_offset(self, addr: str) -> DelayOffsetSerializeWrapper:
        """GET_ALL_DELAY_OFFSET: the next offset of each delay level."""
        response = await self._call(addr, RequestCode.GET_ALL_DELAY_OFFSET)
        return DelayOffsetSerializeWrapper.decode(response.body or b"{}")

    async def get_consumer_connection_list(self, addr: str, group: str) -> ConsumerConnection:
        """GET_CONSUMER_CONNECTION_LIST: the group's clients and subscriptions.
        Raises ResponseError (CONSUMER_NOT_ONLINE) when no client is connected."""
        response = await self._call(
            addr,
            RequestCode.GET_CONSUMER_CONNECTION_LIST,
            GetConsumerConnectionListRequestHeader(group),
        )
        return ConsumerConnection.decode(response.body or b"{}")

    async def get_consumer_running_info(
        self, addr: str, group: str, client_id: str, jstack: bool = False
    ) -> ConsumerRunningInfo:
        """GET_CONSUMER_RUNNING_INFO: what the consumer ``client_id`` of
        ``group`` reports of itself, through the broker it is connected to.
        Raises ResponseError (SYSTEM_ERROR when the client is not connected to
        that broker, CONSUME_MSG_TIMEOUT when it does not answer)."""
        response = await self._call(
            addr,
            RequestCode.GET_CONSUMER_RUNNING_INFO,
            GetConsumerRunningInfoRequestHeader(group, client_id, jstack),
            timeout=RUNNING_INFO_TIMEOUT,
        )
        return ConsumerRunningInfo.decode(response.body or b"{}")

    async def get_producer_connection_list(self, addr: str, group: str) -> ProducerConnection:
        """GET_PRODUCER_CONNECTION_LIST: the group's producer clients.
        Raises ResponseError (SYSTEM_ERROR) for a group the broker never saw."""
        response = await self._call(
            addr,
            RequestCode.GET_PRODUCER_CONNECTION_LIST,
            GetProducerConnectionListRequestHeader(group),
        )
        return ProducerConnection.decode(response.body or b"{}")

    async def get_broker_config(self, addr: str) -> tuple[dict[str, str], DataVersion | None]:
        """GET_BROKER_CONFIG: every property in the order the broker listed
        them, and the configuration's version."""
        response = await self._call(addr, RequestCode.GET_BROKER_CONFIG)
        entries = dict(Properties.decode(response.body or b"").entries)
        version_text = response.decode_header(GetBrokerConfigResponseHeader).version
        version = DataVersion.decode(version_text.encode("utf-8")) if version_text else None
        return entries, version

    async def update_broker_config(self, addr: str, properties: Mapping[str, str]) -> None:
        """UPDATE_BROKER_CONFIG with ``properties`` written as Java writes a
        ``Properties`` (its iteration order)."""
        body = Properties.java_ordered(properties.items()).encode()
        await self._call(addr, RequestCode.UPDATE_BROKER_CONFIG, body=body)

    async def get_broker_runtime_info(self, addr: str) -> dict[str, str]:
        """GET_BROKER_RUNTIME_INFO (``fetchBrokerRuntimeStats``)."""
        response = await self._call(addr, RequestCode.GET_BROKER_RUNTIME_INFO)
        return dict(KVTable.decode(response.body or b"{}").table)

    async def get_topic_stats_info(self, addr: str, topic: str) -> TopicStatsTable:
        """GET_TOPIC_STATS_INFO: min/max offsets and last store time per queue."""
        response = await self._call(
            addr, RequestCode.GET_TOPIC_STATS_INFO, GetTopicStatsInfoRequestHeader(topic)
        )
        return TopicStatsTable.decode(response.body or b"{}")

    async def query_topic_consume_by_who(self, addr: str, topic: str) -> list[str]:
        """QUERY_TOPIC_CONSUME_BY_WHO: the consumer groups that consume ``topic``."""
        response = await self._call(
            addr, RequestCode.QUERY_TOPIC_CONSUME_BY_WHO, QueryTopicConsumeByWhoRequestHeader(topic)
        )
        return list(GroupList.decode(response.body or b"{}").group_list)

    # ------------------------------------------------------------------
    # Producers and consumers

    async def send_message(
        self,
        addr: str,
        header: SendMessageRequestHeader,
        body: bytes,
        timeout: float,  # noqa: ASYNC109
    ) -> RemotingCommand:
        """SEND_MESSAGE_V2 (the short-named header Java's client sends by
        default), or SEND_BATCH_MESSAGE when ``header.batch``. Returns the
        answer whatever its code: the producer maps it."""
        request = RemotingCommand.request(
            send_code(header), SendMessageRequestHeaderV2.from_v1(header), body=body
        )
        return await self.client.invoke_sync(addr, request, timeout)

    async def send_request(
        self,
        addr: str,
        request: RemotingCommand,
        timeout: float,  # noqa: ASYNC109
    ) -> RemotingCommand:
        """A send request already built (see
        :func:`pyrocket.client.sending.send_request`); returns the answer
        whatever its code."""
        return await self.client.invoke_sync(addr, request, timeout)

    async def send_message_oneway(
        self,
        addr: str,
        header: SendMessageRequestHeader,
        body: bytes,
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """SEND_MESSAGE_V2 flagged oneway: nothing comes back."""
        request = RemotingCommand.request(
            send_code(header), SendMessageRequestHeaderV2.from_v1(header), body=body, oneway=True
        )
        await self.client.invoke_oneway(addr, request, timeout)

    async def pull_message(
        self,
        addr: str,
        header: PullMessageRequestHeader,
        timeout: float,  # noqa: ASYNC109
    ) -> RemotingCommand:
        """PULL_MESSAGE. Returns the answer whatever its code: the consumer
        maps FOUND / NO_NEW_MSG / NO_MATCHED_MSG / OFFSET_ILLEGAL."""
        request = RemotingCommand.request(RequestCode.PULL_MESSAGE, header)
        return await self.client.invoke_sync(addr, request, timeout)

    async def heartbeat(self, addr: str, data: HeartbeatData, timeout: float = 3.0) -> None:  # noqa: ASYNC109
        """HEART_BEAT with a client's producer and consumer groups."""
        await self._call(addr, RequestCode.HEART_BEAT, body=data.encode(), timeout=timeout)

    async def check_client_config(
        self,
        addr: str,
        group: str,
        client_id: str,
        subscription: SubscriptionData,
        timeout: float = 3.0,  # noqa: ASYNC109
    ) -> None:
        """CHECK_CLIENT_CONFIG: whether the broker can filter by
        ``subscription`` (an SQL92 one). A refusal raises ResponseError
        (SYSTEM_ERROR when the broker has no property filtering,
        SUBSCRIPTION_PARSE_FAILED for an expression it cannot compile)."""
        body = CheckClientRequestBody(
            client_id=client_id, group=group, subscription_data=subscription
        ).encode()
        await self._call(addr, RequestCode.CHECK_CLIENT_CONFIG, body=body, timeout=timeout)

    async def unregister_client(
        self,
        addr: str,
        client_id: str,
        *,
        producer_group: str | None = None,
        consumer_group: str | None = None,
        timeout: float = 3.0,  # noqa: ASYNC109
    ) -> None:
        """UNREGISTER_CLIENT for one producer or consumer group of a client."""
        header = UnregisterClientRequestHeader(client_id, producer_group, consumer_group)
        await self._call(addr, RequestCode.UNREGISTER_CLIENT, header, timeout=timeout)

    async def get_consumer_id_list(
        self,
        addr: str,
        consumer_group: str,
        timeout: float = 3.0,  # noqa: ASYNC109
    ) -> list[str]:
        """GET_CONSUMER_LIST_BY_GROUP: the client ids of the group's consumers
        connected to this broker. A group without consumers raises
        ResponseError (the broker answers SYSTEM_ERROR)."""
        response = await self._call(
            addr,
            RequestCode.GET_CONSUMER_LIST_BY_GROUP,
            GetConsumerListByGroupRequestHeader(consumer_group),
            timeout=timeout,
        )
        body = GetConsumerListByGroupResponseBody.decode(response.body or b"{}")
        return list(body.consumer_id_list or ())

    async def query_consumer_offset(
        self,
        addr: str,
        consumer_group: str,
        topic: str,
        queue_id: int,
        timeout: float = 3.0,  # noqa: ASYNC109
    ) -> int:
        """QUERY_CONSUMER_OFFSET: the group's committed offset of a queue. No
        committed offset raises ResponseError (QUERY_NOT_FOUND)."""
        response = await self._call(
            addr,
            RequestCode.QUERY_CONSUMER_OFFSET,
            QueryConsumerOffsetRequestHeader(consumer_group, topic, queue_id),
            timeout=timeout,
        )
        return response.decode_header(QueryConsumerOffsetResponseHeader).offset

    async def update_consumer_offset(
        self,
        addr: str,
        consumer_group: str,
        topic: str,
        queue_id: int,
        offset: int,
        *,
        oneway: bool = False,
        timeout: float = 3.0,  # noqa: ASYNC109
    ) -> None:
        """UPDATE_CONSUMER_OFFSET: commit the group's offset of a queue."""
        header = UpdateConsumerOffsetRequestHeader(consumer_group, topic, queue_id, offset)
        if oneway:
            request = RemotingCommand.request(
                RequestCode.UPDATE_CONSUMER_OFFSET, header, oneway=True
            )
            await self.client.invoke_oneway(addr, request, timeout)
        else:
            await self._call(addr, RequestCode.UPDATE_CONSUMER_OFFSET, header, timeout=timeout)

    async def consumer_send_msg_back(
        self,
        addr: str,
        header: ConsumerSendMsgBackRequestHeader,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """CONSUMER_SEND_MSG_BACK: give a consumed message back to be
        delivered again through the group's retry topic (or its dead-letter
        queue)."""
        await self._call(addr, RequestCode.CONSUMER_SEND_MSG_BACK, header, timeout=timeout)

    async def get_max_offset(
        self,
        addr: str,
        topic: str,
        queue_id: int,
        timeout: float = 3.0,  # noqa: ASYNC109
    ) -> int:
        """GET_MAX_OFFSET: the offset after a queue's last message."""
        response = await self._call(
            addr,
            RequestCode.GET_MAX_OFFSET,
            GetMaxOffsetRequestHeader(topic, queue_id),
            timeout=timeout,
        )
        return response.decode_header(GetMaxOffsetResponseHeader).offset

    async def get_min_offset(
        self,
        addr: str,
        topic: str,
        queue_id: int,
        timeout: float = 3.0,  # noqa: ASYNC109
    ) -> int:
        """GET_MIN_OFFSET: a queue's first offset still stored."""
        response = await self._call(
            addr,
            RequestCode.GET_MIN_OFFSET,
            GetMinOffsetRequestHeader(topic, queue_id),
            timeout=timeout,
        )
        return response.decode_header(GetMinOffsetResponseHeader).offset

    async def search_offset(
        self,
        addr: str,
        topic: str,
        queue_id: int,
        timestamp: int,
        timeout: float = 3.0,  # noqa: ASYNC109
    ) -> int:
        """SEARCH_OFFSET_BY_TIMESTAMP: the first offset stored at or after
        ``timestamp`` (ms)."""
        response = await self._call(
            addr,
            RequestCode.SEARCH_OFFSET_BY_TIMESTAMP,
            SearchOffsetRequestHeader(topic, queue_id, timestamp),
            timeout=timeout,
        )
        return response.decode_header(SearchOffsetResponseHeader).offset

    async def query_message(
        self,
        addr: str,
        header: QueryMessageRequestHeader,
        *,
        unique_key: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> RemotingCommand:
        """QUERY_MESSAGE; the answer whatever its code (SUCCESS carries the
        records, QUERY_NOT_FOUND none). ``unique_key`` sets Java's
        ``_UNIQUE_KEY_QUERY`` flag, added before the header's fields as
        ``MQClientAPIImpl.queryMessage`` does."""
        request = RemotingCommand.request(RequestCode.QUERY_MESSAGE)
        request = request.replace(
            ext_fields=header.to_ext_fields({UNIQUE_MSG_QUERY_FLAG: str(unique_key).lower()})
        )
        return await self.client.invoke_sync(
            addr, request, self.timeout if timeout is None else timeout
        )

    async def view_message(self, addr: str, offset: int) -> bytes:
        """VIEW_MESSAGE_BY_ID: the stored record at a commit-log offset."""
        response = await self._call(
            addr, RequestCode.VIEW_MESSAGE_BY_ID, ViewMessageRequestHeader(offset)
        )
        return response.body or b""


#: MixAll.UNIQUE_MSG_QUERY_FLAG: QUERY_MESSAGE by a client's unique id.
UNIQUE_MSG_QUERY_FLAG: Final = "_UNIQUE_KEY_QUERY"

#: MixAll.REPLY_MESSAGE_FLAG: the ``MSG_TYPE`` of a reply message.
REPLY_MESSAGE_FLAG: Final = "reply"


def is_reply(properties: str | None) -> bool:
    """Whether an encoded properties string marks a reply (``MSG_TYPE``
    "reply"): such a message is sent as SEND_REPLY_MESSAGE(_V2)."""
    marker = f"{MessageConst.PROPERTY_MESSAGE_TYPE}\x01{REPLY_MESSAGE_FLAG}"
    if not properties or marker not in properties:
        return False
    found = decode_properties(properties).get(MessageConst.PROPERTY_MESSAGE_TYPE)
    return found == REPLY_MESSAGE_FLAG


def send_code(header: SendMessageRequestHeader) -> RequestCode:
    """The request code a send with ``header`` goes as."""
    if is_reply(header.properties):  # MQClientAPIImpl.sendMessage
        return RequestCode.SEND_REPLY_MESSAGE_V2
    return RequestCode.SEND_BATCH_MESSAGE if header.batch else RequestCode.SEND_MESSAGE_V2


__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOPIC",
    "REPLY_MESSAGE_FLAG",
    "UNIQUE_MSG_QUERY_FLAG",
    "BrokerAPI",
    "is_reply",
    "send_code",
]
