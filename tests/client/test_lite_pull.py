"""LitePullConsumer over real sockets against ``pyrocket up``: a group
shares a topic and polls everything once; assign with seek, seek to begin
and to end; pause and resume; explicit and automatic commits (only of what
poll returned) and a restart from them; an empty poll's timeout; and a
buffer that stays bounded while the application does not poll."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from pyrocket.cli.up import Running
from pyrocket.client import ClientError, LitePullConsumer
from pyrocket.client.local_offsets import store_path
from pyrocket.client.producer import Message, Producer, new_message
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumeType,
    GetConsumerListByGroupResponseBody,
    HeartbeatData,
    MessageModel,
    MessageQueue,
)
from pyrocket.protocol.bodies.offset_file import decode_offset_file
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    PullMessageRequestHeader,
    PullMessageResponseHeader,
    QueryConsumerOffsetResponseHeader,
    UpdateConsumerOffsetRequestHeader,
)
from pyrocket.protocol.message import MessageExt
from tests.client.helpers import ScriptedCluster, route_to, running_up
from tests.client.test_consumer import pulled
from tests.remoting.helpers import running_server, wait_until

TOPIC = "LitePullTopic"
FIRST = ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET


def by_index(queues: Sequence[MessageQueue], message: Message, arg: object) -> MessageQueue:
    assert isinstance(arg, int)
    return queues[arg % len(queues)]


async def produce(namesrv: str, indexes: range, queue_id: int | None = None) -> None:
    """Message i (property idx=i) to queue ``queue_id``, else to queue i % 4."""
    async with Producer("lite_producers", [namesrv], client_ip="127.0.0.1") as producer:
        for i in indexes:
            message = new_message(TOPIC, f"body {i}".encode(), properties={"idx": str(i)})
            target = i if queue_id is None else queue_id
            await producer.send_orderly(message, target, selector=by_index)


def lite(namesrv: str, group: str, **options: object) -> LitePullConsumer:
    options.setdefault("consume_from", FIRST)
    return LitePullConsumer(group, [namesrv], client_ip="127.0.0.1", **options)  # type: ignore[arg-type]


def indexes(messages: Sequence[MessageExt]) -> list[int]:
    return [int(m.properties["idx"]) for m in messages]


async def poll_until(consumer: LitePullConsumer, count: int) -> list[MessageExt]:
    got: list[MessageExt] = []
    while len(got) < count:
        got.extend(await consumer.poll(timeout=5))
    return got


async def nothing_more(consumer: LitePullConsumer, wait: float = 0.3) -> None:
    extra = await consumer.poll(timeout=wait)
    assert extra == [], f"unexpected {indexes(extra)}"


def committed_at_broker(running: Running, group: str) -> dict[int, int]:
    dp = running.broker.data_plane
    assert dp is not None
    return {
        q: dp.consumer_offset_manager.query_offset(group, TOPIC, q)
        for q in running.broker.store.queue_ids(TOPIC)
    }


def ends(running: Running) -> dict[int, int]:
    store = running.broker.store
    return {q: store.get_max_offset_in_queue(TOPIC, q) for q in store.queue_ids(TOPIC)}


async def test_a_group_shares_a_topic_and_polls_everything_once(tmp_path: Path) -> None:
    count = 60
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, range(1))  # creates the topic (4 queues)
            one, two = lite(ns, "lite_shared"), lite(ns, "lite_shared")
            await one.subscribe(TOPIC)
            await two.subscribe(TOPIC)
            async with one, two:

                def settled() -> bool:
                    a, b = one.assignment, two.assignment
                    return len(a) == len(b) == 2 and not a & b

                # The broker tells the first consumer when the second joins.
                await wait_until(settled, 0.02)
                await produce(ns, range(1, count + 1))
                got: list[MessageExt] = []
                done = trio.Event()

                async def drain(source: LitePullConsumer) -> None:
                    while True:
                        batch = await source.poll(timeout=1)
                        assert len(batch) <= 10  # pull_batch_size
                        assert all(
                            m.queue_id in {q.queue_id for q in source.assignment} for m in batch
                        )
                        got.extend(batch)
                        if len(got) >= count + 1:
                            done.set()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(drain, one)
                    nursery.start_soon(drain, two)
                    await done.wait()
                    await trio.sleep(0.3)  # a duplicate would show up now
                    nursery.cancel_scope.cancel()
            # Closing committed what was polled.
            assert committed_at_broker(running, "lite_shared") == ends(running)
    counts = Counter(indexes(got))
    assert set(counts) == set(range(count + 1)) and max(counts.values()) == 1
    for m in got:
        assert m.topic == TOPIC and m.body == f"body {m.properties['idx']}".encode()


async def test_assign_and_seek(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, range(20))
            async with lite(ns, "lite_seek", auto_commit=False) as consumer:
                queues = await consumer.fetch_message_queues(TOPIC)
                assert sorted(q.queue_id for q in queues) == [0, 1, 2, 3]
                await consumer.assign(queues)
                assert consumer.assignment == queues
                assert sorted(indexes(await poll_until(consumer, 20))) == list(range(20))
                await nothing_more(consumer)
                q1 = next(q for q in queues if q.queue_id == 1)
                # Queue 1 holds 1, 5, 9, 13, 17 at offsets 0..4.
                await consumer.seek_to_begin(q1)
                again = await poll_until(consumer, 5)
                assert indexes(again) == [1, 5, 9, 13, 17]
                assert [m.queue_offset for m in again] == [0, 1, 2, 3, 4]
                await consumer.seek(q1, 3)
                assert indexes(await poll_until(consumer, 2)) == [13, 17]
                await nothing_more(consumer)
                await consumer.seek(q1, 1)
                await consumer.seek_to_end(q1)  # the seek before it is void
                await nothing_more(consumer)
                await produce(ns, range(20, 21), queue_id=1)
                assert indexes(await poll_until(consumer, 1)) == [20]
                with pytest.raises(ClientError, match="Seek offset illegal"):
                    await consumer.seek(q1, 99)
                with pytest.raises(ClientError, match="not in assigned list"):
                    await consumer.seek(MessageQueue(TOPIC, "nobody", 0), 0)
                with pytest.raises(RuntimeError):
                    await consumer.subscribe(TOPIC)
                # Nothing was committed: auto_commit is off.
                assert set(committed_at_broker(running, "lite_seek").values()) == {-1}


async def test_pause_and_resume(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, range(4))
            async with lite(ns, "lite_pause") as consumer:
                queues = await consumer.fetch_message_queues(TOPIC)
                await consumer.assign(queues)
                assert sorted(indexes(await poll_until(consumer, 4))) == [0, 1, 2, 3]
                q2 = next(q for q in queues if q.queue_id == 2)
                consumer.pause([q2])
                await produce(ns, range(4, 16))
                got = await poll_until(consumer, 9)
                assert sorted(indexes(got)) == [4, 5, 7, 8, 9, 11, 12, 13, 15]
                await nothing_more(consumer, 0.5)  # 6, 10, 14 are held back
                consumer.resume([q2])
                assert sorted(indexes(await poll_until(consumer, 3))) == [6, 10, 14]


async def test_commit_sync_and_restart_from_the_committed_offset(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, range(40))
            first = lite(ns, "lite_commit", auto_commit=False)
            await first.subscribe(TOPIC)
            async with first:
                before = await poll_until(first, 20)
                await first.commit_sync()
                committed = committed_at_broker(running, "lite_commit")
                for q in first.assignment:
                    mine = [m.queue_offset for m in before if m.queue_id == q.queue_id]
                    if mine:
                        assert committed[q.queue_id] == max(mine) + 1 == await first.committed(q)
                    else:
                        assert committed[q.queue_id] == -1
                # Polled after the commit and never committed: comes again.
                uncommitted = await poll_until(first, 1)
            second = lite(ns, "lite_commit", auto_commit=False)
            await second.subscribe(TOPIC)
            async with second:
                after = await poll_until(second, 40 - len(before))
                await nothing_more(second)
    assert not set(indexes(before)) & set(indexes(after))
    assert sorted(indexes(before + after)) == list(range(40))
    assert set(indexes(uncommitted)) <= set(indexes(after))


async def test_auto_commit_commits_only_what_poll_returned(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, range(40))
            consumer = lite(ns, "lite_auto", auto_commit_interval=1.0)
            await consumer.subscribe(TOPIC)
            async with consumer:
                got = await poll_until(consumer, 40)
                # Committed in the background, without closing.
                await wait_until(
                    lambda: committed_at_broker(running, "lite_auto") == ends(running), 0.05
                )
            assert len(got) == 40
            # A consumer cancelled while it waits in poll still commits the
            # three messages it returned, and nothing it only buffered.
            await produce(ns, range(40, 60))
            late = lite(ns, "lite_auto", auto_commit_interval=60.0)
            await late.subscribe(TOPIC)
            returned: list[MessageExt] = []
            with trio.move_on_after(3):
                async with late:
                    await wait_until(lambda: late.buffered >= 20, 0.02)
                    returned = await late.poll(timeout=1, max_messages=3)
                    await trio.sleep_forever()
            assert len(returned) == 3
            advanced = {q: committed_at_broker(running, "lite_auto")[q] - 10 for q in range(4)}
    expected = Counter(m.queue_id for m in returned)
    assert advanced == {q: expected.get(q, 0) for q in range(4)}


async def test_a_poll_with_nothing_to_read_waits_its_timeout(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, range(4))
            last = ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET
            async with lite(ns, "lite_empty", consume_from=last, poll_timeout=0.4) as consumer:
                queues = await consumer.fetch_message_queues(TOPIC)
                await consumer.assign([q for q in queues if q.queue_id == 0])
                await consumer.seek_to_end(next(iter(consumer.assignment)))
                for timeout in (0.5, None):
                    started = trio.current_time()
                    assert await consumer.poll(timeout=timeout) == []
                    waited = trio.current_time() - started
                    assert (timeout or 0.4) - 0.05 <= waited < (timeout or 0.4) + 1.0
                assert await consumer.poll(timeout=0) == []
                with pytest.raises(ValueError):
                    await consumer.poll(timeout=-1)
            with pytest.raises(RuntimeError):
                await consumer.poll(timeout=0)


async def test_the_buffer_stays_bounded_when_nobody_polls(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, range(200))
            consumer = lite(ns, "lite_bounded", pull_batch_size=4, pull_threshold_for_all=12)
            await consumer.subscribe(TOPIC)
            async with consumer:
                await wait_until(lambda: consumer.buffered >= 12, 0.02)
                await trio.sleep(0.5)  # tasks would pull more now if unbounded
                # A task looks before it pulls: each of the 4 may add one
                # batch of 4 past the threshold, no more.
                assert 12 <= consumer.buffered < 12 + 4 * 4
                got = await poll_until(consumer, 200)
                await nothing_more(consumer)
                assert consumer.buffered == 0
    assert sorted(indexes(got)) == list(range(200))


async def test_a_queue_moving_away_commits_what_was_polled(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, range(40))
            async with lite(ns, "lite_moving", auto_commit_interval=60.0) as one:
                await one.subscribe(TOPIC)  # after start: rebalances at once
                assert len(one.assignment) == 4
                polled = await poll_until(one, 20)
                consumed = {}
                for m in polled:
                    consumed[m.queue_id] = max(consumed.get(m.queue_id, 0), m.queue_offset + 1)
                two = lite(ns, "lite_moving", auto_commit_interval=60.0)
                await two.subscribe(TOPIC)
                async with two:
                    await wait_until(lambda: len(one.assignment) == len(two.assignment) == 2, 0.02)
                    committed = committed_at_broker(running, "lite_moving")
                    for q in two.assignment:
                        # What ``one`` polled of it and nothing it only buffered.
                        assert committed[q.queue_id] == consumed.get(q.queue_id, -1)
                    for q in one.assignment:
                        assert committed[q.queue_id] == -1  # still ``one``'s, not yet committed


async def test_broadcasting_consumers_each_read_every_queue(tmp_path: Path) -> None:
    store = tmp_path / "offsets"
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, range(20))

            def broadcaster(name: str) -> LitePullConsumer:
                model = MessageModel.BROADCASTING
                return lite(
                    ns,
                    "lite_broadcast",
                    message_model=model,
                    instance_name=name,
                    local_offset_store_dir=str(store),
                )

            one, two = broadcaster("one"), broadcaster("two")
            await one.subscribe(TOPIC)
            await two.subscribe(TOPIC)
            async with one, two:
                assert len(one.assignment) == len(two.assignment) == 4
                for consumer in (one, two):
                    assert sorted(indexes(await poll_until(consumer, 20))) == list(range(20))
                    await nothing_more(consumer)
                await one.commit_sync()
                queue = next(iter(one.assignment))
                assert await one.committed(queue) == 5
            # Broadcasting offsets are not the group's at the broker but in
            # each client's local file (LocalFileOffsetStore), where a
            # consumer under the same client id resumes.
            assert set(committed_at_broker(running, "lite_broadcast").values()) == {-1}
            path = store_path(store, one.client_id, "lite_broadcast")
            assert set(decode_offset_file(path.read_text()).values()) == {5}
            await produce(ns, range(20, 22))
            again = broadcaster("one")
            await again.subscribe(TOPIC)
            async with again:
                assert await again.committed(queue) == 5
                assert sorted(indexes(await poll_until(again, 2))) == [20, 21]
                await nothing_more(again)


async def test_the_pull_request_as_java_lite_consumer_sends_it() -> None:
    cluster = ScriptedCluster()
    client_ids: list[str] = []
    heartbeats: list[HeartbeatData] = []

    def heartbeat(request: RemotingCommand) -> RemotingCommand:
        data = HeartbeatData.decode(request.body or b"")
        heartbeats.append(data)
        if data.client_id and data.client_id not in client_ids:
            client_ids.append(data.client_id)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    def consumer_list(request: RemotingCommand) -> RemotingCommand:
        body = GetConsumerListByGroupResponseBody(tuple(client_ids)).encode()
        return RemotingCommand.response(ResponseCode.SUCCESS, body=body)

    async def pull(request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(PullMessageRequestHeader)
        if header.queue_offset == 100:
            answer = PullMessageResponseHeader(0, 7, 0, 10)
            return RemotingCommand.response(ResponseCode.PULL_OFFSET_MOVED, header=answer)
        if header.queue_offset == 7:
            answer = PullMessageResponseHeader(0, 10, 0, 10)
            return RemotingCommand.response(
                ResponseCode.SUCCESS, header=answer, body=pulled(range(7, 10), "PullTopic")
            )
        await trio.sleep(0.05)  # a short long poll
        answer = PullMessageResponseHeader(0, header.queue_offset, 0, 10)
        return RemotingCommand.response(ResponseCode.PULL_NOT_FOUND, header=answer)

    cluster.handlers.update(
        {
            RequestCode.HEART_BEAT: heartbeat,
            RequestCode.GET_CONSUMER_LIST_BY_GROUP: consumer_list,
            RequestCode.QUERY_CONSUMER_OFFSET: lambda r: RemotingCommand.response(
                ResponseCode.SUCCESS, header=QueryConsumerOffsetResponseHeader(100)
            ),
            RequestCode.PULL_MESSAGE: pull,
            RequestCode.UPDATE_CONSUMER_OFFSET: lambda r: RemotingCommand.response(
                ResponseCode.SUCCESS
            ),
        }
    )
    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)], queues=1)
            reader = lite(addr, "pull_group", broker_suspend_max=0.2, auto_commit=False)
            await reader.subscribe("PullTopic", "T || U")
            async with reader:
                messages = await reader.poll(timeout=5)
                await reader.commit_sync()
            pulls = [
                r.decode_header(PullMessageRequestHeader)
                for r in cluster.seen(RequestCode.PULL_MESSAGE)
            ]
            commits = [
                r.decode_header(UpdateConsumerOffsetRequestHeader)
                for r in cluster.seen(RequestCode.UPDATE_CONSUMER_OFFSET)
            ]
    assert [m.queue_offset for m in messages] == [7, 8, 9]
    assert [m.body for m in messages] == [b"m7", b"m8", b"m9"]
    assert [p.queue_offset for p in pulls[:2]] == [100, 7]
    for p in pulls:
        # suspend | subscription | lite pull; no commit offset on a pull.
        assert (p.sys_flag, p.commit_offset, p.suspend_timeout_millis) == (0x16, 0, 200)
        assert (p.subscription, p.expression_type, p.sub_version) == ("T || U", "TAG", 0)
        assert (p.consumer_group, p.max_msg_nums) == ("pull_group", 10)
    # OFFSET_ILLEGAL moves the pull, it commits nothing; commit_sync commits 10.
    assert [(c.queue_id, c.commit_offset) for c in commits] == [(0, 10)]
    (data,) = {d.consumer_data_set for d in heartbeats if d.consumer_data_set}
    (group,) = data
    assert group.consume_type is ConsumeType.CONSUME_ACTIVELY
    assert group.consume_from_where is ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET
    assert [s.sub_string for s in group.subscription_data_set] == ["T || U"]


async def test_per_queue_threshold_and_topic_queue_listener(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            seen: list[tuple[str, set[MessageQueue]]] = []
            consumer = lite(
                ns,
                "lite_per_queue",
                pull_batch_size=2,
                pull_threshold_for_queue=5,
                topic_metadata_check_interval=0.2,
            )
            consumer.register_topic_message_queue_change_listener(
                TOPIC, lambda topic, queues: seen.append((topic, queues))
            )
            async with consumer:
                await produce(ns, range(40), queue_id=3)  # creates the topic
                await wait_until(lambda: bool(seen), 0.05)
                ((topic, queues),) = seen
                assert topic == TOPIC and sorted(q.queue_id for q in queues) == [0, 1, 2, 3]
                await consumer.assign(queues)
                await wait_until(lambda: consumer.buffered >= 5, 0.02)
                await trio.sleep(0.5)
                # One queue holds everything: it stops at its own bound.
                assert 5 <= consumer.buffered < 5 + 2
                got = await poll_until(consumer, 40)
                assert len(seen) == 1  # the queues did not change again
    assert indexes(got) == list(range(40))


async def test_running_info_through_the_broker(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, range(1))
            consumer = lite(ns, "lite_info", pull_batch_size=7, auto_commit_interval=2.5)
            await consumer.subscribe(TOPIC, "TagA || TagB")
            async with consumer, Producer("info_asker", [ns], client_ip="127.0.0.1") as asker:
                brokers = asker.instance.brokers
                info = await brokers.get_consumer_running_info(
                    running.broker.broker_addr, "lite_info", consumer.client_id, jstack=True
                )
    props = info.properties
    assert props["consumerGroup"] == "lite_info" and props["messageModel"] == "CLUSTERING"
    assert (props["pullBatchSize"], props["autoCommitIntervalMillis"]) == ("7", "2500")
    assert props["PROP_CONSUME_TYPE"] == "CONSUME_ACTIVELY"
    assert props["PROP_NAMESERVER_ADDR"] == f"{ns};"
    assert [s.sub_string for s in info.subscription_set] == ["TagA || TagB"]
    assert not info.mq_table and info.jstack
