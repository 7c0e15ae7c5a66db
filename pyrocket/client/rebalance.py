"""A push consumer's queue table and its rebalance (Java's ``RebalanceImpl``
for one group).

In CLUSTERING mode each round takes a subscribed topic's readable queues and
the group's client ids (GET_CONSUMER_LIST_BY_GROUP), both sorted, and keeps
the queues the allocation strategy gives this client (in BROADCASTING mode
every readable queue, no id list asked for): a queue given away is dropped (its
pull loop cancelled, its consumed offset committed), a queue newly given
starts at the offset :func:`~pyrocket.client.offsets.start_offset` finds and
gets a pull loop. One lock serialises rounds, resets and closing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

import trio

from pyrocket.client.allocate import AllocateStrategy
from pyrocket.client.instance import ClientInstance, subscribe_queues
from pyrocket.client.pulling import QueueState
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import MessageQueue, SubscriptionData

log = logging.getLogger("pyrocket.client.consumer")

#: Where a newly assigned queue starts: (offset, committed) or None to skip it.
StartOffset = Callable[[MessageQueue], Awaitable[tuple[int, bool] | None]]


class QueueTable:
    """The queues one consumer reads, and the rounds that change them."""

    def __init__(
        self,
        instance: ClientInstance,
        group: str,
        allocate: AllocateStrategy[MessageQueue],
        timeout: float,
        start_offset: StartOffset,
        persist: Callable[[QueueState], Awaitable[None]],
        start_pulling: Callable[[QueueState], None],
        lock: Callable[[MessageQueue], Awaitable[bool]] | None = None,
        release: Callable[[QueueState], Awaitable[None]] | None = None,
        *,
        broadcasting: bool = False,
    ) -> None:
        self.instance = instance
        self.group = group
        self.allocate = allocate
        self.timeout = timeout
        self._start_offset = start_offset
        self._persist = persist
        self._start_pulling = start_pulling
        #: Orderly consumption: lock a queue before reading it, unlock it
        #: once given away (``RebalanceImpl.lock`` / ``removeUnnecessaryMessageQueue``).
        self._lock = lock
        self._release = release
        self.broadcasting = broadcasting
        self.queues: dict[MessageQueue, QueueState] = {}
        self.lock = trio.Lock()
        #: Set once closing has begun: no round or reset runs after it.
        self.closing = False

    async def rebalance(self, subscriptions: Iterable[tuple[str, SubscriptionData]]) -> None:
        """Share every subscribed topic's queues with the group now."""
        async with self.lock:
            if self.closing:
                return
            for topic, subscription in list(subscriptions):
                await self._rebalance_topic(topic, subscription)

    def drop(self, queue: MessageQueue) -> QueueState | None:
        """Stop reading ``queue`` (its loop cancelled; nothing committed).
        Call with the lock held."""
        state = self.queues.pop(queue, None)
        if state is not None:
            state.dropped = True
            state.scope.cancel()
        return state

    async def _rebalance_topic(self, topic: str, subscription: SubscriptionData) -> None:
        instance = self.instance
        route = instance.routes.get(topic) or await instance.update_route(topic)
        if route is None:
            return
        queues = subscribe_queues(topic, route)
        addr = instance.any_broker_addr(topic)
        if not queues or addr is None:
            return
        if self.broadcasting:
            mine = set(queues)
        else:
            try:
                ids = await instance.brokers.get_consumer_id_list(addr, self.group, self.timeout)
            except PyrocketError as exc:
                log.warning("consumer list of %s from %s failed: %s", self.group, addr, exc)
                return
            if not ids:
                return
            mine = set(self.allocate(self.group, instance.client_id, queues, sorted(ids)))
        for queue, state in list(self.queues.items()):
            if queue.topic == topic and queue not in mine:
                state.dropped = True
                state.scope.cancel()
                await self._persist(state)
                del self.queues[queue]
                if self._release is not None:
                    await self._release(state)
                log.info("%s: %s moved to another consumer", self.group, queue)
        for queue in sorted(mine - set(self.queues), key=lambda q: q.queue_id):
            if self._lock is not None and not await self._lock(queue):
                log.info("%s: %s is locked by another consumer; not read yet", self.group, queue)
                continue
            start = await self._start_offset(queue)
            if start is None:
                continue
            offset, committed = start
            state = QueueState(queue, subscription, offset)
            if committed:
                state.consumed = offset
            if self._lock is not None:
                state.process.lock_renewed()
            self.queues[queue] = state
            self._start_pulling(state)
            log.info("%s: reading %s from offset %d", self.group, queue, offset)
