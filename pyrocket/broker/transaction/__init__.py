"""Transactional messages on the broker: the half and op queues, the check
service (:mod:`~pyrocket.broker.transaction.service`) and the messages a
transaction stores (:mod:`~pyrocket.broker.transaction.messages`).
"""

from pyrocket.broker.transaction.messages import (
    committed_message,
    renewed_half,
    to_half_message,
)
from pyrocket.broker.transaction.service import (
    REMOVE_TAG,
    TRANSACTION_GROUP,
    TransactionalMessageService,
    TransactionHost,
)

__all__ = [
    "REMOVE_TAG",
    "TRANSACTION_GROUP",
    "TransactionHost",
    "TransactionalMessageService",
    "committed_message",
    "renewed_half",
    "to_half_message",
]
