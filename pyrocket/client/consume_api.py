"""The consuming calls of :class:`~pyrocket.client.consumer.PushConsumer`:
acknowledging and giving back messages taken from it, and the concurrent and
orderly handler forms (the rules live in
:mod:`pyrocket.client.consume_concurrently` and :mod:`pyrocket.client.orderly`).
"""

from __future__ import annotations

from pyrocket.client.consume_concurrently import ConcurrentHandler, ConcurrentService
from pyrocket.client.consume_stats import ConsumerStats, queue_topic_of
from pyrocket.client.delivery import Delivery
from pyrocket.client.orderly import ORDERLY_MAX_RECONSUME_TIMES, OrderlyHandler, OrderlyService
from pyrocket.client.trace.consume import ConsumeTracer
from pyrocket.protocol.message import MessageExt


class ConsumeCalls:
    """What PushConsumer offers to consume; the consumer sets the state."""

    max_reconsume_times: int
    consume_thread_max: int
    consume_message_batch_max_size: int
    group: str
    tracer: ConsumeTracer | None
    stats: ConsumerStats
    _delivery: Delivery
    _concurrent: ConcurrentService
    _orderly: OrderlyService | None

    def ack(self, *messages: MessageExt) -> int:
        """``messages`` (from :meth:`receive`, :meth:`poll` or the iterator)
        are consumed: each queue's committable offset moves to its smallest
        offset still unacknowledged. Returns how many were still waiting
        (a message auto-acknowledged, acknowledged before, or of a queue
        this consumer no longer reads counts 0)."""
        return self._concurrent.ack(messages)

    async def consume(self, handler: ConcurrentHandler) -> None:
        """Consume with a listener until the consumer closes (Java's
        ``MessageListenerConcurrently``): batches of up to
        ``consume_message_batch_max_size`` messages go to ``handler``
        (sync: run in a worker thread; async: awaited), at most
        ``consume_thread_max`` at once. CONSUME_SUCCESS acknowledges the
        batch; RECONSUME_LATER, None or an exception (logged) gives it back
        as :meth:`reconsume_later` does. Cancel the calling task to stop.
        Raises RuntimeError for an orderly consumer (use
        :meth:`consume_orderly`)."""
        if self._orderly is not None:
            raise RuntimeError("an orderly consumer hands messages to consume_orderly only")
        await self._concurrent.run(
            handler, self.consume_thread_max, self.consume_message_batch_max_size
        )

    async def reconsume_later(self, message: MessageExt, delay_level: int = 0) -> bool:
        """Give ``message`` back to its broker (CONSUMER_SEND_MSG_BACK, what
        Java's push consumer does for RECONSUME_LATER; on failure a copy to
        ``%RETRY%<group>`` as Java sends it): the group gets it again
        through its retry topic after ``delay_level`` (0: the broker's
        choice, 3 + its reconsume times), or, after ``max_reconsume_times``
        attempts or with ``delay_level=-1``, it goes to the group's
        dead-letter topic. Once given back it counts as consumed (and in
        the statistics as failed). A broadcasting consumer drops it with a
        warning instead, as Java does.

        For a message still unacknowledged, when both ways fail it is
        handed out again here after 5 s (Java's ``submitConsumeRequestLater``)
        and False returned. For any other (auto-acknowledged) message a
        failure raises ResponseError, ClientError or a remoting error."""
        if self.tracer is not None:
            self.tracer.failed(message)
        self.stats.failed(queue_topic_of(message, self.group), 1)
        self._delivery.note_failed()
        return await self._concurrent.reconsume_later(message, delay_level)

    def effective_max_reconsume_times(self) -> int:
        """``max_reconsume_times``, -1 read as Java reads it (16; orderly: 2**31 - 1)."""
        if self.max_reconsume_times != -1:
            return self.max_reconsume_times
        return 16 if self._orderly is None else ORDERLY_MAX_RECONSUME_TIMES

    async def consume_orderly(self, handler: OrderlyHandler) -> None:
        """Consume an ``orderly=True`` consumer's queues, each strictly in
        queue order, one batch (``consume_message_batch_max_size``) at a time,
        until cancelled (Java's ``MessageListenerOrderly``; see
        :mod:`pyrocket.client.orderly`); at most ``consume_thread_max``
        queues' handlers run at once. Raises RuntimeError if not orderly or
        already running."""
        if self._orderly is None:
            raise RuntimeError("consume_orderly needs PushConsumer(..., orderly=True)")
        await self._orderly.run(handler, self.consume_thread_max)


__all__ = ["ConsumeCalls"]
