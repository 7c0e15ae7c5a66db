"""The remoting client: a table of connections by address, and calls over them.

Java's NettyRemotingClient done with trio. A :class:`RemotingClient` is an
async context manager that owns a nursery: its connections and their tasks
live there, and leaving the ``async with`` block closes them all (pending
calls fail with ConnectionClosedError). Connections are opened on first use
and reused after; concurrent callers for one address share one connect
attempt (Java's getAndCreateChannel). ``addr=None`` means "a NameServer": the
client keeps to the one it chose until its connection fails, then tries the
others in turn (Java's getAndCreateNameserverChannel).
"""

from __future__ import annotations

import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import trio

from pyrocket.errors import (
    ConfigError,
    ConnectionClosedError,
    RemotingConnectError,
    RemotingError,
    RemotingTimeoutError,
    RemotingTooMuchRequestError,
)
from pyrocket.protocol.codes import VERSION_V4_7_0, LanguageCode, SerializeType
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.frame import DEFAULT_MAX_FRAME_SIZE
from pyrocket.remoting.address import split_address, stream_addresses
from pyrocket.remoting.connection import (
    Connection,
    Permits,
    ResponseCallback,
    ResponseFuture,
)
from pyrocket.remoting.dispatch import Processor, ProcessorTable, RejectCheck
from pyrocket.remoting.events import ConnectionListener, EventQueue
from pyrocket.remoting.knobs import ConnectionKnobs
from pyrocket.remoting.tls import TlsSettings, load_client_context, open_tls_stream

log = logging.getLogger("pyrocket.remoting")

RequestHook = Callable[[RemotingCommand], RemotingCommand]
"""Changes a request just before it is sent (adds a signature, say)."""


@dataclass(frozen=True, slots=True)
class ClientConfig(ConnectionKnobs):
    """Client knobs (Java's NettyClientConfig / NettySystemConfig names in brackets).

    - ``connect_timeout`` [connectTimeoutMillis]: seconds.
    - ``async_permits`` / ``oneway_permits`` [clientAsyncSemaphoreValue /
      clientOnewaySemaphoreValue]: calls in flight.
    - ``channel_max_idle_seconds`` [clientChannelMaxIdleTimeSeconds]: 0 disables.
    - ``close_socket_if_timeout`` [clientCloseSocketIfTimeout].
    - ``max_frame_size`` [com.rocketmq.remoting.frameMaxLength].
    - ``max_in_flight_per_connection`` / ``workers_per_connection``: for
      requests servers send to this client (see ServerConfig).
    - ``serialize_type`` [rocketmq.serialize.type], ``language``,
      ``version`` [rocketmq.remoting.version]: stamped on what it sends.
    - ``tls`` [useTLS / tls.enable, tls.client.*, tls.config.file]: None
      connects in plaintext; settings connect with TLS
      (:mod:`pyrocket.remoting.tls`; the handshake counts in ``connect_timeout``).
    """

    connect_timeout: float = 3.0
    async_permits: int = 65535
    oneway_permits: int = 65535
    channel_max_idle_seconds: float = 120.0
    close_socket_if_timeout: bool = False
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    max_in_flight_per_connection: int = 1024
    workers_per_connection: int = 16
    serialize_type: SerializeType = SerializeType.JSON
    language: LanguageCode = LanguageCode.JAVA
    version: int = VERSION_V4_7_0
    tls: TlsSettings | None = None


class _Attempt:
    """One connect in progress; every caller for the address waits on it."""

    __slots__ = ("conn", "done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.conn: Connection | None = None
        self.error: RemotingError | None = None


class RemotingClient:
    """Calls to servers by address, over one reused connection per address.

    ::

        async with RemotingClient(ClientConfig(), namesrv_addresses=["127.0.0.1:9876"]) as client:
            response = await client.invoke_sync(None, request, timeout=3)

    Timeouts are in seconds. Requests that servers send back over these
    connections go to the processors registered here; codes without one are
    answered REQUEST_CODE_NOT_SUPPORTED.
    """

    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        listener: ConnectionListener | None = None,
        namesrv_addresses: Sequence[str] = (),
        rpc_hook: RequestHook | None = None,
    ) -> None:
        self.config = config or ClientConfig()
        #: Applied to every request before it is sent (Java's client RPC
        #: hook; ACL signing): returns the request to send.
        self.rpc_hook = rpc_hook
        self.processors = ProcessorTable()
        self._settings = self.config.connection_settings()
        self._permits = Permits(self.config.async_permits, self.config.oneway_permits)
        self._listener = listener
        self._events: EventQueue | None = None
        self._table: dict[str, Connection] = {}
        self._attempts: dict[str, _Attempt] = {}
        self._shields: set[trio.CancelScope] = set()
        self._random = random.Random()
        self._namesrv_addresses: list[str] = []
        self._namesrv_chosen: str | None = None
        self._namesrv_index = self._random.randrange(999)
        self._namesrv_lock = trio.Lock()
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._ssl_context: ssl.SSLContext | None = None
        if namesrv_addresses:
            self.update_namesrv_addresses(namesrv_addresses)

    # ------------------------------------------------------------------
    # Lifetime

    async def __aenter__(self) -> Self:
        if self._nursery_manager is not None:
            raise RuntimeError("a RemotingClient can be entered once")
        if self.config.tls is not None:
            # Raises ConfigError before anything runs.
            self._ssl_context = await load_client_context(self.config.tls)
        self._nursery_manager = trio.open_nursery()
        self._nursery = await self._nursery_manager.__aenter__()
        if self._listener is not None:
            self._events = EventQueue(self._listener)
            self._nursery.start_soon(self._events.deliver)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._nursery is not None and self._nursery_manager is not None
        nursery, self._nursery = self._nursery, None
        for conn in list(self._table.values()):
            conn.close()
        nursery.cancel_scope.cancel()
        for scope in list(self._shields):
            scope.cancel()
        return bool(await self._nursery_manager.__aexit__(exc_type, exc, traceback))

    def register_processor(
        self,
        code: int,
        processor: Processor,
        *,
        reject_request: RejectCheck | None = None,
        ordered: bool = False,
    ) -> None:
        """Answer requests with ``code`` that servers send to this client
        (``ordered``: in the order each connection read them)."""
        self.processors.register(code, processor, reject_request=reject_request, ordered=ordered)

    def register_default_processor(
        self, processor: Processor, *, reject_request: RejectCheck | None = None
    ) -> None:
        """Answer every server-sent request code without its own processor."""
        self.processors.register_default(processor, reject_request=reject_request)

    @property
    def connections(self) -> dict[str, Connection]:
        """Open connections by the address they were opened for."""
        return {addr: conn for addr, conn in self._table.items() if conn.is_open}

    def close_connection(self, addr: str) -> None:
        """Close the connection to ``addr``, if any; the next call reconnects."""
        conn = self._table.pop(addr, None)
        if conn is not None:
            conn.close()

    # ------------------------------------------------------------------
    # NameServer addresses

    @property
    def namesrv_addresses(self) -> list[str]:
        return list(self._namesrv_addresses)

    @property
    def chosen_namesrv(self) -> str | None:
        """The NameServer ``addr=None`` calls currently go to."""
        return self._namesrv_chosen

    def update_namesrv_addresses(self, addresses: Sequence[str]) -> None:
        """Set the NameServer list (ignored when empty or the same set).

        As Java does, a changed list is shuffled, so that clients spread over
        the NameServers.
        """
        new = [a.strip() for a in addresses if a.strip()]
        if not new:
            return
        old = self._namesrv_addresses
        if len(new) == len(old) and all(a in old for a in new):
            return
        self._random.shuffle(new)
        log.info("name server address updated. NEW : %s , OLD: %s", new, old)
        self._namesrv_addresses = new

    # ------------------------------------------------------------------
    # Calls

    async def get_connection(self, addr: str | None) -> Connection:
        """The open connection to ``addr`` (a NameServer for None), opening it
        if needed. Raises RemotingConnectError."""
        if addr is None:
            return await self._namesrv_connection()
        conn = self._table.get(addr)
        if conn is not None and conn.is_open:
            return conn
        return await self._connect(addr)

    async def invoke_sync(
        self,
        addr: str | None,
        request: RemotingCommand,
        timeout: float,  # noqa: ASYNC109 (Java's API: the timeout belongs to the call)
        *,
        as_is: bool = False,
    ) -> RemotingCommand:
        """Send ``request`` to ``addr`` and return the response (any code).

        ``timeout`` (seconds) covers connecting and waiting. Raises
        RemotingConnectError, RemotingTimeoutError, ConnectionClosedError.
        """
        if self.rpc_hook is not None:
            request = self.rpc_hook(request)
        conn = self._table.get(addr) if addr is not None else None
        if conn is not None and conn.is_open:
            remaining = timeout  # the common case: no time spent connecting
        else:
            start = trio.current_time()
            conn = await self.get_connection(addr)
            remaining = timeout - (trio.current_time() - start)
            if remaining <= 0:
                raise RemotingTimeoutError("invokeSync call timeout")
        try:
            return await conn.invoke(request, remaining, as_is=as_is)
        except RemotingTimeoutError:
            if self.config.close_socket_if_timeout:
                log.warning("closing %s after a timeout of %gs", conn.remote_address, timeout)
                self._close(addr, conn)
            raise

    async def invoke_async(
        self,
        addr: str | None,
        request: RemotingCommand,
        timeout: float,  # noqa: ASYNC109
        callback: ResponseCallback | None = None,
        *,
        as_is: bool = False,
    ) -> ResponseFuture:
        """Send ``request`` and return a ResponseFuture (await it, or pass a
        ``callback(future)``; see ResponseFuture).

        Raises RemotingConnectError, RemotingTooMuchRequestError (connecting
        used up ``timeout``, or no async permit and ``timeout`` <= 0),
        RemotingTimeoutError (no async permit within ``timeout``),
        ConnectionClosedError.
        """
        if self.rpc_hook is not None:
            request = self.rpc_hook(request)
        start = trio.current_time()
        conn = await self.get_connection(addr)
        remaining = timeout - (trio.current_time() - start)
        if remaining <= 0:
            raise RemotingTooMuchRequestError("invokeAsync call timeout")
        return await conn.invoke_async(request, remaining, callback, as_is=as_is)

    async def invoke_oneway(
        self,
        addr: str | None,
        request: RemotingCommand,
        timeout: float = 3.0,  # noqa: ASYNC109
        *,
        as_is: bool = False,
    ) -> None:
        """Send ``request`` flagged oneway. ``timeout`` bounds the wait for a
        oneway permit. Raises RemotingConnectError, RemotingTooMuchRequestError,
        RemotingTimeoutError, ConnectionClosedError."""
        if self.rpc_hook is not None:
            request = self.rpc_hook(request)
        conn = await self.get_connection(addr)
        await conn.invoke_oneway(request, timeout, as_is=as_is)

    # ------------------------------------------------------------------
    # Connections

    def _close(self, addr: str | None, conn: Connection) -> None:
        for key, value in list(self._table.items()):
            if value is conn:
                del self._table[key]
        conn.close()

    async def _connect(self, addr: str) -> Connection:
        nursery = self._nursery
        if nursery is None:
            raise ConnectionClosedError("the client is not running (use `async with`)")
        attempt = self._attempts.get(addr)
        if attempt is None:
            attempt = _Attempt()
            self._attempts[addr] = attempt
            nursery.start_soon(self._shielded, self._open, addr, attempt, nursery)
        await attempt.done.wait()
        if attempt.conn is not None:
            return attempt.conn
        assert attempt.error is not None
        raise attempt.error

    async def _open(self, addr: str, attempt: _Attempt, nursery: trio.Nursery) -> None:
        try:
            host, port = split_address(addr)
            with trio.fail_after(self.config.connect_timeout):
                stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
                if self._ssl_context is not None:
                    try:
                        stream = await open_tls_stream(stream, self._ssl_context, host)
                    except BaseException:
                        await trio.aclose_forcefully(stream)
                        raise
        except trio.BrokenResourceError as exc:
            reason = f"TLS handshake failed: {exc.__cause__ or exc}"
            log.warning("connect to %s failed: %s", addr, reason)
            error = RemotingConnectError(f"connect to {addr} failed: {reason}")
            error.__cause__ = exc
            attempt.error = error
        except (OSError, trio.TooSlowError, ConfigError) as exc:
            reason = "timeout" if isinstance(exc, trio.TooSlowError) else str(exc)
            log.warning("connect to %s failed: %s", addr, reason)
            error = RemotingConnectError(f"connect to {addr} failed: {reason}")
            error.__cause__ = exc
            attempt.error = error
        else:
            remote, local = stream_addresses(stream)
            conn = Connection(
                stream,
                remote_address=remote or addr,
                local_address=local,
                settings=self._settings,
                processors=self.processors,
                permits=self._permits,
                events=self._events,
            )
            log.info("connected to %s (%s)", addr, local)
            self._table[addr] = conn
            attempt.conn = conn
            # Started even when the client is closing: run() then closes it.
            nursery.start_soon(self._shielded, self._run, addr, conn)
        finally:
            if attempt.conn is None and attempt.error is None:
                attempt.error = ConnectionClosedError(f"client closed while connecting to {addr}")
            del self._attempts[addr]
            attempt.done.set()

    async def _shielded(self, work: Callable[..., Awaitable[None]], *args: Any) -> None:
        # Connections outlive a cancellation of the scope around the client
        # until the client itself closes: its owner's shielded cleanup (a
        # consumer committing its offsets) still has them. __aexit__ cancels.
        with trio.CancelScope(shield=True) as scope:
            self._shields.add(scope)
            try:
                if self._nursery is None:
                    scope.cancel()
                await work(*args)
            finally:
                self._shields.discard(scope)

    async def _run(self, addr: str, conn: Connection) -> None:
        try:
            await conn.run()
        finally:
            if self._table.get(addr) is conn:
                del self._table[addr]

    async def _namesrv_connection(self) -> Connection:
        chosen = self._namesrv_chosen
        if chosen is not None:
            conn = self._table.get(chosen)
            if conn is not None and conn.is_open:
                return conn
        async with self._namesrv_lock:
            chosen = self._namesrv_chosen
            if chosen is not None:
                conn = self._table.get(chosen)
                if conn is not None and conn.is_open:
                    return conn
            addresses = self._namesrv_addresses
            if not addresses:
                raise RemotingConnectError("no name server address set")
            for _ in range(len(addresses)):
                self._namesrv_index += 1
                candidate = addresses[self._namesrv_index % len(addresses)]
                log.info("new name server is chosen. OLD: %s , NEW: %s", chosen, candidate)
                self._namesrv_chosen = candidate
                try:
                    return await self.get_connection(candidate)
                except RemotingConnectError:
                    continue
            raise RemotingConnectError(f"no name server reachable of {addresses}")
