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

Consume statistics (:class:`~pyrocket.client.consume_stats.ConsumerStats`):
what one ``receive`` or ``poll`` handed out is one consumption, settled at
the next ``receive``/``poll`` call (or at close): its RT is the time from the
hand-out to that call (how long the caller worked on it), its messages count
as consumed OK, except those given back meanwhile with
:meth:`Delivery.note_failed` (which the caller also counts as failed).
"""

from __future__ import annotations

import contextlib
from collections import deque

import trio

from pyrocket.client.consume_stats import ConsumerStats
from pyrocket.client.pulling import Batch, QueueState, now_ms
from pyrocket.client.trace.consume import ConsumeTracer
from pyrocket.protocol.message import MessageExt


class Delivery:
    """The pulled batches waiting for the caller, and the hand-out rule."""

    def __init__(
        self,
        buffered_batches: int,
        tracer: ConsumeTracer | None,
        stats: ConsumerStats | None = None,
    ) -> None:
        self._tracer = tracer
        self._stats = stats
        # The last hand-out not yet settled: when, and how many messages of
        # which queue topics (a single topic in the common case).
        self._handed_at = 0
        self._handed: dict[str, int] = {}
        self._failed_since = 0
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
        self.settle()
        self._receive.close()

    def note_failed(self) -> None:
        """A message of the last hand-out was given back: it does not count
        as consumed OK when that hand-out is settled."""
        self._failed_since += 1

    def settle(self) -> None:
        """Count the last hand-out as one consumption (see the module)."""
        if self._stats is None or not self._handed:
            return
        rt = max(0, now_ms() - self._handed_at)
        failed = self._failed_since
        for topic, count in self._handed.items():
            taken = min(failed, count)
            failed -= taken
            self._stats.consumed(topic, rt, count - taken)
        self._handed.clear()
        self._failed_since = 0

    async def receive(self, *, auto_ack: bool) -> MessageExt:
        """The next message (waiting for one); acknowledged at once with
        ``auto_ack``."""
        self.settle()
        return await self._receive_one(auto_ack)

    async def _receive_one(self, auto_ack: bool) -> MessageExt:
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
        self.settle()
        messages: list[MessageExt] = []
        with trio.move_on_after(timeout):
            messages.append(await self._receive_one(auto_ack))
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
            if self._stats is not None:
                if not self._handed:
                    self._handed_at = state.last_consume_timestamp
                topic = state.queue.topic or ""
                self._handed[topic] = self._handed.get(topic, 0) + 1
            if self._tracer is not None:
                self._tracer.handed_out(message)
            return message
        return None
