"""PULL_MESSAGE's ``suggestWhichBrokerId`` over a real socket: with
``slaveReadEnable`` a consumer more than ``accessMessageInMemoryMaxRatio`` of
memory behind is sent to the group's ``whichBrokerWhenConsumeSlowly``, any
other pull to the group's ``brokerId``; without it, always to the master."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.protocol.bodies.admin import SubscriptionGroupConfig
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.headers import PullMessageResponseHeader
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, pull_request, running_broker, send_request

TOPIC = "SuggestTopic"
GROUP = "suggest_group"


@pytest.mark.parametrize(
    ("slave_read", "ratio", "behind", "caught_up"),
    [
        # Ratio 0: every message found counts as far behind.
        (True, 0, 3, 2),
        # Ratio 100: all of memory, nothing here is far behind.
        (True, 100, 2, 2),
        (False, 0, 0, 0),
    ],
)
async def test_pull_suggests_the_broker_the_group_names(
    tmp_path: Path, slave_read: bool, ratio: int, behind: int, caught_up: int
) -> None:
    settings = broker_settings(
        tmp_path,
        slaveReadEnable=str(slave_read).lower(),
        accessMessageInMemoryMaxRatio=ratio,
    )
    with trio.fail_after(20):
        async with running_broker(settings) as broker, RemotingClient() as client:
            await broker.topic_config_manager.update_topic_config(
                TopicConfig(topic_name=TOPIC, read_queue_nums=1, write_queue_nums=1)
            )
            await broker.subscription_group_manager.update_subscription_group_config(
                SubscriptionGroupConfig(
                    group_name=GROUP, which_broker_when_consume_slowly=3, broker_id=2
                )
            )
            for n in range(5):
                answer = await client.invoke_sync(
                    broker.broker_addr, send_request(TOPIC, 0, b"x" * 1000 + bytes([n])), 5
                )
                assert answer.code == ResponseCode.SUCCESS, answer.remark
            first = await client.invoke_sync(
                broker.broker_addr, pull_request(TOPIC, 0, 0, group=GROUP, max_msgs=1), 5
            )
            end = await client.invoke_sync(
                broker.broker_addr, pull_request(TOPIC, 0, 5, group=GROUP), 5
            )
    assert first.code == ResponseCode.SUCCESS
    assert first.decode_header(PullMessageResponseHeader).suggest_which_broker_id == behind
    assert end.code == ResponseCode.PULL_NOT_FOUND
    assert end.decode_header(PullMessageResponseHeader).suggest_which_broker_id == caught_up
