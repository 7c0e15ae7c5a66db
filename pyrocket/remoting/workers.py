"""The side of a connection that runs the peer's requests: the worker pool
and the ordered lane (mixed into :class:`~pyrocket.remoting.connection.Connection`).

- Plain-function processors are answered in the reader, as the request is read.
  One may instead hand back a :class:`~pyrocket.later.Later` of its answer:
  no task waits for it; the answer is sent by the code that settles it (its
  bytes bypass the output wait, like the reader's own answers, and are
  bounded by ``max_in_flight``).
- Coroutine processors run on worker tasks, at most ``settings.workers`` of
  them, started only when every existing one is busy; requests beyond the
  workers wait in a queue, and requests beyond ``settings.max_in_flight``
  (plain-function ones too) are answered SYSTEM_BUSY.
- The ordered lane (no task of its own): requests whose processor is
  registered ``ordered`` start one at a time, in the order they were read; the
  next starts when the one before returned or called :meth:`release_order`.

The mixin keeps its own state (set up by :meth:`_init_workers`) and uses the
connection's output (``_enqueue``, ``_room_for_output``) through
the methods declared below, which the connection defines.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, TypeAlias

import outcome
import trio

from pyrocket.errors import CommandError, ProtocolError
from pyrocket.later import Later
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import ONEWAY_FLAG, RESPONSE_FLAG, RemotingCommand, encode_parts
from pyrocket.remoting.answers import (
    OVERLOAD_REMARK,
    REJECT_REQUEST_REMARK,
    error_remark,
    not_supported_remark,
    system_response,
)
from pyrocket.remoting.knobs import ConnectionSettings

log = logging.getLogger("pyrocket.remoting")

#: Queued outgoing bytes above which senders wait for the writer.
HIGH_WATER: Final = 1024 * 1024
#: Ordered requests waiting for their turn at which the reader stops reading.
LANE_BACKLOG: Final = 256

_Job: TypeAlias = tuple[Awaitable[RemotingCommand | None], RemotingCommand]
_Run: TypeAlias = Callable[
    [Any, RemotingCommand], Awaitable[RemotingCommand | None] | RemotingCommand | None
]


class Registered(Protocol):
    """What the workers read of a processor's registration
    (:class:`pyrocket.remoting.dispatch.Registration`). The processor's first
    argument is the connection itself, which this module cannot name."""

    @property
    def processor(self) -> _Run: ...

    @property
    def reject_request(self) -> Callable[[], bool] | None: ...

    @property
    def ordered(self) -> bool: ...


class ProcessorLookup(Protocol):
    """The processor table as the workers use it
    (:class:`pyrocket.remoting.dispatch.ProcessorTable`)."""

    def lookup(self, code: int) -> Registered | None: ...


class RequestWorkers:
    """Runs the requests a connection reads (see the module docs)."""

    # What the connection provides.
    settings: ConnectionSettings
    remote_address: str
    _processors: ProcessorLookup | None
    _closed: bool
    _out_bytes: int
    #: When the reader's current read began (``trio.current_time()``).
    _read_at: float

    @property
    def is_open(self) -> bool:
        raise NotImplementedError

    def _enqueue(self, head: bytes, body: bytes = b"") -> None:
        raise NotImplementedError

    def _answer(self, request: RemotingCommand, response: RemotingCommand) -> tuple[bytes, bytes]:
        """The frame of ``response`` answering ``request`` (head, body), in
        the connection's settings."""
        settings = self.settings
        return encode_parts(
            response,
            request.opaque,
            response.flag | RESPONSE_FLAG,
            settings.language,
            settings.version,
            settings.serialize_type,
        )

    async def _room_for_output(self) -> None:
        raise NotImplementedError

    def _log_limited(self, kind: str, level: int, message: str, *args: object) -> None:
        raise NotImplementedError

    def _init_workers(self) -> None:
        # Requests are handed straight to an idle worker (most recently idle
        # first), else to a new worker, else queued until a worker is free.
        #: Coroutines waiting for a worker, each with when it was queued.
        self._queue: deque[tuple[_Job, float]] = deque()
        self._idle_workers: list[trio.lowlevel.Task] = []
        self._in_flight = 0
        self._workers = 0
        self._busy_count = 0
        self._worker_nursery: trio.Nursery | None = None

        # The ordered lane: the request whose processor holds the turn, and
        # the ordered requests read after it, not yet started.
        self._lane_holder: RemotingCommand | None = None
        #: The request whose processor is being called, and whether it gave
        #: up the ordered turn during the call (see release_order).
        self._starting: RemotingCommand | None = None
        self._released_early = False
        self._lane: deque[tuple[_Run, RemotingCommand, float]] = deque()
        self._lane_lot = trio.lowlevel.ParkingLot()

    @property
    def requests_in_flight(self) -> int:
        """Requests from the peer accepted and not yet answered."""
        return self._in_flight

    def waiting_requests(self) -> list[tuple[RemotingCommand, float]]:
        """Requests read from the peer and not started yet, each with when it
        began to wait (``trio.current_time()``): those waiting for the
        ordered turn, then those waiting for a free worker."""
        lane = [(request, since) for _, request, since in self._lane]
        return lane + [(job[1], since) for job, since in self._queue]

    def release_order(self, request: RemotingCommand) -> None:
        """End the ordered phase of ``request`` early: its state change is
        made, so the next ordered request may start while its processor
        finishes the rest (waits for a flush, say). No-op unless ``request``
        holds the connection's ordered turn, or is called by a plain-function
        processor while it runs (then the awaitable it returns never takes
        the turn)."""
        if self._lane_holder is request:
            self._pass_turn(front=False)
        elif self._starting is request:
            # Called by a plain function while it runs: what it hands back to
            # await does not hold the turn.
            self._released_early = True

    def _stop_workers(self) -> None:
        """The connection is closing: idle workers return, the reader stops
        waiting for the lane."""
        idle = self._idle_workers[:]
        self._idle_workers.clear()
        for task in idle:
            trio.lowlevel.reschedule(task, outcome.Value(None))
        self._lane_lot.unpark_all()

    def _on_request(self, request: RemotingCommand) -> None:
        oneway = request.flag & ONEWAY_FLAG
        processors = self._processors
        registration = None if processors is None else processors.lookup(request.code)
        if registration is None:
            remark = not_supported_remark(request.code)
            self._log_limited("unsupported", logging.ERROR, "%s%s", self.remote_address, remark)
            if not oneway:
                response = system_response(ResponseCode.REQUEST_CODE_NOT_SUPPORTED, remark)
                self._enqueue(*self._answer(request, response))
            return
        reject = registration.reject_request
        if reject is not None and self._rejects(reject, request):
            if not oneway:
                response = system_response(ResponseCode.SYSTEM_BUSY, REJECT_REQUEST_REMARK)
                self._enqueue(*self._answer(request, response))
            return
        if self._in_flight >= self.settings.max_in_flight:
            # Checked before anything runs, so plain functions count too.
            self._overloaded(request)
            return
        self._in_flight += 1
        if registration.ordered and (self._lane_holder is not None or self._lane):
            # Stamped with when its read began (taken once per read, not per request).
            self._lane.append((registration.processor, request, self._read_at))
            return
        self._start(registration.processor, request, registration.ordered, False)

    def _overloaded(self, request: RemotingCommand) -> None:
        self._busy_count += 1
        if self._busy_count % 1000 == 1:
            log.warning(
                "%s: too many requests in flight (%d), answering busy (%d times so far), "
                "request code %d",
                self.remote_address,
                self._in_flight,
                self._busy_count,
                request.code,
            )
        if not request.flag & ONEWAY_FLAG:
            response = system_response(ResponseCode.SYSTEM_BUSY, OVERLOAD_REMARK)
            self._enqueue(*self._answer(request, response))

    def _start(
        self,
        processor: _Run,
        request: RemotingCommand,
        ordered: bool,
        front: bool,
        since: float = 0.0,
    ) -> bool:
        """Run ``processor`` for an accepted request (counted in flight).

        A plain function is answered here; a coroutine goes to a worker
        (``front``: to the head of the queue, for the worker that is calling,
        with ``since``, when the request began to wait) and, if ``ordered``,
        takes the lane's turn. True when a coroutine was handed on.
        """
        self._starting = request
        self._released_early = False
        try:
            result = processor(self, request)
        except Exception as exc:
            result = self._failure_response(request, exc)
        finally:
            self._starting = None
        if isinstance(result, Later):
            if not result.settled:
                # Answered by whoever settles it; no worker waits.
                if ordered and not self._released_early:
                    self._lane_holder = request
                result.when_settled(functools.partial(self._answer_later, request))
                return True
            result = self._settled_answer(request, result)
        if result is None or isinstance(result, RemotingCommand):
            # A plain function: answered now, before the next frame is read.
            self._in_flight -= 1
            if result is not None and not request.flag & ONEWAY_FLAG:
                self._enqueue(*self._encode_answer(request, result))
            return False
        if ordered and not self._released_early:
            self._lane_holder = request
        job = (result, request)
        if front:
            self._queue.appendleft((job, since))
        elif self._idle_workers:
            trio.lowlevel.reschedule(self._idle_workers.pop(), outcome.Value(job))
        elif self._workers < self.settings.workers:
            self._workers += 1
            assert self._worker_nursery is not None
            self._worker_nursery.start_soon(self._worker, job)
        else:
            self._queue.append((job, trio.current_time()))
        return True

    def _settled_answer(
        self, request: RemotingCommand, later: Later[RemotingCommand | None]
    ) -> RemotingCommand | None:
        try:
            return later.result()
        except Exception as exc:
            return self._failure_response(request, exc)

    def _answer_later(self, request: RemotingCommand, later: Later[RemotingCommand | None]) -> None:
        """A processor's :class:`Later` is settled: send its answer (unless
        the connection closed meanwhile), then pass the ordered turn on if
        the request held it."""
        self._in_flight -= 1
        response = self._settled_answer(request, later)
        if response is not None and not request.flag & ONEWAY_FLAG and not self._closed:
            self._enqueue(*self._encode_answer(request, response))
        if self._lane_holder is request:
            self._pass_turn(front=False)

    def _pass_turn(self, front: bool) -> None:
        """The lane's holder is done: start the next ordered requests, up to
        and including the first one that takes the turn (a coroutine that did
        not release it while its plain function ran). Only the first
        coroutine handed on goes to the head of the queue (``front``: for the
        calling worker); any later one is handed on as usual."""
        self._lane_holder = None
        lane = self._lane
        while lane:
            processor, request, since = lane.popleft()
            if self._start(processor, request, True, front, since):
                if self._turn_taken():
                    break
                front = False
        if len(lane) < LANE_BACKLOG and self._lane_lot:
            self._lane_lot.unpark_all()

    def _turn_taken(self) -> bool:
        """Whether an ordered request holds the lane's turn."""
        return self._lane_holder is not None

    def _rejects(self, reject: Callable[[], bool], request: RemotingCommand) -> bool:
        try:
            return bool(reject())
        except Exception:
            log.exception("reject_request check failed for request code %d", request.code)
            return False

    async def _worker(self, job: _Job | None) -> None:
        queue = self._queue
        idle = self._idle_workers
        task = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            if task in idle:
                idle.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        while job is not None:
            try:
                await self._process(*job)
            finally:
                self._in_flight -= 1
            if self._lane_holder is job[1]:
                # This worker is free now: it takes the next ordered request
                # itself (from the head of the queue) rather than waking another.
                self._pass_turn(front=True)
            if queue:
                job = queue.popleft()[0]
            elif self._closed:
                return
            else:
                idle.append(task)
                job = await trio.lowlevel.wait_task_rescheduled(abort)

    async def _process(
        self, pending: Awaitable[RemotingCommand | None], request: RemotingCommand
    ) -> None:
        try:
            response = await pending
        except Exception as exc:
            response = self._failure_response(request, exc)
        if response is None or request.flag & ONEWAY_FLAG or self._closed:
            return
        if self._out_bytes > HIGH_WATER:
            # Wait before encoding: a peer that does not read holds at most
            # HIGH_WATER plus one answer of queued bytes, whatever its burst.
            await self._room_for_output()
            if not self.is_open:
                log.debug("dropping the response to %s: connection closed", self.remote_address)
                return
        self._enqueue(*self._encode_answer(request, response))

    def _failure_response(self, request: RemotingCommand, exc: Exception) -> RemotingCommand:
        """SYSTEM_ERROR for a processor that raised; logged with the peer."""
        peer = self.remote_address
        if isinstance(exc, CommandError):
            log.warning("request code %d from %s refused: %s", request.code, peer, exc)
        else:
            log.error(
                "processor for request code %d from %s failed",
                request.code,
                peer,
                exc_info=exc,
            )
        return system_response(ResponseCode.SYSTEM_ERROR, error_remark(exc))

    def _encode_answer(
        self, request: RemotingCommand, response: RemotingCommand
    ) -> tuple[bytes, bytes]:
        try:
            return self._answer(request, response)
        except ProtocolError as exc:
            log.error(
                "response to request code %d from %s cannot be encoded: %s",
                request.code,
                self.remote_address,
                exc,
            )
            remark = f"response cannot be encoded: {exc}"
            return self._answer(request, system_response(ResponseCode.SYSTEM_ERROR, remark))
