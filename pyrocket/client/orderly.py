"""Orderly consumption for a push consumer (Java's
``ConsumeMessageOrderlyService`` and the lock half of ``RebalanceImpl``).

A queue is consumed only while this client holds its lock on the queue's
master broker: rebalance locks a newly assigned queue (LOCK_BATCH_MQ) before
pulling it and skips it until the lock is granted; every 20 s all held
queues are locked again, and a queue the broker no longer grants, or whose
lock was not renewed for 30 s, stops being consumed until it is locked
again (one the broker no longer grants is not pulled meanwhile either; one
whose lock merely lapsed still is, as in Java). A queue given away is
unlocked (UNLOCK_BATCH_MQ) once the batch being consumed, if any, is
finished (its lock renewed and the queue not taken up again meanwhile);
closing unlocks every queue.

Per queue one task hands the next ``batch_size`` messages, smallest offsets
first, to the handler and waits for its answer: SUCCESS consumes them;
SUSPEND_CURRENT_QUEUE_A_MOMENT (or an exception, or None) retries the same
messages after ``suspend_millis`` with their reconsume times one higher,
except that a message already tried ``max_reconsume_times`` times goes to
the group's dead-letter topic (a copy to ``%RETRY%<group>`` whose
RECONSUME_TIME has reached MAX_RECONSUME_TIMES, as Java sends it) and
consumption moves past it.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

import trio

from pyrocket.client.calls import invoke_checked
from pyrocket.client.consume_concurrently import ConsumeStatsHook, call_handler
from pyrocket.client.consume_stats import queue_topic_of
from pyrocket.client.instance import ClientInstance
from pyrocket.client.process_queue import REBALANCE_LOCK_INTERVAL
from pyrocket.client.pulling import Batch, QueueState, now_ms
from pyrocket.client.sendback import MessageBack
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import (
    LockBatchRequestBody,
    LockBatchResponseBody,
    MessageQueue,
    UnlockBatchRequestBody,
)
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.message import MessageExt

log = logging.getLogger("pyrocket.client.consumer")

#: How long a drop waits for the batch being consumed before unlocking
#: later (``removeUnnecessaryMessageQueue``'s tryLock of 1 s).
CONSUME_LOCK_WAIT = 1.0
#: ``tryLockLaterAndReconsume``: the wait before locking one queue again,
#: and before the next attempt when that failed (s).
RELOCK_DELAY = 0.1
RELOCK_FAILED_DELAY = 3.0
#: Java's Integer.MAX_VALUE: an orderly consumer's max reconsume times for -1.
ORDERLY_MAX_RECONSUME_TIMES = 2**31 - 1


def _dropped(state: QueueState) -> bool:
    # Read again after a checkpoint: another task may have dropped it.
    return state.dropped


class ConsumeOrderlyStatus(enum.Enum):
    """What an orderly handler says of its batch (Java's enum). COMMIT and
    ROLLBACK are deprecated in Java and, as there with auto-commit, count as
    SUCCESS (with a warning)."""

    SUCCESS = "SUCCESS"
    ROLLBACK = "ROLLBACK"
    COMMIT = "COMMIT"
    SUSPEND_CURRENT_QUEUE_A_MOMENT = "SUSPEND_CURRENT_QUEUE_A_MOMENT"


#: An orderly listener: the batch in, its outcome out (sync or async).
OrderlyHandler = Callable[
    [list[MessageExt]],
    ConsumeOrderlyStatus | Awaitable[ConsumeOrderlyStatus | None] | None,
]


@dataclasses.dataclass(frozen=True, slots=True)
class OrderlySettings:
    batch_size: int
    suspend_millis: int
    max_reconsume_times: Callable[[], int]
    lock_interval: float = REBALANCE_LOCK_INTERVAL


class OrderlyService:
    """Queue locks and the per-queue consume tasks of one orderly consumer."""

    def __init__(
        self,
        instance: ClientInstance,
        group: str,
        queues: Callable[[], Iterable[QueueState]],
        back: MessageBack,
        settings: OrderlySettings,
        timeout: float,
    ) -> None:
        self.instance = instance
        self.group = group
        self._queues = queues
        self._back = back
        self.settings = settings
        self._timeout = timeout
        self._changed = trio.Event()
        self._arrived: dict[QueueState, trio.Event] = {}
        #: Queues given away whose batch was still running after
        #: CONSUME_LOCK_WAIT: not taken up again until it ends and the lock
        #: is given back (Java keeps such a queue in its table meanwhile).
        self._releasing: dict[MessageQueue, QueueState] = {}
        self._running = False
        #: Worker threads for a sync handler (beside the slots ``run`` holds).
        self._threads = trio.CapacityLimiter(1)
        #: Set by whoever keeps consume statistics.
        self.stats: ConsumeStatsHook | None = None

    # ------------------------------------------------------------------
    # Locks

    async def lock_batch(self, broker_name: str, queues: list[MessageQueue]) -> set[MessageQueue]:
        """LOCK_BATCH_MQ at the master of ``broker_name``: the queues now
        held. Raises PyrocketError, or ClientError without a master."""
        addr = self.instance.master_addr(broker_name)
        if addr is None:
            raise PyrocketError(f"no master address of broker {broker_name}")
        body = LockBatchRequestBody(self.group, self.instance.client_id, tuple(queues))
        request = RemotingCommand.request(RequestCode.LOCK_BATCH_MQ, None, body=body.encode())
        response = await invoke_checked(self.instance.remoting, addr, request, self._timeout)
        return set(LockBatchResponseBody.decode(response.body or b"{}").lock_ok_mq_set)

    async def unlock_batch(self, broker_name: str, queues: list[MessageQueue]) -> None:
        """UNLOCK_BATCH_MQ at the master of ``broker_name`` (failures logged)."""
        addr = self.instance.master_addr(broker_name)
        if addr is None or not queues:
            return
        body = UnlockBatchRequestBody(self.group, self.instance.client_id, tuple(queues))
        request = RemotingCommand.request(RequestCode.UNLOCK_BATCH_MQ, None, body=body.encode())
        try:
            await invoke_checked(self.instance.remoting, addr, request, self._timeout)
        except PyrocketError as exc:
            log.warning("%s: unlocking %d queues at %s failed: %s", self.group, len(queues),
                        addr, exc)  # fmt: skip

    async def lock_one(self, queue: MessageQueue) -> bool:
        """Lock one queue (``RebalanceImpl.lock``); False when refused or failed."""
        try:
            return queue in await self.lock_batch(queue.broker_name or "", [queue])
        except PyrocketError as exc:
            log.warning("%s: locking %s failed: %s", self.group, queue, exc)
            return False

    async def lock_assigned(self, queue: MessageQueue) -> bool:
        """Lock a queue rebalance is to read; False while a batch of its
        previous reading still runs (so two tasks never consume it at once
        and that batch's delayed unlock cannot release the new lock)."""
        if queue in self._releasing:
            return False
        return await self.lock_one(queue)

    async def lock_all(self) -> None:
        """``lockAll``: lock every held queue again, per broker; a queue the
        broker did not grant counts as unlocked. A queue given away whose
        batch still runs is renewed too (Java's table still holds it), so
        its lock cannot lapse to another consumer before the batch ends."""
        by_broker: dict[str, list[QueueState]] = defaultdict(list)
        for state in [*self._queues(), *self._releasing.values()]:
            if not state.dropped or self._releasing.get(state.queue) is state:
                by_broker[state.queue.broker_name or ""].append(state)
        for broker, states in by_broker.items():
            try:
                granted = await self.lock_batch(broker, [s.queue for s in states])
            except PyrocketError as exc:
                log.warning("%s: locking the queues of %s failed: %s", self.group, broker, exc)
                continue
            for state in states:
                if state.queue in granted:
                    state.process.lock_renewed()
                elif state.process.locked:
                    log.warning("%s: lost the lock of %s", self.group, state.queue)
                    state.process.locked = False

    async def lock_all_forever(self) -> None:
        while True:
            await trio.sleep(self.settings.lock_interval)
            await self.lock_all()

    async def release(self, state: QueueState) -> None:
        """Unlock a dropped queue once its current batch is done
        (``removeUnnecessaryMessageQueue``); a batch still running after 1 s
        is waited for in the background."""
        with trio.move_on_after(CONSUME_LOCK_WAIT):
            async with state.consume_lock:
                await self.unlock_batch(state.queue.broker_name or "", [state.queue])
                state.process.locked = False
                return
        state.process.try_unlock_times += 1
        self._releasing[state.queue] = state
        self.instance.nursery.start_soon(self._release_when_idle, state)

    async def _release_when_idle(self, state: QueueState) -> None:
        try:
            async with state.consume_lock:
                await self.unlock_batch(state.queue.broker_name or "", [state.queue])
                state.process.locked = False
        finally:
            if self._releasing.get(state.queue) is state:
                del self._releasing[state.queue]

    async def unlock_all(self, states: Iterable[QueueState]) -> None:
        """``unlockAll`` on close: ``states`` and the queues given away whose
        batch still runs."""
        by_broker: dict[str, list[MessageQueue]] = defaultdict(list)
        for state in [*states, *self._releasing.values()]:
            if state.process.locked:
                by_broker[state.queue.broker_name or ""].append(state.queue)
                state.process.locked = False
        for broker, queues in by_broker.items():
            await self.unlock_batch(broker, queues)

    # ------------------------------------------------------------------
    # Consuming

    async def deliver(self, item: Batch) -> None:
        """A pull found messages (already held by the queue): wake its task."""
        event = self._arrived.get(item[0])
        if event is not None:
            event.set()

    def queue_added(self) -> None:
        self._changed.set()

    async def run(self, handler: OrderlyHandler, concurrency: int) -> None:
        """One consume task per held queue, until cancelled; at most
        ``concurrency`` handler calls at once (Java's consume thread pool)."""
        if self._running:
            raise RuntimeError("consume_orderly is already running")
        self._running = True
        self._threads = trio.CapacityLimiter(concurrency)
        try:
            await self._run(handler, trio.CapacityLimiter(concurrency))
        finally:
            self._running = False

    async def _run(self, handler: OrderlyHandler, threads: trio.CapacityLimiter) -> None:
        started: set[QueueState] = set()
        async with trio.open_nursery() as nursery:
            while True:
                self._changed = trio.Event()
                for state in list(self._queues()):
                    if state not in started and not state.dropped:
                        started.add(state)
                        self._arrived[state] = trio.Event()
                        nursery.start_soon(self._consume_queue, state, handler, threads)
                started = {s for s in started if not s.dropped}
                await self._changed.wait()

    async def _consume_queue(
        self, state: QueueState, handler: OrderlyHandler, threads: trio.CapacityLimiter
    ) -> None:
        try:
            await self._consume_loop(state, handler, threads)
        finally:
            self._arrived.pop(state, None)

    async def _consume_loop(
        self, state: QueueState, handler: OrderlyHandler, threads: trio.CapacityLimiter
    ) -> None:
        pq = state.process
        while not state.dropped:
            if not pq.locked or pq.lock_expired():
                await trio.sleep(RELOCK_DELAY)
                if _dropped(state):
                    return
                if await self.lock_one(state.queue):
                    pq.lock_renewed()
                else:
                    await trio.sleep(RELOCK_FAILED_DELAY)
                continue
            arrived = self._arrived[state] = trio.Event()
            batch = pq.head(self.settings.batch_size)
            if not batch:
                with trio.move_on_after(1.0):  # and look at the lock again
                    await arrived.wait()
                continue
            async with state.consume_lock:
                if _dropped(state):
                    return
                suspend = await self._consume_batch(state, handler, batch, threads)
            if suspend:
                await trio.sleep(self.settings.suspend_millis / 1000)

    async def _consume_batch(
        self,
        state: QueueState,
        handler: OrderlyHandler,
        batch: list[MessageExt],
        threads: trio.CapacityLimiter,
    ) -> bool:
        """Run the handler on ``batch``; True when the queue is to wait."""
        for message in batch:
            state.process.started(message)
        state.last_consume_timestamp = now_ms()
        started = time.perf_counter()
        status: object
        try:
            async with threads:
                status = await call_handler(handler, list(batch), self._threads)
        except Exception:
            log.exception("%s: the orderly handler failed on %s", self.group, state.queue)
            status = ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
        # Consume statistics (Java's incConsumeRT / incConsumeOKTPS /
        # incConsumeFailedTPS) are recorded here.
        rt_ms = (time.perf_counter() - started) * 1000
        if status in (ConsumeOrderlyStatus.COMMIT, ConsumeOrderlyStatus.ROLLBACK):
            log.warning("%s: %s is deprecated; taken as SUCCESS", self.group, status)
            status = ConsumeOrderlyStatus.SUCCESS
        if status is ConsumeOrderlyStatus.SUCCESS:
            self._record(batch, len(batch), 0, rt_ms)
            state.acknowledge(batch)
            return False
        self._record(batch, 0, len(batch), rt_ms)
        if not await self._check_reconsume_times(state, batch):
            state.acknowledge(batch)
            return False
        return True

    async def _check_reconsume_times(self, state: QueueState, batch: list[MessageExt]) -> bool:
        """``checkReconsumeTimes``: a message tried too often goes to the
        dead-letter topic; the others (and one that could not be sent) are
        tried again with their reconsume times one higher. True when the
        batch is to be tried again."""
        suspend = False
        limit = self.settings.max_reconsume_times()
        for message in batch:
            if message.reconsume_times >= limit:
                try:
                    await self._back.resend(message, message.reconsume_times)
                    log.info("%s: message %s goes to the dead-letter topic", self.group,
                             message.msg_id)  # fmt: skip
                    continue
                except PyrocketError as exc:
                    log.warning("%s: message %s not sent back: %s", self.group, message.msg_id,
                                exc)  # fmt: skip
            again = dataclasses.replace(message, reconsume_times=message.reconsume_times + 1)
            state.process.replace(message, again)
            suspend = True
        return suspend

    def _record(self, batch: list[MessageExt], ok: int, failed: int, rt_ms: float) -> None:
        if self.stats is not None and batch:
            self.stats.consumed(queue_topic_of(batch[0], self.group), ok, failed, rt_ms)


__all__ = [
    "ORDERLY_MAX_RECONSUME_TIMES",
    "ConsumeOrderlyStatus",
    "OrderlyHandler",
    "OrderlyService",
    "OrderlySettings",
]
