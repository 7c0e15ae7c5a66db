"""Handing pulled messages out to the caller of a push consumer.

The pull loops put each found batch on one bounded channel; the caller takes
messages one at a time (:meth:`Delivery.receive`) or in batches
(:meth:`Delivery.poll`). Every pulled message waits in its queue's
:class:`~pyrocket.client.process_queue.ProcessQueue` until acknowledged;
with ``auto_ack`` a message is acknowledged as it is handed out, otherwise
the caller acknowledges it (:meth:`QueueState.acknowledge
<pyrocket.client.pulling.QueueState.acknowledge>`). Messages of a queue
dropped meanwhile (rebalanced away, reset), or no longer held by it, are
skipped.
"""

from __future__ import annotations

import contextlib
from collections import deque

import trio

from pyrocket.client.pulling import Batch, QueueState, now_ms
from pyrocket.client.trace.consume import ConsumeTracer
from pyrocket.protocol.message import MessageExt


class Delivery:
    """The pulled batches waiting for the caller, and the hand-out rule."""

    def __init__(self, buffered_batches: int, tracer: ConsumeTracer | None) -> None:
        self._tracer = tracer
        self._pending: deque[tuple[QueueState, MessageExt]] = deque()
        self._send, self._receive = trio.open_memory_channel[Batch](buffered_batches)

    async def deliver(self, item: Batch) -> None:
        """Queue one pulled batch (waits while the buffer is full)."""
        await self._send.send(item)

    def redeliver(self, state: QueueState, message: MessageExt) -> None:
        """Hand ``message`` (still held by ``state``) out again, first; a
        receiver waiting for the next pulled batch is woken for it."""
        self._pending.appendleft((state, message))
        # An empty batch adds nothing but ends a receiver's wait; when the
        # channel is full batches are waiting anyway, and once it is closed
        # nobody receives any more.
        with contextlib.suppress(
            trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError
        ):
            self._send.send_nowait((state, [], state.next_offset))

    def close(self) -> None:
        """No more messages: receivers get trio.ClosedResourceError."""
        self._receive.close()

    async def receive(self, *, auto_ack: bool) -> MessageExt:
        """The next message (waiting for one); acknowledged at once with
        ``auto_ack``."""
        if self._tracer is not None:
            self._tracer.done()
        while True:
            message = self._take_pending(auto_ack)
            if message is not None:
                return message
            self._queue_batch(await self._receive.receive())

    async def poll(self, max_messages: int, timeout: float, *, auto_ack: bool) -> list[MessageExt]:  # noqa: ASYNC109
        """Up to ``max_messages``: waits up to ``timeout`` s for the first,
        then takes what is already there."""
        messages: list[MessageExt] = []
        with trio.move_on_after(timeout):
            messages.append(await self.receive(auto_ack=auto_ack))
        while messages and len(messages) < max_messages:
            message = self._take_pending(auto_ack)
            if message is not None:
                messages.append(message)
                continue
            try:
                self._queue_batch(self._receive.receive_nowait())
            except trio.WouldBlock:
                break
        return messages

    def _queue_batch(self, item: Batch) -> None:
        state, batch, _next_offset = item
        if state.dropped:
            return
        for message in batch:
            self._pending.append((state, message))

    def _take_pending(self, auto_ack: bool) -> MessageExt | None:
        while self._pending:
            state, message = self._pending.popleft()
            if state.dropped or not state.process.holds(message):
                continue
            state.last_consume_timestamp = now_ms()
            if auto_ack:
                state.acknowledge([message])
            else:
                state.process.started(message)
            if self._tracer is not None:
                self._tracer.handed_out(message)
            return message
        return None
