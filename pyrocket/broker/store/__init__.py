"""The broker's message store, in Java RocketMQ 4.7.0's on-disk formats.

Running it (one store per broker, in the broker app's nursery)::

    store = MessageStore(MessageStoreConfig.from_java_properties(broker_conf))
    await nursery.start(store.run)          # recovered, accepting messages
    # or: async with open_message_store(config) as store: ...

Writing (SEND_MESSAGE, SEND_BATCH_MESSAGE, CONSUMER_SEND_MSG_BACK)::

    result = await store.put_message(BrokerMessage.from_properties_string(
        topic, queue_id, body, header_properties, flag=..., sys_flag=...,
        born_timestamp=..., born_host=peer, store_host=me, reconsume_times=...))
    result.status                # PutMessageStatus (Java's names)
    result.append_result         # wrote_offset, wrote_bytes, msg_id,
                                 # logics_offset (queue offset), store_timestamp
    await store.put_messages(BrokerBatch(topic, queue_id, batch_body, ...))

Reading (PULL_MESSAGE and the offset queries)::

    got = await store.get_message(group, topic, queue_id, offset, max_nums,
                                  TagsFilter(subscription_codes) or None)
    got.status, got.next_begin_offset, got.min_offset, got.max_offset,
    got.suggest_pulling_from_slave, got.body()   # the PULL answer body
    store.get_max_offset_in_queue / get_min_offset_in_queue /
    get_offset_in_queue_by_time / get_earliest_message_time /
    get_message_store_timestamp / get_commit_log_offset_in_queue /
    select_one_message_by_offset / look_message_by_offset /
    min_phy_offset / max_phy_offset / queue_offset_table()

Waiting for messages (long polling)::

    await store.queue_max_offset(topic, queue_id).wait_value(lambda v: v > offset)
    store.add_arrival_listener(callback)     # MessageArrival after each message

Housekeeping: ``clean_unused_topics``, ``clean_expired_consume_queues``,
``execute_delete_files_manually``, ``schedule.encode()`` (delay offsets),
``running_stats()``.
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
