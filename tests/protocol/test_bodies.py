"""Typed bodies: hand-written bytes both ways, Java's defaults, and refusals."""

from __future__ import annotations

import struct
import time
import zlib

import pytest

from pyrocket.errors import ProtocolError
from pyrocket.protocol.bodies import (
    BrokerData,
    ClusterInfo,
    ConsumeFromWhere,
    ConsumerData,
    ConsumeStats,
    ConsumeType,
    DataVersion,
    DelayOffsetSerializeWrapper,
    GetConsumerListByGroupResponseBody,
    HeartbeatData,
    KVTable,
    MessageModel,
    MessageQueue,
    OffsetWrapper,
    ProducerData,
    Properties,
    QueueData,
    RegisterBrokerBody,
    RegisterBrokerResult,
    SubscriptionData,
    SubscriptionGroupConfig,
    TopicConfig,
    TopicConfigSerializeWrapper,
    TopicFilterType,
    TopicList,
    TopicOffset,
    TopicRouteData,
    TopicStatsTable,
    parse_properties,
)
from pyrocket.protocol.bodies import topic as topic_module
from pyrocket.protocol.checksum import crc32
from pyrocket.protocol.command import RemotingCommand


def test_crc32_is_masked_like_utilall() -> None:
    # CRC32("123456789") = 0xCBF43926; the top bit is cleared.
    assert crc32(b"123456789") == 0x4BF43926
    assert crc32(b"") == 0
    assert crc32(None) == 0


def test_data_version_bytes_and_defaults() -> None:
    assert DataVersion(1795278447592, 3).encode() == b'{"counter":3,"timestamp":1795278447592}'
    assert DataVersion.decode(b'{"timestamp":7}') == DataVersion(7, 0)
    before = time.time_ns() // 1_000_000
    stamped = DataVersion.decode(b"{}")  # Java: new DataVersion() is stamped now
    assert before <= stamped.timestamp <= time.time_ns() // 1_000_000 + 1
    assert DataVersion(5, 1).next_version(9) == DataVersion(9, 2)


def test_topic_config_json_and_text_forms() -> None:
    config = TopicConfig("T", 8, 4, 6)
    assert config.encode() == (
        b'{"order":false,"perm":6,"readQueueNums":8,"topicFilterType":"SINGLE_TAG",'
        b'"topicName":"T","topicSysFlag":0,"writeQueueNums":4}'
    )
    assert config.encode_text() == "T 8 4 6 SINGLE_TAG"
    assert TopicConfig.decode_text("T 8 4 6 MULTI_TAG") == TopicConfig(
        "T", 8, 4, 6, TopicFilterType.MULTI_TAG
    )
    # Java's defaults for missing keys: 16/16 queues, read|write.
    assert TopicConfig.decode(b'{"topicName":"X"}') == TopicConfig("X", 16, 16, 6)


@pytest.mark.parametrize(
    "text",
    [
        "T 8 4 6",
        "T 8 4 6 SINGLE_TAG extra",
        "T x 4 6 SINGLE_TAG",
        "T 8 4 6 NONE",
        "T 8 4 99999999999 SINGLE_TAG",
    ],
)
def test_topic_config_text_refuses_what_java_cannot_read(text: str) -> None:
    with pytest.raises(ProtocolError):
        TopicConfig.decode_text(text)


def _compressed_stream(*parts: bytes) -> bytes:
    return zlib.compress(b"".join(parts), 9)


def _prefixed(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


def test_compressed_register_body_layout_written_by_hand() -> None:
    payload = (
        _prefixed(b'{"counter":2,"timestamp":10}')
        + struct.pack(">i", 2)
        + _prefixed(b"A 1 1 6 SINGLE_TAG")
        + _prefixed(b"B 4 4 7 SINGLE_TAG")
        + _prefixed(b'["127.0.0.1:1"]')
    )
    body = RegisterBrokerBody.decode(zlib.compress(payload, 9), compressed=True)
    table = body.topic_config_serialize_wrapper.topic_config_table
    assert list(table) == ["A", "B"]
    assert table["B"] == TopicConfig("B", 4, 4, 7)
    assert body.topic_config_serialize_wrapper.data_version == DataVersion(10, 2)
    assert body.filter_server_list == ("127.0.0.1:1",)
    assert body.encode(compress=True, clone_order=False) == zlib.compress(payload, 9)
    # "A" and "B" hash to buckets 1 and 2 of a 16-slot table, so Java's copy
    # keeps this order too.
    assert body.encode(compress=True) == zlib.compress(payload, 9)


def test_compressed_register_body_uses_javas_copy_order() -> None:
    # "B" (hash 66, bucket 2) comes before "c" (99, bucket 3) in any
    # default-sized ConcurrentHashMap, whatever the table's own order.
    wrapper = TopicConfigSerializeWrapper(
        {"c": TopicConfig("c", 1, 1, 6), "B": TopicConfig("B", 1, 1, 6)}, DataVersion(1, 0)
    )
    inflated = zlib.decompress(RegisterBrokerBody(wrapper).encode(compress=True))
    assert inflated.index(b"B 1 1 6") < inflated.index(b"c 1 1 6")
    kept = zlib.decompress(RegisterBrokerBody(wrapper).encode(compress=True, clone_order=False))
    assert kept.index(b"c 1 1 6") < kept.index(b"B 1 1 6")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not zlib at all", "compressed RegisterBrokerBody"),
        (_compressed_stream(_prefixed(b'{"counter":0,"timestamp":1}')), "bytes wanted"),
        (_compressed_stream(struct.pack(">i", -5)), "bytes wanted"),
        (
            _compressed_stream(_prefixed(b"{}"), struct.pack(">i", -1)),
            "negative topic count",
        ),
        (
            _compressed_stream(_prefixed(b"{}"), struct.pack(">i", 1), _prefixed(b"A 1 1")),
            "5 fields",
        ),
        (
            _compressed_stream(_prefixed(b"{}"), struct.pack(">i", 0), _prefixed(b'{"a":1}')),
            "filter server list",
        ),
        (_compressed_stream(_prefixed(b"[1]")), "expected an object"),
        (zlib.compress(b"\x00\x00\x00\x10{"), "bytes wanted"),
    ],
)
def test_bad_compressed_register_bodies_raise_protocol_error(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        RegisterBrokerBody.decode(data, compressed=True)


def test_compressed_register_body_inflation_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topic_module, "MAX_INFLATED_SIZE", 1000)
    bomb = zlib.compress(bytes(5000), 9)
    with pytest.raises(ProtocolError, match="inflates past 1000"):
        RegisterBrokerBody.decode(bomb, compressed=True)


def test_broker_ids_are_bare_long_keys() -> None:
    data = BrokerData("C", "b", {0: "127.0.0.1:10911", 1: "127.0.0.1:10921"})
    assert data.encode() == (
        b'{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"b","cluster":"C"}'
    )
    # fastjson's bare keys, negative ones, and the quoted keys standard JSON writes.
    read = BrokerData.decode(b'{"brokerAddrs":{-1:"x","2":"y"}}')
    assert read.broker_addrs == {-1: "x", 2: "y"}
    assert read.master_addr() is None


def test_route_data_omits_nulls_and_sorts_properties() -> None:
    route = TopicRouteData(
        queue_datas=(QueueData("b", 4, 4, 6, 0),),
        broker_datas=(BrokerData("C", "b", {0: "a:1"}),),
        filter_server_table={},
    )
    assert route.encode() == (
        b'{"brokerDatas":[{"brokerAddrs":{0:"a:1"},"brokerName":"b","cluster":"C"}],'
        b'"filterServerTable":{},"queueDatas":[{"brokerName":"b","perm":6,'
        b'"readQueueNums":4,"topicSynFlag":0,"writeQueueNums":4}]}'
    )
    assert TopicRouteData.decode(route.encode()) == route
    assert TopicRouteData().encode() == b"{}"


def test_route_rows_encode_to_the_same_text_by_hand() -> None:
    head = TopicRouteData.encode_head([("C", "b", {0: "a:1", 1: "a:2"})], {"a:1": ["f:1"]})
    tail = TopicRouteData.encode_tail([("b", (4, 2, 6, 1))])
    assert TopicRouteData.join_encoded(head, tail, "b:4") == (
        b'{"brokerDatas":[{"brokerAddrs":{0:"a:1",1:"a:2"},"brokerName":"b","cluster":"C"}],'
        b'"filterServerTable":{"a:1":["f:1"]},"orderTopicConf":"b:4","queueDatas":'
        b'[{"brokerName":"b","perm":6,"readQueueNums":4,"topicSynFlag":1,"writeQueueNums":2}]}'
    )
    assert ClusterInfo.encode_tables([("b", (None, "b", {}))], [("C", [None, "b"])]) == (
        b'{"brokerAddrTable":{"b":{"brokerAddrs":{},"brokerName":"b"}},'
        b'"clusterAddrTable":{"C":[null,"b"]}}'
    )
    assert QueueData.row_text(("b", (4, 2, 6, 1))) == (
        "QueueData [brokerName=b, readQueueNums=4, writeQueueNums=2, perm=6, topicSynFlag=1]"
    )


def test_cluster_info_sets_may_hold_null() -> None:
    info = ClusterInfo({}, {"C": (None, "b")})
    assert info.encode() == b'{"brokerAddrTable":{},"clusterAddrTable":{"C":[null,"b"]}}'
    assert ClusterInfo.decode(info.encode()) == info


def test_message_queue_keys_are_json_objects() -> None:
    table = TopicStatsTable({MessageQueue("T", "b", 1): TopicOffset(0, 5, 99)})
    expected = (
        b'{"offsetTable":{{"brokerName":"b","queueId":1,"topic":"T"}:'
        b'{"lastUpdateTimestamp":99,"maxOffset":5,"minOffset":0}}}'
    )
    assert table.encode() == expected
    assert TopicStatsTable.decode(expected) == table
    stats = ConsumeStats({MessageQueue("T", "b", 0): OffsetWrapper(7, 3, 1)}, 0.25)
    assert stats.encode().startswith(b'{"consumeTps":0.25,"offsetTable":{{')
    assert stats.compute_total_diff() == 4
    assert ConsumeStats().encode() == b'{"consumeTps":0.0,"offsetTable":{}}'


def test_message_queue_hash_code_matches_java() -> None:
    # 31 * (31 * (31 + "b".hashCode()) + 0) + "t".hashCode() = 31*(31*129) + 116
    assert MessageQueue("t", "b", 0).java_hash_code() == 124085
    assert MessageQueue().java_hash_code() == 31 * 31 * 31


def test_heartbeat_round_trip_with_enums() -> None:
    heartbeat = HeartbeatData(
        "192.0.2.2@1",
        (ProducerData("P"),),
        (
            ConsumerData(
                "G",
                ConsumeType.CONSUME_PASSIVELY,
                MessageModel.CLUSTERING,
                ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                (SubscriptionData(topic="T", sub_string="*", sub_version=5),),
            ),
        ),
    )
    data = heartbeat.encode()
    assert data == (
        b'{"clientID":"192.0.2.2@1","consumerDataSet":[{"consumeFromWhere":'
        b'"CONSUME_FROM_FIRST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"G",'
        b'"messageModel":"CLUSTERING","subscriptionDataSet":[{"classFilterMode":false,'
        b'"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":5,"tagsSet":[],'
        b'"topic":"T"}],"unitMode":false}],"producerDataSet":[{"groupName":"P"}]}'
    )
    assert HeartbeatData.decode(data) == heartbeat
    # fastjson also reads enums by ordinal.
    read = ConsumerData.decode(b'{"consumeType":0,"consumeFromWhere":5}')
    assert read.consume_type is ConsumeType.CONSUME_ACTIVELY
    assert read.consume_from_where is ConsumeFromWhere.CONSUME_FROM_TIMESTAMP


def test_subscription_for_a_tag_expression() -> None:
    # "TagA".hashCode() = ((84*31 + 97)*31 + 103)*31 + 65 = 2598919, "TagB" one
    # more; spread (h ^ h >>> 16, h >>> 16 = 39) puts them in buckets 0 and 15
    # of a 16-slot HashSet, whatever order they were added in.
    data = SubscriptionData.for_expression("T", " TagB ||TagA|| ", sub_version=9)
    assert data.tags_set == ("TagA", "TagB")
    assert data.code_set == (2598919, 2598920)
    assert data.sub_string == " TagB ||TagA|| " and data.sub_version == 9
    everything = SubscriptionData.for_expression("T", None, sub_version=1)
    assert (everything.sub_string, everything.tags_set, everything.code_set) == ("*", (), ())


def test_subscription_group_defaults_are_javas() -> None:
    config = SubscriptionGroupConfig.decode(b'{"groupName":"G"}')
    assert config == SubscriptionGroupConfig("G")
    assert config.encode() == (
        b'{"brokerId":0,"consumeBroadcastEnable":true,"consumeEnable":true,'
        b'"consumeFromMinEnable":true,"groupName":"G","notifyConsumerIdsChangedEnable":true,'
        b'"retryMaxTimes":16,"retryQueueNums":1,"whichBrokerWhenConsumeSlowly":1}'
    )


def test_integer_keyed_offsets() -> None:
    table = DelayOffsetSerializeWrapper({1: 10, 18: 0})
    assert table.encode() == b'{"offsetTable":{1:10,18:0}}'
    assert DelayOffsetSerializeWrapper.decode(b'{"offsetTable":{"1":10,18:0}}') == table


def test_topic_list_collect_uses_hashset_order() -> None:
    # "b" (98) and "a" (97) sit in buckets 2 and 1: a HashSet walks a first.
    assert TopicList.collect(["b", "a"]).topic_list == ("a", "b")
    # "Aa" and "BB" share hash 2112: same bucket, insertion order.
    assert TopicList.collect(["BB", "Aa"]).topic_list == ("BB", "Aa")
    assert TopicList.collect([], "127.0.0.1:1").encode() == (
        b'{"brokerAddr":"127.0.0.1:1","topicList":[]}'
    )


def test_register_broker_result_from_answer() -> None:
    answer = RemotingCommand(
        code=0,
        flag=1,
        ext_fields={"masterAddr": "127.0.0.1:10911", "haServerAddr": "127.0.0.1:10912"},
        body=KVTable({"T": "b:4"}).encode(),
    )
    result = RegisterBrokerResult.from_response(answer)
    assert result.master_addr == "127.0.0.1:10911"
    assert result.ha_server_addr == "127.0.0.1:10912"
    assert result.kv_table == KVTable({"T": "b:4"})
    empty = RegisterBrokerResult.from_response(RemotingCommand.response(0).replace(ext_fields={}))
    assert empty == RegisterBrokerResult()


@pytest.mark.parametrize(
    ("kind", "data", "where"),
    [
        (QueueData, b'{"perm":"x"}', "QueueData.perm"),
        (QueueData, b'{"perm":2147483648}', "QueueData.perm"),
        (QueueData, b'{"perm":true}', "QueueData.perm"),
        (QueueData, b"[]", "QueueData"),
        (QueueData, b"null", "QueueData"),
        (TopicConfig, b'{"topicFilterType":"NOPE"}', "TopicConfig.topicFilterType"),
        (TopicConfig, b'{"order":1}', "TopicConfig.order"),
        (BrokerData, b'{"brokerAddrs":{"x":"a"}}', "BrokerData.brokerAddrs"),
        (BrokerData, b'{"brokerAddrs":[]}', "BrokerData.brokerAddrs"),
        (TopicRouteData, b'{"queueDatas":[1]}', r"TopicRouteData.queueDatas\[0\]"),
        (TopicList, b'{"topicList":[null]}', r"TopicList.topicList\[0\]"),
        (KVTable, b'{"table":{"a":null}}', "KVTable.table"),
        (KVTable, b'{"table":{"a":1}}', "KVTable.table"),
        (TopicStatsTable, b'{"offsetTable":{"q":{}}}', "TopicStatsTable.offsetTable"),
        (ConsumeStats, b'{"consumeTps":"x"}', "ConsumeStats.consumeTps"),
        (GetConsumerListByGroupResponseBody, b'{"consumerIdList":"a"}', "consumerIdList"),
        (DataVersion, b'{"counter":1e3}', "DataVersion.counter"),
        (DataVersion, b"{", "invalid JSON"),
        (DataVersion, b"\xff", "UTF-8"),
    ],
)
def test_bad_bodies_name_the_offending_path(kind: type, data: bytes, where: str) -> None:
    with pytest.raises(ProtocolError, match=where):
        kind.decode(data)


def test_unknown_keys_are_ignored_and_nulls_take_defaults() -> None:
    assert QueueData.decode(b'{"brokerName":"b","perm":null,"surprise":[1,{}]}') == QueueData("b")


# ---------------------------------------------------------------------------
# Properties text


def test_properties_are_written_as_mixall_writes_them() -> None:
    body = Properties({"listenPort": "9876", "rocketmqHome": "/opt/rocketmq", "empty": ""})
    assert body.encode() == b"listenPort=9876\nrocketmqHome=/opt/rocketmq\nempty=\n"
    assert Properties.decode(body.encode()) == body


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=1\nb=2\n", {"a": "1", "b": "2"}),
        ("a=1", {"a": "1"}),
        ("  a = 1  \r\nb:2\rc 3\n", {"a": "1  ", "b": "2", "c": "3"}),
        ("# comment\n! also\n\n   \na=1\n", {"a": "1"}),
        ("a=x=y\n", {"a": "x=y"}),
        ("a  =  : b\n", {"a": ": b"}),
        ("key\n", {"key": ""}),
        ("a\\=b=c\n", {"a=b": "c"}),
        ("a\\ b=c\n", {"a b": "c"}),
        ("a=\\t\\n\\r\\f\\q\\\\\n", {"a": "\t\n\r\f" + "q\\"}),
        ("a=\\u0041\\u00e9\n", {"a": "Aé"}),
        ("a=one \\\n    two\n", {"a": "one two"}),
        ("a=one \\\r\n  two\\\n#not comment\n", {"a": "one two#not comment"}),
        ("a=end\\", {"a": "end"}),
        ("a=end\\\n", {"a": "end"}),
        ("a=1\na=2\nb=3\n", {"a": "2", "b": "3"}),
        ("a=héllo ☃ \U0001f600\n", {"a": "héllo ☃ \U0001f600"}),
    ],
)
def test_properties_are_read_as_properties_load_reads_them(
    text: str, expected: dict[str, str]
) -> None:
    assert parse_properties(text) == expected
    assert list(parse_properties(text)) == list(expected)


@pytest.mark.parametrize("data", [b"a=\\u12\n", b"a=\\u12G4\n", b"a=\xff\n"])
def test_bad_properties_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        Properties.decode(data)


def test_properties_java_order_is_a_concurrent_hash_map_of_8() -> None:
    # ConcurrentHashMap(8) starts with 16 slots: "a1" (hash 3056) sits in
    # slot 0, "b" (98) in slot 2, so "a1" comes first whatever the put order.
    ordered = Properties.java_ordered([("b", "1"), ("a1", "2")])
    assert list(ordered.entries) == ["a1", "b"]
