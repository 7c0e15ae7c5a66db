"""Batching trace records and sending them (Java's ``AsyncTraceDispatcher``).

:meth:`TraceDispatcher.append` never waits: a record that does not fit in
the bounded queue (``queue_size``, Java's 1024) is dropped and counted in
``dropped``. A task takes up to ``batch_size`` (100) records at a time
(waiting for more while each next one comes within ``linger``, 5 ms),
groups them by the traced message's topic and region as Java does, joins
the texts into messages of at most ``max_message_size`` characters, and
sends each to the trace topic with an internal producer whose group is
``_INNER_TRACE_PRODUCER-<group>-<PRODUCE|CONSUME>``. A trace message's
KEYS are the msgIds (and keys) of the messages it traces, so a query by a
msgId finds it. Leaving the ``async with`` block sends what is queued,
for at most ``flush_timeout`` seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import Protocol

import trio

from pyrocket.client.messages import new_message
from pyrocket.client.trace.encoder import (
    GROUP_NAME_PREFIX,
    RMQ_SYS_TRACE_TOPIC,
    TraceContext,
    encode_trace,
)
from pyrocket.errors import PyrocketError
from pyrocket.protocol.message.batch import Message

log = logging.getLogger(__name__)

#: Java's maxMsgSize (128000) less its 10000 margin.
TRACE_MAX_MESSAGE_SIZE = 118_000


class TraceSender(Protocol):
    """What the dispatcher sends with (a Producer)."""

    async def send(self, message: Message) -> object: ...


def trace_group(group: str, kind: str) -> str:
    """The internal producer's group (``genGroupNameForTrace``); ``kind``
    is ``PRODUCE`` or ``CONSUME``."""
    return f"{GROUP_NAME_PREFIX}-{group}-{kind}"


class TraceDispatcher:
    """Queues records and sends them; see the module."""

    def __init__(
        self,
        make_sender: Callable[[], AbstractAsyncContextManager[TraceSender]],
        topic: str | None = None,
        *,
        queue_size: int = 1024,
        batch_size: int = 100,
        max_message_size: int = TRACE_MAX_MESSAGE_SIZE,
        flush_timeout: float = 5.0,
        linger: float = 0.005,
    ) -> None:
        self.topic = topic or RMQ_SYS_TRACE_TOPIC
        self.batch_size = batch_size
        self.max_message_size = max_message_size
        self.flush_timeout = flush_timeout
        self.linger = linger
        self.dropped = 0
        self.sent_messages = 0
        self._make_sender = make_sender
        self._in, self._out = trio.open_memory_channel[TraceContext](queue_size)
        self._stack: AsyncExitStack | None = None
        self._done = trio.Event()
        self._cancel = trio.CancelScope()

    def append(self, ctx: TraceContext) -> bool:
        """Queue ``ctx`` without waiting; False (and counted) when full or
        closed."""
        try:
            self._in.send_nowait(ctx)
        except (trio.WouldBlock, trio.ClosedResourceError):
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("trace queue full: %d records dropped", self.dropped)
            return False
        return True

    async def __aenter__(self) -> TraceDispatcher:
        async with AsyncExitStack() as stack:
            sender = await stack.enter_async_context(self._make_sender())
            nursery = await stack.enter_async_context(trio.open_nursery())
            nursery.start_soon(self._run, sender)
            self._cancel = nursery.cancel_scope
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        self._in.close()
        assert self._stack is not None
        stack, self._stack = self._stack, None
        with trio.CancelScope(shield=True):
            with trio.move_on_after(self.flush_timeout):
                await self._done.wait()
            if not self._done.is_set():
                log.warning("trace records left unsent at close")
            self._cancel.cancel()
        # Outside the scopes above (the stack holds a nursery opened before
        # them); the internal producer bounds its own close.
        return await stack.__aexit__(exc_type, exc, traceback)

    async def _run(self, sender: TraceSender) -> None:
        try:
            ended = False
            while not ended:
                try:
                    batch = [await self._out.receive()]
                except trio.EndOfChannel:
                    break
                # Java's worker gathers a batch for as long as each next
                # record comes within 5 ms.
                with trio.move_on_after(self.linger) as scope:
                    try:
                        while len(batch) < self.batch_size:
                            batch.append(await self._out.receive())
                            scope.deadline = trio.current_time() + self.linger
                    except trio.EndOfChannel:
                        ended = True
                await self._send_batch(sender, batch)
        except trio.ClosedResourceError:
            pass
        finally:
            self._done.set()

    async def _send_batch(self, sender: TraceSender, batch: list[TraceContext]) -> None:
        groups: dict[tuple[str, str | None], list[tuple[str, list[str]]]] = {}
        for ctx in batch:
            if not ctx.beans:
                continue
            groups.setdefault((ctx.beans[0].topic, ctx.region_id), []).append(encode_trace(ctx))
        for encoded in groups.values():
            text: list[str] = []
            size = 0
            keys: dict[str, None] = {}
            for data, data_keys in encoded:
                text.append(data)
                size += len(data)
                keys.update(dict.fromkeys(data_keys))
                if size >= self.max_message_size:
                    await self._send_one(sender, "".join(text), list(keys))
                    text, size, keys = [], 0, {}
            if text:
                await self._send_one(sender, "".join(text), list(keys))

    async def _send_one(self, sender: TraceSender, data: str, keys: list[str]) -> None:
        message = new_message(self.topic, data.encode("utf-8"), keys=keys)
        try:
            await sender.send(message)
        except PyrocketError as exc:
            log.info("trace data not sent (%s): %r", exc, data)
        else:
            self.sent_messages += 1
