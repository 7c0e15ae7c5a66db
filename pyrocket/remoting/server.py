"""The remoting server: accepts connections and runs processors for them.

Java's NettyRemotingServer done with trio: :meth:`RemotingServer.serve` binds,
reports the bound port through ``task_status`` and serves until cancelled;
each accepted connection is a :class:`~pyrocket.remoting.connection.Connection`
run in its own task. Cancelling ``serve`` closes the listeners and every
connection; nothing is left running.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, NoReturn

import trio

from pyrocket.protocol.codes import VERSION_V4_7_0, LanguageCode, SerializeType
from pyrocket.protocol.frame import DEFAULT_MAX_FRAME_SIZE
from pyrocket.protocol.repeated import RepeatedHeaders
from pyrocket.remoting.address import stream_addresses
from pyrocket.remoting.connection import Connection, Permits
from pyrocket.remoting.dispatch import Processor, ProcessorTable, RejectCheck
from pyrocket.remoting.events import ConnectionListener, EventQueue
from pyrocket.remoting.knobs import ConnectionKnobs
from pyrocket.remoting.logs import RepeatLimiter
from pyrocket.remoting.tls import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_WATCH_INTERVAL,
    TlsAcceptor,
    TlsSettings,
)

log = logging.getLogger("pyrocket.remoting")

#: accept() errors that mean "out of descriptors or memory for now": the
#: listener waits a little and tries again (trio's serve_listeners does the same).
ACCEPT_CAPACITY_ERRNOS: Final = frozenset(
    code
    for code in (getattr(errno, name, None) for name in ("EMFILE", "ENFILE", "ENOMEM", "ENOBUFS"))
    if code is not None
)
#: Seconds to wait after such an error before accepting again.
ACCEPT_RETRY_SECONDS: Final = 0.1
#: Seconds between two log lines about the same accept error.
ACCEPT_LOG_INTERVAL: Final = 10.0


async def accept_loop(
    listener: trio.abc.Listener[trio.SocketStream],
    nursery: trio.Nursery,
    handler: Callable[[trio.SocketStream], Awaitable[None]],
) -> NoReturn:
    """Accept connections from ``listener`` forever, each handled in its own
    task of ``nursery``. Running out of descriptors (EMFILE and the like)
    pauses accepting briefly; the error is logged once per
    ``ACCEPT_LOG_INTERVAL`` whatever its rate. Other errors propagate."""
    limiters: dict[int, RepeatLimiter] = {}
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                code = exc.errno
                if code is None or code not in ACCEPT_CAPACITY_ERRNOS:
                    raise
                limiter = limiters.setdefault(code, RepeatLimiter(ACCEPT_LOG_INTERVAL))
                limiter.log(
                    log,
                    logging.ERROR,
                    trio.current_time(),
                    "accept failed: %s; retrying every %gs",
                    exc,
                    ACCEPT_RETRY_SECONDS,
                )
                await trio.sleep(ACCEPT_RETRY_SECONDS)
            else:
                nursery.start_soon(handler, stream)


@dataclass(frozen=True, slots=True)
class ServerConfig(ConnectionKnobs):
    """Server knobs (Java's NettyServerConfig / NettySystemConfig names in brackets).

    - ``listen_port`` [listenPort]: used when ``serve`` is given no port.
    - ``max_frame_size`` [com.rocketmq.remoting.frameMaxLength]: bytes, length word included.
    - ``channel_max_idle_seconds`` [serverChannelMaxIdleTimeSeconds]: 0 disables.
    - ``max_in_flight_per_connection``: requests accepted and unanswered per
      connection before SYSTEM_BUSY; ``workers_per_connection``: processors
      running at once per connection (Java's executors, per connection).
    - ``async_permits`` / ``oneway_permits`` [serverAsyncSemaphoreValue /
      serverOnewaySemaphoreValue]: calls the server makes to its clients.
    - ``serialize_type`` [rocketmq.serialize.type], ``language``,
      ``version`` [rocketmq.remoting.version]: stamped on what it sends.
    - ``tls`` [tls.server.*, tls.config.file]: TLS per ``tls.server.mode``
      (:mod:`pyrocket.remoting.tls`); ``tls_handshake_timeout``: seconds a
      TLS peer has for its handshake; ``tls_watch_interval``: seconds between
      looks at the certificate files (reloaded when they change).
    """

    listen_port: int = 8888
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    channel_max_idle_seconds: float = 120.0
    max_in_flight_per_connection: int = 1024
    workers_per_connection: int = 64
    async_permits: int = 64
    oneway_permits: int = 256
    serialize_type: SerializeType = SerializeType.JSON
    language: LanguageCode = LanguageCode.JAVA
    version: int = VERSION_V4_7_0
    tls: TlsSettings = field(default_factory=TlsSettings)
    tls_handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    tls_watch_interval: float = DEFAULT_WATCH_INTERVAL


class RemotingServer:
    """Processors by request code, served over TCP.

    Register processors, then run :meth:`serve` in a nursery::

        server = RemotingServer(ServerConfig(listen_port=9876), listener=housekeeping)
        server.register_processor(RequestCode.GET_ROUTEINFO_BY_TOPIC, get_route)
        server.register_default_processor(handle_request)
        port = await nursery.start(server.serve, "0.0.0.0")

    A request whose code has no processor (and no default) is answered
    REQUEST_CODE_NOT_SUPPORTED. ``connections`` lists the open connections;
    requests to a client go through its connection's ``invoke*`` methods.
    """

    def __init__(
        self, config: ServerConfig | None = None, *, listener: ConnectionListener | None = None
    ) -> None:
        self.config = config or ServerConfig()
        self.processors = ProcessorTable()
        self._settings = self.config.connection_settings()
        self._permits = Permits(self.config.async_permits, self.config.oneway_permits)
        self._listener = listener
        self._connections: set[Connection] = set()
        #: The headers of the ``repeated`` codes, kept for every connection
        #: (accepted after the code's registration).
        self._headers = RepeatedHeaders()
        self._repeating = dataclasses.replace(self._settings, decode=self._headers.decode)

    def register_processor(
        self,
        code: int,
        processor: Processor,
        *,
        reject_request: RejectCheck | None = None,
        ordered: bool = False,
        repeated: bool = False,
    ) -> None:
        """Answer requests with ``code`` by ``processor``.

        ``reject_request()`` returning True makes the server answer
        SYSTEM_BUSY "[REJECTREQUEST]..." without running the processor.
        ``ordered``: apply these requests of one connection strictly in the
        order they were read (see :mod:`pyrocket.remoting.dispatch`).
        ``repeated``: clients send these requests with the same header again
        and again, so their headers are kept decoded
        (:class:`~pyrocket.protocol.repeated.RepeatedHeaders`).
        """
        self.processors.register(code, processor, reject_request=reject_request, ordered=ordered)
        if repeated:
            self._headers.add_code(code)

    def register_default_processor(
        self, processor: Processor, *, reject_request: RejectCheck | None = None
    ) -> None:
        """Answer every code without its own processor by ``processor``."""
        self.processors.register_default(processor, reject_request=reject_request)

    @property
    def repeated_headers(self) -> RepeatedHeaders:
        """The kept headers of the ``repeated`` codes."""
        return self._headers

    @property
    def connections(self) -> frozenset[Connection]:
        """The connections being served (an entry leaves when its run ends)."""
        return frozenset(self._connections)

    async def serve(
        self,
        host: str | None = "0.0.0.0",
        port: int | None = None,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Bind ``host:port`` (``port`` defaults to the config's listen port; 0
        picks a free one), report the bound port and serve until cancelled.

        Raises OSError when the address cannot be bound, ConfigError when
        the TLS settings cannot be used.
        """
        acceptor = await TlsAcceptor.create(
            self.config.tls, handshake_timeout=self.config.tls_handshake_timeout
        )
        listeners = await trio.open_tcp_listeners(
            self.config.listen_port if port is None else port, host=host
        )
        bound = listeners[0].socket.getsockname()[1]
        log.info("remoting server listening on %s:%d", host or "*", bound)
        async with trio.open_nursery() as nursery:
            events = None
            if self._listener is not None:
                events = EventQueue(self._listener)
                nursery.start_soon(events.deliver)

            async def handle(stream: trio.SocketStream) -> None:
                await self._handle(stream, events, acceptor)

            if acceptor is not None:
                nursery.start_soon(acceptor.watch, self.config.tls_watch_interval)
            for listener in listeners:
                nursery.start_soon(accept_loop, listener, nursery, handle)
            task_status.started(bound)
            await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _handle(
        self, stream: trio.SocketStream, events: EventQueue | None, acceptor: TlsAcceptor | None
    ) -> None:
        remote, local = stream_addresses(stream)
        served: trio.abc.Stream = stream
        if acceptor is not None:
            # The peer's first byte (and a TLS handshake) is waited for here,
            # in this connection's own task, bounded by the idle time.
            wrapped = await acceptor.accept(
                stream, remote, first_byte_timeout=self.config.channel_max_idle_seconds or None
            )
            if wrapped is None:
                return
            served = wrapped
        conn = Connection(
            served,
            remote_address=remote,
            local_address=local,
            settings=self._repeating if self._headers.codes else self._settings,
            processors=self.processors,
            permits=self._permits,
            events=events,
        )
        log.info("accepted connection from %s", remote)
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)
            log.info("connection from %s closed", remote)
