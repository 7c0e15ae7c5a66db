"""Dropping brokers whose connection is gone (Java's BrokerHousekeepingService).

A broker that registered over a connection is taken out of the route tables
as soon as that connection closes, fails or goes idle; waiting for the expiry
scan would hand out routes to a dead broker for two minutes.
"""

from __future__ import annotations

import logging

from trio_util import AsyncValue

from pyrocket.namesrv.routeinfo import RouteInfoManager
from pyrocket.remoting import Connection, ConnectionListener

log = logging.getLogger("pyrocket.namesrv")


class BrokerHousekeeping(ConnectionListener):
    """Connection events -> :meth:`RouteInfoManager.on_connection_closed`.

    ``closed`` counts the close events handled so far, for whoever needs to
    know that a close has been taken into account (tests, replays).
    """

    def __init__(self, routes: RouteInfoManager) -> None:
        self.routes = routes
        self.closed: AsyncValue[int] = AsyncValue(0)

    def _drop(self, conn: Connection, why: str) -> None:
        for dropped in self.routes.on_connection_closed(conn):
            log.info("broker %s removed: its connection %s %s", dropped.broker_addr, conn, why)

    async def on_close(self, conn: Connection) -> None:
        self._drop(conn, "closed")
        self.closed.value += 1

    async def on_exception(self, conn: Connection) -> None:
        self._drop(conn, "failed")

    async def on_idle(self, conn: Connection) -> None:
        self._drop(conn, "went idle")
