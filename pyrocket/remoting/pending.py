"""Calls sent on a connection and waiting for their response.

:class:`PendingCalls` is a connection's table of them by opaque, with the
deadline of each in a :class:`~pyrocket.remoting.deadlines.DeadlineTimer`: a
sweeper task (run by the connection) fails a call whose deadline passed with
RemotingTimeoutError, since an :meth:`invoke_async` call may have nobody
awaiting it. :class:`_SyncCall` is the slot of a caller parked in
``Connection.invoke``; :class:`ResponseFuture` the outcome handed out by
``Connection.invoke_async``. :class:`Permits` bound the async and oneway calls
in flight (Java's semaphores), shared by every connection of a server or client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import Any, Final

import trio

from pyrocket.errors import (
    ConnectionClosedError,
    RemotingError,
    RemotingTimeoutError,
    RemotingTooMuchRequestError,
)
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting.deadlines import DeadlineTimer

log = logging.getLogger("pyrocket.remoting")

_INT32_MAX: Final = (1 << 31) - 1


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


class PendingCalls:
    """The calls of one connection waiting for a response, by opaque, and
    their deadlines.

    It assigns the opaques. ``calls`` is the table itself and ``deadlines``
    the timer of the calls in it (the connection uses both directly on the
    hot path: each call added to ``calls`` is pushed to ``deadlines`` with
    the number of calls); :meth:`sweep` (a task of the connection) times out
    the calls whose deadline passed.
    """

    __slots__ = ("_opaque", "calls", "deadlines", "remote_address")

    def __init__(self, remote_address: str) -> None:
        self.remote_address = remote_address
        self._opaque = 0
        self.calls: dict[int, _SyncCall | ResponseFuture] = {}
        # The opaque of every call; entries of completed calls are skipped
        # when they come up and pruned when they pile up.
        self.deadlines: DeadlineTimer[int] = DeadlineTimer(self._is_pending)

    def next_opaque(self) -> int:
        """The next opaque (wrapping at the int32 maximum) no pending call has."""
        pending = self.calls
        while True:
            opaque = self._opaque
            self._opaque = opaque + 1 if opaque < _INT32_MAX else 0
            if opaque not in pending:
                return opaque

    def _is_pending(self, deadline: float, opaque: int) -> bool:
        call = self.calls.get(opaque)
        return call is not None and call.deadline == deadline

    def fail_all(self) -> None:
        """Fail every pending call with ConnectionClosedError (the connection
        closed) and forget the deadlines."""
        pending = list(self.calls.values())
        self.calls.clear()
        self.deadlines.clear()
        if pending:
            error = ConnectionClosedError(f"connection to {self.remote_address} closed")
            for call in pending:
                call._complete(None, error)

    def timeout_error(self, timeout: float) -> RemotingTimeoutError:
        return RemotingTimeoutError(
            f"wait response on the channel <{self.remote_address}> timeout, {_ms(timeout)}(ms)"
        )

    async def sweep(self) -> None:
        """Fail each call when its deadline passes; runs until cancelled."""
        await self.deadlines.run(self._expire)

    def _expire(self, opaque: int) -> None:
        call = self.calls.pop(opaque)
        log.warning("removing timed-out request %d to %s", opaque, self.remote_address)
        call._complete(None, self.timeout_error(call.timeout))
