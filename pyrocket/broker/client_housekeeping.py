"""Forgetting clients that are gone (Java's ``ClientHousekeepingService``).

A client connection that closes, fails or idles out leaves every producer and
consumer group it was in (the consumer groups' remaining members are
notified), and its held pulls are dropped. Every 10 seconds the service also
drops members whose last heartbeat is more than two minutes old and closes
their connections (a client that stopped heartbeating without closing), and
drops the held pulls of connections that have closed, should their close
event have been lost (the event queue drops events when full), so that no
held pull outlives its connection by more than one scan.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import trio

from pyrocket.broker.consumer_manager import ConsumerManager
from pyrocket.broker.longpolling import PullRequestHoldService
from pyrocket.broker.producer_manager import ProducerManager
from pyrocket.remoting import Connection, ConnectionListener

log = logging.getLogger("pyrocket.broker")

#: Java scans every 10 s, starting 10 s after start-up.
SCAN_INTERVAL: Final = 10.0


class ClientHousekeepingService(ConnectionListener):
    """The connection listener and expiry scan of the message path."""

    def __init__(
        self,
        hold_service: PullRequestHoldService,
        producer_manager: ProducerManager,
        consumer_manager: ConsumerManager,
    ) -> None:
        self.hold_service = hold_service
        self.producer_manager = producer_manager
        self.consumer_manager = consumer_manager

    async def _channel_gone(self, conn: Connection) -> None:
        # Held pulls first: they are the largest state a connection leaves.
        self.hold_service.drop_connection(conn)
        self.producer_manager.do_channel_close_event(conn)
        await self.consumer_manager.do_channel_close_event(conn)

    async def on_close(self, conn: Connection) -> None:
        await self._channel_gone(conn)

    async def on_exception(self, conn: Connection) -> None:
        await self._channel_gone(conn)

    async def on_idle(self, conn: Connection) -> None:
        await self._channel_gone(conn)

    def scan_exception_channel(self) -> None:
        """Drop members silent for two minutes and close their connections;
        drop the held pulls of closed connections."""
        self.hold_service.drop_closed_connections()
        expired = self.producer_manager.scan_not_active_channel()
        expired += self.consumer_manager.scan_not_active_channel()
        for conn in expired:
            conn.close()

    async def run(
        self, *, interval: float = SCAN_INTERVAL, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        while True:
            await trio.sleep(interval)
            try:
                self.scan_exception_channel()
            except Exception:
                log.exception("Error occurred when scan not active client channels.")


__all__ = ["SCAN_INTERVAL", "ClientHousekeepingService"]
