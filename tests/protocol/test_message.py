"""Message codec: properties, stored records, batches, ids, compression.

Golden tests run over every relevant frame Java 4.7.0 wrote; the expected
values are derived from other frames of the same capture (the send that
produced a pulled message), never copied from the vectors.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import zlib
from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrocket.errors import ProtocolError
from pyrocket.protocol.bodies import HeartbeatData
from pyrocket.protocol.command import decode
from pyrocket.protocol.message import (
    MESSAGE_MAGIC_CODE,
    HostPort,
    Message,
    MessageConst,
    MessageExt,
    MessageSysFlag,
    UniqueId,
    UniqueIdGenerator,
    create_offset_message_id,
    decode_batch,
    decode_message,
    decode_messages,
    decode_offset_message_id,
    decode_properties,
    decompress_body,
    encode_batch,
    encode_message,
    encode_properties,
    java_crc32,
    java_properties,
    maybe_compress_body,
    month_bounds_ms,
    parse_unique_id,
    split_batch,
    split_stored_records,
    stored_message_size,
    tags_hash_code,
)
from tests.vectorset import Record, iter_all_records, pair_requests, read_records, scenario_files

UTC = dt.UTC


def _frames() -> Iterator[tuple[Record, Record | None]]:
    for path in scenario_files():
        records = read_records(path)
        pairs = pair_requests(records)
        for record in records:
            if record.is_frame:
                yield record, pairs.get(record.seq)


SEND_REQUESTS = [
    r
    for r in iter_all_records()
    if r.is_frame
    and r.is_request
    and r.code == 310
    and "i" in (r.raw["header"].get("extFields") or {})
]
BATCH_REQUESTS = [r for r in iter_all_records() if r.is_frame and r.is_request and r.code == 320]
PULL_ANSWERS = [
    (resp, req)
    for resp, req in _frames()
    if resp.is_response and req is not None and req.code == 11 and resp.code == 0
]


def _ids(record: Record) -> str:
    return f"{record.scenario}-{record.seq}"


def test_the_vectors_hold_what_these_tests_need() -> None:
    missing = [
        name
        for name, found in (
            ("SEND_MESSAGE_V2", SEND_REQUESTS),
            ("SEND_BATCH_MESSAGE", BATCH_REQUESTS),
            ("PULL_MESSAGE answers with messages", PULL_ANSWERS),
        )
        if not found
    ]
    if missing:
        pytest.skip(f"the capture has no {', '.join(missing)}")
    assert SEND_REQUESTS and BATCH_REQUESTS and PULL_ANSWERS


# --------------------------------------------------------------------------
# Golden: SEND_MESSAGE_V2 properties


@pytest.mark.parametrize("record", SEND_REQUESTS, ids=_ids)
def test_send_properties_decode_and_reencode_identically(record: Record) -> None:
    text = decode(record.frame).ext_fields["i"]  # type: ignore[index]
    properties = decode_properties(text)
    assert properties[MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX]
    assert encode_properties(properties) == text
    # The producer's map is a HashMap: refilling one in wire order keeps the order.
    assert encode_properties(java_properties(properties)) == text


@pytest.mark.parametrize("record", BATCH_REQUESTS, ids=_ids)
def test_batch_body_decodes_and_reencodes_identically(record: Record) -> None:
    body = decode(record.frame).body
    assert body
    messages = decode_batch(body)
    assert len(messages) >= 2
    assert encode_batch(messages) == body
    items = split_batch(body)
    assert [(i.flag, i.body) for i in items] == [(m.flag, m.body) for m in messages]
    assert [decode_properties(i.properties.decode()) for i in items] == [
        dict(m.properties) for m in messages
    ]
    for message in messages:
        assert message.properties[MessageConst.PROPERTY_WAIT_STORE_MSG_OK] == "true"
        assert encode_properties(java_properties(message.properties)) == encode_properties(
            message.properties
        )


# --------------------------------------------------------------------------
# Golden: PULL_MESSAGE answers


def _sent_by_uniq_key() -> dict[str, tuple[bytes, str, int]]:
    """UNIQ_KEY -> (body as sent, properties string, sysFlag) over all sends."""
    sent: dict[str, tuple[bytes, str, int]] = {}
    for record in SEND_REQUESTS:
        command = decode(record.frame)
        ext = command.ext_fields or {}
        key = decode_properties(ext["i"])["UNIQ_KEY"]
        sent[f"{record.scenario}/{key}"] = (command.body or b"", ext["i"], int(ext["f"]))
    for record in BATCH_REQUESTS:
        command = decode(record.frame)
        sys_flag = int((command.ext_fields or {})["f"])
        for item in split_batch(command.body or b""):
            text = item.properties.decode()
            key = decode_properties(text)["UNIQ_KEY"]
            sent[f"{record.scenario}/{key}"] = (item.body, text, sys_flag)
    return sent


SENT = _sent_by_uniq_key()


def _client_ips() -> dict[str, set[str]]:
    """Per scenario, the client IPs in the HEART_BEAT clientIDs (``ip@pid``)."""
    ips: dict[str, set[str]] = {}
    for record in iter_all_records():
        if record.is_frame and record.is_request and record.code == 34 and record.body:
            client_id = HeartbeatData.decode(record.body).client_id or ""
            ips.setdefault(record.scenario, set()).add(client_id.partition("@")[0])
    return ips


CLIENT_IPS = _client_ips()


@pytest.mark.parametrize("pair", PULL_ANSWERS, ids=lambda p: _ids(p[0]))
def test_pull_answer_decodes_into_the_messages_that_were_sent(pair: tuple[Record, Record]) -> None:
    answer, request = pair
    body = answer.body or b""
    header = decode(request.frame).ext_fields or {}
    ext = decode(answer.frame).ext_fields or {}
    messages = decode_messages(body)
    assert messages
    records = split_stored_records(body)
    assert b"".join(records) == body
    first_offset = int(header["queueOffset"])
    assert [m.queue_offset for m in messages] == list(
        range(first_offset, first_offset + len(messages))
    )
    assert int(ext["nextBeginOffset"]) == messages[-1].queue_offset + 1
    for message, raw in zip(messages, records, strict=True):
        assert message.topic == header["topic"]
        assert message.queue_id == int(header["queueId"])
        assert message.store_size == len(raw)
        assert encode_message(message) == raw
        assert message.body_crc == java_crc32(message.body)
        assert message.store_timestamp >= message.born_timestamp - 1000
        sent_body, sent_properties, sent_flag = SENT[f"{answer.scenario}/{message.uniq_key}"]
        # The broker stores body and properties exactly as the producer sent them.
        assert message.body == sent_body
        assert encode_properties(message.properties) == sent_properties
        assert message.sys_flag & MessageSysFlag.COMPRESSED_FLAG == sent_flag & 1
        assert message.tags == decode_properties(sent_properties)["TAGS"]
        unique = parse_unique_id(message.uniq_key or "")
        # The message id carries the producer's client IP, the one of its clientID.
        assert unique.host in CLIENT_IPS[answer.scenario]
        if message.is_compressed:
            plain = message.uncompressed_body()
            assert len(plain) > 4096
            assert maybe_compress_body(plain) == (message.body, True)


def test_batch_messages_arrive_with_the_keys_and_tags_they_were_sent_with() -> None:
    pulled = {
        f"{answer.scenario}/{m.uniq_key}": m
        for answer, _ in PULL_ANSWERS
        for m in decode_messages(answer.body or b"")
    }
    checked = 0
    for record in BATCH_REQUESTS:
        for item in split_batch(decode(record.frame).body or b""):
            sent = decode_properties(item.properties.decode())
            message = pulled.get(f"{record.scenario}/{sent['UNIQ_KEY']}")
            if message is None:
                continue  # not pulled in this capture
            assert (message.keys, message.tags) == (sent.get("KEYS"), sent.get("TAGS"))
            assert message.body == item.body
            checked += 1
    if not checked:
        pytest.skip("the capture has no batch message that was pulled back")


def test_send_answer_msg_id_is_the_offset_id_of_the_stored_message() -> None:
    pulled: dict[str, MessageExt] = {}
    for answer, _ in PULL_ANSWERS:
        for message in decode_messages(answer.body or b""):
            pulled[f"{answer.scenario}/{message.uniq_key}"] = message
    checked = 0
    for answer, request in _frames():
        if not (answer.is_response and request is not None and request.code in (310, 320)):
            continue
        if answer.code != 0:
            continue
        command = decode(request.frame)
        if request.code == 310 and "i" not in (command.ext_fields or {}):
            continue  # a hand-made send without properties
        if request.code == 310:
            keys = [decode_properties((command.ext_fields or {})["i"])["UNIQ_KEY"]]
        else:
            keys = [
                decode_properties(i.properties.decode())["UNIQ_KEY"]
                for i in split_batch(command.body or b"")
            ]
        msg_ids = (decode(answer.frame).ext_fields or {})["msgId"].split(",")
        for key, msg_id in zip(keys, msg_ids, strict=True):
            stored = pulled.get(f"{answer.scenario}/{key}")
            if stored is None:
                continue  # that queue was never pulled in the capture
            assert msg_id == stored.msg_id
            assert decode_offset_message_id(msg_id) == (stored.store_host, stored.commit_log_offset)
            checked += 1
    assert checked > 0


def test_unique_ids_of_one_producer_count_up() -> None:
    # Per producer process (ip, pid, class-loader hash), in send order: the
    # counter goes up and the time offset never goes back.
    by_producer: dict[tuple[str, bytes, int, int], list[UniqueId]] = {}
    for record in SEND_REQUESTS:
        key = decode_properties((decode(record.frame).ext_fields or {})["i"])["UNIQ_KEY"]
        parsed = parse_unique_id(key)
        producer = (record.scenario, parsed.ip, parsed.pid, parsed.class_loader_hash)
        by_producer.setdefault(producer, []).append(parsed)
    counted = 0
    for ids in by_producer.values():
        assert all(a.counter < b.counter for a, b in itertools.pairwise(ids))
        assert all(a.time_offset_ms <= b.time_offset_ms for a, b in itertools.pairwise(ids))
        counted += len(ids) > 1
    if not counted:
        pytest.skip("the capture has no producer that sent twice")


# --------------------------------------------------------------------------
# Hand-written expectations


def test_stored_record_layout_by_hand() -> None:
    message = MessageExt(
        topic="T",
        body=b"hi",
        properties={"TAGS": "A"},
        flag=7,
        queue_id=3,
        queue_offset=5,
        commit_log_offset=0x100,
        sys_flag=0,
        born_timestamp=0x0102030405,
        born_host=HostPort.of("10.0.0.1", 0x1234),
        store_timestamp=0x0102030406,
        store_host=HostPort.of("127.0.0.1", 10911),
        reconsume_times=2,
        prepared_transaction_offset=9,
        body_crc=java_crc32(b"hi"),
    )
    expected = bytes.fromhex(
        "00000065"  # total size 101
        "daa320a7" + f"{java_crc32(b'hi'):08x}" + "00000003"  # magic  # queue id
        "00000007"  # flag
        "0000000000000005"  # queue offset
        "0000000000000100"  # physical offset
        "00000000"  # sysFlag
        "0000000102030405"  # born timestamp
        "0a000001"
        "00001234"  # born host
        "0000000102030406"  # store timestamp
        "7f000001"
        "00002a9f"  # store host
        "00000002"  # reconsume times
        "0000000000000009"  # prepared transaction offset
        "00000002"
        "6869"  # body
        "01"
        "54"  # topic
        "0007"
        "54414753014102"  # properties TAGS\x01A\x02
    )
    assert len(expected) == 101 == stored_message_size(0, 2, 1, 7)
    assert encode_message(message) == expected
    decoded, end = decode_message(expected)
    assert end == 101
    assert decoded == replace(message, store_size=101)
    assert decoded.msg_id == "7F00000100002A9F0000000000000100"


def test_ipv6_hosts_use_the_long_fields() -> None:
    born = HostPort.of("2001:db8::1", 5000)
    store = HostPort.of("::ffff:127.0.0.1", 10911)  # mapped: stays IPv4, as in Java
    assert not store.is_v6 and born.is_v6
    message = MessageExt(
        topic="t6",
        body=b"x",
        sys_flag=MessageSysFlag.BORNHOST_V6_FLAG,
        born_host=born,
        store_host=store,
    )
    raw = encode_message(message)
    assert len(raw) == stored_message_size(MessageSysFlag.BORNHOST_V6_FLAG, 1, 2, 0)
    assert raw[48:64] == bytes.fromhex("20010db8000000000000000000000001")
    decoded, _ = decode_message(raw)
    assert decoded.born_host == born and decoded.store_host == store
    v6_store = replace(
        message,
        sys_flag=MessageSysFlag.BORNHOST_V6_FLAG | MessageSysFlag.STOREHOSTADDRESS_V6_FLAG,
        store_host=HostPort.of("::1", 1),
    )
    assert decode_message(encode_message(v6_store))[0].store_host == HostPort.of("::1", 1)
    assert len(v6_store.msg_id) == 56
    with pytest.raises(ValueError, match="bit 5"):
        encode_message(replace(v6_store, sys_flag=MessageSysFlag.BORNHOST_V6_FLAG))


def test_properties_follow_java_parsing() -> None:
    assert decode_properties("") == {}
    assert decode_properties("a\x01b\x02") == {"a": "b"}
    assert decode_properties("a\x01b") == {"a": "b"}
    assert decode_properties("a\x01\x02c\x01d\x02") == {"c": "d"}  # empty value dropped
    assert decode_properties("a\x01b\x01c\x02") == {}  # three parts dropped
    assert decode_properties("a\x01b\x01\x02") == {"a": "b"}  # trailing empty part ignored
    assert decode_properties("\x02\x02a\x01b\x02\x02") == {"a": "b"}
    assert decode_properties("\x01v\x02") == {"": "v"}
    assert decode_properties("k\x011\x02j\x012\x02k\x013\x02") == {"k": "3", "j": "2"}
    assert list(decode_properties("z\x011\x02a\x012\x02")) == ["z", "a"]
    with pytest.raises(ValueError, match="separator"):
        encode_properties({"a": "b\x02c"})


def test_java_properties_iterates_in_hashmap_order() -> None:
    # Bucket order of a 16-slot HashMap: hash("UNIQ_KEY") ^ >>>16 & 15 etc.
    built = java_properties([("TAGS", "t"), ("KEYS", "k"), ("WAIT", "true"), ("UNIQ_KEY", "u")])
    assert list(built) == ["KEYS", "UNIQ_KEY", "WAIT", "TAGS"]


def test_message_ids_by_hand() -> None:
    host = HostPort.parse("127.0.0.1:10911")
    assert create_offset_message_id(host, 0x182) == "7F00000100002A9F0000000000000182"
    assert decode_offset_message_id("7F00000100002A9F0000000000000182") == (host, 0x182)
    v6 = HostPort.parse("[::1]:80")
    msg_id = create_offset_message_id(v6, 1)
    assert msg_id == "0" * 31 + "1" + "00000050" + "0" * 15 + "1"
    assert decode_offset_message_id(msg_id.lower()) == (v6, 1)
    for bad in ("", "7F00", "ZZ" * 16, "7F000001FFFFFFFF0000000000000182"):
        with pytest.raises(ProtocolError):
            decode_offset_message_id(bad)


def test_unique_id_generator_by_hand() -> None:
    clock = [int(dt.datetime(2026, 3, 31, 23, 59, 59, 500000, UTC).timestamp() * 1000)]
    generator = UniqueIdGenerator(
        bytes([192, 0, 2, 2]), 0x15D65, -1, now_ms=lambda: clock[0], tz=UTC
    )
    # 30 days, 23:59:59.500 since 2026-03-01 00:00 UTC = 2678399500 ms = 0x9FA5220C
    assert generator.next_id() == "C00002025D65FFFFFFFF9FA5220C0000"
    assert generator.next_id().endswith("0001")
    clock[0] += 1000  # 2026-04-01 00:00:00.500: a new month window
    third = generator.next_id()
    assert third == "C00002025D65FFFFFFFF000001F40002"
    parsed = parse_unique_id(third)
    assert (parsed.host, parsed.pid, parsed.class_loader_hash, parsed.counter) == (
        "192.0.2.2",
        0x5D65,
        -1,
        2,
    )
    assert parsed.approximate_time_ms(clock[0] + 10, UTC) == clock[0]
    # An offset that would lie in the future refers to the previous month.
    late = parse_unique_id("C00002025D65FFFFFFFF9FA5220C0000")
    assert late.approximate_time_ms(clock[0], UTC) == clock[0] - 1000
    generator._counter = 0xFFFF  # the counter is a Java short
    assert generator.next_id().endswith("FFFF")
    assert generator.next_id().endswith("0000")


def test_month_bounds_cross_the_year() -> None:
    now = int(dt.datetime(2026, 12, 15, tzinfo=UTC).timestamp() * 1000)
    start, end = month_bounds_ms(now, UTC)
    assert start == int(dt.datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)
    assert end == int(dt.datetime(2027, 1, 1, tzinfo=UTC).timestamp() * 1000)


def test_tags_hash_and_crc_by_hand() -> None:
    assert tags_hash_code("TagA") == 2598919
    assert tags_hash_code("") == 0 and tags_hash_code(None) == 0
    assert tags_hash_code("zzzzzzzz") < 0  # int overflow wraps like Java
    assert java_crc32(b"123456789") == 0x4BF43926


def test_compression_threshold_and_limits() -> None:
    assert maybe_compress_body(b"a" * 4095) == (b"a" * 4095, False)
    body, compressed = maybe_compress_body(b"a" * 4096)
    assert compressed and body == zlib.compress(b"a" * 4096, 5)
    assert decompress_body(body) == b"a" * 4096
    assert decompress_body(body + b"trailing") == b"a" * 4096
    with pytest.raises(ProtocolError, match="beyond 4095"):
        decompress_body(body, max_size=4095)
    with pytest.raises(ProtocolError, match="ends before"):
        decompress_body(body[:-6])
    with pytest.raises(ProtocolError, match="not a zlib stream"):
        decompress_body(b"not zlib at all")
    bomb = zlib.compress(b"\0" * (10 * 1024 * 1024), 9)
    with pytest.raises(ProtocolError, match="beyond"):
        decompress_body(bomb, max_size=1024 * 1024)


# --------------------------------------------------------------------------
# Malformed input


def _sample_record() -> bytes:
    return encode_message(
        MessageExt(topic="TopicTest", body=b"body", properties={"TAGS": "A", "KEYS": "k"})
    )


def test_every_truncation_of_a_record_is_a_protocol_error() -> None:
    raw = _sample_record()
    for cut in range(len(raw)):
        with pytest.raises(ProtocolError):
            decode_messages(raw[:cut] if cut else raw[:1])
    with pytest.raises(ProtocolError):
        decode_messages(raw + b"\0")


def test_malformed_records_name_the_problem() -> None:
    raw = bytearray(_sample_record())
    bad_magic = bytearray(raw)
    bad_magic[4:8] = (MESSAGE_MAGIC_CODE + 1).to_bytes(4, "big", signed=True)
    with pytest.raises(ProtocolError, match="magic"):
        decode_message(bytes(bad_magic))
    longer = bytearray(raw + b"\0\0")
    longer[0:4] = (len(raw) + 2).to_bytes(4, "big")
    with pytest.raises(ProtocolError, match="properties length"):
        decode_message(bytes(longer))
    topic_at = len(raw) - 2 - len("TAGS\x01A\x02KEYS\x01k\x02") - len("TopicTest")
    bad_utf8 = bytearray(raw)
    bad_utf8[topic_at] = 0xFF
    with pytest.raises(ProtocolError, match="topic is not valid UTF-8"):
        decode_message(bytes(bad_utf8))
    bad_port = bytearray(raw)
    bad_port[52:56] = (70000).to_bytes(4, "big")
    with pytest.raises(ProtocolError, match="born host port"):
        decode_message(bytes(bad_port))


def test_malformed_batches() -> None:
    good = encode_batch([Message(body=b"abc", properties={"a": "b"})])
    with pytest.raises(ProtocolError, match="total size"):
        decode_batch(b"\0\0\0\x01" + good[4:])
    with pytest.raises(ProtocolError):
        decode_batch(good[:-1])
    with pytest.raises(ProtocolError, match="UTF-8"):
        decode_batch(good[:-4] + b"\xff\x01b\x02")


# --------------------------------------------------------------------------
# Properties of the codec

_names = st.text(
    alphabet=st.characters(blacklist_characters="\x01\x02", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
)
_properties = st.dictionaries(_names, _names, max_size=6)
_ipv4 = st.binary(min_size=4, max_size=4)
_ipv6 = st.binary(min_size=16, max_size=16)
_int32 = st.integers(-(1 << 31), (1 << 31) - 1)
_int64 = st.integers(-(1 << 63), (1 << 63) - 1)


@st.composite
def _messages(draw: st.DrawFn) -> MessageExt:
    born = HostPort(draw(st.one_of(_ipv4, _ipv6)), draw(st.integers(0, 65535)))
    store = HostPort(draw(st.one_of(_ipv4, _ipv6)), draw(st.integers(0, 65535)))
    flags = draw(st.integers(0, 15)) | (16 if born.is_v6 else 0) | (32 if store.is_v6 else 0)
    topic = draw(
        st.text(min_size=1, max_size=30).filter(
            lambda t: len(t.encode("utf-8", "surrogatepass")) <= 127
        )
    )
    try:
        topic.encode("utf-8")
    except UnicodeEncodeError:
        topic = "t"
    body = draw(st.binary(max_size=300))
    return MessageExt(
        topic=topic,
        body=body,
        properties=draw(_properties),
        flag=draw(_int32),
        queue_id=draw(_int32),
        queue_offset=draw(_int64),
        commit_log_offset=draw(_int64),
        sys_flag=flags,
        born_timestamp=draw(_int64),
        born_host=born,
        store_timestamp=draw(_int64),
        store_host=store,
        reconsume_times=draw(_int32),
        prepared_transaction_offset=draw(_int64),
        body_crc=java_crc32(body),
    )


@given(st.lists(_messages(), min_size=1, max_size=4))
def test_random_messages_round_trip(messages: list[MessageExt]) -> None:
    raw = b"".join(encode_message(m) for m in messages)
    decoded = decode_messages(raw)
    assert decoded == [replace(m, store_size=len(encode_message(m))) for m in messages]
    assert b"".join(encode_message(m) for m in decoded) == raw


@given(st.lists(st.tuples(st.binary(max_size=100), _properties, _int32), max_size=5))
def test_random_batches_round_trip(items: list[tuple[bytes, dict[str, str], int]]) -> None:
    messages = [Message(body=b, properties=p, flag=f) for b, p, f in items]
    raw = encode_batch(messages)
    assert decode_batch(raw) == messages
    assert encode_batch(decode_batch(raw)) == raw


@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_raise_protocol_error(data: bytes) -> None:
    for decoder in (decode_messages, decode_batch, decompress_body):
        with contextlib.suppress(ProtocolError):
            decoder(data)
    for text_decoder in (decode_offset_message_id, parse_unique_id):
        with contextlib.suppress(ProtocolError):
            text_decoder(data.hex()[:56])


@given(_messages(), st.binary(min_size=1, max_size=8), st.integers(0, 400))
def test_corrupted_records_only_raise_protocol_error(
    message: MessageExt, garbage: bytes, where: int
) -> None:
    raw = bytearray(encode_message(message))
    where %= len(raw)
    raw[where : where + len(garbage)] = garbage
    with contextlib.suppress(ProtocolError):
        decode_messages(bytes(raw))


@given(st.text(max_size=60))
def test_properties_decoding_never_fails_and_is_stable(text: str) -> None:
    properties = decode_properties(text)
    assert decode_properties(encode_properties(properties)) == properties
