"""SQL92 filtering on a pyrocket broker over real sockets: CHECK_CLIENT_CONFIG
answers, pulls that carry an SQL92 subscription, subscriptions registered by
heartbeats (versions, filter data that does not exist), the retry topic
under ``filterSupportRetry``, and Java's refusals with
``enablePropertyFilter=false``; and the filter table's bookkeeping."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from pyrocket.broker.consumer_filter import ConsumerFilterManager
from pyrocket.protocol.bodies.client import (
    CheckClientRequestBody,
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    HeartbeatData,
    MessageModel,
    SubscriptionData,
)
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    ConsumerSendMsgBackRequestHeader,
    PullMessageRequestHeader,
    PullMessageResponseHeader,
    SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
)
from pyrocket.protocol.message import decode_messages, encode_properties
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, running_broker

TOPIC = "SqlTopic"
GROUP = "sql_group"


def send(index: int, **properties: str) -> RemotingCommand:
    header = SendMessageRequestHeaderV2(
        producer_group="sql_producer",
        topic=TOPIC,
        default_topic="TBW102",
        default_topic_queue_nums=1,
        queue_id=0,
        sys_flag=0,
        born_timestamp=int(time.time() * 1000),
        flag=0,
        properties=encode_properties({"WAIT": "true", "idx": str(index), **properties}),
        reconsume_times=0,
        unit_mode=False,
        batch=False,
    )
    return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header, body=b"m%d" % index)


def pull(
    expression: str | None,
    *,
    topic: str = TOPIC,
    expression_type: str = "SQL92",
    sub_version: int = 0,
    offset: int = 0,
) -> RemotingCommand:
    header = PullMessageRequestHeader(
        consumer_group=GROUP,
        topic=topic,
        queue_id=0,
        queue_offset=offset,
        max_msg_nums=64,
        sys_flag=0x4 if expression is not None else 0,
        commit_offset=0,
        suspend_timeout_millis=0,
        subscription=expression,
        sub_version=sub_version,
        expression_type=expression_type,
    )
    return RemotingCommand.request(RequestCode.PULL_MESSAGE, header)


def heartbeat(*subscriptions: SubscriptionData) -> RemotingCommand:
    data = HeartbeatData(
        client_id="127.0.0.1@sql",
        consumer_data_set=(
            ConsumerData(
                group_name=GROUP,
                consume_type=ConsumeType.CONSUME_PASSIVELY,
                message_model=MessageModel.CLUSTERING,
                consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                subscription_data_set=subscriptions,
            ),
        ),
    )
    return RemotingCommand.request(RequestCode.HEART_BEAT, body=data.encode())


def sql(expression: str, version: int, topic: str = TOPIC) -> SubscriptionData:
    return SubscriptionData(
        topic=topic, sub_string=expression, expression_type="SQL92", sub_version=version
    )


def check_request(expression: str | None, expression_type: str = "SQL92") -> RemotingCommand:
    body = CheckClientRequestBody(
        client_id="127.0.0.1@sql",
        group=GROUP,
        subscription_data=SubscriptionData(
            topic=TOPIC, sub_string=expression, expression_type=expression_type, sub_version=1
        ),
    )
    return RemotingCommand.request(RequestCode.CHECK_CLIENT_CONFIG, body=body.encode())


def indexes(response: RemotingCommand) -> list[int]:
    assert response.code == ResponseCode.SUCCESS, response.remark
    return [int(m.properties["idx"]) for m in decode_messages(response.body or b"")]


async def fill(client: RemotingClient, addr: str, count: int) -> None:
    for i in range(count):
        properties = {"a": str(i), "colour": "red" if i % 2 else "blue"}
        if i % 5 == 0:
            del properties["colour"]
        answer = await client.invoke_sync(addr, send(i, **properties), 5)
        assert answer.code == ResponseCode.SUCCESS, answer.remark


async def test_check_client_config_with_property_filtering(tmp_path: Path) -> None:
    settings = broker_settings(tmp_path, enablePropertyFilter="true")
    with trio.fail_after(15):
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            good = await client.invoke_sync(addr, check_request("a > 5 AND b IS NULL"), 5)
            assert good.code == ResponseCode.SUCCESS
            tag = await client.invoke_sync(addr, check_request("TagA", "TAG"), 5)
            assert tag.code == ResponseCode.SUCCESS
            syntax = await client.invoke_sync(addr, check_request("a >"), 5)
            assert syntax.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
            assert (syntax.remark or "").startswith(
                "org.apache.rocketmq.filter.parser.ParseException: "
            )
            typed = await client.invoke_sync(addr, check_request("a > 'x'"), 5)
            assert typed.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
            assert typed.remark == "java.lang.RuntimeException: Value ''x'' cannot be compared."
            unknown = await client.invoke_sync(addr, check_request("a > 1", "FOO"), 5)
            assert unknown.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
            assert unknown.remark is None  # Java's NullPointerException has no message
            # The connection is still fine.
            again = await client.invoke_sync(addr, check_request("TRUE"), 5)
            assert again.code == ResponseCode.SUCCESS


async def test_without_property_filtering_sql92_is_refused_as_java_does(tmp_path: Path) -> None:
    refusal = "The broker does not support consumer to filter message by SQL92"
    settings = broker_settings(tmp_path)
    with trio.fail_after(15):
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            await fill(client, addr, 3)
            checked = await client.invoke_sync(addr, check_request("a > 5"), 5)
            assert (checked.code, checked.remark) == (ResponseCode.SYSTEM_ERROR, refusal)
            carried = await client.invoke_sync(addr, pull("a > 1"), 5)
            assert (carried.code, carried.remark) == (ResponseCode.SYSTEM_ERROR, refusal)
            # A registered subscription: the filter data exists, the flag refuses.
            beat = await client.invoke_sync(addr, heartbeat(sql("a > 1", 10)), 5)
            assert beat.code == ResponseCode.SUCCESS
            registered = await client.invoke_sync(addr, pull(None, sub_version=10), 5)
            assert (registered.code, registered.remark) == (ResponseCode.SYSTEM_ERROR, refusal)
            # TAG pulls are unaffected.
            tagged = await client.invoke_sync(addr, pull("*", expression_type="TAG"), 5)
            assert indexes(tagged) == [0, 1, 2]


@pytest.mark.parametrize(
    ("expression", "wanted"),
    [
        ("a >= 10 AND a < 15", {10, 11, 12, 13, 14}),
        ("colour = 'red' AND a BETWEEN 3 AND 9", {3, 7, 9}),
        ("colour IS NULL", {0, 5, 10, 15}),
        # no colour (every fifth): IN and = are unknown, so neither they nor NOT match
        ("colour IN ('red', 'green') OR a = 0", {0} | {i for i in range(20) if i % 2} - {5, 15}),
        ("NOT (colour = 'blue')", {i for i in range(20) if i % 2} - {5, 15}),
        ("a > 3.5 AND a < 6", {4, 5}),
        ("colour > 1", set()),  # every evaluation fails
        ("TAGS IS NULL AND idx = a", set(range(20))),  # system and user properties
    ],
)
async def test_a_pull_carrying_sql92_gets_exactly_the_matching_messages(
    tmp_path: Path, expression: str, wanted: set[int]
) -> None:
    settings = broker_settings(tmp_path, enablePropertyFilter="true")
    with trio.fail_after(15):
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            await fill(client, addr, 20)
            answer = await client.invoke_sync(addr, pull(expression), 5)
            if not wanted:
                assert answer.code == ResponseCode.PULL_RETRY_IMMEDIATELY
                header = answer.decode_header(PullMessageResponseHeader)
                assert header.next_begin_offset == 20
                return
            assert set(indexes(answer)) == wanted
            assert answer.decode_header(PullMessageResponseHeader).next_begin_offset == 20


async def test_a_bad_or_empty_carried_expression_is_a_parse_failure(tmp_path: Path) -> None:
    settings = broker_settings(tmp_path, enablePropertyFilter="true")
    with trio.fail_after(15):
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            await fill(client, addr, 2)
            for expression in ("a >", "", "a > 'x'"):
                answer = await client.invoke_sync(addr, pull(expression), 5)
                assert answer.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
                assert answer.remark == "parse the consumer's subscription failed"


async def test_heartbeats_register_sql92_subscriptions_with_versions(tmp_path: Path) -> None:
    settings = broker_settings(tmp_path, enablePropertyFilter="true")
    with trio.fail_after(15):
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            await fill(client, addr, 10)
            assert (await client.invoke_sync(addr, heartbeat(sql("a < 3", 100)), 5)).code == 0
            assert indexes(await client.invoke_sync(addr, pull(None, sub_version=100), 5)) == [
                0,
                1,
                2,
            ]
            newer = await client.invoke_sync(addr, pull(None, sub_version=101), 5)
            assert newer.code == ResponseCode.SUBSCRIPTION_NOT_LATEST
            # An older version does not replace the expression.
            await client.invoke_sync(addr, heartbeat(sql("a > 7", 50)), 5)
            again = await client.invoke_sync(addr, pull(None, sub_version=100), 5)
            assert indexes(again) == [0, 1, 2]
            # A newer one does.
            await client.invoke_sync(addr, heartbeat(sql("a > 7", 200)), 5)
            assert indexes(await client.invoke_sync(addr, pull(None, sub_version=200), 5)) == [
                8,
                9,
            ]
            # A newer expression that does not compile drops the filter data.
            await client.invoke_sync(addr, heartbeat(sql("a >", 300)), 5)
            missing = await client.invoke_sync(addr, pull(None, sub_version=300), 5)
            assert missing.code == ResponseCode.FILTER_DATA_NOT_EXIST
            assert missing.remark == (
                "The broker's consumer filter data is not exist!Your expression may be wrong!"
            )
            filters = broker.data_plane.consumer_filter_manager
            assert filters.get(TOPIC, GROUP) is None


async def test_retry_topic_messages_are_filtered_with_filter_support_retry(
    tmp_path: Path,
) -> None:
    for support, wanted in (("true", ["1"]), ("false", ["0", "1"])):
        root = tmp_path / support
        settings = broker_settings(
            root,
            enablePropertyFilter="true",
            filterSupportRetry=support,
            messageDelayLevel="1s 1s 1s 1s 1s",
        )
        with trio.fail_after(20):
            async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
                addr = broker.broker_addr
                offsets = []
                for i in range(2):
                    stored = await client.invoke_sync(addr, send(i, a=str(i)), 5)
                    offsets.append(stored.decode_header(SendMessageResponseHeader).queue_offset)
                retry = f"%RETRY%{GROUP}"
                beat = heartbeat(sql("a = 1", 5), SubscriptionData.for_expression(retry, "*", 5))
                assert (await client.invoke_sync(addr, beat, 5)).code == ResponseCode.SUCCESS
                # Both messages go back (their commit-log offsets).
                got = await client.invoke_sync(addr, pull("TRUE"), 5)
                for message in decode_messages(got.body or b""):
                    header = ConsumerSendMsgBackRequestHeader(
                        offset=message.commit_log_offset,
                        group=GROUP,
                        delay_level=1,
                        origin_msg_id=None,
                        origin_topic=TOPIC,
                        max_reconsume_times=16,
                    )
                    back = RemotingCommand.request(RequestCode.CONSUMER_SEND_MSG_BACK, header)
                    assert (await client.invoke_sync(addr, back, 5)).code == ResponseCode.SUCCESS
                while True:
                    answer = await client.invoke_sync(
                        addr, pull("*", topic=retry, expression_type="TAG"), 5
                    )
                    if answer.code != ResponseCode.PULL_OFFSET_MOVED and (
                        answer.code != ResponseCode.PULL_NOT_FOUND
                    ):
                        header = answer.decode_header(PullMessageResponseHeader)
                        if header.max_offset >= 2:
                            break
                    await trio.sleep(0.1)
                answer = await client.invoke_sync(
                    addr, pull("*", topic=retry, expression_type="TAG"), 5
                )
                got_back = [m.properties["idx"] for m in decode_messages(answer.body or b"")]
                assert sorted(got_back) == wanted, support


def test_filter_table_versions_deaths_and_cleaning() -> None:
    now = [1_000]
    table = ConsumerFilterManager(lambda: now[0], lambda: 500, max_entries=2)
    table.register_all("g", [sql("a > 1", 10, "t1"), sql("b = 'x'", 10, "t2")])
    assert len(table) == 2
    first = table.get("t1", "g")
    assert first is not None and first.expression == "a > 1" and not first.is_dead()
    # A third entry does not fit.
    assert not table.register("t3", "g", "TRUE", "SQL92", 1)
    assert table.get("t3", "g") is None
    # A heartbeat without t2 makes it dead; the same version brings it back.
    now[0] = 2_000
    table.register_all("g", [sql("a > 1", 10, "t1")])
    second = table.get("t2", "g")
    assert second is not None and second.is_dead()
    assert table.register("t2", "g", "b = 'x'", "SQL92", 10)
    assert not second.is_dead()
    # A group that went away: everything dead, and cleaned after the span.
    table.unregister("g")
    assert all(data.is_dead() for data in table.by_group("g"))
    now[0] = 2_400
    assert table.clean() == 0
    now[0] = 2_600
    assert table.clean() == 2 and len(table) == 0
    # TAG subscriptions and empty expressions are not kept.
    assert not table.register("t1", "g", "*", "TAG", 1)
    assert not table.register("t1", "g", "", "SQL92", 1)
    assert len(table) == 0


async def test_a_long_expression_that_does_not_compile_is_refused_after_its_thread(
    tmp_path: Path,
) -> None:
    # Too long to compile on the event loop, and broken at its very end: the
    # pull carrying it waits for the worker thread's verdict, then is refused
    # (the same answer as for a short broken one), and the broker still serves.
    broken = " OR ".join(f"(a = {i} AND b IS NULL)" for i in range(600)) + " OR ("
    settings = broker_settings(tmp_path, enablePropertyFilter="true")
    with trio.fail_after(20):
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            await fill(client, addr, 3)
            for expression in (broken, "a > ("):
                refused = await client.invoke_sync(addr, pull(expression), 5)
                assert refused.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED, refused.remark
            assert indexes(await client.invoke_sync(addr, pull("a >= 1"), 5)) == [1, 2]


async def test_long_expressions_are_compiled_off_the_loop_and_bounded(tmp_path: Path) -> None:
    # ~12 KiB: compiled in a worker thread (tens of milliseconds of parsing).
    long_sql = " OR ".join(f"(a = {i} AND b IS NULL)" for i in range(600))
    assert 10_000 < len(long_sql) < 16_384
    settings = broker_settings(tmp_path, enablePropertyFilter="true")
    with trio.fail_after(20):
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            await fill(client, addr, 5)
            checked = await client.invoke_sync(addr, check_request(long_sql), 5)
            assert checked.code == ResponseCode.SUCCESS
            carried = await client.invoke_sync(addr, pull(long_sql), 5)
            assert indexes(carried) == [0, 1, 2, 3, 4]
            beat = await client.invoke_sync(addr, heartbeat(sql(long_sql, 7)), 5)
            assert beat.code == ResponseCode.SUCCESS
            assert indexes(await client.invoke_sync(addr, pull(None, sub_version=7), 5)) == [
                0,
                1,
                2,
                3,
                4,
            ]
            # Too much SQL in one heartbeat: refused whole, nothing registered.
            many = [sql(long_sql + f" OR a = {-i}", 8, f"T{i}") for i in range(25)]
            refused = await client.invoke_sync(addr, heartbeat(*many), 5)
            assert refused.code == ResponseCode.SYSTEM_ERROR
            assert "allowed in one heartbeat" in (refused.remark or "")
            filters = broker.data_plane.consumer_filter_manager
            assert all(filters.get(f"T{i}", GROUP) is None for i in range(25))
            assert filters.get(TOPIC, GROUP) is not None
