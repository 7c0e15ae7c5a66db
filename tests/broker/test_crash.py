"""A broker process killed with SIGKILL during a send storm under SYNC_FLUSH
loses nothing it acknowledged.

``python -m pyrocket broker`` runs as a child with its store in tmp_path;
senders on several connections keep SEND_MESSAGE_V2 requests in flight
(each sender to one queue, one at a time, so its messages have an order);
after enough SEND_OK answers the broker is killed mid-storm. A second broker
process on the same store must then serve, per queue, a dense run of
offsets without duplicates in which every acknowledged message sits at the
offset and commit-log position its answer named, each sender's messages in
the order it sent them. Pulled bodies are read with the test-side Java
layout decoder.
"""

from __future__ import annotations

import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import trio

from pyrocket.errors import RemotingError
from pyrocket.protocol.codes import ResponseCode
from pyrocket.remoting import ClientConfig, RemotingClient
from tests.broker.helpers import broker_process, broker_properties, pull_request, send_request
from tests.broker.java_layout import JavaMessage, decode_body

TOPIC = "CrashStormTopic"
QUEUES = 4
SENDERS_PER_QUEUE = 3
CONNECTIONS = 3
ACKS_BEFORE_KILL = 400


@dataclass(frozen=True)
class Ack:
    sender: int
    seq: int
    queue_id: int
    queue_offset: int
    msg_id: str


def crash_properties(root: Path) -> dict[str, str]:
    return broker_properties(
        root,
        brokerName="crash-broker",
        flushDiskType="SYNC_FLUSH",
        defaultTopicQueueNums=str(QUEUES),
        # Several commit-log files, so recovery has to walk across rolls.
        mappedFileSizeCommitLog=str(128 * 1024),
    )


async def storm(addr: str, acks: list[Ack]) -> int:
    """Send until the broker dies, appending every SEND_OK to ``acks``;
    return the number of requests whose fate is unknown (sent, no answer)."""
    unknown = 0

    async def sender(client: RemotingClient, sender_id: int) -> None:
        nonlocal unknown
        queue_id = sender_id % QUEUES
        seq = 0
        while True:
            body = f"{sender_id}:{seq}:".encode() + b"#" * (100 + 53 * (seq % 17))
            request = send_request(TOPIC, queue_id, body, keys=f"{sender_id}:{seq}")
            try:
                answer = await client.invoke_sync(addr, request, 5)
            except RemotingError:
                unknown += 1
                return
            assert answer.code == ResponseCode.SUCCESS, answer
            ext = answer.ext_fields or {}
            assert int(ext["queueId"]) == queue_id
            acks.append(Ack(sender_id, seq, queue_id, int(ext["queueOffset"]), ext["msgId"]))
            seq += 1

    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(RemotingClient(ClientConfig()))
            for _ in range(CONNECTIONS)
        ]
        async with trio.open_nursery() as nursery:
            for sender_id in range(QUEUES * SENDERS_PER_QUEUE):
                nursery.start_soon(sender, clients[sender_id % CONNECTIONS], sender_id)
    return unknown


async def pull_all(addr: str) -> dict[int, list[JavaMessage]]:
    stored: dict[int, list[JavaMessage]] = {}
    async with RemotingClient(ClientConfig()) as client:
        for queue_id in range(QUEUES):
            messages: list[JavaMessage] = []
            offset = 0
            while True:
                answer = await client.invoke_sync(addr, pull_request(TOPIC, queue_id, offset), 5)
                if answer.code != ResponseCode.SUCCESS:
                    assert answer.code == ResponseCode.PULL_NOT_FOUND, answer
                    break
                messages.extend(decode_body(answer.body or b""))
                offset = int((answer.ext_fields or {})["nextBeginOffset"])
            stored[queue_id] = messages
    return stored


def offset_msg_id(message: JavaMessage) -> str:
    """MessageDecoder.createMessageId: store host, port, commit-log offset."""
    raw = message.store_ip + message.store_port.to_bytes(4, "big")
    return (raw + message.physical_offset.to_bytes(8, "big")).hex().upper()


async def test_sigkill_during_a_send_storm_loses_no_acknowledged_message(tmp_path: Path) -> None:
    properties = crash_properties(tmp_path)
    with trio.fail_after(60):
        async with broker_process(properties) as (process, addr):
            acks: list[Ack] = []
            unknown = 0

            async def run_storm() -> None:
                nonlocal unknown
                unknown = await storm(addr, acks)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_storm)
                # Kill while the storm is at full speed; the senders stop at
                # their first request that fails.
                while len(acks) < ACKS_BEFORE_KILL:
                    await trio.sleep(0.005)
                    assert process.returncode is None
                process.send_signal(signal.SIGKILL)
            assert await process.wait() == -signal.SIGKILL
        assert len(acks) >= ACKS_BEFORE_KILL
        async with broker_process(properties) as (_, addr):
            stored = await pull_all(addr)

    total = sum(len(messages) for messages in stored.values())
    print(f"{len(acks)} acknowledged, {unknown} unanswered at the kill, {total} stored")
    by_position: dict[tuple[int, int], JavaMessage] = {}
    for queue_id, messages in stored.items():
        offsets = [m.queue_offset for m in messages]
        assert offsets == list(range(len(messages))), f"queue {queue_id}: offsets not dense"
        for message in messages:
            assert message.topic == TOPIC and message.queue_id == queue_id
            by_position[(queue_id, message.queue_offset)] = message
    for ack in acks:
        message = by_position.get((ack.queue_id, ack.queue_offset))
        assert message is not None, f"acknowledged {ack} lost"
        assert message.body.startswith(f"{ack.sender}:{ack.seq}:".encode()), ack
        assert message.properties["KEYS"] == f"{ack.sender}:{ack.seq}"
        assert offset_msg_id(message) == ack.msg_id, ack
    # Each sender's messages are stored in the order it sent them, each once;
    # only its last request (the one the kill cut off) may lack an answer.
    acked = {(ack.sender, ack.seq) for ack in acks}
    for queue_id, messages in stored.items():
        last: dict[int, int] = {}
        for message in messages:
            sender, seq = (int(part) for part in message.body.split(b":", 2)[:2])
            assert sender % QUEUES == queue_id
            assert seq == last.get(sender, -1) + 1, f"sender {sender} out of order at {seq}"
            last[sender] = seq
        for sender, seq in last.items():
            assert all((sender, n) in acked for n in range(seq)), sender
    assert total - len(acks) <= unknown
