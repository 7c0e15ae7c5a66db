"""Reproducers for what the server fuzz campaign (fuzz/servers.py) found.

Each test states the behaviour pyrocket promises for the input the campaign
sent: a processor answers bad input with a clear error and logs no traceback,
and the request's effect is what Java's would be. An open finding is a test
marked xfail (strict), listed in OPEN_FINDINGS; the mark goes once fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from pathlib import Path

import pytest
import trio

from pyrocket.broker.app import Broker
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, encode
from pyrocket.protocol.headers import CreateTopicRequestHeader, GetTopicStatsInfoRequestHeader
from pyrocket.protocol.message import MessageSysFlag, decode_messages
from tests.broker.helpers import broker_settings, pull_request, running_broker, send_request
from tests.namesrv.helpers import RawConnection

#: How the open findings below appear in fuzz/servers.py's summary (its
#: ``distinct_findings``); the short CI run tolerates these and no others.
OPEN_FINDINGS: tuple[str, ...] = ()


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """pyrocket log records that carry an exception (a processor or task
    that raised)."""
    return [r for r in caplog.records if r.name.startswith("pyrocket") and r.exc_info is not None]


def create_topic(topic: str) -> RemotingCommand:
    header = CreateTopicRequestHeader(
        topic=topic,
        default_topic="TBW102",
        read_queue_nums=4,
        write_queue_nums=4,
        perm=6,
        topic_filter_type="SINGLE_TAG",
        topic_sys_flag=0,
        order=False,
    )
    return RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_TOPIC, header)


async def created_topics(broker: Broker, topics: list[str], seconds: float) -> list[str]:
    """Those of ``topics`` the broker holds, once it holds them all or
    after ``seconds``."""

    def held() -> list[str]:
        return [t for t in topics if broker.topic_config_manager.select_topic_config(t)]

    with trio.move_on_after(seconds):
        while len(held()) < len(topics):  # noqa: ASYNC110 (no event to wait on)
            await trio.sleep(0.01)
    return held()


async def test_create_topic_from_a_client_that_leaves_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pyrocket")
    topics = [f"FuzzLeaver{index}" for index in range(10)]
    async with running_broker(broker_settings(tmp_path)) as broker:
        with trio.fail_after(30):
            for topic in topics:
                conn = await RawConnection.open(broker.listen_port)
                await conn.send(encode(create_topic(topic).replace(opaque=1)))
                await conn.aclose()
            # Java writes the answer (failing quietly on a closed channel) and
            # goes on to create the topic: every topic must appear.
            created = await created_topics(broker, topics, 3)
            # The broker still serves, and creates topics for clients that wait.
            conn = await RawConnection.open(broker.listen_port)
            answer = await conn.call(create_topic("FuzzStayer"), opaque=7)
            await conn.aclose()
    assert answer.code == ResponseCode.SUCCESS
    assert tracebacks(caplog) == []
    assert created == topics


@pytest.mark.parametrize(
    "flag", [MessageSysFlag.BORNHOST_V6_FLAG, MessageSysFlag.STOREHOSTADDRESS_V6_FLAG]
)
async def test_send_with_an_ipv6_host_flag_from_an_ipv4_client(
    flag: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pyrocket")
    topic = "FuzzV6Flag"
    async with running_broker(broker_settings(tmp_path)) as broker:
        with trio.fail_after(30):
            conn = await RawConnection.open(broker.listen_port)
            assert (await conn.call(create_topic(topic), opaque=1)).code == ResponseCode.SUCCESS
            request = send_request(topic, 0, b"flagged")
            ext = dict(request.ext_fields or {})
            ext["f"] = str(int(ext["f"]) | flag)  # sysFlag in SendMessageRequestHeaderV2
            answer = await conn.call(request.replace(ext_fields=ext), opaque=2)
            after = await conn.call(send_request(topic, 0, b"plain"), opaque=3)
            pulled = await conn.call(pull_request(topic, 0, 0), opaque=4)
            await conn.aclose()
    assert after.code == ResponseCode.SUCCESS
    bodies = [m.body for m in decode_messages(pulled.body or b"")]
    # Either refused with a clear answer (nothing stored) or stored as a
    # record that reads back, with the host flags of the real hosts.
    assert bodies in ([b"plain"], [b"flagged", b"plain"])
    assert (answer.code == ResponseCode.SUCCESS) == (len(bodies) == 2)
    assert tracebacks(caplog) == []


async def largest_pause_while(call: Awaitable[RemotingCommand]) -> tuple[float, RemotingCommand]:
    """Run ``call`` beside a task that ticks every 10 ms; the longest gap
    between ticks (how long the event loop was blocked) and the answer."""
    largest = 0.0
    done = trio.Event()

    async def tick() -> None:
        nonlocal largest
        last = trio.current_time()
        while not done.is_set():
            await trio.sleep(0.01)
            now = trio.current_time()
            largest = max(largest, now - last)
            last = now

    answer: RemotingCommand | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick)
        answer = await call
        done.set()
    return largest, answer


async def test_a_huge_queue_count_does_not_block_the_broker(tmp_path: Path) -> None:
    # 150,000 queues keep the test short; the campaign's topic had 2^31-1.
    topic = "FuzzManyQueues"
    async with running_broker(broker_settings(tmp_path)) as broker:
        with trio.fail_after(120):
            conn = await RawConnection.open(broker.listen_port)
            request = create_topic(topic)
            ext = {**(request.ext_fields or {}), "writeQueueNums": "150000"}
            created = await conn.call(request.replace(ext_fields=ext), opaque=1)
            stats = RemotingCommand.request(
                RequestCode.GET_TOPIC_STATS_INFO, GetTopicStatsInfoRequestHeader(topic=topic)
            )
            pause, answer = await largest_pause_while(conn.call(stats, opaque=2))
            await conn.aclose()
    # Refusing such a topic, or answering without holding up every other
    # connection, both keep the promise.
    if created.code == ResponseCode.SUCCESS:
        assert answer.code in (ResponseCode.SUCCESS, ResponseCode.SYSTEM_ERROR)
    assert pause < 1.0, f"the event loop was blocked for {pause:.1f} s"
