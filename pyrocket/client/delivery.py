"""Handing pulled messages out to the caller of a push consumer.

The pull loops put each found batch on one bounded channel; the caller takes
messages one at a time (:meth:`Delivery.receive`) or in batches
(:meth:`Delivery.poll`). A message counts as consumed once handed out: its
queue's consumed offset moves past it (past the batch's next offset after
the batch's last message, so tags filtered out on the client count too).
Messages of a queue dropped meanwhile (rebalanced away, reset) are skipped.
"""

from __future__ import annotations

from collections import deque

import trio

from pyrocket.client.pulling import Batch, QueueState, now_ms
from pyrocket.client.trace.consume import ConsumeTracer
from pyrocket.protocol.message import MessageExt


class Delivery:
    """The pulled batches waiting for the caller, and the hand-out rule."""

    def __init__(self, buffered_batches: int, tracer: ConsumeTracer | None) -> None:
        self._tracer = tracer
        self._pending: deque[tuple[QueueState, MessageExt, int | None]] = deque()
        self._send, self._receive = trio.open_memory_channel[Batch](buffered_batches)

    async def deliver(self, item: Batch) -> None:
        """Queue one pulled batch (waits while the buffer is full)."""
        await self._send.send(item)

    def close(self) -> None:
        """No more messages: receivers get trio.ClosedResourceError."""
        self._receive.close()

    async def receive(self) -> MessageExt:
        """The next message (waiting for one); it counts as consumed."""
        if self._tracer is not None:
            self._tracer.done()
        while True:
            message = self._take_pending()
            if message is not None:
                return message
            self._queue_batch(await self._receive.receive())

    async def poll(self, max_messages: int, timeout: float) -> list[MessageExt]:  # noqa: ASYNC109
        """Up to ``max_messages``: waits up to ``timeout`` s for the first,
        then takes what is already there."""
        messages: list[MessageExt] = []
        with trio.move_on_after(timeout):
            messages.append(await self.receive())
        while messages and len(messages) < max_messages:
            message = self._take_pending()
            if message is not None:
                messages.append(message)
                continue
            try:
                self._queue_batch(self._receive.receive_nowait())
            except trio.WouldBlock:
                break
        return messages

    def _queue_batch(self, item: Batch) -> None:
        state, batch, next_offset = item
        if state.dropped:
            return
        last = len(batch) - 1
        for i, message in enumerate(batch):
            self._pending.append((state, message, next_offset if i == last else None))
            state.cached.append(message.queue_offset)

    def _take_pending(self) -> MessageExt | None:
        while self._pending:
            state, message, next_offset = self._pending.popleft()
            if state.dropped:
                continue
            state.in_flight -= 1
            if state.cached:
                state.cached.popleft()
            state.last_consume_timestamp = now_ms()
            state.advance(message.queue_offset + 1 if next_offset is None else next_offset)
            if self._tracer is not None:
                self._tracer.handed_out(message)
            return message
        return None
