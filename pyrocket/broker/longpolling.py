"""Long polling (Java's ``PullRequestHoldService`` and
``NotifyMessageArrivingListener``): a PULL_MESSAGE that finds nothing new is
held, and answered as soon as a matching message is stored or when the
client's suspend timeout passes.

Held pulls are kept per queue. The store calls :meth:`PullRequestHoldService.on_arrival`
after every message it makes readable (it is registered as an arrival
listener); the service then wakes each pull of that queue waiting for an
offset below the new end whose subscription matches the message's tags code.
A woken pull is run again, in a task of the service, without the right to be
held again, and its answer is sent on the client's connection (see
:class:`~pyrocket.broker.processors.pull.PullMessageProcessor`).

Where Java looks at held pulls every 5 seconds (so a timed-out pull can wait
up to 5 s more), this service keeps a deadline heap and answers each pull when
its own timeout passes. Deadlines are on trio's clock.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from pyrocket.broker.store import MessageArrival
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.broker")


class ArrivalFilter(Protocol):
    """Whether a newly stored message may interest a held pull
    (``MessageFilter.isMatchedByConsumeQueue`` / ``isMatchedByCommitLog``
    with what the arrival carries; ``tags_code`` None means unknown: match)."""

    def matches_arrival(self, tags_code: int | None, properties: Mapping[str, str] | None) -> bool:
        """True when the held pull should be run again."""


@dataclass(eq=False, slots=True)
class PullRequest:
    """A held PULL_MESSAGE (Java's ``PullRequest``)."""

    conn: Connection
    request: RemotingCommand
    topic: str
    queue_id: int
    pull_from_offset: int
    message_filter: ArrivalFilter
    deadline: float
    done: bool = field(default=False)


Wake = Callable[[Connection, RemotingCommand], Awaitable[None]]


class PullRequestHoldService:
    """Holds pulls until a message arrives or their time is up.

    ``max_offset_in_queue(topic, queue_id)`` reads the store; ``wake(conn,
    request)`` runs a pull again and answers it (called in a task of the
    service). Run the service with :meth:`run` in the broker's nursery.
    """

    def __init__(self, max_offset_in_queue: Callable[[str, int], int], wake: Wake) -> None:
        self._max_offset = max_offset_in_queue
        self._wake = wake
        self._table: dict[tuple[str, int], list[PullRequest]] = {}
        self._deadlines: list[tuple[float, int, PullRequest]] = []
        self._sequence = itertools.count()
        self._timer: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        #: Pulls answered because a message arrived / because their time was up.
        self.woken_by_arrival = 0
        self.woken_by_timeout = 0

    @property
    def held(self) -> int:
        """Pulls currently held."""
        return sum(len(requests) for requests in self._table.values())

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Answer held pulls as their deadlines pass; report ready at once.
        Cancelling drops the pulls still held (their clients time out and
        pull again, as when a Java broker stops)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                task_status.started()
                await self._timer_loop()
            finally:
                self._nursery = None
                self._table.clear()
                self._deadlines.clear()

    async def _timer_loop(self) -> None:
        heap = self._deadlines
        while True:
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                self._timer = scope
                await trio.sleep_forever()
            self._timer = None
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                _, _, pull = heapq.heappop(heap)
                if pull.done:
                    continue
                requests = self._table.get((pull.topic, pull.queue_id))
                if requests is not None:
                    requests.remove(pull)
                    if not requests:
                        del self._table[(pull.topic, pull.queue_id)]
                self.woken_by_timeout += 1
                self._run_again(pull)

    def suspend_pull_request(self, pull: PullRequest) -> bool:
        """Hold ``pull``; False when the service is not running (the caller
        answers at once). A message that arrived while the pull was being
        processed wakes it right away."""
        if self._nursery is None:
            return False
        key = (pull.topic, pull.queue_id)
        self._table.setdefault(key, []).append(pull)
        heapq.heappush(self._deadlines, (pull.deadline, next(self._sequence), pull))
        timer = self._timer
        if timer is not None and pull.deadline < timer.deadline:
            timer.deadline = pull.deadline
        if self._max_offset(pull.topic, pull.queue_id) > pull.pull_from_offset:
            self.notify_message_arriving(pull.topic, pull.queue_id, 0)
        return True

    def on_arrival(self, arrival: MessageArrival) -> None:
        """The store's arrival listener."""
        if (arrival.topic, arrival.queue_id) in self._table:
            self.notify_message_arriving(
                arrival.topic,
                arrival.queue_id,
                arrival.logic_offset,
                arrival.tags_code,
                arrival.properties,
            )

    def notify_message_arriving(
        self,
        topic: str,
        queue_id: int,
        max_offset: int,
        tags_code: int | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        """Wake the held pulls of a queue that the new end ``max_offset``
        (and the message's tags code, when known) satisfies."""
        key = (topic, queue_id)
        requests = self._table.pop(key, None)
        if not requests:
            return
        kept: list[PullRequest] = []
        now = trio.current_time()
        for pull in requests:
            newest = max_offset
            if newest <= pull.pull_from_offset:
                newest = self._max_offset(topic, queue_id)
            if newest > pull.pull_from_offset and pull.message_filter.matches_arrival(
                tags_code, properties
            ):
                self.woken_by_arrival += 1
                self._run_again(pull)
                continue
            if now >= pull.deadline:
                self.woken_by_timeout += 1
                self._run_again(pull)
                continue
            kept.append(pull)
        if kept:
            self._table.setdefault(key, []).extend(kept)

    def drop_connection(self, conn: Connection) -> None:
        """Forget the pulls held for a closed connection."""
        for key, requests in list(self._table.items()):
            left = []
            for pull in requests:
                if pull.conn is conn:
                    pull.done = True
                else:
                    left.append(pull)
            if left:
                self._table[key] = left
            else:
                del self._table[key]

    def _run_again(self, pull: PullRequest) -> None:
        pull.done = True
        if self._nursery is None or not pull.conn.is_open:
            return
        self._nursery.start_soon(self._wake, pull.conn, pull.request)


__all__ = ["ArrivalFilter", "PullRequest", "PullRequestHoldService", "Wake"]
