"""Filter bit maps in the consume-queue extension files over real sockets
(``enableCalcFilterBitMap`` with ``enableConsumeQueueExt``): an SQL92
subscriber gets exactly its messages, the bit map spares the commit-log read
of those that cannot match, and the files survive a restart."""

from __future__ import annotations

import base64
from pathlib import Path

import trio

from pyrocket.broker.store.consumequeue import ConsumeQueue
from pyrocket.broker.store.consumequeue_ext import MIN_EXT_UNIT_SIZE, is_ext_addr
from pyrocket.filter.bloom import BitsArray
from pyrocket.protocol.bodies.client import (
    ConsumeFromWhere,
    ConsumerData,
    ConsumeType,
    HeartbeatData,
    MessageModel,
)
from pyrocket.protocol.bodies.ops import QueryConsumeQueueResponseBody
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import PullMessageRequestHeader, QueryConsumeQueueRequestHeader
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.test_sql92 import GROUP, TOPIC, fill, indexes, pull, send, sql

OTHER = "sql_group_other"
MINE = "a >= 10 AND a < 15"
THEIRS = "colour = 'red' AND a < 8"  # 1, 3, 7 (5 has no colour)
COUNT = 40


def beat(group: str, expression: str, version: int) -> RemotingCommand:
    data = HeartbeatData(
        client_id=f"127.0.0.1@{group}",
        consumer_data_set=(
            ConsumerData(
                group_name=group,
                consume_type=ConsumeType.CONSUME_PASSIVELY,
                message_model=MessageModel.CLUSTERING,
                consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                subscription_data_set=(sql(expression, version),),
            ),
        ),
    )
    return RemotingCommand.request(RequestCode.HEART_BEAT, body=data.encode())


def stored_tags_code(queue: ConsumeQueue, index: int) -> int:
    """The tags code as the consume-queue file holds it."""
    raw = queue.read_entries(index, 20)
    assert raw is not None and len(raw) == 20
    return int.from_bytes(raw[12:], "big", signed=True)


def pull_of(group: str, version: int) -> RemotingCommand:
    header = PullMessageRequestHeader(
        consumer_group=group,
        topic=TOPIC,
        queue_id=0,
        queue_offset=0,
        max_msg_nums=64,
        sys_flag=0,
        commit_offset=0,
        suspend_timeout_millis=0,
        subscription=None,
        sub_version=version,
        expression_type="SQL92",
    )
    return RemotingCommand.request(RequestCode.PULL_MESSAGE, header)


async def test_sql92_pull_is_pruned_by_bit_maps_and_exact(tmp_path: Path) -> None:
    settings = broker_settings(
        tmp_path,
        enablePropertyFilter="true",
        enableCalcFilterBitMap="true",
        enableConsumeQueueExt="true",
    )
    with trio.fail_after(30):
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            for group, expression in ((GROUP, MINE), (OTHER, THEIRS)):
                answer = await client.invoke_sync(addr, beat(group, expression, 7), 5)
                assert answer.code == ResponseCode.SUCCESS
            await trio.sleep(0.01)  # messages stored after the filters were made
            await fill(client, addr, COUNT)
            store = broker.store
            assert store.bit_map_skips == 0
            answer = await client.invoke_sync(addr, pull(None, sub_version=7), 5)
            assert indexes(answer) == [10, 11, 12, 13, 14]
            # Messages matching neither filter have an empty bit map: refused
            # without reading the commit log. Others may be false positives.
            neither = COUNT - 5 - 3
            assert neither <= store.bit_map_skips <= COUNT - 5

            # The extension unit of message 12 holds its real tags code, store
            # time and a bit map with this group's positions set.
            queue = store._files.queue(TOPIC, 0)
            assert queue is not None and queue.ext is not None
            address = stored_tags_code(queue, 12)
            assert is_ext_addr(address)
            unit = queue.ext.get(address)
            assert unit is not None and unit.bit_map is not None
            filters = broker.data_plane.consumer_filter_manager
            data = filters.get(TOPIC, GROUP)
            assert data is not None and data.bloom_data is not None
            bits = BitsArray(len(unit.bit_map) * 8, unit.bit_map)
            assert filters.bloom.is_hit(data.bloom_data, bits)
            assert len(unit.bit_map) == filters.bloom.m // 8
            assert data.bloom_data.bit_positions == filters.bloom.positions(f"{GROUP}#{TOPIC}")
            # Message 0 matches nothing: an all-zero map.
            first = queue.ext.get(stored_tags_code(queue, 0))
            assert first is not None and first.bit_map == bytes(filters.bloom.m // 8)

            # The other group gets exactly its messages too.
            theirs = await client.invoke_sync(addr, pull_of(OTHER, 7), 5)
            assert indexes(theirs) == [1, 3, 7]
            # QUERY_CONSUME_QUEUE shows each unit, its bit map and the group's verdict.
            query = RemotingCommand.request(
                RequestCode.QUERY_CONSUME_QUEUE,
                QueryConsumeQueueRequestHeader(
                    topic=TOPIC, queue_id=0, index=9, count=7, consumer_group=GROUP
                ),
            )
            shown = await client.invoke_sync(addr, query, 5)
            assert shown.code == ResponseCode.SUCCESS
            body = QueryConsumeQueueResponseBody.decode(shown.body or b"")
            rows = body.queue_data or ()
            assert [row.eval for row in rows] == [False, True, True, True, True, True, False]
            row = rows[3]  # message 12
            assert row.tags_code == address and row.msg is None
            assert row.bit_map == "".join(format(b, "08b") for b in reversed(unit.bit_map))
            assert row.bit_map.count("1") >= 3
            encoded = base64.b64encode(unit.bit_map).decode()
            size = MIN_EXT_UNIT_SIZE + len(unit.bit_map)
            assert row.extend_data_json == (
                f'{{"filterBitMap":"{encoded}","msgStoreTime":{unit.store_timestamp},'
                f'"size":{size},"tagsCode":{unit.tags_code}}}'
            )

            path = tmp_path / "store" / "consumequeue_ext" / TOPIC / "0" / ("0" * 20)
            raw = path.read_bytes()
            size = MIN_EXT_UNIT_SIZE + filters.bloom.m // 8
            assert int.from_bytes(raw[:2], "big") == size
            assert not any(raw[size * COUNT : size * COUNT + 64])


async def test_ext_files_are_recovered_after_a_restart(tmp_path: Path) -> None:
    settings = broker_settings(
        tmp_path,
        enablePropertyFilter="true",
        enableCalcFilterBitMap="true",
        enableConsumeQueueExt="true",
    )
    with trio.fail_after(40):
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            assert (await client.invoke_sync(addr, beat(GROUP, MINE, 7), 5)).code == 0
            await trio.sleep(0.01)
            await fill(client, addr, 20)
            queue = broker.store._files.queue(TOPIC, 0)
            assert queue is not None and queue.ext is not None
            before = queue.ext.max_address
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            queue = broker.store._files.queue(TOPIC, 0)
            assert queue is not None and queue.ext is not None
            assert queue.ext.max_address == before
            assert (await client.invoke_sync(addr, beat(GROUP, MINE, 7), 5)).code == 0
            await trio.sleep(0.01)
            await fill(client, addr, 20)  # a = 0..19 again, queue offsets 20..39
            answer = await client.invoke_sync(addr, pull(None, sub_version=7), 5)
            # The first 20 were stored before this run's filter was made: they
            # pass the bit-map check and are evaluated in full, as in Java.
            assert indexes(answer) == [10, 11, 12, 13, 14] * 2
            assert broker.store.bit_map_skips >= 15  # of the second 20
            assert queue.ext.get(stored_tags_code(queue, 39)) is not None


async def test_without_ext_files_no_bit_map_is_kept(tmp_path: Path) -> None:
    for flags in ({"enableCalcFilterBitMap": "true"}, {}):
        root = tmp_path / str(len(flags))
        settings = broker_settings(root, enablePropertyFilter="true", **flags)
        with trio.fail_after(20):
            async with (
                running_broker(settings, timing=None) as broker,
                RemotingClient() as client,
            ):
                addr = broker.broker_addr
                assert (await client.invoke_sync(addr, beat(GROUP, MINE, 7), 5)).code == 0
                await trio.sleep(0.01)
                await fill(client, addr, 20)
                answer = await client.invoke_sync(addr, pull(None, sub_version=7), 5)
                assert indexes(answer) == [10, 11, 12, 13, 14]
                assert broker.store.bit_map_skips == 0
                queue = broker.store._files.queue(TOPIC, 0)
                assert queue is not None and queue.ext is None
                assert not is_ext_addr(stored_tags_code(queue, 3))
        assert not (root / "store" / "consumequeue_ext").exists()


async def test_delayed_messages_are_delivered_with_ext_files(tmp_path: Path) -> None:
    # The schedule topic's entries point at units holding the due time.
    settings = broker_settings(
        tmp_path,
        enablePropertyFilter="true",
        enableConsumeQueueExt="true",
        messageDelayLevel="1s 2s",
    )
    with trio.fail_after(20):
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            stored = await client.invoke_sync(addr, send(0, a="3", DELAY="1"), 5)
            assert stored.code == ResponseCode.SUCCESS
            started = trio.current_time()
            while True:
                answer = await client.invoke_sync(addr, pull("a = 3"), 5)
                if answer.code == ResponseCode.SUCCESS:
                    break
                await trio.sleep(0.1)
            assert indexes(answer) == [0]
            assert trio.current_time() - started >= 0.5
