"""The producer's send path without header objects gives what the header
path gives: the same properties order, the same SEND_MESSAGE_V2 fields in
the same order, the same reading of the answer."""

from __future__ import annotations

import random
import time

import pytest

from pyrocket.client import messages
from pyrocket.client.broker_api import send_code
from pyrocket.client.messages import new_message, sending_properties, with_unique_id
from pyrocket.client.sending import Prepared, send_header, send_request, send_result
from pyrocket.errors import CommandError, ResponseError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, encode
from pyrocket.protocol.headers import SendMessageRequestHeaderV2, SendMessageResponseHeader
from pyrocket.protocol.message import Message, MessageConst, MessageSysFlag

QUEUE = MessageQueue("T", "broker-a", 3)


def test_sending_properties_lay_out_as_the_java_hashmap() -> None:
    rng = random.Random(7)
    names = [f"k{i}" for i in range(40)] + ["TAGS", "KEYS", "a", "Aa", "BB", "UNIQ_KEY"]
    for _ in range(300):
        chosen = rng.sample(names, rng.randint(0, 14))
        props = {name: f"v{rng.randint(0, 99)}" for name in chosen}
        user = {k: v for k, v in props.items() if k not in MessageConst.RESERVED_NAMES}
        built = new_message("T", b"x", tags="t", keys="k1", properties=user)
        for message in (Message("T", b"x", props), built):
            ours = sending_properties(message, lambda: "fresh-id")
            theirs = with_unique_id(message, lambda: "fresh-id")
            assert list(ours.items()) == list(theirs.items())


def test_the_layout_table_is_bounded() -> None:
    for i in range(messages._LAYOUTS_KEPT + 10):
        sending_properties(Message("T", b"x", {f"p{i}": "v"}), lambda: "id")
    assert len(messages._LAYOUTS) <= messages._LAYOUTS_KEPT


def _reference(
    group: str, prepared: Prepared, nums: int
) -> tuple[int, dict[str, str], bytes | None]:
    header = send_header(group, QUEUE, prepared, nums)
    request = RemotingCommand.request(
        send_code(header), SendMessageRequestHeaderV2.from_v1(header), body=prepared.body
    )
    return request.code, dict(request.ext_fields or {}), request.body


def _prepared(message: Message, sys_flag: int = 0, batch: tuple[str, ...] = ()) -> Prepared:
    return Prepared(
        message, sending_properties(message, lambda: "0A0B0C"), message.body, sys_flag, batch
    )


@pytest.mark.parametrize(
    "prepared",
    [
        _prepared(new_message("T", b"body", tags="a", keys=["x", "y"], flag=5)),
        _prepared(Message("T", b"zz", {"MSG_TYPE": "reply"})),
        _prepared(new_message("T", b"q"), MessageSysFlag.COMPRESSED_FLAG),
        _prepared(new_message("T", b"batch"), 0, ("id1", "id2")),
        _prepared(new_message("T", b""), 0),
        _prepared(Message("%RETRY%g", b"r", {"RECONSUME_TIME": "2", "MAX_RECONSUME_TIMES": "16"})),
        _prepared(Message("%RETRY%g", b"r", {})),
    ],
)
def test_send_request_matches_the_header_path(prepared: Prepared) -> None:
    before = time.time_ns() // 1_000_000
    request = send_request("group", QUEUE, prepared, 4)
    after = time.time_ns() // 1_000_000
    code, ext, body = _reference("group", prepared, 4)
    assert request.code == code
    mine = dict(request.ext_fields or {})
    assert list(mine) == list(ext)
    assert before <= int(mine.pop("g")) <= after
    ext.pop("g")
    assert mine == ext
    assert request.body == body
    assert (request.flag, request.opaque) == (0, 0)


def test_send_request_codes() -> None:
    plain = send_request("g", QUEUE, _prepared(new_message("T", b"b")), 4)
    assert plain.code == RequestCode.SEND_MESSAGE_V2
    batch = send_request("g", QUEUE, _prepared(new_message("T", b"b"), 0, ("1",)), 4)
    assert batch.code == RequestCode.SEND_BATCH_MESSAGE
    reply = _prepared(Message("T", b"b", {"MSG_TYPE": "reply"}))
    assert send_request("g", QUEUE, reply, 4).code == RequestCode.SEND_REPLY_MESSAGE_V2


def test_same_frame_bytes_with_a_fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_123_000_000)
    prepared = _prepared(new_message("T", b"payload", tags="t", flag=-7))
    code, ext, body = _reference("grp", prepared, 8)
    expected = RemotingCommand(code=code, ext_fields=ext, body=body)
    assert encode(send_request("grp", QUEUE, prepared, 8)) == encode(expected)


@pytest.mark.parametrize("flag", [2**31, -(2**31) - 1])
def test_a_flag_java_cannot_hold_is_refused_as_before(flag: int) -> None:
    prepared = _prepared(Message("T", b"b", {}, flag))
    with pytest.raises(CommandError):
        _reference("g", prepared, 4)
    with pytest.raises(CommandError):
        send_request("g", QUEUE, prepared, 4)


def _answer(code: int, **ext: str) -> RemotingCommand:
    return RemotingCommand(code=code, flag=1, ext_fields=ext)


@pytest.mark.parametrize(
    "ext",
    [
        {"msgId": "7F000001", "queueId": "3", "queueOffset": "123456789012"},
        {
            "msgId": "M",
            "queueId": "0",
            "queueOffset": "0",
            "transactionId": "tx",
            "MSG_REGION": "r",
        },
        {"msgId": "M", "queueId": "+3", "queueOffset": "9"},
        {"msgId": "M", "queueId": "3", "queueOffset": "-1"},
        {"msgId": "M", "queueId": "99999999999", "queueOffset": "1"},
        {"msgId": "M", "queueId": "x", "queueOffset": "1"},
        {"queueId": "3", "queueOffset": "1"},
        {"msgId": "M", "queueId": "", "queueOffset": "1"},
        {"msgId": "M", "queueId": "\u0663", "queueOffset": "1"},
    ],
)
def test_send_result_reads_the_answer_as_the_header_class(ext: dict[str, str]) -> None:
    prepared = _prepared(new_message("T", b"b"))
    response = _answer(ResponseCode.SUCCESS, **ext)
    try:
        header = response.decode_header(SendMessageResponseHeader)
    except CommandError:
        with pytest.raises(CommandError):
            send_result(response, QUEUE, prepared)
        return
    result = send_result(response, QUEUE, prepared)
    assert result.msg_id == "0A0B0C"
    assert result.offset_msg_id == header.msg_id
    assert result.queue == MessageQueue("T", "broker-a", header.queue_id)
    assert result.queue_offset == header.queue_offset
    assert result.transaction_id == header.transaction_id
    assert result.region_id == ext.get("MSG_REGION")


def test_an_unknown_answer_code_is_a_response_error() -> None:
    prepared = _prepared(new_message("T", b"b"))
    with pytest.raises(ResponseError) as caught:
        send_result(RemotingCommand(code=12345, flag=1, remark="odd"), QUEUE, prepared)
    assert caught.value.code == 12345
    with pytest.raises(ResponseError):
        send_result(RemotingCommand(code=ResponseCode.SYSTEM_ERROR, flag=1), QUEUE, prepared)
    assert MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX in prepared.properties


def test_a_queue_id_java_cannot_hold_is_refused_as_before() -> None:
    prepared = _prepared(new_message("T", b"b"))
    with pytest.raises(CommandError):
        send_request("g", MessageQueue("T", "broker-a", 2**31), prepared, 4)
