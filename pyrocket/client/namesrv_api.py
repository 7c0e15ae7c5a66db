"""Typed requests to NameServers (the NameServer calls of Java's
``MQClientAPIImpl`` and ``BrokerOuterAPI``).

Brokers' requests (REGISTER_BROKER, UNREGISTER_BROKER, QUERY_DATA_VERSION)
are built by :mod:`pyrocket.protocol.broker_requests`, as a pyrocket broker
builds them, from its :class:`~pyrocket.protocol.broker_requests.BrokerIdentity`.

Each method sends one request over a :class:`~pyrocket.remoting.RemotingClient`
(which must be running) and returns the decoded answer. ``addr`` names the
NameServer (``"host:port"``); None means the one the client has chosen from
its NameServer list. An answer whose code is not SUCCESS raises
:class:`~pyrocket.errors.ResponseError` with the NameServer's code and remark;
transport failures raise the remoting errors (RemotingConnectError,
RemotingTimeoutError, ConnectionClosedError); an answer that does not decode
raises ProtocolError.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pyrocket.client.calls import invoke_checked
from pyrocket.errors import ProtocolError
from pyrocket.protocol.bodies import (
    ClusterInfo,
    DataVersion,
    KVTable,
    Properties,
    RegisterBrokerResult,
    TopicConfig,
    TopicConfigSerializeWrapper,
    TopicList,
    TopicRouteData,
)
from pyrocket.protocol.broker_requests import (
    BrokerIdentity,
    query_data_version_request,
    register_broker_request,
    unregister_broker_request,
)
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    CommandHeader,
    DeleteKVConfigRequestHeader,
    DeleteTopicInNamesrvRequestHeader,
    GetKVConfigRequestHeader,
    GetKVConfigResponseHeader,
    GetKVListByNamespaceRequestHeader,
    GetRouteInfoRequestHeader,
    GetTopicsByClusterRequestHeader,
    PutKVConfigRequestHeader,
    QueryDataVersionResponseHeader,
    WipeWritePermOfBrokerRequestHeader,
    WipeWritePermOfBrokerResponseHeader,
)
from pyrocket.remoting import RemotingClient

#: The KV namespace of per-topic order configuration (mqadmin updateOrderConf).
NAMESPACE_ORDER_TOPIC_CONFIG = "ORDER_TOPIC_CONFIG"

#: The timeout of DefaultMQAdminExt and of the client's route queries (seconds).
DEFAULT_TIMEOUT = 3.0


class NameServerAPI:
    """NameServer requests over one RemotingClient."""

    def __init__(self, client: RemotingClient, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.client = client
        self.timeout = timeout

    async def _call(
        self,
        addr: str | None,
        code: int,
        header: CommandHeader | None = None,
        body: bytes | None = None,
    ) -> RemotingCommand:
        return await self._send(addr, RemotingCommand.request(code, header, body=body))

    async def _send(self, addr: str | None, request: RemotingCommand) -> RemotingCommand:
        return await invoke_checked(self.client, addr, request, self.timeout)

    @staticmethod
    def _body(response: RemotingCommand, what: str) -> bytes:
        if response.body is None:
            raise ProtocolError(f"{what} answer has no body")
        return response.body

    # ------------------------------------------------------------------
    # Routes and topics

    async def get_route_info(self, topic: str, addr: str | None = None) -> TopicRouteData:
        """GET_ROUTEINFO_BY_TOPIC; TOPIC_NOT_EXIST raises ResponseError."""
        response = await self._call(
            addr, RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader(topic)
        )
        return TopicRouteData.decode(self._body(response, "GET_ROUTEINFO_BY_TOPIC"))

    async def get_cluster_info(self, addr: str | None = None) -> ClusterInfo:
        """GET_BROKER_CLUSTER_INFO."""
        response = await self._call(addr, RequestCode.GET_BROKER_CLUSTER_INFO)
        return ClusterInfo.decode(self._body(response, "GET_BROKER_CLUSTER_INFO"))

    async def _topic_list(
        self, addr: str | None, code: int, header: CommandHeader | None = None
    ) -> TopicList:
        response = await self._call(addr, code, header)
        return TopicList.decode(self._body(response, "topic list"))

    async def get_all_topic_list(self, addr: str | None = None) -> TopicList:
        """GET_ALL_TOPIC_LIST_FROM_NAMESERVER."""
        return await self._topic_list(addr, RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER)

    async def get_topics_by_cluster(self, cluster: str, addr: str | None = None) -> TopicList:
        """GET_TOPICS_BY_CLUSTER."""
        return await self._topic_list(
            addr, RequestCode.GET_TOPICS_BY_CLUSTER, GetTopicsByClusterRequestHeader(cluster)
        )

    async def get_system_topic_list(self, addr: str | None = None) -> TopicList:
        """GET_SYSTEM_TOPIC_LIST_FROM_NS: cluster and broker names, one broker address."""
        return await self._topic_list(addr, RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS)

    async def get_unit_topic_list(self, addr: str | None = None) -> TopicList:
        """GET_UNIT_TOPIC_LIST."""
        return await self._topic_list(addr, RequestCode.GET_UNIT_TOPIC_LIST)

    async def get_has_unit_sub_topic_list(self, addr: str | None = None) -> TopicList:
        """GET_HAS_UNIT_SUB_TOPIC_LIST."""
        return await self._topic_list(addr, RequestCode.GET_HAS_UNIT_SUB_TOPIC_LIST)

    async def get_has_unit_sub_ununit_topic_list(self, addr: str | None = None) -> TopicList:
        """GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST."""
        return await self._topic_list(addr, RequestCode.GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST)

    async def delete_topic_in_namesrv(self, topic: str, addr: str | None = None) -> None:
        """DELETE_TOPIC_IN_NAMESRV."""
        await self._call(
            addr, RequestCode.DELETE_TOPIC_IN_NAMESRV, DeleteTopicInNamesrvRequestHeader(topic)
        )

    async def wipe_write_perm_of_broker(self, broker_name: str, addr: str | None = None) -> int:
        """WIPE_WRITE_PERM_OF_BROKER: the number of topics whose write
        permission was cleared."""
        response = await self._call(
            addr,
            RequestCode.WIPE_WRITE_PERM_OF_BROKER,
            WipeWritePermOfBrokerRequestHeader(broker_name),
        )
        return response.decode_header(WipeWritePermOfBrokerResponseHeader).wipe_topic_count

    # ------------------------------------------------------------------
    # KV config

    async def put_kv_config(
        self, namespace: str, key: str, value: str, addr: str | None = None
    ) -> None:
        """PUT_KV_CONFIG."""
        await self._call(
            addr, RequestCode.PUT_KV_CONFIG, PutKVConfigRequestHeader(namespace, key, value)
        )

    async def get_kv_config(self, namespace: str, key: str, addr: str | None = None) -> str:
        """GET_KV_CONFIG; a missing key raises ResponseError (QUERY_NOT_FOUND)."""
        response = await self._call(
            addr, RequestCode.GET_KV_CONFIG, GetKVConfigRequestHeader(namespace, key)
        )
        value = response.decode_header(GetKVConfigResponseHeader).value
        if value is None:
            raise ProtocolError("GET_KV_CONFIG answer has no value")
        return value

    async def delete_kv_config(self, namespace: str, key: str, addr: str | None = None) -> None:
        """DELETE_KV_CONFIG (SUCCESS whether or not the key existed)."""
        await self._call(
            addr, RequestCode.DELETE_KV_CONFIG, DeleteKVConfigRequestHeader(namespace, key)
        )

    async def get_kv_list_by_namespace(
        self, namespace: str, addr: str | None = None
    ) -> dict[str, str]:
        """GET_KVLIST_BY_NAMESPACE, in the NameServer's order; an unknown
        namespace raises ResponseError (QUERY_NOT_FOUND)."""
        response = await self._call(
            addr, RequestCode.GET_KVLIST_BY_NAMESPACE, GetKVListByNamespaceRequestHeader(namespace)
        )
        return dict(KVTable.decode(self._body(response, "GET_KVLIST_BY_NAMESPACE")).table)

    # ------------------------------------------------------------------
    # NameServer configuration

    async def get_namesrv_config(self, addr: str | None = None) -> dict[str, str]:
        """GET_NAMESRV_CONFIG: every property, in the NameServer's order."""
        response = await self._call(addr, RequestCode.GET_NAMESRV_CONFIG)
        if response.body is None:
            return {}
        return dict(Properties.decode(response.body).entries)

    async def update_namesrv_config(
        self, properties: Mapping[str, str], addr: str | None = None
    ) -> None:
        """UPDATE_NAMESRV_CONFIG with ``properties`` (sent as a Java
        Properties text, in its order). Nothing is sent for no properties."""
        if not properties:
            return
        body = Properties.java_ordered(properties.items()).encode()
        await self._call(addr, RequestCode.UPDATE_NAMESRV_CONFIG, body=body)

    # ------------------------------------------------------------------
    # Brokers (what a broker says to a NameServer)

    async def register_broker(
        self,
        broker: BrokerIdentity,
        topics: Iterable[TopicConfig] = (),
        data_version: DataVersion | None = None,
        *,
        filter_servers: Iterable[str] = (),
        compressed: bool = False,
        addr: str | None = None,
    ) -> RegisterBrokerResult:
        """REGISTER_BROKER as a 4.7 broker sends it (body CRC included)."""
        table = {}
        for config in topics:
            if config.topic_name is None:
                raise ValueError("a topic config without a name cannot be registered")
            table[config.topic_name] = config
        wrapper = TopicConfigSerializeWrapper(table, data_version or DataVersion())
        request = register_broker_request(
            broker, wrapper, tuple(filter_servers), compressed=compressed
        )
        return RegisterBrokerResult.from_response(await self._send(addr, request))

    async def unregister_broker(self, broker: BrokerIdentity, addr: str | None = None) -> None:
        """UNREGISTER_BROKER."""
        await self._send(addr, unregister_broker_request(broker))

    async def query_data_version(
        self, broker: BrokerIdentity, data_version: DataVersion, addr: str | None = None
    ) -> tuple[bool, DataVersion | None]:
        """QUERY_DATA_VERSION: whether the NameServer's copy differs, and the
        DataVersion it holds for the broker (None if it knows none)."""
        response = await self._send(addr, query_data_version_request(broker, data_version))
        changed = response.decode_header(QueryDataVersionResponseHeader).changed
        known = None if response.body is None else DataVersion.decode(response.body)
        return changed, known


__all__ = ["DEFAULT_TIMEOUT", "NAMESPACE_ORDER_TOPIC_CONFIG", "BrokerIdentity", "NameServerAPI"]
