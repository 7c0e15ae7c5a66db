"""Every body Java 4.7.0 wrote decodes with the typed decoder its request code
selects and re-encodes to the identical bytes.

Bodies are found in the vectors themselves: every recorded body must either
have a typed codec in ``pyrocket.protocol.catalog`` or be a message body (which
``pyrocket.protocol.message`` owns), so a new capture with a new kind of body
fails here until it is covered.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies import (
    Bean,
    ClusterInfo,
    ConsumeStats,
    DataVersion,
    KVTable,
    RegisterBrokerBody,
    TopicList,
    TopicRouteData,
    TopicStatsTable,
)
from pyrocket.protocol.catalog import BodyCodec, request_body_codec, response_body_codec
from pyrocket.protocol.checksum import crc32
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.javahash import hashmap_order
from tests.vectorset import (
    Record,
    default_vectors_dir,
    pair_requests,
    read_records,
    scenario_files,
)

# Message encodings (MessageDecoder layouts, raw message bodies): not JSON.
MESSAGE_BODIES = {
    (RequestCode.SEND_MESSAGE, "request"),
    (RequestCode.SEND_MESSAGE_V2, "request"),
    (RequestCode.SEND_BATCH_MESSAGE, "request"),
    (RequestCode.SEND_REPLY_MESSAGE, "request"),
    (RequestCode.SEND_REPLY_MESSAGE_V2, "request"),
    (RequestCode.CONSUMER_SEND_MSG_BACK, "request"),
    (RequestCode.PULL_MESSAGE, "response"),
    (RequestCode.QUERY_MESSAGE, "response"),
    (RequestCode.VIEW_MESSAGE_BY_ID, "response"),
}


def _bodies() -> list[tuple[Record, int, BodyCodec | None]]:
    """(record, request code, codec) for every recorded frame with a body."""
    found = []
    for path in scenario_files():
        records = read_records(path)
        pairs = pair_requests(records)
        for record in records:
            if not record.is_frame or record.body is None:
                continue
            if record.is_request:
                code = record.code
                assert code is not None
                ext = record.raw["header"].get("extFields")
                found.append((record, code, request_body_codec(code, ext)))
            else:
                request = pairs.get(record.seq)
                assert request is not None, f"{record.scenario}-{record.seq}: unpaired answer"
                assert request.code is not None
                found.append((record, request.code, response_body_codec(request.code)))
    return found


BODIES = _bodies()
TYPED = [(r, code, codec) for r, code, codec in BODIES if codec is not None]


def _id(item: tuple[Record, int, BodyCodec | None]) -> str:
    record, code, _ = item
    return f"{record.scenario}-{record.seq}-{RequestCode(code).name}-{record.dir}"


def test_every_recorded_body_has_a_typed_codec_or_is_a_message() -> None:
    untyped = {
        (RequestCode(code).name, r.dir)
        for r, code, codec in BODIES
        if codec is None and (code, r.dir) not in MESSAGE_BODIES
    }
    assert not untyped, f"bodies without a typed codec: {sorted(untyped)}"
    assert TYPED


@pytest.mark.parametrize("item", TYPED, ids=_id)
def test_body_decodes_and_reencodes_identically(
    item: tuple[Record, int, BodyCodec | None],
) -> None:
    record, _, codec = item
    assert codec is not None and record.body is not None
    value = codec.decode(record.body)
    assert codec.encode(value) == record.body
    if isinstance(value, Bean) and "compressed" not in codec.name:
        assert fastjson.dumps_bytes(value.to_json()) == record.body


def _typed(code: RequestCode, direction: str) -> list[tuple[Record, object]]:
    result = []
    for record, request_code, codec in TYPED:
        if request_code == code and record.dir == direction:
            assert codec is not None and record.body is not None
            result.append((record, codec.decode(record.body)))
    assert result, f"no {code.name} {direction} bodies in the vectors"
    return result


def test_register_broker_bodies_match_their_crc() -> None:
    # Java brokers stamp bodyCrc32; hand-made frames may lie on purpose.
    checked = 0
    for record, _ in _typed(RequestCode.REGISTER_BROKER, "request"):
        if record.client == "handcrafted":
            continue
        ext = record.raw["header"]["extFields"]
        assert crc32(record.body) == int(ext["bodyCrc32"])
        checked += 1
    assert checked > 0


def test_compressed_register_body_follows_javas_table_copy() -> None:
    # A plain registration lists the topics in the broker's own table order
    # (ConcurrentHashMap(1024)); the compressed form copies the table into a
    # default-sized ConcurrentHashMap first. Encoding the plain body's table
    # compressed must reproduce the compressed capture of the same broker set-up.
    directory = default_vectors_dir()
    plain = _first_register_body(directory / "register-basic.jsonl", compressed=False)
    packed_record, packed = _first_register_record(directory / "register-compressed.jsonl")
    assert list(plain.topic_config_serialize_wrapper.topic_config_table) != list(
        packed.topic_config_serialize_wrapper.topic_config_table
    ), "the two orders differ, so this test can tell them apart"
    wrapper = replace(
        plain.topic_config_serialize_wrapper,
        data_version=packed.topic_config_serialize_wrapper.data_version,
    )
    rebuilt = replace(plain, topic_config_serialize_wrapper=wrapper)
    assert rebuilt.encode(compress=True) == packed_record.body


def _first_register_record(path: Path) -> tuple[Record, RegisterBrokerBody]:
    for record in read_records(path):
        if record.is_frame and record.is_request and record.code == RequestCode.REGISTER_BROKER:
            assert record.body is not None
            compressed = record.raw["header"]["extFields"]["compressed"] == "true"
            return record, RegisterBrokerBody.decode(record.body, compressed=compressed)
    raise AssertionError(f"no REGISTER_BROKER in {path}")


def _first_register_body(path: Path, *, compressed: bool) -> RegisterBrokerBody:
    record, body = _first_register_record(path)
    assert (record.raw["header"]["extFields"]["compressed"] == "true") == compressed
    return body


def test_topic_lists_are_in_java_hashset_order() -> None:
    # The NameServer builds every topic list as a fresh default HashSet.
    codes = [
        RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
        RequestCode.GET_TOPICS_BY_CLUSTER,
        RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS,
    ]
    for code in codes:
        for _, body in _typed(code, "response"):
            assert isinstance(body, TopicList)
            assert TopicList.collect(body.topic_list, body.broker_addr) == body


def test_cluster_info_tables_are_in_java_hashmap_order() -> None:
    # RouteInfoManager: brokerAddrTable HashMap(128), clusterAddrTable HashMap(32).
    for _, body in _typed(RequestCode.GET_BROKER_CLUSTER_INFO, "response"):
        assert isinstance(body, ClusterInfo)
        assert body.broker_addr_table is not None and body.cluster_addr_table is not None
        brokers = list(body.broker_addr_table)
        clusters = list(body.cluster_addr_table)
        assert hashmap_order(brokers, 128) == brokers
        assert hashmap_order(clusters, 32) == clusters
        for data in body.broker_addr_table.values():
            assert data.broker_addrs is not None
            assert all(isinstance(broker_id, int) for broker_id in data.broker_addrs)


def test_stats_tables_are_in_java_hashmap_order_of_message_queues() -> None:
    for code, kind in (
        (RequestCode.GET_TOPIC_STATS_INFO, TopicStatsTable),
        (RequestCode.GET_CONSUME_STATS, ConsumeStats),
    ):
        for _, body in _typed(code, "response"):
            assert isinstance(body, kind)
            queues = list(body.offset_table)
            assert len(queues) > 1
            assert hashmap_order(queues) == queues


def test_route_bodies_decode_to_typed_values() -> None:
    for _, body in _typed(RequestCode.GET_ROUTEINFO_BY_TOPIC, "response"):
        assert isinstance(body, TopicRouteData)
        assert body.queue_datas and body.broker_datas
        for queue in body.queue_datas:
            assert queue.broker_name and queue.perm > 0
        for broker in body.broker_datas:
            assert broker.broker_addrs
            assert all(addr.count(":") == 1 for addr in broker.broker_addrs.values())


def test_query_data_version_answers_with_a_data_version() -> None:
    for _, body in _typed(RequestCode.QUERY_DATA_VERSION, "response"):
        assert isinstance(body, DataVersion)
        assert body.timestamp > 0 and body.counter >= 0


def test_runtime_info_is_a_kv_table_in_hashmap_order() -> None:
    for _, body in _typed(RequestCode.GET_BROKER_RUNTIME_INFO, "response"):
        assert isinstance(body, KVTable)
        keys = list(body.table)
        assert hashmap_order(keys) == keys
        assert "brokerVersion" in body.table
