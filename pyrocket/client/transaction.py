"""The transactional producer (Java's ``TransactionMQProducer`` and the
transaction half of ``DefaultMQProducerImpl``).

::

    from pyrocket.client import LocalTransactionState, TransactionProducer, new_message

    async def execute(message, arg):      # or a plain def
        ...                               # the local transaction
        return LocalTransactionState.COMMIT_MESSAGE

    def check(message):                   # the broker asks about an open one
        return LocalTransactionState.ROLLBACK_MESSAGE

    async with TransactionProducer("tx_group", ["127.0.0.1:9876"],
                                   execute_local=execute, check_local=check) as producer:
        result = await producer.send_in_transaction(new_message("TopicTest", b"x"), arg=None)
        result.local_transaction_state

As Java does: the message is sent prepared (``TRAN_MSG=true``, ``PGROUP``
the group, sysFlag prepared; a delay level is dropped), the local
transaction runs only once the broker stored it (SEND_OK; a flush or slave
timeout rolls back), and END_TRANSACTION goes oneway to that broker with
commit, rollback or "unknown" (:class:`LocalTransactionState`; an exception
in the callable is "unknown", its text in the remark). A broker that finds
the transaction still open sends CHECK_TRANSACTION_STATE over the
producer's connection; ``check_local`` answers it, again with a oneway
END_TRANSACTION (``fromTransactionCheck=true``). Checks wait in a queue of
``check_request_hold_max`` (Java's 2000); beyond that they are dropped and
logged, and the broker asks again later.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Self, TypeAlias

import trio

from pyrocket.client.instance import ClientError
from pyrocket.client.producer import Producer, SendResult, SendStatus
from pyrocket.client.validators import check_message
from pyrocket.errors import ProtocolError, PyrocketError
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    CheckTransactionStateRequestHeader,
    EndTransactionRequestHeader,
)
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message import (
    Message,
    MessageConst,
    MessageExt,
    MessageSysFlag,
    decode_message,
    decode_offset_message_id,
)
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.client.transaction")


class LocalTransactionState(enum.Enum):
    """What the local transaction came to (Java's names, ``UNKNOW`` included)."""

    COMMIT_MESSAGE = "COMMIT_MESSAGE"
    ROLLBACK_MESSAGE = "ROLLBACK_MESSAGE"
    UNKNOW = "UNKNOW"


_WIRE_STATE = {
    LocalTransactionState.COMMIT_MESSAGE: MessageSysFlag.TRANSACTION_COMMIT_TYPE,
    LocalTransactionState.ROLLBACK_MESSAGE: MessageSysFlag.TRANSACTION_ROLLBACK_TYPE,
    LocalTransactionState.UNKNOW: MessageSysFlag.TRANSACTION_NOT_TYPE,
}

_State: TypeAlias = LocalTransactionState | None
#: Runs the local transaction: ``(message, arg) -> state``, sync or async.
LocalExecutor: TypeAlias = Callable[[Message, Any], _State | Awaitable[_State]]
#: Answers a broker's check: ``(message) -> state``, sync or async.
LocalChecker: TypeAlias = Callable[[MessageExt], _State | Awaitable[_State]]

#: TransactionMQProducer.checkRequestHoldMax.
CHECK_REQUEST_HOLD_MAX = 2000
#: The timeout of the oneway END_TRANSACTION answering a check (Java: 3 s).
CHECK_END_TIMEOUT = 3.0


@dataclasses.dataclass(frozen=True, slots=True)
class TransactionSendResult(SendResult):
    """A prepared message's send result and what the local transaction said."""

    local_transaction_state: LocalTransactionState = LocalTransactionState.UNKNOW


async def _call(function: Callable[..., Any], *args: object) -> _State:
    result = function(*args)
    if inspect.isawaitable(result):
        result = await result
    if result is not None and not isinstance(result, LocalTransactionState):
        raise TypeError(f"a local transaction returned {result!r}, not a LocalTransactionState")
    return result


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class TransactionProducer(Producer):
    """A producer that sends messages in transactions; see the module."""

    def __init__(
        self,
        group: str,
        namesrv_addresses: Sequence[str],
        *,
        execute_local: LocalExecutor,
        check_local: LocalChecker,
        check_request_hold_max: int = CHECK_REQUEST_HOLD_MAX,
        **options: Any,
    ) -> None:
        super().__init__(group, namesrv_addresses, **options)
        self.execute_local = execute_local
        self.check_local = check_local
        self._checks_in, self._checks_out = trio.open_memory_channel[
            tuple[Connection, CheckTransactionStateRequestHeader, MessageExt]
        ](max(0, check_request_hold_max))
        self.instance.remoting.register_processor(
            RequestCode.CHECK_TRANSACTION_STATE, self._on_check
        )

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.instance.nursery.start_soon(self._answer_checks)
        return self

    # -- sending ----------------------------------------------------------------

    async def send_in_transaction(
        self, message: Message, arg: object = None
    ) -> TransactionSendResult:
        """Send ``message`` prepared, run the local transaction, end it.
        Raises as :meth:`Producer.send` does when the prepared message cannot
        be sent (nothing runs then); a failing END_TRANSACTION is logged only,
        as the broker checks back."""
        properties: JavaHashMap[str, str] = JavaHashMap()
        properties.update(message.properties)
        properties.pop(MessageConst.PROPERTY_DELAY_TIME_LEVEL, None)
        message = dataclasses.replace(message, properties=properties)
        check_message(message, self.max_message_size)
        properties[MessageConst.PROPERTY_TRANSACTION_PREPARED] = "true"
        properties[MessageConst.PROPERTY_PRODUCER_GROUP] = self.group
        try:
            sent = await self.send(message)
        except PyrocketError as exc:
            raise ClientError(f"send message Exception: {exc}") from exc
        state = LocalTransactionState.UNKNOW
        error: BaseException | None = None
        if sent.status is SendStatus.SEND_OK:
            properties[MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX] = sent.msg_id
            if sent.transaction_id is not None:
                properties["__transactionId__"] = sent.transaction_id
            try:
                state = await _call(self.execute_local, message, arg) or state
            except Exception as exc:
                log.info("executeLocalTransactionBranch exception: %s", _describe(exc))
                error = exc
        else:
            state = LocalTransactionState.ROLLBACK_MESSAGE
        try:
            await self._end_transaction(sent, state, error)
        except (PyrocketError, ValueError) as exc:
            log.warning(
                "local transaction execute %s, but end broker transaction failed: %s",
                state.name,
                exc,
            )
        fields = {f.name: getattr(sent, f.name) for f in dataclasses.fields(SendResult)}
        return TransactionSendResult(**fields, local_transaction_state=state)

    async def _end_transaction(
        self, sent: SendResult, state: LocalTransactionState, error: BaseException | None
    ) -> None:
        _, commit_log_offset = decode_offset_message_id(sent.offset_msg_id or sent.msg_id)
        broker = sent.queue.broker_name or ""
        addr = self.instance.master_addr(broker)
        if addr is None:
            raise ClientError(f"The broker[{broker}] not exist")
        header = EndTransactionRequestHeader(
            producer_group=self.group,
            tran_state_table_offset=sent.queue_offset,
            commit_log_offset=commit_log_offset,
            commit_or_rollback=_WIRE_STATE[state],
            from_transaction_check=False,
            msg_id=sent.msg_id,
            transaction_id=sent.transaction_id,
        )
        remark = f"executeLocalTransactionBranch exception: {_describe(error)}" if error else None
        request = RemotingCommand.request(
            RequestCode.END_TRANSACTION, header, remark=remark, oneway=True
        )
        await self.instance.remoting.invoke_oneway(addr, request, self.send_timeout)

    # -- checks -------------------------------------------------------------------

    def _on_check(self, conn: Connection, request: RemotingCommand) -> None:
        """CHECK_TRANSACTION_STATE from a broker: queue it for the listener."""
        try:
            header = request.decode_header(CheckTransactionStateRequestHeader)
            message = decode_message(request.body or b"")[0]
        except (ProtocolError, ValueError) as exc:
            log.warning("checkTransactionState, decode message failed: %s", exc)
            return None
        group = message.properties.get(MessageConst.PROPERTY_PRODUCER_GROUP)
        if group != self.group:
            log.warning("checkTransactionState, pick producer by group[%s] failed", group)
            return None
        try:
            self._checks_in.send_nowait((conn, header, message))
        except trio.WouldBlock:
            log.warning(
                "checkTransactionState: %d checks waiting already, dropped the one of %s",
                self._checks_in.statistics().current_buffer_used,
                header.msg_id,
            )
        return None

    async def _answer_checks(self) -> None:
        async for conn, header, message in self._checks_out:
            await self._answer_check(conn, header, message)

    async def _answer_check(
        self, conn: Connection, header: CheckTransactionStateRequestHeader, message: MessageExt
    ) -> None:
        state = LocalTransactionState.UNKNOW
        remark: str | None = None
        try:
            state = await _call(self.check_local, message) or state
        except Exception as exc:
            log.error("checkLocalTransactionState exception: %s", _describe(exc))
            remark = f"checkLocalTransactionState Exception: {_describe(exc)}"
        unique = message.properties.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
        end = EndTransactionRequestHeader(
            producer_group=self.group,
            tran_state_table_offset=header.tran_state_table_offset,
            commit_log_offset=header.commit_log_offset,
            commit_or_rollback=_WIRE_STATE[state],
            from_transaction_check=True,
            msg_id=unique if unique is not None else message.msg_id,
            transaction_id=header.transaction_id,
        )
        request = RemotingCommand.request(
            RequestCode.END_TRANSACTION, end, remark=remark, oneway=True
        )
        try:
            await conn.invoke_oneway(request, CHECK_END_TIMEOUT)
        except PyrocketError as exc:
            log.error("endTransactionOneway exception: %s", exc)


__all__ = [
    "CHECK_REQUEST_HOLD_MAX",
    "LocalChecker",
    "LocalExecutor",
    "LocalTransactionState",
    "TransactionProducer",
    "TransactionSendResult",
]
