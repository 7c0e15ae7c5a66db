"""GET_CONSUMER_RUNNING_INFO over real sockets: the broker forwards the
request to a real PushConsumer over its own connection and relays the answer;
unknown clients and silent clients get Java's refusals; ``consumerStatus``
prints the answer."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.broker.processors import admin as admin_processor
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.consume_stats import ConsumerStats
from pyrocket.client.consumer import PushConsumer
from pyrocket.client.producer import Producer, new_message
from pyrocket.errors import ResponseError
from pyrocket.protocol.bodies.admin import (
    PROP_CONSUME_TYPE,
    PROP_NAMESERVER_ADDR,
    ConsumerRunningInfo,
    ConsumeStatus,
)
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    HeartbeatData,
    MessageModel,
    MessageQueue,
    SubscriptionData,
)
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import Connection, RemotingClient
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv
from tests.cli.test_broker_cli import cli
from tests.remoting.helpers import wait_until


async def test_running_info_of_a_real_push_consumer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with trio.fail_after(30):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_broker(broker_settings(tmp_path, [ns.addr])) as broker,
            RemotingClient() as admin_client,
            Producer("info_pg", [ns.addr], client_ip="127.0.0.1") as producer,
        ):
            addr = broker.broker_addr
            admin = BrokerAPI(admin_client)
            await producer.send(new_message("InfoTopic", b"one"))
            reader = PushConsumer(
                "info_cg",
                [ns.addr],
                client_ip="127.0.0.1",
                consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
            )
            reader.subscribe("InfoTopic", "a || b")
            async with reader:
                # The first rebalance adds the queues one by one, each after
                # its own offset query (as Java's processQueueTable fills), so
                # a partial assignment is a passing state: wait until the lone
                # consumer holds every readable queue the broker serves for its
                # subscriptions, after which the assignment no longer moves.
                topics = broker.topic_config_manager
                served: set[MessageQueue] = set()
                for topic in ("%RETRY%info_cg", "InfoTopic"):
                    config = topics.select_topic_config(topic)
                    assert config is not None
                    served.update(
                        MessageQueue(topic, broker.settings.broker.broker_name, queue_id)
                        for queue_id in range(config.read_queue_nums)
                    )
                await wait_until(lambda: reader.assignment == served)
                info = await admin.get_consumer_running_info(addr, "info_cg", reader.client_id)
                assert [s.topic for s in info.subscription_set] == ["%RETRY%info_cg", "InfoTopic"]
                assert info.subscription_set[1].sub_string == "a || b"
                assert set(info.mq_table) == reader.assignment
                assert list(info.mq_table) == sorted(
                    info.mq_table, key=lambda q: (q.topic or "", q.broker_name or "", q.queue_id)
                )
                assert all(not pq.locked for pq in info.mq_table.values())
                assert list(info.status_table) == ["%RETRY%info_cg", "InfoTopic"]
                assert info.properties[PROP_CONSUME_TYPE] == "CONSUME_PASSIVELY"
                assert info.properties[PROP_NAMESERVER_ADDR] == f"{ns.addr};"
                assert info.properties["consumerGroup"] == "info_cg"
                assert info.jstack is None
                # The body is what the client wrote, relayed untouched.
                assert ConsumerRunningInfo.decode(info.encode()) == info

                with_stack = await admin.get_consumer_running_info(
                    addr, "info_cg", reader.client_id, jstack=True
                )
                assert with_stack.jstack

                code, out, err = await cli(
                    "admin", "consumerStatus", "-n", ns.addr, "-g", "info_cg",
                    "-i", reader.client_id,
                )  # fmt: skip
                assert (code, err) == (0, "")
                assert out.startswith("#Consumer Properties#\n")
                assert "\n\n#Consumer Subscription#\n" in out
                assert (
                    f"002 Topic: {'InfoTopic':<40} ClassFilter: false    SubExpression: a || b\n"
                    in out
                )
                assert "#Consumer RT&TPS#" in out

                code, out, err = await cli(
                    "admin", "consumerStatus", "-n", ns.addr, "-g", "info_cg"
                )  # fmt: skip
                assert (code, err) == (0, "")
                first, rest = out.split("\n", 1)
                number, client_id, version, path = first.split()
                assert (number, client_id, version) == ("001", reader.client_id, "V4_7_0")
                assert (tmp_path / path).read_text().startswith("#Consumer Properties#\n")
                assert rest == (
                    "\n\nSame subscription in the same group of consumer\n\nRebalance OK\n"
                )

                try:
                    await admin.get_consumer_running_info(addr, "info_cg", "10.9.9.9@nobody")
                except ResponseError as exc:
                    assert exc.code == ResponseCode.SYSTEM_ERROR
                    assert exc.remark == "The Consumer <info_cg> <10.9.9.9@nobody> not online"
                else:
                    raise AssertionError("an unknown client answered")


async def test_a_silent_client_gets_the_brokers_timeout_remark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_processor, "CALL_CLIENT_TIMEOUT", 0.3)
    with trio.fail_after(30):
        async with (
            running_broker(broker_settings(tmp_path)) as broker,
            RemotingClient() as admin_client,
            RemotingClient() as consumer_client,
        ):
            addr = broker.broker_addr
            heard = trio.Event()
            seen: list[RemotingCommand] = []

            async def never_answer(conn: Connection, request: RemotingCommand) -> None:
                seen.append(request)
                heard.set()
                await trio.sleep_forever()

            consumer_client.register_processor(RequestCode.GET_CONSUMER_RUNNING_INFO, never_answer)
            await BrokerAPI(consumer_client).heartbeat(
                addr,
                HeartbeatData(
                    client_id="10.1.1.1@silent",
                    consumer_data_set=(
                        ConsumerData(
                            group_name="silent_cg",
                            consume_type=ConsumeType.CONSUME_PASSIVELY,
                            message_model=MessageModel.CLUSTERING,
                            consume_from_where=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
                            subscription_data_set=(SubscriptionData.for_expression("T", "*"),),
                        ),
                    ),
                ),
            )
            plane = broker.data_plane
            assert plane is not None
            await wait_until(
                lambda: plane.consumer_manager.get_consumer_group_info("silent_cg") is not None
            )
            admin = BrokerAPI(admin_client)
            try:
                await admin.get_consumer_running_info(addr, "silent_cg", "10.1.1.1@silent", True)
            except ResponseError as exc:
                assert exc.code == ResponseCode.CONSUME_MSG_TIMEOUT
                assert exc.remark is not None
                assert exc.remark.startswith(
                    "consumer <silent_cg> <10.1.1.1@silent> Timeout: "
                    "org.apache.rocketmq.remoting.exception.RemotingTimeoutException: "
                    "wait response on the channel <"
                )
                assert exc.remark.endswith("> timeout, 300(ms)")
            else:
                raise AssertionError("a silent client answered")
            assert heard.is_set()
            (request,) = seen
            assert dict(request.ext_fields or {}) == {
                "consumerGroup": "silent_cg",
                "clientId": "10.1.1.1@silent",
                "jstackEnable": "true",
            }


async def test_running_info_reports_the_consume_statistics(tmp_path: Path) -> None:
    count = 10
    with trio.fail_after(40):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_broker(broker_settings(tmp_path, [ns.addr])) as broker,
            RemotingClient() as admin_client,
            Producer("stats_pg", [ns.addr], client_ip="127.0.0.1") as producer,
        ):
            admin = BrokerAPI(admin_client)
            await producer.send(new_message("StatsTopic", b"first"))
            reader = PushConsumer(
                "stats_cg",
                [ns.addr],
                client_ip="127.0.0.1",
                consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
            )
            # Java samples every 10 s and 10 min; the windows are the same,
            # seven snapshots, only closer together.
            reader.stats.minute_sampling = reader.stats.hour_sampling = 0.5
            reader.subscribe("StatsTopic")
            async with reader:
                received = [await reader.receive()]
                # Held pulls: the rest arrives while they wait, so each
                # pull's round trip is measurable.
                await trio.sleep(0.3)
                for i in range(count - 1):
                    await producer.send(new_message("StatsTopic", f"m{i}".encode()))
                while len(received) < count:
                    await trio.sleep(0.02)  # the caller's work: the consume RT
                    received.append(await reader.receive())
                await reader.reconsume_later(received[-1])
                await reader.poll(timeout=0.01)  # settles the last hand-out

                async def status() -> ConsumeStatus:
                    info = await admin.get_consumer_running_info(
                        broker.broker_addr, "stats_cg", reader.client_id
                    )
                    return info.status_table["StatsTopic"]

                seen = await status()
                while seen.consume_failed_msgs == 0 or seen.consume_ok_tps == 0:
                    await trio.sleep(0.1)
                    seen = await status()
    assert seen.consume_failed_msgs == 1
    assert seen.consume_failed_tps > 0
    assert seen.consume_ok_tps > 0
    assert seen.consume_rt >= 15  # ms per hand-out: the 20 ms of work
    assert seen.pull_tps > 0
    assert seen.pull_rt > 0


def test_consumer_stats_windows() -> None:
    stats = ConsumerStats()
    assert stats.status("T") == ConsumeStatus()
    stats.pulled("T", 10, 5)
    stats.pulled("T", 30, 0)  # FOUND, everything filtered out: RT only
    stats.consumed("T", 8, 4)
    stats.failed("T", 1)
    stats.sample_minute()  # a zero snapshot 10 s back, then the totals
    stats.sample_hour()
    status = stats.status("T")
    assert status.pull_rt == 20.0  # 40 ms over two pulls
    assert status.pull_tps == 0.5  # five messages in 10 s
    assert status.consume_rt == 8.0
    assert status.consume_ok_tps == 0.4
    assert status.consume_failed_tps == 0.1
    assert status.consume_failed_msgs == 1
    # Nothing consumed within the minute window: consumeRT from the hour's.
    for _ in range(7):
        stats.sample_minute()
    status = stats.status("T")
    assert (status.consume_ok_tps, status.consume_rt) == (0.0, 8.0)
    assert status.consume_failed_msgs == 1
