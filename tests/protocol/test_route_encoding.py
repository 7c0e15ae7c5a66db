"""The NameServer's fast route encoders equal the generic bean encoder.

:meth:`TopicRouteData.encode_head` / :meth:`~TopicRouteData.encode_tail` /
:meth:`~TopicRouteData.join_encoded` and :meth:`ClusterInfo.encode_tables`
build bodies from plain rows; for any rows they must give the bytes that
encoding the equivalent beans gives, and for every route and cluster map Java
wrote, rebuilding the body from its decoded rows gives Java's bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pyrocket.protocol.bodies import BrokerData, ClusterInfo, QueueData, TopicRouteData
from pyrocket.protocol.bodies.route import BrokerRow, QueueRow
from pyrocket.protocol.codes import RequestCode
from tests.vectorset import pair_requests, read_records, scenario_files

# Any code point, lone surrogates included (both paths write those as "?").
_TEXT = st.text(st.characters(blacklist_categories=()), max_size=12)
_INT = st.integers(-(1 << 31), (1 << 31) - 1)
_LONG = st.integers(-(1 << 63), (1 << 63) - 1)

_QUEUE_ROWS = st.lists(st.tuples(_TEXT, st.tuples(_INT, _INT, _INT, _INT)), max_size=6)
_BROKER_ROWS = st.lists(
    st.tuples(st.none() | _TEXT, st.none() | _TEXT, st.dictionaries(_LONG, _TEXT, max_size=4)),
    max_size=4,
)
_FILTERS = st.dictionaries(_TEXT, st.none() | st.lists(_TEXT, max_size=3), max_size=4)


def _queue_bean(row: QueueRow) -> QueueData:
    name, (read, write, perm, flag) = row
    return QueueData(name, read, write, perm, flag)


def _broker_bean(row: BrokerRow) -> BrokerData:
    cluster, name, addrs = row
    return BrokerData(cluster, name, addrs)


def _route_bean(
    brokers: Sequence[BrokerRow],
    filters: Mapping[str, Sequence[str] | None],
    queues: Sequence[QueueRow],
    order_topic_conf: str | None,
) -> TopicRouteData:
    # None values stay in: the bean encoder leaves null map values out too.
    table: dict[str, Any] = {
        addr: None if servers is None else tuple(servers) for addr, servers in filters.items()
    }
    return TopicRouteData(
        order_topic_conf=order_topic_conf,
        queue_datas=tuple(_queue_bean(row) for row in queues),
        broker_datas=tuple(_broker_bean(row) for row in brokers),
        filter_server_table=table,
    )


def _fast_route(
    brokers: Sequence[BrokerRow],
    filters: Mapping[str, Sequence[str] | None],
    queues: Sequence[QueueRow],
    order_topic_conf: str | None,
) -> bytes:
    head = TopicRouteData.encode_head(brokers, filters)
    tail = TopicRouteData.encode_tail(queues)
    return TopicRouteData.join_encoded(head, tail, order_topic_conf)


@given(_BROKER_ROWS, _FILTERS, _QUEUE_ROWS, st.none() | _TEXT)
def test_fast_route_equals_the_bean_encoder(
    brokers: list[BrokerRow],
    filters: dict[str, list[str] | None],
    queues: list[QueueRow],
    order_topic_conf: str | None,
) -> None:
    expected = _route_bean(brokers, filters, queues, order_topic_conf).encode()
    assert _fast_route(brokers, filters, queues, order_topic_conf) == expected


@given(
    st.lists(
        st.tuples(
            _TEXT,
            st.tuples(
                st.none() | _TEXT, st.none() | _TEXT, st.dictionaries(_LONG, _TEXT, max_size=3)
            ),
        ),
        max_size=5,
        unique_by=lambda pair: pair[0],
    ),
    st.dictionaries(_TEXT, st.lists(st.none() | _TEXT, max_size=4), max_size=4),
)
def test_fast_cluster_info_equals_the_bean_encoder(
    brokers: list[tuple[str, BrokerRow]], clusters: dict[str, list[str | None]]
) -> None:
    expected = ClusterInfo(
        {name: _broker_bean(row) for name, row in brokers},
        {cluster: tuple(names) for cluster, names in clusters.items()},
    ).encode()
    assert ClusterInfo.encode_tables(brokers, clusters.items()) == expected


def _answers(code: RequestCode) -> list[bytes]:
    """Every successful answer body Java wrote to a ``code`` request."""
    bodies = []
    for path in scenario_files():
        records = read_records(path)
        pairs = pair_requests(records)
        for record in records:
            if not record.is_frame or not record.is_response or record.body is None:
                continue
            request = pairs.get(record.seq)
            if request is not None and request.code == code:
                bodies.append(record.body)
    return bodies


def test_fast_route_rebuilds_every_recorded_route() -> None:
    bodies = _answers(RequestCode.GET_ROUTEINFO_BY_TOPIC)
    assert bodies
    for body in bodies:
        route = TopicRouteData.decode(body)
        assert route.broker_datas is not None and route.queue_datas is not None
        assert route.filter_server_table is not None
        brokers: list[BrokerRow] = [
            (data.cluster, data.broker_name, data.broker_addrs or {}) for data in route.broker_datas
        ]
        queues: list[QueueRow] = []
        for queue in route.queue_datas:
            assert queue.broker_name is not None
            numbers = (queue.read_queue_nums, queue.write_queue_nums, queue.perm)
            queues.append((queue.broker_name, (*numbers, queue.topic_syn_flag)))
        filters = dict(route.filter_server_table)
        assert _fast_route(brokers, filters, queues, route.order_topic_conf) == body


def test_fast_cluster_info_rebuilds_every_recorded_cluster_map() -> None:
    bodies = _answers(RequestCode.GET_BROKER_CLUSTER_INFO)
    assert bodies
    for body in bodies:
        info = ClusterInfo.decode(body)
        assert info.broker_addr_table is not None and info.cluster_addr_table is not None
        brokers: list[tuple[str, BrokerRow]] = [
            (name, (data.cluster, data.broker_name, data.broker_addrs or {}))
            for name, data in info.broker_addr_table.items()
        ]
        assert ClusterInfo.encode_tables(brokers, info.cluster_addr_table.items()) == body
