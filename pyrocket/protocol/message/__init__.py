"""Messages as RocketMQ stores and ships them (``MessageDecoder`` and friends).

This package owns, sans-I/O, one module each:

* :mod:`.constants`: magic codes, size limits, ``MessageSysFlag`` bits and
  ``MessageConst`` property names;
* :mod:`.body`: Java's ``UtilAll.crc32``, body compression as the Java client
  does it, the tags hash code;
* :mod:`.properties`: the properties string, ``name \\x01 value \\x02``
  repeated, both ways;
* :mod:`.host`: the host addresses messages carry;
* :mod:`.record`: the stored-message layout (a commit-log record, an element
  of a PULL_MESSAGE answer body), with its diagram;
* :mod:`.batch`: the SEND_BATCH_MESSAGE body layout;
* :mod:`.ids`: the offset message id and the client's unique id.

Every public name is re-exported here, so ``from pyrocket.protocol.message
import X`` is the way to use them. Every decoder returns a value or raises
:class:`ProtocolError`. Encoders raise ``ValueError`` for values Java's
layout cannot hold (a topic over 127 bytes, properties over 32767 bytes):
those are the caller's bugs, not bad input.
"""

from pyrocket.protocol.message.batch import (
    BatchItem,
    Message,
    decode_batch,
    encode_batch,
    split_batch,
)
from pyrocket.protocol.message.body import (
    compress_body,
    decompress_body,
    java_crc32,
    maybe_compress_body,
    tags_hash_code,
)
from pyrocket.protocol.message.constants import (
    BLANK_MAGIC_CODE,
    COMPRESS_BODY_THRESHOLD,
    COMPRESS_LEVEL,
    DEFAULT_MAX_BODY_SIZE,
    MAX_PROPERTIES_BYTES,
    MAX_TOPIC_BYTES,
    MESSAGE_MAGIC_CODE,
    NAME_VALUE_SEPARATOR,
    PROPERTY_SEPARATOR,
    MessageConst,
    MessageSysFlag,
)
from pyrocket.protocol.message.host import (
    UNSPECIFIED_HOST,
    HostPort,
)
from pyrocket.protocol.message.ids import (
    UniqueId,
    UniqueIdGenerator,
    create_offset_message_id,
    decode_offset_message_id,
    month_bounds_ms,
    parse_unique_id,
)
from pyrocket.protocol.message.properties import (
    decode_properties,
    encode_properties,
    java_properties,
)
from pyrocket.protocol.message.record import (
    PHYSICAL_OFFSET_POSITION,
    QUEUE_OFFSET_POSITION,
    SYSFLAG_POSITION,
    MessageExt,
    decode_message,
    decode_messages,
    encode_message,
    encode_stored_record,
    host_flags,
    split_stored_records,
    store_timestamp_position,
    stored_message_size,
    stored_properties,
)

__all__ = [
    "BLANK_MAGIC_CODE",
    "COMPRESS_BODY_THRESHOLD",
    "COMPRESS_LEVEL",
    "DEFAULT_MAX_BODY_SIZE",
    "MAX_PROPERTIES_BYTES",
    "MAX_TOPIC_BYTES",
    "MESSAGE_MAGIC_CODE",
    "NAME_VALUE_SEPARATOR",
    "PHYSICAL_OFFSET_POSITION",
    "PROPERTY_SEPARATOR",
    "QUEUE_OFFSET_POSITION",
    "SYSFLAG_POSITION",
    "UNSPECIFIED_HOST",
    "BatchItem",
    "HostPort",
    "Message",
    "MessageConst",
    "MessageExt",
    "MessageSysFlag",
    "UniqueId",
    "UniqueIdGenerator",
    "compress_body",
    "create_offset_message_id",
    "decode_batch",
    "decode_message",
    "decode_messages",
    "decode_offset_message_id",
    "decode_properties",
    "decompress_body",
    "encode_batch",
    "encode_message",
    "encode_properties",
    "encode_stored_record",
    "host_flags",
    "java_crc32",
    "java_properties",
    "maybe_compress_body",
    "month_bounds_ms",
    "parse_unique_id",
    "split_batch",
    "split_stored_records",
    "store_timestamp_position",
    "stored_message_size",
    "stored_properties",
    "tags_hash_code",
]
