"""The master side of replication (Java's ``HAService``, ``HAConnection``
and ``GroupTransferService``).

:meth:`HAService.serve` listens on ``haListenPort``. Each slave connection
runs two tasks: one reads the slave's offset reports (the newest counts; the
first one says where to start, 0 meaning "the beginning of my last
commit-log file"), and closes the connection when the slave has sent nothing
for ``haHousekeepingInterval``; the other sends commit-log bytes from there
on, at most ``haTransferBatchSize`` a frame and never across a file's end,
and a header-only heartbeat after ``haSendHeartbeatInterval`` without a
frame. The highest offset any slave acknowledged is
:attr:`HAService.push2slave_max_offset`, which SYNC_MASTER sends wait on
(:meth:`HAService.wait_replicated`) without holding anything else up.

The HA port honours the broker's ``tls.server.mode`` through the same
:class:`~pyrocket.remoting.tls.TlsAcceptor` as the remoting servers (Java
4.7.0's HA port is plain TCP, see docs/deviations.md): ``permissive`` serves
TLS and plaintext slaves alike, ``enforcing`` closes plaintext ones,
``disabled`` does not wrap. The slave speaks first (its 8-byte offset
report), so the acceptor's first-byte look works: a plaintext report's first
byte is the top byte of a big-endian offset, 0x16 (a TLS record's) only for
offsets of 0x16 << 56 bytes and more, which no commit log reaches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import trio
from trio_util import AsyncValue

from pyrocket.broker.ha.ports import ReplicatedStore
from pyrocket.broker.store.model import MessageArrival
from pyrocket.errors import ProtocolError
from pyrocket.protocol.ha import OffsetReportReader, encode_transfer_header
from pyrocket.remoting.tls import DEFAULT_WATCH_INTERVAL, TlsAcceptor, TlsSettings

log = logging.getLogger("pyrocket.broker.ha")

#: Longest a sender sleeps before looking for new data anyway (Java: 100 ms).
_POLL_S = 0.1
#: A master logs how far its slaves are behind: first after 10 s, then
#: every 60 s (Java's ``printMasterAndSlaveDiff`` schedule).
FALL_BEHIND_FIRST_S = 10.0
FALL_BEHIND_PERIOD_S = 60.0


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class HAConnection:
    """One slave, while it is connected."""

    def __init__(self, service: HAService, stream: trio.abc.Stream, peer: str) -> None:
        self._service = service
        self._stream = stream
        self.peer = peer
        #: The slave's first report: where transfer starts (None until it came).
        self.slave_request_offset: int | None = None
        #: The slave's newest report.
        self.slave_ack_offset = 0
        #: Where the next frame starts (None until transfer began).
        self.next_transfer_from: int | None = None
        self._requested = trio.Event()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_reports, nursery.cancel_scope)
            nursery.start_soon(self._transfer, nursery.cancel_scope)

    async def _read_reports(self, done: trio.CancelScope) -> None:
        store = self._service.store
        reader = OffsetReportReader()
        try:
            while True:
                idle_s = store.config.ha_housekeeping_interval / 1000
                with trio.move_on_after(idle_s) as waited:
                    data = await self._stream.receive_some(65536)
                if waited.cancelled_caught:
                    log.warning("slave %s reported nothing for %gs: closing", self.peer, idle_s)
                    return
                if not data:
                    log.info("slave %s closed the HA connection", self.peer)
                    return
                if self.slave_request_offset is None and reader.empty and data[0] == 0x16:
                    # A TLS ClientHello on a port serving plain TCP (read as a
                    # report it would be an offset past 0x16 << 56, and could
                    # acknowledge every SYNC_MASTER send).
                    log.warning(
                        "slave %s opened with a TLS handshake, but this HA port does not "
                        "use TLS (tls.server.mode=disabled): closing",
                        self.peer,
                    )
                    return
                offset = reader.feed(data)
                if offset is None:
                    continue
                self.slave_ack_offset = offset
                if self.slave_request_offset is None:
                    self.slave_request_offset = offset
                    self._requested.set()
                self._service.notify_transfer_some(offset)
        except ProtocolError as exc:
            log.warning("slave %s sent a bad report, closing: %s", self.peer, exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("slave %s: HA connection lost: %s", self.peer, exc)
        finally:
            done.cancel()

    async def _transfer(self, done: trio.CancelScope) -> None:
        service = self._service
        store = service.store
        try:
            await self._requested.wait()
            requested = self.slave_request_offset
            assert requested is not None
            if requested == 0:
                # A new slave starts with the master's last file, not its history.
                end = store.max_phy_offset
                start = end - end % store.config.mapped_file_size_commit_log
            else:
                start = requested
            log.info("slave %s asked for %d: transfer starts at %d", self.peer, requested, start)
            self.next_transfer_from = start
            last_write = service.now_ms()
            while True:
                woken = service.data_waiter()
                config = store.config
                data = await store.read_commit_log_data(start, config.ha_transfer_batch_size)
                if data:
                    await self._send(start, data)
                    start += len(data)
                    self.next_transfer_from = start
                    last_write = service.now_ms()
                    continue
                wait_ms = last_write + config.ha_send_heartbeat_interval - service.now_ms()
                if wait_ms < 0:
                    await self._send(start, b"")
                    last_write = service.now_ms()
                    continue
                with trio.move_on_after(min(_POLL_S, wait_ms / 1000 + 0.001)):
                    await woken.wait()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("slave %s: HA connection lost: %s", self.peer, exc)
        finally:
            done.cancel()

    async def _send(self, offset: int, body: bytes) -> None:
        header = encode_transfer_header(offset, len(body))
        if len(body) <= 65536:
            await self._stream.send_all(header + body)
        else:
            await self._stream.send_all(header)
            await self._stream.send_all(body)


class HAService:
    """The master's replication service: the HA listener, its slave
    connections and what they acknowledged (a
    :class:`~pyrocket.broker.store.model.Replication` for the store).
    ``tls``: the broker's ``tls.*`` settings (None: plain TCP)."""

    def __init__(
        self,
        store: ReplicatedStore,
        *,
        now_ms: Callable[[], int] = monotonic_ms,
        tls: TlsSettings | None = None,
        tls_watch_interval: float = DEFAULT_WATCH_INTERVAL,
    ) -> None:
        self.store = store
        self.now_ms = now_ms
        self.tls = tls
        self.tls_watch_interval = tls_watch_interval
        self.connections: set[HAConnection] = set()
        #: The highest offset a slave acknowledged (``push2SlaveMaxOffset``).
        self.push2slave_max_offset: AsyncValue[int] = AsyncValue(0)
        #: Set whenever new data may be there for the senders (see data_waiter).
        self.data_event = trio.Event()

    # -- what the store asks ------------------------------------------------

    def is_slave_ok(self, master_put_where: int) -> bool:
        """``isSlaveOK``: a slave is connected and the best one is less than
        ``haSlaveFallbehindMax`` behind ``master_put_where``."""
        behind = master_put_where - self.push2slave_max_offset.value
        return bool(self.connections) and behind < self.store.config.ha_slave_fallbehind_max

    async def wait_replicated(self, offset: int, timeout_s: float) -> bool:
        """Wait until a slave acknowledged ``offset``; False after ``timeout_s``."""
        self.notify_data()
        with trio.move_on_after(timeout_s):
            await self.push2slave_max_offset.wait_value(lambda acked: acked >= offset)
            return True
        log.warning("no slave acknowledged offset %d within %gs", offset, timeout_s)
        return False

    def slave_fall_behind_much(self) -> int:
        """``slaveFallBehindMuch``: bytes of commit log no slave acknowledged."""
        acknowledged: int = self.push2slave_max_offset.value
        return self.store.max_phy_offset - acknowledged

    async def log_fall_behind(
        self, first_s: float = FALL_BEHIND_FIRST_S, period_s: float = FALL_BEHIND_PERIOD_S
    ) -> None:
        """Log :meth:`slave_fall_behind_much` periodically until cancelled
        (what a Java master reports of its slaves: a log line, nothing in
        GET_BROKER_RUNTIME_INFO)."""
        await trio.sleep(first_s)
        while True:
            log.info("Slave fall behind master: %d bytes", self.slave_fall_behind_much())
            await trio.sleep(period_s)

    def notify_transfer_some(self, offset: int) -> None:
        if offset > self.push2slave_max_offset.value:
            self.push2slave_max_offset.value = offset

    def notify_data(self) -> None:
        # Set once per round of waiting, not replaced per message: the
        # senders take a fresh one with data_waiter() when they look again.
        if not self.data_event.is_set():
            self.data_event.set()

    def data_waiter(self) -> trio.Event:
        """The event the next :meth:`notify_data` sets; take it before
        looking for data, wait on it when there was none."""
        if self.data_event.is_set():
            self.data_event = trio.Event()
        return self.data_event

    def _arrived(self, _arrival: MessageArrival) -> None:
        self.notify_data()

    # -- serving ------------------------------------------------------------

    async def serve(
        self, host: str | None, port: int, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Accept slaves on ``host:port`` until cancelled; reports the bound
        port through ``task_status``. Raises OSError when it cannot bind,
        ConfigError when the TLS settings cannot be used."""
        acceptor = None
        if self.tls is not None:
            acceptor = await TlsAcceptor.create(self.tls)
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound: int = listeners[0].socket.getsockname()[1]
        self.store.add_arrival_listener(self._arrived)
        try:
            mode = "plain TCP" if acceptor is None else f"TLS {acceptor.mode.value}"
            log.info("HA service listening on port %d (%s)", bound, mode)
            async with trio.open_nursery() as nursery:
                if acceptor is not None:
                    nursery.start_soon(acceptor.watch, self.tls_watch_interval)

                async def handle(stream: trio.SocketStream) -> None:
                    await self._handle(stream, acceptor)

                task_status.started(bound)
                await trio.serve_listeners(handle, listeners)
        finally:
            self.store.remove_arrival_listener(self._arrived)

    async def _handle(self, stream: trio.SocketStream, acceptor: TlsAcceptor | None) -> None:
        try:
            host, port = stream.socket.getpeername()[:2]
            peer = f"{host}:{port}"
        except OSError:
            peer = "?"
        served: trio.abc.Stream = stream
        if acceptor is not None:
            # A slave reports at once; one silent for the housekeeping
            # interval would be closed by the report reader anyway.
            idle_s = self.store.config.ha_housekeeping_interval / 1000
            wrapped = await acceptor.accept(stream, f"HA slave {peer}", first_byte_timeout=idle_s)
            if wrapped is None:
                return
            served = wrapped
        connection = HAConnection(self, served, peer)
        log.info("slave %s connected", peer)
        self.connections.add(connection)
        try:
            await connection.run()
        except Exception:
            # One slave's failure must not take the listener down with it.
            log.exception("HA connection of slave %s failed", peer)
        finally:
            self.connections.discard(connection)
            await trio.aclose_forcefully(served)
            log.info("slave %s removed (%d left)", peer, len(self.connections))
