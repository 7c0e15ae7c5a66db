"""Queue locks for orderly consumers (Java's ``RebalanceLockManager`` and the
LOCK_BATCH_MQ / UNLOCK_BATCH_MQ handlers of ``AdminBrokerProcessor``).

An orderly consumer consumes a queue only while it holds that queue's lock on
the broker, so that two clients of a group never consume one queue at once
during a rebalance. A lock belongs to a client id and lapses after 60 s
without renewal (clients renew every 20 s).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from pyrocket.broker.processors.ports import Registrar
from pyrocket.errors import CommandError, ProtocolError
from pyrocket.protocol.bodies.client import (
    LockBatchRequestBody,
    LockBatchResponseBody,
    MessageQueue,
    UnlockBatchRequestBody,
)
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RESPONSE_FLAG, RemotingCommand
from pyrocket.protocol.javahash import JavaHashSet
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.broker")

#: ``rocketmq.broker.rebalance.lockMaxLiveTime``'s default (ms).
REBALANCE_LOCK_MAX_LIVE_TIME_MS: Final = 60_000


@dataclass(slots=True)
class _LockEntry:
    client_id: str
    last_update_timestamp: int


class RebalanceLockManager:
    """Group -> queue -> lock holder."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self._now_ms = now_ms
        self._table: dict[str, dict[MessageQueue, _LockEntry]] = {}

    def _expired(self, entry: _LockEntry) -> bool:
        return self._now_ms() - entry.last_update_timestamp > REBALANCE_LOCK_MAX_LIVE_TIME_MS

    def _locked_by(self, entry: _LockEntry, client_id: str) -> bool:
        return entry.client_id == client_id and not self._expired(entry)

    def try_lock_batch(
        self, group: str, queues: Iterable[MessageQueue], client_id: str
    ) -> JavaHashSet[MessageQueue]:
        """Lock what can be locked for ``client_id``; returns the queues it
        now holds (a HashSet, Java's order)."""
        queues = list(queues)
        locked: JavaHashSet[MessageQueue] = JavaHashSet(len(queues))
        table = self._table.setdefault(group, {})
        now = self._now_ms()
        for queue in queues:
            entry = table.get(queue)
            if entry is None:
                table[queue] = _LockEntry(client_id, now)
                log.info(
                    "tryLockBatch, message queue not locked, I got it. Group: %s "
                    "NewClientId: %s %s",
                    group,
                    client_id,
                    queue,
                )
                locked.add(queue)
            elif self._locked_by(entry, client_id):
                entry.last_update_timestamp = now
                locked.add(queue)
            elif self._expired(entry):
                log.warning(
                    "tryLockBatch, message queue lock expired, I got it. Group: %s "
                    "OldClientId: %s NewClientId: %s %s",
                    group,
                    entry.client_id,
                    client_id,
                    queue,
                )
                entry.client_id = client_id
                entry.last_update_timestamp = now
                locked.add(queue)
            else:
                log.warning(
                    "tryLockBatch, message queue locked by other client. Group: %s "
                    "OtherClientId: %s NewClientId: %s %s",
                    group,
                    entry.client_id,
                    client_id,
                    queue,
                )
        return locked

    def unlock_batch(self, group: str, queues: Iterable[MessageQueue], client_id: str) -> None:
        table = self._table.get(group)
        if table is None:
            log.warning("unlockBatch, group not exist, Group: %s %s", group, client_id)
            return
        for queue in queues:
            entry = table.get(queue)
            if entry is None:
                log.warning(
                    "unlockBatch, but mq not locked, Group: %s %s %s", group, queue, client_id
                )
            elif entry.client_id == client_id:
                del table[queue]
                log.info("unlockBatch, Group: %s %s %s", group, queue, client_id)
            else:
                log.warning(
                    "unlockBatch, but mq locked by other client: %s, Group: %s %s %s",
                    entry.client_id,
                    group,
                    queue,
                    client_id,
                )


class RebalanceProcessor:
    """Answers LOCK_BATCH_MQ and UNLOCK_BATCH_MQ."""

    def __init__(self, broker: Registrar, locks: RebalanceLockManager) -> None:
        self.broker = broker
        self.locks = locks

    def install(self) -> None:
        self.broker.register_processor(RequestCode.LOCK_BATCH_MQ, self.lock_batch_mq)
        self.broker.register_processor(RequestCode.UNLOCK_BATCH_MQ, self.unlock_batch_mq)

    def lock_batch_mq(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        """Raises CommandError for a body that is not a LockBatchRequestBody."""
        try:
            body = LockBatchRequestBody.decode(request.body or b"")
        except ProtocolError as exc:
            raise CommandError(f"lock batch body: {exc}") from exc
        locked = self.locks.try_lock_batch(
            body.consumer_group or "", body.mq_set, body.client_id or ""
        )
        answer = LockBatchResponseBody(tuple(locked)).encode()
        return RemotingCommand(code=ResponseCode.SUCCESS, flag=RESPONSE_FLAG, body=answer)

    def unlock_batch_mq(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        """Raises CommandError for a body that is not an UnlockBatchRequestBody."""
        try:
            body = UnlockBatchRequestBody.decode(request.body or b"")
        except ProtocolError as exc:
            raise CommandError(f"unlock batch body: {exc}") from exc
        self.locks.unlock_batch(body.consumer_group or "", body.mq_set, body.client_id or "")
        return RemotingCommand(code=ResponseCode.SUCCESS, flag=RESPONSE_FLAG)


__all__ = ["REBALANCE_LOCK_MAX_LIVE_TIME_MS", "RebalanceLockManager", "RebalanceProcessor"]
