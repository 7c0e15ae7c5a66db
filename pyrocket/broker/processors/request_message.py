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

from typing import Final

from pyrocket.protocol.message import (
    MessageConst,
    decode_properties,
    encode_properties,
    java_properties,
)

_MARKER: Final = MessageConst.PROPERTY_MESSAGE_REPLY_TO_CLIENT + "\x01"


def with_request_cluster(properties: str, cluster: str) -> str:
    """The properties string to store for a message sent with ``properties``:
    for a request (it has ``REPLY_TO_CLIENT``), the map with ``CLUSTER`` set
    to ``cluster`` encoded in Java's HashMap order (as later Java versions
    do); for any other message ``properties`` as it is."""
    if _MARKER not in properties:
        return properties
    table = java_properties(decode_properties(properties))
    if MessageConst.PROPERTY_MESSAGE_REPLY_TO_CLIENT not in table:
        return properties
    table[MessageConst.PROPERTY_CLUSTER] = cluster
    return encode_properties(table)


__all__ = ["with_request_cluster"]
