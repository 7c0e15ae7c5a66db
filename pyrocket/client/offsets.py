"""The push consumer's offsets at the brokers: where a newly assigned queue
starts (the group's committed offset, else per consume-from-where) and the
commit of a queue's consumed offset with UPDATE_CONSUMER_OFFSET.

The consumed offsets themselves live on each queue's
:class:`~pyrocket.client.pulling.QueueState`;
:class:`~pyrocket.client.consumer.PushConsumer` decides when to commit.
"""

from __future__ import annotations

import logging

from pyrocket.client.instance import RETRY_GROUP_TOPIC_PREFIX, ClientInstance
from pyrocket.client.pulling import QueueState
from pyrocket.errors import PyrocketError, ResponseError
from pyrocket.protocol.bodies.client import ConsumeFromWhere, MessageQueue
from pyrocket.protocol.codes import ResponseCode

# The consumer's logger: offsets log as the consumer's, as before they had a
# module of their own.
log = logging.getLogger("pyrocket.client.consumer")


async def commit_offset(
    instance: ClientInstance,
    group: str,
    state: QueueState,
    *,
    oneway: bool,
    timeout: float,  # noqa: ASYNC109
) -> None:
    """Commit ``state``'s consumed offset (if any) to its queue's master,
    or to a slave when the master is gone (``findBrokerAddressInAdmin``);
    failures are logged, not raised."""
    if state.consumed < 0:
        return
    queue = state.queue
    addr = instance.admin_addr(queue.broker_name or "")
    if addr is None:
        await instance.update_route(queue.topic or "")
        addr = instance.admin_addr(queue.broker_name or "")
    if addr is None:
        log.warning("no broker for %s; offset %d not committed", queue, state.consumed)
        return
    try:
        await instance.brokers.update_consumer_offset(
            addr,
            group,
            queue.topic or "",
            queue.queue_id,
            state.consumed,
            oneway=oneway,
            timeout=timeout,
        )
    except PyrocketError as exc:
        log.warning("committing offset %d of %s failed: %s", state.consumed, queue, exc)


async def start_offset(
    instance: ClientInstance,
    group: str,
    queue: MessageQueue,
    *,
    consume_from: ConsumeFromWhere,
    consume_timestamp: int,
    timeout: float,  # noqa: ASYNC109
) -> tuple[int, bool] | None:
    """``computePullFromWhere``: the offset to start at and whether it is
    the group's committed one (which then seeds the consumed offset, as
    Java's offset store does); None when it cannot be known now.

    The committed offset is asked of the master, else of a slave (Java's
    offset store); the offsets by time and the queue's end only of the
    master, as Java's admin calls do."""
    topic = queue.topic or ""
    broker = queue.broker_name or ""
    admin = instance.admin_addr(broker)
    if admin is None:
        return None
    try:
        committed = await instance.brokers.query_consumer_offset(
            admin, group, topic, queue.queue_id, timeout
        )
        return committed, True
    except PyrocketError as exc:
        if not isinstance(exc, ResponseError) or exc.code != ResponseCode.QUERY_NOT_FOUND:
            log.warning("cannot find where to start %s: %s", queue, exc)
            return None
    return await initial_offset(
        instance,
        group,
        queue,
        consume_from=consume_from,
        consume_timestamp=consume_timestamp,
        timeout=timeout,
    )


async def initial_offset(
    instance: ClientInstance,
    group: str,
    queue: MessageQueue,
    *,
    consume_from: ConsumeFromWhere,
    consume_timestamp: int,
    timeout: float,  # noqa: ASYNC109
) -> tuple[int, bool] | None:
    """Where a queue without a stored offset starts, per ``consume_from``
    (the part of ``computePullFromWhere`` after the offset store found
    none), as :func:`start_offset` answers it (never committed); None
    (logged) when it cannot be known now. ``group`` is unused: the
    signature is :func:`start_offset`'s."""
    try:
        return await _initial(instance, queue, consume_from, consume_timestamp, timeout)
    except PyrocketError as exc:
        log.warning("cannot find where to start %s: %s", queue, exc)
        return None


async def _initial(
    instance: ClientInstance,
    queue: MessageQueue,
    where: ConsumeFromWhere,
    consume_timestamp: int,
    timeout: float,  # noqa: ASYNC109
) -> tuple[int, bool] | None:
    topic = queue.topic or ""
    broker = queue.broker_name or ""
    brokers = instance.brokers
    is_retry = topic.startswith(RETRY_GROUP_TOPIC_PREFIX)
    if where == ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET:
        return 0, False
    addr = instance.master_addr(broker)
    if addr is None:
        log.warning("no master for %s: cannot find where to start it", queue)
        return None
    if where == ConsumeFromWhere.CONSUME_FROM_TIMESTAMP and not is_retry:
        found = await brokers.search_offset(addr, topic, queue.queue_id, consume_timestamp, timeout)
        return found, False
    if is_retry and where != ConsumeFromWhere.CONSUME_FROM_TIMESTAMP:
        return 0, False
    end = await brokers.get_max_offset(addr, topic, queue.queue_id, timeout)
    return end, False


__all__ = ["commit_offset", "initial_offset", "start_offset"]
