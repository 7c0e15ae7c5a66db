"""What mqadmin's consumerStatus concludes from a consumer group's running
information (Java's ``ConsumerRunningInfo.analyzeSubscription`` and
``analyzeProcessQueue``): whether the clients subscribe alike, and which
queues look stuck. Pure functions of the reports and the time."""

from __future__ import annotations

from collections.abc import Mapping

from pyrocket.protocol.bodies.admin import (
    PROP_CONSUME_ORDERLY,
    PROP_CONSUME_TYPE,
    PROP_CONSUMER_START_TIMESTAMP,
    ConsumerRunningInfo,
)
from pyrocket.protocol.bodies.client import ConsumeType, MessageQueue


def subscriptions_agree(table: Mapping[str, ConsumerRunningInfo], now_ms: int) -> bool:
    """``ConsumerRunningInfo.analyzeSubscription`` over ``table`` (client id
    -> report, at least one, in the order mqadmin sorts them): for push
    consumers started over two minutes ago, whether every client subscribes
    the same way (and to something)."""
    infos = list(table.values())
    first = infos[0].properties
    push = first.get(PROP_CONSUME_TYPE) == ConsumeType.CONSUME_PASSIVELY.name
    started = int(first.get(PROP_CONSUMER_START_TIMESTAMP, "0"))
    if not (push and now_ms - started > 2 * 60 * 1000):
        return True
    subscriptions = set(infos[0].subscription_set)
    if any(set(info.subscription_set) != subscriptions for info in infos):
        return False
    return bool(infos[-1].subscription_set)


def process_queue_warnings(client_id: str, info: ConsumerRunningInfo, now_ms: int) -> str:
    """``ConsumerRunningInfo.analyzeProcessQueue``: one line per queue of a
    push consumer that looks stuck (an orderly one that cannot lock or
    unlock, a concurrent one with cached messages unconsumed for a minute)."""
    if info.properties.get(PROP_CONSUME_TYPE) != ConsumeType.CONSUME_PASSIVELY.name:
        return ""
    orderly = info.properties.get(PROP_CONSUME_ORDERLY, "").lower() == "true"
    lines = []
    for queue, pq in info.mq_table.items():
        if orderly:
            if not pq.locked:
                lines.append(
                    f"{client_id} {message_queue_string(queue)} can't lock for a while, "
                    f"{now_ms - pq.last_lock_timestamp}ms\n"
                )
            elif pq.droped and pq.try_unlock_times > 0:
                lines.append(
                    f"{client_id} {message_queue_string(queue)} unlock "
                    f"{pq.try_unlock_times} times, still failed\n"
                )
        else:
            diff = now_ms - pq.last_consume_timestamp
            if diff > 60 * 1000 and pq.cached_msg_count > 0:
                lines.append(
                    f"{client_id} {message_queue_string(queue)} can't consume for a while, "
                    f"maybe blocked, {diff}ms\n"
                )
    return "".join(lines)


def message_queue_string(queue: MessageQueue) -> str:
    """``MessageQueue.toString()``."""
    return (
        f"MessageQueue [topic={queue.topic}, brokerName={queue.broker_name}, "
        f"queueId={queue.queue_id}]"
    )


__all__ = ["message_queue_string", "process_queue_warnings", "subscriptions_agree"]
