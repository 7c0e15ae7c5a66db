"""Ending transactions (Java's ``EndTransactionProcessor``): END_TRANSACTION,
which a producer sends oneway after its local transaction or when the
broker asks it back, and RESUME_CHECK_HALF_MESSAGE (Java's admin
processor), which puts a half message back to be checked from scratch.

A commit stores the half message again under its real topic and queue
(:func:`~pyrocket.broker.transaction.committed_message`) and then the op
message; a rollback writes the op message only; "unknown" changes nothing
and is logged, as Java does. Answers, where the request asked for one, are
Java's codes and remarks.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Final

from pyrocket.broker.processors.ports import TransactionBroker
from pyrocket.broker.store import BrokerRole, PutMessageStatus
from pyrocket.broker.topic_config import RMQ_SYS_TRANS_HALF_TOPIC
from pyrocket.broker.transaction import (
    TransactionalMessageService,
    committed_message,
    renewed_half,
)
from pyrocket.errors import ProtocolError
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RESPONSE_FLAG, RemotingCommand
from pyrocket.protocol.headers import (
    EndTransactionRequestHeader,
    ResumeCheckHalfMessageRequestHeader,
)
from pyrocket.protocol.message import (
    MessageConst,
    MessageExt,
    MessageSysFlag,
    decode_offset_message_id,
    java_properties,
)
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.broker.transaction")

_COMMIT: Final = MessageSysFlag.TRANSACTION_COMMIT_TYPE
_ROLLBACK: Final = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE
_NOT: Final = MessageSysFlag.TRANSACTION_NOT_TYPE

#: ``sendFinalMessage``'s answers to store statuses other than the stored ones.
_FINAL_FAILURES: Final = {
    PutMessageStatus.CREATE_MAPEDFILE_FAILED: (
        ResponseCode.SYSTEM_ERROR,
        "Create mapped file failed.",
    ),
    PutMessageStatus.MESSAGE_ILLEGAL: (
        ResponseCode.MESSAGE_ILLEGAL,
        "The message is illegal, maybe msg body or properties length not matched. "
        "msg body length limit 128k, msg properties length limit 32k.",
    ),
    PutMessageStatus.SERVICE_NOT_AVAILABLE: (
        ResponseCode.SERVICE_NOT_AVAILABLE,
        "Service not available now.",
    ),
    PutMessageStatus.OS_PAGECACHE_BUSY: (
        ResponseCode.SYSTEM_ERROR,
        "OS page cache busy, please try another machine",
    ),
    PutMessageStatus.UNKNOWN_ERROR: (ResponseCode.SYSTEM_ERROR, "UNKNOWN_ERROR"),
}
_FINAL_FAILURES[PutMessageStatus.PROPERTIES_SIZE_EXCEEDED] = _FINAL_FAILURES[
    PutMessageStatus.MESSAGE_ILLEGAL
]
_STORED: Final = {
    PutMessageStatus.PUT_OK,
    PutMessageStatus.FLUSH_DISK_TIMEOUT,
    PutMessageStatus.FLUSH_SLAVE_TIMEOUT,
    PutMessageStatus.SLAVE_NOT_AVAILABLE,
}


def _response(code: int, remark: str | None = None) -> RemotingCommand:
    return RemotingCommand(code=code, flag=RESPONSE_FLAG, remark=remark)


class EndTransactionProcessor:
    """Answers END_TRANSACTION and RESUME_CHECK_HALF_MESSAGE."""

    def __init__(self, broker: TransactionBroker, service: TransactionalMessageService) -> None:
        self.broker = broker
        self.service = service

    def install(self) -> None:
        self.broker.register_processor(RequestCode.END_TRANSACTION, self.end_transaction)
        self.broker.register_processor(
            RequestCode.RESUME_CHECK_HALF_MESSAGE, self.resume_check_half_message
        )

    async def end_transaction(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand | None:
        header = request.decode_header(EndTransactionRequestHeader)
        if self.broker.settings.store.broker_role is BrokerRole.SLAVE:
            log.warning("Message store is slave mode, so end transaction is forbidden. ")
            return _response(ResponseCode.SLAVE_NOT_AVAILABLE)
        state = header.commit_or_rollback
        peer = conn.remote_address
        if state not in (_COMMIT, _ROLLBACK):
            if state == _NOT:
                log.warning(
                    "producer[%s] end transaction %s: pending status (check: %s) remark %s",
                    peer,
                    header.msg_id,
                    bool(header.from_transaction_check),
                    request.remark,
                )
            return None
        if header.from_transaction_check or state == _ROLLBACK:
            log.warning(
                "producer[%s] %s the message %s (check: %s) remark %s",
                peer,
                "commit" if state == _COMMIT else "rollback",
                header.msg_id,
                bool(header.from_transaction_check),
                request.remark,
            )
        half = self.service.look(header.commit_log_offset)
        refused = _check_prepare_message(half, header)
        if refused is not None or half is None:
            return refused
        if state == _ROLLBACK:
            await self.service.delete_prepare_message(half)
            return _response(ResponseCode.SUCCESS)
        try:
            final = committed_message(half, header.commit_log_offset)
        except ValueError:
            return _response(ResponseCode.SYSTEM_ERROR, "the half message has no real queue id")
        result = await self.broker.put_message(final)
        if result.status in _STORED:
            await self.service.delete_prepare_message(half)
            return _response(ResponseCode.SUCCESS)
        code, remark = _FINAL_FAILURES.get(
            result.status, (ResponseCode.SYSTEM_ERROR, "UNKNOWN_ERROR DEFAULT")
        )
        return _response(code, remark)

    async def resume_check_half_message(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        """Store the half message of ``msgId`` (an offset message id) again
        with its check count at 0."""
        header = request.decode_header(ResumeCheckHalfMessageRequestHeader)
        failed = "Put message back to RMQ_SYS_TRANS_HALF_TOPIC failed."
        try:
            _, offset = decode_offset_message_id(header.msg_id or "")
        except ProtocolError:
            offset = -1
        message = self.service.look(offset) if offset >= 0 else None
        if message is None:
            remark = "Exception was thrown when putting message back to RMQ_SYS_TRANS_HALF_TOPIC."
            return _response(ResponseCode.SYSTEM_ERROR, remark)
        properties = java_properties(message.properties)
        properties[MessageConst.PROPERTY_TRANSACTION_CHECK_TIMES] = "0"
        inner = renewed_half(message, properties, whole=True)
        back = dataclasses.replace(inner, topic=RMQ_SYS_TRANS_HALF_TOPIC, queue_id=0)
        result = await self.broker.put_message(back)
        if result.status is PutMessageStatus.PUT_OK:
            log.info(
                "Put message back to RMQ_SYS_TRANS_HALF_TOPIC. real topic=%s",
                properties.get(MessageConst.PROPERTY_REAL_TOPIC),
            )
            return _response(ResponseCode.SUCCESS)
        log.error("%s", failed)
        return _response(ResponseCode.SYSTEM_ERROR, failed)


def _check_prepare_message(
    half: MessageExt | None, header: EndTransactionRequestHeader
) -> RemotingCommand | None:
    """``checkPrepareMessage``: the refusal, or None when the request names
    the half message found."""
    if half is None:
        return _response(ResponseCode.SYSTEM_ERROR, "Find prepared transaction message failed")
    group = half.properties.get(MessageConst.PROPERTY_PRODUCER_GROUP)
    if group != header.producer_group:
        return _response(ResponseCode.SYSTEM_ERROR, "The producer group wrong")
    if half.queue_offset != header.tran_state_table_offset:
        return _response(ResponseCode.SYSTEM_ERROR, "The transaction state table offset wrong")
    if half.commit_log_offset != header.commit_log_offset:
        return _response(ResponseCode.SYSTEM_ERROR, "The commit log offset wrong")
    return None


__all__ = ["EndTransactionProcessor"]
