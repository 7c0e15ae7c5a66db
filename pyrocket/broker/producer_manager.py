"""The producer groups a broker knows from heartbeats (Java's
``ProducerManager``): which connections belong to which producer group, and
which connection a client id is on. A broker uses it to reach a producer back
(transaction checks) and to answer GET_PRODUCER_CONNECTION_LIST.

Plain state: connections are keys only; the clock is injected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyrocket.broker.consumer_manager import CHANNEL_EXPIRED_TIMEOUT_MS, ClientChannelInfo
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.broker")


class ProducerManager:
    """Producer group -> connection -> member, and client id -> connection."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self._now_ms = now_ms
        self.group_channel_table: dict[str, dict[Connection, ClientChannelInfo]] = {}
        self.client_channel_table: dict[str, Connection] = {}
        self._round_robin = 0

    def register_producer(self, group: str, info: ClientChannelInfo) -> None:
        """A producer heartbeat: add the member or refresh its timestamp."""
        table = self.group_channel_table.setdefault(group, {})
        found = table.get(info.conn)
        if found is None:
            table[info.conn] = info
            self.client_channel_table[info.client_id] = info.conn
            log.info("new producer connected, group: %s channel: %s", group, info)
        else:
            found.last_update_timestamp = self._now_ms()

    def unregister_producer(self, group: str, conn: Connection, client_id: str) -> None:
        """UNREGISTER_CLIENT of a producer; an empty group goes away."""
        table = self.group_channel_table.get(group)
        if not table:
            return
        old = table.pop(conn, None)
        self.client_channel_table.pop(client_id, None)
        if old is not None:
            log.info("unregister a producer[%s] from groupChannelTable %s", group, old)
        if not table:
            del self.group_channel_table[group]
            log.info("unregister a producer group[%s] from groupChannelTable", group)

    def do_channel_close_event(self, conn: Connection) -> None:
        """A connection closed: forget it in every group (groups stay, as in Java)."""
        for group, table in self.group_channel_table.items():
            info = table.pop(conn, None)
            if info is not None:
                self.client_channel_table.pop(info.client_id, None)
                log.info(
                    "NETTY EVENT: remove channel[%s][%s] from ProducerManager groupChannelTable, "
                    "producer group: %s",
                    info,
                    conn.remote_address,
                    group,
                )

    def scan_not_active_channel(self) -> list[Connection]:
        """Drop members not heard of for two minutes; returns their
        connections for the caller to close."""
        now = self._now_ms()
        expired: list[Connection] = []
        for group, table in self.group_channel_table.items():
            for conn, info in list(table.items()):
                if now - info.last_update_timestamp > CHANNEL_EXPIRED_TIMEOUT_MS:
                    del table[conn]
                    self.client_channel_table.pop(info.client_id, None)
                    log.warning(
                        "SCAN: remove expired channel[%s] from ProducerManager groupChannelTable, "
                        "producer group name: %s",
                        conn.remote_address,
                        group,
                    )
                    expired.append(conn)
        return expired

    def get_available_connection(self, group: str) -> Connection | None:
        """An open connection of the group, taken round robin (transaction checks)."""
        table = self.group_channel_table.get(group)
        if not table:
            log.warning("Check transaction failed, channel table is empty. groupId=%s", group)
            return None
        connections = list(table)
        for _ in range(len(connections)):
            self._round_robin = (self._round_robin + 1) % len(connections)
            conn = connections[self._round_robin]
            if conn.is_open:
                return conn
        return None

    def find_connection(self, client_id: str) -> Connection | None:
        return self.client_channel_table.get(client_id)


__all__ = ["ProducerManager"]
