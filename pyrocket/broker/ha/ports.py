"""What the HA services read of the message store."""

from __future__ import annotations

from typing import Protocol

from pyrocket.broker.store.config import MessageStoreConfig
from pyrocket.broker.store.model import ArrivalListener


class ReplicatedStore(Protocol):
    """The store, as replication sees it (both roles)."""

    @property
    def config(self) -> MessageStoreConfig: ...

    @property
    def max_phy_offset(self) -> int: ...

    async def read_commit_log_data(self, offset: int, limit: int) -> bytes | None: ...

    async def append_replicated(self, offset: int, data: bytes) -> None: ...

    def add_arrival_listener(self, listener: ArrivalListener) -> None: ...

    def remove_arrival_listener(self, listener: ArrivalListener) -> None: ...
