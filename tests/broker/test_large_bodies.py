"""Large broker request bodies: a heartbeat with thousands of subscribed tags
and a long UPDATE_BROKER_CONFIG are decoded in a worker thread and act
exactly as small ones do."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio

from pyrocket.broker.message_filter import MAX_SUBSCRIPTION_TAGS
from pyrocket.broker.processors import admin, client_manage
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    HeartbeatData,
    MessageModel,
    SubscriptionData,
)
from pyrocket.protocol.bodies.properties import Properties
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, running_broker


def heartbeat(tags: int) -> HeartbeatData:
    # Long tag names: a body past the inline limit within the tag bound.
    subscription = SubscriptionData.for_expression(
        "ManyTags", " || ".join(f"tag{i:0>100}" for i in range(tags)), 1
    )
    consumer = ConsumerData(
        group_name="many_tags_group",
        consume_type=ConsumeType.CONSUME_PASSIVELY,
        message_model=MessageModel.CLUSTERING,
        consume_from_where=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
        subscription_data_set=(subscription,),
    )
    return HeartbeatData(client_id="127.0.0.1@many", consumer_data_set=(consumer,))


@pytest.mark.parametrize(("tags", "in_thread"), [(MAX_SUBSCRIPTION_TAGS, True), (3, False)])
async def test_heartbeat_decoding_moves_off_the_loop_when_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tags: int, in_thread: bool
) -> None:
    threads: list[str] = []
    real = client_manage._decode_heartbeat

    def recording(body: bytes) -> HeartbeatData:
        threads.append(threading.current_thread().name)
        return real(body)

    monkeypatch.setattr(client_manage, "_decode_heartbeat", recording)
    data = heartbeat(tags)
    assert (len(data.encode()) > client_manage.INLINE_BODY_LIMIT) is in_thread
    main = threading.current_thread().name
    with trio.fail_after(15):
        async with running_broker(broker_settings(tmp_path)) as broker, RemotingClient() as client:
            await BrokerAPI(client).heartbeat(broker.broker_addr, data, 10)
            assert broker.data_plane is not None
            stored = broker.data_plane.consumer_manager.find_subscription_data(
                "many_tags_group", "ManyTags"
            )
    assert stored is not None and len(stored.tags_set) == tags
    assert len(threads) == 1 and (threads[0] != main) is in_thread


async def test_a_large_broker_config_body_is_parsed_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []

    class Recording(Properties):
        @classmethod
        def decode(cls, data: bytes) -> Properties:
            threads.append(threading.current_thread().name)
            return Properties.decode(data)

    monkeypatch.setattr(admin, "Properties", Recording)
    padding = "#" + "c" * (2 * admin.INLINE_BODY_LIMIT) + "\n"
    body = (padding + "fileReservedTime=12\n").encode()
    request = RemotingCommand.request(RequestCode.UPDATE_BROKER_CONFIG, body=body)
    with trio.fail_after(15):
        async with running_broker(broker_settings(tmp_path)) as broker, RemotingClient() as client:
            answer = await client.invoke_sync(broker.broker_addr, request, 10)
            assert (answer.code, answer.remark) == (ResponseCode.SUCCESS, None)
            assert broker.settings.store.file_reserved_time == 12
    assert len(threads) == 1 and threads[0] != threading.current_thread().name
