"""One RemotingCommand connection over a trio stream, the same for both ends.

A :class:`Connection` owns everything per-connection that Java spreads over
NettyRemotingAbstract and the Netty pipeline: the frame splitter, the opaque
counter, the table of calls waiting for a response, the processors' worker
tasks, the idle timer and the outgoing buffer. Either end may send requests
over it: a client calls the server, and a broker calls a client back over the
client's own connection (NOTIFY_CONSUMER_IDS_CHANGED, CHECK_TRANSACTION_STATE).

Tasks of one connection, all inside :meth:`Connection.run`: the reader
(``run``'s own task: splits and decodes frames, completes pending calls, hands
requests on); the writer (sends everything queued since its last write with one
``send_all``; frames are encoded by the task that sends them, so the writer
only joins bytes); the workers and the ordered lane that run the peer's
requests (:mod:`pyrocket.remoting.workers`); the deadline sweeper of the calls
waiting for a response (:mod:`pyrocket.remoting.pending`); the idle watchdog.

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

import enum
import logging
import math
from typing import Final, Protocol, cast

import trio

from pyrocket.errors import (
    ConnectionClosedError,
    ProtocolError,
    RemotingError,
    RemotingTimeoutError,
)
from pyrocket.logtext import clip
from pyrocket.protocol.command import (
    ONEWAY_FLAG,
    RESPONSE_FLAG,
    RemotingCommand,
    decode_payload,
)
from pyrocket.protocol.frame import FrameSplitter, SplitFrame
from pyrocket.remoting.knobs import ConnectionSettings, outgoing_frame
from pyrocket.remoting.logs import RepeatLimiter, describe
from pyrocket.remoting.pending import (
    PendingCalls,
    Permits,
    ResponseCallback,
    ResponseFuture,
    _acquire,
    _SyncCall,
)
from pyrocket.remoting.workers import HIGH_WATER, LANE_BACKLOG, ProcessorLookup, RequestWorkers

log = logging.getLogger("pyrocket.remoting")

#: Bytes asked of the stream per read.
RECEIVE_SIZE: Final = 64 * 1024
#: Frames, and payload bytes, decoded before the reader lets other tasks run
#: (whichever comes first: small frames are taken a read's worth at a time,
#: large ones a few at a time).
FRAMES_PER_TURN: Final = 32
BYTES_PER_TURN: Final = 64 * 1024
#: Scheduling rounds the writer waits for more answers while the lane is busy,
#: and the queued bytes that end the wait.
LANE_GATHER_ROUNDS: Final = 8
LANE_GATHER_BYTES: Final = 32 * 1024

_REQUEST_FLAGS_MASK: Final = ~(RESPONSE_FLAG | ONEWAY_FLAG)


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


class ConnectionEvent(enum.Enum):
    CONNECT = "connect"
    CLOSE = "close"
    EXCEPTION = "exception"
    IDLE = "idle"


class EventSink(Protocol):
    """Where a connection reports its events
    (:class:`pyrocket.remoting.events.EventQueue`); never blocks."""

    def put(self, event: ConnectionEvent, conn: Connection) -> None: ...


class Connection(RequestWorkers):
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
        processors: ProcessorLookup | None = None,
        permits: Permits | None = None,
        events: EventSink | None = None,
    ) -> None:
        self.remote_address = remote_address
        self.local_address = local_address
        self.settings = settings or ConnectionSettings()
        self._stream = stream
        self._processors = processors
        self._permits = permits or Permits()
        self._events = events

        self._calls = PendingCalls(remote_address)
        # The table and its timer, used directly on the hot path.
        self._pending = self._calls.calls
        self._deadlines = self._calls.deadlines
        self._init_workers()

        self._out: list[bytes] = []
        self._out_bytes = 0
        self._out_peak = 0
        self._writer_lot = trio.lowlevel.ParkingLot()
        #: Whether the writer is parked, waiting for output (a plain flag: the
        #: lot's own test is a method call on every queued frame).
        self._writer_parked = False
        self._space_lot = trio.lowlevel.ParkingLot()

        # Log lines a peer can trigger at will, each at most once per 10 s.
        self._log_limits: dict[str, RepeatLimiter] = {}

        self._io_scope = trio.CancelScope()
        self._last_activity = 0.0
        self._read_at = 0.0
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
    def queued_output_bytes(self) -> int:
        """Bytes queued for the peer and not yet handed to the stream."""
        return self._out_bytes

    @property
    def queued_output_peak(self) -> int:
        """The most bytes ever queued for the peer at once on this connection."""
        return self._out_peak

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
        await self._write(
            *outgoing_frame(self.settings, command, command.opaque, command.flag, as_is)
        )

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
        opaque = self._calls.next_opaque()
        head, body = outgoing_frame(
            self.settings, request, opaque, request.flag & _REQUEST_FLAGS_MASK, as_is
        )
        deadline = trio.current_time() + timeout
        call = _SyncCall(timeout, deadline)
        pending = self._pending
        pending[opaque] = call
        self._deadlines.push(deadline, opaque, len(pending))
        try:
            if self._out_bytes < HIGH_WATER:
                self._enqueue(head, body)
            else:
                await self._write(head, body, deadline)
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
            opaque = self._calls.next_opaque()
            flag = request.flag & _REQUEST_FLAGS_MASK
            head, body = outgoing_frame(self.settings, request, opaque, flag, as_is)
        except BaseException:
            semaphore.release()
            raise
        deadline = trio.current_time() + remaining
        call = ResponseFuture(
            opaque, self.remote_address, timeout, deadline, callback, semaphore.release
        )
        self._pending[opaque] = call
        self._deadlines.push(deadline, opaque, len(self._pending))
        try:
            await self._write(head, body, deadline)
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
            opaque = self._calls.next_opaque()
            flag = (request.flag & _REQUEST_FLAGS_MASK) | ONEWAY_FLAG
            await self._write(*outgoing_frame(self.settings, request, opaque, flag, as_is))
        finally:
            semaphore.release()

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionClosedError(f"connection to {self.remote_address} is closed")

    async def _write(self, head: bytes, body: bytes = b"", deadline: float = math.inf) -> None:
        """Queue the frame ``head`` + ``body`` for the writer; while too much is queued, first
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
        self._enqueue(head, body)

    def _enqueue(self, head: bytes, body: bytes = b"") -> None:
        """Queue the frame ``head`` + ``body`` without waiting (callers check
        ``HIGH_WATER`` first: the reader before each frame, workers before
        each answer). The two are kept apart until the writer joins
        everything queued, so that a body is copied once."""
        if self._closed:
            return
        out = self._out
        out.append(head)
        if body:
            out.append(body)
        self._out_bytes += len(head) + len(body)
        if self._out_bytes > self._out_peak:
            self._out_peak = self._out_bytes
        if self._writer_parked:
            self._writer_parked = False
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
                        io.start_soon(self._calls.sweep)
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
        self._stop_workers()
        self._out.clear()
        self._out_bytes = 0
        self._space_lot.unpark_all()
        self._calls.fail_all()

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
        decode = self.settings.decode
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
            self._last_activity = self._read_at = trio.current_time()
            splitter.feed(cast(bytes, data))
            try:
                handled = turn_bytes = 0
                while True:
                    if self._out_bytes > HIGH_WATER or len(lane) >= LANE_BACKLOG:
                        # Checked per frame, not per read: one read can hold
                        # hundreds of small requests with large answers.
                        await self._room_for_reading()
                    frame = splitter.next_split()
                    if isinstance(frame, bytes):
                        command = decode(frame)
                        turn_bytes += len(frame)
                    elif isinstance(frame, SplitFrame):
                        # Read no further until this frame is handled, so
                        # frames keep their order.
                        command = await _decode_split(frame)
                        self._read_at = trio.current_time()
                    else:
                        break
                    if command.flag & RESPONSE_FLAG:
                        self._on_response(command)
                    else:
                        self._on_request(command)
                    handled += 1
                    if handled >= FRAMES_PER_TURN or turn_bytes >= BYTES_PER_TURN:
                        handled = turn_bytes = 0
                        # Let the tasks just woken run (and the writer send their
                        # output) before decoding more: a burst is pipelined in
                        # slices instead of answered all at once after a pause.
                        await trio.lowlevel.cancel_shielded_checkpoint()
                        self._read_at = trio.current_time()
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

    async def _write_loop(self) -> None:
        stream = self._stream
        out = self._out
        while True:
            if not out:
                self._writer_parked = True
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

    async def _idle_loop(self, idle: float) -> None:
        while True:
            await trio.sleep_until(self._last_activity + idle)
            if trio.current_time() >= self._last_activity + idle:
                log.warning("closing connection %s: idle for %gs", self.remote_address, idle)
                self._report_end(ConnectionEvent.IDLE)
                self._shutdown()
                return


__all__ = [
    "BYTES_PER_TURN",
    "FRAMES_PER_TURN",
    "HIGH_WATER",
    "LANE_BACKLOG",
    "LANE_GATHER_BYTES",
    "LANE_GATHER_ROUNDS",
    "RECEIVE_SIZE",
    "Connection",
    "ConnectionEvent",
    "ConnectionSettings",
    "EventSink",
    "Permits",
    "ResponseCallback",
    "ResponseFuture",
]
