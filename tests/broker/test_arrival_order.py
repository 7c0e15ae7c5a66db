"""State-changing requests of one connection are applied in the order they
were read: sends pipelined over a real socket (oneway and two-way,
SEND_MESSAGE, SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE mixed, in a few large
writes) land in the commit log and the queue in write order, round after
round; back-to-back UPDATE_CONSUMER_OFFSET ends with the last value."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Iterator
from pathlib import Path

import trio

from pyrocket.broker.app import Broker
from pyrocket.broker.config import BrokerSettings
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import ONEWAY_FLAG, RemotingCommand, decode_payload, encode
from pyrocket.protocol.frame import FrameSplitter
from pyrocket.protocol.headers import (
    SendMessageRequestHeader,
    SendMessageRequestHeaderV2,
    UpdateConsumerOffsetRequestHeader,
)
from pyrocket.protocol.message import Message, decode_messages, encode_batch, encode_properties
from tests.broker.helpers import broker_settings, running_broker

TOPIC = "ArrivalOrder"
GROUP = "order_group"


def order_settings(tmp_path: Path, flush: str = "ASYNC_FLUSH") -> BrokerSettings:
    return broker_settings(
        tmp_path,
        mappedFileSizeCommitLog=str(16 * 1024 * 1024),
        mappedFileSizeConsumeQueue=str(20 * 100_000),
        flushDiskType=flush,
    )


def _properties(label: str) -> str:
    return encode_properties({"KEYS": label, "WAIT": "true"})


def send_frames(rng: random.Random, count: int, start_opaque: int) -> tuple[list[bytes], list[str]]:
    """``count`` send requests of random kinds to queue 0 of TOPIC, encoded;
    and the labels of the messages they carry, in the order they must land."""
    frames: list[bytes] = []
    labels: list[str] = []
    born = int(time.time() * 1000)
    for n in range(count):
        opaque = start_opaque + n
        kind = rng.choice(("v1", "v2", "v2", "batch"))
        oneway = rng.random() < 0.5
        if kind == "batch":
            items = [f"{opaque}.{j}" for j in range(rng.randint(1, 3))]
            body = encode_batch(
                Message(body=label.encode(), properties={"KEYS": label}) for label in items
            )
            header: SendMessageRequestHeader | SendMessageRequestHeaderV2 = (
                SendMessageRequestHeaderV2(
                    producer_group="order_producer",
                    topic=TOPIC,
                    default_topic="TBW102",
                    default_topic_queue_nums=4,
                    queue_id=0,
                    sys_flag=0,
                    born_timestamp=born,
                    flag=0,
                    properties=encode_properties({"WAIT": "true"}),
                    reconsume_times=0,
                    unit_mode=False,
                    batch=True,
                )
            )
            code = RequestCode.SEND_BATCH_MESSAGE
        else:
            items = [str(opaque)]
            body = items[0].encode()
            fields = {
                "producer_group": "order_producer",
                "topic": TOPIC,
                "default_topic": "TBW102",
                "default_topic_queue_nums": 4,
                "queue_id": 0,
                "sys_flag": 0,
                "born_timestamp": born,
                "flag": 0,
                "properties": _properties(items[0]),
                "reconsume_times": 0,
                "unit_mode": False,
                "batch": False,
            }
            if kind == "v1":
                header = SendMessageRequestHeader(**fields)  # type: ignore[arg-type]
                code = RequestCode.SEND_MESSAGE
            else:
                header = SendMessageRequestHeaderV2(**fields)  # type: ignore[arg-type]
                code = RequestCode.SEND_MESSAGE_V2
        request = RemotingCommand.request(code, header, body=body)
        request = dataclasses.replace(
            request, opaque=opaque, flag=ONEWAY_FLAG if oneway else request.flag
        )
        frames.append(encode(request))
        labels.extend(items)
    return frames, labels


def chunks(data: bytes, pieces: int) -> Iterator[bytes]:
    size = -(-len(data) // pieces)
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_answers(
    stream: trio.SocketStream, splitter: FrameSplitter, wanted: int
) -> list[RemotingCommand]:
    answers: list[RemotingCommand] = []
    while len(answers) < wanted:
        payload = splitter.next_frame()
        if isinstance(payload, bytes):
            answers.append(decode_payload(payload))
            continue
        data = await stream.receive_some(1 << 16)
        assert data, "the broker closed the connection"
        splitter.feed(data)
    return answers


async def stored_labels(broker: Broker, begin: int, end: int) -> list[tuple[int, int, str]]:
    """(queue offset, commit-log offset, KEYS) of queue 0 of TOPIC from ``begin``."""
    found: list[tuple[int, int, str]] = []
    offset = begin
    while offset < end:
        result = await broker.store.get_message(GROUP, TOPIC, 0, offset, 32)
        assert result is not None and result.messages, (offset, result)
        for message in decode_messages(result.body()):
            found.append(
                (message.queue_offset, message.commit_log_offset, message.properties["KEYS"])
            )
        offset = result.next_begin_offset
    return found


async def pipeline_round(
    broker: Broker, rng: random.Random, count: int, writes: int, start_opaque: int
) -> int:
    """One round on a new connection; returns how many messages it stored."""
    frames, labels = send_frames(rng, count, start_opaque)
    two_way = sum(1 for frame in frames if not decode_frame_flag(frame) & ONEWAY_FLAG)
    begin = broker.store.get_max_offset_in_queue(TOPIC, 0)
    stream = await trio.open_tcp_stream("127.0.0.1", broker.listen_port)
    async with stream:
        splitter = FrameSplitter()
        answers: list[RemotingCommand] = []

        async def reader() -> None:
            answers.extend(await read_answers(stream, splitter, two_way))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            for piece in chunks(b"".join(frames), writes):
                await stream.send_all(piece)
    assert all(a.code == ResponseCode.SUCCESS for a in answers), {a.remark for a in answers}
    # Answers may come in any order (a SYNC_FLUSH send waits for its fsync),
    # but in write order their queue offsets grow.
    answers.sort(key=lambda a: a.opaque)
    queue_offsets = [int((a.ext_fields or {})["queueOffset"]) for a in answers]
    assert queue_offsets == sorted(queue_offsets)
    assert len(set(queue_offsets)) == len(queue_offsets)
    # Oneway sends after the last answered one may still be on their way.
    end = begin + len(labels)
    with trio.fail_after(10):
        await broker.store.queue_max_offset(TOPIC, 0).wait_value(lambda top: top >= end)
    stored = await stored_labels(broker, begin, end)
    assert [label for _, _, label in stored] == labels
    assert [q for q, _, _ in stored] == list(range(begin, end))
    physical = [p for _, p, _ in stored]
    assert physical == sorted(physical) and len(set(physical)) == len(physical)
    return len(labels)


def decode_frame_flag(frame: bytes) -> int:
    return decode_payload(frame[4:]).flag


async def run_rounds(tmp_path: Path, flush: str, big: int, rounds: int, size: int) -> None:
    """One round of ``big`` sends, then ``rounds`` of ``size``, on one broker."""
    rng = random.Random(f"{flush}{big}{rounds}")
    async with running_broker(order_settings(tmp_path, flush), timing=None) as broker:
        await broker.topic_config_manager.update_topic_config(
            TopicConfig(topic_name=TOPIC, read_queue_nums=1, write_queue_nums=1)
        )
        opaque = 1
        stored = await pipeline_round(broker, rng, big, 3, opaque)
        opaque += big
        for _ in range(rounds):
            stored += await pipeline_round(broker, rng, size, 2, opaque)
            opaque += size
        assert broker.store.get_max_offset_in_queue(TOPIC, 0) == stored


async def test_pipelined_sends_land_in_write_order(tmp_path: Path) -> None:
    with trio.fail_after(240):
        await run_rounds(tmp_path, "ASYNC_FLUSH", 3000, 100, 150)


async def test_order_holds_while_sync_flush_sends_wait_for_their_fsync(tmp_path: Path) -> None:
    # A SYNC_FLUSH send ends its ordered phase once appended (before its
    # fsync): the next one must still be appended after it.
    with trio.fail_after(120):
        await run_rounds(tmp_path, "SYNC_FLUSH", 1000, 10, 150)


async def test_back_to_back_offset_updates_end_with_the_last(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_broker(order_settings(tmp_path), timing=None) as broker:
            assert broker.data_plane is not None
            offsets = broker.data_plane.consumer_offset_manager
            for round_ in range(20):
                values = list(range(round_ * 1000, round_ * 1000 + 500))
                frames = []
                for n, value in enumerate(values):
                    header = UpdateConsumerOffsetRequestHeader(
                        consumer_group=GROUP, topic=TOPIC, queue_id=0, commit_offset=value
                    )
                    request = RemotingCommand.request(RequestCode.UPDATE_CONSUMER_OFFSET, header)
                    # All oneway but the last, which is answered once all are applied.
                    last = n == len(values) - 1
                    request = dataclasses.replace(
                        request, opaque=n + 1, flag=request.flag if last else ONEWAY_FLAG
                    )
                    frames.append(encode(request))
                stream = await trio.open_tcp_stream("127.0.0.1", broker.listen_port)
                async with stream:
                    await stream.send_all(b"".join(frames))
                    (answer,) = await read_answers(stream, FrameSplitter(), 1)
                assert answer.code == ResponseCode.SUCCESS
                assert offsets.query_offset(GROUP, TOPIC, 0) == values[-1]
