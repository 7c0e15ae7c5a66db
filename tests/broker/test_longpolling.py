"""Long polling over real sockets: a PULL_MESSAGE that finds nothing is held
and answered the moment a matching message is stored, is not woken by a
message its subscription filters out, and is answered with Java's
PULL_NOT_FOUND when its suspend timeout passes with nothing new.

The arrival latency is measured from just before the SEND_MESSAGE_V2 leaves
the producer to the held pull's answer reaching the consumer.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from pyrocket.broker.app import Broker
from pyrocket.broker.longpolling import PullRequestHoldService
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, pull_request, running_broker, send_request
from tests.broker.java_layout import decode_body

TOPIC = "LongPollTopic"
#: What a push consumer asks for (brokerSuspendMaxTimeMillis is 15 s); the
#: tests that need a pull to time out use a short one instead.
LONG_SUSPEND_MS = 15_000
ROUNDS = 20


@asynccontextmanager
async def broker_with_topic(root: Path) -> AsyncIterator[tuple[Broker, PullRequestHoldService]]:
    async with running_broker(broker_settings(root), timing=None) as broker:
        await broker.topic_config_manager.update_topic_config(
            TopicConfig(topic_name=TOPIC, read_queue_nums=1, write_queue_nums=1)
        )
        assert broker.data_plane is not None
        yield broker, broker.data_plane.hold_service


async def wait_held(service: PullRequestHoldService, count: int) -> None:
    """Until ``count`` pulls are held (the service has no event for that)."""
    while service.held != count:  # noqa: ASYNC110
        await trio.sleep(0.001)


class HeldPull:
    """A pull sent in the background; ``answer`` and ``answered_at`` are set
    when its answer arrives."""

    def __init__(self) -> None:
        self.answer: RemotingCommand | None = None
        self.answered_at = 0.0
        self.done = trio.Event()

    async def run(self, client: RemotingClient, addr: str, request: RemotingCommand) -> None:
        self.answer = await client.invoke_sync(addr, request, 30)
        self.answered_at = trio.current_time()
        self.done.set()


async def test_a_held_pull_is_answered_as_soon_as_a_matching_message_arrives(
    tmp_path: Path,
) -> None:
    latencies: list[float] = []
    with trio.fail_after(30):
        async with (
            broker_with_topic(tmp_path) as (broker, service),
            RemotingClient() as consumer,
            RemotingClient() as producer,
            trio.open_nursery() as nursery,
        ):
            addr = broker.broker_addr
            for offset in range(ROUNDS):
                pull = HeldPull()
                request = pull_request(
                    TOPIC, 0, offset, subscription="TagA", suspend_ms=LONG_SUSPEND_MS
                )
                nursery.start_soon(pull.run, consumer, addr, request)
                await wait_held(service, 1)
                assert not pull.done.is_set()
                body = f"message {offset}".encode()
                sent_at = trio.current_time()
                sent = await producer.invoke_sync(addr, send_request(TOPIC, 0, body), 5)
                assert sent.code == ResponseCode.SUCCESS
                await pull.done.wait()
                latencies.append(pull.answered_at - sent_at)
                assert pull.answer is not None and pull.answer.code == ResponseCode.SUCCESS
                assert [m.body for m in decode_body(pull.answer.body or b"")] == [body]
                assert (pull.answer.ext_fields or {})["nextBeginOffset"] == str(offset + 1)
            assert service.woken_by_arrival == ROUNDS and service.woken_by_timeout == 0
    print(
        f"held pull answered {statistics.median(latencies) * 1000:.2f} ms (median), "
        f"{max(latencies) * 1000:.2f} ms (max) after the send left the producer"
    )
    assert max(latencies) < 0.050


async def test_a_message_the_subscription_filters_out_does_not_wake_a_held_pull(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        async with (
            broker_with_topic(tmp_path) as (broker, service),
            RemotingClient() as consumer,
            RemotingClient() as producer,
            trio.open_nursery() as nursery,
        ):
            addr = broker.broker_addr
            pull = HeldPull()
            request = pull_request(TOPIC, 0, 0, subscription="TagA", suspend_ms=LONG_SUSPEND_MS)
            nursery.start_soon(pull.run, consumer, addr, request)
            await wait_held(service, 1)
            for n in range(3):
                other = send_request(TOPIC, 0, f"other {n}".encode(), tags="TagB")
                assert (await producer.invoke_sync(addr, other, 5)).code == ResponseCode.SUCCESS
            with trio.move_on_after(0.3):
                await pull.done.wait()
            assert not pull.done.is_set()
            assert service.held == 1 and service.woken_by_arrival == 0
            # A matching message then wakes it; the body holds only that one.
            wanted = send_request(TOPIC, 0, b"wanted", tags="TagA")
            assert (await producer.invoke_sync(addr, wanted, 5)).code == ResponseCode.SUCCESS
            await pull.done.wait()
            assert pull.answer is not None and pull.answer.code == ResponseCode.SUCCESS
            assert [m.body for m in decode_body(pull.answer.body or b"")] == [b"wanted"]
            assert (pull.answer.ext_fields or {})["nextBeginOffset"] == "4"
            assert service.woken_by_arrival == 1


async def test_with_nothing_new_a_held_pull_is_answered_at_its_suspend_timeout(
    tmp_path: Path,
) -> None:
    suspend_ms = 300
    with trio.fail_after(30):
        async with (
            broker_with_topic(tmp_path) as (broker, service),
            RemotingClient() as client,
            trio.open_nursery() as nursery,
        ):
            addr = broker.broker_addr
            # An empty queue, then one with a message the pull has seen.
            for offset, remark in ((0, "NO_MESSAGE_IN_QUEUE"), (1, "OFFSET_OVERFLOW_ONE")):
                if offset:
                    sent = await client.invoke_sync(addr, send_request(TOPIC, 0, b"seen"), 5)
                    assert sent.code == ResponseCode.SUCCESS
                pull = HeldPull()
                request = pull_request(TOPIC, 0, offset, suspend_ms=suspend_ms)
                started = trio.current_time()
                nursery.start_soon(pull.run, client, addr, request)
                await wait_held(service, 1)
                await pull.done.wait()
                waited = pull.answered_at - started
                answer = pull.answer
                assert answer is not None
                assert (answer.code, answer.remark) == (ResponseCode.PULL_NOT_FOUND, remark)
                ext = answer.ext_fields or {}
                assert (ext["nextBeginOffset"], ext["minOffset"], ext["maxOffset"]) == (
                    str(offset),
                    "0",
                    str(offset),
                )
                assert answer.body is None
                print(f"offset {offset}: answered after {waited * 1000:.1f} ms")
                assert suspend_ms / 1000 <= waited < suspend_ms / 1000 + 0.05
            assert service.woken_by_timeout == 2 and service.held == 0
