"""The broker's message store, in Java RocketMQ 4.7.0's on-disk formats.

Public API (see :mod:`pyrocket.broker.store.store` for the details)::

    async with open_message_store(MessageStoreConfig(...)) as store:
        result = await store.put_message(BrokerMessage(...))
        got = await store.get_message(group, topic, queue_id, offset, 32)
"""

from pyrocket.broker.store.commitlog import SCHEDULE_TOPIC
from pyrocket.broker.store.config import BrokerRole, FlushDiskType, MessageStoreConfig
from pyrocket.broker.store.model import (
    AppendMessageResult,
    AppendMessageStatus,
    ArrivalListener,
    BrokerBatch,
    BrokerMessage,
    GetMessageResult,
    GetMessageStatus,
    MessageArrival,
    MessageFilter,
    PutMessageResult,
    PutMessageStatus,
    StoreError,
    TagsFilter,
)
from pyrocket.broker.store.store import MessageStore, open_message_store

__all__ = [
    "SCHEDULE_TOPIC",
    "AppendMessageResult",
    "AppendMessageStatus",
    "ArrivalListener",
    "BrokerBatch",
    "BrokerMessage",
    "BrokerRole",
    "FlushDiskType",
    "GetMessageResult",
    "GetMessageStatus",
    "MessageArrival",
    "MessageFilter",
    "MessageStore",
    "MessageStoreConfig",
    "PutMessageResult",
    "PutMessageStatus",
    "StoreError",
    "TagsFilter",
    "open_message_store",
]
