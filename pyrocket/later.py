"""A result known only after the call that returns it, handed on by a
callback instead of a waiting task.

The store answers a SYNC_FLUSH put this way: the group commit that puts
the message on disk settles its :class:`Later`, and a callback registered
by the connection sends the answer from there, so no task per put waits
for the fsync. Awaiting a :class:`Later` works too (for callers that have
a task anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

import trio

T = TypeVar("T")
U = TypeVar("U")


class Later(Generic[T]):
    """One result, a value or an error, settled once by whoever learns it.

    It has one consumer: either a plain callback (:meth:`when_settled`,
    called by the code that settles it, with no task switch) or one task
    awaiting it. :meth:`then` makes the Later of a function of the value.
    A callback's exception reaches the code that settled the Later.
    """

    __slots__ = ("_callback", "_done", "_error", "_function", "_value")

    def __init__(self) -> None:
        self._done = False
        self._value: T | None = None
        self._error: Exception | None = None
        self._callback: Callable[[Later[T]], None] | None = None
        #: For a Later made by :meth:`then`: what maps its source's value.
        self._function: Callable[[Any], T] | None = None

    @property
    def settled(self) -> bool:
        return self._done

    def settle(self, value: T) -> None:
        """The value is known: hand it to the consumer, if there is one yet."""
        self._finish(value, None)

    def fail(self, error: Exception) -> None:
        """The result is ``error``: :meth:`result` raises it."""
        self._finish(None, error)

    def _finish(self, value: T | None, error: Exception | None) -> None:
        if self._done:
            raise RuntimeError("a Later is settled once")
        self._done = True
        self._value = value
        self._error = error
        callback = self._callback
        if callback is not None:
            self._callback = None
            callback(self)

    def result(self) -> T:
        """The value, or the error raised. Only once settled."""
        if not self._done:
            raise RuntimeError("the Later is not settled yet")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def when_settled(self, callback: Callable[[Later[T]], None]) -> None:
        """Call ``callback(self)`` once settled: now if it is already."""
        if self._callback is not None:
            raise RuntimeError("a Later has one consumer")
        if self._done:
            callback(self)
        else:
            self._callback = callback

    def then(self, function: Callable[[T], U]) -> Later[U]:
        """The Later of ``function(value)``: settled when this one is, with
        this one's error (or the one ``function`` raised) as its own."""
        derived: Later[U] = Later()
        derived._function = function
        # A bound method rather than a closure: a SYNC_FLUSH send makes two
        # of these per message.
        self.when_settled(derived._settle_from)
        return derived

    def _settle_from(self, source: Later[Any]) -> None:
        function = self._function
        assert function is not None
        self._function = None
        try:
            value = function(source.result())
        except Exception as exc:
            self.fail(exc)
        else:
            self.settle(value)

    def __await__(self) -> Generator[Any, None, T]:
        if not self._done:
            event = trio.Event()
            self.when_settled(lambda _: event.set())
            yield from event.wait().__await__()
        return self.result()
