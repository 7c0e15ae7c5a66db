"""A pulled batch decoded in one pass (offsets put in while decoding,
hosts shared) hands out what decoding and then delivered_form gave."""

from __future__ import annotations

import zlib

import pytest

from pyrocket.client.pulling import (
    QueueState,
    decode_pulled,
    deliverable,
    delivered_form,
    filter_by_tags,
)
from pyrocket.errors import ProtocolError
from pyrocket.protocol.bodies.client import MessageQueue, SubscriptionData
from pyrocket.protocol.headers import PullMessageResponseHeader
from pyrocket.protocol.message import HostPort, MessageExt, MessageSysFlag
from pyrocket.protocol.message.record import _HEAD, decode_message, decode_messages, encode_message

QUEUE = MessageQueue("Orders", "broker-a", 1)


def _record(offset: int, **changes: object) -> bytes:
    fields: dict[str, object] = {
        "topic": "Orders",
        "body": f"body {offset}".encode(),
        "properties": {"TAGS": "a" if offset % 2 else "b", "UNIQ_KEY": f"U{offset}"},
        "queue_id": 1,
        "queue_offset": offset,
        "commit_log_offset": 1000 + offset,
        "born_host": HostPort.of("10.0.0.1", 4000 + offset % 3),
        "store_host": HostPort.of("127.0.0.1", 10911),
    }
    fields.update(changes)
    return encode_message(MessageExt(**fields))  # type: ignore[arg-type]


def _batch() -> bytes:
    records = [_record(i) for i in range(6)]
    records.append(
        _record(
            6,
            body=zlib.compress(b"inflate me " * 40),
            sys_flag=MessageSysFlag.COMPRESSED_FLAG,
        )
    )
    records.append(
        _record(
            7,
            topic="%RETRY%g",
            properties={"RETRY_TOPIC": "Orders", "TAGS": "a", "MIN_OFFSET": "0"},
        )
    )
    records.append(_record(8, topic="%RETRY%other", properties={"RETRY_TOPIC": "Orders"}))
    records.append(
        _record(9, born_host=HostPort.of("::1", 7), sys_flag=MessageSysFlag.BORNHOST_V6_FLAG)
    )
    return b"".join(records)


@pytest.mark.parametrize("tags", [(), ("a",), ("b", "zz")])
def test_deliverable_matches_decode_then_delivered_form(tags: tuple[str, ...]) -> None:
    body = _batch()
    subscription = SubscriptionData(topic="Orders", sub_string="*", tags_set=tags)
    state = QueueState(QUEUE, subscription, 0)
    answer = PullMessageResponseHeader(
        suggest_which_broker_id=0, next_begin_offset=10, min_offset=2, max_offset=40
    )
    ours = deliverable("g", state, body, answer)
    slow = [
        delivered_form(m, 2, 40, "%RETRY%g")
        for m in filter_by_tags(decode_messages(body), subscription)
    ]
    assert ours == slow
    assert [list(m.properties.items()) for m in ours] == [list(m.properties.items()) for m in slow]
    assert all(m.properties["MIN_OFFSET"] == "2" for m in ours)
    if not tags:
        assert len(ours) == 10
        assert ours[6].body == b"inflate me " * 40 and not ours[6].is_compressed
        assert ours[7].topic == "Orders"
        assert ours[8].topic == "%RETRY%other"


def test_a_bad_compressed_body_is_skipped_alone() -> None:
    broken = _record(3, body=b"not deflate", sys_flag=MessageSysFlag.COMPRESSED_FLAG)
    body = _record(2) + broken + _record(4)
    state = QueueState(QUEUE, SubscriptionData(topic="Orders", sub_string="*"), 0)
    answer = PullMessageResponseHeader(
        suggest_which_broker_id=0, next_begin_offset=5, min_offset=0, max_offset=5
    )
    assert [m.queue_offset for m in deliverable("g", state, body, answer)] == [2, 4]


def test_extra_properties_keep_a_present_name_in_place() -> None:
    record = _record(5, properties={"MAX_OFFSET": "1", "TAGS": "t"})
    message, end = decode_message(record, 0, {"MIN_OFFSET": "3", "MAX_OFFSET": "9"})
    assert end == len(record)
    assert list(message.properties.items()) == [
        ("MAX_OFFSET", "9"),
        ("TAGS", "t"),
        ("MIN_OFFSET", "3"),
    ]
    plain, _ = decode_message(record)
    assert dict(plain.properties) == {"MAX_OFFSET": "1", "TAGS": "t"}


def test_shared_hosts_decode_as_before_and_bad_ports_still_fail() -> None:
    messages, skipped = decode_pulled(_batch())
    assert skipped == 0
    assert [m.born_host for m in messages[:3]] == [
        HostPort.of("10.0.0.1", 4000),
        HostPort.of("10.0.0.1", 4001),
        HostPort.of("10.0.0.1", 4002),
    ]
    assert messages[9].born_host == HostPort.of("::1", 7)
    assert {m.store_host for m in messages} == {HostPort.of("127.0.0.1", 10911)}
    good = bytearray(_record(1))
    decode_message(bytes(good))
    # The born host's port word: after the fixed head and the 4 address bytes.
    port_at = _HEAD.size + 4
    good[port_at : port_at + 4] = (70000).to_bytes(4, "big")
    with pytest.raises(ProtocolError, match="port"):
        decode_message(bytes(good))
