"""PushConsumer over real sockets against ``pyrocket up``: everything sent
is received exactly once with its content; groups share queues; offsets
survive a restart; long polling delivers at once; and, against a scripted
broker, the pull request's fields and OFFSET_ILLEGAL handling."""

from __future__ import annotations

import dataclasses
import socket
import struct
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from pyrocket.client.allocate import allocate_averagely
from pyrocket.client.consumer import PullSysFlag, PushConsumer, decode_pulled, delivered_form
from pyrocket.client.instance import ClientError
from pyrocket.client.producer import Producer, new_message
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    GetConsumerListByGroupResponseBody,
    HeartbeatData,
    MessageModel,
)
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    GetMaxOffsetResponseHeader,
    PullMessageRequestHeader,
    PullMessageResponseHeader,
    QueryConsumerOffsetResponseHeader,
    SearchOffsetRequestHeader,
    SearchOffsetResponseHeader,
    UpdateConsumerOffsetRequestHeader,
)
from pyrocket.protocol.message import HostPort, MessageExt, MessageSysFlag, encode_message
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv
from tests.client.helpers import ScriptedCluster, consumer, route_to, running_up, wait_assigned
from tests.remoting.helpers import running_server, wait_until

TOPIC = "ConsumerTopic"


def body_of(i: int) -> bytes:
    text = f"message {i} ".encode()
    return text * 600 if i % 10 == 0 else text  # every tenth over 4 KiB: compressed


async def produce(namesrv: str, count: int, topic: str = TOPIC, start: int = 0) -> None:
    """Messages start..start+count-1: sync, oneway and orderly in turn."""
    async with Producer("test_producers", [namesrv], client_ip="127.0.0.1") as producer:
        for i in range(start, start + count):
            message = new_message(
                topic,
                body_of(i),
                tags=f"Tag{i % 3}",
                keys=[f"K{i}", "common"],
                properties={"idx": str(i)},
            )
            if i % 3 == 0:
                await producer.send(message)
            elif i % 3 == 1:
                await producer.send_oneway(message)
            else:
                await producer.send_orderly(message, i % 2)


async def take(source: PushConsumer, count: int) -> list[MessageExt]:
    return [await source.receive() for _ in range(count)]


def check(messages: list[MessageExt], wanted: set[int], topic: str = TOPIC) -> None:
    counts = Counter(int(m.properties["idx"]) for m in messages)
    assert not {i: n for i, n in counts.items() if n > 1}, "delivered twice"
    assert set(counts) == wanted
    for m in messages:
        i = int(m.properties["idx"])
        assert m.topic == topic and m.body == body_of(i) and not m.is_compressed
        assert m.tags == f"Tag{i % 3}" and m.keys == f"K{i} common"
        assert m.uniq_key is not None and "MIN_OFFSET" in m.properties


async def test_everything_sent_is_received_once(tmp_path: Path) -> None:
    count = 60
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, count)
            async with consumer(ns, "all_group", TOPIC) as reader:
                messages = await take(reader, count)
                with trio.move_on_after(0.3):  # nothing more comes
                    extra = await reader.receive()
                    pytest.fail(f"unexpected {extra}")
            async with consumer(ns, "tag_group", TOPIC, "Tag0 || Tag2") as tagged:
                wanted = {i for i in range(count) if i % 3 != 1}
                filtered = await take(tagged, len(wanted))
    check(messages, set(range(count)))
    check(filtered, wanted)
    # Per queue, offsets arrive in order.
    for queue_id in {m.queue_id for m in messages}:
        offsets = [m.queue_offset for m in messages if m.queue_id == queue_id]
        assert offsets == sorted(offsets)


async def test_offsets_survive_a_restart(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 40)
            async with consumer(ns, "restart_group", TOPIC) as first:
                before: list[MessageExt] = []
                while len(before) < 25:
                    batch = await first.poll(max_messages=25 - len(before), timeout=5)
                    assert 0 < len(batch) <= 25 - len(before)
                    before.extend(batch)
            # Offsets are committed: a fresh consumer of the group that would
            # otherwise start from the first offset gets only the rest.
            async with consumer(ns, "restart_group", TOPIC) as second:
                after = await take(second, 15)
                with trio.move_on_after(0.3):
                    extra = await second.receive()
                    pytest.fail(f"unexpected {extra}")
            dp = running.broker.data_plane
            assert dp is not None
            committed = {
                q: dp.consumer_offset_manager.query_offset("restart_group", TOPIC, q)
                for q in running.broker.store.queue_ids(TOPIC)
            }
            ends = {
                q: running.broker.store.get_max_offset_in_queue(TOPIC, q)
                for q in running.broker.store.queue_ids(TOPIC)
            }
    check(before + after, set(range(40)))
    assert committed == ends


async def test_explicit_start_and_shutdown_commit_what_was_consumed(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 12)
            reader = consumer(ns, "explicit_group", TOPIC)
            await reader.start()
            messages = await take(reader, 12)
            await reader.shutdown()
            with pytest.raises(trio.ClosedResourceError):
                await reader.receive()
            dp = running.broker.data_plane
            assert dp is not None
            store = running.broker.store
            committed = {
                q: dp.consumer_offset_manager.query_offset("explicit_group", TOPIC, q)
                for q in store.queue_ids(TOPIC)
            }
            ends = {q: store.get_max_offset_in_queue(TOPIC, q) for q in store.queue_ids(TOPIC)}
    check(messages, set(range(12)))
    assert committed == ends


async def test_a_group_shares_the_queues(tmp_path: Path) -> None:
    count = 80
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 1)  # creates the topic (4 queues)
            one = consumer(
                ns, "shared_group", TOPIC, consume_from=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET
            )
            two = consumer(
                ns, "shared_group", TOPIC, consume_from=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET
            )
            async with one, two:
                # The broker tells the first consumer when the second joins.
                await wait_assigned([one, two], TOPIC, 4)
                assert len({q for q in one.assignment if q.topic == TOPIC}) == 2
                await produce(ns, count, start=1)
                got: list[MessageExt] = []
                done = trio.Event()

                async def drain(source: PushConsumer) -> None:
                    async for message in source:
                        got.append(message)
                        if len(got) >= count:
                            done.set()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(drain, one)
                    nursery.start_soon(drain, two)
                    await done.wait()
                    await trio.sleep(0.3)  # a duplicate would show up now
                    nursery.cancel_scope.cancel()
    # A new group starts at 0 while the queue's start is still in memory (the
    # broker answers QUERY_CONSUMER_OFFSET so): message 0 too, once.
    check(got, set(range(count + 1)))


async def test_long_polling_delivers_a_later_message_at_once(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 3)
            async with consumer(
                ns, "late_group", TOPIC, consume_from=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET
            ) as reader:
                await wait_assigned([reader], TOPIC, 4)
                # A new group starts at 0 while the queue's start is in memory.
                check(await take(reader, 3), {0, 1, 2})
                await trio.sleep(0.5)  # every pull is now suspended at the broker
                sent_at = trio.current_time()
                await produce(ns, 1, start=3)
                with trio.fail_after(3):  # far below the 15 s suspension
                    (message,) = await take(reader, 1)
                latency = trio.current_time() - sent_at
    check([message], {3})
    assert latency < 3


@given(st.integers(1, 40), st.integers(1, 12))
def test_allocation_covers_every_queue_once(queues: int, clients: int) -> None:
    ids = sorted(f"10.0.0.{i}@{i}" for i in range(clients))
    shares = [allocate_averagely("g", cid, list(range(queues)), ids) for cid in ids]
    assert sorted(q for share in shares for q in share) == list(range(queues))
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the first clients take the extra
    assert allocate_averagely("g", "not-there", list(range(queues)), ids) == []


def pulled(offsets: range, topic: str) -> bytes:
    host = HostPort.parse("127.0.0.1:10911")
    return b"".join(
        encode_message(
            MessageExt(
                topic=topic,
                body=b"m%d" % o,
                queue_offset=o,
                properties={"TAGS": "T"},
                born_host=host,
                store_host=host,
            )
        )
        for o in offsets
    )


async def test_pull_fields_and_an_illegal_offset() -> None:
    cluster = ScriptedCluster()
    client_ids: list[str] = []

    def heartbeat(request: RemotingCommand) -> RemotingCommand:
        data = HeartbeatData.decode(request.body or b"")
        if data.client_id and data.client_id not in client_ids:
            client_ids.append(data.client_id)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    def consumer_list(request: RemotingCommand) -> RemotingCommand:
        body = GetConsumerListByGroupResponseBody(tuple(client_ids)).encode()
        return RemotingCommand.response(ResponseCode.SUCCESS, body=body)

    def query_offset(request: RemotingCommand) -> RemotingCommand:
        return RemotingCommand.response(
            ResponseCode.SUCCESS, header=QueryConsumerOffsetResponseHeader(100)
        )

    async def pull(request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(PullMessageRequestHeader)
        if header.topic != "PullTopic":
            return RemotingCommand.response(
                ResponseCode.PULL_NOT_FOUND,
                header=PullMessageResponseHeader(0, header.queue_offset, 0, 0),
            )
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

    def update_offset(request: RemotingCommand) -> RemotingCommand:
        return RemotingCommand.response(ResponseCode.SUCCESS)

    cluster.handlers.update(
        {
            RequestCode.HEART_BEAT: heartbeat,
            RequestCode.GET_CONSUMER_LIST_BY_GROUP: consumer_list,
            RequestCode.QUERY_CONSUMER_OFFSET: query_offset,
            RequestCode.PULL_MESSAGE: pull,
            RequestCode.UPDATE_CONSUMER_OFFSET: update_offset,
        }
    )
    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)], queues=1)
            async with consumer(
                addr, "pull_group", "PullTopic", "T", broker_suspend_max=0.2
            ) as reader:
                messages = await take(reader, 3)

                def topic_pulls() -> list[PullMessageRequestHeader]:
                    pulls = cluster.seen(RequestCode.PULL_MESSAGE)
                    headers = [r.decode_header(PullMessageRequestHeader) for r in pulls]
                    return [h for h in headers if h.topic == "PullTopic"]

                # Once handed out, the consumed offset rides on the next pull.
                await wait_until(lambda: topic_pulls()[-1].commit_offset == 10)
                pulls = topic_pulls()
    assert [m.queue_offset for m in messages] == [7, 8, 9]
    assert [m.body for m in messages] == [b"m7", b"m8", b"m9"]
    assert (
        messages[0].properties["MIN_OFFSET"] == "0" and messages[0].properties["MAX_OFFSET"] == "10"
    )
    first, second, third = pulls[:3]
    assert (first.consumer_group, first.queue_id, first.queue_offset) == ("pull_group", 0, 100)
    assert first.sys_flag == PullSysFlag.SUSPEND | PullSysFlag.COMMIT_OFFSET
    assert first.commit_offset == 100 and first.max_msg_nums == 32
    assert first.suspend_timeout_millis == 200 and first.subscription is None
    assert first.expression_type == "TAG"
    assert second.queue_offset == 7 and second.commit_offset == 7
    # Pulled again at once: the commit offset is 7 or, if the three were
    # handed out first, 10 (the wait above saw 10 ride on a pull).
    assert third.queue_offset == 10 and third.commit_offset in (7, 10)
    commits = [
        r.decode_header(UpdateConsumerOffsetRequestHeader)
        for r in cluster.seen(RequestCode.UPDATE_CONSUMER_OFFSET)
    ]
    # The moved offset is committed at once; closing commits the consumed one.
    assert [(c.topic, c.commit_offset) for c in commits if c.topic == "PullTopic"] == [
        ("PullTopic", 7),
        ("PullTopic", 10),
    ]
    (beat, *_) = cluster.seen(RequestCode.HEART_BEAT)
    beat_data = HeartbeatData.decode(beat.body or b"")
    assert [p.group_name for p in beat_data.producer_data_set] == ["CLIENT_INNER_PRODUCER"]
    (data,) = beat_data.consumer_data_set
    assert data == ConsumerData(
        group_name="pull_group",
        consume_type=ConsumeType.CONSUME_PASSIVELY,
        message_model=MessageModel.CLUSTERING,
        consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        subscription_data_set=data.subscription_data_set,
        unit_mode=False,
    )
    # A Java HashSet: order by SubscriptionData.hashCode, not subscription order.
    assert {(s.topic, s.sub_string, s.tags_set) for s in data.subscription_data_set} == {
        ("PullTopic", "T", ("T",)),
        ("%RETRY%pull_group", "*", ()),
    }


@pytest.mark.parametrize(
    ("where", "start", "asked"),
    [
        (ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET, 50, RequestCode.GET_MAX_OFFSET),
        (ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET, 0, None),
        (ConsumeFromWhere.CONSUME_FROM_TIMESTAMP, 20, RequestCode.SEARCH_OFFSET_BY_TIMESTAMP),
    ],
)
async def test_where_a_group_without_offsets_starts(
    where: ConsumeFromWhere, start: int, asked: RequestCode | None
) -> None:
    cluster = ScriptedCluster()
    client_ids: list[str] = []

    def heartbeat(request: RemotingCommand) -> RemotingCommand:
        data = HeartbeatData.decode(request.body or b"")
        client_ids.append(data.client_id or "")
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def pull(request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(PullMessageRequestHeader)
        await trio.sleep(0.05)
        answer = PullMessageResponseHeader(0, header.queue_offset, 0, 60)
        return RemotingCommand.response(ResponseCode.PULL_NOT_FOUND, header=answer)

    cluster.handlers.update(
        {
            RequestCode.HEART_BEAT: heartbeat,
            RequestCode.GET_CONSUMER_LIST_BY_GROUP: lambda r: RemotingCommand.response(
                ResponseCode.SUCCESS,
                body=GetConsumerListByGroupResponseBody(tuple(set(client_ids))).encode(),
            ),
            RequestCode.QUERY_CONSUMER_OFFSET: lambda r: RemotingCommand.response(
                ResponseCode.QUERY_NOT_FOUND, "Not found, V3_0_6_SNAPSHOT maybe"
            ),
            RequestCode.GET_MAX_OFFSET: lambda r: RemotingCommand.response(
                ResponseCode.SUCCESS, header=GetMaxOffsetResponseHeader(50)
            ),
            RequestCode.SEARCH_OFFSET_BY_TIMESTAMP: lambda r: RemotingCommand.response(
                ResponseCode.SUCCESS, header=SearchOffsetResponseHeader(20)
            ),
            RequestCode.PULL_MESSAGE: pull,
            RequestCode.UPDATE_CONSUMER_OFFSET: lambda r: RemotingCommand.response(
                ResponseCode.SUCCESS
            ),
        }
    )

    def first_pull() -> PullMessageRequestHeader | None:
        for request in cluster.seen(RequestCode.PULL_MESSAGE):
            header = request.decode_header(PullMessageRequestHeader)
            if header.topic == "StartTopic":
                return header
        return None

    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)], queues=1)
            async with consumer(
                addr, "start_group", "StartTopic", consume_from=where, consume_timestamp=1234
            ):
                await wait_until(lambda: first_pull() is not None)
    header = first_pull()
    assert header is not None and header.queue_offset == start
    # Not a committed offset: nothing to commit on the first pull.
    assert header.sys_flag == PullSysFlag.SUSPEND and header.commit_offset == 0
    if asked == RequestCode.SEARCH_OFFSET_BY_TIMESTAMP:
        (search,) = [
            r.decode_header(SearchOffsetRequestHeader)
            for r in cluster.seen(asked)
            if r.decode_header(SearchOffsetRequestHeader).topic == "StartTopic"
        ]
        assert search.timestamp == 1234
    elif asked is not None:
        assert cluster.seen(asked)
    else:
        assert not cluster.seen(RequestCode.GET_MAX_OFFSET)


def test_delivered_form() -> None:
    body = b"compress me " * 500
    stored = MessageExt(
        topic="%RETRY%g",
        body=zlib.compress(body),
        sys_flag=MessageSysFlag.COMPRESSED_FLAG,
        properties={"RETRY_TOPIC": "Orders", "TAGS": "T"},
    )
    out = delivered_form(stored, 3, 9, "%RETRY%g")
    assert out.topic == "Orders" and out.body == body and not out.is_compressed
    assert out.uncompressed_body() == body  # not inflated twice
    assert out.properties == {
        "RETRY_TOPIC": "Orders",
        "TAGS": "T",
        "MIN_OFFSET": "3",
        "MAX_OFFSET": "9",
    }
    # Another group's retry topic stays as it is.
    assert delivered_form(stored, 3, 9, "%RETRY%other").topic == "%RETRY%g"


async def test_a_message_given_back_returns_through_the_retry_topic(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with recording_namesrv(tmp_path / "ns") as ns:
            settings = broker_settings(
                tmp_path,
                [ns.addr],
                messageDelayLevel="1s 1s 1s 1s 1s",
                autoCreateTopicEnable="true",
            )
            async with running_broker(settings):
                await produce(ns.addr, 3)
                reader = consumer(ns.addr, "retry_group", TOPIC, rebalance_interval=0.5)
                async with reader:
                    first = await take(reader, 3)
                    again = next(m for m in first if m.properties["idx"] == "1")
                    await reader.reconsume_later(again)
                    # Level 3 + 0 reconsumes: one second here; it comes back through
                    # %RETRY%retry_group under its own topic.
                    (returned,) = await take(reader, 1)
    check(first, {0, 1, 2})
    assert returned.topic == TOPIC and returned.reconsume_times == 1
    assert returned.uniq_key == again.uniq_key and returned.body == again.body
    assert returned.properties["idx"] == "1" and returned.tags == again.tags
    assert returned.properties["RETRY_TOPIC"] == TOPIC


async def test_a_batch_arrives_whole_and_in_order(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            async with Producer("batch_producers", [ns], client_ip="127.0.0.1") as producer:
                batch = [
                    new_message(
                        TOPIC,
                        body_of(i),
                        tags=f"Tag{i % 3}",
                        keys=[f"K{i}", "common"],
                        properties={"idx": str(i)},
                    )
                    for i in range(1, 10)  # body_of(0) is too big for one batch here
                ]
                result = await producer.send_batch(batch)
                with pytest.raises(ClientError, match="should be the same"):
                    await producer.send_batch([batch[0], new_message("Other", b"x")])
                with pytest.raises(ClientError, match="TimeDelayLevel"):
                    await producer.send_batch([new_message(TOPIC, b"x", delay_level=2)])
            async with consumer(ns, "batch_group", TOPIC) as reader:
                messages = await take(reader, 9)
    check(messages, set(range(1, 10)))
    ids = result.msg_id.split(",")
    assert [m.uniq_key for m in messages] == ids
    assert {m.queue_id for m in messages} == {result.queue.queue_id}
    assert [m.queue_offset for m in messages] == list(
        range(result.queue_offset, result.queue_offset + 9)
    )
    assert result.offset_msg_id.split(",") == [m.msg_id for m in messages]


async def test_pulls_follow_the_suggested_broker() -> None:
    master, slave = ScriptedCluster(), ScriptedCluster()
    client_ids: list[str] = []

    def heartbeat(request: RemotingCommand) -> RemotingCommand:
        client_ids.append(HeartbeatData.decode(request.body or b"").client_id or "")
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def pull(request: RemotingCommand) -> RemotingCommand:
        # Nothing new; read from broker 1 next time.
        header = request.decode_header(PullMessageRequestHeader)
        await trio.sleep(0.05)
        answer = PullMessageResponseHeader(1, header.queue_offset, 0, 0)
        return RemotingCommand.response(ResponseCode.PULL_NOT_FOUND, header=answer)

    for cluster in (master, slave):
        cluster.handlers[RequestCode.HEART_BEAT] = heartbeat
        cluster.handlers[RequestCode.UPDATE_CONSUMER_OFFSET] = lambda r: RemotingCommand.response(
            ResponseCode.SUCCESS
        )
    master.handlers[RequestCode.GET_CONSUMER_LIST_BY_GROUP] = lambda r: RemotingCommand.response(
        ResponseCode.SUCCESS,
        body=GetConsumerListByGroupResponseBody(tuple(set(client_ids))).encode(),
    )
    master.handlers[RequestCode.QUERY_CONSUMER_OFFSET] = lambda r: RemotingCommand.response(
        ResponseCode.SUCCESS, header=QueryConsumerOffsetResponseHeader(4)
    )
    master.handlers[RequestCode.PULL_MESSAGE] = pull
    slave.handlers[RequestCode.PULL_MESSAGE] = pull

    def pulls(cluster: ScriptedCluster) -> list[PullMessageRequestHeader]:
        headers = [
            r.decode_header(PullMessageRequestHeader)
            for r in cluster.seen(RequestCode.PULL_MESSAGE)
        ]
        return [h for h in headers if h.topic == "SlaveTopic"]

    with trio.fail_after(10):
        async with running_server(master.server) as m, running_server(slave.server) as s:
            route = route_to([("broker-a", m)], queues=1)
            assert route.broker_datas is not None
            both = dataclasses.replace(route.broker_datas[0], broker_addrs={0: m, 1: s})
            master.route = lambda: dataclasses.replace(route, broker_datas=(both,))
            async with consumer(m, "slave_group", "SlaveTopic"):
                await wait_until(lambda: len(pulls(slave)) >= 2)
    (first, *_) = pulls(master)
    assert first.commit_offset == 4 and first.sys_flag & PullSysFlag.COMMIT_OFFSET
    # The master said "read from broker 1": the next pulls go there, and a
    # slave is never asked to commit.
    assert all(
        p.commit_offset == 0 and not p.sys_flag & PullSysFlag.COMMIT_OFFSET for p in pulls(slave)
    )


def bad_magic(record: bytes) -> bytes:
    """``record`` with its magic code spoiled: undecodable, size word intact."""
    return record[:4] + b"\x00\x00\x00\x00" + record[8:]


def one_record(offset: int, topic: str, **changes: object) -> bytes:
    host = HostPort.parse("127.0.0.1:10911")
    message = MessageExt(
        topic=topic,
        body=b"m%d" % offset,
        queue_offset=offset,
        properties={"TAGS": "T"},
        born_host=host,
        store_host=host,
    )
    return encode_message(dataclasses.replace(message, **changes))  # type: ignore[arg-type]


def test_decode_pulled_steps_over_a_bad_record() -> None:
    records = [one_record(o, "T") for o in range(3)]
    body = records[0] + bad_magic(records[1]) + records[2]
    messages, skipped = decode_pulled(body)
    assert [m.queue_offset for m in messages] == [0, 2] and skipped == 1
    # A size word that runs past the body ends the batch.
    broken = records[0] + b"\x7f\xff\xff\xff" + records[1][4:] + records[2]
    messages, skipped = decode_pulled(broken)
    assert [m.queue_offset for m in messages] == [0] and skipped == 1
    assert decode_pulled(b"") == ([], 0)


async def test_a_message_that_cannot_be_decoded_is_skipped() -> None:
    cluster = ScriptedCluster()
    topic = "SkipTopic"
    records = [one_record(o, topic) for o in range(4)]
    # Offset 1 is not a message at all, offset 2 claims a compressed body
    # that does not inflate; 0 and 3 are fine.
    records[1] = bad_magic(records[1])
    records[2] = one_record(2, topic, sys_flag=MessageSysFlag.COMPRESSED_FLAG, body=b"junk")
    pulls: list[int] = []
    client_ids: list[str] = []

    def heartbeat(request: RemotingCommand) -> RemotingCommand:
        data = HeartbeatData.decode(request.body or b"")
        if data.client_id and data.client_id not in client_ids:
            client_ids.append(data.client_id)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def pull(request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(PullMessageRequestHeader)
        if header.topic == topic:
            pulls.append(header.queue_offset)
        if header.topic == topic and header.queue_offset == 0:
            answer = PullMessageResponseHeader(0, 4, 0, 4)
            return RemotingCommand.response(
                ResponseCode.SUCCESS, header=answer, body=b"".join(records)
            )
        await trio.sleep(0.05)
        answer = PullMessageResponseHeader(0, header.queue_offset, 0, 4)
        return RemotingCommand.response(ResponseCode.PULL_NOT_FOUND, header=answer)

    cluster.handlers.update(
        {
            RequestCode.HEART_BEAT: heartbeat,
            RequestCode.GET_CONSUMER_LIST_BY_GROUP: lambda request: RemotingCommand.response(
                ResponseCode.SUCCESS,
                body=GetConsumerListByGroupResponseBody(tuple(client_ids)).encode(),
            ),
            RequestCode.QUERY_CONSUMER_OFFSET: lambda request: RemotingCommand.response(
                ResponseCode.QUERY_NOT_FOUND
            ),
            RequestCode.PULL_MESSAGE: pull,
            RequestCode.UPDATE_CONSUMER_OFFSET: lambda request: RemotingCommand.response(
                ResponseCode.SUCCESS
            ),
        }
    )
    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)], queues=1)
            async with consumer(addr, "skip_group", topic, broker_suspend_max=0.2) as reader:
                messages = await take(reader, 2)
                # The queue moved on past the batch instead of pulling it again.
                await wait_until(lambda: 4 in pulls)
    assert [(m.queue_offset, m.body) for m in messages] == [(0, b"m0"), (3, b"m3")]
    assert pulls.count(0) == 1
    commits = [
        r.decode_header(UpdateConsumerOffsetRequestHeader)
        for r in cluster.seen(RequestCode.UPDATE_CONSUMER_OFFSET)
    ]
    assert [c.commit_offset for c in commits if c.topic == topic][-1] == 4


@asynccontextmanager
async def resetting_proxy(target: str) -> AsyncIterator[tuple[str, Callable[[], None]]]:
    """A TCP proxy to ``target`` and a function that resets (RST) every
    connection it has accepted."""
    accepted: list[trio.SocketStream] = []
    host, port = target.rsplit(":", 1)

    async def pump(source: trio.SocketStream, sink: trio.SocketStream) -> None:
        try:
            async for data in source:
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def handle(client: trio.SocketStream) -> None:
        accepted.append(client)
        upstream = await trio.open_tcp_stream(host, int(port))
        async with upstream, trio.open_nursery() as nursery:
            nursery.start_soon(pump, client, upstream)
            nursery.start_soon(pump, upstream, client)

    def reset() -> None:
        for stream in accepted:
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            stream.socket.close()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    bound = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        yield f"127.0.0.1:{bound}", reset
        nursery.cancel_scope.cancel()


def idle_cluster() -> ScriptedCluster:
    """A broker and NameServer that know one client and have nothing to pull."""
    cluster = ScriptedCluster()
    client_ids: list[str] = []

    def heartbeat(request: RemotingCommand) -> RemotingCommand:
        data = HeartbeatData.decode(request.body or b"")
        if data.client_id and data.client_id not in client_ids:
            client_ids.append(data.client_id)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def pull(request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(PullMessageRequestHeader)
        await trio.sleep(0.05)
        answer = PullMessageResponseHeader(0, header.queue_offset, 0, 0)
        return RemotingCommand.response(ResponseCode.PULL_NOT_FOUND, header=answer)

    cluster.handlers.update(
        {
            RequestCode.HEART_BEAT: heartbeat,
            RequestCode.GET_CONSUMER_LIST_BY_GROUP: lambda request: RemotingCommand.response(
                ResponseCode.SUCCESS,
                body=GetConsumerListByGroupResponseBody(tuple(client_ids)).encode(),
            ),
            RequestCode.QUERY_CONSUMER_OFFSET: lambda request: RemotingCommand.response(
                ResponseCode.QUERY_NOT_FOUND
            ),
            RequestCode.PULL_MESSAGE: pull,
            RequestCode.UPDATE_CONSUMER_OFFSET: lambda request: RemotingCommand.response(
                ResponseCode.SUCCESS
            ),
        }
    )
    return cluster


@pytest.mark.parametrize("settle", [0.0, 0.2])
async def test_a_consumer_closes_cleanly_over_a_broken_connection(settle: float) -> None:
    cluster = idle_cluster()
    with trio.fail_after(20):
        async with running_server(cluster.server) as addr, resetting_proxy(addr) as (proxy, reset):
            cluster.route = lambda: route_to([("broker-a", proxy)], queues=2)
            reader = consumer(proxy, "broken_group", "BrokenTopic", broker_suspend_max=0.2)
            async with reader:
                await wait_until(
                    lambda: len([q for q in reader.assignment if q.topic == "BrokenTopic"]) == 2
                )
                reset()
                await trio.sleep(settle)
            # Leaving the block raised nothing: no exception group, no
            # BrokenResourceError; the consumer is closed.
            with pytest.raises(trio.ClosedResourceError):
                await reader.receive()


async def test_a_deadline_inside_the_block_surfaces_as_itself() -> None:
    cluster = idle_cluster()
    with trio.fail_after(20):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)], queues=1)
            reader = consumer(addr, "deadline_group", "DeadlineTopic", broker_suspend_max=0.2)
            with pytest.raises(trio.TooSlowError):
                with trio.fail_after(0.5):
                    async with reader:
                        await reader.receive()
            # The instance was closed on the way out: the consumer is not running.
            with pytest.raises(RuntimeError):
                _ = reader.instance.nursery
