"""The values the NameServer's route tables hold and hand out: a topic's
entry, a broker name's addresses, a broker's liveness, what a registration
answers and what a table brings that the one applied before did not. No
I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pyrocket.protocol.bodies import DataVersion
from pyrocket.protocol.bodies.register import TopicQueues
from pyrocket.protocol.bodies.route import QueueNums
from pyrocket.protocol.javahash import JavaHashMap

#: Changed and new topics of one registration logged one by one at most
#: (Java logs each); the rest are counted in one line.
DESCRIBED_TOPICS: Final = 16


@dataclass(frozen=True, slots=True)
class TopicDelta:
    """The entries of a topic table that differ from ``base`` (new topics
    and changed queue numbers), in the table's order."""

    base: TopicQueues
    items: Sequence[tuple[str, QueueNums]]


def topic_delta_items(base: TopicQueues, topics: TopicQueues) -> list[tuple[str, QueueNums]]:
    """The entries of ``topics`` that ``base`` lacks or holds otherwise."""
    get = base.get
    return [(topic, queues) for topic, queues in topics.items() if get(topic) != queues]


def topic_delta(base: TopicQueues, topics: TopicQueues) -> TopicDelta:
    """:class:`TopicDelta` of ``topics`` against ``base``. Pure, so it can
    run in a thread (neither table is changed once built)."""
    return TopicDelta(base, topic_delta_items(base, topics))


@dataclass(frozen=True, slots=True)
class RegisterResult:
    """REGISTER_BROKER's answer: for a slave, its master's HA and broker address."""

    ha_server_addr: str | None = None
    master_addr: str | None = None


@dataclass(frozen=True, slots=True)
class BrokerLiveInfo:
    """One broker address as the NameServer last heard of it."""

    last_update_ms: int
    data_version: DataVersion
    connection: object
    ha_server_addr: str | None


@dataclass(frozen=True, slots=True)
class DroppedBroker:
    """A broker address taken out of the tables, with the connection it used."""

    broker_addr: str
    connection: object
    reason: str


QueueList = tuple[tuple[str, QueueNums], ...]
"""A topic's queue data in Java's list order, as (broker name, numbers) pairs."""


class TopicEntry:
    """One entry of the topic queue table.

    ``queues`` is an immutable tuple, shared between topics that hold the
    same thing (most topics of a broker do), replaced on every change; a
    changed entry moves to the end, as in Java's list. ``prefix`` and
    ``suffix`` are the two halves of the encoded route, shared too: the broker
    part (valid while ``generation`` is current) and the queue part.
    """

    __slots__ = ("generation", "prefix", "queues", "suffix")

    def __init__(self, queues: QueueList) -> None:
        self.queues = queues
        self.prefix: bytes | None = None
        self.suffix: bytes | None = None
        self.generation = -1

    def set_queues(self, queues: QueueList) -> None:
        self.queues = queues
        self.prefix = self.suffix = None

    def find(self, broker_name: str) -> QueueNums | None:
        for name, queues in self.queues:
            if name == broker_name:
                return queues
        return None


class BrokerEntry:
    """Java's BrokerData as held in the broker address table (mutable)."""

    __slots__ = ("addrs", "cluster", "name")

    def __init__(self, cluster: str, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.addrs: JavaHashMap[int, str] = JavaHashMap()


__all__ = [
    "DESCRIBED_TOPICS",
    "BrokerEntry",
    "BrokerLiveInfo",
    "DroppedBroker",
    "QueueList",
    "RegisterResult",
    "TopicDelta",
    "TopicEntry",
    "topic_delta",
    "topic_delta_items",
]
