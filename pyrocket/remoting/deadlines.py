"""One deadline timer: keys that expire at a time on trio's clock.

A :class:`DeadlineTimer` keeps a heap of ``(deadline, key)`` and one task
(:meth:`DeadlineTimer.run`) that sleeps until the earliest deadline and hands
each expired key to a callback. Entries are deleted lazily: a key that left
early (its call answered, its pull woken) stays in the heap until it comes up,
when the ``live`` check given to the timer skips it, or until the owner prunes
the heap. Pushing an earlier deadline than the one slept to wakes the task.

Used by a connection's pending calls (:mod:`pyrocket.remoting.pending`) and by
the broker's long polling (held pulls answered at their suspend deadline).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Generic, TypeVar

import trio

K = TypeVar("K")

#: Heap entries below which :meth:`DeadlineTimer.push` never prunes.
PRUNE_FLOOR = 1024
#: Heap entries per live key above which :meth:`DeadlineTimer.push` prunes.
PRUNE_RATIO = 4


class DeadlineTimer(Generic[K]):
    """Keys with deadlines; ``live(deadline, key)`` says whether an entry
    still counts (False: the key left early, or was pushed again with another
    deadline). Keys are compared only when two deadlines are equal: make them
    orderable (an int, or a tuple that starts with a unique int)."""

    __slots__ = ("_heap", "_live", "_scope")

    def __init__(self, live: Callable[[float, K], bool]) -> None:
        self._live = live
        self._heap: list[tuple[float, K]] = []
        self._scope: trio.CancelScope | None = None

    def __len__(self) -> int:
        """Entries in the heap, live or not."""
        return len(self._heap)

    def push(self, deadline: float, key: K, live_count: int = -1) -> None:
        """Expire ``key`` at ``deadline``. With ``live_count`` (the keys the
        owner still has), first drop the entries no longer live when they
        outnumber it ``PRUNE_RATIO`` to one and there are over ``PRUNE_FLOOR``."""
        heap = self._heap
        if live_count >= 0 and len(heap) > PRUNE_FLOOR and len(heap) > PRUNE_RATIO * live_count:
            self.prune()
        heapq.heappush(heap, (deadline, key))
        scope = self._scope
        if scope is not None and deadline < scope.deadline:
            scope.deadline = deadline

    def prune(self) -> None:
        """Drop the entries no longer live."""
        heap = self._heap
        live = self._live
        # In place: the running task holds a reference to the list.
        heap[:] = [entry for entry in heap if live(entry[0], entry[1])]
        heapq.heapify(heap)

    def clear(self) -> None:
        """Drop every entry."""
        self._heap.clear()

    async def run(
        self,
        fire: Callable[[K], None],
        *,
        stale: Callable[[K], None] | None = None,
        slice_size: int = 0,
    ) -> None:
        """Call ``fire(key)`` for each live entry whose deadline passed (and
        ``stale(key)`` for each entry popped that was not live), forever,
        until cancelled. With ``slice_size``, checkpoint after every that
        many keys fired, so that many expiring at once do not hold the loop."""
        heap = self._heap
        live = self._live
        while True:
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            now = trio.current_time()
            fired = 0
            while heap and heap[0][0] <= now:
                deadline, key = heapq.heappop(heap)
                if not live(deadline, key):
                    if stale is not None:
                        stale(key)
                    continue
                fire(key)
                fired += 1
                if slice_size and fired % slice_size == 0:
                    await trio.lowlevel.checkpoint()
