"""One RemotingCommand connection over a trio stream, the same for both ends.

A :class:`Connection` owns everything per-connection that Java spreads over
NettyRemotingAbstract and the Netty pipeline: the frame splitter, the opaque
counter, the table of calls waiting for a response, the processors' worker
tasks, the idle timer and the outgoing buffer. Either end may send requests
over it: a client calls the server, and a broker calls a client back over the
client's own connection (NOTIFY_CONSUMER_IDS_CHANGED, CHECK_TRANSACTION_STATE).

Tasks of one connection, all inside :meth:`Connection.run`:

- the reader (``run``'s own task): splits and decodes frames, completes pending
  calls, hands requests to workers;
- the writer: takes everything queued since its last write and sends it with
  one ``send_all`` (frames are encoded by the task that sends them, so the
  writer only joins bytes);
- workers: run processors, at most ``settings.workers`` of them, started only
  when every existing one is busy; requests beyond the workers wait in a queue,
  and requests beyond ``settings.max_in_flight`` (plain-function ones too) are
  answered SYSTEM_BUSY;
- the ordered lane (no task of its own): requests whose processor is
  registered ``ordered`` start one at a time, in the order they were read; the
  next starts when the one before returned or called :meth:`release_order`;
- the deadline sweeper (timeouts of :meth:`invoke_async` calls, which nobody
  may be awaiting) and the idle watchdog.

Memory per connection is bounded by what it reads: answers wait (before they
are encoded) while more than ``HIGH_WATER`` bytes are queued for the peer, and
the reader stops reading, frame by frame, while that is so or while
``LANE_BACKLOG`` ordered requests wait for their turn; a peer that does not
read is closed by the idle watchdog.

Outgoing commands take the configured serialize type, language and version
(Java stamps its process-wide settings onto every command it creates), unless
sent with ``as_is=True``. Responses always go out in the configured type,
whatever type the request came in.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, cast

import outcome
import trio

from pyrocket.errors import (
    CommandError,
    ConnectionClosedError,
    ProtocolError,
    RemotingError,
    RemotingTimeoutError,
    RemotingTooMuchRequestError,
)
from pyrocket.logtext import clip
from pyrocket.protocol.codes import VERSION_V4_7_0, LanguageCode, ResponseCode, SerializeType
from pyrocket.protocol.command import (
    ONEWAY_FLAG,
    RESPONSE_FLAG,
    RemotingCommand,
    decode_payload,
    encode,
)
from pyrocket.protocol.frame import DEFAULT_MAX_FRAME_SIZE, FrameSplitter, SplitFrame
from pyrocket.remoting.dispatch import (
    OVERLOAD_REMARK,
    REJECT_REQUEST_REMARK,
    Processor,
    ProcessorTable,
    error_remark,
    not_supported_remark,
    system_response,
)
from pyrocket.remoting.events import ConnectionEvent, EventQueue
from pyrocket.remoting.logs import RepeatLimiter, describe

log = logging.getLogger("pyrocket.remoting")

#: Bytes asked of the stream per read.
RECEIVE_SIZE: Final = 64 * 1024
#: Frames decoded from one read before the reader lets other tasks run.
FRAMES_PER_TURN: Final = 8
#: Queued outgoing bytes above which senders wait for the writer.
HIGH_WATER: Final = 1024 * 1024
#: Ordered requests waiting for their turn at which the reader stops reading.
LANE_BACKLOG: Final = 256
#: Scheduling rounds the writer waits for more answers while the lane is busy,
#: and the queued bytes that end the wait.
LANE_GATHER_ROUNDS: Final = 8
LANE_GATHER_BYTES: Final = 32 * 1024

_INT32_MAX: Final = (1 << 31) - 1
_Job: TypeAlias = tuple[Awaitable[RemotingCommand | None], RemotingCommand]
_REQUEST_FLAGS_MASK: Final = ~(RESPONSE_FLAG | ONEWAY_FLAG)


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Per-connection knobs, filled from a server's or client's config.

    ``idle_seconds``: close after this long without a byte read or written
    (Java's channelMaxIdleTimeSeconds); ``None`` or 0 never closes.
    ``max_in_flight``: requests from the peer accepted but not yet answered;
    more are answered SYSTEM_BUSY. ``workers``: processors running at once.
    """

    serialize_type: SerializeType = SerializeType.JSON
    language: LanguageCode = LanguageCode.JAVA
    version: int = VERSION_V4_7_0
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    idle_seconds: float | None = 120.0
    max_in_flight: int = 1024
    workers: int = 64

    def __post_init__(self) -> None:
        if self.max_in_flight < 1 or self.workers < 1:
            raise ValueError("max_in_flight and workers must be at least 1")


class Permits:
    """Java's async and oneway semaphores: bounds on calls in flight.

    Shared by every connection of one server or client.
    """

    def __init__(self, async_permits: int = 65535, oneway_permits: int = 65535) -> None:
        self.async_calls = trio.Semaphore(async_permits)
        self.oneway_calls = trio.Semaphore(oneway_permits)


async def _acquire(semaphore: trio.Semaphore, timeout: float, what: str) -> None:  # noqa: ASYNC109
    """Take a permit, waiting at most ``timeout`` seconds.

    Raises RemotingTooMuchRequestError when none is free and ``timeout`` is not
    positive, RemotingTimeoutError when none became free in time.
    """
    try:
        semaphore.acquire_nowait()
        return
    except trio.WouldBlock:
        pass
    if timeout <= 0:
        raise RemotingTooMuchRequestError(f"{what} invoke too fast")
    with trio.move_on_after(timeout):
        await semaphore.acquire()
        return
    raise RemotingTimeoutError(
        f"{what} tryAcquire semaphore timeout, {_ms(timeout)}ms, "
        f"available permits: {semaphore.value}"
    )


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


ResponseCallback = Callable[["ResponseFuture"], None]
"""Called once when an async call completes (response, timeout or close)."""


class _SyncCall:
    """A call whose caller waits in :meth:`Connection.invoke`.

    The waiting task is parked directly (no Event): this is the hot path.
    """

    __slots__ = ("_error", "_response", "_task", "deadline", "done", "timeout")

    def __init__(self, timeout: float, deadline: float) -> None:
        self.timeout = timeout
        self.deadline = deadline
        self.done = False
        self._task: trio.lowlevel.Task | None = None
        self._response: RemotingCommand | None = None
        self._error: RemotingError | None = None

    def _complete(self, response: RemotingCommand | None, error: RemotingError | None) -> None:
        if self.done:
            return
        self.done = True
        self._response = response
        self._error = error
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    def _abort(self, _: object) -> trio.lowlevel.Abort:
        self._task = None
        return trio.lowlevel.Abort.SUCCEEDED


class ResponseFuture:
    """The outcome of one request that expects a response.

    Returned by :meth:`Connection.invoke_async`: ``await future`` (or
    ``await future.wait()``) gives the response or raises RemotingTimeoutError
    or ConnectionClosedError; ``done()``, ``response`` and ``error`` inspect it
    without waiting. A callback given to ``invoke_async`` runs exactly once,
    synchronously, in the connection's reader task (response, close) or its
    sweeper task (timeout): it must not block; to do async work it should
    start a task. Exceptions from it are logged and dropped.
    """

    __slots__ = (
        "_callback",
        "_error",
        "_event",
        "_release",
        "_response",
        "deadline",
        "opaque",
        "remote_address",
        "timeout",
    )

    def __init__(
        self,
        opaque: int,
        remote_address: str,
        timeout: float,
        deadline: float,
        callback: ResponseCallback | None = None,
        release: Callable[[], None] | None = None,
    ) -> None:
        self.opaque = opaque
        self.remote_address = remote_address
        self.timeout = timeout
        self.deadline = deadline
        self._callback = callback
        self._release = release
        self._response: RemotingCommand | None = None
        self._error: RemotingError | None = None
        self._event = trio.Event()

    def done(self) -> bool:
        return self._event.is_set()

    @property
    def response(self) -> RemotingCommand | None:
        """The response, once one arrived."""
        return self._response

    @property
    def error(self) -> RemotingError | None:
        """Why no response will come (timeout, closed connection), once known."""
        return self._error

    def result(self) -> RemotingCommand:
        """The response of a completed call; raises its error.

        Raises RuntimeError if the call is still pending.
        """
        if self._response is not None:
            return self._response
        if self._error is not None:
            raise self._error
        raise RuntimeError(f"call {self.opaque} to {self.remote_address} is still pending")

    async def wait(self) -> RemotingCommand:
        """Wait for completion; the response, or raises the call's error."""
        await self._event.wait()
        return self.result()

    def __await__(self) -> Generator[Any, None, RemotingCommand]:
        return self.wait().__await__()

    def _complete(self, response: RemotingCommand | None, error: RemotingError | None) -> None:
        if self._event.is_set():
            return
        self._response = response
        self._error = error
        self._event.set()
        if self._release is not None:
            self._release()
            self._release = None
        callback, self._callback = self._callback, None
        if callback is not None:
            try:
                callback(self)
            except Exception:
                log.exception("response callback failed for %s", self.remote_address)

    def __repr__(self) -> str:
        state = "pending" if not self.done() else ("ok" if self._response else "failed")
        return f"<ResponseFuture opaque={self.opaque} {self.remote_address} {state}>"


async def _decode_split(frame: SplitFrame) -> RemotingCommand:
    """Decode a large frame with its body copied once, off the event loop.

    The header is decoded here first, so a bad one costs no copy; the body is
    joined in a worker thread, where CPython's ``bytes.join`` of a megabyte or
    more runs without the GIL.
    """
    if frame.head is None:
        # A header-length word no bounded decoder accepts: decode_payload
        # still gives the reason, from the whole payload joined off the loop.
        return await trio.to_thread.run_sync(lambda: decode_payload(frame.join_body()))
    command = decode_payload(frame.head)
    body = await trio.to_thread.run_sync(frame.join_body)
    return command.replace(body=body) if body else command


class Connection:
    """A RemotingCommand connection; both ends use the same class.

    Build it around a connected stream, then ``await conn.run()`` in a task
    (the server and client do this): ``run`` returns once the connection is
    closed, which :meth:`close`, the peer, bad input, the idle timer or a
    transport error can cause. Cancelling ``run`` closes the connection too.
    On close every pending call fails at once with ConnectionClosedError;
    requests already received still run on the workers, their answers dropped.

    ``remote_address`` is the peer as ``"ip:port"`` (what Java's
    ``RemotingHelper.parseChannelRemoteAddr`` gives). Connections compare by
    identity, so applications may key their own tables by them.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        remote_address: str,
        local_address: str = "",
        settings: ConnectionSettings | None = None,
        processors: ProcessorTable | None = None,
        permits: Permits | None = None,
        events: EventQueue | None = None,
    ) -> None:
        self.remote_address = remote_address
        self.local_address = local_address
        self.settings = settings or ConnectionSettings()
        self._stream = stream
        self._processors = processors
        self._permits = permits or Permits()
        self._events = events

        self._opaque = 0
        self._pending: dict[int, _SyncCall | ResponseFuture] = {}
        # (deadline, opaque) of every call; entries of completed calls are
        # skipped when they come up and pruned when they pile up.
        self._deadlines: list[tuple[float, int]] = []
        self._sweep_scope: trio.CancelScope | None = None

        self._out: list[bytes] = []
        self._out_bytes = 0
        self._out_peak = 0
        self._writer_lot = trio.lowlevel.ParkingLot()
        self._space_lot = trio.lowlevel.ParkingLot()

        # Requests are handed straight to an idle worker (most recently idle
        # first), else to a new worker, else queued until a worker is free.
        self._queue: deque[_Job] = deque()
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
        self._lane: deque[tuple[Processor, RemotingCommand]] = deque()
        self._lane_lot = trio.lowlevel.ParkingLot()

        # Log lines a peer can trigger at will, each at most once per 10 s.
        self._log_limits: dict[str, RepeatLimiter] = {}

        self._io_scope = trio.CancelScope()
        self._last_activity = 0.0
        self._started = False
        self._closed = False
        self._end_reported = False
        self._finished = trio.Event()

    # ------------------------------------------------------------------
    # State

    @property
    def is_open(self) -> bool:
        """True until the connection starts closing."""
        return not self._closed

    @property
    def pending_calls(self) -> int:
        """Requests sent on this connection still waiting for a response."""
        return len(self._pending)

    @property
    def requests_in_flight(self) -> int:
        """Requests from the peer accepted and not yet answered."""
        return self._in_flight

    @property
    def queued_output_bytes(self) -> int:
        """Bytes queued for the peer and not yet handed to the stream."""
        return self._out_bytes

    @property
    def queued_output_peak(self) -> int:
        """The most bytes ever queued for the peer at once on this connection."""
        return self._out_peak

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

    def close(self) -> None:
        """Start closing: pending calls fail now; ``run`` returns soon after."""
        self._shutdown()

    async def wait_closed(self) -> None:
        """Wait until ``run`` has finished (stream closed, workers done)."""
        await self._finished.wait()

    def __repr__(self) -> str:
        return f"<Connection {self.remote_address}{'' if self.is_open else ' closed'}>"

    # ------------------------------------------------------------------
    # Sending

    async def send(self, command: RemotingCommand, *, as_is: bool = False) -> None:
        """Send ``command`` with its own opaque and flag.

        This is how a processor that returned ``None`` answers later:
        ``await conn.send(response.answering(request))``. Raises
        ConnectionClosedError when the connection is closed and ProtocolError
        when a value does not fit its wire field.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        await self._write(encode(self._outgoing(command, command.opaque, command.flag, as_is)))

    async def invoke(
        self,
        request: RemotingCommand,
        timeout: float,  # noqa: ASYNC109 (Java's API: the timeout belongs to the call)
        *,
        as_is: bool = False,
    ) -> RemotingCommand:
        """Send ``request`` and wait at most ``timeout`` seconds for its response.

        The connection assigns the opaque. Returns the response whatever its
        code. Raises RemotingTimeoutError (nothing is left behind: a late
        response is logged and dropped), ConnectionClosedError, ProtocolError.
        """
        self._check_open()
        opaque = self._next_opaque()
        frame = encode(self._outgoing(request, opaque, request.flag & _REQUEST_FLAGS_MASK, as_is))
        deadline = trio.current_time() + timeout
        call = _SyncCall(timeout, deadline)
        pending = self._pending
        pending[opaque] = call
        self._add_deadline(deadline, opaque)
        try:
            if self._out_bytes < HIGH_WATER:
                self._enqueue(frame)
            else:
                await self._write(frame, deadline)
            if call.done:
                await trio.lowlevel.checkpoint()
            else:
                call._task = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(call._abort)
        finally:
            if not call.done:
                # Cancelled by the caller: forget the call; a late answer is dropped.
                call.done = True
                if pending.get(opaque) is call:
                    del pending[opaque]
        if call._response is not None:
            return call._response
        assert call._error is not None
        raise call._error

    async def invoke_async(
        self,
        request: RemotingCommand,
        timeout: float,  # noqa: ASYNC109
        callback: ResponseCallback | None = None,
        *,
        as_is: bool = False,
    ) -> ResponseFuture:
        """Send ``request`` and return its :class:`ResponseFuture` at once.

        Takes an async permit first, waiting for one at most ``timeout``
        seconds; the rest of ``timeout`` bounds the wait for the response. The
        request is queued for sending, in order, before this returns.
        ``callback(future)`` runs when the call completes (see ResponseFuture).
        Raises RemotingTooMuchRequestError / RemotingTimeoutError when no
        permit is free, ConnectionClosedError when the connection is closed.
        """
        start = trio.current_time()
        self._check_open()
        semaphore = self._permits.async_calls
        await _acquire(semaphore, timeout, "invokeAsyncImpl")
        remaining = timeout - (trio.current_time() - start)
        try:
            self._check_open()
            if remaining <= 0:
                raise RemotingTimeoutError("invokeAsyncImpl call timeout")
            opaque = self._next_opaque()
            flag = request.flag & _REQUEST_FLAGS_MASK
            frame = encode(self._outgoing(request, opaque, flag, as_is))
        except BaseException:
            semaphore.release()
            raise
        deadline = trio.current_time() + remaining
        call = ResponseFuture(
            opaque, self.remote_address, timeout, deadline, callback, semaphore.release
        )
        self._pending[opaque] = call
        self._add_deadline(deadline, opaque)
        try:
            await self._write(frame, deadline)
        except ConnectionClosedError:
            pass  # the close completed the call; the caller sees it in the future
        except BaseException:
            # Abandoned before it was queued (cancelled): nobody gets the future.
            if self._pending.get(opaque) is call:
                del self._pending[opaque]
            call._callback = None
            call._complete(None, RemotingError("call abandoned before it was sent"))
            raise
        return call

    async def invoke_oneway(
        self,
        request: RemotingCommand,
        timeout: float = 3.0,  # noqa: ASYNC109
        *,
        as_is: bool = False,
    ) -> None:
        """Send ``request`` flagged oneway; no response will come.

        A oneway permit is held until the frame is queued; ``timeout`` bounds
        the wait for it. Raises RemotingTooMuchRequestError /
        RemotingTimeoutError when no permit is free, ConnectionClosedError.
        """
        self._check_open()
        semaphore = self._permits.oneway_calls
        await _acquire(semaphore, timeout, "invokeOnewayImpl")
        try:
            self._check_open()
            opaque = self._next_opaque()
            flag = (request.flag & _REQUEST_FLAGS_MASK) | ONEWAY_FLAG
            await self._write(encode(self._outgoing(request, opaque, flag, as_is)))
        finally:
            semaphore.release()

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionClosedError(f"connection to {self.remote_address} is closed")

    def _timeout_error(self, timeout: float) -> RemotingTimeoutError:
        return RemotingTimeoutError(
            f"wait response on the channel <{self.remote_address}> timeout, {_ms(timeout)}(ms)"
        )

    def _next_opaque(self) -> int:
        pending = self._pending
        while True:
            opaque = self._opaque
            self._opaque = opaque + 1 if opaque < _INT32_MAX else 0
            if opaque not in pending:
                return opaque

    def _outgoing(
        self, command: RemotingCommand, opaque: int, flag: int, as_is: bool
    ) -> RemotingCommand:
        if as_is:
            language, version, serialize_type = (
                command.language,
                command.version,
                command.serialize_type,
            )
        else:
            settings = self.settings
            language, version, serialize_type = (
                settings.language,
                settings.version,
                settings.serialize_type,
            )
        return RemotingCommand(
            command.code,
            opaque,
            flag,
            command.remark,
            command.ext_fields,
            command.body,
            language,
            version,
            serialize_type,
        )

    def _answer(self, request: RemotingCommand, response: RemotingCommand) -> bytes:
        return encode(
            self._outgoing(response, request.opaque, response.flag | RESPONSE_FLAG, False)
        )

    async def _write(self, frame: bytes, deadline: float = math.inf) -> None:
        """Queue ``frame`` for the writer; while too much is queued, first
        wait for the writer (until ``deadline`` at most: then the frame is
        queued anyway). Waiting before queuing bounds what many senders hold
        queued at once (held pulls answered together, say).

        Raises ConnectionClosedError when the connection is (or gets) closed.
        """
        self._check_open()
        if self._out_bytes > HIGH_WATER:
            with trio.move_on_at(deadline):
                while self._out_bytes > HIGH_WATER:
                    await self._space_lot.park()
                    self._check_open()
            self._check_open()
        self._out.append(frame)
        self._out_bytes += len(frame)
        if self._out_bytes > self._out_peak:
            self._out_peak = self._out_bytes
        if self._writer_lot:
            self._writer_lot.unpark()

    def _enqueue(self, frame: bytes) -> None:
        """Queue ``frame`` without waiting (callers check ``HIGH_WATER`` first:
        the reader before each frame, workers before each answer)."""
        if self._closed:
            return
        self._out.append(frame)
        self._out_bytes += len(frame)
        if self._out_bytes > self._out_peak:
            self._out_peak = self._out_bytes
        if self._writer_lot:
            self._writer_lot.unpark()

    async def _room_for_output(self) -> None:
        """Wait while more than ``HIGH_WATER`` bytes are queued (or until closed)."""
        while self._out_bytes > HIGH_WATER and not self._closed:
            await self._space_lot.park()

    async def _room_for_reading(self) -> None:
        """Wait until the reader may take another frame: output below
        ``HIGH_WATER`` and fewer than ``LANE_BACKLOG`` ordered requests waiting."""
        while not self._closed:
            if self._out_bytes > HIGH_WATER:
                await self._space_lot.park()
            elif len(self._lane) >= LANE_BACKLOG:
                await self._lane_lot.park()
            else:
                return

    def _add_deadline(self, deadline: float, opaque: int) -> None:
        heap = self._deadlines
        if len(heap) > 1024 and len(heap) > 4 * len(self._pending):
            pending = self._pending
            heap[:] = [
                (d, o)
                for d, o in heap
                if (call := pending.get(o)) is not None and call.deadline == d
            ]
            heapq.heapify(heap)
        heapq.heappush(heap, (deadline, opaque))
        scope = self._sweep_scope
        if scope is not None and deadline < scope.deadline:
            scope.deadline = deadline

    # ------------------------------------------------------------------
    # Running

    async def run(self) -> None:
        """Serve the connection until it closes. Never raises but Cancelled.

        Call once. Emits connect on entry and close on exit (plus exception
        or idle when that is why it closed).
        """
        if self._started:
            raise RuntimeError("Connection.run() called twice")
        self._started = True
        self._last_activity = trio.current_time()
        self._emit(ConnectionEvent.CONNECT)
        try:
            async with trio.open_nursery() as workers:
                self._worker_nursery = workers
                with self._io_scope:
                    async with trio.open_nursery() as io:
                        io.start_soon(self._write_loop)
                        io.start_soon(self._sweep_loop)
                        idle = self.settings.idle_seconds
                        if idle:
                            io.start_soon(self._idle_loop, idle)
                        await self._read_loop()
                        io.cancel_scope.cancel()
                self._shutdown()
                await trio.aclose_forcefully(self._stream)
                # Workers finish the requests already queued, then return.
        except Exception:
            log.exception("connection %s failed", self.remote_address)
        finally:
            self._shutdown()
            await trio.aclose_forcefully(self._stream)
            self._emit(ConnectionEvent.CLOSE)
            self._finished.set()

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._io_scope.cancel()
        idle = self._idle_workers[:]
        self._idle_workers.clear()
        for task in idle:
            trio.lowlevel.reschedule(task, outcome.Value(None))
        self._out.clear()
        self._out_bytes = 0
        self._space_lot.unpark_all()
        self._lane_lot.unpark_all()
        pending = list(self._pending.values())
        self._pending.clear()
        self._deadlines.clear()
        if pending:
            error = ConnectionClosedError(f"connection to {self.remote_address} closed")
            for call in pending:
                call._complete(None, error)

    def _emit(self, event: ConnectionEvent) -> None:
        if self._events is not None:
            self._events.put(event, self)

    def _report_end(self, event: ConnectionEvent) -> None:
        """Emit the one exception-or-idle event that explains a close."""
        if not self._end_reported and not self._closed:
            self._end_reported = True
            self._emit(event)

    async def _read_loop(self) -> None:
        splitter = FrameSplitter(self.settings.max_frame_size)
        receive_some = self._stream.receive_some
        peer = self.remote_address
        lane = self._lane
        while True:
            if self._out_bytes > HIGH_WATER or len(lane) >= LANE_BACKLOG:
                await self._room_for_reading()
            try:
                data = await receive_some(RECEIVE_SIZE)
            except trio.BrokenResourceError as exc:
                log.warning("connection %s broken while reading: %s", peer, exc.__cause__ or exc)
                self._report_end(ConnectionEvent.EXCEPTION)
                return
            except trio.ClosedResourceError:
                return
            if not data:
                log.debug("connection %s closed by the peer", peer)
                return
            self._last_activity = trio.current_time()
            splitter.feed(cast(bytes, data))
            try:
                handled = 0
                while True:
                    if self._out_bytes > HIGH_WATER or len(lane) >= LANE_BACKLOG:
                        # Checked per frame, not per read: one read can hold
                        # hundreds of small requests with large answers.
                        await self._room_for_reading()
                    frame = splitter.next_split()
                    if isinstance(frame, bytes):
                        command = decode_payload(frame)
                    elif isinstance(frame, SplitFrame):
                        # Read no further until this frame is handled, so
                        # frames keep their order.
                        command = await _decode_split(frame)
                    else:
                        break
                    if command.flag & RESPONSE_FLAG:
                        self._on_response(command)
                    else:
                        self._on_request(command)
                    handled += 1
                    if handled % FRAMES_PER_TURN == 0:
                        # Let the tasks just woken run (and the writer send their
                        # output) before decoding more: a burst is pipelined in
                        # slices instead of answered all at once after a pause.
                        await trio.lowlevel.cancel_shielded_checkpoint()
            except ProtocolError as exc:
                log.warning("closing connection %s: bad frame: %s", peer, clip(exc))
                self._report_end(ConnectionEvent.EXCEPTION)
                return
            except Exception:
                # Decoders raise only ProtocolError; anything else is a bug, but
                # it still costs this one connection and nothing more.
                log.exception("closing connection %s: frame could not be handled", peer)
                self._report_end(ConnectionEvent.EXCEPTION)
                return

    def _on_response(self, response: RemotingCommand) -> None:
        call = self._pending.pop(response.opaque, None)
        if call is None:
            self._log_limited(
                "unmatched",
                logging.WARNING,
                "response matches no pending request, from %s: %s",
                self.remote_address,
                describe(response),
            )
            return
        call._complete(response, None)

    def _log_limited(self, kind: str, level: int, message: str, *args: object) -> None:
        limiter = self._log_limits.get(kind)
        if limiter is None:
            limiter = self._log_limits[kind] = RepeatLimiter()
        limiter.log(log, level, trio.current_time(), message, *args)

    def _on_request(self, request: RemotingCommand) -> None:
        oneway = request.flag & ONEWAY_FLAG
        processors = self._processors
        registration = None if processors is None else processors.lookup(request.code)
        if registration is None:
            remark = not_supported_remark(request.code)
            self._log_limited("unsupported", logging.ERROR, "%s%s", self.remote_address, remark)
            if not oneway:
                response = system_response(ResponseCode.REQUEST_CODE_NOT_SUPPORTED, remark)
                self._enqueue(self._answer(request, response))
            return
        reject = registration.reject_request
        if reject is not None and self._rejects(reject, request):
            if not oneway:
                response = system_response(ResponseCode.SYSTEM_BUSY, REJECT_REQUEST_REMARK)
                self._enqueue(self._answer(request, response))
            return
        if self._in_flight >= self.settings.max_in_flight:
            # Checked before anything runs, so plain functions count too.
            self._overloaded(request)
            return
        self._in_flight += 1
        if registration.ordered and (self._lane_holder is not None or self._lane):
            self._lane.append((registration.processor, request))
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
            self._enqueue(self._answer(request, response))

    def _start(
        self, processor: Processor, request: RemotingCommand, ordered: bool, front: bool
    ) -> bool:
        """Run ``processor`` for an accepted request (counted in flight).

        A plain function is answered here; a coroutine goes to a worker
        (``front``: to the head of the queue, for the worker that is calling)
        and, if ``ordered``, takes the lane's turn. True when a coroutine was
        handed on.
        """
        self._starting = request
        self._released_early = False
        try:
            result = processor(self, request)
        except Exception as exc:
            result = self._failure_response(request, exc)
        finally:
            self._starting = None
        if result is None or isinstance(result, RemotingCommand):
            # A plain function: answered now, before the next frame is read.
            self._in_flight -= 1
            if result is not None and not request.flag & ONEWAY_FLAG:
                self._enqueue(self._encode_answer(request, result))
            return False
        if ordered and not self._released_early:
            self._lane_holder = request
        job = (result, request)
        if front:
            self._queue.appendleft(job)
        elif self._idle_workers:
            trio.lowlevel.reschedule(self._idle_workers.pop(), outcome.Value(job))
        elif self._workers < self.settings.workers:
            self._workers += 1
            assert self._worker_nursery is not None
            self._worker_nursery.start_soon(self._worker, job)
        else:
            self._queue.append(job)
        return True

    def _pass_turn(self, front: bool) -> None:
        """The lane's holder is done: start the next ordered requests, up to
        and including the first one that runs as a coroutine."""
        self._lane_holder = None
        lane = self._lane
        while lane:
            processor, request = lane.popleft()
            if self._start(processor, request, True, front):
                break
        if len(lane) < LANE_BACKLOG and self._lane_lot:
            self._lane_lot.unpark_all()

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
                job = queue.popleft()
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
        self._enqueue(self._encode_answer(request, response))

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

    def _encode_answer(self, request: RemotingCommand, response: RemotingCommand) -> bytes:
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

    async def _write_loop(self) -> None:
        stream = self._stream
        out = self._out
        while True:
            if not out:
                await self._writer_lot.park()
                continue
            if self._lane_holder is not None:
                # The lane answers one request per scheduling round; while it
                # is busy, gather a few rounds of answers into one write
                # (a write costs far more than a round).
                for _ in range(LANE_GATHER_ROUNDS):
                    if self._out_bytes >= LANE_GATHER_BYTES or self._lane_holder is None:
                        break
                    await trio.lowlevel.cancel_shielded_checkpoint()
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            self._out_bytes = 0
            if self._space_lot:
                self._space_lot.unpark_all()
            try:
                await stream.send_all(data)
            except trio.BrokenResourceError as exc:
                log.warning(
                    "connection %s broken while writing: %s",
                    self.remote_address,
                    exc.__cause__ or exc,
                )
                self._report_end(ConnectionEvent.EXCEPTION)
                self._shutdown()
                return
            except trio.ClosedResourceError:
                return
            self._last_activity = trio.current_time()

    async def _sweep_loop(self) -> None:
        heap = self._deadlines
        pending = self._pending
        while True:
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                self._sweep_scope = scope
                await trio.sleep_forever()
            self._sweep_scope = None
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                deadline, opaque = heapq.heappop(heap)
                call = pending.get(opaque)
                if call is not None and call.deadline == deadline:
                    del pending[opaque]
                    log.warning("removing timed-out request %d to %s", opaque, self.remote_address)
                    call._complete(None, self._timeout_error(call.timeout))

    async def _idle_loop(self, idle: float) -> None:
        while True:
            await trio.sleep_until(self._last_activity + idle)
            if trio.current_time() >= self._last_activity + idle:
                log.warning("closing connection %s: idle for %gs", self.remote_address, idle)
                self._report_end(ConnectionEvent.IDLE)
                self._shutdown()
                return
