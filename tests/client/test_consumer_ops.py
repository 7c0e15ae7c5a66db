"""Offset resets, consumer status and direct consumption over real sockets:
a pyrocket NameServer and broker, a pyrocket consumer and the admin API.

- INVOKE_BROKER_TO_RESET_OFFSET with the consumer online: the broker sends
  RESET_CONSUMER_CLIENT_OFFSET, the consumer drops its queues and reads again
  from the reset offsets;
- the same with no consumer online: CONSUMER_NOT_ONLINE, then the old-style
  reset writes the offsets, and a consumer started later begins there;
- INVOKE_BROKER_TO_GET_CONSUMER_STATUS answered from the consumer's
  GET_CONSUMER_STATUS_FROM_CLIENT;
- CONSUME_MESSAGE_DIRECTLY through the consumer's direct handler.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.client.admin import Admin
from pyrocket.client.client_requests import reset_table, status_answer
from pyrocket.client.producer import Producer, SendResult, new_message
from pyrocket.errors import ResponseError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.ops import (
    CMResult,
    GetConsumerStatusBody,
    MessageQueueForC,
    ResetOffsetBody,
    ResetOffsetBodyForC,
)
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import GetConsumerStatusRequestHeader, ResetOffsetRequestHeader
from pyrocket.protocol.message import MessageExt
from tests.client.helpers import consumer, running_up
from tests.remoting.helpers import wait_until

TOPIC = "OpsTopic"


async def _send(namesrv: str, count: int, topic: str = TOPIC) -> list[SendResult]:
    async with Producer("ops_producers", [namesrv], client_ip="127.0.0.1") as producer:
        return [
            await producer.send(new_message(topic, f"m{i}".encode(), tags="T"))
            for i in range(count)
        ]


async def _take(source: object, count: int) -> list[MessageExt]:
    receive = source.receive  # type: ignore[attr-defined]
    return [await receive() for _ in range(count)]


async def test_reset_with_the_consumer_online(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running, Admin([running.namesrv_addr]) as admin:
            ns = running.namesrv_addr
            await _send(ns, 12)
            async with consumer(ns, "reset_online", TOPIC) as reader:
                first = await _take(reader, 12)
                await reader.commit()
                offsets = running.broker.data_plane.consumer_offset_manager  # type: ignore[union-attr]
                await wait_until(
                    lambda: (
                        sum(
                            max(0, offsets.query_offset("reset_online", TOPIC, q)) for q in range(8)
                        )
                        == 12
                    )
                )
                table = await admin.reset_offset_by_timestamp(TOPIC, "reset_online", 0, True)
                assert sorted(table.values()) == [0] * len(table)
                assert {q.queue_id for q in table} == set(range(4))
                again = await _take(reader, 12)
                # Everything again, from the start of each queue.
                assert sorted(m.body for m in again) == sorted(m.body for m in first)
                # The consumer's own offsets, through the broker: after the
                # second pass every queue is consumed to its end again.
                while True:
                    status = await admin.consumer_status(TOPIC, "reset_online")
                    assert list(status) == [reader.client_id]
                    mine = status[reader.client_id]
                    assert all(q.topic == TOPIC for q in mine)
                    if sum(mine.values()) == 12:
                        break
                    await trio.sleep(0.05)


async def test_reset_with_no_consumer_online(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running, Admin([running.namesrv_addr]) as admin:
            ns = running.namesrv_addr
            await _send(ns, 10)
            async with consumer(ns, "reset_offline", TOPIC) as reader:
                await _take(reader, 10)
            with pytest.raises(ResponseError) as refused:
                await admin.reset_offset_by_timestamp(TOPIC, "reset_offline", 0, True)
            assert refused.value.code == ResponseCode.CONSUMER_NOT_ONLINE
            assert refused.value.remark == (
                "Consumer not online, so can not reset offset, Group: reset_offline "
                f"Topic: {TOPIC} Timestamp: 0"
            )
            rolled = await admin.reset_offset_by_timestamp_old("reset_offline", TOPIC, 0, True)
            assert sum(r.consumer_offset for r in rolled) == 10
            assert all(r.rollback_offset == r.timestamp_offset == 0 for r in rolled)
            async with consumer(ns, "reset_offline", TOPIC) as later:
                again = await _take(later, 10)
            assert sorted(m.body for m in again) == sorted(f"m{i}".encode() for i in range(10))


async def test_consume_message_directly(tmp_path: Path) -> None:
    seen: list[MessageExt] = []

    async def handler(message: MessageExt) -> bool | None:
        seen.append(message)
        if message.body == b"m1":
            raise ValueError("cannot take m1")
        return True if message.body == b"m0" else None

    with trio.fail_after(60):
        async with running_up(tmp_path) as running, Admin([running.namesrv_addr]) as admin:
            ns = running.namesrv_addr
            sent = await _send(ns, 3)
            addr = running.broker.broker_addr
            async with consumer(ns, "direct_group", TOPIC, direct_handler=handler) as reader:
                ok = await admin.ops.consume_message_directly(
                    addr, "direct_group", reader.client_id, sent[0].offset_msg_id
                )
                assert ok.consume_result is CMResult.CR_SUCCESS
                assert ok.auto_commit and not ok.order
                thrown = await admin.ops.consume_message_directly(
                    addr, "direct_group", reader.client_id, sent[1].offset_msg_id
                )
                assert thrown.consume_result is CMResult.CR_THROW_EXCEPTION
                assert thrown.remark is not None and "cannot take m1" in thrown.remark
                # Through the admin, which finds the broker from the id.
                nothing = await admin.consume_message_directly(
                    "direct_group", reader.client_id, sent[2].offset_msg_id
                )
                assert nothing.consume_result is CMResult.CR_RETURN_NULL
                assert [m.body for m in seen] == [b"m0", b"m1", b"m2"]
                assert seen[0].msg_id == sent[0].offset_msg_id
                with pytest.raises(ResponseError) as unknown:
                    await admin.ops.consume_message_directly(
                        addr, "direct_group", "no-such-client", sent[0].offset_msg_id
                    )
                assert unknown.value.code == ResponseCode.SYSTEM_ERROR
                assert unknown.value.remark == (
                    "The Consumer <direct_group> <no-such-client> not online"
                )
            async with consumer(ns, "plain_group", TOPIC) as plain:
                with pytest.raises(ResponseError) as no_handler:
                    await admin.ops.consume_message_directly(
                        addr, "plain_group", plain.client_id, sent[0].offset_msg_id
                    )
                assert no_handler.value.code == ResponseCode.SYSTEM_ERROR


def test_reset_bodies_java_and_cpp() -> None:
    queue = MessageQueue("T", "broker-a", 3)
    java = ResetOffsetBody({queue: 42}).encode()
    assert java == b'{"offsetTable":{{"brokerName":"broker-a","queueId":3,"topic":"T"}:42}}'
    assert reset_table(java) == {queue: 42}
    cpp = ResetOffsetBodyForC((MessageQueueForC("broker-a", 42, 3, "T"),)).encode()
    assert cpp == (
        b'{"offsetTable":[{"brokerName":"broker-a","offset":42,"queueId":3,"topic":"T"}]}'
    )
    assert reset_table(cpp) == {queue: 42}
    assert reset_table(None) == {}


def test_status_answer_body() -> None:
    answer = status_answer({MessageQueue("T", "b", 0): 7})
    assert answer.code == ResponseCode.SUCCESS
    assert answer.body == (
        b'{"consumerTable":{},"messageQueueTable":{{"brokerName":"b","queueId":0,"topic":"T"}:7}}'
    )


async def test_requests_for_another_group_change_nothing(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await _send(ns, 4)
            async with consumer(ns, "mine", TOPIC) as reader:
                await _take(reader, 4)
                await wait_until(
                    lambda: len([q for q in reader.assignment if q.topic == TOPIC]) == 4
                )
                before = set(reader.assignment)
                queue = next(q for q in before if q.topic == TOPIC)
                other = RemotingCommand.request(
                    RequestCode.RESET_CONSUMER_CLIENT_OFFSET,
                    ResetOffsetRequestHeader(TOPIC, "not_mine", 0, False),
                    body=ResetOffsetBody({queue: 0}).encode(),
                )
                assert reader._on_reset_offset(None, other) is None  # type: ignore[arg-type]
                status = reader._on_get_status(
                    None,  # type: ignore[arg-type]
                    RemotingCommand.request(
                        RequestCode.GET_CONSUMER_STATUS_FROM_CLIENT,
                        GetConsumerStatusRequestHeader(TOPIC, "not_mine"),
                    ),
                )
                assert GetConsumerStatusBody.decode(status.body or b"").message_queue_table == {}
                await trio.sleep(0.2)
                assert set(reader.assignment) == before
                with trio.move_on_after(0.3):
                    extra = await reader.receive()
                    pytest.fail(f"read again: {extra}")
