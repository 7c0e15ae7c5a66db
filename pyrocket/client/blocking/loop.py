"""One trio loop in a daemon thread, holding one async pyrocket client open
between ``start`` and ``stop``; other threads call into it with
``trio.from_thread``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, suppress
from typing import Any, Generic, TypeVar

import trio

from pyrocket.client.blocking.exceptions import NullPointerException

log = logging.getLogger("pyrocket.client.blocking")

C = TypeVar("C")
T = TypeVar("T")


class ClientThread(Generic[C]):
    """Runs ``open_client()`` (an async context manager giving the client)
    in a trio loop of its own thread, until :meth:`stop`."""

    def __init__(
        self, name: str, open_client: Callable[[], AbstractAsyncContextManager[C]]
    ) -> None:
        self.name = name
        self._open_client = open_client
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self._client: C | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._client is not None

    def start(self) -> None:
        """Start the thread and wait until the client is open; raises what
        opening it raised."""
        thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread = thread
        thread.start()
        self._ready.wait()
        if self._error is not None:
            thread.join()
            self._thread = None
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # handed to start(), or logged
            if not self._ready.is_set():
                self._error = exc
            else:
                log.exception("%s: the client's loop failed", self.name)
        finally:
            self._client = None
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        stop = self._stop = trio.Event()
        async with self._open_client() as client, trio.open_nursery() as nursery:
            self._nursery = nursery
            self._client = client
            self._ready.set()
            await stop.wait()
            nursery.cancel_scope.cancel()

    def _checked(self) -> tuple[trio.lowlevel.TrioToken, C]:
        token, client = self._token, self._client
        if token is None or client is None or not self.running:
            raise NullPointerException(f"{self.name} is not running")
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"{self.name}: a blocking call from the client's own loop thread")
        return token, client

    def call(self, function: Callable[[C], Awaitable[T]]) -> T:
        """Run ``await function(client)`` in the loop and return its result."""
        token, client = self._checked()

        async def run() -> T:
            return await function(client)

        try:
            return trio.from_thread.run(run, trio_token=token)
        except trio.RunFinishedError as exc:
            raise NullPointerException(f"{self.name} is not running") from exc

    def spawn(self, function: Callable[[C], Awaitable[Any]]) -> None:
        """Start ``function(client)`` as a task of the loop's nursery."""
        token, client = self._checked()
        nursery = self._nursery
        assert nursery is not None
        try:
            trio.from_thread.run_sync(nursery.start_soon, function, client, trio_token=token)
        except trio.RunFinishedError as exc:
            raise NullPointerException(f"{self.name} is not running") from exc

    def stop(self) -> None:
        """Close the client, end the loop and join the thread (idempotent)."""
        thread, token, stop = self._thread, self._token, self._stop
        if thread is None:
            return
        if threading.current_thread() is thread:
            raise RuntimeError(f"{self.name}: shutdown from the client's own loop thread")
        if token is not None and stop is not None:
            with suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join()
        self._thread = None
