"""The consumer groups a broker knows from heartbeats (Java's
``ConsumerManager``, ``ConsumerGroupInfo`` and ``ClientChannelInfo``).

Each group holds the connections of its clients (one :class:`ClientChannelInfo`
per connection, refreshed by every heartbeat), the subscriptions the clients
declared, and how they consume. When the set of clients of a group changes,
the manager tells its :class:`ConsumerIdsChangeListener` which connections to
notify (NOTIFY_CONSUMER_IDS_CHANGED), so the clients rebalance at once instead
of at their next periodic rebalance.

The manager is plain state: no sockets, no tasks. Connections are only used as
keys and handed to the listener; the clock is injected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from pyrocket.broker.consumer_filter import Compiled, ConsumerFilterManager
from pyrocket.broker.message_filter import (
    ExpressionMessageFilter,
    check_tag_count,
    filter_of_subscription,
)
from pyrocket.logtext import clipped
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumeType,
    MessageModel,
    SubscriptionData,
)
from pyrocket.protocol.javahash import JavaConcurrentHashMap, JavaHashSet
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.broker")

#: A client connection silent (no heartbeat) for this long is dropped (ms).
CHANNEL_EXPIRED_TIMEOUT_MS: Final = 120_000


@dataclass(slots=True)
class ClientChannelInfo:
    """One client connection as a group member: who (client id), speaking
    what (language, version), and when it was last heard of."""

    conn: Connection
    client_id: str
    language: int
    version: int
    last_update_timestamp: int

    def __str__(self) -> str:
        return (
            f"ClientChannelInfo [channel={self.conn.remote_address}, clientId={self.client_id}, "
            f"language={self.language}, version={self.version}, "
            f"lastUpdateTimestamp={self.last_update_timestamp}]"
        )


class ConsumerIdsChangeListener(Protocol):
    """Told about group changes (Java's ``DefaultConsumerIdsChangeListener``)."""

    async def consumer_ids_changed(self, group: str, connections: list[Connection]) -> None:
        """The members of ``group`` changed; ``connections`` are the members left."""


class ConsumerGroupInfo:
    """A consumer group's members and subscriptions."""

    def __init__(
        self,
        group_name: str,
        consume_type: ConsumeType | None,
        message_model: MessageModel | None,
        consume_from_where: ConsumeFromWhere | None,
        now_ms: int,
    ) -> None:
        self.group_name = group_name
        self.consume_type = consume_type
        self.message_model = message_model
        self.consume_from_where = consume_from_where
        self.subscription_table: JavaConcurrentHashMap[str, SubscriptionData] = (
            JavaConcurrentHashMap()
        )
        # Java keys this by Netty channel (identity hash): any stable order will do.
        self.channel_info_table: dict[Connection, ClientChannelInfo] = {}
        self.last_update_timestamp = now_ms
        # Each subscription's filter, built at its first pull rather than at
        # every pull: topic -> (the subscription it was built for, filter).
        self._filters: dict[str, tuple[SubscriptionData, ExpressionMessageFilter]] = {}

    def find_channel(self, client_id: str) -> ClientChannelInfo | None:
        for info in self.channel_info_table.values():
            if info.client_id == client_id:
                return info
        return None

    def all_connections(self) -> list[Connection]:
        return list(self.channel_info_table)

    def all_client_ids(self) -> list[str]:
        return [info.client_id for info in self.channel_info_table.values()]

    def find_subscription_data(self, topic: str) -> SubscriptionData | None:
        return self.subscription_table.get(topic)

    def message_filter(self, topic: str, subscription: SubscriptionData) -> ExpressionMessageFilter:
        """The filter of ``subscription``, the group's subscription to
        ``topic``, built once per subscription version. Raises
        SubscriptionTooLargeError for one listing too many tags."""
        cached = self._filters.get(topic)
        if cached is not None and cached[0] is subscription:
            return cached[1]
        message_filter = filter_of_subscription(subscription)
        self._filters[topic] = (subscription, message_filter)
        return message_filter

    def subscribed_topics(self) -> list[str]:
        return list(self.subscription_table)

    def unregister_channel(self, conn: Connection) -> bool:
        old = self.channel_info_table.pop(conn, None)
        if old is not None:
            log.info("unregister a consumer[%s] from consumerGroupInfo %s", self.group_name, old)
        return old is not None

    def do_channel_close_event(self, conn: Connection) -> bool:
        info = self.channel_info_table.pop(conn, None)
        if info is None:
            return False
        log.warning(
            "NETTY EVENT: remove not active channel[%s] from ConsumerGroupInfo groupChannelTable, "
            "consumer group: %s",
            info,
            self.group_name,
        )
        return True

    def update_channel(
        self,
        info: ClientChannelInfo,
        consume_type: ConsumeType | None,
        message_model: MessageModel | None,
        consume_from_where: ConsumeFromWhere | None,
        now_ms: int,
    ) -> bool:
        """Record a heartbeat from ``info``; True when it is a new member."""
        self.consume_type = consume_type
        self.message_model = message_model
        self.consume_from_where = consume_from_where
        updated = False
        old = self.channel_info_table.get(info.conn)
        if old is None:
            self.channel_info_table[info.conn] = info
            log.info(
                "new consumer connected, group: %s %s %s channel: %s",
                self.group_name,
                consume_type.name if consume_type else None,
                message_model.name if message_model else None,
                info,
            )
            updated = True
            old = info
        elif old.client_id != info.client_id:
            log.error(
                "[BUG] consumer channel exist in broker, but clientId not equal. GROUP: %s "
                "OLD: %s NEW: %s",
                self.group_name,
                old,
                info,
            )
            self.channel_info_table[info.conn] = info
        self.last_update_timestamp = now_ms
        old.last_update_timestamp = now_ms
        return updated

    def update_subscription(self, subscriptions: Iterable[SubscriptionData], now_ms: int) -> bool:
        """Take the subscriptions of a heartbeat: new topics are added, newer
        versions replace older ones, topics no longer listed are dropped.
        True when a topic was added or dropped (a new version is no change)."""
        subscriptions = list(subscriptions)
        updated = False
        for sub in subscriptions:
            topic = sub.topic or ""
            old = self.subscription_table.get(topic)
            if old is None:
                self.subscription_table[topic] = sub
                updated = True
                log.info(
                    "subscription changed, add new topic, group: %s %s",
                    self.group_name,
                    clipped(sub),
                )
            elif sub.sub_version > old.sub_version:
                if self.consume_type is ConsumeType.CONSUME_PASSIVELY:
                    log.info(
                        "subscription changed, group: %s OLD: %s NEW: %s",
                        self.group_name,
                        clipped(old),
                        clipped(sub),
                    )
                self.subscription_table[topic] = sub
        listed = {sub.topic or "" for sub in subscriptions}
        for topic in [t for t in self.subscription_table if t not in listed]:
            log.warning(
                "subscription changed, group: %s remove topic %s %s",
                self.group_name,
                topic,
                clipped(self.subscription_table[topic]),
            )
            del self.subscription_table[topic]
            self._filters.pop(topic, None)
            updated = True
        self.last_update_timestamp = now_ms
        return updated


class ConsumerManager:
    """Every consumer group with at least one connected client.

    ``listener`` is told which connections to notify when a group changes
    (None: nobody is notified); ``now_ms`` is the clock of the heartbeat
    timestamps the expiry scan compares. ``filters`` is told every
    heartbeat's subscriptions and every group that goes away (Java's
    REGISTER and UNREGISTER events).
    """

    def __init__(
        self,
        listener: ConsumerIdsChangeListener | None,
        now_ms: Callable[[], int],
        *,
        notify_enabled: Callable[[], bool] = lambda: True,
        filters: ConsumerFilterManager | None = None,
    ) -> None:
        self._listener = listener
        self.filters = filters
        self._now_ms = now_ms
        self._notify_enabled = notify_enabled
        self.consumer_table: JavaConcurrentHashMap[str, ConsumerGroupInfo] = JavaConcurrentHashMap(
            1024
        )
        # The groups each connection is a member of, so that a closing
        # connection leaves them without a scan of every group.
        self._groups_of: dict[Connection, dict[str, None]] = {}

    async def _changed(self, group: str, connections: list[Connection]) -> None:
        # Java checks the broker-wide switch (notifyConsumerIdsChangedEnable)
        # in its listener; an empty list notifies nobody.
        if self._listener is not None and connections and self._notify_enabled():
            await self._listener.consumer_ids_changed(group, connections)

    def get_consumer_group_info(self, group: str) -> ConsumerGroupInfo | None:
        return self.consumer_table.get(group)

    def find_channel(self, group: str, client_id: str) -> ClientChannelInfo | None:
        info = self.consumer_table.get(group)
        return info.find_channel(client_id) if info is not None else None

    def find_subscription_data(self, group: str, topic: str) -> SubscriptionData | None:
        info = self.consumer_table.get(group)
        return info.find_subscription_data(topic) if info is not None else None

    def find_subscription_data_count(self, group: str) -> int:
        info = self.consumer_table.get(group)
        return len(info.subscription_table) if info is not None else 0

    async def register_consumer(
        self,
        group: str,
        info: ClientChannelInfo,
        consume_type: ConsumeType | None,
        message_model: MessageModel | None,
        consume_from_where: ConsumeFromWhere | None,
        subscriptions: Iterable[SubscriptionData],
        notify: bool,
        compiled: Compiled | None = None,
    ) -> bool:
        """A consumer heartbeat: add or refresh the member and its
        subscriptions. Returns whether the group changed; when it did and
        ``notify`` is set (the group's notifyConsumerIdsChangedEnable), every
        member is notified. Raises SubscriptionTooLargeError (nothing
        recorded) for a subscription listing too many tags. ``compiled``:
        the SQL92 expressions compiled already."""
        subscriptions = list(subscriptions)
        for sub in subscriptions:
            count = max(len(sub.code_set), len(sub.tags_set))
            check_tag_count(count, f"the subscription of {group} to {sub.topic}")
        now = self._now_ms()
        group_info = self.consumer_table.get(group)
        if group_info is None:
            group_info = ConsumerGroupInfo(
                group, consume_type, message_model, consume_from_where, now
            )
            self.consumer_table[group] = group_info
        r1 = group_info.update_channel(info, consume_type, message_model, consume_from_where, now)
        r2 = group_info.update_subscription(subscriptions, now)
        self._groups_of.setdefault(info.conn, {})[group] = None
        if (r1 or r2) and notify:
            await self._changed(group, group_info.all_connections())
        if self.filters is not None:
            self.filters.register_all(group, subscriptions, compiled)
        return r1 or r2

    def _group_gone(self, group: str) -> None:
        if self.filters is not None:
            self.filters.unregister(group)

    async def unregister_consumer(self, group: str, conn: Connection, notify: bool) -> None:
        """UNREGISTER_CLIENT of a consumer: drop the member; an empty group
        goes away. The remaining members are notified when ``notify``."""
        group_info = self.consumer_table.get(group)
        if group_info is None:
            return
        group_info.unregister_channel(conn)
        self._forget_membership(conn, group)
        if not group_info.channel_info_table and self.consumer_table.pop(group, None) is not None:
            log.info(
                "unregister consumer ok, no any connection, and remove consumer group, %s", group
            )
            self._group_gone(group)
        if notify:
            await self._changed(group, group_info.all_connections())

    async def do_channel_close_event(self, conn: Connection) -> None:
        """A connection closed: remove it from every group it was in and
        notify the members left."""
        for group in self._groups_of.pop(conn, {}):
            group_info = self.consumer_table.get(group)
            if group_info is None or not group_info.do_channel_close_event(conn):
                continue
            if not group_info.channel_info_table and group in self.consumer_table:
                del self.consumer_table[group]
                log.info(
                    "unregister consumer ok, no any connection, and remove consumer group, %s",
                    group,
                )
                self._group_gone(group)
            await self._changed(group, group_info.all_connections())

    def scan_not_active_channel(self) -> list[Connection]:
        """Drop members not heard of for two minutes; returns their
        connections, which the caller closes (as Java does)."""
        now = self._now_ms()
        expired: list[Connection] = []
        for group, group_info in list(self.consumer_table.items()):
            table = group_info.channel_info_table
            for conn, info in list(table.items()):
                if now - info.last_update_timestamp > CHANNEL_EXPIRED_TIMEOUT_MS:
                    log.warning(
                        "SCAN: remove expired channel from ConsumerManager consumerTable. "
                        "channel=%s, consumerGroup=%s",
                        conn.remote_address,
                        group,
                    )
                    del table[conn]
                    self._forget_membership(conn, group)
                    expired.append(conn)
            if not table:
                log.warning(
                    "SCAN: remove expired channel from ConsumerManager consumerTable, all clear, "
                    "consumerGroup=%s",
                    group,
                )
                del self.consumer_table[group]
                self._group_gone(group)
        return expired

    def _forget_membership(self, conn: Connection, group: str) -> None:
        groups = self._groups_of.get(conn)
        if groups is not None:
            groups.pop(group, None)
            if not groups:
                del self._groups_of[conn]

    def connections_tracked(self) -> int:
        """Connections that are members of some group."""
        return len(self._groups_of)

    def query_topic_consume_by_who(self, topic: str) -> JavaHashSet[str]:
        """The groups subscribed to ``topic`` (a HashSet, Java's order)."""
        groups: JavaHashSet[str] = JavaHashSet()
        for group, group_info in self.consumer_table.items():
            if topic in group_info.subscription_table:
                groups.add(group)
        return groups


__all__ = [
    "CHANNEL_EXPIRED_TIMEOUT_MS",
    "ClientChannelInfo",
    "ConsumerGroupInfo",
    "ConsumerIdsChangeListener",
    "ConsumerManager",
]
