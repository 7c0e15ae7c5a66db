"""What a push consumer answers to GET_CONSUMER_RUNNING_INFO: its settings,
subscriptions, the state of each assigned queue, its consume statistics
(:mod:`pyrocket.client.consume_stats`, one ConsumeStatus per subscribed
topic), and the task tree a pyrocket client sends where Java sends its
threads' stack traces.

:class:`~pyrocket.client.consumer.PushConsumer` registers the handler and
passes its current state in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import trio

from pyrocket.client.consume_stats import ConsumerStats
from pyrocket.client.pulling import QueueState
from pyrocket.protocol.bodies.admin import (
    PROP_CLIENT_VERSION,
    PROP_CONSUME_ORDERLY,
    PROP_CONSUME_TYPE,
    PROP_CONSUMER_START_TIMESTAMP,
    PROP_NAMESERVER_ADDR,
    PROP_THREADPOOL_CORE_SIZE,
    ConsumerRunningInfo,
    ConsumeStatus,
    ProcessQueueInfo,
)
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumeType,
    MessageModel,
    MessageQueue,
    SubscriptionData,
)
from pyrocket.protocol.bodies.properties import Properties

#: ``MQVersion.getVersionDesc`` of the version pyrocket's commands carry.
CLIENT_VERSION_DESC = "V4_7_0"


def task_dump() -> str:
    """The running trio tasks as an indented tree: what a pyrocket client
    answers where Java sends its threads' stack traces (``jstack``)."""
    lines: list[str] = []

    def walk(task: trio.lowlevel.Task, depth: int) -> None:
        lines.append(f"{'  ' * depth}{task.name}\n")
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child, depth + 1)

    root = trio.lowlevel.current_root_task()
    if root is not None:
        walk(root, 0)
    return "".join(lines)


def _human_time3(millis: int) -> str:
    """``UtilAll.timeMillisToHumanString3``: local ``yyyyMMddHHmmss``."""
    return time.strftime("%Y%m%d%H%M%S", time.localtime(millis / 1000))


def running_info(
    *,
    group: str,
    consume_from: ConsumeFromWhere,
    consume_timestamp: int,
    pull_batch_size: int,
    max_reconsume_times: int,
    start_timestamp: int,
    message_model: MessageModel = MessageModel.CLUSTERING,
    namesrv_addresses: Iterable[str],
    queues: Mapping[MessageQueue, QueueState],
    subscriptions: Iterable[SubscriptionData],
    orderly: bool = False,
    stats: ConsumerStats | None = None,
) -> ConsumerRunningInfo:
    """The running info of a push consumer with these settings and state."""
    entries = [
        ("consumerGroup", group),
        ("messageModel", message_model.name),
        ("consumeFromWhere", consume_from.name),
        ("consumeTimestamp", _human_time3(consume_timestamp)),
        ("pullBatchSize", str(pull_batch_size)),
        ("maxReconsumeTimes", str(max_reconsume_times)),
        ("unitMode", "false"),
        (PROP_CONSUME_ORDERLY, str(orderly).lower()),
        (PROP_THREADPOOL_CORE_SIZE, "1"),
        (PROP_CONSUMER_START_TIMESTAMP, str(start_timestamp)),
        (PROP_NAMESERVER_ADDR, "".join(f"{a};" for a in namesrv_addresses)),
        (PROP_CONSUME_TYPE, ConsumeType.CONSUME_PASSIVELY.name),
        (PROP_CLIENT_VERSION, CLIENT_VERSION_DESC),
    ]
    mq_table: dict[MessageQueue, ProcessQueueInfo] = {}
    for queue, state in queues.items():
        process = state.process
        mq_table[queue] = ProcessQueueInfo(
            commit_offset=state.consumed,
            cached_msg_min_offset=process.min_offset(),
            cached_msg_max_offset=process.max_offset if process.count else 0,
            cached_msg_count=process.count,
            cached_msg_size_in_mib=process.size // (1024 * 1024),
            droped=state.dropped,
            locked=process.locked,
            last_lock_timestamp=process.last_lock_timestamp,
            try_unlock_times=process.try_unlock_times,
            last_pull_timestamp=state.last_pull_timestamp,
            last_consume_timestamp=state.last_consume_timestamp,
        )
    subscription_set = tuple(subscriptions)
    return ConsumerRunningInfo(
        properties=Properties.java_ordered(entries).entries,
        subscription_set=subscription_set,
        mq_table=mq_table,
        status_table={
            s.topic or "": ConsumeStatus() if stats is None else stats.status(s.topic or "")
            for s in subscription_set
        },
    ).sorted()


__all__ = ["CLIENT_VERSION_DESC", "running_info", "task_dump"]
