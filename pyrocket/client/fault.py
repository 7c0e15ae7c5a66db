"""Which queue a send goes to: a topic's writable queues taken round robin
(Java's ``TopicPublishInfo``) and, when ``send_latency_fault_enable`` is on,
brokers that answered slowly or failed kept aside for a while (Java's
``MQFaultStrategy`` and ``LatencyFaultToleranceImpl``).

Sans I/O: the producer reports each attempt's latency (and whether it
failed) through :meth:`FaultStrategy.update_fault_item`; the clock is a
parameter so tests can move time by hand::

    strategy = FaultStrategy(send_latency_fault_enable=True)
    queue = strategy.select_one_message_queue(info, last_broker=None)
    ...
    strategy.update_fault_item(queue.broker_name, latency_ms=120, isolation=False)

A latency of ``latency_max[i]`` ms or more makes the broker unavailable for
``not_available_duration[i]`` ms (the largest ``i`` that fits); a failed
attempt counts as 30 s of latency, so 10 minutes aside with the defaults.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyrocket.protocol.bodies.client import MessageQueue

#: MQFaultStrategy.latencyMax (ms).
LATENCY_MAX: tuple[int, ...] = (50, 100, 550, 1000, 2000, 3000, 15000)
#: MQFaultStrategy.notAvailableDuration (ms), one per latencyMax entry.
NOT_AVAILABLE_DURATION: tuple[int, ...] = (0, 0, 30000, 60000, 120000, 180000, 600000)
#: The latency a failed attempt counts as (``isolation``), in ms.
ISOLATION_LATENCY = 30000
#: Fault items kept at most; broker names come from routes, so this is a
#: guard rather than a limit a real cluster reaches.
MAX_FAULT_ITEMS = 4096


def _monotonic_ms() -> float:
    return time.monotonic() * 1000.0


class TopicPublishInfo:
    """A topic's writable queues and its round-robin position."""

    def __init__(self, queues: list[MessageQueue], start: int) -> None:
        self.queues = queues
        self.index = start

    def next_index(self) -> int:
        """The position counter, then one step on (``getAndIncrement``)."""
        value = self.index
        self.index += 1
        return value

    def select(self, last_broker: str | None = None) -> MessageQueue:
        """The next queue, avoiding ``last_broker`` if another broker has one."""
        size = len(self.queues)
        if last_broker is not None:
            for _ in range(size):
                self.index += 1
                queue = self.queues[self.index % size]
                if queue.broker_name != last_broker:
                    return queue
        self.index += 1
        return self.queues[self.index % size]

    def write_queue_nums(self, broker: str) -> int:
        """How many of the queues are ``broker``'s (``getQueueIdByBroker``)."""
        return sum(1 for queue in self.queues if queue.broker_name == broker)


@dataclass(slots=True)
class FaultItem:
    """One broker's last latency (ms) and when it is available again."""

    name: str
    current_latency: float
    start_timestamp: float


class LatencyFaultTolerance:
    """Brokers kept aside until a moment (``LatencyFaultToleranceImpl``)."""

    def __init__(
        self,
        clock: Callable[[], float] = _monotonic_ms,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._random = rng or random.Random()
        self._items: dict[str, FaultItem] = {}
        self._which_worst = self._random.randrange(1 << 16)

    def update_fault_item(self, name: str, current_latency: float, not_available: float) -> None:
        """Record ``name``'s latency; it is unavailable for ``not_available`` ms."""
        until = self._clock() + not_available
        item = self._items.get(name)
        if item is None:
            if len(self._items) >= MAX_FAULT_ITEMS:
                self._items.pop(next(iter(self._items)))
            self._items[name] = FaultItem(name, current_latency, until)
        else:
            item.current_latency = current_latency
            item.start_timestamp = until

    def is_available(self, name: str) -> bool:
        """Whether ``name`` has no fault item, or its time aside is over."""
        item = self._items.get(name)
        return item is None or self._clock() >= item.start_timestamp

    def remove(self, name: str | None) -> None:
        if name is not None:
            self._items.pop(name, None)

    def pick_one_at_least(self) -> str | None:
        """Among the brokers with fault items, one of the better half (the
        available first, then the lower latency, then the sooner available),
        taken in turn; None when there are no items."""
        items = list(self._items.values())
        if not items:
            return None
        self._random.shuffle(items)
        now = self._clock()
        items.sort(key=lambda i: (now < i.start_timestamp, i.current_latency, i.start_timestamp))
        half = len(items) // 2
        if half <= 0:
            return items[0].name
        index = self._which_worst
        self._which_worst += 1
        return items[index % half].name

    def __len__(self) -> int:
        return len(self._items)


class FaultStrategy:
    """Java's ``MQFaultStrategy``: queue selection for a send and the
    bookkeeping of broker latencies. With ``send_latency_fault_enable`` off
    (Java's default) it is plain round robin that avoids the broker of the
    previous failed attempt."""

    def __init__(
        self,
        send_latency_fault_enable: bool = False,
        latency_max: Sequence[int] = LATENCY_MAX,
        not_available_duration: Sequence[int] = NOT_AVAILABLE_DURATION,
        clock: Callable[[], float] = _monotonic_ms,
        rng: random.Random | None = None,
    ) -> None:
        if len(latency_max) != len(not_available_duration):
            raise ValueError("latency_max and not_available_duration differ in length")
        self.send_latency_fault_enable = send_latency_fault_enable
        self.latency_max = tuple(latency_max)
        self.not_available_duration = tuple(not_available_duration)
        self.tolerance = LatencyFaultTolerance(clock, rng)

    def select_one_message_queue(
        self, info: TopicPublishInfo, last_broker: str | None = None
    ) -> MessageQueue:
        """The queue for the next attempt. With the latency strategy on: the
        next queue in turn whose broker is available (and, on a retry, not
        the broker that just failed); failing that a queue of the least bad
        broker; failing that the next queue in turn."""
        if not self.send_latency_fault_enable:
            return info.select(last_broker)
        size = len(info.queues)
        index = info.next_index()
        for _ in range(size):
            queue = info.queues[abs(index) % size]
            index += 1
            broker = queue.broker_name or ""
            if self.tolerance.is_available(broker) and (
                last_broker is None or broker != last_broker
            ):
                return queue
        not_best = self.tolerance.pick_one_at_least()
        count = info.write_queue_nums(not_best) if not_best is not None else 0
        if count > 0 and not_best is not None:
            base = info.select()
            return MessageQueue(base.topic, not_best, info.next_index() % count)
        self.tolerance.remove(not_best)
        return info.select()

    def update_fault_item(self, broker: str, latency_ms: float, isolation: bool) -> None:
        """Record an attempt on ``broker`` that took ``latency_ms``;
        ``isolation``: it failed. Does nothing with the strategy off."""
        if self.send_latency_fault_enable:
            duration = self.compute_not_available_duration(
                ISOLATION_LATENCY if isolation else latency_ms
            )
            self.tolerance.update_fault_item(broker, latency_ms, duration)

    def compute_not_available_duration(self, latency_ms: float) -> int:
        """How long (ms) a broker with this latency stays aside."""
        for limit, duration in zip(
            reversed(self.latency_max), reversed(self.not_available_duration), strict=True
        ):
            if latency_ms >= limit:
                return duration
        return 0


__all__ = [
    "ISOLATION_LATENCY",
    "LATENCY_MAX",
    "NOT_AVAILABLE_DURATION",
    "FaultItem",
    "FaultStrategy",
    "LatencyFaultTolerance",
    "TopicPublishInfo",
]
