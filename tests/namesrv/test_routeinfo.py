"""RouteInfoManager without sockets: Java's registration semantics, removal
consistency (property-based, against a simple model) and Java iteration order."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrocket.namesrv.routeinfo import QueueNums, RouteInfoManager, TopicQueueConfig, topic_queues
from pyrocket.namesrv.routetables import TopicDelta, topic_delta
from pyrocket.protocol.bodies import DataVersion, QueueData, TopicList
from pyrocket.protocol.javahash import (
    JavaConcurrentHashMap,
    JavaHashMap,
    hashmap_order,
    spread,
    string_hash,
)

V1 = DataVersion(1_000, 1)
V2 = DataVersion(2_000, 2)
CONN = object()


def register(
    routes: RouteInfoManager,
    *,
    cluster: str = "C1",
    name: str = "broker-a",
    addr: str = "10.0.0.1:10911",
    broker_id: int = 0,
    ha: str | None = None,
    version: DataVersion = V1,
    topics: list[TopicQueueConfig] | None = None,
    filters: list[str] | None = None,
    conn: object = CONN,
    now: int = 0,
) -> tuple[str | None, str | None]:
    result = routes.register_broker(
        cluster,
        addr,
        name,
        broker_id,
        ha or addr.replace("10911", "10912"),
        version,
        topic_queues(topics or []),
        [] if filters is None else filters,
        conn,
        now,
    )
    return result.ha_server_addr, result.master_addr


def queues(routes: RouteInfoManager, topic: str) -> dict[str | None, tuple[int, int, int, int]]:
    return {
        q.broker_name: (q.read_queue_nums, q.write_queue_nums, q.perm, q.topic_syn_flag)
        for q in routes.queue_datas(topic)
    }


def test_first_registration_fills_every_table() -> None:
    routes = RouteInfoManager()
    register(routes, topics=[TopicQueueConfig("T1", 8, 4, 6, 1)])
    assert routes.cluster_names() == {"C1": ["broker-a"]}
    data = routes.broker_data("broker-a")
    assert data is not None and data.cluster == "C1"
    assert data.broker_addrs == {0: "10.0.0.1:10911"}
    assert routes.queue_datas("T1") == [QueueData("broker-a", 8, 4, 6, 1)]
    live = routes.live_brokers["10.0.0.1:10911"]
    assert live.data_version == V1 and live.connection is CONN
    assert live.ha_server_addr == "10.0.0.1:10912"
    route = routes.pickup_topic_route_data("T1")
    assert route is not None and route.order_topic_conf is None
    assert [b.broker_name for b in route.broker_datas or ()] == ["broker-a"]


def test_queue_data_is_rebuilt_only_when_the_data_version_changes() -> None:
    routes = RouteInfoManager()
    register(routes, topics=[TopicQueueConfig("T1", 8, 8)])
    # Same version, different table: Java does not look at the table.
    register(routes, topics=[TopicQueueConfig("T1", 2, 2), TopicQueueConfig("T2")])
    assert queues(routes, "T1") == {"broker-a": (8, 8, 6, 0)}
    assert "T2" not in routes
    register(routes, version=V2, topics=[TopicQueueConfig("T1", 2, 2), TopicQueueConfig("T2")])
    assert queues(routes, "T1") == {"broker-a": (2, 2, 6, 0)}
    assert queues(routes, "T2") == {"broker-a": (16, 16, 6, 0)}


def test_a_topic_missing_from_a_new_table_is_kept_as_java_does() -> None:
    routes = RouteInfoManager()
    register(routes, topics=[TopicQueueConfig("T1"), TopicQueueConfig("T2")])
    register(routes, version=V2, topics=[TopicQueueConfig("T1")])
    assert set(routes.topic_names()) == {"T1", "T2"}


def test_changed_queue_data_moves_to_the_end_of_the_topic_list() -> None:
    routes = RouteInfoManager()
    register(routes, name="broker-a", addr="10.0.0.1:1", topics=[TopicQueueConfig("T", 4, 4)])
    register(routes, name="broker-b", addr="10.0.0.2:1", topics=[TopicQueueConfig("T", 4, 4)])
    register(
        routes, name="broker-a", addr="10.0.0.1:1", version=V2, topics=[TopicQueueConfig("T", 8, 8)]
    )
    assert list(queues(routes, "T")) == ["broker-b", "broker-a"]
    # An equal one stays where it is.
    register(
        routes, name="broker-b", addr="10.0.0.2:1", version=V2, topics=[TopicQueueConfig("T", 4, 4)]
    )
    assert list(queues(routes, "T")) == ["broker-b", "broker-a"]


def test_a_slave_learns_its_masters_addresses_and_adds_no_queues() -> None:
    routes = RouteInfoManager()
    assert register(routes, ha="10.0.0.1:10912", topics=[TopicQueueConfig("T")]) == (None, None)
    answer = register(
        routes, addr="10.0.0.2:10911", broker_id=1, version=V2, topics=[TopicQueueConfig("S")]
    )
    assert answer == ("10.0.0.1:10912", "10.0.0.1:10911")
    assert "S" not in routes
    data = routes.broker_data("broker-a")
    assert data is not None and data.broker_addrs == {0: "10.0.0.1:10911", 1: "10.0.0.2:10911"}


def test_a_slave_without_a_live_master_learns_nothing() -> None:
    routes = RouteInfoManager()
    assert register(routes, addr="10.0.0.2:10911", broker_id=1) == (None, None)


def test_an_address_has_one_id_a_slave_promoted_to_master_drops_its_old_id() -> None:
    routes = RouteInfoManager()
    register(routes, addr="10.0.0.2:10911", broker_id=1)
    register(routes, addr="10.0.0.2:10911", broker_id=0, version=V2)
    data = routes.broker_data("broker-a")
    assert data is not None and data.broker_addrs == {0: "10.0.0.2:10911"}


def test_unregistering_a_master_keeps_its_slave_and_its_topics() -> None:
    routes = RouteInfoManager()
    register(routes, topics=[TopicQueueConfig("T")])
    register(routes, addr="10.0.0.2:10911", broker_id=1)
    routes.unregister_broker("C1", "10.0.0.1:10911", "broker-a", 0)
    data = routes.broker_data("broker-a")
    assert data is not None and data.broker_addrs == {1: "10.0.0.2:10911"}
    assert "T" in routes
    route = routes.pickup_topic_route_data("T")
    assert route is not None
    assert [b.broker_addrs for b in route.broker_datas or ()] == [{1: "10.0.0.2:10911"}]
    routes.unregister_broker("C1", "10.0.0.2:10911", "broker-a", 1)
    assert routes.broker_data("broker-a") is None
    assert routes.cluster_names() == {}
    assert len(routes) == 0
    assert routes.live_brokers == {}


def test_the_last_broker_of_a_name_takes_it_out_of_its_cluster_only() -> None:
    routes = RouteInfoManager()
    register(routes, name="broker-a", addr="10.0.0.1:1", topics=[TopicQueueConfig("T")])
    register(routes, name="broker-b", addr="10.0.0.2:1", topics=[TopicQueueConfig("T")])
    routes.unregister_broker("C1", "10.0.0.1:1", "broker-a", 0)
    assert routes.cluster_names() == {"C1": ["broker-b"]}
    assert list(queues(routes, "T")) == ["broker-b"]


def test_connection_loss_drops_every_broker_registered_over_it() -> None:
    routes = RouteInfoManager()
    shared, other = object(), object()
    register(routes, name="a", addr="10.0.0.1:1", conn=shared, topics=[TopicQueueConfig("A")])
    register(routes, name="b", addr="10.0.0.2:1", conn=shared, topics=[TopicQueueConfig("B")])
    register(routes, name="c", addr="10.0.0.3:1", conn=other, topics=[TopicQueueConfig("C")])
    dropped = routes.on_connection_closed(shared)
    assert sorted(d.broker_addr for d in dropped) == ["10.0.0.1:1", "10.0.0.2:1"]
    assert set(routes.live_brokers) == {"10.0.0.3:1"}
    assert routes.topic_names() == ["C"]
    assert routes.on_connection_closed(shared) == []


def test_a_broker_that_moved_to_another_connection_survives_the_old_ones_close() -> None:
    routes = RouteInfoManager()
    old, new = object(), object()
    register(routes, conn=old)
    register(routes, conn=new)
    assert routes.on_connection_closed(old) == []
    assert set(routes.live_brokers) == {"10.0.0.1:10911"}


def test_expiry_drops_exactly_the_brokers_not_heard_of_in_time() -> None:
    routes = RouteInfoManager()
    register(routes, name="a", addr="10.0.0.1:1", now=0, topics=[TopicQueueConfig("A")])
    register(routes, name="b", addr="10.0.0.2:1", now=50_000, topics=[TopicQueueConfig("B")])
    assert routes.scan_not_active_brokers(120_000) == []  # not *more* than 120 s yet
    dropped = routes.scan_not_active_brokers(120_001)
    assert [d.broker_addr for d in dropped] == ["10.0.0.1:1"]
    assert dropped[0].connection is CONN
    assert routes.topic_names() == ["B"]
    # An unchanged QUERY_DATA_VERSION counts as being heard of.
    routes.update_broker_info_update_timestamp("10.0.0.2:1", 169_000)
    assert routes.scan_not_active_brokers(170_001) == []
    assert [d.broker_addr for d in routes.scan_not_active_brokers(289_001)] == ["10.0.0.2:1"]
    assert routes.cluster_names() == {}


def test_wipe_write_perm_clears_the_write_bit_and_counts_topics() -> None:
    routes = RouteInfoManager()
    register(routes, name="a", addr="1:1", topics=[TopicQueueConfig("T1"), TopicQueueConfig("T2")])
    register(routes, name="b", addr="2:1", topics=[TopicQueueConfig("T1")])
    assert routes.wipe_write_perm_of_broker("a") == 2
    assert queues(routes, "T1") == {"a": (16, 16, 4, 0), "b": (16, 16, 6, 0)}
    route = routes.pickup_topic_route_data("T2")
    assert route is not None and [q.perm for q in route.queue_datas or ()] == [4]
    assert routes.wipe_write_perm_of_broker("a") == 2  # Java counts them again
    assert routes.wipe_write_perm_of_broker("nobody") == 0


def test_delete_topic_until_the_next_changed_registration() -> None:
    routes = RouteInfoManager()
    register(routes, topics=[TopicQueueConfig("T")])
    routes.delete_topic("T")
    assert routes.route_body("T") is None
    register(routes, topics=[TopicQueueConfig("T")])
    assert "T" not in routes
    register(routes, version=V2, topics=[TopicQueueConfig("T")])
    assert "T" in routes


def test_routes_carry_filter_servers_of_every_address() -> None:
    routes = RouteInfoManager()
    register(routes, topics=[TopicQueueConfig("T")], filters=["10.0.0.9:1", "10.0.0.9:2"])
    register(routes, addr="10.0.0.2:10911", broker_id=1)
    body = routes.route_body("T")
    assert body is not None
    assert b'"filterServerTable":{"10.0.0.1:10911":["10.0.0.9:1","10.0.0.9:2"]}' in body
    register(routes, topics=[TopicQueueConfig("T")], filters=[])
    route = routes.pickup_topic_route_data("T")
    assert route is not None and route.filter_server_table == {}


def test_route_body_with_order_topic_conf_sits_between_filter_servers_and_queues() -> None:
    routes = RouteInfoManager()
    register(routes, topics=[TopicQueueConfig("T", 4, 4)])
    body = routes.route_body("T", "broker-a:4")
    assert body == (
        b'{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911"},"brokerName":"broker-a",'
        b'"cluster":"C1"}],"filterServerTable":{},"orderTopicConf":"broker-a:4",'
        b'"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,'
        b'"topicSynFlag":0,"writeQueueNums":4}]}'
    )


def test_topic_lists() -> None:
    routes = RouteInfoManager()
    register(routes, cluster="C1", name="a", addr="1:1", topics=[TopicQueueConfig("A", 1, 1)])
    unit = TopicQueueConfig("U", topic_sys_flag=1)
    unit_sub = TopicQueueConfig("S", topic_sys_flag=2)
    both = TopicQueueConfig("B", topic_sys_flag=3)
    register(routes, cluster="C2", name="b", addr="2:1", topics=[unit, unit_sub, both])
    assert set(routes.all_topic_list().topic_list) == {"A", "U", "S", "B"}
    assert set(routes.topics_by_cluster("C2").topic_list) == {"U", "S", "B"}
    assert routes.topics_by_cluster("nowhere") == TopicList()
    assert set(routes.unit_topic_list().topic_list) == {"U", "B"}
    assert set(routes.has_unit_sub_topic_list().topic_list) == {"S", "B"}
    assert routes.has_unit_sub_ununit_topic_list().topic_list == ("S",)
    system = routes.system_topic_list()
    assert set(system.topic_list) == {"C1", "C2", "a", "b"}
    assert system.broker_addr in ("1:1", "2:1")


def test_cluster_info_body_is_java_layout() -> None:
    routes = RouteInfoManager()
    register(routes, topics=[TopicQueueConfig("T")])
    assert routes.cluster_info_body() == (
        b'{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"10.0.0.1:10911"},'
        b'"brokerName":"broker-a","cluster":"C1"}},"clusterAddrTable":{"C1":["broker-a"]}}'
    )


# ---------------------------------------------------------------------------
# Java iteration order of the topic table


def test_new_topics_enter_the_topic_table_in_the_decoded_tables_order() -> None:
    # Pairs of names in one bucket of a 1024 table, whose order in a default
    # ConcurrentHashMap differs from the body's order.
    names = [f"Topic{i}" for i in range(3000)]
    by_bucket: dict[int, list[str]] = {}
    for name in names:
        by_bucket.setdefault(hash_of(name) & 1023, []).append(name)
    body_order = [n for group in by_bucket.values() if len(group) > 1 for n in group][:40]
    decoded: JavaConcurrentHashMap[str, None] = JavaConcurrentHashMap()
    for name in body_order:
        decoded[name] = None
    assert list(decoded) != body_order
    table: JavaHashMap[str, None] = JavaHashMap(1024)
    for name in decoded:
        table[name] = None

    routes = RouteInfoManager()
    register(routes, topics=[TopicQueueConfig(n) for n in body_order])
    assert routes.topic_names() == list(table)
    assert routes.all_topic_list().topic_list == tuple(hashmap_order(list(table)))


def hash_of(name: str) -> int:
    return spread(string_hash(name))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "remove"]),
            st.integers(0, 1500),
        ),
        max_size=300,
    )
)
def test_topic_table_order_matches_a_java_hashmap(ops: list[tuple[str, int]]) -> None:
    routes = RouteInfoManager()
    model: JavaHashMap[str, None] = JavaHashMap(1024)
    version = 0
    broker_topics: set[str] = set()
    for op, number in ops:
        name = f"T{number}"
        if op == "add":
            if name in broker_topics:
                continue
            broker_topics.add(name)
            version += 1
            register(
                routes,
                version=DataVersion(version, version),
                topics=[TopicQueueConfig(name)],
            )
            if name not in model:
                model[name] = None
        else:
            routes.delete_topic(name)
            broker_topics.discard(name)
            if name in model:
                del model[name]
    assert routes.topic_names() == list(model)
    expected_list = TopicList.collect(list(model))
    assert routes.all_topic_list() == expected_list


def test_large_topic_lists_follow_a_java_hashset() -> None:
    routes = RouteInfoManager()
    names = [f"Topic-{i:05d}" for i in range(2500)]
    register(routes, topics=[TopicQueueConfig(n) for n in names])
    assert routes.all_topic_list() == TopicList.collect(routes.topic_names())


# ---------------------------------------------------------------------------
# Consistency after any sequence of registrations and removals


@dataclass(frozen=True)
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
    Broker("C2", "c", 1, "10.0.0.5:10911"),
    Broker("C2", "d", 0, "10.0.0.6:10911"),
    # b's master again, on another address (a replacement): Java keys
    # addresses by id, so the two race for id 0.
    Broker("C1", "b", 0, "10.0.0.7:10911"),
)
CONNECTIONS = (object(), object(), object())
TOPICS = ("T0", "T1", "T2", "T3", "T4")
LIMIT = 120_000


@dataclass
class Model:
    """The route tables as plain dicts, with Java's rules spelled out simply."""

    live: dict[str, tuple[object, int, DataVersion]] = field(default_factory=dict)
    names: dict[str, dict[int, str]] = field(default_factory=dict)
    topics: dict[str, dict[str, tuple[int, int, int, int]]] = field(default_factory=dict)

    def register(
        self, b: Broker, version: DataVersion, table: dict[str, int], conn: object, now: int
    ) -> None:
        addrs = self.names.get(b.name)
        first = addrs is None or b.broker_id not in addrs
        changed = b.addr not in self.live or self.live[b.addr][2] != version
        self.names.setdefault(b.name, {})[b.broker_id] = b.addr
        if b.broker_id == 0 and (first or changed):
            for topic, queue_nums in table.items():
                self.topics.setdefault(topic, {})[b.name] = (queue_nums, queue_nums, 6, 0)
        self.live[b.addr] = (conn, now, version)

    def drop_name_if_empty(self, name: str) -> None:
        if not self.names[name]:
            del self.names[name]
            for topic in list(self.topics):
                self.topics[topic].pop(name, None)
                if not self.topics[topic]:
                    del self.topics[topic]

    def unregister(self, b: Broker) -> None:
        self.live.pop(b.addr, None)
        if b.name in self.names and self.names[b.name].pop(b.broker_id, None) is not None:
            self.drop_name_if_empty(b.name)

    def destroy(self, addr: str) -> None:
        del self.live[addr]
        for name, addrs in list(self.names.items()):
            for broker_id, other in list(addrs.items()):
                if other == addr:
                    del addrs[broker_id]
                    self.drop_name_if_empty(name)
                    return

    def close(self, conn: object) -> None:
        for addr, (owner, _, _) in list(self.live.items()):
            if owner is conn:
                self.destroy(addr)

    def expire(self, now: int) -> None:
        for addr, (_, last, _) in list(self.live.items()):
            if last + LIMIT < now:
                self.destroy(addr)

    def wipe(self, name: str) -> None:
        for queues in self.topics.values():
            if name in queues:
                read, write, perm, flag = queues[name]
                queues[name] = (read, write, perm & ~2, flag)

    def clusters(self) -> dict[str, set[str]]:
        result: dict[str, set[str]] = {}
        for b in BROKERS:
            if b.name in self.names:
                result.setdefault(b.cluster, set()).add(b.name)
        return result


OPERATION = st.one_of(
    st.tuples(
        st.just("register"),
        st.integers(0, len(BROKERS) - 1),
        st.integers(0, len(CONNECTIONS) - 1),
        st.integers(0, 2),
        st.dictionaries(st.sampled_from(TOPICS), st.sampled_from([1, 4, 8]), max_size=4),
        st.integers(0, 70_000),
    ),
    st.tuples(st.just("unregister"), st.integers(0, len(BROKERS) - 1)),
    st.tuples(st.just("close"), st.integers(0, len(CONNECTIONS) - 1)),
    st.tuples(st.just("expire"), st.integers(0, 130_000)),
    st.tuples(st.just("wipe"), st.sampled_from(["a", "b", "c", "d"])),
    st.tuples(st.just("delete"), st.sampled_from(TOPICS)),
)


@given(st.lists(OPERATION, max_size=30), st.sampled_from(["none", "fresh", "stale"]))
def test_tables_stay_consistent_with_a_simple_model(
    operations: list[tuple[object, ...]], deltas: str
) -> None:
    """``deltas``: registrations pass no TopicDelta, one worked out against
    the table applied last (as the NameServer does off the event loop), or
    one against a copy of it with nothing in it (which must be ignored)."""
    routes = RouteInfoManager()
    model = Model()
    now = 0
    tables: dict[tuple[int, frozenset[tuple[str, int]]], dict[str, QueueNums]] = {}
    for operation in operations:
        kind = operation[0]
        if kind == "register":
            _, index, conn_index, version, table, elapsed = operation
            assert isinstance(index, int) and isinstance(conn_index, int)
            assert isinstance(version, int) and isinstance(elapsed, int)
            assert isinstance(table, dict)
            now += elapsed
            b = BROKERS[index]
            data_version = DataVersion(version, version)
            # The same broker sending the same table again hands over the
            # same object, as the NameServer's body decoder does.
            key = (index, frozenset(table.items()))
            configs = tables.setdefault(
                key, topic_queues(TopicQueueConfig(t, n, n) for t, n in table.items())
            )
            base = routes.applied_table(b.name)
            delta = None
            if base is not None and deltas == "fresh":
                delta = topic_delta(base, configs)
            elif deltas == "stale":
                delta = TopicDelta(dict(base or {}), [])
            routes.register_broker(
                b.cluster, b.addr, b.name, b.broker_id, b.addr, data_version, configs, [],
                CONNECTIONS[conn_index], now, None, delta,
            )  # fmt: skip
            model.register(b, data_version, table, CONNECTIONS[conn_index], now)
        elif kind == "unregister":
            b = BROKERS[int(str(operation[1]))]
            routes.unregister_broker(b.cluster, b.addr, b.name, b.broker_id)
            model.unregister(b)
        elif kind == "close":
            conn = CONNECTIONS[int(str(operation[1]))]
            routes.on_connection_closed(conn)
            model.close(conn)
        elif kind == "wipe":
            name = str(operation[1])
            routes.wipe_write_perm_of_broker(name)
            model.wipe(name)
        elif kind == "delete":
            topic = str(operation[1])
            routes.delete_topic(topic)
            model.topics.pop(topic, None)
        else:
            now += int(str(operation[1]))
            routes.scan_not_active_brokers(now, LIMIT)
            model.expire(now)
        check(routes, model)


def check(routes: RouteInfoManager, model: Model) -> None:
    assert set(routes.live_brokers) == set(model.live)
    assert {c: set(n) for c, n in routes.cluster_names().items()} == model.clusters()
    assert set(routes.broker_names()) == set(model.names)
    for name, addrs in model.names.items():
        data = routes.broker_data(name)
        assert data is not None and data.broker_addrs == addrs
    assert set(routes.topic_names()) == set(model.topics)
    for topic, expected in model.topics.items():
        assert queues(routes, topic) == expected
        route = routes.pickup_topic_route_data(topic)
        assert route is not None
        assert {b.broker_name: b.broker_addrs for b in route.broker_datas or ()} == {
            name: model.names[name] for name in expected
        }
        assert {q.broker_name for q in route.queue_datas or ()} == set(expected)
        # The cached fast encoding is what the bean encoder writes for it,
        # with and without orderTopicConf.
        assert routes.route_body(topic) == route.encode()
        conf = f"{topic}:{len(expected)}"
        assert routes.route_body(topic, conf) == replace(route, order_topic_conf=conf).encode()
    info = routes.cluster_info()
    assert routes.cluster_info_body() == info.encode()
    assert set(info.broker_addr_table or {}) == set(model.names)
    # Nothing dangles: every queue belongs to a known broker name, every
    # cluster and broker name has members.
    assert all(set(q) <= set(model.names) for q in model.topics.values())
    assert all(names for names in routes.cluster_names().values())


@pytest.mark.parametrize("change", ["wipe", "delete"])
def test_the_same_table_applied_again_restores_what_admin_changed(change: str) -> None:
    routes = RouteInfoManager()
    table = topic_queues([TopicQueueConfig("T1", 4, 4)])
    routes.register_broker("C", "1:1", "a", 0, "1:2", V1, table, [], CONN, 0)
    if change == "wipe":
        routes.wipe_write_perm_of_broker("a")
    else:
        routes.delete_topic("T1")
    # The same table object with a new DataVersion: Java applies it again.
    routes.register_broker("C", "1:1", "a", 0, "1:2", V2, table, [], CONN, 0)
    assert queues(routes, "T1") == {"a": (4, 4, 6, 0)}


def test_a_table_with_many_changes_is_described_in_a_few_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    routes = RouteInfoManager()
    first = topic_queues(TopicQueueConfig(f"T{i}", 4, 4) for i in range(200))
    changed = topic_queues(TopicQueueConfig(f"T{i}", 8, 8) for i in range(200))
    with caplog.at_level(logging.INFO, logger="pyrocket.namesrv"):
        routes.register_broker("C", "1:1", "a", 0, "1:2", V1, first, [], CONN, 0)
        routes.register_broker("C", "1:1", "a", 0, "1:2", V2, changed, [], CONN, 0)
    lines = [r.getMessage() for r in caplog.records]
    new = [line for line in lines if line.startswith("new topic registered")]
    changes = [line for line in lines if line.startswith("topic changed")]
    assert len(new) == len(changes) == 17
    assert new[-1] == "new topic registered: 184 more topics of broker a"
    assert changes[-1] == "topic changed: 184 more topics of broker a"
    assert changes[0].startswith("topic changed, T")
    assert all(queues(routes, f"T{i}") == {"a": (8, 8, 6, 0)} for i in range(200))


def test_a_delta_against_a_table_no_longer_applied_is_not_used() -> None:
    routes = RouteInfoManager()
    first = topic_queues([TopicQueueConfig("T1", 4, 4), TopicQueueConfig("T2", 4, 4)])
    second = topic_queues([TopicQueueConfig("T1", 8, 8), TopicQueueConfig("T2", 4, 4)])
    third = topic_queues([TopicQueueConfig("T1", 8, 8), TopicQueueConfig("T2", 2, 2)])
    routes.register_broker("C", "1:1", "a", 0, "1:2", V1, first, [], CONN, 0)
    stale = topic_delta(first, second)
    routes.wipe_write_perm_of_broker("a")  # the name's queue data changed since
    assert routes.applied_table("a") is None
    routes.register_broker("C", "1:1", "a", 0, "1:2", V2, second, [], CONN, 0, None, stale)
    assert queues(routes, "T2") == {"a": (4, 4, 6, 0)}  # the write bit is back
    fresh = topic_delta(second, third)
    assert fresh.items == [("T2", (2, 2, 6, 0))]
    routes.register_broker("C", "1:1", "a", 0, "1:2", DataVersion(3, 3), third, [], CONN, 0,
                           None, stale)  # fmt: skip
    assert queues(routes, "T2") == {"a": (2, 2, 6, 0)}
    assert queues(routes, "T1") == {"a": (8, 8, 6, 0)}
