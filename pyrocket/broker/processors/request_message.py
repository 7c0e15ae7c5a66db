"""Request messages on the send path: a message sent with
``Producer.request`` (it carries ``REPLY_TO_CLIENT``) is stored with the
``CLUSTER`` property, which its replier needs to address the reply topic
``<cluster>_REPLY_TOPIC`` (``MessageUtil.createReplyMessage``).

Java 4.7.0 adds ``CLUSTER`` only on its synchronous send path, which nothing
calls, so no reply can be made through it; later versions add it to every
message. pyrocket adds it to request messages only, so every other stored
message stays byte for byte what Java 4.7.0 stores.
"""

from __future__ import annotations

import dataclasses

from pyrocket.broker.store import BrokerMessage
from pyrocket.protocol.message import MessageConst, encode_properties, java_properties


def with_request_cluster(message: BrokerMessage, cluster: str) -> BrokerMessage:
    """``message`` with ``CLUSTER`` set to ``cluster`` when it is a request,
    its properties string re-encoded in Java's HashMap order (as later Java
    versions do); any other message as it is."""
    properties = message.properties
    if MessageConst.PROPERTY_MESSAGE_REPLY_TO_CLIENT not in properties:
        return message
    table = java_properties(properties)
    table[MessageConst.PROPERTY_CLUSTER] = cluster
    return dataclasses.replace(
        message, properties=table, properties_string=encode_properties(table)
    )


__all__ = ["with_request_cluster"]
