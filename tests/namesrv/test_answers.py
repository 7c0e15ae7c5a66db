"""The NameServer's kept answers (pyrocket.namesrv.answers) never differ from
answers built from scratch.

Each test drives one NameServer through a sequence of changes (registrations,
unregistrations, connection loss, expiry, topic deletion, write-permission
wipes, orderTopicConf changes in the KV table, orderMessageEnable changes),
asking for every route, the cluster map and the topic list after each change,
so its caches are always warm. After each change the same requests are
replayed into a brand-new NameServer state that has answered nothing yet; its
first answers are built from the tables alone and must be byte for byte what
the warm one said.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrocket.namesrv import NameServer, NamesrvConfig
from pyrocket.namesrv.answers import ROUTES_KEPT, AnswerCache
from pyrocket.namesrv.kvconfig import NAMESPACE_ORDER_TOPIC_CONFIG, KVConfigManager
from pyrocket.namesrv.processor import DefaultRequestProcessor, NamesrvState
from pyrocket.protocol.bodies import DataVersion, TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    DeleteKVConfigRequestHeader,
    DeleteTopicInNamesrvRequestHeader,
    GetRouteInfoRequestHeader,
    PutKVConfigRequestHeader,
    UnRegisterBrokerRequestHeader,
    WipeWritePermOfBrokerRequestHeader,
)
from tests.namesrv.helpers import RawConnection, namesrv_config, register_request, running_namesrv

TOPICS = ("T0", "T1", "T2", "T3")
MISSING = "NoSuchTopic"
LIMIT = 120_000
QUERIES = (
    *(
        RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader(t))
        for t in (*TOPICS, MISSING)
    ),
    RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_INFO),
    RemotingCommand.request(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
)

# An operation: ("request", connection index, request), ("close", connection
# index) or ("expire", now in ms); each runs at a clock reading.
Operation = tuple[str, int, Any]


@dataclasses.dataclass(frozen=True)
class Broker:
    cluster: str
    name: str
    broker_id: int
    addr: str


BROKERS = (
    Broker("C1", "a", 0, "10.0.0.1:10911"),
    Broker("C1", "a", 1, "10.0.0.2:10911"),
    Broker("C1", "b", 0, "10.0.0.3:10911"),
    Broker("C2", "c", 0, "10.0.0.4:10911"),
)


def register(
    b: Broker, version: int, table: dict[str, int], filters: tuple[str, ...] = ()
) -> RemotingCommand:
    return register_request(
        cluster=b.cluster,
        broker_name=b.name,
        broker_addr=b.addr,
        broker_id=b.broker_id,
        topics=[TopicConfig(t, n, n) for t, n in table.items()],
        data_version=DataVersion(1_000 + version, version),
        filter_servers=filters,
    )


def unregister(b: Broker) -> RemotingCommand:
    header = UnRegisterBrokerRequestHeader(b.name, b.addr, b.cluster, b.broker_id)
    return RemotingCommand.request(RequestCode.UNREGISTER_BROKER, header)


def wipe(name: str) -> RemotingCommand:
    header = WipeWritePermOfBrokerRequestHeader(name)
    return RemotingCommand.request(RequestCode.WIPE_WRITE_PERM_OF_BROKER, header)


def delete_topic(topic: str) -> RemotingCommand:
    header = DeleteTopicInNamesrvRequestHeader(topic)
    return RemotingCommand.request(RequestCode.DELETE_TOPIC_IN_NAMESRV, header)


def put_kv(namespace: str, key: str, value: str) -> RemotingCommand:
    header = PutKVConfigRequestHeader(namespace, key, value)
    return RemotingCommand.request(RequestCode.PUT_KV_CONFIG, header)


def delete_kv(namespace: str, key: str) -> RemotingCommand:
    header = DeleteKVConfigRequestHeader(namespace, key)
    return RemotingCommand.request(RequestCode.DELETE_KV_CONFIG, header)


def order_messages(enabled: bool) -> RemotingCommand:
    body = f"orderMessageEnable={'true' if enabled else 'false'}\n".encode()
    return RemotingCommand.request(RequestCode.UPDATE_NAMESRV_CONFIG, body=body)


class FakeConnection:
    """What the handlers use of a connection, for the in-process NameServer."""

    remote_address = "127.0.0.1:1"

    def release_order(self, request: RemotingCommand) -> None:
        pass


class Table:
    """A processor table that just records the handlers."""

    def __init__(self) -> None:
        self.handlers: dict[int, Callable[[Any, RemotingCommand], Any]] = {}

    def register_processor(
        self, code: int, handler: Callable[[Any, RemotingCommand], Any], *, repeated: bool = False
    ) -> None:
        self.handlers[code] = handler


class InProcess:
    """A NameServer's state and handlers without a server; its clock reads
    ``now``."""

    def __init__(self, config: NamesrvConfig) -> None:
        self.now = 0
        # No KV file: a change is applied at once and nothing waits for a write.
        self.state = NamesrvState(config, kv=KVConfigManager(None), clock=lambda: self.now)
        table = Table()
        DefaultRequestProcessor(self.state).register_all(table)  # type: ignore[arg-type]
        self.handlers = table.handlers
        self.connections = [FakeConnection() for _ in range(3)]

    def handle(self, request: RemotingCommand, conn: object = None) -> RemotingCommand:
        result = self.handlers[request.code](conn, request)
        if inspect.iscoroutine(result):
            # The change is applied; only the (absent) file write is awaited.
            result.close()
            return RemotingCommand.response(ResponseCode.SUCCESS)
        assert isinstance(result, RemotingCommand)
        return result

    def apply(self, operation: Operation, now: int) -> None:
        self.now = now
        kind, index, value = operation
        if kind == "request":
            self.handle(value, self.connections[index])
        elif kind == "close":
            self.state.routes.on_connection_closed(self.connections[index])
        else:
            self.state.routes.scan_not_active_brokers(value, LIMIT)

    def answers(self) -> list[RemotingCommand]:
        return [self.handle(query) for query in QUERIES]


def fresh_answers(
    config: NamesrvConfig, done: list[tuple[Operation, int]]
) -> list[RemotingCommand]:
    """What a NameServer that never answered before says after ``done``."""
    cold = InProcess(config)
    for operation, now in done:
        cold.apply(operation, now)
    return cold.answers()


def same(warm: list[RemotingCommand], cold: list[RemotingCommand]) -> None:
    assert len(warm) == len(cold)
    for query, got, want in zip(QUERIES, warm, cold, strict=True):
        what = f"{RequestCode(query.code).name} {dict(query.ext_fields or {})}"
        assert (got.code, got.remark, got.ext_fields) == (
            want.code,
            want.remark,
            want.ext_fields,
        ), what
        assert got.body == want.body, what


# ---------------------------------------------------------------------------
# In process, property-based

OPERATION = st.one_of(
    st.builds(
        lambda b, c, v, table, filters: ("request", c, register(BROKERS[b], v, table, filters)),
        st.integers(0, len(BROKERS) - 1),
        st.integers(0, 2),
        st.integers(0, 2),
        st.dictionaries(st.sampled_from(TOPICS), st.sampled_from([1, 4, 8]), max_size=3),
        st.sampled_from([(), ("10.0.9.1:1",), ("10.0.9.1:1", "10.0.9.2:1")]),
    ),
    st.builds(lambda b: ("request", 0, unregister(BROKERS[b])), st.integers(0, len(BROKERS) - 1)),
    st.builds(lambda c: ("close", c, None), st.integers(0, 2)),
    st.builds(lambda now: ("expire", 0, now), st.integers(0, 400_000)),
    st.builds(lambda n: ("request", 0, wipe(n)), st.sampled_from(["a", "b", "c"])),
    st.builds(lambda t: ("request", 0, delete_topic(t)), st.sampled_from(TOPICS)),
    st.builds(
        lambda ns, t, v: ("request", 0, put_kv(ns, t, v)),
        st.sampled_from([NAMESPACE_ORDER_TOPIC_CONFIG, "OTHER"]),
        st.sampled_from(TOPICS),
        st.sampled_from(["a:4", "a:4;b:8", '\u00e9"\\']),
    ),
    st.builds(
        lambda t: ("request", 0, delete_kv(NAMESPACE_ORDER_TOPIC_CONFIG, t)),
        st.sampled_from(TOPICS),
    ),
    st.builds(lambda on: ("request", 0, order_messages(on)), st.booleans()),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(OPERATION, st.integers(0, 90_000)), max_size=20))
def test_kept_answers_equal_fresh_ones_after_any_changes(
    steps: list[tuple[Operation, int]],
) -> None:
    config = NamesrvConfig(order_message_enable=True)
    warm = InProcess(config)
    done: list[tuple[Operation, int]] = []
    now = 0
    same(warm.answers(), fresh_answers(config, done))
    for operation, elapsed in steps:
        now += elapsed
        warm.apply(operation, now)
        done.append((operation, now))
        # Asked twice: the second answers come from the cache.
        warm.answers()
        same(warm.answers(), fresh_answers(config, done))


def test_only_existing_topics_are_kept_and_at_most_routes_kept() -> None:
    node = InProcess(NamesrvConfig())
    node.handle(register(BROKERS[0], 1, {"T0": 4}), node.connections[0])
    cache: AnswerCache = node.handlers[RequestCode.GET_ROUTEINFO_BY_TOPIC].__self__._answers  # type: ignore[attr-defined]
    for number in range(1_000):
        query = RemotingCommand.request(
            RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader(f"made-up-{number}")
        )
        assert node.handle(query).code == ResponseCode.TOPIC_NOT_EXIST
    assert node.handle(QUERIES[0]).code == ResponseCode.SUCCESS
    assert list(cache._routes) == ["T0"]

    many = {f"M{n}": (4, 4, 6, 0) for n in range(ROUTES_KEPT + 10)}
    node.state.routes.register_broker(
        "C1", "10.0.0.3:10911", "b", 0, None, DataVersion(5, 5), many, [], object(), 0
    )
    for topic in many:
        cache.route(topic)
        assert len(cache._routes) <= ROUTES_KEPT
    # Every topic of b has the same route: they share one answer.
    assert len({id(answer) for answer in cache._routes.values()}) == 1


# ---------------------------------------------------------------------------
# Over a socket


class Driver:
    """The NameServer under test, its peers' connections, and a record of
    what was done to it for the fresh replay."""

    def __init__(self, server: NameServer, connections: list[RawConnection]) -> None:
        self.server = server
        self.connections = connections
        self.done: list[tuple[Operation, int]] = []
        self.opaque = 0
        self.config = server.config

    async def call(self, connection: RawConnection, request: RemotingCommand) -> RemotingCommand:
        self.opaque += 1
        answer = await connection.call(request, self.opaque)
        assert answer.opaque == self.opaque
        return answer

    async def request(self, index: int, request: RemotingCommand) -> None:
        answer = await self.call(self.connections[index], request)
        assert answer.code == ResponseCode.SUCCESS, answer.remark
        now = self.server.state.clock()
        if request.code == RequestCode.REGISTER_BROKER:
            # The replay registers at the very time the server did (expiry
            # depends on it).
            addr = (request.ext_fields or {})["brokerAddr"]
            now = self.server.state.routes.live_brokers[addr].last_update_ms
        self.done.append((("request", index, request), now))

    async def close(self, index: int, addrs: list[str]) -> None:
        await self.connections[index].aclose()
        routes = self.server.state.routes
        while any(addr in routes.live_brokers for addr in addrs):  # noqa: ASYNC110 (no event)
            await trio.sleep(0.005)
        self.done.append((("close", index, None), self.server.state.clock()))

    def expire(self, now: int) -> None:
        self.server.state.routes.scan_not_active_brokers(now, LIMIT)
        self.done.append((("expire", 0, now), now))

    async def check(self, reader: RawConnection) -> list[RemotingCommand]:
        for _ in range(2):  # the second round comes from the cache
            warm = [await self.call(reader, query) for query in QUERIES]
        same(warm, fresh_answers(self.config, self.done))
        return warm


async def test_route_answers_over_a_socket_stay_those_of_a_fresh_nameserver(
    tmp_path: Path,
) -> None:
    async with running_namesrv(config=namesrv_config(tmp_path)) as server:
        with trio.fail_after(30):
            assert server.port is not None
            peers = [await RawConnection.open(server.port) for _ in range(3)]
            reader = await RawConnection.open(server.port)
            ns = Driver(server, peers)
            a0, a1, b0, c0 = BROKERS

            before = await ns.check(reader)
            assert before[-3].code == ResponseCode.TOPIC_NOT_EXIST

            # register
            await ns.request(0, register(a0, 1, {"T0": 4, "T1": 4}))
            await ns.request(1, register(b0, 1, {"T1": 8, "T2": 8}, ("10.0.9.1:1",)))
            first = await ns.check(reader)
            assert first[1].body is not None and b'"brokerName":"b"' in first[1].body
            # a slave, then a master whose queues changed with a new DataVersion
            await ns.request(0, register(a1, 1, {"T0": 4, "T1": 4}))
            await ns.request(0, register(a0, 2, {"T0": 8, "T1": 4, "T3": 1}))
            # filter servers change with the same DataVersion
            await ns.request(1, register(b0, 1, {"T1": 8, "T2": 8}, ("10.0.9.2:1",)))
            await ns.check(reader)

            # orderTopicConf: in the KV table, shown once orderMessageEnable is on
            await ns.request(0, put_kv(NAMESPACE_ORDER_TOPIC_CONFIG, "T1", "a:4;b:8"))
            off = await ns.check(reader)
            await ns.request(0, order_messages(True))
            on = await ns.check(reader)
            assert off[1].body is not None and b"orderTopicConf" not in off[1].body
            assert on[1].body is not None and b'"orderTopicConf":"a:4;b:8"' in on[1].body
            await ns.request(0, put_kv(NAMESPACE_ORDER_TOPIC_CONFIG, "T1", "a:2"))
            await ns.check(reader)
            await ns.request(0, delete_kv(NAMESPACE_ORDER_TOPIC_CONFIG, "T1"))
            await ns.check(reader)

            # write permission wiped, a topic deleted
            await ns.request(0, wipe("a"))
            wiped = await ns.check(reader)
            assert wiped[0].body is not None and b'"perm":4' in wiped[0].body
            await ns.request(0, delete_topic("T3"))
            deleted = await ns.check(reader)
            assert deleted[3].code == ResponseCode.TOPIC_NOT_EXIST

            # unregister, connection loss, expiry
            await ns.request(0, unregister(a1))
            await ns.check(reader)
            await ns.close(1, [b0.addr])
            gone = await ns.check(reader)
            assert gone[2].code == ResponseCode.TOPIC_NOT_EXIST
            await trio.sleep(0.01)
            await ns.request(2, register(c0, 1, {"T2": 4}))
            live = server.state.routes.live_brokers
            ns.expire(live[a0.addr].last_update_ms + LIMIT + 1)
            assert a0.addr not in server.state.routes.live_brokers
            assert c0.addr in server.state.routes.live_brokers
            expired = await ns.check(reader)
            assert expired[0].code == ResponseCode.TOPIC_NOT_EXIST
            assert expired[2].code == ResponseCode.SUCCESS
            for peer in (peers[0], peers[2], reader):
                await peer.aclose()


async def test_a_missing_topic_is_topic_not_exist_with_javas_remark(tmp_path: Path) -> None:
    async with running_namesrv(tmp_path) as server:
        with trio.fail_after(10):
            assert server.port is not None
            conn = await RawConnection.open(server.port)
            await conn.call(register(BROKERS[0], 1, {"T0": 4}), 1)
            for opaque in (2, 3):  # asked twice: still not kept
                answer = await conn.call(QUERIES[len(TOPICS)], opaque)
                assert answer.code == ResponseCode.TOPIC_NOT_EXIST
                assert answer.remark == (
                    "No topic route info in name server for the topic: NoSuchTopic"
                    "\nSee http://rocketmq.apache.org/docs/faq/ for further details."
                )
                assert answer.body is None
            await conn.aclose()
