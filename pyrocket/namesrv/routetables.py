"""The NameServer's five route tables and every change made to them: the
state half of Java's RouteInfoManager (:mod:`pyrocket.namesrv.routeinfo`
adds the answers read from them).

The tables, as in Java, and nothing else that a reader could not rebuild
from them:

- topic queue table: topic -> the queue data each broker name holds for it
  (a ``HashMap(1024)`` of ``LinkedList<QueueData>`` in Java);
- broker address table: broker name -> cluster, name and broker id -> address
  (``HashMap(128)`` of ``BrokerData`` whose addresses are a ``HashMap<Long,
  String>``);
- cluster address table: cluster -> broker names (``HashMap(32)`` of
  ``HashSet``);
- broker live table: broker address -> last heard of, DataVersion, the
  connection it registered on, HA address (``HashMap(256)``);
- filter server table: broker address -> filter servers (``HashMap(256)``).

They are kept in the Java collection they model, so that iterating them
gives Java's order. Nothing here does I/O and nothing reads a clock: callers
pass the time (milliseconds) and an opaque connection object, so tests drive
expiry and connection loss directly.

Semantics follow RouteInfoManager of 4.7.0: queue data is only rebuilt when a
master's DataVersion changed or on its first registration; a slave learns its
master's address and HA address; unregistering or losing the last address of
a broker name removes the name from its cluster and its queue data from every
topic, and a topic left without queue data disappears. Two places differ on
purpose: a closed connection drops every broker address that registered over
it (Java drops the first it finds), and an expired broker is removed itself
(Java looks its connection up again and may remove another broker sharing it).

Every change that could alter an answer bumps :attr:`RouteTables.version`;
a change of the broker, cluster or filter tables also bumps a generation
counter, and a change of one topic clears that topic's cache slot. The answers
use them to know what they cached is still good.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Final

from pyrocket.namesrv.routedata import (
    DESCRIBED_TOPICS,
    BrokerEntry,
    BrokerLiveInfo,
    DroppedBroker,
    QueueList,
    RegisterResult,
    TopicDelta,
    TopicEntry,
    topic_delta,
    topic_delta_items,
)
from pyrocket.protocol.bodies import MASTER_ID, PERM_WRITE, DataVersion, QueueData
from pyrocket.protocol.bodies.register import TopicQueues
from pyrocket.protocol.bodies.route import QueueNums
from pyrocket.protocol.javahash import (
    JavaHashMap,
    JavaHashSet,
    concurrent_hashmap_order,
    table_size_for,
)

log = logging.getLogger("pyrocket.namesrv")

#: Java's BROKER_CHANNEL_EXPIRED_TIME: a broker unheard of this long is dropped.
BROKER_CHANNEL_EXPIRED_MS: Final = 120_000

# Java's table capacities (RouteInfoManager's constructor).
_TOPIC_TABLE_CAPACITY: Final = 1024
_BROKER_TABLE_CAPACITY: Final = 128
_CLUSTER_TABLE_CAPACITY: Final = 32
_LIVE_TABLE_CAPACITY: Final = 256
_FILTER_TABLE_CAPACITY: Final = 256

_Queues = QueueNums


class RouteTables:
    """The route tables of one NameServer and their changes. Not
    thread-safe; no I/O."""

    def __init__(self) -> None:
        # Insertion-ordered: with the table's capacity that fixes Java's
        # iteration order; _topic_order caches that order for the answers.
        self._topics: dict[str, TopicEntry] = {}
        self._topic_capacity = 0
        self._topic_threshold = table_size_for(_TOPIC_TABLE_CAPACITY)
        self._topic_order: list[tuple[str, TopicEntry]] | None = None

        self._brokers: JavaHashMap[str, BrokerEntry] = JavaHashMap(_BROKER_TABLE_CAPACITY)
        self._clusters: JavaHashMap[str, JavaHashSet[str]] = JavaHashMap(_CLUSTER_TABLE_CAPACITY)
        self._live: JavaHashMap[str, BrokerLiveInfo] = JavaHashMap(_LIVE_TABLE_CAPACITY)
        self._filters: JavaHashMap[str, list[str]] = JavaHashMap(_FILTER_TABLE_CAPACITY)

        # Broker addresses by the connection they last registered over.
        self._by_connection: dict[object, dict[str, None]] = {}
        # Bumped by every change of the broker, cluster or filter tables: a
        # cached body built under an older generation is stale.
        self._generation = 0
        # Bumped by every change an answer could show (the above and topics).
        self._version = 0
        # Identical queue data tuples and queue lists of one broker are
        # shared (most topics look alike).
        self._interned: dict[_Queues, _Queues] = {}
        self._singles: dict[tuple[str, _Queues], QueueList] = {}
        # Broker name -> the topic table last applied for it, while nothing
        # else has changed that name's queue data.
        self._applied: dict[str, TopicQueues] = {}

    # ------------------------------------------------------------------
    # Registration

    def register_broker(
        self,
        cluster_name: str,
        broker_addr: str,
        broker_name: str,
        broker_id: int,
        ha_server_addr: str | None,
        data_version: DataVersion,
        topics: TopicQueues,
        filter_server_list: Sequence[str] | None,
        connection: object,
        now_ms: int,
        topic_order: Sequence[str] | None = None,
        topic_delta: TopicDelta | None = None,
    ) -> RegisterResult:
        """Record a broker's registration (``registerBroker``).

        ``topics`` is the broker's topic table; Java reads it only for a master
        whose DataVersion changed or that registers for the first time.
        ``filter_server_list`` None leaves the filter server table alone (the
        pre-3.0.11 registration path); empty removes the broker's entry.
        ``topic_order`` is the iteration order of ``topics`` decoded as a
        Java ConcurrentHashMap, when the caller has it already (worked out
        off the event loop for a large table). ``topic_delta`` is what
        :func:`topic_delta` found between ``topics`` and a table read from
        :meth:`applied_table` earlier (worked out off the event loop too); it
        is used only if that table is still the one applied for the name.
        """
        entry = self._brokers.get(broker_name)
        register_first = entry is None or broker_id not in entry.addrs
        update_queues = broker_id == MASTER_ID and (
            register_first or self.is_broker_topic_config_changed(broker_addr, data_version)
        )

        names = self._clusters.get(cluster_name)
        if names is None:
            names = JavaHashSet()
            self._clusters[cluster_name] = names
        if broker_name not in names:
            names.add(broker_name)
            self._changed()

        if entry is None:
            entry = BrokerEntry(cluster_name, broker_name)
            self._brokers[broker_name] = entry
            self._changed()
        addrs = entry.addrs
        # One address has one id: a slave switching to master drops its old id.
        for other_id, other_addr in list(addrs.items()):
            if other_addr == broker_addr and other_id != broker_id:
                del addrs[other_id]
                self._changed()
        if addrs.get(broker_id) != broker_addr:
            addrs[broker_id] = broker_addr
            self._changed()
        if update_queues:
            self._update_queue_datas(broker_name, topics, topic_order, topic_delta)

        previous = self._live.get(broker_addr)
        self._live[broker_addr] = BrokerLiveInfo(now_ms, data_version, connection, ha_server_addr)
        self._track_connection(broker_addr, previous, connection)
        if previous is None:
            log.info(
                "new broker registered: %s (%s, cluster %s, id %d), HA server %s",
                broker_addr,
                broker_name,
                cluster_name,
                broker_id,
                ha_server_addr,
            )

        if filter_server_list is not None:
            if not filter_server_list:
                if broker_addr in self._filters:
                    del self._filters[broker_addr]
                    self._changed()
            elif self._filters.get(broker_addr) != list(filter_server_list):
                self._filters[broker_addr] = list(filter_server_list)
                self._changed()

        if broker_id != MASTER_ID:
            master_addr = addrs.get(MASTER_ID)
            if master_addr is not None:
                master = self._live.get(master_addr)
                if master is not None:
                    return RegisterResult(master.ha_server_addr, master_addr)
        return RegisterResult()

    def _track_connection(
        self, broker_addr: str, previous: BrokerLiveInfo | None, connection: object
    ) -> None:
        if previous is not None and previous.connection is not connection:
            self._untrack(broker_addr, previous.connection)
        self._by_connection.setdefault(connection, {})[broker_addr] = None

    def _untrack(self, broker_addr: str, connection: object) -> None:
        addrs = self._by_connection.get(connection)
        if addrs is not None:
            addrs.pop(broker_addr, None)
            if not addrs:
                del self._by_connection[connection]

    def applied_table(self, broker_name: str) -> TopicQueues | None:
        """The topic table applied last for ``broker_name``, while nothing
        else has changed that name's queue data since (else None)."""
        return self._applied.get(broker_name)

    def _update_queue_datas(
        self,
        broker_name: str,
        topics: TopicQueues,
        topic_order: Sequence[str] | None = None,
        topic_delta: TopicDelta | None = None,
    ) -> None:
        """``createAndUpdateQueueData`` for each topic of a master."""
        previous = self._applied.get(broker_name)
        if previous is topics:
            # This very table was applied last for this name and nothing has
            # touched the name's queue data since: applying it again changes
            # nothing.
            return
        self._applied[broker_name] = topics
        # Likewise only the entries that differ from the table applied last
        # can change anything (topics it no longer lists stay, as in Java).
        items: Iterable[tuple[str, _Queues]]
        if previous is None:
            items = topics.items()
        elif topic_delta is not None and topic_delta.base is previous:
            items = topic_delta.items
        else:
            items = topic_delta_items(previous, topics)
        interned = self._interned
        table = self._topics
        fresh: dict[str, _Queues] = {}
        # Described only while few: a table may bring thousands of changes,
        # and describing each one costs even when the line is not logged.
        described = DESCRIBED_TOPICS if log.isEnabledFor(logging.INFO) else 0
        changed = 0
        # Most topics of a broker hold the same queue list and get the same
        # numbers, so each (list, numbers) pair is worked out once. Keyed by
        # identity: the memo keeps each list alive and the numbers are
        # interned, so no key can be reused by another object meanwhile.
        memo: dict[tuple[int, int], tuple[QueueList, QueueList | None, _Queues | None]] = {}
        for topic, queues in items:
            queues = interned.setdefault(queues, queues)
            entry = table.get(topic)
            if entry is None:
                fresh[topic] = queues
                continue
            current = entry.queues
            key = (id(current), id(queues))
            known = memo.get(key)
            if known is None:
                known = memo[key] = (current, *self._replaced(current, broker_name, queues))
            replaced, old = known[1], known[2]
            if replaced is None:
                continue
            if old is not None:
                changed += 1
                if changed <= described:
                    log.info(
                        "topic changed, %s OLD: %s NEW: %s",
                        topic,
                        QueueData.row_text((broker_name, old)),
                        QueueData.row_text((broker_name, queues)),
                    )
            entry.set_queues(replaced)
            self._version += 1
        if changed > described:
            log.info("topic changed: %d more topics of broker %s", changed - described, broker_name)
        if fresh:
            self._insert_topics(broker_name, topics, fresh, topic_order, described)

    def _replaced(
        self, current: QueueList, broker_name: str, queues: _Queues
    ) -> tuple[QueueList | None, _Queues | None]:
        """(the list with ``broker_name`` holding ``queues``, moved to the
        end; None if it holds them already) and what it held before."""
        old = None
        for name, held in current:
            if name == broker_name:
                old = held
                break
        if old == queues:
            return None, old
        if old is not None:
            current = tuple(pair for pair in current if pair[0] != broker_name)
        return self._list((*current, (broker_name, queues))), old

    def _insert_topics(
        self,
        broker_name: str,
        topics: TopicQueues,
        fresh: dict[str, _Queues],
        topic_order: Sequence[str] | None,
        described: int,
    ) -> None:
        """Add the topics of ``fresh`` held by ``broker_name`` alone, in the
        order Java's ConcurrentHashMap of ``topics`` gives them."""
        names = list(fresh)
        if len(names) > 1:
            order = concurrent_hashmap_order(topics) if topic_order is None else topic_order
            names = [name for name in order if name in fresh]
        lists: dict[int, QueueList] = {}
        for name in names:
            queues = fresh[name]
            single = lists.get(id(queues))  # interned: alive, so the id is its own
            if single is None:
                single = lists[id(queues)] = self._list(((broker_name, queues),))
            self._insert_topic(name, TopicEntry(single))
        for name in names[:described]:
            log.info(
                "new topic registered, %s %s", name, QueueData.row_text((broker_name, fresh[name]))
            )
        if len(names) > described:
            log.info(
                "new topic registered: %d more topics of broker %s",
                len(names) - described,
                broker_name,
            )

    def _list(self, queues: QueueList) -> QueueList:
        """``queues``, shared with other topics when it is a single entry."""
        if len(queues) != 1:
            return queues
        pair = queues[0]
        return self._singles.setdefault(pair, queues)

    def _set_queues(self, entry: TopicEntry, queues: QueueList) -> None:
        entry.set_queues(self._list(queues))
        self._version += 1

    def _insert_topic(self, name: str, entry: TopicEntry) -> None:
        self._topics[name] = entry
        self._topic_order = None
        self._version += 1
        if self._topic_capacity == 0:
            self._topic_capacity = self._topic_threshold
            self._topic_threshold = int(self._topic_capacity * 0.75)
        if len(self._topics) > self._topic_threshold:
            self._topic_capacity <<= 1
            self._topic_threshold <<= 1

    def _remove_topic(self, name: str) -> None:
        del self._topics[name]
        self._topic_order = None
        self._version += 1

    def _changed(self) -> None:
        self._generation += 1
        self._version += 1

    @property
    def version(self) -> int:
        """A counter that changes whenever an answer read from the tables
        may change (it never repeats)."""
        return self._version

    def is_broker_topic_config_changed(self, broker_addr: str, data_version: DataVersion) -> bool:
        """True unless ``broker_addr`` is live with exactly ``data_version``."""
        previous = self.query_broker_topic_config(broker_addr)
        return previous is None or previous != data_version

    def query_broker_topic_config(self, broker_addr: str) -> DataVersion | None:
        """The DataVersion ``broker_addr`` last registered with, if live."""
        live = self._live.get(broker_addr)
        return None if live is None else live.data_version

    def update_broker_info_update_timestamp(self, broker_addr: str, now_ms: int) -> None:
        """Mark ``broker_addr`` as heard of now (QUERY_DATA_VERSION, unchanged)."""
        live = self._live.get(broker_addr)
        if live is not None:
            self._live[broker_addr] = BrokerLiveInfo(
                now_ms, live.data_version, live.connection, live.ha_server_addr
            )

    # ------------------------------------------------------------------
    # Removal

    def unregister_broker(
        self, cluster_name: str, broker_addr: str, broker_name: str, broker_id: int
    ) -> None:
        """``unregisterBroker``: a broker says goodbye."""
        live = self._live.get(broker_addr)
        if live is not None:
            del self._live[broker_addr]
            self._untrack(broker_addr, live.connection)
        log.info(
            "unregisterBroker, remove from brokerLiveTable %s, %s",
            "OK" if live is not None else "Failed",
            broker_addr,
        )
        self._drop_filter_servers(broker_addr)

        remove_name = False
        entry = self._brokers.get(broker_name)
        if entry is not None:
            removed = entry.addrs.get(broker_id)
            if removed is not None:
                del entry.addrs[broker_id]
                self._changed()
            log.info(
                "unregisterBroker, remove addr from brokerAddrTable %s, %s",
                "OK" if removed is not None else "Failed",
                broker_addr,
            )
            if not entry.addrs:
                del self._brokers[broker_name]
                self._changed()
                remove_name = True
                log.info("unregisterBroker, remove name from brokerAddrTable OK, %s", broker_name)

        if remove_name:
            names = self._clusters.get(cluster_name)
            if names is not None:
                found = broker_name in names
                names.discard(broker_name)
                self._changed()
                log.info(
                    "unregisterBroker, remove name from clusterAddrTable %s, %s",
                    "OK" if found else "Failed",
                    broker_name,
                )
                if not names:
                    del self._clusters[cluster_name]
                    log.info(
                        "unregisterBroker, remove cluster from clusterAddrTable %s", cluster_name
                    )
            self._remove_topics_of(broker_name)

    def on_connection_closed(self, connection: object) -> list[DroppedBroker]:
        """Drop every broker address whose registration came over ``connection``
        (Java's onChannelDestroy, for close, exception and idle alike)."""
        addrs = self._by_connection.pop(connection, None)
        if not addrs:
            return []
        dropped = []
        for broker_addr in [a for a in self._live if a in addrs]:
            live = self._live[broker_addr]
            if live.connection is not connection:
                continue
            del self._live[broker_addr]
            self._remove_broker_addr(broker_addr)
            dropped.append(DroppedBroker(broker_addr, connection, "connection closed"))
        return dropped

    def scan_not_active_brokers(
        self, now_ms: int, expired_after_ms: int = BROKER_CHANNEL_EXPIRED_MS
    ) -> list[DroppedBroker]:
        """``scanNotActiveBroker``: drop brokers not heard of for more than
        ``expired_after_ms``. The caller closes their connections."""
        expired = [
            (addr, live)
            for addr, live in self._live.items()
            if live.last_update_ms + expired_after_ms < now_ms
        ]
        dropped = []
        for broker_addr, live in expired:
            del self._live[broker_addr]
            self._untrack(broker_addr, live.connection)
            self._remove_broker_addr(broker_addr)
            dropped.append(
                DroppedBroker(
                    broker_addr,
                    live.connection,
                    f"not heard of for {now_ms - live.last_update_ms}ms",
                )
            )
        return dropped

    def _remove_broker_addr(self, broker_addr: str) -> None:
        """The table cleanup of onChannelDestroy, for an address already out
        of the live table."""
        self._drop_filter_servers(broker_addr)
        found_name: str | None = None
        remove_name = False
        for name, entry in list(self._brokers.items()):
            for broker_id, addr in list(entry.addrs.items()):
                if addr == broker_addr:
                    found_name = name
                    del entry.addrs[broker_id]
                    self._changed()
                    log.info(
                        "remove brokerAddr[%d, %s] from brokerAddrTable, because channel destroyed",
                        broker_id,
                        addr,
                    )
                    break
            if found_name is not None:
                if not entry.addrs:
                    remove_name = True
                    del self._brokers[name]
                    self._changed()
                    log.info(
                        "remove brokerName[%s] from brokerAddrTable, because channel destroyed",
                        name,
                    )
                break
        if found_name is None or not remove_name:
            return
        for cluster, names in list(self._clusters.items()):
            if found_name in names:
                names.discard(found_name)
                self._changed()
                log.info(
                    "remove brokerName[%s], clusterName[%s] from clusterAddrTable, "
                    "because channel destroyed",
                    found_name,
                    cluster,
                )
                if not names:
                    del self._clusters[cluster]
                    log.info(
                        "remove the clusterName[%s] from clusterAddrTable, because channel "
                        "destroyed and no broker in this cluster",
                        cluster,
                    )
                break
        self._remove_topics_of(found_name)

    def _drop_filter_servers(self, broker_addr: str) -> None:
        if broker_addr in self._filters:
            del self._filters[broker_addr]
            self._changed()

    def _remove_topics_of(self, broker_name: str) -> None:
        self._applied.pop(broker_name, None)
        for topic, entry in list(self._topics.items()):
            queues = entry.find(broker_name)
            if queues is None:
                continue
            log.info("remove topic[%s %s]", topic, QueueData.row_text((broker_name, queues)))
            rest = tuple(pair for pair in entry.queues if pair[0] != broker_name)
            if rest:
                self._set_queues(entry, rest)
            else:
                self._remove_topic(topic)
                log.info("remove topic[%s] all queue", topic)

    # ------------------------------------------------------------------
    # Administration

    def wipe_write_perm_of_broker(self, broker_name: str) -> int:
        """Clear the write bit of every queue data of ``broker_name``; the
        number of topics touched (Java counts already read-only ones too)."""
        count = 0
        interned = self._interned
        self._applied.pop(broker_name, None)
        for entry in self._topics.values():
            if entry.find(broker_name) is None:
                continue
            wiped_list = []
            for name, queues in entry.queues:
                if name == broker_name:
                    read, write, perm, flag = queues
                    wiped = (read, write, perm & ~PERM_WRITE, flag)
                    queues = interned.setdefault(wiped, wiped)
                    count += 1
                wiped_list.append((name, queues))
            self._set_queues(entry, tuple(wiped_list))
        return count

    def delete_topic(self, topic: str) -> None:
        """Forget ``topic`` (until a master registers it again with a new
        DataVersion)."""
        if topic in self._topics:
            self._remove_topic(topic)
            self._applied.clear()


__all__ = [
    "BROKER_CHANNEL_EXPIRED_MS",
    "BrokerLiveInfo",
    "DroppedBroker",
    "QueueNums",
    "RegisterResult",
    "RouteTables",
    "TopicDelta",
    "TopicQueues",
    "topic_delta",
    "topic_delta_items",
]
