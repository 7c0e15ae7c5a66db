"""The broker's statistics and remaining admin requests over real sockets:
VIEW_BROKER_STATS_DATA and GET_BROKER_CONSUME_STATS after real sends and
pulls, QUERY_CORRECTION_OFFSET, CLONE_GROUP_OFFSET, QUERY_CONSUME_TIME_SPAN,
GET_SYSTEM_TOPIC_LIST_FROM_BROKER, CLEAN_EXPIRED_CONSUMEQUEUE,
CLEAN_UNUSED_TOPIC, QUERY_CONSUME_QUEUE, and the refusals of the reset and
status requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from pyrocket.broker.app import Broker
from pyrocket.broker.processors import ops as ops_processor
from pyrocket.broker.statsitems import SamplingSchedule
from pyrocket.client.admin import Admin
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.producer import Producer, new_message
from pyrocket.errors import ResponseError
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    HeartbeatData,
    MessageModel,
    SubscriptionData,
)
from pyrocket.protocol.bodies.ops import ConsumeStatsList, ResetOffsetBody
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import ONEWAY_FLAG, RemotingCommand
from pyrocket.protocol.headers import GetConsumeStatsInBrokerHeader
from pyrocket.remoting import ClientConfig, Connection, RemotingClient
from tests.broker.helpers import broker_settings, running_broker, send_request
from tests.client.helpers import consumer, running_up
from tests.remoting.helpers import wait_until

TOPIC = "StatsTopic"


def _sample_all(broker: Broker, at_ms: int) -> None:
    manager = broker.stats_manager
    manager.sample(SamplingSchedule(at_ms).due(at_ms), at_ms)


async def test_statistics_of_sends_and_pulls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running, Admin([running.namesrv_addr]) as admin:
            ns, broker = running.namesrv_addr, running.broker
            addr = broker.broker_addr
            async with Producer("stats_pg", [ns], client_ip="127.0.0.1") as producer:
                for i in range(5):
                    await producer.send(new_message(TOPIC, b"x" * 100, tags=f"t{i}"))
            async with consumer(ns, "stats_cg", TOPIC) as reader:
                for _ in range(5):
                    await reader.receive()
                await reader.commit()
            # Two samplings 10 s apart stand in for the 10 s task.
            now = broker.now_ms()
            _sample_all(broker, now + 10_000)
            put = await admin.ops.view_broker_stats_data(addr, "TOPIC_PUT_NUMS", TOPIC)
            assert put.stats_minute is not None and put.stats_minute.sum == 5
            assert put.stats_minute.tps == pytest.approx(5 / 10)
            size = await admin.ops.view_broker_stats_data(addr, "TOPIC_PUT_SIZE", TOPIC)
            assert size.stats_minute is not None and size.stats_minute.sum > 5 * 100
            got = await admin.ops.view_broker_stats_data(
                addr, "GROUP_GET_NUMS", f"{TOPIC}@stats_cg"
            )
            assert got.stats_minute is not None and got.stats_minute.sum == 5
            latency = [
                broker.stats_manager.stats_item("GROUP_GET_LATENCY", f"{q}@{TOPIC}@stats_cg")
                for q in range(4)
            ]
            # One item per queue pulled from, counting its successful pulls.
            assert sum(item.times for item in latency if item is not None) >= 1
            cluster = broker.settings.broker.broker_cluster_name
            total = await admin.ops.view_broker_stats_data(addr, "BROKER_PUT_NUMS", cluster)
            assert total.stats_minute is not None and total.stats_minute.sum == 5
            with pytest.raises(ResponseError) as missing:
                await admin.ops.view_broker_stats_data(addr, "TOPIC_PUT_NUMS", "NoTopic")
            assert missing.value.code == ResponseCode.SYSTEM_ERROR
            assert missing.value.remark == "The stats <TOPIC_PUT_NUMS> <NoTopic> not exist"

            stats = await admin.ops.broker_consume_stats(addr)
            assert stats.broker_addr == addr
            groups = {g: s for entry in stats.consume_stats_list for g, s in entry.items()}
            (mine,) = [
                s for s in groups["stats_cg"] if any(q.topic == TOPIC for q in s.offset_table)
            ]
            assert sum(w.consumer_offset for w in mine.offset_table.values()) == 5
            assert sum(w.broker_offset for w in mine.offset_table.values()) == 5
            assert mine.consume_tps == pytest.approx(5 / 10)
            assert stats.total_diff == sum(
                s.compute_total_diff() for ss in groups.values() for s in ss
            )
            # Only order topics: none here.
            async with RemotingClient() as client:
                request = RemotingCommand.request(
                    RequestCode.GET_BROKER_CONSUME_STATS, GetConsumeStatsInBrokerHeader(True)
                )
                answer = await client.invoke_sync(addr, request, 5)
            ordered = ConsumeStatsList.decode(answer.body or b"{}")
            assert all(not s for entry in ordered.consume_stats_list for s in entry.values())

            spans = await admin.ops.query_consume_time_span(addr, TOPIC, "stats_cg")
            assert len(spans) == 4
            for span in spans:
                if span.max_time_stamp > 0:
                    assert span.min_time_stamp <= span.consume_time_stamp <= span.max_time_stamp
                    assert span.delay_time == 0  # all consumed

            # The group's offsets cloned to another group and compared.
            await admin.ops.clone_group_offset(addr, "stats_cg", "copy_cg", TOPIC, True)
            offsets = broker.data_plane.consumer_offset_manager  # type: ignore[union-attr]
            assert offsets.query_offsets("copy_cg", TOPIC) == offsets.query_offsets(
                "stats_cg", TOPIC
            )
            correction = await admin.ops.query_correction_offset(addr, TOPIC, "copy_cg")
            original = offsets.query_offsets("stats_cg", TOPIC) or {}
            assert correction == {q: o for q, o in original.items() if o >= 0}

            queue_id = max(original, key=lambda q: original[q])
            assert original[queue_id] >= 2  # five messages on four queues
            body, remark = await admin.ops.query_consume_queue(
                addr, TOPIC, queue_id, 0, 10, "stats_cg"
            )
            assert body is not None and remark is None
            assert body.min_queue_index == 0 and body.max_queue_index == original[queue_id]
            assert len(body.queue_data or ()) == original[queue_id]
            assert all(d.physic_size > 0 for d in body.queue_data or ())
            # The consumer has gone.
            assert body.filter_data == f"stats_cg@{TOPIC} is not online!"
            assert body.subscription_data is None
            monkeypatch.setattr(ops_processor, "MAX_QUERY_ENTRIES", 1)
            body, remark = await admin.ops.query_consume_queue(addr, TOPIC, queue_id, 0, 10)
            assert body is not None and len(body.queue_data or ()) == 1
            body, remark = await admin.ops.query_consume_queue(addr, TOPIC, queue_id, 99, 1)
            assert body is None
            assert remark == f"Index 99 of {queue_id}@{TOPIC} is not exist!"
            with pytest.raises(ResponseError) as absent:
                await admin.ops.query_consume_queue(addr, "NoSuchTopic", 0, 0, 1)
            assert absent.value.remark == "0@NoSuchTopic is not exist!"


async def test_housekeeping_requests(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running, Admin([running.namesrv_addr]) as admin:
            broker = running.broker
            addr = broker.broker_addr
            topics = await admin.ops.system_topic_list(addr)
            assert sorted(topics) == sorted(broker.topic_config_manager.system_topic_list)
            assert "OFFSET_MOVED_EVENT" in topics and "TBW102" in topics
            await admin.ops.clean_expired_consume_queue(addr)
            async with Producer("hk_pg", [running.namesrv_addr], client_ip="127.0.0.1") as p:
                await p.send(new_message("Doomed", b"x"))
            assert any(broker.store.consume_queue("Doomed", q) is not None for q in range(4))
            # A queue whose topic is gone from the table is destroyed.
            del broker.topic_config_manager.topic_config_table["Doomed"]
            await admin.ops.clean_unused_topic(addr)
            assert all(broker.store.consume_queue("Doomed", q) is None for q in range(4))


async def test_refusals_of_reset_and_status(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running, Admin([running.namesrv_addr]) as admin:
            addr = running.broker.broker_addr
            with pytest.raises(ResponseError) as no_topic:
                await admin.ops.reset_offset(addr, "NoTopic", "g", 0, True)
            assert no_topic.value.code == ResponseCode.SYSTEM_ERROR
            assert no_topic.value.remark == (
                "[reset-offset] reset offset failed, no topic in this broker. topic=NoTopic"
            )
            async with Producer("r_pg", [running.namesrv_addr], client_ip="127.0.0.1") as p:
                await p.send(new_message("ResetTopic", b"x"))
            with pytest.raises(ResponseError) as no_group:
                await admin.ops.reset_offset(addr, "ResetTopic", "never_seen", 0, True)
            assert no_group.value.remark == "THe consumer group <never_seen> not exist"
            with pytest.raises(ResponseError) as nobody:
                await admin.ops.consumer_status(addr, "ResetTopic", "never_seen")
            assert nobody.value.remark == (
                "No Any Consumer online in the consumer group: [never_seen]"
            )
            # The answer bodies are plain JSON a Java client reads.
            async with RemotingClient() as client:
                request = RemotingCommand.request(RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_BROKER)
                answer = await client.invoke_sync(addr, request, 5)
            assert answer.code == ResponseCode.SUCCESS
            assert set(json.loads(answer.body or b"{}")) == {"topicList"}


async def test_refusals_of_correction_and_direct_consumption(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running, Admin([running.namesrv_addr]) as admin:
            addr = running.broker.broker_addr
            async with Producer("c_pg", [running.namesrv_addr], client_ip="127.0.0.1") as p:
                await p.send(new_message("CorrTopic", b"x"))
            brokers = admin.brokers
            await brokers.update_consumer_offset(addr, "group_a", "CorrTopic", 0, 5)
            await brokers.update_consumer_offset(addr, "group_a", "CorrTopic", 1, 2)
            await brokers.update_consumer_offset(addr, "group_b", "CorrTopic", 0, 3)
            await brokers.update_consumer_offset(addr, "group_b", "CorrTopic", 1, 9)
            await brokers.update_consumer_offset(addr, "group_b", "CorrTopic", 2, 1)
            # Every group counts unless filtered: the lowest offsets, none
            # of which is above group_b's.
            everyone = await admin.ops.query_correction_offset(addr, "CorrTopic", "group_b")
            assert everyone == {0: 3, 1: 2, 2: 1}
            # Without group_b: group_a's offsets; where group_b is behind
            # (queue 0: 3 < 5) Long.MAX_VALUE; queue 2, which only group_b
            # has, is left out where Java fails.
            others = await admin.ops.query_correction_offset(
                addr, "CorrTopic", "group_b", "group_b"
            )
            assert others == {0: (1 << 63) - 1, 1: 2}
            for msg_id, remark in (
                ("XYZ", "bad msgId 'XYZ': message id of 3 characters is neither 32 nor 56"),
                (
                    "7F00000100002A9F00000000FFFFFFFF",
                    "can not find message by the offset, 4294967295",
                ),
            ):
                with pytest.raises(ResponseError) as refused:
                    await admin.ops.consume_message_directly(addr, "group_a", "someone", msg_id)
                assert refused.value.code == ResponseCode.SYSTEM_ERROR
                assert refused.value.remark == remark


async def _fake_consumer(
    client: RemotingClient, addr: str, client_id: str, group: str, topic: str
) -> None:
    await BrokerAPI(client).heartbeat(
        addr,
        HeartbeatData(
            client_id=client_id,
            consumer_data_set=(
                ConsumerData(
                    group_name=group,
                    consume_type=ConsumeType.CONSUME_PASSIVELY,
                    message_model=MessageModel.CLUSTERING,
                    consume_from_where=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
                    subscription_data_set=(SubscriptionData.for_expression(topic, "*"),),
                ),
            ),
        ),
    )


async def test_reset_forwarded_as_java_and_cpp_bodies_and_refused_for_old_clients(
    tmp_path: Path,
) -> None:
    with trio.fail_after(60):
        async with (
            running_up(tmp_path) as running,
            Admin([running.namesrv_addr]) as admin,
            RemotingClient() as member,
            RemotingClient(ClientConfig(version=20)) as old_member,
        ):
            broker = running.broker
            addr = broker.broker_addr
            async with Producer("f_pg", [running.namesrv_addr], client_ip="127.0.0.1") as p:
                await p.send(new_message("FwdTopic", b"x"))
            await admin.brokers.update_consumer_offset(addr, "fwd_cg", "FwdTopic", 0, 1)
            for queue_id in range(1, 4):
                await admin.brokers.update_consumer_offset(addr, "fwd_cg", "FwdTopic", queue_id, 0)
            resets: list[RemotingCommand] = []
            arrived = trio.Event()

            def on_reset(conn: Connection, request: RemotingCommand) -> None:
                resets.append(request)
                arrived.set()

            member.register_processor(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, on_reset)
            await _fake_consumer(member, addr, "10.0.0.1@fake", "fwd_cg", "FwdTopic")
            plane = broker.data_plane
            assert plane is not None
            await wait_until(
                lambda: plane.consumer_manager.get_consumer_group_info("fwd_cg") is not None
            )

            # Not forced: a queue keeps its offset when the target is not lower.
            table = await admin.ops.reset_offset(addr, "FwdTopic", "fwd_cg", -1, False)
            committed = {0: 1, 1: 0, 2: 0, 3: 0}
            ends = {q: broker.store.get_max_offset_in_queue("FwdTopic", q) for q in range(4)}
            assert {q.queue_id: o for q, o in table.items()} == {
                q: ends[q] if ends[q] < committed[q] else committed[q] for q in range(4)
            }
            await arrived.wait()
            (java_form,) = resets
            assert java_form.flag & ONEWAY_FLAG
            assert dict(java_form.ext_fields or {}) == {
                "topic": "FwdTopic",
                "group": "fwd_cg",
                "timestamp": "-1",
                "isForce": "false",
            }
            assert ResetOffsetBody.decode(java_form.body or b"").offset_table == table

            arrived = trio.Event()
            table = await admin.ops.reset_offset(addr, "FwdTopic", "fwd_cg", 0, True, cplus=True)
            await arrived.wait()
            cpp_form = resets[-1]
            listed = json.loads(cpp_form.body or b"")["offsetTable"]
            assert isinstance(listed, list) and len(listed) == 4
            assert {(e["queueId"], e["offset"]) for e in listed} == {(q, 0) for q in range(4)}

            await _fake_consumer(old_member, addr, "10.0.0.2@old", "fwd_cg", "FwdTopic")
            await wait_until(
                lambda: (
                    len(plane.consumer_manager.get_consumer_group_info("fwd_cg").channel_info_table)  # type: ignore[union-attr]
                    == 2
                )
            )
            with pytest.raises(ResponseError) as old:
                await admin.ops.reset_offset(addr, "FwdTopic", "fwd_cg", 0, True)
            assert old.value.code == ResponseCode.SYSTEM_ERROR
            assert old.value.remark == (
                "the client does not support this feature. version=V3_0_3_SNAPSHOT"
            )


async def test_runtime_info_counts_requests_waiting_for_their_turn(tmp_path: Path) -> None:
    release = trio.Event()
    holding = trio.Event()

    async def hold_the_lane(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        holding.set()
        await release.wait()
        return RemotingCommand.response(ResponseCode.SUCCESS)

    def install(broker: Broker) -> None:
        # An ordered code nothing answers: its processor holds the turn.
        broker.register_processor(RequestCode.RESET_CONSUMER_OFFSET_IN_BROKER, hold_the_lane)

    with trio.fail_after(30):
        async with (
            running_broker(broker_settings(tmp_path), install=[install]) as broker,
            RemotingClient() as sender,
            RemotingClient() as admin_client,
        ):
            addr = broker.broker_addr
            await broker.topic_config_manager.update_topic_config(TopicConfig("LaneTopic", 4, 4))
            answers: list[int] = []

            async def call(request: RemotingCommand) -> None:
                answers.append((await sender.invoke_sync(addr, request, 10)).code)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    call, RemotingCommand.request(RequestCode.RESET_CONSUMER_OFFSET_IN_BROKER)
                )
                await holding.wait()
                for i in range(3):
                    nursery.start_soon(call, send_request("LaneTopic", i, b"x"))

                def waiting() -> int:
                    return sum(len(c.waiting_requests()) for c in broker.server.connections)

                await wait_until(lambda: waiting() == 3)
                await trio.sleep(0.3)
                info = await BrokerAPI(admin_client).get_broker_runtime_info(addr)
                assert info["sendThreadPoolQueueSize"] == "3"
                assert info["pullThreadPoolQueueSize"] == "0"
                # The oldest waiting send has waited at least the 0.3 s slept.
                assert 300 <= int(info["sendThreadPoolQueueHeadWaitTimeMills"]) < 30_000
                assert info["pullThreadPoolQueueHeadWaitTimeMills"] == "0"
                release.set()
            assert answers == [ResponseCode.SUCCESS] * 4
            info = await BrokerAPI(admin_client).get_broker_runtime_info(addr)
            assert info["sendThreadPoolQueueSize"] == "0"
            assert info["sendThreadPoolQueueHeadWaitTimeMills"] == "0"
