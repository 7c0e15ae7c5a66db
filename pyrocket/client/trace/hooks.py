"""Trace records of a producer's sends (Java's ``SendMessageTraceHookImpl``).

A send answered by the broker becomes a ``Pub`` record: the group, the
topic, msgId and offsetMsgId, tags, keys, the broker address as storeHost,
the body length as sent, the message type, the milliseconds from the start
of the attempt as costTime, success (SEND_OK) and the broker's regionId.
No record is made for a trace message itself, for an answer without a
regionId or with ``TRACE_ON`` false (as Java skips them), or for a oneway
send (it has no answer).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

from pyrocket.client.sending import SendResult, SendStatus
from pyrocket.client.trace.consume import ConsumeTracer
from pyrocket.client.trace.dispatcher import TraceDispatcher, TraceSender, trace_group
from pyrocket.client.trace.encoder import (
    TRACE_INSTANCE_NAME,
    MessageType,
    TraceBean,
    TraceContext,
    TraceType,
)
from pyrocket.protocol.message.batch import Message
from pyrocket.protocol.message.constants import MessageConst
from pyrocket.protocol.message.ids import UniqueIdGenerator


def message_type(properties: Mapping[str, str]) -> MessageType:
    """The type ``sendKernelImpl`` reports: a transaction half, a delayed
    message, or a normal one."""
    if properties.get(MessageConst.PROPERTY_TRANSACTION_PREPARED) == "true":
        return MessageType.Trans_Msg_Half
    if properties.get(MessageConst.PROPERTY_DELAY_TIME_LEVEL) is not None:
        return MessageType.Delay_Msg
    return MessageType.Normal_Msg


class SendTracer:
    """Makes Pub records for ``dispatcher``; see the module."""

    def __init__(self, group: str, dispatcher: TraceDispatcher) -> None:
        self.group = group
        self.dispatcher = dispatcher

    def sent(
        self,
        message: Message,
        body_length: int,
        broker_addr: str,
        result: SendResult,
        begin_ms: int,
        ext_fields: Mapping[str, str],
    ) -> None:
        """Record one attempt begun at ``begin_ms`` (wall clock) and
        answered now with ``result`` and the answer's ``ext_fields``."""
        end_ms = time.time_ns() // 1_000_000
        trace_on = ext_fields.get(MessageConst.PROPERTY_TRACE_SWITCH) != "false"
        if message.topic.startswith(self.dispatcher.topic):
            return
        if result.region_id is None or not trace_on:
            return
        bean = TraceBean(
            topic=message.topic,
            msg_id=result.msg_id,
            offset_msg_id=result.offset_msg_id,
            tags=message.tags,
            keys=message.keys,
            store_host=broker_addr,
            store_time=begin_ms + (end_ms - begin_ms) // 2,
            body_length=body_length,
            msg_type=message_type(message.properties),
        )
        self.dispatcher.append(
            TraceContext(
                TraceType.Pub,
                timestamp=begin_ms,
                region_id=result.region_id,
                group_name=self.group,
                cost_time=end_ms - begin_ms,
                success=result.status is SendStatus.SEND_OK,
                beans=[bean],
            )
        )


def make_dispatcher(
    group: str,
    kind: str,
    namesrv_addresses: Sequence[str],
    trace_topic: str | None,
    make_producer: Callable[..., AbstractAsyncContextManager[TraceSender]],
    options: Mapping[str, Any],
) -> TraceDispatcher:
    """A dispatcher for a client of ``group`` (``kind`` PRODUCE or CONSUME)
    sending with ``make_producer(trace group, namesrv_addresses,
    instance_name=..., **options)``, named as Java names its trace producer."""
    factory = partial(
        make_producer,
        trace_group(group, kind),
        namesrv_addresses,
        instance_name=f"{TRACE_INSTANCE_NAME}_{';'.join(namesrv_addresses)}",
        **options,
    )
    return TraceDispatcher(factory, trace_topic)


def send_tracer(
    group: str,
    namesrv_addresses: Sequence[str],
    trace_topic: str | None,
    make_producer: Callable[..., AbstractAsyncContextManager[TraceSender]],
    options: Mapping[str, Any],
    enabled: bool = True,
) -> SendTracer | None:
    """A producer's tracer (see :func:`make_dispatcher`); None unless
    ``enabled``."""
    if not enabled:
        return None
    dispatcher = make_dispatcher(
        group, "PRODUCE", namesrv_addresses, trace_topic, make_producer, options
    )
    return SendTracer(group, dispatcher)


def consume_tracer(
    group: str,
    namesrv_addresses: Sequence[str],
    trace_topic: str | None,
    make_producer: Callable[..., AbstractAsyncContextManager[TraceSender]],
    options: Mapping[str, Any],
    enabled: bool = True,
) -> ConsumeTracer | None:
    """A push consumer's tracer (see :func:`make_dispatcher`); None unless
    ``enabled``."""
    if not enabled:
        return None
    dispatcher = make_dispatcher(
        group, "CONSUME", namesrv_addresses, trace_topic, make_producer, options
    )
    ids = UniqueIdGenerator(bytes(4), os.getpid(), random.getrandbits(32))
    return ConsumeTracer(group, dispatcher, ids)
