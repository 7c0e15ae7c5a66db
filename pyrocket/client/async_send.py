"""Sends that do not wait for their answer (Java's async ``send(msg,
SendCallback)``): each runs as a task in the producer's nursery, at most
``client_async_semaphore_value`` (Java's default 65535) at once, and reports
through a :class:`SendFuture` or through callbacks::

    futures = [await producer.send_async(m) for m in messages]  # all in flight
    results = [await f for f in futures]                         # SendResult each

    await producer.send_with_callback(m, on_success=print, on_exception=log_it)

``await producer.send_async(m)`` returns as soon as the send holds a permit
(waiting, within the send's timeout, while the limit is reached); awaiting
the future gives the :class:`~pyrocket.client.producer.SendResult` or raises
what the send raised. Cancelling the caller while it awaits a future leaves
the send running; closing the producer waits for sends in flight (up to
their timeouts) when the ``async with`` block ends normally, and cancels them
otherwise (their futures then raise ClientError).

As Java's async path does, an attempt that fails in transport (connect,
write, no answer in time, no broker address) is tried again on a queue the
fault strategy picks, at most ``retry_times_when_send_async_failed`` times
(2); an error answer from the broker is not retried. A send with a shard
key or a selector retries on its own queue, and sends with one shard key go
one at a time, in the order they were started, so the key's queue gets them
in that order. A callback holds its send's permit until it returns.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Generator, Hashable
from typing import Any, Generic, TypeVar

import trio

from pyrocket.client.instance import ClientError
from pyrocket.errors import RemotingError, RemotingTimeoutError, RemotingTooMuchRequestError
from pyrocket.protocol.bodies.client import MessageQueue

log = logging.getLogger("pyrocket.client.async_send")

#: Java's NettyClientConfig.clientAsyncSemaphoreValue.
CLIENT_ASYNC_SEMAPHORE_VALUE = 65535
#: How long past the latest send's deadline closing waits for its callbacks.
_DRAIN_GRACE = 1.0

T = TypeVar("T")

#: A callback: a plain function or a coroutine function.
Callback = Callable[[T], Awaitable[None] | None]


class SendFuture(Generic[T]):
    """The outcome of one async send: ``await future`` (or
    ``await future.result()``) returns it or raises its error."""

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        """Whether the send has finished, well or not."""
        return self._event.is_set()

    async def result(self) -> T:
        """Wait for the send; raises what it raised."""
        await self._event.wait()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value

    def __await__(self) -> Generator[Any, None, T]:
        return self.result().__await__()

    def _finish(self, value: T | None, error: BaseException | None) -> None:
        if not self._event.is_set():
            self._value, self._error = value, error
            self._event.set()


class AsyncSends:
    """The async sends of one producer: the permit semaphore and the tasks."""

    def __init__(self, permits: int = CLIENT_ASYNC_SEMAPHORE_VALUE) -> None:
        if permits <= 0:
            raise ValueError("client_async_semaphore_value must be positive")
        self.permits = permits
        self._semaphore = trio.Semaphore(permits)
        self._deadlines: dict[int, float] = {}
        #: The latest send of each ordering key, ended when it is answered.
        self._tails: dict[Hashable, trio.Event] = {}
        self._idle = trio.Event()
        self._idle.set()
        self._next = 0

    @property
    def in_flight(self) -> int:
        """Sends started and not finished."""
        return self.permits - self._semaphore.value

    async def start(
        self,
        nursery: trio.Nursery,
        run: Callable[[float], Awaitable[T]],
        timeout: float,  # noqa: ASYNC109 (the send's whole budget)
        on_success: Callback[T] | None = None,
        on_exception: Callback[BaseException] | None = None,
        order: Hashable | None = None,
    ) -> SendFuture[T]:
        """Take a permit (waiting at most ``timeout``), then run
        ``run(deadline)`` in ``nursery``. Sends with the same ``order`` key
        run one after the other, in the order of their ``start`` calls (each
        once the previous one has its answer or failed). Raises
        RemotingTimeoutError when no permit came in time
        (RemotingTooMuchRequestError for a zero budget)."""
        deadline = trio.current_time() + timeout
        if timeout <= 0:
            raise RemotingTooMuchRequestError("invokeAsyncImpl invoke too fast")
        acquired = False
        try:
            # A free permit (the usual case) needs no cancel scope.
            await trio.lowlevel.checkpoint_if_cancelled()
            self._semaphore.acquire_nowait()
            acquired = True
            await trio.lowlevel.cancel_shielded_checkpoint()
        except trio.WouldBlock:
            with trio.move_on_at(deadline):
                await self._semaphore.acquire()
                acquired = True
        if not acquired:
            raise RemotingTimeoutError(
                f"invokeAsyncImpl tryAcquire semaphore timeout, {timeout * 1000:.0f}ms, "
                f"waiting thread nums: {self.in_flight} semaphoreAsyncValue: {self.permits}"
            )
        future: SendFuture[T] = SendFuture()
        key = self._next
        self._next += 1
        self._deadlines[key] = deadline
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        previous: trio.Event | None = None
        mine: trio.Event | None = None
        if order is not None:
            previous = self._tails.get(order)
            mine = self._tails[order] = trio.Event()
        try:
            nursery.start_soon(
                self._run,
                key,
                run,
                deadline,
                future,
                on_success,
                on_exception,
                (order, previous, mine),
            )
        except BaseException:
            self._end_order(order, mine)
            self._release(key)
            raise
        return future

    def _end_order(self, order: Hashable | None, mine: trio.Event | None) -> None:
        if mine is None:
            return
        mine.set()
        if self._tails.get(order) is mine:
            del self._tails[order]

    async def _run(
        self,
        key: int,
        run: Callable[[float], Awaitable[T]],
        deadline: float,
        future: SendFuture[T],
        on_success: Callback[T] | None,
        on_exception: Callback[BaseException] | None,
        chain: tuple[Hashable | None, trio.Event | None, trio.Event | None],
    ) -> None:
        order, previous, mine = chain
        try:
            try:
                if previous is not None:
                    with trio.move_on_at(deadline):
                        await previous.wait()
                try:
                    value = await run(deadline)
                finally:
                    self._end_order(order, mine)
            except trio.Cancelled:
                future._finish(None, ClientError("the producer closed before the send finished"))
                raise
            except Exception as exc:
                future._finish(None, exc)
                if on_exception is not None:
                    await _call(on_exception, exc)
            else:
                future._finish(value, None)
                if on_success is not None:
                    await _call(on_success, value)
        finally:
            self._release(key)

    def _release(self, key: int) -> None:
        self._deadlines.pop(key, None)
        self._semaphore.release()
        if not self._deadlines:
            self._idle.set()

    async def drain(self) -> None:
        """Wait for the sends in flight, at most until shortly after the
        latest one's deadline."""
        if not self._deadlines:
            return
        with trio.move_on_at(max(self._deadlines.values()) + _DRAIN_GRACE):
            await self._idle.wait()


async def _call(callback: Callback[T], value: T) -> None:
    # Java ignores what a SendCallback throws; it is logged here.
    try:
        outcome = callback(value)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception:
        log.exception("a send callback failed")


def order_key(topic: str, arg: object) -> Hashable:
    """The ordering key of an async send to ``topic`` with shard key
    ``arg``; an ``arg`` that cannot be hashed orders all keyed sends of the
    topic."""
    try:
        hash(arg)
    except TypeError:
        return topic
    return (topic, arg)


async def retry_async(
    first: MessageQueue,
    attempt: Callable[[MessageQueue, float], Awaitable[T]],
    retries: int,
    deadline: float,
    select: Callable[[str | None], MessageQueue] | None,
) -> T:
    """Java's async retry rule: ``attempt(queue, timeout)`` again after a
    transport failure (on ``select(failed broker)``'s queue, or the same one
    without ``select``), at most ``retries`` more times, within ``deadline``.
    Raises the last failure, ResponseError at once, and
    RemotingTooMuchRequestError when the time is up before an attempt."""
    queue = first
    last: Exception | None = None
    for _ in range(1 + max(0, retries)):
        remaining = deadline - trio.current_time()
        if remaining <= 0 or math.isnan(remaining):
            raise RemotingTooMuchRequestError("DEFAULT ASYNC send call timeout") from last
        try:
            return await attempt(queue, remaining)
        except (RemotingError, ClientError) as exc:
            last = exc
        log.info("async send to %s failed (%s); trying again", queue, last)
        if select is not None:
            queue = select(queue.broker_name)
    assert last is not None
    raise last


__all__ = [
    "CLIENT_ASYNC_SEMAPHORE_VALUE",
    "AsyncSends",
    "Callback",
    "SendFuture",
    "order_key",
    "retry_async",
]
