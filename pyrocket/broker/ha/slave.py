"""The slave side of replication (Java's ``HAService.HAClient``).

:meth:`HAClient.run` connects to the master's HA address (``haMasterAddress``
or what the NameServer answered to the registration), reports the commit
log's max physical offset at once, after every append and every
``haSendHeartbeatInterval``, and appends each frame the master sends at the
physical offset it names. A frame whose offset is not where the slave's
commit log ends closes the connection (as in Java, an empty commit log takes
the master's start); so does a master silent for ``haHousekeepingInterval``.
The client then connects again after a pause (Java waits 5 s; here the
shorter of that and ``haSendHeartbeatInterval``).

With ``tls`` (the broker's client TLS settings, given when its own client
connections use TLS: ``useTLS``, else ``tls.enable``, else an enforcing
``tls.server.mode``) the client completes a TLS handshake before its first
report, verifying the master as ``tls.client.*`` say. Java 4.7.0's slave
never does (see docs/deviations.md).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

import trio
from trio_util import AsyncValue

from pyrocket.broker.ha.ports import ReplicatedStore
from pyrocket.broker.store.replica import ReplicaError
from pyrocket.errors import ProtocolError
from pyrocket.protocol.ha import TransferReader, encode_offset_report
from pyrocket.remoting.tls import TlsSettings, load_client_context, open_tls_stream

log = logging.getLogger("pyrocket.broker.ha")

_CONNECT_TIMEOUT_S = 3.0
_MAX_RETRY_S = 5.0


class HAClient:
    """Replicates a master's commit log into ``store``. ``master_address``
    returns the master's HA address (``host:port``) or None while unknown;
    ``tls``: connect with TLS under these client settings (None: plain TCP)."""

    def __init__(
        self,
        store: ReplicatedStore,
        master_address: Callable[[], str | None],
        *,
        tls: TlsSettings | None = None,
    ) -> None:
        self.store = store
        self._master_address = master_address
        self.tls = tls
        self._ssl_context: ssl.SSLContext | None = None
        #: The master currently connected, None between connections.
        self.connected_to: AsyncValue[str | None] = AsyncValue(None)
        #: The offset last reported to the master.
        self.reported_offset = 0

    def _retry_s(self) -> float:
        return min(_MAX_RETRY_S, self.store.config.ha_send_heartbeat_interval / 1000)

    async def run(self) -> None:
        """Replicate until cancelled, reconnecting after every failure.
        Raises ConfigError at once when the TLS files cannot be loaded."""
        if self.tls is not None:
            self._ssl_context = await load_client_context(self.tls)
        while True:
            address = self._master_address()
            if address and len(address) >= 6:
                try:
                    await self._replicate(address)
                except trio.TooSlowError:
                    log.warning(
                        "cannot connect to HA master %s: no connection%s within %gs",
                        address,
                        "" if self._ssl_context is None else " and TLS handshake",
                        _CONNECT_TIMEOUT_S,
                    )
                except OSError as exc:
                    log.info("cannot connect to HA master %s: %s", address, exc)
                except trio.BrokenResourceError as exc:
                    log.warning(
                        "cannot connect to HA master %s: TLS handshake failed: %s",
                        address,
                        exc.__cause__ or exc,
                    )
                except Exception:
                    # As Java's HAClient: log, close, try again after the pause.
                    log.exception("HA replication from master %s failed", address)
                finally:
                    self.connected_to.value = None
            await trio.sleep(self._retry_s())

    async def _replicate(self, address: str) -> None:
        host, _, port_text = address.rpartition(":")
        try:
            port = int(port_text)
        except ValueError:
            raise OSError(f"bad HA master address {address!r}") from None
        stream: trio.abc.Stream
        with trio.fail_after(_CONNECT_TIMEOUT_S):
            stream = await trio.open_tcp_stream(host, port)
            if self._ssl_context is not None:
                try:
                    stream = await open_tls_stream(stream, self._ssl_context, host)
                except BaseException:
                    await trio.aclose_forcefully(stream)
                    raise
        async with stream:
            log.info(
                "connected to HA master %s%s",
                address,
                "" if self._ssl_context is None else " (TLS)",
            )
            self.connected_to.value = address
            wanted: AsyncValue[int] = AsyncValue(self.store.max_phy_offset)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._report, stream, wanted, nursery.cancel_scope)
                nursery.start_soon(self._receive, stream, wanted, address, nursery.cancel_scope)

    async def _report(
        self, stream: trio.abc.Stream, wanted: AsyncValue[int], done: trio.CancelScope
    ) -> None:
        """Send the offset at once, whenever it grows, and as a heartbeat."""
        try:
            while True:
                offset = wanted.value
                await stream.send_all(encode_offset_report(offset))
                self.reported_offset = offset
                heartbeat_s = self.store.config.ha_send_heartbeat_interval / 1000
                with trio.move_on_after(heartbeat_s):
                    await wanted.wait_value(lambda value, sent=offset: value != sent)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("HA connection lost: %s", exc)
        finally:
            done.cancel()

    async def _receive(
        self,
        stream: trio.abc.Stream,
        wanted: AsyncValue[int],
        address: str,
        done: trio.CancelScope,
    ) -> None:
        store = self.store
        reader = TransferReader()
        try:
            while True:
                idle_s = store.config.ha_housekeeping_interval / 1000
                with trio.move_on_after(idle_s) as waited:
                    data = await stream.receive_some(1024 * 1024)
                if waited.cancelled_caught:
                    log.warning("HA master %s sent nothing for %gs: reconnecting", address, idle_s)
                    return
                if not data:
                    log.info("HA master %s closed the connection", address)
                    return
                for frame in reader.feed(data):
                    mine = store.max_phy_offset
                    if mine != 0 and mine != frame.offset:
                        log.error(
                            "HA master %s sent offset %d where this slave's commit log ends "
                            "at %d: closing",
                            address,
                            frame.offset,
                            mine,
                        )
                        return
                    if frame.body:
                        await store.append_replicated(frame.offset, frame.body)
                wanted.value = store.max_phy_offset
        except (ProtocolError, ReplicaError) as exc:
            log.error("HA data from master %s refused, reconnecting: %s", address, exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("HA connection to master %s lost: %s", address, exc)
        finally:
            done.cancel()
