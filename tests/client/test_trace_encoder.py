"""The trace text format against records written out by hand from Java
4.7.0's ``TraceDataEncoder`` (fields joined by char 1, records ended by
char 2)."""

from __future__ import annotations

import pytest

from pyrocket.client.trace import (
    MessageType,
    TraceBean,
    TraceContext,
    TraceType,
    decode_traces,
    encode_trace,
)

F = "\x02"

PUB = (
    "Pub\x011700000000123\x01DefaultRegion\x01group_a\x01TopicTest\x01"
    "7F00000100002A9F0000000000000001\x01TagA\x01k1\x01127.0.0.1:10911\x015\x017\x010\x01"
    "7F00000100002A9F0000000000000ABC\x01true\x02"
)


def pub_context() -> TraceContext:
    bean = TraceBean(
        topic="TopicTest",
        msg_id="7F00000100002A9F0000000000000001",
        offset_msg_id="7F00000100002A9F0000000000000ABC",
        tags="TagA",
        keys="k1",
        store_host="127.0.0.1:10911",
        body_length=5,
        msg_type=MessageType.Normal_Msg,
    )
    return TraceContext(
        TraceType.Pub,
        timestamp=1700000000123,
        region_id="DefaultRegion",
        group_name="group_a",
        cost_time=7,
        success=True,
        beans=[bean],
    )


def test_pub_record_text_and_keys() -> None:
    text, keys = encode_trace(pub_context())
    assert text == PUB
    assert keys == ["7F00000100002A9F0000000000000001", "k1"]


def test_pub_without_tags_or_keys_writes_null_and_keys_only_the_msg_id() -> None:
    ctx = pub_context()
    ctx.beans[0].tags = None
    ctx.beans[0].keys = None
    ctx.beans[0].msg_type = MessageType.Delay_Msg
    ctx.success = False
    text, keys = encode_trace(ctx)
    assert text == (
        "Pub\x011700000000123\x01DefaultRegion\x01group_a\x01TopicTest\x01"
        "7F00000100002A9F0000000000000001\x01null\x01null\x01127.0.0.1:10911\x015\x017\x013"
        "\x017F00000100002A9F0000000000000ABC\x01false\x02"
    )
    assert keys == ["7F00000100002A9F0000000000000001"]


def sub_beans() -> list[TraceBean]:
    return [
        TraceBean(msg_id="AAAA", keys="k1", retry_times=0),
        TraceBean(msg_id="BBBB", keys="", retry_times=2),
    ]


def test_sub_before_writes_one_record_per_message() -> None:
    ctx = TraceContext(
        TraceType.SubBefore,
        timestamp=1700000000500,
        region_id="DefaultRegion",
        group_name="cg",
        request_id="REQ1",
        beans=sub_beans(),
    )
    text, keys = encode_trace(ctx)
    assert text == (
        "SubBefore\x011700000000500\x01DefaultRegion\x01cg\x01REQ1\x01AAAA\x010\x01k1\x02"
        "SubBefore\x011700000000500\x01DefaultRegion\x01cg\x01REQ1\x01BBBB\x012\x01\x02"
    )
    assert keys == ["AAAA", "k1", "BBBB"]


def test_sub_after_writes_one_record_per_message() -> None:
    ctx = TraceContext(
        TraceType.SubAfter,
        request_id="REQ1",
        cost_time=12,
        success=False,
        context_code=3,
        beans=sub_beans(),
    )
    text, _ = encode_trace(ctx)
    assert text == (
        "SubAfter\x01REQ1\x01AAAA\x0112\x01false\x01k1\x013\x02"
        "SubAfter\x01REQ1\x01BBBB\x0112\x01false\x01\x013\x02"
    )


def test_decode_a_body_of_mixed_records() -> None:
    body = (
        PUB
        + "SubBefore\x011700000000500\x01R\x01cg\x01REQ1\x01AAAA\x011\x01k1\x02"
        + "SubAfter\x01REQ1\x01AAAA\x0112\x01TRUE\x01k1\x012\x02"
    )
    pub, before, after = decode_traces(body)
    assert pub.trace_type is TraceType.Pub
    assert (pub.timestamp, pub.region_id, pub.group_name, pub.cost_time) == (
        1700000000123,
        "DefaultRegion",
        "group_a",
        7,
    )
    assert pub.beans[0] == pub_context().beans[0]
    assert pub.success is True
    assert before.trace_type is TraceType.SubBefore
    assert (before.request_id, before.beans[0].msg_id, before.beans[0].retry_times) == (
        "REQ1",
        "AAAA",
        1,
    )
    assert after.trace_type is TraceType.SubAfter
    assert (after.cost_time, after.success, after.context_code) == (12, True, 2)


def test_decode_a_pub_record_of_thirteen_fields_has_no_offset_msg_id() -> None:
    old = "Pub\x011\x01R\x01g\x01T\x01ID\x01t\x01k\x01h:1\x013\x014\x011\x01false\x02"
    (ctx,) = decode_traces(old)
    assert ctx.beans[0].offset_msg_id == ""
    assert ctx.beans[0].msg_type is MessageType.Trans_Msg_Half
    assert ctx.success is False


def test_decode_skips_unknown_records_and_rejects_bad_numbers() -> None:
    assert decode_traces("Other\x01x" + F + "") == []
    assert decode_traces("") == []
    with pytest.raises(ValueError):
        decode_traces(
            "Pub\x01notanumber\x01R\x01g\x01T\x01ID\x01t\x01k\x01h\x013\x014\x010\x01true"
        )
