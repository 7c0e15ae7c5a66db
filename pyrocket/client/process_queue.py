"""What a push consumer holds of one assigned queue between pulling a message
and its consumption (Java's ``ProcessQueue``): the messages pulled and not yet
acknowledged, by queue offset, their count and body size, and the rule that
gives the offset a consumer may commit.

The committable offset is the smallest offset still unacknowledged: every
message before it has been consumed. With none left it is the offset after
the last pull (the pull's next-begin offset, so messages the client-side tag
filter dropped count as consumed too). Commits never go back: a queue's
consumed offset only moves forward.

Flow control reads :attr:`ProcessQueue.count`, :attr:`ProcessQueue.size` and
:meth:`ProcessQueue.max_span`; an orderly queue's lock state lives here too.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pyrocket.protocol.message import MessageExt

#: ``RebalanceImpl``'s lock timing (s): a held lock is renewed every
#: REBALANCE_LOCK_INTERVAL and counts as lost after REBALANCE_LOCK_MAX_LIVE_TIME
#: without renewal (``ProcessQueue.isLockExpired``).
REBALANCE_LOCK_INTERVAL = 20.0
REBALANCE_LOCK_MAX_LIVE_TIME = 30.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ProcessQueue:
    """The unacknowledged messages of one queue, smallest offset first."""

    def __init__(self) -> None:
        self._messages: dict[int, MessageExt] = {}
        # A min-heap of offsets; entries whose message is gone are skipped
        # lazily, so removing any one message is O(log n) amortised.
        self._heap: list[int] = []
        #: The same offsets negated (a max-heap), skipped lazily likewise.
        self._max_heap: list[int] = []
        #: When each handed-out message started being consumed (ms).
        self._consume_started: dict[int, int] = {}
        self._size = 0
        #: The offset after the last pull that found messages (or none).
        self._after_last = -1
        #: Orderly consumption: whether the broker lock is held and when it
        #: was last renewed (ms, Java's ``lastLockTimestamp``).
        self.locked = False
        self.last_lock_timestamp = _now_ms()
        self.try_unlock_times = 0

    @property
    def count(self) -> int:
        """Messages pulled and not yet acknowledged (``msgCount``)."""
        return len(self._messages)

    @property
    def size(self) -> int:
        """Their body bytes (``msgSize``)."""
        return self._size

    @property
    def max_offset(self) -> int:
        """The largest unacknowledged offset, -1 when none (``msgTreeMap``'s
        last key)."""
        if not self._messages:
            return -1
        heap = self._max_heap
        while -heap[0] not in self._messages:
            heapq.heappop(heap)
        return -heap[0]

    def max_span(self) -> int:
        """Largest minus smallest unacknowledged offset (``getMaxSpan``)."""
        if not self._messages:
            return 0
        return self.max_offset - self._first()

    def min_offset(self) -> int:
        return self._first() if self._messages else 0

    def put(self, messages: Iterable[MessageExt], after: int) -> None:
        """Hold the messages of one pull; ``after`` is the pull's next-begin
        offset (``putMessage``)."""
        for message in messages:
            offset = message.queue_offset
            if offset in self._messages:
                continue
            self._messages[offset] = message
            heapq.heappush(self._heap, offset)
            heapq.heappush(self._max_heap, -offset)
            self._size += len(message.body)
        if after > self._after_last:
            self._after_last = after

    def holds(self, message: MessageExt) -> bool:
        """Whether ``message`` itself (not a copy) waits here."""
        return self._messages.get(message.queue_offset) is message

    def started(self, message: MessageExt) -> None:
        """Note that ``message`` was handed out for consumption now (again:
        its consume time counts from the latest hand-out, as Java stamps
        each run of a consume request)."""
        if self.holds(message):
            self._consume_started[message.queue_offset] = _now_ms()

    def remove(self, messages: Iterable[MessageExt]) -> int:
        """Forget acknowledged ``messages``; returns the committable offset
        afterwards (-1 when nothing was ever pulled) (``removeMessage``).
        Only a message held itself is forgotten: after the queue was cleared
        and read again, an old batch's end leaves the new messages at the
        same offsets waiting."""
        for message in messages:
            if self.holds(message):
                del self._messages[message.queue_offset]
                self._size -= len(message.body)
                self._consume_started.pop(message.queue_offset, None)
        if len(self._heap) > 2 * len(self._messages) + 64:
            self._heap = list(self._messages)
            heapq.heapify(self._heap)
        if len(self._max_heap) > 2 * len(self._messages) + 64:
            self._max_heap = [-o for o in self._messages]
            heapq.heapify(self._max_heap)
        return self.committable()

    def replace(self, message: MessageExt, new: MessageExt) -> None:
        """Hold ``new`` (a copy of ``message`` with changed fields, such as
        its reconsume times) in ``message``'s place."""
        if self.holds(message):
            self._messages[message.queue_offset] = new

    def committable(self) -> int:
        """The smallest unacknowledged offset, else the offset after the
        last pull."""
        if self._messages:
            return self._first()
        return self._after_last

    def head(self, count: int) -> list[MessageExt]:
        """Up to ``count`` unacknowledged messages, smallest offsets first
        (what an orderly queue consumes next, ``takeMessages``)."""
        if count == 1 and self._messages:
            return [self._messages[self._first()]]
        return [self._messages[o] for o in heapq.nsmallest(count, self._messages)]

    def expired(self, older_than_ms: int, limit: int = 16) -> list[MessageExt]:
        """Among the ``limit`` smallest offsets, the messages handed out
        more than ``older_than_ms`` ago (``cleanExpiredMsg``)."""
        now = _now_ms()
        found: list[MessageExt] = []
        for offset in heapq.nsmallest(limit, self._messages):
            started = self._consume_started.get(offset)
            if started is not None and now - started > older_than_ms:
                found.append(self._messages[offset])
        return found

    def lock_expired(self) -> bool:
        """``isLockExpired``: no renewal for REBALANCE_LOCK_MAX_LIVE_TIME."""
        return _now_ms() - self.last_lock_timestamp > REBALANCE_LOCK_MAX_LIVE_TIME * 1000

    def lock_renewed(self) -> None:
        self.locked = True
        self.last_lock_timestamp = _now_ms()

    def clear(self) -> None:
        """Forget everything (the queue was dropped, reset or moved by the
        broker): nothing pulled before counts any more, not even the offset
        after the last pull."""
        self._messages.clear()
        self._heap.clear()
        self._max_heap.clear()
        self._consume_started.clear()
        self._size = 0
        self._after_last = -1

    def _first(self) -> int:
        heap = self._heap
        while heap[0] not in self._messages:
            heapq.heappop(heap)
        return heap[0]


@dataclass(frozen=True, slots=True)
class FlowControl:
    """When a queue's next pull waits (``DefaultMQPushConsumerImpl.pullMessage``):
    too many or too big unacknowledged messages, or (concurrent consumption
    only) too wide a span of offsets between them."""

    #: ``pullThresholdForQueue``, ``pullThresholdSizeForQueue`` (MiB) and
    #: ``consumeConcurrentlyMaxSpan``.
    pull_threshold_for_queue: int = 1000
    pull_threshold_size_for_queue: int = 100
    consume_concurrently_max_span: int = 2000

    def over(self, queue: ProcessQueue, *, orderly: bool) -> bool:
        if queue.count > self.pull_threshold_for_queue:
            return True
        if queue.size > self.pull_threshold_size_for_queue * 1024 * 1024:
            return True
        return not orderly and queue.max_span() > self.consume_concurrently_max_span


#: ``PULL_TIME_DELAY_MILLS_WHEN_FLOW_CONTROL``, in seconds.
PULL_DELAY_WHEN_FLOW_CONTROL = 0.05

__all__ = [
    "PULL_DELAY_WHEN_FLOW_CONTROL",
    "REBALANCE_LOCK_INTERVAL",
    "REBALANCE_LOCK_MAX_LIVE_TIME",
    "FlowControl",
    "ProcessQueue",
]
