"""What :class:`~pyrocket.client.admin.Admin`'s calls return beyond the
protocol's own bodies: one server's outcome of a cluster-wide call, where a
topic went, a broker's message totals, one consumer's running-info report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.admin import ConsumerRunningInfo

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What one server (``addr``) answered to one call of a cluster-wide
    operation that goes on past failures: ``value`` or ``error``."""

    addr: str
    value: T | None = None
    error: PyrocketError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class TopicUpdate:
    """Where a topic was created or updated, and the order configuration
    (``"brokerName:queues;..."``) put on the NameServers for an ordered one."""

    broker_addrs: tuple[str, ...]
    order_conf: str | None = None


@dataclass(frozen=True, slots=True)
class BrokerTotals:
    """A broker's message counts (clusterList ``-m``): put and got yesterday
    and today so far."""

    in_yesterday: int
    out_yesterday: int
    in_today: int
    out_today: int


@dataclass(frozen=True, slots=True)
class RunningInfoReport:
    """What one client of a consumer group (``connection``'s) reported of
    itself: ``info`` (None when no broker routes the group), or ``error``."""

    client_id: str
    version: int
    info: ConsumerRunningInfo | None = None
    error: PyrocketError | None = None


__all__ = ["BrokerTotals", "Outcome", "RunningInfoReport", "TopicUpdate"]
