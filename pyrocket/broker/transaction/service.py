"""Transactional messages on the broker (Java's ``TransactionalMessageBridge``,
``TransactionalMessageServiceImpl``, ``TransactionalMessageCheckService`` and
``DefaultTransactionalMessageCheckListener``).

A prepared ("half") message is stored in ``RMQ_SYS_TRANS_HALF_TOPIC`` queue 0
with its real topic and queue in the ``REAL_TOPIC`` / ``REAL_QID``
properties, so no consumer sees it. Ending a transaction (commit or
rollback) writes an op message to ``RMQ_SYS_TRANS_OP_HALF_TOPIC`` (same queue
id, tag ``d``, body the half message's queue offset in decimal); a commit
first stores the message again under its real topic. The check service
walks the half queue against the op queue every ``transactionCheckInterval``
from the progress offsets kept in the consumer offset table under
``CID_RMQ_SYS_TRANS``; a half message still open after
``transactionTimeOut`` (or its ``CHECK_IMMUNITY_TIME_IN_SECONDS``) is stored
again with ``TRANSACTION_CHECK_TIMES`` raised and a CHECK_TRANSACTION_STATE
goes to a live producer of its group; after ``transactionCheckMax`` checks
it moves to ``TRANS_CHECK_MAX_TIME_TOPIC``. Everything lives in the commit
log and the offset table, so a restarted broker carries on where it was.

The walk reads through the broker's ``get_message`` (which reads data not
in memory in a worker thread) a message or 32 op messages at a time, so the
event loop gets control between every read.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import random
from collections.abc import Callable, MutableMapping
from typing import Final, Protocol

import trio

from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.consumer_offset import ConsumerOffsetManager
from pyrocket.broker.producer_manager import ProducerManager
from pyrocket.broker.store import (
    BrokerMessage,
    GetMessageResult,
    GetMessageStatus,
    MessageStore,
    PutMessageResult,
    PutMessageStatus,
)
from pyrocket.broker.topic_config import (
    RMQ_SYS_TRANS_HALF_TOPIC,
    RMQ_SYS_TRANS_OP_HALF_TOPIC,
    TopicConfigManager,
)
from pyrocket.broker.transaction.messages import renewed_half, to_half_message
from pyrocket.errors import ProtocolError, RemotingError
from pyrocket.protocol.bodies.topic import PERM_READ, PERM_WRITE
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import CheckTransactionStateRequestHeader
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message import (
    HostPort,
    MessageConst,
    MessageExt,
    decode_message,
    encode_message,
    encode_properties,
    java_properties,
)

log = logging.getLogger("pyrocket.broker.transaction")

#: MixAll.CID_SYS_RMQ_TRANS: the group whose offsets record the check's progress.
TRANSACTION_GROUP: Final = "CID_RMQ_SYS_TRANS"
#: TransactionalMessageUtil.REMOVETAG: the tag of an op message.
REMOVE_TAG: Final = "d"
#: How long one queue's walk may take (ms), as Java's MAX_PROCESS_TIME_LIMIT.
MAX_PROCESS_TIME_MS: Final = 60_000
#: Op messages read at a time.
OP_BATCH: Final = 32
#: TCMT_QUEUE_NUMS: queues of TRANS_CHECK_MAX_TIME_TOPIC.
CHECK_MAX_TIME_QUEUE_NUMS: Final = 1
#: Broker2Client's timeout for the oneway CHECK_TRANSACTION_STATE.
CHECK_SEND_TIMEOUT: Final = 0.01


class TransactionHost(Protocol):
    """What the transaction service reads of the broker."""

    @property
    def settings(self) -> BrokerSettings: ...

    @property
    def now_ms(self) -> Callable[[], int]: ...

    @property
    def store(self) -> MessageStore: ...

    @property
    def topic_config_manager(self) -> TopicConfigManager: ...

    async def put_message(
        self, message: BrokerMessage, *, appended: Callable[[], None] | None = None
    ) -> PutMessageResult: ...

    async def get_message(
        self, group: str, topic: str, queue_id: int, offset: int, max_nums: int
    ) -> GetMessageResult | None: ...


class PullStatus(enum.Enum):
    """Java's client ``PullStatus``, as the bridge maps the store's status."""

    FOUND = "FOUND"
    NO_NEW_MSG = "NO_NEW_MSG"
    NO_MATCHED_MSG = "NO_MATCHED_MSG"
    OFFSET_ILLEGAL = "OFFSET_ILLEGAL"


@dataclasses.dataclass(slots=True)
class _Pulled:
    status: PullStatus
    next_begin_offset: int
    messages: list[MessageExt] | None


_NO_NEW: Final = {GetMessageStatus.NO_MESSAGE_IN_QUEUE, GetMessageStatus.OFFSET_OVERFLOW_ONE}


def _to_long(text: str | None) -> int:
    """Java's ``getLong``: -1 for what does not parse."""
    try:
        return int(text) if text is not None else -1
    except ValueError:
        log.error("GetLong error: %r", text)
        return -1


class TransactionalMessageService:
    """The half and op queues of one broker, the check and the ops that end
    a transaction."""

    def __init__(
        self,
        broker: TransactionHost,
        offsets: ConsumerOffsetManager,
        producers: ProducerManager,
    ) -> None:
        self.broker = broker
        self.offsets = offsets
        self.producers = producers
        self._random = random.Random()
        #: Completed check rounds (tests wait on it).
        self.rounds = 0

    # -- the bridge ----------------------------------------------------------

    @property
    def _store_host(self) -> HostPort:
        settings = self.broker.settings
        try:
            return HostPort.of(settings.broker.broker_ip1, settings.server.listen_port)
        except ValueError:
            return HostPort(bytes(4), settings.server.listen_port)

    async def prepare(self, message: BrokerMessage) -> PutMessageResult:
        """Store a prepared message in the half queue."""
        return await self.broker.put_message(to_half_message(message))

    def look(self, commit_log_offset: int) -> MessageExt | None:
        """The half message at a commit-log offset (one record)."""
        return self.broker.store.look_message_by_offset(commit_log_offset)

    def _fetch_offset(self, topic: str, queue_id: int) -> int:
        offset = self.offsets.query_offset(TRANSACTION_GROUP, topic, queue_id)
        if offset == -1:
            offset = self.broker.store.get_min_offset_in_queue(topic, queue_id)
        return offset

    def _update_offset(self, topic: str, queue_id: int, offset: int) -> None:
        host = self._store_host
        self.offsets.commit_offset(
            f"{host.host}:{host.port}", TRANSACTION_GROUP, topic, queue_id, offset
        )

    async def _pull(self, topic: str, queue_id: int, offset: int, nums: int) -> _Pulled | None:
        got = await self.broker.get_message(TRANSACTION_GROUP, topic, queue_id, offset, nums)
        if got is None:
            log.error("Get message from store return null. topic=%s offset=%d", topic, offset)
            return None
        if got.status is GetMessageStatus.FOUND:
            found: list[MessageExt] = []
            for record in got.messages:
                try:
                    found.append(decode_message(record)[0])
                except ProtocolError as exc:
                    log.error("undecodable record in %s: %s", topic, exc)
            return _Pulled(PullStatus.FOUND, got.next_begin_offset, found)
        if got.status is GetMessageStatus.NO_MATCHED_MESSAGE:
            status = PullStatus.NO_MATCHED_MSG
        elif got.status in _NO_NEW:
            status = PullStatus.NO_NEW_MSG
        else:
            status = PullStatus.OFFSET_ILLEGAL
        return _Pulled(status, got.next_begin_offset, None)

    async def _put_ok(self, message: BrokerMessage) -> PutMessageResult | None:
        result = await self.broker.put_message(message)
        if result.status is PutMessageStatus.PUT_OK:
            return result
        log.error(
            "Put message failed, topic: %s, queueId: %d: %s",
            message.topic,
            message.queue_id,
            result.status.name,
        )
        return None

    async def delete_prepare_message(self, half: MessageExt) -> bool:
        """Write the op message that ends ``half`` (commit or rollback)."""
        tags_and_wait: JavaHashMap[str, str] = JavaHashMap()
        tags_and_wait[MessageConst.PROPERTY_TAGS] = REMOVE_TAG
        tags_and_wait[MessageConst.PROPERTY_WAIT_STORE_MSG_OK] = "true"
        # Java takes the string first, then sets WAIT=false (and a UNIQ_KEY
        # nothing reads) in the map only.
        text = encode_properties(tags_and_wait)
        mapping = dict(tags_and_wait)
        mapping[MessageConst.PROPERTY_WAIT_STORE_MSG_OK] = "false"
        host = self._store_host
        op = BrokerMessage(
            RMQ_SYS_TRANS_OP_HALF_TOPIC,
            half.queue_id,
            str(half.queue_offset).encode("utf-8"),
            mapping,
            text,
            born_timestamp=self.broker.now_ms(),
            born_host=host,
            store_host=host,
        )
        if await self._put_ok(op) is None:
            log.error("Transaction op message write failed. messageId is %s", half.msg_id)
            return False
        return True

    # -- the check -------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Check every ``transactionCheckInterval`` until cancelled."""
        task_status.started()
        while True:
            config = self.broker.settings.broker
            await trio.sleep(max(config.transaction_check_interval, 1) / 1000)
            config = self.broker.settings.broker
            begin = self.broker.now_ms()
            try:
                await self.check(config.transaction_time_out, config.transaction_check_max)
            except Exception:
                log.exception("Check error")
            self.rounds += 1
            log.debug("transaction check took %d ms", self.broker.now_ms() - begin)

    async def check(self, timeout_ms: int, check_max: int) -> None:
        """One walk of every half queue (``TransactionalMessageServiceImpl.check``)."""
        topic = RMQ_SYS_TRANS_HALF_TOPIC
        topics = self.broker.topic_config_manager
        config = topics.select_topic_config(topic)
        if config is None:
            config = await topics.create_topic_in_send_message_back_method(
                topic, 1, PERM_WRITE | PERM_READ, 0
            )
        for queue_id in range(config.read_queue_nums if config is not None else 0):
            await self._check_queue(queue_id, timeout_ms, check_max)

    async def _check_queue(self, queue_id: int, timeout_ms: int, check_max: int) -> None:
        now = self.broker.now_ms
        start = now()
        half_topic, op_topic = RMQ_SYS_TRANS_HALF_TOPIC, RMQ_SYS_TRANS_OP_HALF_TOPIC
        half_offset = self._fetch_offset(half_topic, queue_id)
        op_offset = self._fetch_offset(op_topic, queue_id)
        if half_offset < 0 or op_offset < 0:
            log.error(
                "queue %d: illegal offsets %d / %d, skipped", queue_id, half_offset, op_offset
            )
            return
        done_ops: list[int] = []
        removed: dict[int, int] = {}
        pulled = await self._fill_removed(removed, queue_id, op_offset, half_offset, done_ops)
        if pulled is None:
            return
        misses = 1
        new_offset = i = half_offset
        while now() - start <= MAX_PROCESS_TIME_MS:
            if i in removed:
                done_ops.append(removed.pop(i))
                new_offset = i = i + 1
                continue
            got = await self._pull(half_topic, queue_id, i, 1)
            message = got.messages[0] if got is not None and got.messages else None
            if message is None:
                misses += 1
                if misses - 1 > 1 or got is None or got.status is PullStatus.NO_NEW_MSG:
                    break
                new_offset = i = got.next_begin_offset
                continue
            properties = java_properties(message.properties)
            if self._need_discard(properties, check_max) or self._need_skip(message):
                await self._discard(message, properties)
                new_offset = i = i + 1
                continue
            if message.store_timestamp >= start:
                break
            age = now() - message.born_timestamp
            immunity = timeout_ms
            immunity_text = properties.get(MessageConst.PROPERTY_CHECK_IMMUNITY_TIME_IN_SECONDS)
            if immunity_text is not None:
                immunity = _to_long(immunity_text)
                immunity = timeout_ms if immunity == -1 else immunity * 1000
                if age < immunity and await self._check_prepare_offset(
                    removed, done_ops, message, properties
                ):
                    new_offset = i = i + 1
                    continue
            elif 0 <= age < immunity:
                break
            ops = pulled.messages
            need_check = (
                (ops is None and age > immunity)
                or (ops is not None and bool(ops) and ops[-1].born_timestamp - start > timeout_ms)
                or age <= -1
            )
            if need_check:
                if not await self._put_back_and_check(message, properties):
                    continue
            else:
                if ops is None:
                    # No op message left to read: nothing changes before
                    # the next round (Java would spin here until its limit).
                    break
                more = await self._fill_removed(
                    removed, queue_id, pulled.next_begin_offset, half_offset, done_ops
                )
                if more is None:
                    break
                pulled = more
                continue
            new_offset = i = i + 1
        if new_offset != half_offset:
            self._update_offset(half_topic, queue_id, new_offset)
        new_op = op_offset
        for done in sorted(done_ops):
            if done != new_op:
                break
            new_op += 1
        if new_op != op_offset:
            self._update_offset(op_topic, queue_id, new_op)

    async def _fill_removed(
        self,
        removed: dict[int, int],
        queue_id: int,
        op_offset: int,
        min_half_offset: int,
        done_ops: list[int],
    ) -> _Pulled | None:
        """``fillOpRemoveMap``: read op messages from ``op_offset``; each ends
        a half offset (``removed``: half -> op offset), or is done already
        when it ends one below the walk's start."""
        pulled = await self._pull(RMQ_SYS_TRANS_OP_HALF_TOPIC, queue_id, op_offset, OP_BATCH)
        if pulled is None:
            return None
        if pulled.status in (PullStatus.OFFSET_ILLEGAL, PullStatus.NO_MATCHED_MSG):
            self._update_offset(RMQ_SYS_TRANS_OP_HALF_TOPIC, queue_id, pulled.next_begin_offset)
            return pulled
        for op in pulled.messages or ():
            half_offset = _to_long(op.body.decode("utf-8", "replace"))
            if op.tags == REMOVE_TAG:
                if half_offset < min_half_offset:
                    done_ops.append(op.queue_offset)
                else:
                    removed[half_offset] = op.queue_offset
            else:
                log.error("Found a illegal tag in op message at %d", op.queue_offset)
        return pulled

    @staticmethod
    def _need_discard(properties: MutableMapping[str, str], check_max: int) -> bool:
        text = properties.get(MessageConst.PROPERTY_TRANSACTION_CHECK_TIMES)
        times = 1
        if text is not None:
            try:
                times = int(text)
            except ValueError:
                times = -1
            if times >= check_max:
                return True
            times += 1
        properties[MessageConst.PROPERTY_TRANSACTION_CHECK_TIMES] = str(times)
        return False

    def _need_skip(self, message: MessageExt) -> bool:
        reserved_ms = self.broker.settings.store.file_reserved_time * 3600 * 1000
        if self.broker.now_ms() - message.born_timestamp > reserved_ms:
            log.info("Half message exceed file reserved time, so skip it: %s", message.msg_id)
            return True
        return False

    async def _check_prepare_offset(
        self,
        removed: dict[int, int],
        done_ops: list[int],
        message: MessageExt,
        properties: MutableMapping[str, str],
    ) -> bool:
        """``checkPrepareQueueOffset``: True to step over a message still
        immune from checks (ended meanwhile, or stored again for later)."""
        text = properties.get(MessageConst.PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET)
        if text is not None:
            prepared = _to_long(text)
            if prepared == -1:
                return False
            if prepared in removed:
                done_ops.append(removed.pop(prepared))
                return True
        else:
            properties[MessageConst.PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET] = str(
                message.queue_offset
            )
        return await self._put_ok(renewed_half(message, properties)) is not None

    async def _put_back_and_check(
        self, message: MessageExt, properties: MutableMapping[str, str]
    ) -> bool:
        """``putBackHalfMsgQueue`` then ``resolveHalfMsg``: store the message
        again (the check is about the new copy) and ask its producer."""
        result = await self._put_ok(renewed_half(message, properties))
        appended = result.append_result if result is not None else None
        if appended is None:
            return False
        properties[MessageConst.PROPERTY_WAIT_STORE_MSG_OK] = "false"
        renewed = dataclasses.replace(
            message,
            properties=properties,
            queue_offset=appended.logics_offset,
            commit_log_offset=appended.wrote_offset,
        )
        await self.send_check_message(renewed)
        return True

    async def send_check_message(self, message: MessageExt) -> None:
        """CHECK_TRANSACTION_STATE to a live producer of the message's group,
        oneway, with the message under its real topic as body."""
        properties = message.properties
        unique = properties.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
        header = CheckTransactionStateRequestHeader(
            tran_state_table_offset=message.queue_offset,
            commit_log_offset=message.commit_log_offset,
            msg_id=unique,
            transaction_id=unique,
            offset_msg_id=message.msg_id,
        )
        group = properties.get(MessageConst.PROPERTY_PRODUCER_GROUP) or ""
        try:
            real = dataclasses.replace(
                message,
                topic=properties.get(MessageConst.PROPERTY_REAL_TOPIC) or "",
                queue_id=int(properties.get(MessageConst.PROPERTY_REAL_QUEUE_ID) or ""),
                store_size=0,
            )
            body = encode_message(real)
        except ValueError as exc:
            log.error("half message %s cannot be checked: %s", message.msg_id, exc)
            return
        conn = self.producers.get_available_connection(group)
        if conn is None:
            log.warning("Check transaction failed, channel is null. groupId=%s", group)
            return
        request = RemotingCommand.request(RequestCode.CHECK_TRANSACTION_STATE, header, body=body)
        try:
            await conn.invoke_oneway(request, CHECK_SEND_TIMEOUT)
        except RemotingError as exc:
            log.error(
                "Check transaction failed because invoke producer exception. group=%s, "
                "msgId=%s: %s",
                group,
                message.msg_id,
                exc,
            )

    async def _discard(self, message: MessageExt, properties: MutableMapping[str, str]) -> None:
        """``resolveDiscardMsg``: checked too often (or too old): log it and
        move it to TRANS_CHECK_MAX_TIME_TOPIC."""
        log.error(
            "half message %s (real topic %s) has been checked too many times, so discard it "
            "by moving it to system topic TRANS_CHECK_MAX_TIME_TOPIC",
            message.msg_id,
            properties.get(MessageConst.PROPERTY_REAL_TOPIC),
        )
        config = await self.broker.topic_config_manager.create_topic_of_tran_check_max_time(
            CHECK_MAX_TIME_QUEUE_NUMS, PERM_READ | PERM_WRITE
        )
        queue_id = abs(self._random.getrandbits(31) % 99_999_999) % CHECK_MAX_TIME_QUEUE_NUMS
        moved = dataclasses.replace(
            renewed_half(message, properties, whole=True),
            topic=config.topic_name or "",
            queue_id=queue_id,
        )
        if await self._put_ok(moved) is None:
            log.error("Put checked-too-many-time half message failed: %s", message.msg_id)


__all__ = [
    "REMOVE_TAG",
    "TRANSACTION_GROUP",
    "TransactionHost",
    "TransactionalMessageService",
]
