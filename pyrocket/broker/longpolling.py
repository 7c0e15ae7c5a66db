"""Long polling (Java's ``PullRequestHoldService``, ``ManyPullRequest`` and
``NotifyMessageArrivingListener``): a PULL_MESSAGE that finds nothing new is
held, and answered as soon as a matching message is stored or when the
client's suspend timeout passes.

Held pulls are indexed twice: per queue (``(topic, queue id)``), so that an
arrival looks only at the pulls of its own queue, and per connection, so that
a closing connection releases its pulls without a scan of every queue and so
that each connection holds at most ``max_held_per_connection`` pulls (a pull
beyond that is answered at once, as one without the suspend flag). Both
indexes are insertion-ordered dicts keyed by a sequence number, so a pull
leaves them in constant time.

The store calls :meth:`PullRequestHoldService.on_arrival` after every message
it makes readable (it is registered as an arrival listener). That call only
notes the arrival: a dispatcher task of the service then goes through the
queue's pulls in slices (yielding between slices), moving each pull whose
offset the new end passes and whose subscription matches the message's tags
code to the woken pulls of its connection. A few wake workers answer woken
pulls connection by connection, one pull per turn, so that waking 20,000
pulls never keeps the event loop from other clients for long, and a peer that
does not read its answers delays only its own. A woken pull is run again
without the right to be held again, and its answer is sent on the client's
connection (see :class:`~pyrocket.broker.processors.pull.PullMessageProcessor`).

Held pulls wait on the arrival listener rather than on each queue's
``max_offset_value`` (an ``AsyncValue``): that value exists only once a queue
object does, and a pull of a queue never written must not create one; the
listener also carries the tags code the subscription filter needs.

Where Java looks at held pulls every 5 seconds (so a timed-out pull can wait
up to 5 s more), this service keeps a deadline heap
(:class:`~pyrocket.remoting.deadlines.DeadlineTimer`) and answers each pull
when its own timeout passes. Deadlines are on trio's clock. Heap entries of pulls
that left early (woken, or dropped with their connection) are pruned once they
are the majority, so memory follows the pulls actually held, whatever their
timeouts.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import trio

from pyrocket.broker.store import MessageArrival
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import PullMessageRequestHeader
from pyrocket.remoting import Connection
from pyrocket.remoting.deadlines import DeadlineTimer

log = logging.getLogger("pyrocket.broker")

#: Pulls one connection may have held at once. A Java client holds one per
#: queue it consumes from this broker (all its consumer groups together).
MAX_HELD_PER_CONNECTION: Final = 1024
#: Held pulls looked at (on an arrival) or released (at their deadline)
#: between two checkpoints.
SLICE: Final = 256
#: Tasks answering woken pulls.
WAKE_WORKERS: Final = 4
#: Tags codes of arrivals not yet looked at kept per queue; beyond that any
#: tags code matches (a pull woken for nothing finds only messages it filters
#: out, is answered PULL_RETRY_IMMEDIATELY, and the client pulls again).
MAX_PENDING_CODES: Final = 16


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
    #: The request's header, decoded once.
    header: PullMessageRequestHeader | None = field(default=None)
    #: Set once the pull has left the held tables (woken or dropped).
    done: bool = field(default=False)
    sequence: int = field(default=0)


Wake = Callable[["PullRequest"], Awaitable[None]]


def _still_held(deadline: float, key: tuple[int, PullRequest]) -> bool:
    return not key[1].done


class _PendingArrival:
    """What arrived in one queue since its pulls were last looked at: the
    newest end and the tags codes (None: any)."""

    __slots__ = ("codes", "max_offset")

    def __init__(self, max_offset: int, tags_code: int | None) -> None:
        self.max_offset = max_offset
        self.codes: set[int] | None = None if tags_code is None else {tags_code}

    def add(self, max_offset: int, tags_code: int | None) -> None:
        self.max_offset = max(self.max_offset, max_offset)
        codes = self.codes
        if codes is None:
            return
        if tags_code is None or len(codes) >= MAX_PENDING_CODES:
            self.codes = None
        else:
            codes.add(tags_code)

    def matches(self, message_filter: ArrivalFilter) -> bool:
        if self.codes is None:
            return message_filter.matches_arrival(None, None)
        return any(message_filter.matches_arrival(code, None) for code in self.codes)


class PullRequestHoldService:
    """Holds pulls until a message arrives or their time is up.

    ``max_offset_in_queue(topic, queue_id)`` reads the store; ``wake(pull)``
    runs a held pull again and answers it (called in a wake worker).
    Run the service with :meth:`run` in the broker's nursery.
    """

    def __init__(
        self,
        max_offset_in_queue: Callable[[str, int], int],
        wake: Wake,
        *,
        max_held_per_connection: int = MAX_HELD_PER_CONNECTION,
        workers: int = WAKE_WORKERS,
        slice_size: int = SLICE,
    ) -> None:
        if max_held_per_connection < 0 or workers < 1 or slice_size < 1:
            raise ValueError("bad hold service limits")
        self._max_offset = max_offset_in_queue
        self._wake = wake
        self.max_held_per_connection = max_held_per_connection
        self._workers = workers
        self._slice = slice_size
        self._queues: dict[tuple[str, int], dict[int, PullRequest]] = {}
        self._by_conn: dict[Connection, dict[int, PullRequest]] = {}
        self._held = 0
        # (sequence, pull) of every held pull, by its deadline.
        self._deadlines: DeadlineTimer[tuple[int, PullRequest]] = DeadlineTimer(_still_held)
        self._dead_entries = 0  # heap entries of pulls no longer held
        self._sequence = itertools.count()
        self._arrivals: dict[tuple[str, int], _PendingArrival] = {}
        self._arrival_lot = trio.lowlevel.ParkingLot()
        # Woken pulls per connection, and the connections whose turn it is
        # (a connection being answered by a worker is in neither _ready nor
        # free of _woken: the worker puts it back when it has more).
        self._woken: dict[Connection, deque[PullRequest]] = {}
        self._ready: deque[Connection] = deque()
        self._worker_lot = trio.lowlevel.ParkingLot()
        self._running = False
        #: Pulls answered because a message arrived / because their time was up.
        self.woken_by_arrival = 0
        self.woken_by_timeout = 0
        #: Pulls answered at once because their connection held its maximum.
        self.refused_over_limit = 0

    # -- state ----------------------------------------------------------------

    @property
    def held(self) -> int:
        """Pulls currently held."""
        return self._held

    @property
    def waking(self) -> int:
        """Pulls woken and not yet answered."""
        return sum(len(pulls) for pulls in self._woken.values())

    def held_by(self, conn: Connection) -> int:
        """Pulls held for ``conn``."""
        pulls = self._by_conn.get(conn)
        return len(pulls) if pulls is not None else 0

    def table_sizes(self) -> dict[str, int]:
        """Entries of every internal table (all 0 when nothing is held)."""
        return {
            "queues": len(self._queues),
            "connections": len(self._by_conn),
            "deadlines": len(self._deadlines),
            "arrivals": len(self._arrivals),
            "woken": len(self._woken),
            "ready": len(self._ready),
        }

    # -- running --------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Answer held pulls as messages arrive and deadlines pass; report
        ready at once. Cancelling drops the pulls still held (their clients
        time out and pull again, as when a Java broker stops)."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._dispatch_loop)
                for _ in range(self._workers):
                    nursery.start_soon(self._worker_loop)
                self._running = True
                task_status.started()
                await self._deadlines.run(
                    self._time_up, stale=self._forget_entry, slice_size=self._slice
                )
        finally:
            self._running = False
            for pulls in self._by_conn.values():
                for pull in pulls.values():
                    pull.done = True
            self._queues.clear()
            self._by_conn.clear()
            self._held = 0
            self._deadlines.clear()
            self._dead_entries = 0
            self._arrivals.clear()
            self._woken.clear()
            self._ready.clear()

    def _time_up(self, key: tuple[int, PullRequest]) -> None:
        pull = key[1]
        self._release(pull, in_heap=False)
        self.woken_by_timeout += 1
        self._to_answer(pull)

    def _forget_entry(self, key: tuple[int, PullRequest]) -> None:
        self._dead_entries -= 1

    async def _dispatch_loop(self) -> None:
        arrivals = self._arrivals
        while True:
            if not arrivals:
                await self._arrival_lot.park()
                continue
            key = next(iter(arrivals))
            arrival = arrivals.pop(key)
            pulls = self._queues.get(key)
            if not pulls:
                continue
            topic, queue_id = key
            store_end: int | None = None
            now = trio.current_time()
            for count, pull in enumerate(list(pulls.values()), start=1):
                if count % self._slice == 0:
                    await trio.lowlevel.checkpoint()
                    now = trio.current_time()
                if pull.done:
                    continue
                newest = arrival.max_offset
                if newest <= pull.pull_from_offset:
                    if store_end is None:
                        store_end = self._max_offset(topic, queue_id)
                    newest = store_end
                if newest > pull.pull_from_offset and arrival.matches(pull.message_filter):
                    self.woken_by_arrival += 1
                elif now >= pull.deadline:
                    self.woken_by_timeout += 1
                else:
                    continue
                self._release(pull)
                self._to_answer(pull)

    async def _worker_loop(self) -> None:
        ready = self._ready
        woken = self._woken
        while True:
            if not ready:
                await self._worker_lot.park()
                continue
            conn = ready.popleft()
            pulls = woken.get(conn)
            if not pulls:
                woken.pop(conn, None)
                continue
            pull = pulls.popleft()
            try:
                if conn.is_open:
                    await self._wake(pull)
                else:
                    await trio.lowlevel.checkpoint()
            finally:
                if woken.get(conn) is pulls:
                    if pulls and conn.is_open:
                        ready.append(conn)
                        self._worker_lot.unpark()
                    else:
                        del woken[conn]

    # -- holding --------------------------------------------------------------

    def suspend_pull_request(self, pull: PullRequest) -> bool:
        """Hold ``pull``; False when it cannot be held (the caller answers at
        once): the service is not running, the connection is closing, or
        it holds ``max_held_per_connection`` pulls already. A message that
        arrived while the pull was being processed wakes it right away."""
        if not self._running or not pull.conn.is_open:
            return False
        conn_pulls = self._by_conn.get(pull.conn)
        if conn_pulls is None:
            if self.max_held_per_connection == 0:
                return self._refuse(pull)
            conn_pulls = self._by_conn[pull.conn] = {}
        elif len(conn_pulls) >= self.max_held_per_connection:
            return self._refuse(pull)
        if pull.header is not None:
            # With the header decoded, the request is kept only to be
            # answered: its fields (and any body, meaningless in a pull) go.
            pull.request = dataclasses.replace(pull.request, ext_fields=None, body=None)
        elif pull.request.body:
            pull.request = dataclasses.replace(pull.request, body=None)
        sequence = next(self._sequence)
        pull.sequence = sequence
        key = (pull.topic, pull.queue_id)
        queue_pulls = self._queues.get(key)
        if queue_pulls is None:
            queue_pulls = self._queues[key] = {}
        queue_pulls[sequence] = pull
        conn_pulls[sequence] = pull
        self._held += 1
        self._deadlines.push(pull.deadline, (sequence, pull))
        if self._max_offset(pull.topic, pull.queue_id) > pull.pull_from_offset:
            self.notify_message_arriving(pull.topic, pull.queue_id, 0)
        return True

    def _refuse(self, pull: PullRequest) -> bool:
        self.refused_over_limit += 1
        if self.refused_over_limit % 1000 == 1:
            log.warning(
                "%s holds %d pulls already, answering at once (%d times so far)",
                pull.conn.remote_address,
                self.max_held_per_connection,
                self.refused_over_limit,
            )
        return False

    def on_arrival(self, arrival: MessageArrival) -> None:
        """The store's arrival listener (constant time: the dispatcher looks
        at the queue's pulls)."""
        if (arrival.topic, arrival.queue_id) in self._queues:
            self.notify_message_arriving(
                arrival.topic, arrival.queue_id, arrival.logic_offset, arrival.tags_code
            )

    def notify_message_arriving(
        self,
        topic: str,
        queue_id: int,
        max_offset: int,
        tags_code: int | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        """Have the held pulls of a queue that the new end ``max_offset``
        (and the message's tags code, when known) satisfies woken soon.
        ``properties`` are not looked at: pyrocket filters by tags only."""
        del properties
        key = (topic, queue_id)
        if key not in self._queues:
            return
        pending = self._arrivals.get(key)
        if pending is None:
            self._arrivals[key] = _PendingArrival(max_offset, tags_code)
            self._arrival_lot.unpark()
        else:
            pending.add(max_offset, tags_code)

    def drop_connection(self, conn: Connection) -> None:
        """Forget the pulls held or woken for a closed connection."""
        pulls = self._by_conn.pop(conn, None)
        if pulls is not None:
            for pull in pulls.values():
                self._unindex(pull)
                pull.done = True
            self._held -= len(pulls)
            self._dead_entries += len(pulls)
            self._prune_deadlines()
        self._woken.pop(conn, None)

    def drop_closed_connections(self) -> int:
        """Drop the pulls of every connection that has closed (in case its
        close event was lost); returns how many connections that was."""
        closed = [conn for conn in self._by_conn if not conn.is_open]
        closed += [conn for conn in self._woken if not conn.is_open and conn not in closed]
        for conn in closed:
            self.drop_connection(conn)
        return len(closed)

    # -- internals ------------------------------------------------------------

    def _unindex(self, pull: PullRequest) -> None:
        key = (pull.topic, pull.queue_id)
        queue_pulls = self._queues.get(key)
        if queue_pulls is not None:
            queue_pulls.pop(pull.sequence, None)
            if not queue_pulls:
                del self._queues[key]
                self._arrivals.pop(key, None)

    def _release(self, pull: PullRequest, *, in_heap: bool = True) -> None:
        """Take ``pull`` out of the held tables."""
        self._unindex(pull)
        conn_pulls = self._by_conn.get(pull.conn)
        if conn_pulls is not None:
            conn_pulls.pop(pull.sequence, None)
            if not conn_pulls:
                del self._by_conn[pull.conn]
        pull.done = True
        self._held -= 1
        if in_heap:
            self._dead_entries += 1
        self._prune_deadlines()

    def _prune_deadlines(self) -> None:
        deadlines = self._deadlines
        if not self._held:
            deadlines.clear()
            self._dead_entries = 0
        elif self._dead_entries > 64 and self._dead_entries * 2 > len(deadlines):
            deadlines.prune()
            self._dead_entries = 0

    def _to_answer(self, pull: PullRequest) -> None:
        conn = pull.conn
        if not conn.is_open:
            return
        pulls = self._woken.get(conn)
        if pulls is None:
            pulls = self._woken[conn] = deque()
            self._ready.append(conn)
            self._worker_lot.unpark()
        pulls.append(pull)


__all__ = [
    "MAX_HELD_PER_CONNECTION",
    "ArrivalFilter",
    "PullRequest",
    "PullRequestHoldService",
    "Wake",
]
