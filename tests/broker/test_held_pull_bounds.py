"""What held pulls may cost a broker, over real sockets: rounds of held pulls
with huge suspend timeouts, each dropped by its connection, leave no held
pull, no table entry and no memory behind; one connection holds at most its
bound and is answered at once beyond it; waking thousands of pulls with one
message answers every one of them; pulls and heartbeats naming what does not
exist, or listing more tags than allowed, leave nothing behind.
"""

from __future__ import annotations

import dataclasses
import gc
import random
import string
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
import trio

from pyrocket.broker.app import Broker
from pyrocket.broker.dataplane import DataPlane
from pyrocket.broker.longpolling import PullRequest, PullRequestHoldService
from pyrocket.broker.message_filter import MAX_SUBSCRIPTION_TAGS, tag_expression_filter
from pyrocket.errors import ConnectionClosedError
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies.admin import SubscriptionGroupConfig
from pyrocket.protocol.bodies.client import SubscriptionData
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, encode
from pyrocket.protocol.frame import MAX_HEADER_SIZE
from pyrocket.remoting import RemotingClient, ResponseFuture
from tests.broker.helpers import broker_settings, pull_request, running_broker, send_request

TOPIC = "HeldPullTopic"
#: A suspend timeout no test outlives (about 146,000 years).
HUGE_SUSPEND_MS = 1 << 62
PULLS_PER_ROUND = 2_000
CONNECTIONS = 4
ROUNDS = 3


@asynccontextmanager
async def broker_with_topic(root: Path, **extra: object) -> AsyncIterator[Broker]:
    async with running_broker(broker_settings(root, **extra), timing=None) as broker:
        await broker.topic_config_manager.update_topic_config(
            TopicConfig(topic_name=TOPIC, read_queue_nums=4, write_queue_nums=4)
        )
        yield broker


def plane_of(broker: Broker) -> DataPlane:
    assert broker.data_plane is not None
    return broker.data_plane


def state(service: PullRequestHoldService) -> str:
    return (
        f"held {service.held}, waking {service.waking}, tables {service.table_sizes()}, "
        f"woken by arrival {service.woken_by_arrival}, by timeout {service.woken_by_timeout}, "
        f"refused {service.refused_over_limit}"
    )


async def wait_until_held(service: PullRequestHoldService, count: int) -> None:
    with trio.move_on_after(60) as scope:
        while service.held != count:  # noqa: ASYNC110 (the service has no event for it)
            await trio.sleep(0.005)
    assert not scope.cancelled_caught, f"waiting for {count} held: {state(service)}"


async def wait_until_nothing_held(plane: DataPlane) -> None:
    service = plane.hold_service
    with trio.move_on_after(60) as scope:
        while service.held or any(service.table_sizes().values()):  # noqa: ASYNC110
            await trio.sleep(0.005)
    assert not scope.cancelled_caught, f"waiting for nothing held: {state(service)}"


async def send_pulls(
    client: RemotingClient, addr: str, count: int, *, queue_id: int = 0, offset: int = 0
) -> list[ResponseFuture]:
    futures = []
    for _ in range(count):
        request = pull_request(TOPIC, queue_id, offset, suspend_ms=HUGE_SUSPEND_MS)
        futures.append(await client.invoke_async(addr, request, 3600))
    return futures


def assert_nothing_left(plane: DataPlane) -> None:
    service = plane.hold_service
    assert service.held == 0 and service.waking == 0
    assert service.table_sizes() == dict.fromkeys(service.table_sizes(), 0)
    assert plane.consumer_manager.connections_tracked() == 0


def live_memory() -> tuple[int, int]:
    """(bytes traced by tracemalloc, objects tracked by the collector)."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0], len(gc.get_objects())


async def test_rounds_of_held_pulls_dropped_by_their_connections_leave_nothing(
    tmp_path: Path,
) -> None:
    measured: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        with trio.fail_after(120):
            async with broker_with_topic(tmp_path) as broker:
                plane = plane_of(broker)
                service = plane.hold_service
                addr = broker.broker_addr
                # One message, so the pulls wait at offset 1 of a real queue.
                async with RemotingClient() as producer:
                    sent = await producer.invoke_sync(addr, send_request(TOPIC, 0, b"seen"), 5)
                    assert sent.code == ResponseCode.SUCCESS
                for _ in range(ROUNDS):
                    futures: list[ResponseFuture] = []
                    async with AsyncExitStack() as stack:
                        for _ in range(CONNECTIONS):
                            client = await stack.enter_async_context(RemotingClient())
                            futures += await send_pulls(
                                client, addr, PULLS_PER_ROUND // CONNECTIONS, offset=1
                            )
                        await wait_until_held(service, PULLS_PER_ROUND)
                        done = [f.response or f.error for f in futures if f.done()]
                        assert not done, done[:3]
                    # The clients have closed their connections.
                    await wait_until_nothing_held(plane)
                    assert_nothing_left(plane)
                    assert all(future.done() for future in futures)
                    del futures
                    measured.append(live_memory())
                assert service.woken_by_arrival == service.woken_by_timeout == 0
    finally:
        tracemalloc.stop()
    # The first round warms caches and pools; every later one ends where it did.
    print("traced bytes, objects after each round:", measured)
    base_bytes, base_objects = measured[1]
    for traced, objects in measured[2:]:
        assert traced - base_bytes < 256 * 1024, measured
        assert objects - base_objects < 500, measured


async def test_a_connection_holds_at_most_its_bound_and_is_answered_at_once_beyond(
    tmp_path: Path,
) -> None:
    bound = 8
    with trio.fail_after(30):
        async with broker_with_topic(tmp_path) as broker:
            plane = plane_of(broker)
            service = plane.hold_service
            service.max_held_per_connection = bound
            addr = broker.broker_addr
            async with RemotingClient() as greedy, RemotingClient() as other:
                held = await send_pulls(greedy, addr, bound)
                await wait_until_held(service, bound)
                # Beyond the bound: answered at once, as a pull without the
                # suspend flag (nothing new: PULL_NOT_FOUND, with the offsets).
                for _ in range(3):
                    request = pull_request(TOPIC, 0, 0, suspend_ms=HUGE_SUSPEND_MS)
                    answer = await greedy.invoke_sync(addr, request, 5)
                    assert answer.code == ResponseCode.PULL_NOT_FOUND
                    ext = answer.ext_fields or {}
                    assert (ext["nextBeginOffset"], ext["maxOffset"]) == ("0", "0")
                assert service.held == bound and service.table_sizes()["connections"] == 1
                assert service.refused_over_limit == 3
                # The bound is per connection: another one still holds.
                more = await send_pulls(other, addr, bound)
                await wait_until_held(service, 2 * bound)
                assert not any(future.done() for future in held + more)
            await wait_until_nothing_held(plane)
            assert_nothing_left(plane)


async def test_one_message_wakes_thousands_of_held_pulls_and_answers_each(
    tmp_path: Path,
) -> None:
    with trio.fail_after(120):
        async with broker_with_topic(tmp_path) as broker:
            plane = plane_of(broker)
            service = plane.hold_service
            addr = broker.broker_addr
            async with AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(RemotingClient()) for _ in range(CONNECTIONS)
                ]
                futures: list[ResponseFuture] = []
                for client in clients:
                    futures += await send_pulls(client, addr, PULLS_PER_ROUND // CONNECTIONS)
                # Pulls of another queue stay held: a wake touches one queue.
                others = await send_pulls(clients[0], addr, 10, queue_id=1)
                await wait_until_held(service, PULLS_PER_ROUND + 10)
                sent = await clients[0].invoke_sync(addr, send_request(TOPIC, 0, b"wake"), 5)
                assert sent.code == ResponseCode.SUCCESS
                with trio.move_on_after(60) as scope:
                    answers = [await future for future in futures]
                answered = sum(future.done() for future in futures)
                assert not scope.cancelled_caught, f"{answered} answered; {state(service)}"
                assert {answer.code for answer in answers} == {ResponseCode.SUCCESS}
                assert {(a.ext_fields or {})["nextBeginOffset"] for a in answers} == {"1"}
                assert service.woken_by_arrival == PULLS_PER_ROUND
                assert service.held == 10 and not any(f.done() for f in others)
            await wait_until_nothing_held(plane)
            assert_nothing_left(plane)


async def test_pulls_naming_what_does_not_exist_leave_no_table_entries(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with broker_with_topic(tmp_path, autoCreateSubscriptionGroup="false") as broker:
            plane = plane_of(broker)
            store = broker.store
            groups = broker.subscription_group_manager
            addr = broker.broker_addr
            async with RemotingClient() as client:
                unknown_topic = pull_request(
                    "NoSuchTopic", 0, 0, suspend_ms=HUGE_SUSPEND_MS, group="NoSuchGroup"
                )
                answer = await client.invoke_sync(addr, unknown_topic, 5)
                assert answer.code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST
                await groups.update_subscription_group_config(
                    SubscriptionGroupConfig(group_name="KnownGroup")
                )
                for topic in ("NoSuchTopic", "NoSuchTopic2"):
                    request = pull_request(
                        topic, 0, 0, suspend_ms=HUGE_SUSPEND_MS, group="KnownGroup"
                    )
                    answer = await client.invoke_sync(addr, request, 5)
                    assert answer.code == ResponseCode.TOPIC_NOT_EXIST
                # A held pull of a queue never written, then its connection goes.
                held = pull_request(TOPIC, 3, 0, suspend_ms=HUGE_SUSPEND_MS, group="KnownGroup")
                future = await client.invoke_async(addr, held, 3600)
                await wait_until_held(plane.hold_service, 1)
                assert not future.done()
            await wait_until_nothing_held(plane)
            assert_nothing_left(plane)
            assert await groups.find_subscription_group_config("NoSuchGroup") is None
            for topic in ("NoSuchTopic", "NoSuchTopic2", TOPIC):
                assert store.queue_ids(topic) == []
                assert plane.consumer_offset_manager.query_offsets("KnownGroup", topic) is None
            assert store.consume_queue(TOPIC, 3) is None
            assert broker.topic_config_manager.select_topic_config("NoSuchTopic") is None


def random_tags(rng: random.Random, count: int) -> list[str]:
    alphabet = string.ascii_letters + string.digits + " _-é"
    # Short tags and long ones (long ones are hashed without the cache).
    lengths = [rng.choice((rng.randint(0, 12), rng.randint(60, 100))) for _ in range(count)]
    return ["".join(rng.choices(alphabet, k=length)) for length in lengths]


def test_a_pulls_filter_has_the_codes_javas_subscription_data_has() -> None:
    rng = random.Random(7)
    for _ in range(200):
        expression = "||".join(random_tags(rng, rng.randint(1, 20)))
        if not expression.replace("||", "") or expression == "*":
            continue
        expected = SubscriptionData.for_expression(TOPIC, expression, 0)
        assert tag_expression_filter(TOPIC, expression).codes == frozenset(expected.code_set)


def heartbeat(group: str, subscription: SubscriptionData) -> RemotingCommand:
    body = {
        "clientID": "127.0.0.1@bounds",
        "consumerDataSet": [
            {
                "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
                "consumeType": "CONSUME_PASSIVELY",
                "groupName": group,
                "messageModel": "CLUSTERING",
                "subscriptionDataSet": [subscription.to_json()],
                "unitMode": False,
            }
        ],
        "producerDataSet": [],
    }
    return RemotingCommand.request(RequestCode.HEART_BEAT, body=fastjson.dumps_bytes(body))


def many_tags_subscription(count: int) -> SubscriptionData:
    tags = tuple(f"tag{n}" for n in range(count))
    return SubscriptionData(
        topic=TOPIC,
        sub_string="||".join(tags),
        tags_set=tags,
        code_set=tuple(range(count)),
        sub_version=1,
    )


@pytest.mark.parametrize("tags", [100_000, MAX_SUBSCRIPTION_TAGS + 1])
async def test_subscriptions_with_too_many_tags_are_refused_and_leave_nothing(
    tmp_path: Path, tags: int
) -> None:
    expression = "||".join(f"tag{n}" for n in range(tags))
    with trio.fail_after(30):
        async with broker_with_topic(tmp_path) as broker:
            plane = plane_of(broker)
            addr = broker.broker_addr
            async with RemotingClient() as client:
                request = pull_request(
                    TOPIC, 0, 0, subscription=expression, suspend_ms=HUGE_SUSPEND_MS
                )
                if len(expression) > MAX_HEADER_SIZE:
                    # A pull carries its expression in the header: past the
                    # header bound the frame itself is refused first.
                    with pytest.raises(ConnectionClosedError):
                        await client.invoke_sync(addr, request, 5)
                else:
                    answer = await client.invoke_sync(addr, request, 5)
                    assert answer.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
                answer = await client.invoke_sync(
                    addr, heartbeat("ManyTags", many_tags_subscription(tags)), 5
                )
                assert answer.code == ResponseCode.SYSTEM_ERROR
                assert str(MAX_SUBSCRIPTION_TAGS) in (answer.remark or "")
                assert plane.consumer_manager.get_consumer_group_info("ManyTags") is None
            assert_nothing_left(plane)


async def test_the_most_tags_allowed_still_filter_as_listed(tmp_path: Path) -> None:
    tags = [f"tag{n}" for n in range(MAX_SUBSCRIPTION_TAGS)]
    with trio.fail_after(30):
        async with broker_with_topic(tmp_path) as broker:
            addr = broker.broker_addr
            async with RemotingClient() as client:
                for body, tag in ((b"unlisted", "other"), (b"listed", tags[-1])):
                    sent = await client.invoke_sync(addr, send_request(TOPIC, 0, body, tags=tag), 5)
                    assert sent.code == ResponseCode.SUCCESS
                request = pull_request(TOPIC, 0, 0, subscription="||".join(tags))
                answer = await client.invoke_sync(addr, request, 5)
                assert answer.code == ResponseCode.SUCCESS
                assert b"listed" in (answer.body or b"") and b"unlisted" not in (answer.body or b"")
                # Through the heartbeat's subscription as well.
                registered = SubscriptionData.for_expression(TOPIC, "||".join(tags), 1)
                hb = await client.invoke_sync(addr, heartbeat("test_consumer", registered), 5)
                assert hb.code == ResponseCode.SUCCESS
                request = pull_request(TOPIC, 0, 0, subscription="*")
                plain = dataclasses.replace(
                    request, ext_fields={**(request.ext_fields or {}), "sysFlag": "0"}
                )
                answer = await client.invoke_sync(addr, plain, 5)
                assert answer.code == ResponseCode.SUCCESS
                assert b"listed" in (answer.body or b"") and b"unlisted" not in (answer.body or b"")
            # The group goes with the connection that was its only member.
            plane = plane_of(broker)
            while plane.consumer_manager.get_consumer_group_info("test_consumer"):  # noqa: ASYNC110
                await trio.sleep(0.005)
            assert plane.consumer_manager.connections_tracked() == 0


class FakeConnection:
    """Just what the hold service looks at: whether it is open."""

    remote_address = "127.0.0.1:1"

    def __init__(self) -> None:
        self.is_open = True


async def test_pulls_of_a_connection_whose_close_event_was_lost_go_at_the_next_sweep() -> None:
    woken: list[object] = []

    async def wake(pull: object) -> None:
        woken.append(pull)

    service = PullRequestHoldService(lambda topic, queue_id: 0, wake)
    request = pull_request(TOPIC, 0, 0, suspend_ms=HUGE_SUSPEND_MS)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            gone, alive = FakeConnection(), FakeConnection()
            for conn in (gone, alive, gone):
                pull = PullRequest(
                    conn,  # type: ignore[arg-type]
                    request,
                    TOPIC,
                    0,
                    0,
                    tag_expression_filter(TOPIC, "*"),
                    trio.current_time() + 3600,
                )
                assert service.suspend_pull_request(pull)
            gone.is_open = False
            assert service.drop_closed_connections() == 1
            assert service.held == 1 and service.table_sizes()["connections"] == 1
            alive.is_open = False
            assert service.drop_closed_connections() == 1
            assert service.held == 0 and not any(service.table_sizes().values())
            # A closed connection holds nothing more.
            assert not service.suspend_pull_request(pull)
            nursery.cancel_scope.cancel()
    assert woken == []


async def test_a_peer_that_does_not_read_its_answers_delays_no_other_connections(
    tmp_path: Path,
) -> None:
    """A raw socket holds many pulls of big messages and never reads; the
    pull another client holds on the same queue is answered all the same."""
    stalled = 1_000
    with trio.fail_after(60):
        async with broker_with_topic(tmp_path) as broker:
            plane = plane_of(broker)
            service = plane.hold_service
            addr = broker.broker_addr
            host, port = addr.rsplit(":", 1)
            sock = await trio.open_tcp_stream(host, int(port))
            async with sock, RemotingClient() as client:
                frames = [
                    encode(
                        dataclasses.replace(
                            pull_request(TOPIC, 0, 0, suspend_ms=HUGE_SUSPEND_MS), opaque=n + 1
                        )
                    )
                    for n in range(stalled)
                ]
                await sock.send_all(b"".join(frames))
                await wait_until_held(service, stalled)
                [other] = await send_pulls(client, addr, 1)
                await wait_until_held(service, stalled + 1)
                # Messages big enough that the stalled peer's answers fill
                # every buffer on the way long before they are all written.
                body = b"x" * 12_000
                for _ in range(4):
                    sent = await client.invoke_sync(addr, send_request(TOPIC, 0, body), 5)
                    assert sent.code == ResponseCode.SUCCESS
                answer = await other
                assert answer.code == ResponseCode.SUCCESS
                # Answered in its turn, not after the stalled peer's answers:
                # most of those still wait.
                assert service.waking > stalled // 2
            await wait_until_nothing_held(plane)
            assert_nothing_left(plane)
