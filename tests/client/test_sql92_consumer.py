"""A pyrocket PushConsumer subscribed by SQL92 through a pyrocket broker with
``enablePropertyFilter=true``: it receives exactly the messages whose
properties match (a message given back returns through the retry topic),
its heartbeat carries the SQL92 subscription, and a broker without
property filtering, or an expression the broker cannot compile, stops the
consumer from starting, as Java's ``checkClientInBroker`` does."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.client import ClientError, MessageSelector, Producer, PushConsumer, new_message
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.message import MessageExt
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv
from tests.remoting.helpers import wait_until

TOPIC = "SqlConsumerTopic"


async def produce(namesrv: str, count: int) -> None:
    async with Producer("sql_producers", [namesrv], client_ip="127.0.0.1") as producer:
        for i in range(count):
            properties = {"a": str(i), "colour": ("red", "blue", "green")[i % 3]}
            message = new_message(TOPIC, b"body %d" % i, tags=f"T{i % 2}", properties=properties)
            await producer.send(message)


def sql_consumer(namesrv: str, group: str, expression: str, **options: object) -> PushConsumer:
    consumer = PushConsumer(
        group,
        [namesrv],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        **options,  # type: ignore[arg-type]
    )
    consumer.subscribe(TOPIC, MessageSelector.by_sql(expression))
    return consumer


async def take(consumer: PushConsumer, count: int) -> list[MessageExt]:
    return [await consumer.receive() for _ in range(count)]


async def test_an_sql92_consumer_gets_exactly_the_matching_messages(tmp_path: Path) -> None:
    expression = "a >= 10 AND (colour = 'red' OR colour = 'green') AND a NOT BETWEEN 20 AND 24"
    wanted = {i for i in range(40) if i >= 10 and i % 3 != 1 and not 20 <= i <= 24}
    with trio.fail_after(30):
        async with recording_namesrv(tmp_path / "ns") as ns:
            settings = broker_settings(
                tmp_path,
                [ns.addr],
                enablePropertyFilter="true",
                filterSupportRetry="true",
                messageDelayLevel="1s 1s 1s 1s 1s",
                autoCreateTopicEnable="true",
            )
            async with running_broker(settings) as broker:
                await produce(ns.addr, 40)
                async with sql_consumer(ns.addr, "sql_group", expression) as consumer:
                    got = await take(consumer, len(wanted))
                    with trio.move_on_after(0.5):
                        extra = await consumer.receive()
                        pytest.fail(f"unexpected {extra.properties}")
                    # The heartbeat registered the SQL92 subscription as Java's would.
                    manager = broker.data_plane.consumer_manager
                    registered = manager.find_subscription_data("sql_group", TOPIC)
                    assert registered is not None
                    assert registered.expression_type == "SQL92"
                    assert registered.sub_string == expression
                    assert registered.tags_set == () and registered.code_set == ()
                    filters = broker.data_plane.consumer_filter_manager
                    data = filters.get(TOPIC, "sql_group")
                    assert data is not None and data.client_version == registered.sub_version
                    # A message given back comes again through the retry topic.
                    again = next(m for m in got if m.properties["a"] == "12")
                    await consumer.reconsume_later(again)
                    (returned,) = await take(consumer, 1)
    assert sorted(int(m.properties["a"]) for m in got) == sorted(wanted)
    assert returned.properties["a"] == "12" and returned.reconsume_times == 1
    assert returned.uniq_key == again.uniq_key


@pytest.mark.parametrize(
    ("property_filter", "expression", "code", "remark"),
    [
        ("false", "a > 1", ResponseCode.SYSTEM_ERROR, "does not support"),
        ("true", "a >", ResponseCode.SUBSCRIPTION_PARSE_FAILED, "ParseException"),
        ("true", "a > 'x'", ResponseCode.SUBSCRIPTION_PARSE_FAILED, "cannot be compared"),
    ],
)
async def test_a_refused_sql92_subscription_stops_the_consumer(
    tmp_path: Path, property_filter: str, expression: str, code: int, remark: str
) -> None:
    with trio.fail_after(30):
        async with recording_namesrv(tmp_path / "ns") as ns:
            settings = broker_settings(
                tmp_path,
                [ns.addr],
                enablePropertyFilter=property_filter,
                autoCreateTopicEnable="true",
            )
            async with running_broker(settings) as broker:
                await produce(ns.addr, 1)
                consumer = sql_consumer(ns.addr, "refused_group", expression)
                with pytest.raises(ClientError) as caught:
                    async with consumer:
                        pytest.fail("the consumer started")
                # The consumer left: nothing of it stays registered.
                manager = broker.data_plane.consumer_manager
                await wait_until(lambda: manager.get_consumer_group_info("refused_group") is None)
    assert caught.value.code == code
    assert remark in str(caught.value)


def test_selectors_build_the_subscription_java_builds() -> None:
    by_sql = MessageSelector.by_sql("a > 1").subscription("T")
    assert (by_sql.sub_string, by_sql.expression_type) == ("a > 1", "SQL92")
    assert by_sql.tags_set == () and by_sql.code_set == () and by_sql.sub_version > 0
    by_tag = MessageSelector.by_tag("A || B").subscription("T")
    assert by_tag.expression_type == "TAG" and set(by_tag.tags_set) == {"A", "B"}
    with pytest.raises(ValueError, match="Expression can't be null"):
        MessageSelector.by_sql("").subscription("T")
