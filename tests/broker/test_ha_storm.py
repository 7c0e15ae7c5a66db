"""Replication of a send storm with every kind of record a master writes:
bodies the producer compressed (sysFlag bit 0), batches, 4 MiB messages,
delayed messages (SCHEDULE_TOPIC_XXXX, then the real topic), and messages a
consumer gave back with CONSUMER_SEND_MSG_BACK (%RETRY% via the delay
queue, %DLQ% at once). The slave's commit log must be the master's, byte
for byte, and its consume queues the same files."""

from __future__ import annotations

import random
import time
import zlib
from pathlib import Path

import trio

from pyrocket.broker.app import Broker
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import ConsumerSendMsgBackRequestHeader, SendMessageRequestHeaderV2
from pyrocket.protocol.message import MessageSysFlag, decode_messages, encode_properties
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import pull_request, send_request
from tests.broker.test_ha import (
    TOPIC,
    assert_replica,
    batch_request,
    consume_queue_files,
    delayed_request,
    ha_address,
    master,
    pulled,
    slave,
)
from tests.remoting.helpers import wait_until

MB = 1024 * 1024
#: Files that hold two 4 MiB records; 4 MiB records allowed.
BIG = {"mappedFileSizeCommitLog": 9 * MB, "maxMessageSize": 4 * MB}
#: Bodies of 4 MiB less what the record's other fields take.
BIG_BODY = 4 * MB - 1024
GROUP = "storm_consumer"
RETRY = f"%RETRY%{GROUP}"
DLQ = f"%DLQ%{GROUP}"


def compressed_request(queue_id: int, text: bytes) -> RemotingCommand:
    """A send of a body the producer deflated, as Java's does over 4 KiB."""
    header = SendMessageRequestHeaderV2(
        producer_group="ha_producer",
        topic=TOPIC,
        default_topic="TBW102",
        default_topic_queue_nums=4,
        queue_id=queue_id,
        sys_flag=MessageSysFlag.COMPRESSED_FLAG,
        born_timestamp=int(time.time() * 1000),
        flag=0,
        properties=encode_properties({"TAGS": "Zipped", "WAIT": "true"}),
        reconsume_times=0,
        unit_mode=False,
        batch=False,
    )
    return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header, body=zlib.compress(text, 5))


def send_back_request(commit_log_offset: int, delay_level: int) -> RemotingCommand:
    header = ConsumerSendMsgBackRequestHeader(
        offset=commit_log_offset,
        group=GROUP,
        delay_level=delay_level,
        origin_msg_id=None,
        origin_topic=TOPIC,
        max_reconsume_times=16,
    )
    return RemotingCommand.request(RequestCode.CONSUMER_SEND_MSG_BACK, header)


def storm_plan(count: int, seed: int) -> tuple[list[RemotingCommand], int, dict[bytes, bytes]]:
    """Requests for TOPIC, how many messages they store, and the text of
    every compressed body (by its deflated bytes)."""
    rng = random.Random(seed)
    requests: list[RemotingCommand] = []
    stored = 0
    texts: dict[bytes, bytes] = {}
    for n in range(count):
        queue_id = rng.randrange(4)
        kind = rng.random()
        if n % 25 == 7:
            requests.append(send_request(TOPIC, queue_id, rng.randbytes(BIG_BODY)))
            stored += 1
        elif kind < 0.2:
            text = b"".join(b"line %d of %d\n" % (i, rng.randrange(1000)) for i in range(3000))
            request = compressed_request(queue_id, text)
            assert request.body is not None and len(request.body) < len(text) // 2
            texts[request.body] = text
            requests.append(request)
            stored += 1
        elif kind < 0.35:
            labels = [f"{seed}.{n}.{j}" for j in range(rng.randint(2, 5))]
            requests.append(batch_request(labels, queue_id))
            stored += len(labels)
        elif kind < 0.45:
            requests.append(delayed_request(queue_id, b"later %d" % n))
            stored += 1
        else:
            requests.append(send_request(TOPIC, queue_id, rng.randbytes(1024)))
            stored += 1
    return requests, stored, texts


async def storm(broker: Broker, requests: list[RemotingCommand]) -> None:
    """Send ``requests`` from 4 concurrent producers."""

    async def producer(mine: list[RemotingCommand]) -> None:
        async with RemotingClient() as client:
            for request in mine:
                answer = await client.invoke_sync(broker.broker_addr, request, 20)
                assert answer.code == ResponseCode.SUCCESS, (answer.code, answer.remark)

    async with trio.open_nursery() as nursery:
        for k in range(4):
            nursery.start_soon(producer, requests[k::4])


def in_topic(broker: Broker, topic: str) -> int:
    return sum(
        broker.store.get_max_offset_in_queue(topic, q) for q in broker.store.queue_ids(topic)
    )


async def test_slave_replicates_compressed_retry_delayed_batch_and_4_mib_messages(
    tmp_path: Path,
) -> None:
    with trio.fail_after(120):
        async with (
            master(tmp_path / "m", **BIG) as m,
            slave(tmp_path / "s", ha_address(m), **BIG) as s,
        ):
            first, stored, texts = storm_plan(60, seed=21)
            await storm(m, first)
            # A consumer gives back some of what it pulled: delay level 1
            # (%RETRY% after 1 s) and -1 (straight to %DLQ%), while the
            # producers send the second half of the storm.
            given_back = await pulled(m, 0)
            assert len(given_back) >= 6
            retried = given_back[:4]
            dead = given_back[4:6]
            second, more, more_texts = storm_plan(60, seed=22)
            stored += more
            texts.update(more_texts)

            async def consumer() -> None:
                async with RemotingClient() as client:
                    for entries, level in ((retried, 1), (dead, -1)):
                        for _, commit_log_offset, _ in entries:
                            request = send_back_request(commit_log_offset, level)
                            answer = await client.invoke_sync(m.broker_addr, request, 10)
                            assert answer.code == ResponseCode.SUCCESS, answer.remark

            async with trio.open_nursery() as nursery:
                nursery.start_soon(storm, m, second)
                nursery.start_soon(consumer)
            # Delayed sends and the retries come out of the schedule service.
            with trio.fail_after(15):
                await wait_until(
                    lambda: (
                        in_topic(m, TOPIC) == stored
                        and in_topic(m, RETRY) == len(retried)
                        and in_topic(m, DLQ) == len(dead)
                    ),
                    0.05,
                )
            await assert_replica(m, s)
            assert m.store.max_phy_offset > 3 * BIG["mappedFileSizeCommitLog"]
            master_queues = await trio.to_thread.run_sync(consume_queue_files, m)
            prefixes = {name.split("/", 1)[0] for name in master_queues}
            assert {TOPIC, RETRY, DLQ, "SCHEDULE_TOPIC_XXXX"} <= prefixes
            assert await trio.to_thread.run_sync(consume_queue_files, s) == master_queues
            # The slave serves what it holds as the master does: compressed
            # bodies as stored, 4 MiB ones whole.
            zipped = big = 0
            for queue_id in range(4):
                from_slave = await pulled(s, queue_id)
                assert from_slave == await pulled(m, queue_id)
                for _, _, body in from_slave:
                    if body in texts:
                        zipped += 1
                        assert zlib.decompress(body) == texts[body]
                    big += len(body) == BIG_BODY
            assert zipped == len(texts) > 0
            assert big >= 4
            # And the retried messages under their retry topic.
            for broker in (m, s):
                await broker.topic_config_manager.update_topic_config(
                    TopicConfig(topic_name=RETRY, read_queue_nums=1, write_queue_nums=1)
                )
            retry_bodies = []
            async with RemotingClient() as client:
                answer = await client.invoke_sync(
                    s.broker_addr, pull_request(RETRY, 0, 0, group=GROUP), 10
                )
                assert answer.code == ResponseCode.SUCCESS, (answer.code, answer.remark)
                for message in decode_messages(answer.body or b""):
                    assert message.properties["RETRY_TOPIC"] == TOPIC
                    retry_bodies.append(message.body)
            assert sorted(retry_bodies) == sorted(body for _, _, body in retried)
