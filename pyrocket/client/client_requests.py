"""What a push consumer answers when a broker asks (Java's
``ClientRemotingProcessor`` for the operator requests):

- RESET_CONSUMER_CLIENT_OFFSET (oneway): the queues named are dropped, their
  offsets set to the reset ones and committed, and rebalance takes them up
  again from there (``MQClientInstance.resetOffset``);
- GET_CONSUMER_STATUS_FROM_CLIENT: the consumer's offsets of a topic;
- CONSUME_MESSAGE_DIRECTLY: the message handed to the consumer's direct
  handler, answered with a ConsumeMessageDirectlyResult.

Sans-I/O helpers here decode and answer; :class:`PushConsumer` does the
resetting itself.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping

from pyrocket.errors import ProtocolError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.ops import (
    CMResult,
    ConsumeMessageDirectlyResult,
    GetConsumerStatusBody,
    ResetOffsetBody,
    ResetOffsetBodyForC,
)
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.fastjson import loads
from pyrocket.protocol.headers import ConsumeMessageDirectlyResultRequestHeader
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message import MessageConst, MessageExt, decode_message, decompress_body
from pyrocket.protocol.message.constants import MessageSysFlag

#: A direct consumer: True consumed (CONSUME_SUCCESS), False try later
#: (RECONSUME_LATER), None no answer (Java's null status).
DirectHandler = Callable[[MessageExt], Awaitable[bool | None]]


def reset_table(body: bytes | None) -> dict[MessageQueue, int]:
    """The offsets of a RESET_CONSUMER_CLIENT_OFFSET body (Java's map, or the
    list C++ clients are sent). Raises ProtocolError for a bad body."""
    if body is None:
        return {}
    document = loads(body)
    table = document.get("offsetTable") if isinstance(document, dict) else None
    if isinstance(table, list):
        listed = ResetOffsetBodyForC.from_json(document).offset_table or ()
        return {MessageQueue(q.topic, q.broker_name, q.queue_id): q.offset for q in listed}
    return dict(ResetOffsetBody.from_json(document).offset_table)


def status_answer(offsets: Mapping[MessageQueue, int]) -> RemotingCommand:
    """GET_CONSUMER_STATUS_FROM_CLIENT's answer: the offsets in a HashMap."""
    table: JavaHashMap[MessageQueue, int] = JavaHashMap()
    for queue, offset in offsets.items():
        table[queue] = offset
    body = GetConsumerStatusBody(message_queue_table=table).encode()
    return RemotingCommand.response(ResponseCode.SUCCESS, body=body)


def _direct_form(message: MessageExt, group: str) -> MessageExt:
    # MessageDecoder.decode inflates the body; resetRetryAndNamespace puts
    # a message of the group's retry topic back under its own topic.
    topic = message.topic
    original = message.properties.get(MessageConst.PROPERTY_RETRY_TOPIC)
    if original is not None and topic == f"%RETRY%{group}":
        topic = original
    if message.is_compressed:
        return dataclasses.replace(
            message,
            topic=topic,
            body=decompress_body(message.body),
            sys_flag=MessageSysFlag.clear_compressed_flag(message.sys_flag),
        )
    return dataclasses.replace(message, topic=topic)


def _exception_desc(exc: BaseException) -> str:
    """``RemotingHelper.exceptionSimpleDesc``-like: the exception and where."""
    text = f"{type(exc).__name__}: {exc}"
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        text += f", {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
    return text


async def consume_directly(
    request: RemotingCommand, group: str, handler: DirectHandler | None
) -> RemotingCommand:
    """CONSUME_MESSAGE_DIRECTLY: decode the stored message the broker sent,
    hand it to ``handler``, answer how it went."""
    header = request.decode_header(ConsumeMessageDirectlyResultRequestHeader)
    if header.consumer_group != group:
        return RemotingCommand.response(
            ResponseCode.SYSTEM_ERROR,
            f"The Consumer Group <{header.consumer_group}> not exist in this consumer",
        )
    if handler is None:
        return RemotingCommand.response(
            ResponseCode.SYSTEM_ERROR,
            f"The Consumer Group <{group}> has no direct handler in this consumer",
        )
    try:
        message, _ = decode_message(request.body or b"")
        message = _direct_form(message, group)
    except ProtocolError as exc:
        return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, f"bad message: {exc}")
    begin = time.monotonic()
    remark = None
    try:
        status = await handler(message)
        if status is None:
            result = CMResult.CR_RETURN_NULL
        else:
            result = CMResult.CR_SUCCESS if status else CMResult.CR_LATER
    except Exception as exc:
        result = CMResult.CR_THROW_EXCEPTION
        remark = _exception_desc(exc)
    spent = int((time.monotonic() - begin) * 1000)
    answer = ConsumeMessageDirectlyResult(
        auto_commit=True,
        consume_result=result,
        order=False,
        remark=remark,
        spent_time_mills=spent,
    )
    return RemotingCommand.response(ResponseCode.SUCCESS, body=answer.encode())


__all__ = ["DirectHandler", "consume_directly", "reset_table", "status_answer"]
