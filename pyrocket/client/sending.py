"""What a send is made of and comes to: the message as prepared for the wire
(:class:`Prepared`), the broker's answer as a :class:`SendResult`, and the
rules the producer's sends share (which answer codes are retried, the queue
a selector picks, Java's VIP-channel address).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from pyrocket.client.fault import TopicPublishInfo
from pyrocket.client.instance import ClientError
from pyrocket.client.messages import QueueSelector
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message import Message

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


STATUS_BY_CODE = {
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
    properties: JavaHashMap[str, str]
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
