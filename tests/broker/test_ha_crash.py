"""A SYNC_MASTER process killed with SIGKILL during a send storm: every
message it acknowledged is on its slave, at the commit-log position and
queue offset the answer named.

The master is a ``python -m pyrocket broker`` child; the slave runs in this
process and replicates it over the HA port. The senders are those of the
single-broker crash test (several per queue, one request in flight each).
"""

from __future__ import annotations

import signal
from pathlib import Path

import trio

from pyrocket.protocol.message import decode_offset_message_id
from tests.broker.helpers import broker_process, broker_properties
from tests.broker.test_crash import ACKS_BEFORE_KILL, QUEUES, TOPIC, Ack, storm
from tests.broker.test_ha import free_port_triple, slave
from tests.remoting.helpers import wait_until


async def test_sigkill_of_a_sync_master_loses_no_acknowledged_message(tmp_path: Path) -> None:
    port = free_port_triple()
    properties = broker_properties(
        tmp_path / "master",
        brokerName="broker-a",
        brokerRole="SYNC_MASTER",
        listenPort=str(port),
        defaultTopicQueueNums=str(QUEUES),
        mappedFileSizeCommitLog=str(128 * 1024),
        haSendHeartbeatInterval="200",
    )
    with trio.fail_after(90):
        async with (
            broker_process(properties) as (process, addr),
            slave(
                tmp_path / "slave",
                f"127.0.0.1:{port + 1}",
                mappedFileSizeCommitLog=128 * 1024,
                mappedFileSizeConsumeQueue=20 * 64,
            ) as s,
        ):
            assert s.ha_client is not None
            await s.ha_client.connected_to.wait_value(lambda value: value is not None)
            acks: list[Ack] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(storm, addr, acks)
                await wait_until(lambda: len(acks) >= ACKS_BEFORE_KILL)
                assert process.returncode is None
                process.send_signal(signal.SIGKILL)
            assert await process.wait() == -signal.SIGKILL
            await s.ha_client.connected_to.wait_value(lambda value: value is None)
            for ack in acks:
                _, commit_log_offset = decode_offset_message_id(ack.msg_id)
                message = s.store.look_message_by_offset(commit_log_offset)
                assert message is not None, f"acknowledged {ack} is not on the slave"
                assert message.body.startswith(f"{ack.sender}:{ack.seq}:".encode()), ack
                assert (message.queue_id, message.queue_offset) == (ack.queue_id, ack.queue_offset)
                found = await s.store.get_message("group", TOPIC, ack.queue_id, ack.queue_offset, 1)
                assert found is not None and found.messages, ack
            print(f"{len(acks)} acknowledged, all on the slave (up to {s.store.max_phy_offset})")
