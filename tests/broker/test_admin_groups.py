"""Subscription-group administration, the slave-sync tables and the client
connection lists, over real sockets: answers, refusals and persistence."""

from __future__ import annotations

from pathlib import Path

import trio

from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.consumer import PushConsumer
from pyrocket.client.producer import Producer, new_message
from pyrocket.errors import ResponseError
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies.admin import (
    SubscriptionGroupConfig,
    SubscriptionGroupWrapper,
)
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    HeartbeatData,
    MessageModel,
    ProducerData,
    SubscriptionData,
)
from pyrocket.protocol.codes import LanguageCode, RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    DeleteSubscriptionGroupRequestHeader,
    GetConsumerConnectionListRequestHeader,
    GetProducerConnectionListRequestHeader,
)
from pyrocket.protocol.javahash import JavaConcurrentHashMap
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv
from tests.remoting.helpers import wait_until


async def call(client: RemotingClient, addr: str, request: RemotingCommand) -> RemotingCommand:
    return await client.invoke_sync(addr, request, 5)


def update_group(body: bytes | None) -> RemotingCommand:
    return RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=body)


async def test_groups_are_created_listed_deleted_and_survive_a_restart(tmp_path: Path) -> None:
    settings = broker_settings(tmp_path)
    config = SubscriptionGroupConfig(
        "orders", retry_max_times=3, consume_broadcast_enable=False, broker_id=1
    )
    with trio.fail_after(20):
        async with running_broker(settings) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            groups = broker.subscription_group_manager
            version = groups.data_version
            response = await call(client, addr, update_group(config.encode()))
            assert (response.code, response.remark, response.ext_fields) == (0, None, None)
            assert groups.subscription_group_table["orders"] == config
            assert groups.data_version.counter == version.counter + 1
            await call(client, addr, update_group(SubscriptionGroupConfig("gone").encode()))

            response = await call(
                client, addr, RemotingCommand.request(RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG)
            )
            assert response.code == ResponseCode.SUCCESS and response.ext_fields is None
            body = response.body or b""
            # The manager object as fastjson writes it: dataVersion first.
            assert body.startswith(b'{"dataVersion":{"counter":2,"timestamp":')
            assert list(fastjson.loads(body)) == ["dataVersion", "subscriptionGroupTable"]
            wrapper = SubscriptionGroupWrapper.decode(body)
            assert wrapper.subscription_group_table["orders"] == config
            assert list(wrapper.subscription_group_table) == list(groups.subscription_group_table)
            assert wrapper.data_version == groups.data_version

            delete = RemotingCommand.request(
                RequestCode.DELETE_SUBSCRIPTIONGROUP, DeleteSubscriptionGroupRequestHeader("gone")
            )
            response = await call(client, addr, delete)
            assert (response.code, response.remark) == (ResponseCode.SUCCESS, None)
            assert "gone" not in groups.subscription_group_table
            # Deleting a group that does not exist is no error (as in Java).
            response = await call(client, addr, delete)
            assert response.code == ResponseCode.SUCCESS
            counter = groups.data_version.counter

        async with running_broker(settings) as broker:
            groups = broker.subscription_group_manager
            assert groups.subscription_group_table["orders"] == config
            assert "gone" not in groups.subscription_group_table
            assert groups.data_version.counter == counter


async def test_group_requests_are_refused_with_a_remark(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_broker(broker_settings(tmp_path)) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            groups = broker.subscription_group_manager
            before = dict(groups.subscription_group_table)
            cases = {
                None: "the request has no SubscriptionGroupConfig body",
                b"[1]": "bad SubscriptionGroupConfig body",
                b'{"groupName":': "bad SubscriptionGroupConfig body",
                b'{"retryMaxTimes":"many","groupName":"g"}': "bad SubscriptionGroupConfig body",
                b'{"retryMaxTimes":2}': "the SubscriptionGroupConfig has no groupName",
            }
            for body, remark in cases.items():
                response = await call(client, addr, update_group(body))
                assert response.code == ResponseCode.SYSTEM_ERROR, body
                assert (response.remark or "").startswith(remark), (body, response.remark)
            # A JSON null is Java's "nothing to do".
            response = await call(client, addr, update_group(b"null"))
            assert response.code == ResponseCode.SUCCESS
            assert dict(groups.subscription_group_table) == before

            response = await call(
                client, addr, RemotingCommand.request(RequestCode.DELETE_SUBSCRIPTIONGROUP)
            )
            assert response.code == ResponseCode.SYSTEM_ERROR
            assert response.remark == "the custom field <groupName> is null"
            # The connection is still usable.
            response = await call(client, addr, update_group(b'{"groupName":"ok"}'))
            assert response.code == ResponseCode.SUCCESS
            assert groups.subscription_group_table["ok"] == SubscriptionGroupConfig("ok")


async def test_delay_offsets_are_answered_in_javas_order(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_broker(broker_settings(tmp_path)) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            request = RemotingCommand.request(RequestCode.GET_ALL_DELAY_OFFSET)
            response = await call(client, addr, request)
            assert (response.code, response.remark, response.ext_fields) == (0, None, None)
            assert response.body == b'{"offsetTable":{}}'
            table = broker.store.schedule.offset_table
            for level, offset in [(18, 4), (3, 9), (17, 1), (1, 2)]:
                table[level] = offset
            response = await call(client, addr, request)
            # ConcurrentHashMap(32) of Integer keys: ascending buckets.
            assert response.body == b'{"offsetTable":{1:2,3:9,17:1,18:4}}'
            offsets = await BrokerAPI(client).get_all_delay_offset(addr)
            assert dict(offsets.offset_table) == {1: 2, 3: 9, 17: 1, 18: 4}


def consumer_heartbeat(client_id: str, group: str, topics: list[str]) -> HeartbeatData:
    return HeartbeatData(
        client_id=client_id,
        producer_data_set=(ProducerData("CLIENT_INNER_PRODUCER"),),
        consumer_data_set=(
            ConsumerData(
                group_name=group,
                consume_type=ConsumeType.CONSUME_PASSIVELY,
                message_model=MessageModel.CLUSTERING,
                consume_from_where=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
                subscription_data_set=tuple(
                    SubscriptionData.for_expression(topic, "a || b", sub_version=7)
                    for topic in topics
                ),
            ),
        ),
    )


async def test_connection_lists_show_the_heartbeating_clients(tmp_path: Path) -> None:
    with trio.fail_after(15):
        async with (
            running_broker(broker_settings(tmp_path)) as broker,
            RemotingClient() as first,
            RemotingClient() as second,
            RemotingClient() as admin_client,
        ):
            addr = broker.broker_addr
            admin = BrokerAPI(admin_client)
            await BrokerAPI(first).heartbeat(
                addr, consumer_heartbeat("10.0.0.1@1", "cg", ["TopicA", "TopicB"])
            )
            await BrokerAPI(second).heartbeat(
                addr,
                HeartbeatData(client_id="10.0.0.2@2", producer_data_set=(ProducerData("pg"),)),
            )
            first_local = [c.local_address for c in first.connections.values()]
            second_local = [c.local_address for c in second.connections.values()]

            consumers = await admin.get_consumer_connection_list(addr, "cg")
            assert [
                (c.client_id, c.client_addr, c.language, c.version)
                for c in consumers.connection_set
            ] == [("10.0.0.1@1", first_local[0], LanguageCode.JAVA, 353)]
            assert consumers.consume_type is ConsumeType.CONSUME_PASSIVELY
            assert consumers.message_model is MessageModel.CLUSTERING
            assert consumers.consume_from_where is ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET
            assert sorted(consumers.subscription_table) == ["TopicA", "TopicB"]
            assert broker.data_plane is not None
            group_info = broker.data_plane.consumer_manager.get_consumer_group_info("cg")
            assert group_info is not None
            # Java putAll's the group's table into a fresh ConcurrentHashMap.
            copied = JavaConcurrentHashMap.copy_of(group_info.subscription_table)
            assert list(consumers.subscription_table) == list(copied)
            assert consumers.subscription_table["TopicA"].tags_set == ("a", "b")
            assert consumers.compute_min_version() == 353

            producers = await admin.get_producer_connection_list(addr, "pg")
            assert [(c.client_id, c.client_addr) for c in producers.connection_set] == [
                ("10.0.0.2@2", second_local[0])
            ]
            inner = await admin.get_producer_connection_list(addr, "CLIENT_INNER_PRODUCER")
            assert [c.client_id for c in inner.connection_set] == ["10.0.0.1@1"]

            # The body is the bean fastjson writes (alphabetical properties).
            raw = await call(
                admin_client,
                addr,
                RemotingCommand.request(
                    RequestCode.GET_CONSUMER_CONNECTION_LIST,
                    GetConsumerConnectionListRequestHeader("cg"),
                ),
            )
            assert raw.ext_fields is None and raw.body == consumers.encode()
            assert list(fastjson.loads(raw.body or b"")) == [
                "connectionSet",
                "consumeFromWhere",
                "consumeType",
                "messageModel",
                "subscriptionTable",
            ]

            missing = await call(
                admin_client,
                addr,
                RemotingCommand.request(
                    RequestCode.GET_CONSUMER_CONNECTION_LIST,
                    GetConsumerConnectionListRequestHeader("nobody"),
                ),
            )
            assert missing.code == ResponseCode.CONSUMER_NOT_ONLINE
            assert missing.remark == "the consumer group[nobody] not online"
            missing = await call(
                admin_client,
                addr,
                RemotingCommand.request(
                    RequestCode.GET_PRODUCER_CONNECTION_LIST,
                    GetProducerConnectionListRequestHeader("nobody"),
                ),
            )
            assert missing.code == ResponseCode.SYSTEM_ERROR
            assert missing.remark == "the producer group[nobody] not exist"

            # Once the consumer's connection closes its group is gone.
            first.close_connection(addr)
            consumers_left = broker.data_plane.consumer_manager
            for _ in range(500):
                if consumers_left.get_consumer_group_info("cg") is None:
                    break
                await trio.sleep(0.01)
            try:
                await admin.get_consumer_connection_list(addr, "cg")
            except ResponseError as exc:
                assert exc.code == ResponseCode.CONSUMER_NOT_ONLINE
            else:
                raise AssertionError("the group is still listed")


async def test_connection_lists_of_a_real_producer_and_push_consumer(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_broker(broker_settings(tmp_path, [ns.addr])) as broker,
            RemotingClient() as admin_client,
            Producer("real_pg", [ns.addr], client_ip="127.0.0.1") as producer,
        ):
            addr = broker.broker_addr
            admin = BrokerAPI(admin_client)
            await producer.send(new_message("RealTopic", b"hello"))
            reader = PushConsumer(
                "real_cg",
                [ns.addr],
                client_ip="127.0.0.1",
                consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
            )
            reader.subscribe("RealTopic", "t1 || t2")
            async with reader:
                plane = broker.data_plane
                assert plane is not None
                await wait_until(
                    lambda: (
                        plane.consumer_manager.get_consumer_group_info("real_cg") is not None
                        and "real_pg" in plane.producer_manager.group_channel_table
                    )
                )
                consumers = await admin.get_consumer_connection_list(addr, "real_cg")
                (member,) = consumers.connection_set
                assert (member.client_id or "").startswith("127.0.0.1@")
                assert (member.client_addr or "").startswith("127.0.0.1:")
                assert member.version == 353 and member.language is not None
                assert consumers.consume_type is ConsumeType.CONSUME_PASSIVELY
                assert consumers.message_model is MessageModel.CLUSTERING
                assert consumers.consume_from_where is ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET
                # The subscription and the group's own retry topic.
                assert sorted(consumers.subscription_table) == ["%RETRY%real_cg", "RealTopic"]
                assert consumers.subscription_table["RealTopic"].sub_string == "t1 || t2"
                producers = await admin.get_producer_connection_list(addr, "real_pg")
                (member,) = producers.connection_set
                assert (member.client_id or "").startswith("127.0.0.1@")
            # The consumer's UNREGISTER_CLIENT takes the group away.
            await wait_until(
                lambda: plane.consumer_manager.get_consumer_group_info("real_cg") is None
            )
            try:
                await admin.get_consumer_connection_list(addr, "real_cg")
            except ResponseError as exc:
                assert exc.code == ResponseCode.CONSUMER_NOT_ONLINE
                assert exc.remark == "the consumer group[real_cg] not online"
            else:
                raise AssertionError("the group is still listed")
