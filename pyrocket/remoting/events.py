"""Connection events (connect, close, exception, idle) and their delivery.

A server or client hands every event of its connections to one
:class:`ConnectionListener`, from one task, in the order they happened, the way
Java's ChannelEventListener is fed by a single event thread. Delivery is
decoupled from the connections: a slow listener delays later events, never the
traffic. The queue is bounded (Java drops events past 10,000 queued; so do we,
with a warning).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import trio

from pyrocket.remoting.connection import ConnectionEvent

if TYPE_CHECKING:
    from pyrocket.remoting.connection import Connection

log = logging.getLogger("pyrocket.remoting")

#: Events queued beyond this many are dropped (Java's NettyEventExecutor bound).
MAX_QUEUED_EVENTS: Final = 10_000


class ConnectionListener:
    """Receives connection events; every method is a no-op unless overridden.

    ``on_connect`` follows an accepted or established connection. A connection
    that ends sees at most one of ``on_exception`` (a transport error or bytes
    that are not a valid frame) or ``on_idle`` (no traffic either way for the
    configured idle time; the connection is then closed), always followed by
    exactly one ``on_close``. Exceptions raised by a listener are logged and
    otherwise ignored. Events are delivered after the fact: by the time
    ``on_close`` runs, the connection is already closed.
    """

    async def on_connect(self, conn: Connection) -> None:
        """A connection was accepted or established."""

    async def on_close(self, conn: Connection) -> None:
        """A connection is closed, whatever the reason."""

    async def on_exception(self, conn: Connection) -> None:
        """A connection failed: transport error or undecodable input."""

    async def on_idle(self, conn: Connection) -> None:
        """A connection carried no traffic for the idle time and is closing."""


class EventQueue:
    """The ordered, bounded hand-off from connections to one listener.

    Connections call :meth:`put` (never blocks); :meth:`deliver` runs as one
    task of the owning server or client and calls the listener.
    """

    def __init__(self, listener: ConnectionListener, max_queued: int = MAX_QUEUED_EVENTS) -> None:
        self._listener = listener
        self._send, self._receive = trio.open_memory_channel[tuple[ConnectionEvent, "Connection"]](
            max_queued
        )

    def put(self, event: ConnectionEvent, conn: Connection) -> None:
        try:
            self._send.send_nowait((event, conn))
        except trio.WouldBlock:
            log.warning("event queue full, dropping %s event of %s", event.value, conn)
        except trio.ClosedResourceError:
            pass  # the owner is shutting down; nobody listens any more

    async def deliver(self) -> None:
        """Call the listener for each event, forever (until cancelled)."""
        listener = self._listener
        handlers = {
            ConnectionEvent.CONNECT: listener.on_connect,
            ConnectionEvent.CLOSE: listener.on_close,
            ConnectionEvent.EXCEPTION: listener.on_exception,
            ConnectionEvent.IDLE: listener.on_idle,
        }
        async for event, conn in self._receive:
            try:
                await handlers[event](conn)
            except Exception:
                log.exception("connection listener failed on %s event of %s", event.value, conn)


__all__ = ["MAX_QUEUED_EVENTS", "ConnectionEvent", "ConnectionListener", "EventQueue"]
