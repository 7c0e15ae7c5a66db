"""What a send is made of and comes to: the message as prepared for the wire
(:class:`Prepared`), the broker's answer as a :class:`SendResult`, and the
rules the producer's sends share (which answer codes are retried, the queue
a selector picks, Java's VIP-channel address), and the steps of one send:
:func:`prepare` (UNIQ_KEY, compression), :func:`send_header` (the
SEND_MESSAGE_V2 header), :func:`send_request` (the whole request, its ext
fields laid out from a template) and :func:`send_result` (reading the
answer).
"""

from __future__ import annotations

import enum
import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import trio

from pyrocket.client.broker_api import is_reply, send_code
from pyrocket.client.fault import TopicPublishInfo
from pyrocket.client.instance import (
    AUTO_CREATE_TOPIC_KEY_TOPIC,
    RETRY_GROUP_TOPIC_PREFIX,
    ClientError,
)
from pyrocket.client.messages import QueueSelector, sending_properties
from pyrocket.errors import ResponseError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    SendMessageRequestHeader,
    SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
)
from pyrocket.protocol.message import (
    Message,
    MessageConst,
    MessageSysFlag,
    compress_body,
    encode_properties,
)

#: Answer codes after which a sync send tries again (another broker first).
RETRY_RESPONSE_CODES = frozenset(
    {
        ResponseCode.TOPIC_NOT_EXIST,
        ResponseCode.SERVICE_NOT_AVAILABLE,
        ResponseCode.SYSTEM_ERROR,
        ResponseCode.NO_PERMISSION,
        ResponseCode.NO_BUYER_ID,
        ResponseCode.NOT_IN_CURRENT_UNIT,
    }
)


class SendStatus(enum.Enum):
    """How a broker stored a message (Java's ``SendStatus``)."""

    SEND_OK = "SEND_OK"
    FLUSH_DISK_TIMEOUT = "FLUSH_DISK_TIMEOUT"
    FLUSH_SLAVE_TIMEOUT = "FLUSH_SLAVE_TIMEOUT"
    SLAVE_NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"


STATUS_BY_CODE: dict[int, SendStatus] = {
    ResponseCode.SUCCESS: SendStatus.SEND_OK,
    ResponseCode.FLUSH_DISK_TIMEOUT: SendStatus.FLUSH_DISK_TIMEOUT,
    ResponseCode.FLUSH_SLAVE_TIMEOUT: SendStatus.FLUSH_SLAVE_TIMEOUT,
    ResponseCode.SLAVE_NOT_AVAILABLE: SendStatus.SLAVE_NOT_AVAILABLE,
}


@dataclass(frozen=True, slots=True)
class SendResult:
    """A stored message: ``msg_id`` is the client's UNIQ_KEY, ``offset_msg_id``
    the broker's (store host + commit-log offset)."""

    status: SendStatus
    msg_id: str
    offset_msg_id: str
    queue: MessageQueue
    queue_offset: int
    transaction_id: str | None = None
    region_id: str | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message ready to go: its final properties (with UNIQ_KEY), the body
    as sent and the sysFlag. Retries reuse it, so the id stays the same."""

    message: Message
    #: In Java's HashMap iteration order (the order they are encoded in).
    properties: Mapping[str, str]
    body: bytes
    sys_flag: int
    #: The UNIQ_KEYs of a batch's messages; empty for a single message.
    batch_ids: tuple[str, ...] = ()


def selected_queue(
    info: TopicPublishInfo, selector: QueueSelector, message: Message, arg: object
) -> MessageQueue:
    queue = selector(list(info.queues), message, arg)
    if queue not in info.queues:
        raise ClientError("select message queue return null or a queue not of the topic")
    return queue


def vip_channel_addr(addr: str) -> str:
    """``MixAll.brokerVIPChannel``: the broker's fast port, its port - 2."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        return addr
    return f"{host}:{int(port) - 2}"


def ip_bytes(ip: str) -> bytes:
    """An IP address's bytes for a message id; 4 zero bytes when it does not parse."""
    try:
        return ipaddress.ip_address(ip).packed
    except ValueError:
        return bytes(4)


__all__ = [
    "RETRY_RESPONSE_CODES",
    "STATUS_BY_CODE",
    "Prepared",
    "SendResult",
    "SendStatus",
    "ip_bytes",
    "selected_queue",
    "vip_channel_addr",
]


#: Bodies this big are deflated in a worker thread.
COMPRESS_IN_THREAD_OVER = 256 * 1024


async def prepare(
    message: Message, next_id: Callable[[], str], compress_over: int, compress_level: int
) -> Prepared:
    """``message`` ready to send: its UNIQ_KEY added, its body deflated when
    it is ``compress_over`` bytes or more (Java's tryToCompressMessage; big
    ones in a thread), the sysFlag to go with it."""
    properties = sending_properties(message, next_id)
    body, compressed = message.body, False
    if len(body) >= compress_over:
        if len(body) >= COMPRESS_IN_THREAD_OVER:
            body = await trio.to_thread.run_sync(compress_body, body, compress_level)
        else:
            body = compress_body(body, compress_level)
        compressed = True
    sys_flag = MessageSysFlag.COMPRESSED_FLAG if compressed else 0
    if properties.get(MessageConst.PROPERTY_TRANSACTION_PREPARED) == "true":
        sys_flag |= MessageSysFlag.TRANSACTION_PREPARED_TYPE
    return Prepared(message, properties, body, sys_flag)


def send_header(
    group: str, queue: MessageQueue, prepared: Prepared, default_topic_queue_nums: int
) -> SendMessageRequestHeader:
    """The SEND_MESSAGE(_V2) header Java's producer fills for ``prepared``
    going to ``queue``; a retry topic's message carries its reconsume
    counts."""
    message = prepared.message
    reconsume_times: int | None = 0
    max_reconsume: int | None = None
    if message.topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
        text = prepared.properties.get(MessageConst.PROPERTY_RECONSUME_TIME)
        reconsume_times = int(text) if text is not None else None
        text = prepared.properties.get(MessageConst.PROPERTY_MAX_RECONSUME_TIMES)
        max_reconsume = int(text) if text is not None else None
    return SendMessageRequestHeader(
        producer_group=group,
        topic=message.topic,
        default_topic=AUTO_CREATE_TOPIC_KEY_TOPIC,
        default_topic_queue_nums=default_topic_queue_nums,
        queue_id=queue.queue_id,
        sys_flag=prepared.sys_flag,
        born_timestamp=time.time_ns() // 1_000_000,
        flag=message.flag,
        properties=encode_properties(prepared.properties),
        reconsume_times=reconsume_times,
        unit_mode=False,
        batch=bool(prepared.batch_ids),
        max_reconsume_times=max_reconsume,
    )


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _v2_order() -> tuple[str, ...]:
    # The keys SEND_MESSAGE_V2 carries for a message outside the retry
    # topics (every field but maxReconsumeTimes), in the order Java's
    # HashMap iterates them: taken from the header class itself.
    sample = SendMessageRequestHeaderV2(
        producer_group="g", topic="t", default_topic="d", default_topic_queue_nums=0,
        queue_id=0, sys_flag=0, born_timestamp=0, flag=0, properties="",
        reconsume_times=0, unit_mode=False, max_reconsume_times=None, batch=False,
    )  # fmt: skip
    return tuple(sample.to_ext_fields())


_V2_ORDER = _v2_order()


def send_request(
    group: str, queue: MessageQueue, prepared: Prepared, default_topic_queue_nums: int
) -> RemotingCommand:
    """The SEND_MESSAGE_V2 (SEND_BATCH_MESSAGE, SEND_REPLY_MESSAGE_V2)
    request for ``prepared`` going to ``queue``: the ext fields
    :func:`send_header` and the V2 header would give, filled into the fixed
    key order instead of through the header objects. A retry topic's send,
    and values that do not fit their Java type (which raise CommandError),
    take the header path."""
    message = prepared.message
    flag = message.flag
    if (
        message.topic.startswith(RETRY_GROUP_TOPIC_PREFIX)
        or type(flag) is not int
        or not _INT_MIN <= flag <= _INT_MAX
        or type(default_topic_queue_nums) is not int
        or not _INT_MIN <= default_topic_queue_nums <= _INT_MAX
        or type(queue.queue_id) is not int
        or not _INT_MIN <= queue.queue_id <= _INT_MAX
    ):
        header = send_header(group, queue, prepared, default_topic_queue_nums)
        v2 = SendMessageRequestHeaderV2.from_v1(header)
        return RemotingCommand.request(send_code(header), v2, body=prepared.body)
    properties = encode_properties(prepared.properties)
    batch = bool(prepared.batch_ids)
    if is_reply(properties):
        code = RequestCode.SEND_REPLY_MESSAGE_V2
    else:
        code = RequestCode.SEND_BATCH_MESSAGE if batch else RequestCode.SEND_MESSAGE_V2
    values = {
        "a": group,
        "b": message.topic,
        "c": AUTO_CREATE_TOPIC_KEY_TOPIC,
        "d": str(default_topic_queue_nums),
        "e": str(queue.queue_id),
        "f": str(prepared.sys_flag),
        "g": str(time.time_ns() // 1_000_000),
        "h": str(flag),
        "i": properties,
        "j": "0",
        "k": "false",
        "m": "true" if batch else "false",
    }
    return RemotingCommand(
        code=code,
        ext_fields={key: values[key] for key in _V2_ORDER},
        body=prepared.body or None,
    )


def send_result(response: RemotingCommand, queue: MessageQueue, prepared: Prepared) -> SendResult:
    """What a broker's answer to a send means; a code other than the four
    send statuses raises ResponseError."""
    status = STATUS_BY_CODE.get(response.code)
    if status is None:
        raise ResponseError(response.code, response.remark)
    ext = response.ext_fields or {}
    queue_id = _plain_number(ext.get("queueId"), 9)
    queue_offset = _plain_number(ext.get("queueOffset"), 18)
    offset_msg_id = ext.get("msgId")
    if queue_id is None or queue_offset is None or offset_msg_id is None:
        # Anything but plain digits: the header class parses (and refuses) it.
        answer = response.decode_header(SendMessageResponseHeader)
        queue_id, queue_offset, offset_msg_id = answer.queue_id, answer.queue_offset, answer.msg_id
    if prepared.batch_ids:
        msg_id = ",".join(prepared.batch_ids)
    else:
        msg_id = prepared.properties[MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX]
    return SendResult(
        status=status,
        msg_id=msg_id,
        offset_msg_id=offset_msg_id,
        queue=MessageQueue(queue.topic, queue.broker_name, queue_id),
        queue_offset=queue_offset,
        transaction_id=ext.get("transactionId"),
        region_id=ext.get(MessageConst.PROPERTY_MSG_REGION),
    )


def _plain_number(raw: str | None, digits: int) -> int | None:
    """``raw`` as an int when it is 1 to ``digits`` ASCII digits (a value
    that fits the Java type without a range check), else None."""
    if raw is None or not 0 < len(raw) <= digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)
