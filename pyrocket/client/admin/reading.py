"""Reading a topic's queues as mqadmin's message commands do, through the
``DefaultMQPullConsumer`` they start (group ``TOOLS_CONSUMER`` unless told
otherwise): the readable queues of a topic in Java's ``HashSet`` order, a
queue's min / max offsets, the offset of a time, and one synchronous
PULL_MESSAGE with the pulled messages as the Java client hands them out
(body inflated, ``MIN_OFFSET`` / ``MAX_OFFSET`` added, tags filtered again).

:class:`QueueReader` keeps the routes it fetched for the life of one
command. Failures raise ResponseError, ProtocolError, the remoting errors,
or :class:`~pyrocket.client.admin.AdminError` for a broker no route names.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Final

from pyrocket.client.admin.walks import AdminError
from pyrocket.errors import ResponseError
from pyrocket.protocol.bodies.client import MessageQueue, SubscriptionData
from pyrocket.protocol.bodies.route import MASTER_ID, TopicRouteData
from pyrocket.protocol.bodies.topic import PERM_READ
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.headers import PullMessageRequestHeader, PullMessageResponseHeader
from pyrocket.protocol.javahash import JavaHashSet
from pyrocket.protocol.message import MessageConst, MessageExt, decode_messages

if TYPE_CHECKING:
    from pyrocket.client.admin import Admin

#: MixAll.TOOLS_CONSUMER_GROUP: the group mqadmin's pull consumer uses.
TOOLS_CONSUMER_GROUP: Final = "TOOLS_CONSUMER"
#: DefaultMQPullConsumer's consumerPullTimeoutMillis (s).
PULL_TIMEOUT: Final = 10.0
#: Its brokerSuspendMaxTimeMillis (ms), sent though a tools pull never blocks.
BROKER_SUSPEND_MAX_MS: Final = 20_000
#: PullSysFlag with only the subscription bit: no commit, no suspend.
_SUBSCRIPTION_FLAG: Final = 0x4


class PullStatus(enum.Enum):
    """How a pull ended (Java's ``PullStatus``), by answer code."""

    FOUND = ResponseCode.SUCCESS
    NO_NEW_MSG = ResponseCode.PULL_NOT_FOUND
    NO_MATCHED_MSG = ResponseCode.PULL_RETRY_IMMEDIATELY
    OFFSET_ILLEGAL = ResponseCode.PULL_OFFSET_MOVED


@dataclasses.dataclass(frozen=True, slots=True)
class PullResult:
    """One pull's status, offsets and messages (empty unless FOUND)."""

    status: PullStatus
    next_begin_offset: int
    min_offset: int
    max_offset: int
    messages: tuple[MessageExt, ...] = ()


def subscribe_queues(topic: str, route: TopicRouteData) -> list[MessageQueue]:
    """``topicRouteData2TopicSubscribeInfo``: the readable queues of a
    route, in the order of the HashSet Java collects them into."""
    queues: JavaHashSet[MessageQueue] = JavaHashSet(hasher=MessageQueue.java_hash_code)
    for data in route.queue_datas or ():
        if data.perm & PERM_READ:
            for queue_id in range(data.read_queue_nums):
                queues.add(MessageQueue(topic, data.broker_name, queue_id))
    return list(queues)


def pulled_form(message: MessageExt, min_offset: int, max_offset: int) -> MessageExt:
    """A pulled message as Java's client hands it out: body inflated (its
    sysFlag left as stored), MIN_OFFSET and MAX_OFFSET set."""
    properties = dict(message.properties)
    properties[MessageConst.PROPERTY_MIN_OFFSET] = str(min_offset)
    properties[MessageConst.PROPERTY_MAX_OFFSET] = str(max_offset)
    return dataclasses.replace(message, body=message.uncompressed_body(), properties=properties)


class QueueReader:
    """The pull consumer of one mqadmin message command."""

    def __init__(self, admin: Admin, group: str = TOOLS_CONSUMER_GROUP) -> None:
        self.admin = admin
        self.group = group
        self._routes: dict[str, TopicRouteData] = {}

    async def route(self, topic: str) -> TopicRouteData:
        """The topic's route, fetched once."""
        route = self._routes.get(topic)
        if route is None:
            route = await self.admin.topic_route(topic)
            self._routes[topic] = route
        return route

    async def queues(self, topic: str) -> list[MessageQueue]:
        """``fetchSubscribeMessageQueues``: the topic's readable queues."""
        return subscribe_queues(topic, await self.route(topic))

    async def _addr(self, queue: MessageQueue) -> str:
        route = await self.route(queue.topic or "")
        for data in route.broker_datas or ():
            if data.broker_name == queue.broker_name:
                addrs = data.broker_addrs or {}
                addr = addrs.get(MASTER_ID) or next(iter(addrs.values()), None)
                if addr is not None:
                    return addr
        raise AdminError(f"The broker[{queue.broker_name}] not exist")

    async def min_offset(self, queue: MessageQueue) -> int:
        """GET_MIN_OFFSET of the queue's master."""
        return await self.admin.brokers.get_min_offset(
            await self._addr(queue), queue.topic or "", queue.queue_id
        )

    async def max_offset(self, queue: MessageQueue) -> int:
        """GET_MAX_OFFSET of the queue's master."""
        return await self.admin.brokers.get_max_offset(
            await self._addr(queue), queue.topic or "", queue.queue_id
        )

    async def search_offset(self, queue: MessageQueue, timestamp: int) -> int:
        """SEARCH_OFFSET_BY_TIMESTAMP of the queue's master."""
        return await self.admin.brokers.search_offset(
            await self._addr(queue), queue.topic or "", queue.queue_id, timestamp
        )

    async def pull(
        self, queue: MessageQueue, expression: str, offset: int, max_nums: int
    ) -> PullResult:
        """``DefaultMQPullConsumer.pull``: one PULL_MESSAGE that does not wait."""
        subscription = SubscriptionData.for_expression(queue.topic or "", expression, 0)
        header = PullMessageRequestHeader(
            consumer_group=self.group,
            topic=queue.topic or "",
            queue_id=queue.queue_id,
            queue_offset=offset,
            max_msg_nums=max_nums,
            sys_flag=_SUBSCRIPTION_FLAG,
            commit_offset=0,
            suspend_timeout_millis=BROKER_SUSPEND_MAX_MS,
            subscription=subscription.sub_string,
            sub_version=0,
            expression_type=subscription.expression_type,
        )
        response = await self.admin.brokers.pull_message(
            await self._addr(queue), header, PULL_TIMEOUT
        )
        try:
            status = PullStatus(response.code)
        except ValueError:
            raise ResponseError(response.code, response.remark) from None
        answer = response.decode_header(PullMessageResponseHeader)
        messages: tuple[MessageExt, ...] = ()
        if status is PullStatus.FOUND:
            tags = set(subscription.tags_set)
            messages = tuple(
                pulled_form(m, answer.min_offset, answer.max_offset)
                for m in decode_messages(response.body or b"")
                if not tags or (m.tags is not None and m.tags in tags)
            )
        return PullResult(
            status, answer.next_begin_offset, answer.min_offset, answer.max_offset, messages
        )


__all__ = [
    "BROKER_SUSPEND_MAX_MS",
    "PULL_TIMEOUT",
    "TOOLS_CONSUMER_GROUP",
    "PullResult",
    "PullStatus",
    "QueueReader",
    "pulled_form",
    "subscribe_queues",
]
