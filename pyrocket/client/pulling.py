"""The push consumer's reading of one queue: the state of an assigned queue,
one PULL_MESSAGE round of its long-polling loop, and the decoding of what a
pull brings back (records stepped over when undecodable, tags filtered on the
client side as Java does, bodies inflated, MIN_OFFSET/MAX_OFFSET added and
retry-topic messages put back under their own topic).

:class:`~pyrocket.client.consumer.PushConsumer` starts one loop per assigned
queue and hands what :func:`pull_once` delivers to its caller.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import trio

from pyrocket.client.consume_stats import ConsumerStats
from pyrocket.client.instance import RETRY_GROUP_TOPIC_PREFIX, ClientInstance
from pyrocket.client.process_queue import ProcessQueue
from pyrocket.errors import ProtocolError, PyrocketError, ResponseError
from pyrocket.protocol.bodies.client import MessageQueue, SubscriptionData
from pyrocket.protocol.bodies.route import MASTER_ID
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.headers import PullMessageRequestHeader, PullMessageResponseHeader
from pyrocket.protocol.message import (
    MessageConst,
    MessageExt,
    MessageSysFlag,
    decode_message,
    decompress_body,
)

# The consumer's logger: what a pull logs reads as the consumer's, as before
# the pull had a module of its own.
log = logging.getLogger("pyrocket.client.consumer")


class PullSysFlag(enum.IntFlag):
    """Bits of PULL_MESSAGE's sysFlag (Java's ``PullSysFlag``)."""

    COMMIT_OFFSET = 0x1
    SUSPEND = 0x2
    SUBSCRIPTION = 0x4
    CLASS_FILTER = 0x8


class PullStatus(enum.Enum):
    """How a pull ended (Java's ``PullStatus``), by answer code."""

    FOUND = ResponseCode.SUCCESS
    NO_NEW_MSG = ResponseCode.PULL_NOT_FOUND
    NO_MATCHED_MSG = ResponseCode.PULL_RETRY_IMMEDIATELY
    OFFSET_ILLEGAL = ResponseCode.PULL_OFFSET_MOVED


#: DefaultMQPushConsumerImpl.PULL_TIME_DELAY_MILLS_WHEN_EXCEPTION, in seconds.
PULL_DELAY_WHEN_EXCEPTION = 3.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def retry_topic(group: str) -> str:
    """``MixAll.getRetryTopic``."""
    return RETRY_GROUP_TOPIC_PREFIX + group


def filter_by_tags(
    messages: Sequence[MessageExt], subscription: SubscriptionData
) -> list[MessageExt]:
    """What ``PullAPIWrapper.processPullResult`` keeps: every message for a
    ``*`` subscription, else those whose TAGS is one of the subscribed tags."""
    if not subscription.tags_set or subscription.class_filter_mode:
        return list(messages)
    wanted = set(subscription.tags_set)
    return [m for m in messages if m.tags is not None and m.tags in wanted]


def decode_pulled(
    body: bytes, extra_properties: Mapping[str, str] | None = None
) -> tuple[list[MessageExt], int]:
    """The messages of a PULL_MESSAGE answer (``extra_properties`` added to
    each one's), and how many records in it could not be decoded.

    Java's client stops at the first record it cannot decode and moves on
    past the whole batch. Here a bad record whose size word still fits the
    body is stepped over, so the good ones after it are kept; a size word
    that does not fit ends the batch (counted as one record skipped).
    """
    messages: list[MessageExt] = []
    skipped = 0
    offset, end = 0, len(body)
    while offset < end:
        try:
            message, offset = decode_message(body, offset, extra_properties)
        except ProtocolError as exc:
            skipped += 1
            size = int.from_bytes(body[offset : offset + 4], "big", signed=True)
            log.debug("undecodable record at byte %d of a pull answer: %s", offset, exc)
            if size <= 4 or offset + size > end:
                break
            offset += size
            continue
        messages.append(message)
    return messages, skipped


def delivered_form(
    message: MessageExt, min_offset: int, max_offset: int, group_retry_topic: str = ""
) -> MessageExt:
    """A pulled message as handed out: body inflated (and sysFlag bit 0
    cleared, so the body is not inflated twice), MIN_OFFSET and MAX_OFFSET
    added to its properties, and a message of the group's retry topic put
    back under its original topic (``resetRetryAndNamespace``). Raises
    ProtocolError for a bad compressed body."""
    properties = dict(message.properties)
    properties[MessageConst.PROPERTY_MIN_OFFSET] = str(min_offset)
    properties[MessageConst.PROPERTY_MAX_OFFSET] = str(max_offset)
    topic = message.topic
    original = properties.get(MessageConst.PROPERTY_RETRY_TOPIC)
    if original is not None and topic == group_retry_topic:
        topic = original
    if message.is_compressed:
        return dataclasses.replace(
            message,
            topic=topic,
            body=decompress_body(message.body),
            sys_flag=MessageSysFlag.clear_compressed_flag(message.sys_flag),
            properties=properties,
        )
    return dataclasses.replace(message, topic=topic, properties=properties)


class QueueState:
    """One assigned queue: where to pull next, what has been consumed, the
    broker the last answer suggested, and its pull loop's cancel scope."""

    def __init__(self, queue: MessageQueue, subscription: SubscriptionData, offset: int) -> None:
        self.queue = queue
        self.subscription = subscription
        self.next_offset = offset
        #: The consumed offset (Java's offset store entry); -1 when none.
        self.consumed = -1
        self.dropped = False
        self.broker_id = MASTER_ID
        self.scope = trio.CancelScope()
        #: When the last pull was sent and the last message handed out (ms).
        self.last_pull_timestamp = now_ms()
        self.last_consume_timestamp = now_ms()
        #: The messages pulled and not yet acknowledged.
        self.process = ProcessQueue()
        #: Held while an orderly queue's handler runs (Java's ``lockConsume``).
        self.consume_lock = trio.Lock()

    def advance(self, offset: int) -> None:
        """``updateOffset(mq, offset, increaseOnly=true)``."""
        if offset > self.consumed:
            self.consumed = offset

    def acknowledge(self, messages: Sequence[MessageExt]) -> None:
        """``messages`` are consumed: the consumed offset moves to the
        smallest one still unacknowledged (nothing moves once dropped)."""
        offset = self.process.remove(messages)
        if offset >= 0 and not self.dropped:
            self.advance(offset)


#: What a pull hands on: the queue, its messages to deliver (already held
#: by its ProcessQueue until acknowledged), and the offset after the batch.
Batch = tuple[QueueState, list[MessageExt], int]


@dataclasses.dataclass(frozen=True, slots=True)
class PullSettings:
    """The consumer's settings one pull reads."""

    group: str
    pull_batch_size: int
    #: How long the broker may hold a pull (s).
    broker_suspend_max: float
    #: How long the client waits for a held pull's answer (s).
    timeout_when_suspend: float
    #: Whether a pull carries the consumed offset (CLUSTERING only: a
    #: broadcasting consumer keeps its offsets locally).
    commit_on_pull: bool = True


def deliverable(
    group: str, state: QueueState, body: bytes, answer: PullMessageResponseHeader
) -> list[MessageExt]:
    """The messages of a FOUND answer to hand out. A message that cannot
    be decoded (or inflated) is skipped with a warning, as Java's client
    does: the queue moves past it instead of pulling it for ever."""
    # The offsets go in as the records are decoded; only a compressed body
    # or a retry topic's message needs the rest of delivered_form.
    offsets = {
        MessageConst.PROPERTY_MIN_OFFSET: str(answer.min_offset),
        MessageConst.PROPERTY_MAX_OFFSET: str(answer.max_offset),
    }
    messages, skipped = decode_pulled(body, offsets)
    retry = retry_topic(group)
    found: list[MessageExt] = []
    for message in filter_by_tags(messages, state.subscription):
        if message.is_compressed or (
            message.topic == retry and MessageConst.PROPERTY_RETRY_TOPIC in message.properties
        ):
            try:
                message = delivered_form(message, answer.min_offset, answer.max_offset, retry)
            except ProtocolError as exc:
                log.debug(
                    "message %d of %s not inflated: %s", message.queue_offset, state.queue, exc
                )
                skipped += 1
                continue
        found.append(message)
    if skipped:
        log.warning(
            "%s: skipped %d undecodable message(s) of %s between offsets %d and %d",
            group,
            skipped,
            state.queue,
            state.next_offset,
            answer.next_begin_offset,
        )
    return found


async def pull_address(
    instance: ClientInstance, queue: MessageQueue, broker_id: int
) -> tuple[str, bool] | None:
    """Where ``queue``'s next pull goes (``PullAPIWrapper.pullKernelImpl``):
    the broker the last answer suggested (``suggestWhichBrokerId``), else
    any broker of the queue's name, the route fetched again when none is
    known; with whether it is a slave. None (logged) when there is none."""
    broker = queue.broker_name or ""
    found = instance.subscribe_addr(broker, broker_id)
    if found is None:
        await instance.update_route(queue.topic or "")
        found = instance.subscribe_addr(broker, broker_id)
        if found is None:
            log.warning("no broker address for %s", queue)
    return found


async def pull_request(
    instance: ClientInstance,
    addr: str,
    header: PullMessageRequestHeader,
    answer_within: float,
    group: str,
    state: QueueState,
) -> tuple[PullStatus, PullMessageResponseHeader, list[MessageExt]] | None:
    """Send ``header``'s PULL_MESSAGE to ``addr``, answered within
    ``answer_within`` seconds: the answer's status and
    header, and the messages of a FOUND answer that ``group`` is to see
    (:func:`deliverable`). None (logged) when the pull failed."""
    try:
        response = await instance.brokers.pull_message(addr, header, answer_within)
        try:
            status = PullStatus(response.code)
        except ValueError:
            raise ResponseError(response.code, response.remark) from None
        answer = response.decode_header(PullMessageResponseHeader)
        found: list[MessageExt] = []
        if status is PullStatus.FOUND:
            found = deliverable(group, state, response.body or b"", answer)
    except PyrocketError as exc:
        log.warning("pull from %s for %s failed: %s", addr, state.queue, exc)
        return None
    return status, answer, found


async def pull_once(
    instance: ClientInstance,
    settings: PullSettings,
    state: QueueState,
    deliver: Callable[[Batch], Awaitable[None]],
    commit: Callable[[QueueState], Awaitable[None]],
    stats: ConsumerStats | None = None,
) -> bool:
    """One PULL_MESSAGE for ``state``'s queue and what follows: found
    messages go to ``deliver``, an offset the broker calls illegal is
    replaced by the one it suggests and passed to ``commit``. False when the
    next pull should wait. A FOUND answer's round trip and messages go to
    ``stats``."""
    queue = state.queue
    found_addr = await pull_address(instance, queue, state.broker_id)
    if found_addr is None:
        return False
    addr, slave = found_addr
    # Only a master is asked to commit the consumed offset.
    commit_offset = state.consumed if state.consumed > 0 and not slave else 0
    if not settings.commit_on_pull:
        commit_offset = 0
    sys_flag = PullSysFlag.SUSPEND | (PullSysFlag.COMMIT_OFFSET if commit_offset else 0)
    subscription = state.subscription
    header = PullMessageRequestHeader(
        consumer_group=settings.group,
        topic=queue.topic or "",
        queue_id=queue.queue_id,
        queue_offset=state.next_offset,
        max_msg_nums=settings.pull_batch_size,
        sys_flag=int(sys_flag),
        commit_offset=commit_offset,
        suspend_timeout_millis=int(settings.broker_suspend_max * 1000),
        subscription=None,
        sub_version=subscription.sub_version,
        expression_type=subscription.expression_type,
    )
    state.last_pull_timestamp = now_ms()
    pulled = await pull_request(
        instance, addr, header, settings.timeout_when_suspend, settings.group, state
    )
    if pulled is None:
        return False
    status, answer, found = pulled
    if stats is not None and status is PullStatus.FOUND:
        stats.pulled(queue.topic or "", now_ms() - state.last_pull_timestamp, len(found))
    state.broker_id = answer.suggest_which_broker_id
    if state.dropped:
        return True
    if status is PullStatus.OFFSET_ILLEGAL:
        log.warning(
            "%s: offset %d of %s is illegal; moving to %d",
            settings.group,
            state.next_offset,
            queue,
            answer.next_begin_offset,
        )
        # What was pulled before belongs to the old offsets: forgotten, so
        # neither it nor the offset after it is ever committed (Java drops
        # the ProcessQueue).
        state.process.clear()
        state.next_offset = answer.next_begin_offset
        state.consumed = answer.next_begin_offset
        await commit(state)
        return True
    state.next_offset = answer.next_begin_offset
    if found:
        state.process.put(found, answer.next_begin_offset)
        await deliver((state, found, answer.next_begin_offset))
    elif state.process.count == 0:
        # correctTagsOffset: nothing for us up to here, so it is consumed.
        state.advance(answer.next_begin_offset)
    return True


__all__ = [
    "PULL_DELAY_WHEN_EXCEPTION",
    "Batch",
    "PullSettings",
    "PullStatus",
    "PullSysFlag",
    "QueueState",
    "decode_pulled",
    "deliverable",
    "delivered_form",
    "filter_by_tags",
    "now_ms",
    "pull_address",
    "pull_once",
    "pull_request",
    "retry_topic",
]
