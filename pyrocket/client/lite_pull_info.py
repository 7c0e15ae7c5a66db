"""What a lite pull consumer answers to GET_CONSUMER_RUNNING_INFO: its
settings under Java's property names and its subscriptions (Java's lite
consumer reports no queue table or consume statistics).

:class:`~pyrocket.client.lite_pull.LitePullConsumer` registers the handler.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from pyrocket.client.lite_pull_queue import LitePullSettings
from pyrocket.client.running_info import CLIENT_VERSION_DESC, task_dump
from pyrocket.protocol.bodies.admin import (
    PROP_CLIENT_VERSION,
    PROP_CONSUME_TYPE,
    PROP_CONSUMER_START_TIMESTAMP,
    PROP_NAMESERVER_ADDR,
    ConsumerRunningInfo,
)
from pyrocket.protocol.bodies.client import ConsumeType, SubscriptionData
from pyrocket.protocol.bodies.properties import Properties
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import GetConsumerRunningInfoRequestHeader
from pyrocket.remoting import Connection


def java_properties(settings: LitePullSettings) -> list[tuple[str, str]]:
    """``settings`` as Java's ``MixAll.object2Properties`` of a
    ``DefaultLitePullConsumer`` names them (those pyrocket has)."""

    def ms(seconds: float) -> str:
        return str(int(seconds * 1000))

    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(settings.consume_timestamp / 1000))
    return [
        ("consumerGroup", settings.group),
        ("messageModel", settings.message_model.name),
        ("consumeFromWhere", settings.consume_from.name),
        ("consumeTimestamp", stamp),
        ("autoCommit", str(settings.auto_commit).lower()),
        ("autoCommitIntervalMillis", ms(settings.auto_commit_interval)),
        ("pullBatchSize", str(settings.pull_batch_size)),
        ("pullThresholdForAll", str(settings.pull_threshold_for_all)),
        ("pullThresholdForQueue", str(settings.pull_threshold_for_queue)),
        ("pullThresholdSizeForQueue", str(settings.pull_threshold_size_for_queue >> 20)),
        ("pollTimeoutMillis", ms(settings.poll_timeout)),
        ("consumerPullTimeoutMillis", ms(settings.consumer_pull_timeout)),
        ("brokerSuspendMaxTimeMillis", ms(settings.broker_suspend_max)),
        ("consumerTimeoutMillisWhenSuspend", ms(settings.timeout_when_suspend)),
        ("topicMetadataCheckIntervalMillis", ms(settings.topic_metadata_check_interval)),
        ("unitMode", "false"),
    ]


def running_info_processor(
    settings: LitePullSettings,
    start_timestamp: int,
    namesrv_addresses: Callable[[], Iterable[str]],
    subscriptions: Callable[[], Iterable[SubscriptionData]],
) -> Callable[[Connection, RemotingCommand], RemotingCommand]:
    """The GET_CONSUMER_RUNNING_INFO handler of a lite pull consumer: its
    properties and subscriptions, as Java's (which reports no queue table
    or consume statistics for it), and with ``jstackEnable`` the task tree."""

    def answer(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(GetConsumerRunningInfoRequestHeader)
        if header.consumer_group != settings.group:
            return RemotingCommand.response(
                ResponseCode.SYSTEM_ERROR,
                f"The Consumer Group <{header.consumer_group}> not exist in this consumer",
            )
        entries = [
            *java_properties(settings),
            (PROP_CONSUMER_START_TIMESTAMP, str(start_timestamp)),
            (PROP_NAMESERVER_ADDR, "".join(f"{a};" for a in namesrv_addresses())),
            (PROP_CONSUME_TYPE, ConsumeType.CONSUME_ACTIVELY.name),
            (PROP_CLIENT_VERSION, CLIENT_VERSION_DESC),
        ]
        info = ConsumerRunningInfo(
            properties=Properties.java_ordered(entries).entries,
            subscription_set=tuple(subscriptions()),
            jstack=task_dump() if header.jstack_enable else None,
        )
        return RemotingCommand.response(ResponseCode.SUCCESS, body=info.sorted().encode())

    return answer


__all__ = ["java_properties", "running_info_processor"]
