"""A small NameServer stand-in for broker tests, built on RemotingServer.

It answers what a broker and the admin commands ask a Java 4.7 NameServer,
the way Java answers (REGISTER_BROKER with an empty header and, when it has
one, the ORDER_TOPIC_CONFIG table; UNREGISTER_BROKER; QUERY_DATA_VERSION
comparing with the last registered version; routes and cluster info built
from the registrations; DELETE_TOPIC_IN_NAMESRV; PUT_KV_CONFIG for the order
table), and records every request. ``standin_namesrv(port)`` serves one on
127.0.0.1 until its block ends; switching a test to the real pyrocket
NameServer means replacing this fixture only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from pyrocket.protocol.bodies.route import BrokerData, ClusterInfo, QueueData, TopicRouteData
from pyrocket.protocol.bodies.topic import DataVersion, KVTable, RegisterBrokerBody, TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    DeleteTopicInNamesrvRequestHeader,
    GetRouteInfoRequestHeader,
    PutKVConfigRequestHeader,
    QueryDataVersionRequestHeader,
    QueryDataVersionResponseHeader,
    RegisterBrokerRequestHeader,
    RegisterBrokerResponseHeader,
    UnRegisterBrokerRequestHeader,
)
from pyrocket.remoting import Connection, RemotingServer, ServerConfig

ORDER_TOPIC_CONFIG = "ORDER_TOPIC_CONFIG"


@dataclass
class BrokerEntry:
    cluster: str
    broker_name: str
    broker_id: int
    addr: str
    data_version: DataVersion
    topics: dict[str, TopicConfig]


@dataclass
class StandInNameServer:
    """Records requests; ``registrations`` counts REGISTER_BROKER per broker address."""

    requests: list[RemotingCommand] = field(default_factory=list)
    brokers: dict[str, BrokerEntry] = field(default_factory=dict)
    kv: dict[str, dict[str, str]] = field(default_factory=dict)
    unregistered: list[str] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)

    def _arrived(self, request: RemotingCommand) -> None:
        self.requests.append(request)
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, predicate: object) -> None:
        """Wait until ``predicate()`` holds (use under fail_after)."""
        assert callable(predicate)
        while not predicate():
            await self.changed.wait()

    def count(self, code: int) -> int:
        return sum(1 for r in self.requests if r.code == code)

    def server(self) -> RemotingServer:
        server = RemotingServer(ServerConfig())
        server.register_processor(RequestCode.REGISTER_BROKER, self.register_broker)
        server.register_processor(RequestCode.UNREGISTER_BROKER, self.unregister_broker)
        server.register_processor(RequestCode.QUERY_DATA_VERSION, self.query_data_version)
        server.register_processor(RequestCode.GET_ROUTEINFO_BY_TOPIC, self.route)
        server.register_processor(RequestCode.GET_BROKER_CLUSTER_INFO, self.cluster_info)
        server.register_processor(RequestCode.DELETE_TOPIC_IN_NAMESRV, self.delete_topic)
        server.register_processor(RequestCode.PUT_KV_CONFIG, self.put_kv)
        return server

    async def register_broker(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(RegisterBrokerRequestHeader)
        body = RegisterBrokerBody.decode(request.body or b"{}", header.compressed)
        wrapper = body.topic_config_serialize_wrapper
        entry = self.brokers.get(header.broker_addr)
        topics = dict(wrapper.topic_config_table)
        if entry is not None and len(topics) == 1 and entry.topics:
            entry.topics.update(topics)  # an incremental registration
            entry.data_version = wrapper.data_version
        else:
            self.brokers[header.broker_addr] = BrokerEntry(
                header.cluster_name,
                header.broker_name,
                header.broker_id,
                header.broker_addr,
                wrapper.data_version,
                topics,
            )
        self._arrived(request)
        if request.is_oneway:
            return RemotingCommand.response(ResponseCode.SUCCESS)
        order = self.kv.get(ORDER_TOPIC_CONFIG)
        return RemotingCommand.response(
            ResponseCode.SUCCESS,
            header=RegisterBrokerResponseHeader(),
            body=KVTable(order).encode() if order else None,
        )

    async def unregister_broker(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(UnRegisterBrokerRequestHeader)
        self.brokers.pop(header.broker_addr, None)
        self.unregistered.append(header.broker_addr)
        self._arrived(request)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def query_data_version(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(QueryDataVersionRequestHeader)
        theirs = DataVersion.decode(request.body or b"{}")
        entry = self.brokers.get(header.broker_addr)
        changed = entry is None or entry.data_version != theirs
        self._arrived(request)
        return RemotingCommand.response(
            ResponseCode.SUCCESS,
            header=QueryDataVersionResponseHeader(changed=changed),
            body=None if entry is None else entry.data_version.encode(),
        )

    async def route(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        topic = request.decode_header(GetRouteInfoRequestHeader).topic
        self._arrived(request)
        queues = []
        brokers = []
        for entry in self.brokers.values():
            config = entry.topics.get(topic)
            if config is None:
                continue
            queues.append(
                QueueData(
                    entry.broker_name,
                    config.read_queue_nums,
                    config.write_queue_nums,
                    config.perm,
                    config.topic_sys_flag,
                )
            )
            brokers.append(
                BrokerData(entry.cluster, entry.broker_name, {entry.broker_id: entry.addr})
            )
        if not queues:
            return RemotingCommand.response(
                ResponseCode.TOPIC_NOT_EXIST,
                f"No topic route info in name server for the topic: {topic}",
            )
        route = TopicRouteData(None, tuple(queues), tuple(brokers), {})
        return RemotingCommand.response(ResponseCode.SUCCESS, body=route.encode())

    async def cluster_info(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        self._arrived(request)
        broker_table: dict[str, BrokerData] = {}
        clusters: dict[str, list[str]] = {}
        for entry in self.brokers.values():
            old = broker_table.get(entry.broker_name)
            addrs = dict(old.broker_addrs or {}) if old is not None else {}
            addrs[entry.broker_id] = entry.addr
            broker_table[entry.broker_name] = BrokerData(entry.cluster, entry.broker_name, addrs)
            names = clusters.setdefault(entry.cluster, [])
            if entry.broker_name not in names:
                names.append(entry.broker_name)
        info = ClusterInfo(broker_table, {k: tuple(v) for k, v in clusters.items()})
        return RemotingCommand.response(ResponseCode.SUCCESS, body=info.encode())

    async def delete_topic(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        topic = request.decode_header(DeleteTopicInNamesrvRequestHeader).topic
        for entry in self.brokers.values():
            entry.topics.pop(topic, None)
        self._arrived(request)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def put_kv(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(PutKVConfigRequestHeader)
        self.kv.setdefault(header.namespace, {})[header.key] = header.value
        self._arrived(request)
        return RemotingCommand.response(ResponseCode.SUCCESS)


@asynccontextmanager
async def standin_namesrv(
    port: int = 0, state: StandInNameServer | None = None
) -> AsyncIterator[tuple[StandInNameServer, str]]:
    """Serve a stand-in NameServer on 127.0.0.1:``port`` (0: any) for the
    block; yields it and its address. Pass ``state`` to restart one."""
    namesrv = state if state is not None else StandInNameServer()
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(namesrv.server().serve, "127.0.0.1", port)
        yield namesrv, f"127.0.0.1:{bound}"
        nursery.cancel_scope.cancel()
