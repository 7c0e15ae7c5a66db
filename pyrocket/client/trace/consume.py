"""Trace records of a push consumer's messages (Java's
``ConsumeMessageTraceHookImpl``), for a consumer that hands messages to the
caller one ``receive`` / ``poll`` at a time.

A message handed out gets a ``SubBefore`` record (group, the message's
regionId, a request id, msgId, reconsume times, keys). Its consumption
counts as finished when the caller asks for more (the next ``receive`` or
``poll``) or the consumer closes: then a ``SubAfter`` record (costTime in
ms since the hand-out, success, contextCode SUCCESS) follows; a message
given back with ``reconsume_later`` first gets SubAfter with success false
and contextCode FAILED, as Java's RECONSUME_LATER. A message whose
``TRACE_ON`` property is ``false`` is not traced.
"""

from __future__ import annotations

import enum
import time

from pyrocket.client.trace.dispatcher import TraceDispatcher
from pyrocket.client.trace.encoder import TraceBean, TraceContext, TraceType
from pyrocket.protocol.message.constants import MessageConst
from pyrocket.protocol.message.ids import UniqueIdGenerator
from pyrocket.protocol.message.record import MessageExt


class ConsumeReturnType(enum.IntEnum):
    """Java's ``ConsumeReturnType``; SubAfter holds the ordinal."""

    SUCCESS = 0
    TIME_OUT = 1
    EXCEPTION = 2
    RETURNNULL = 3
    FAILED = 4


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ConsumeTracer:
    """Makes SubBefore / SubAfter records for ``dispatcher``; see the module."""

    def __init__(
        self, group: str, dispatcher: TraceDispatcher, request_ids: UniqueIdGenerator
    ) -> None:
        self.group = group
        self.dispatcher = dispatcher
        self._request_ids = request_ids
        # Handed out and not yet finished: the caller holds them only until
        # it asks for more, so this is one receive's or poll's worth.
        self._open: list[tuple[MessageExt, TraceContext]] = []

    def handed_out(self, message: MessageExt) -> None:
        """Record ``message`` going to the caller (SubBefore)."""
        if message.properties.get(MessageConst.PROPERTY_TRACE_SWITCH) == "false":
            return
        bean = TraceBean(
            topic=message.topic,
            msg_id=message.uniq_key or message.msg_id,
            tags=message.tags,
            keys=message.keys,
            store_time=message.store_timestamp,
            body_length=message.store_size,
            retry_times=message.reconsume_times,
        )
        ctx = TraceContext(
            TraceType.SubBefore,
            timestamp=_now_ms(),
            region_id=message.properties.get(MessageConst.PROPERTY_MSG_REGION),
            group_name=self.group,
            request_id=self._request_ids.next_id(),
            beans=[bean],
        )
        self.dispatcher.append(ctx)
        self._open.append((message, ctx))

    def failed(self, message: MessageExt) -> None:
        """``message`` is given back: SubAfter, not successful."""
        for i, (held, ctx) in enumerate(self._open):
            if held is message:
                del self._open[i]
                self._finish(ctx, False, ConsumeReturnType.FAILED)
                return

    def done(self) -> None:
        """The caller asks for more (or closes): what it holds is consumed."""
        opened, self._open = self._open, []
        for _, ctx in opened:
            self._finish(ctx, True, ConsumeReturnType.SUCCESS)

    async def close(self) -> None:
        """Finish what the caller holds and flush the dispatcher."""
        self.done()
        await self.dispatcher.__aexit__(None, None, None)

    def _finish(self, before: TraceContext, success: bool, code: ConsumeReturnType) -> None:
        self.dispatcher.append(
            TraceContext(
                TraceType.SubAfter,
                timestamp=_now_ms(),
                region_id=before.region_id,
                group_name=before.group_name,
                cost_time=_now_ms() - before.timestamp,
                success=success,
                request_id=before.request_id,
                context_code=int(code),
                beans=before.beans,
            )
        )
