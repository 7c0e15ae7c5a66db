"""Message constants: magic codes, separators and size limits of the stored
layout, the sysFlag bits (``MessageSysFlag``) and the reserved property names
(``MessageConst``).
"""

from __future__ import annotations

from typing import Final

#: Magic code of a stored message record.
MESSAGE_MAGIC_CODE: Final = -626843481
#: Magic code of the blank record that fills the end of a commit-log file.
BLANK_MAGIC_CODE: Final = -875286124

NAME_VALUE_SEPARATOR: Final = "\x01"
PROPERTY_SEPARATOR: Final = "\x02"

#: Largest topic, in UTF-8 bytes, the one-byte length field can hold (Java's
#: ``Byte.MAX_VALUE``: a longer topic would read back as a negative length).
MAX_TOPIC_BYTES: Final = 127
#: Largest properties string, in UTF-8 bytes (Java's ``Short.MAX_VALUE``).
MAX_PROPERTIES_BYTES: Final = 32767

#: The Java client compresses bodies of at least this many bytes.
COMPRESS_BODY_THRESHOLD: Final = 4096
#: ... with this zlib level.
COMPRESS_LEVEL: Final = 5
#: Default bound on an inflated body; a deflate stream is a cheap bomb.
DEFAULT_MAX_BODY_SIZE: Final = 64 * 1024 * 1024


class MessageSysFlag:
    """Bits of a message's ``sysFlag`` (Java's ``MessageSysFlag``)."""

    COMPRESSED_FLAG: Final = 0x1
    MULTI_TAGS_FLAG: Final = 0x1 << 1
    TRANSACTION_NOT_TYPE: Final = 0
    TRANSACTION_PREPARED_TYPE: Final = 0x1 << 2
    TRANSACTION_COMMIT_TYPE: Final = 0x2 << 2
    TRANSACTION_ROLLBACK_TYPE: Final = 0x3 << 2
    BORNHOST_V6_FLAG: Final = 0x1 << 4
    STOREHOSTADDRESS_V6_FLAG: Final = 0x1 << 5
    #: Both bits that say a host is IPv6: the store sets them from the hosts.
    HOST_V6_FLAGS: Final = BORNHOST_V6_FLAG | STOREHOSTADDRESS_V6_FLAG

    @staticmethod
    def transaction_value(flag: int) -> int:
        """The transaction type bits of ``flag``."""
        return flag & MessageSysFlag.TRANSACTION_ROLLBACK_TYPE

    @staticmethod
    def reset_transaction_value(flag: int, transaction_type: int) -> int:
        """``flag`` with its transaction type bits replaced."""
        return (flag & ~MessageSysFlag.TRANSACTION_ROLLBACK_TYPE) | transaction_type

    @staticmethod
    def clear_compressed_flag(flag: int) -> int:
        return flag & ~MessageSysFlag.COMPRESSED_FLAG


class MessageConst:
    """Property names the Java code reserves (``MessageConst``)."""

    PROPERTY_KEYS: Final = "KEYS"
    PROPERTY_TAGS: Final = "TAGS"
    PROPERTY_WAIT_STORE_MSG_OK: Final = "WAIT"
    PROPERTY_DELAY_TIME_LEVEL: Final = "DELAY"
    PROPERTY_RETRY_TOPIC: Final = "RETRY_TOPIC"
    PROPERTY_REAL_TOPIC: Final = "REAL_TOPIC"
    PROPERTY_REAL_QUEUE_ID: Final = "REAL_QID"
    PROPERTY_TRANSACTION_PREPARED: Final = "TRAN_MSG"
    PROPERTY_PRODUCER_GROUP: Final = "PGROUP"
    PROPERTY_MIN_OFFSET: Final = "MIN_OFFSET"
    PROPERTY_MAX_OFFSET: Final = "MAX_OFFSET"
    PROPERTY_BUYER_ID: Final = "BUYER_ID"
    PROPERTY_ORIGIN_MESSAGE_ID: Final = "ORIGIN_MESSAGE_ID"
    PROPERTY_TRANSFER_FLAG: Final = "TRANSFER_FLAG"
    PROPERTY_CORRECTION_FLAG: Final = "CORRECTION_FLAG"
    PROPERTY_MQ2_FLAG: Final = "MQ2_FLAG"
    PROPERTY_RECONSUME_TIME: Final = "RECONSUME_TIME"
    PROPERTY_MSG_REGION: Final = "MSG_REGION"
    PROPERTY_TRACE_SWITCH: Final = "TRACE_ON"
    PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX: Final = "UNIQ_KEY"
    PROPERTY_MAX_RECONSUME_TIMES: Final = "MAX_RECONSUME_TIMES"
    PROPERTY_CONSUME_START_TIMESTAMP: Final = "CONSUME_START_TIME"
    PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET: Final = "TRAN_PREPARED_QUEUE_OFFSET"
    PROPERTY_TRANSACTION_CHECK_TIMES: Final = "TRANSACTION_CHECK_TIMES"
    PROPERTY_CHECK_IMMUNITY_TIME_IN_SECONDS: Final = "CHECK_IMMUNITY_TIME_IN_SECONDS"
    PROPERTY_INSTANCE_ID: Final = "INSTANCE_ID"
    PROPERTY_CORRELATION_ID: Final = "CORRELATION_ID"
    PROPERTY_MESSAGE_REPLY_TO_CLIENT: Final = "REPLY_TO_CLIENT"
    PROPERTY_MESSAGE_TTL: Final = "TTL"
    PROPERTY_REPLY_MESSAGE_ARRIVE_TIME: Final = "ARRIVE_TIME"
    PROPERTY_PUSH_REPLY_TIME: Final = "PUSH_REPLY_TIME"
    PROPERTY_CLUSTER: Final = "CLUSTER"
    PROPERTY_MESSAGE_TYPE: Final = "MSG_TYPE"

    KEY_SEPARATOR: Final = " "

    #: Names a user property may not take (Java's ``STRING_HASH_SET``).
    RESERVED_NAMES: Final = frozenset(
        {
            "TRACE_ON",
            "MSG_REGION",
            "KEYS",
            "TAGS",
            "WAIT",
            "DELAY",
            "RETRY_TOPIC",
            "REAL_TOPIC",
            "REAL_QID",
            "TRAN_MSG",
            "PGROUP",
            "MIN_OFFSET",
            "MAX_OFFSET",
            "BUYER_ID",
            "ORIGIN_MESSAGE_ID",
            "TRANSFER_FLAG",
            "CORRECTION_FLAG",
            "MQ2_FLAG",
            "RECONSUME_TIME",
            "UNIQ_KEY",
            "MAX_RECONSUME_TIMES",
            "CONSUME_START_TIME",
            "INSTANCE_ID",
            "CORRELATION_ID",
            "REPLY_TO_CLIENT",
            "TTL",
            "ARRIVE_TIME",
            "PUSH_REPLY_TIME",
            "CLUSTER",
            "MSG_TYPE",
        }
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
    "PROPERTY_SEPARATOR",
    "MessageConst",
    "MessageSysFlag",
]
