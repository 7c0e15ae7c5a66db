"""The messages a transaction stores, built from the ones it read (Java's
``parseHalfMessageInner``, ``endMessageTransaction``,
``renewHalfMessageInner``): pure functions, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from pyrocket.broker.store import BrokerMessage
from pyrocket.broker.topic_config import RMQ_SYS_TRANS_HALF_TOPIC
from pyrocket.protocol.message import (
    MessageConst,
    MessageExt,
    MessageSysFlag,
    encode_properties,
    java_properties,
)


def to_half_message(message: BrokerMessage) -> BrokerMessage:
    """``parseHalfMessageInner``: the prepared message as stored, in the half
    topic's queue 0 with its real topic and queue in properties and its
    transaction type cleared."""
    properties = java_properties(message.properties)
    properties[MessageConst.PROPERTY_REAL_TOPIC] = message.topic
    properties[MessageConst.PROPERTY_REAL_QUEUE_ID] = str(message.queue_id)
    return dataclasses.replace(
        message,
        topic=RMQ_SYS_TRANS_HALF_TOPIC,
        queue_id=0,
        properties=properties,
        properties_string=encode_properties(properties),
        sys_flag=MessageSysFlag.reset_transaction_value(
            message.sys_flag, MessageSysFlag.TRANSACTION_NOT_TYPE
        ),
    )


def committed_message(half: MessageExt, commit_log_offset: int) -> BrokerMessage:
    """``endMessageTransaction``: the half message back under its real topic
    and queue, typed committed. Java removes REAL_TOPIC, REAL_QID and
    TRAN_MSG from the map only, after taking the properties string: the
    stored message still carries them, and so does this one. Raises
    ValueError for a REAL_QID that is not a number."""
    properties = java_properties(half.properties)
    text = encode_properties(properties)
    topic = properties.pop(MessageConst.PROPERTY_REAL_TOPIC, None) or ""
    queue_id = int(properties.pop(MessageConst.PROPERTY_REAL_QUEUE_ID, ""))
    properties.pop(MessageConst.PROPERTY_TRANSACTION_PREPARED, None)
    return BrokerMessage(
        topic,
        queue_id,
        half.body,
        properties,
        text,
        flag=half.flag,
        sys_flag=MessageSysFlag.reset_transaction_value(
            half.sys_flag & ~MessageSysFlag.HOST_V6_FLAGS, MessageSysFlag.TRANSACTION_COMMIT_TYPE
        ),
        born_timestamp=half.born_timestamp,
        born_host=half.born_host,
        store_host=half.store_host,
        reconsume_times=half.reconsume_times,
        prepared_transaction_offset=commit_log_offset,
    )


def renewed_half(
    message: MessageExt, properties: Mapping[str, str], *, whole: bool = False
) -> BrokerMessage:
    """``renewHalfMessageInner``: ``message`` to store again in its own (half)
    queue with ``properties``; Java copies neither the flag nor the
    reconsume times then (``whole``: it does, as for a discarded message).
    Java sets WAIT=false in the map after taking the string, so the store
    does not wait for the flush."""
    mapping = dict(properties)
    mapping[MessageConst.PROPERTY_WAIT_STORE_MSG_OK] = "false"
    return BrokerMessage(
        message.topic,
        message.queue_id,
        message.body,
        mapping,
        encode_properties(properties),
        flag=message.flag if whole else 0,
        sys_flag=message.sys_flag & ~MessageSysFlag.HOST_V6_FLAGS,
        born_timestamp=message.born_timestamp,
        born_host=message.born_host,
        store_host=message.store_host,
        reconsume_times=message.reconsume_times if whole else 0,
    )


__all__ = ["committed_message", "renewed_half", "to_half_message"]
