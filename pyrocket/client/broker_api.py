"""Typed requests to a broker's admin side (Java's ``MQClientAPIImpl`` calls
that mqadmin makes): topics, broker configuration, runtime figures, topic
statistics.

Each method sends one request over a :class:`~pyrocket.remoting.RemotingClient`
(which must be running) and returns the decoded answer; an answer whose code
is not SUCCESS raises :class:`~pyrocket.errors.ResponseError` with the
broker's code and remark. Transport failures raise the remoting errors
(RemotingConnectError, RemotingTimeoutError, ConnectionClosedError), and an
answer that does not decode raises ProtocolError.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyrocket.errors import ResponseError
from pyrocket.protocol.bodies.admin import GroupList, TopicStatsTable
from pyrocket.protocol.bodies.properties import Properties
from pyrocket.protocol.bodies.topic import (
    DataVersion,
    KVTable,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    CommandHeader,
    CreateTopicRequestHeader,
    DeleteTopicRequestHeader,
    GetBrokerConfigResponseHeader,
    GetTopicStatsInfoRequestHeader,
    QueryTopicConsumeByWhoRequestHeader,
)
from pyrocket.remoting import RemotingClient

#: DefaultMQAdminExt's timeout (seconds).
DEFAULT_TIMEOUT = 5.0
#: MixAll.AUTO_CREATE_TOPIC_KEY_TOPIC: the default topic mqadmin names.
DEFAULT_TOPIC = "TBW102"


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
    ) -> RemotingCommand:
        request = RemotingCommand.request(code, header, body=body)
        response = await self.client.invoke_sync(addr, request, self.timeout)
        if response.code != ResponseCode.SUCCESS:
            raise ResponseError(response.code, response.remark)
        return response

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


__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_TOPIC", "BrokerAPI"]
