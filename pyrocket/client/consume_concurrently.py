"""Per-message outcome for a push consumer's concurrent consumption (Java's
``ConsumeMessageConcurrentlyService``).

A pulled message stays in its queue's
:class:`~pyrocket.client.process_queue.ProcessQueue` until it is
acknowledged; the queue's committed offset is the smallest offset still
unacknowledged. Three ways end a message's wait:

* :meth:`ConcurrentService.ack`: consumed;
* :meth:`ConcurrentService.reconsume_later`: given back to the broker
  (CONSUMER_SEND_MSG_BACK, else a copy sent to ``%RETRY%<group>``) and so
  consumed here; when both fail it is handed out again after 5 s with its
  reconsume times one higher (``submitConsumeRequestLater``);
* a message handed out longer than ``consume_timeout`` ago is given back
  with delay level 3 (``cleanExpireMsg``).

:meth:`ConcurrentService.run` is the listener form: batches of up to
``consume_message_batch_max_size`` messages go to a handler, at most
``concurrency`` at once; it returns a :class:`ConsumeConcurrentlyStatus`
(None or an exception counts as RECONSUME_LATER, as Java's null status and
thrown exceptions do). A sync handler runs in a worker thread, as Java's
listener runs on its consume thread pool; an async one runs as a task.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

import trio

from pyrocket.client.consume_stats import queue_topic_of
from pyrocket.client.delivery import Delivery
from pyrocket.client.pulling import QueueState
from pyrocket.client.sendback import MessageBack
from pyrocket.errors import PyrocketError
from pyrocket.protocol.message import MessageExt

log = logging.getLogger("pyrocket.client.consumer")

#: ``submitConsumeRequestLater``'s delay (s) after a failed send-back.
CONSUME_LATER_DELAY = 5.0
#: The delay level an expired message goes back with (``cleanExpireMsg``).
EXPIRED_DELAY_LEVEL = 3


class ConsumeConcurrentlyStatus(enum.Enum):
    """What a concurrent handler says of its batch (Java's enum)."""

    CONSUME_SUCCESS = "CONSUME_SUCCESS"
    RECONSUME_LATER = "RECONSUME_LATER"


#: A concurrent listener: the batch in, its outcome out (sync or async).
ConcurrentHandler = Callable[
    [list[MessageExt]],
    ConsumeConcurrentlyStatus | Awaitable[ConsumeConcurrentlyStatus | None] | None,
]


class ConsumeStatsHook(Protocol):
    """Where consume statistics are recorded (Java's ``ConsumerStatsManager``
    calls in the consume services): one call per handled batch."""

    def consumed(self, topic: str, ok: int, failed: int, rt_ms: float) -> None: ...


async def call_handler(
    handler: Callable[[list[MessageExt]], object],
    messages: list[MessageExt],
    threads: trio.CapacityLimiter,
) -> object:
    """``handler(messages)``: awaited when it is a coroutine function, else
    run in a worker thread (its result awaited if it is awaitable)."""
    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004
    ):
        return await handler(messages)  # type: ignore[misc]
    result = await trio.to_thread.run_sync(handler, messages, limiter=threads)
    if inspect.isawaitable(result):
        return await result
    return result


class ConcurrentService:
    """The acknowledgement, give-back and listener rules of one consumer."""

    def __init__(
        self,
        group: str,
        queues: Callable[[], Iterable[QueueState]],
        delivery: Delivery,
        back: MessageBack,
        nursery: Callable[[], trio.Nursery],
        broadcasting: Callable[[], bool] = lambda: False,
    ) -> None:
        self.group = group
        self._queues = queues
        self._delivery = delivery
        self._back = back
        self._nursery = nursery
        self._broadcasting = broadcasting
        #: Set by whoever keeps consume statistics.
        self.stats: ConsumeStatsHook | None = None

    def find(self, message: MessageExt) -> QueueState | None:
        """The queue still holding ``message`` unacknowledged, if any."""
        for state in self._queues():
            if state.process.holds(message):
                return state
        return None

    def _holders(self, messages: Iterable[MessageExt]) -> list[tuple[QueueState, MessageExt]]:
        found = ((self.find(m), m) for m in messages)
        return [(s, m) for s, m in found if s is not None]

    def ack(self, messages: Sequence[MessageExt]) -> int:
        """Acknowledge ``messages``; returns how many were still waiting."""
        done = 0
        for message in messages:
            state = self.find(message)
            if state is not None:
                state.acknowledge([message])
                done += 1
        return done

    async def reconsume_later(self, message: MessageExt, delay_level: int) -> bool:
        """Give ``message`` back. True when the broker took it; False when
        both ways failed and it comes back here after 5 s. A message no
        queue holds any more (acknowledged, auto-acknowledged, its queue
        gone) is sent back all the same and a failure raises
        PyrocketError. A broadcasting consumer sends nothing back: the
        message is dropped with a warning (True), as Java drops it."""
        state = self.find(message)
        if state is None:
            if self._broadcasting():
                self._drop(message, None)
                return True
            await self._back.send_back(message, delay_level, None)
            return True
        failed = await self.give_back([message], delay_level)
        for again_state, again in failed:
            self._nursery().start_soon(self._redeliver_later, again_state, again)
        return not failed

    async def give_back(
        self, messages: Sequence[MessageExt], delay_level: int
    ) -> list[tuple[QueueState, MessageExt]]:
        """``processConsumeResult`` for RECONSUME_LATER: each message sent
        back is acknowledged; the ones that could not be come back with
        their reconsume times one higher, still unacknowledged."""
        failed: list[tuple[QueueState, MessageExt]] = []
        for message in messages:
            state = self.find(message)
            if state is None:
                continue
            if self._broadcasting():
                self._drop(message, state)
                continue
            try:
                await self._back.send_back(message, delay_level, state.queue.broker_name)
            except PyrocketError as exc:
                log.warning(
                    "%s: message %s not given back (%s); consuming it again here",
                    self.group,
                    message.msg_id,
                    exc,
                )
                again = dataclasses.replace(message, reconsume_times=message.reconsume_times + 1)
                state.process.replace(message, again)
                failed.append((state, again))
                continue
            state.acknowledge([message])
        return failed

    def _drop(self, message: MessageExt, state: QueueState | None) -> None:
        # Broadcasting has no retry topic: Java drops a failed message.
        log.warning(
            "%s: BROADCASTING, the message %s failed and is dropped", self.group, message.msg_id
        )
        if state is not None:
            state.acknowledge([message])

    async def _redeliver_later(self, state: QueueState, message: MessageExt) -> None:
        await trio.sleep(CONSUME_LATER_DELAY)
        if not state.dropped and state.process.holds(message):
            self._delivery.redeliver(state, message)

    async def run(self, handler: ConcurrentHandler, concurrency: int, batch_size: int) -> None:
        """Hand batches to ``handler`` until the consumer closes."""
        limiter = trio.CapacityLimiter(concurrency)
        threads = trio.CapacityLimiter(concurrency)
        async with trio.open_nursery() as nursery:
            while True:
                token = object()
                await limiter.acquire_on_behalf_of(token)
                try:
                    messages = await self._delivery.poll(batch_size, math.inf, auto_ack=False)
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    limiter.release_on_behalf_of(token)
                    break
                except BaseException:
                    limiter.release_on_behalf_of(token)
                    raise
                nursery.start_soon(self._consume, handler, messages, limiter, token, threads)

    async def _consume(
        self,
        handler: ConcurrentHandler,
        messages: list[MessageExt],
        limiter: trio.CapacityLimiter,
        token: object,
        threads: trio.CapacityLimiter,
    ) -> None:
        try:
            failed = await self._consume_once(handler, messages, threads)
        finally:
            limiter.release_on_behalf_of(token)
        while failed:
            # ``submitConsumeRequestLater``: what could not be given back is
            # consumed again here later, without holding a slot meanwhile.
            await trio.sleep(CONSUME_LATER_DELAY)
            again = [m for s, m in failed if not s.dropped and s.process.holds(m)]
            if not again:
                return
            token = object()
            await limiter.acquire_on_behalf_of(token)
            try:
                failed = await self._consume_once(handler, again, threads)
            finally:
                limiter.release_on_behalf_of(token)

    async def _consume_once(
        self, handler: ConcurrentHandler, messages: list[MessageExt], threads: trio.CapacityLimiter
    ) -> list[tuple[QueueState, MessageExt]]:
        """One handler call and its outcome; returns the messages that could
        not be given back."""
        for state, message in self._holders(messages):
            state.process.started(message)
        started = time.perf_counter()
        status: object
        try:
            status = await call_handler(handler, list(messages), threads)
        except Exception:
            log.exception("%s: the consume handler failed; reconsuming later", self.group)
            status = ConsumeConcurrentlyStatus.RECONSUME_LATER
        # Consume statistics (Java's incConsumeRT / incConsumeOKTPS /
        # incConsumeFailedTPS) are recorded here.
        rt_ms = (time.perf_counter() - started) * 1000
        if status is not ConsumeConcurrentlyStatus.CONSUME_SUCCESS:
            if status is not ConsumeConcurrentlyStatus.RECONSUME_LATER:
                log.warning("%s: the handler returned %r; reconsuming later", self.group, status)
            self._record(messages, 0, len(messages), rt_ms)
            return await self.give_back(messages, 0)
        self._record(messages, len(messages), 0, rt_ms)
        self.ack(messages)
        return []

    def _record(self, messages: Sequence[MessageExt], ok: int, failed: int, rt_ms: float) -> None:
        if self.stats is not None and messages:
            self.stats.consumed(queue_topic_of(messages[0], self.group), ok, failed, rt_ms)

    async def clean_expired(self, consume_timeout: float) -> None:
        """Give back what has been handed out longer than
        ``consume_timeout`` seconds without an answer (``cleanExpireMsg``)."""
        for state in list(self._queues()):
            for message in state.process.expired(int(consume_timeout * 1000)):
                try:
                    await self._back.send_back(
                        message, EXPIRED_DELAY_LEVEL, state.queue.broker_name
                    )
                except PyrocketError as exc:
                    log.warning(
                        "%s: expired message %s not given back: %s", self.group, message.msg_id, exc
                    )
                    continue
                log.info("%s: message %s expired; given back", self.group, message.msg_id)
                state.acknowledge([message])


__all__ = [
    "CONSUME_LATER_DELAY",
    "ConcurrentHandler",
    "ConcurrentService",
    "ConsumeConcurrentlyStatus",
    "ConsumeStatsHook",
    "call_handler",
]
