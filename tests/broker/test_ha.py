"""Replication over real sockets: a pyrocket master and a pyrocket slave on
127.0.0.1 (Java's HA protocol), and a hand-driven slave socket speaking
bytes written out in the test."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from pyrocket.broker.app import Broker
from pyrocket.broker.store import MessageStore
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import SendMessageRequestHeaderV2
from pyrocket.protocol.message import Message, decode_messages, encode_batch, encode_properties
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, pull_request, running_broker, send_request
from tests.namesrv.helpers import address as namesrv_address
from tests.namesrv.helpers import running_namesrv
from tests.remoting.helpers import wait_until

TOPIC = "HaTopic"
FILE_SIZE = 512 * 1024
#: Small files, large messages allowed, quick heartbeats.
COMMON: dict[str, Any] = {
    "mappedFileSizeCommitLog": FILE_SIZE,
    "mappedFileSizeConsumeQueue": 20 * 256,
    "maxMessageSize": 200 * 1024,
    "haSendHeartbeatInterval": 200,
    "haHousekeepingInterval": 3000,
    "haTransferBatchSize": 32 * 1024,
}


def free_port_triple() -> int:
    """A port p with p - 2, p and p + 1 free (fast, main and HA servers)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port < 1026 or port + 1 > 65535:
            continue
        sockets = []
        try:
            for candidate in (port - 2, port, port + 1):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", candidate))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError("no free ports")


@asynccontextmanager
async def master(root: Path, **extra: Any) -> AsyncIterator[Broker]:
    settings = broker_settings(root, **{**COMMON, **extra})
    async with running_broker(settings, timing=None) as broker:
        await broker.topic_config_manager.update_topic_config(
            TopicConfig(topic_name=TOPIC, read_queue_nums=4, write_queue_nums=4)
        )
        yield broker


@asynccontextmanager
async def slave(root: Path, ha_address: str, **extra: Any) -> AsyncIterator[Broker]:
    settings = broker_settings(
        root,
        brokerId=1,
        brokerRole="SLAVE",
        haMasterAddress=ha_address,
        **{**COMMON, **extra},
    )
    async with running_broker(settings, timing=None) as broker:
        # No NameServer here, so the slave never learns its master's broker
        # address and SlaveSynchronize copies no topic config: pulls need it.
        await broker.topic_config_manager.update_topic_config(
            TopicConfig(topic_name=TOPIC, read_queue_nums=4, write_queue_nums=4)
        )
        yield broker


def ha_address(broker: Broker) -> str:
    return f"127.0.0.1:{broker.settings.store.ha_listen_port}"


def batch_request(labels: list[str], queue_id: int) -> RemotingCommand:
    header = SendMessageRequestHeaderV2(
        producer_group="ha_producer",
        topic=TOPIC,
        default_topic="TBW102",
        default_topic_queue_nums=4,
        queue_id=queue_id,
        sys_flag=0,
        born_timestamp=int(time.time() * 1000),
        flag=0,
        properties=encode_properties({"WAIT": "true"}),
        reconsume_times=0,
        unit_mode=False,
        batch=True,
    )
    body = encode_batch(
        Message(body=label.encode() * 50, properties={"KEYS": label}) for label in labels
    )
    return RemotingCommand.request(RequestCode.SEND_BATCH_MESSAGE, header, body=body)


async def send_storm(broker: Broker, count: int, seed: int) -> int:
    """``count`` sends (1 KiB, some 150 KiB, some batches) from 4 concurrent
    producers; returns how many messages were stored."""
    rng = random.Random(seed)
    stored = 0

    async def producer(requests: list[tuple[RemotingCommand, int]]) -> None:
        nonlocal stored
        async with RemotingClient() as client:
            for request, messages in requests:
                answer = await client.invoke_sync(broker.broker_addr, request, 10)
                assert answer.code == ResponseCode.SUCCESS, answer.remark
                stored += messages

    plans: list[list[tuple[RemotingCommand, int]]] = [[] for _ in range(4)]
    for n in range(count):
        queue_id = rng.randrange(4)
        kind = rng.random()
        if kind < 0.1:
            request, messages = send_request(TOPIC, queue_id, rng.randbytes(150 * 1024)), 1
        elif kind < 0.25:
            labels = [f"{seed}.{n}.{j}" for j in range(rng.randint(2, 5))]
            request, messages = batch_request(labels, queue_id), len(labels)
        else:
            request, messages = send_request(TOPIC, queue_id, rng.randbytes(1024)), 1
        plans[n % 4].append((request, messages))
    async with trio.open_nursery() as nursery:
        for plan in plans:
            nursery.start_soon(producer, plan)
    return stored


def delayed_request(queue_id: int, body: bytes) -> RemotingCommand:
    """A send with delay level 1 (1 s): stored in SCHEDULE_TOPIC_XXXX first."""
    header = SendMessageRequestHeaderV2(
        producer_group="ha_producer",
        topic=TOPIC,
        default_topic="TBW102",
        default_topic_queue_nums=4,
        queue_id=queue_id,
        sys_flag=0,
        born_timestamp=int(time.time() * 1000),
        flag=0,
        properties=encode_properties({"TAGS": "Delayed", "WAIT": "true", "DELAY": "1"}),
        reconsume_times=0,
        unit_mode=False,
        batch=False,
    )
    return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header, body=body)


def consume_queue_files(broker: Broker) -> dict[str, bytes]:
    """Every consume-queue file (topic/queue/name -> bytes) that is not all zeros."""
    root = broker.settings.store.root_dir / "consumequeue"
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if data.strip(b"\x00"):
                found[str(path.relative_to(root))] = data
    return found


def index_files(broker: Broker) -> list[bytes]:
    """The bytes of every index file, oldest first (names are creation times,
    which differ between brokers; the contents do not)."""
    root = broker.settings.store.root_dir / "index"
    return [path.read_bytes() for path in sorted(root.iterdir()) if path.is_file()]


async def commit_log_bytes(store: MessageStore) -> bytes:
    """Every commit-log byte from the first file's start to the end."""
    chunks: list[bytes] = []
    offset = max(store.min_phy_offset, 0)
    while True:
        data = await store.read_commit_log_data(offset, 1 << 20)
        if data is None:
            break
        chunks.append(data)
        offset += len(data)
    assert offset == store.max_phy_offset
    return b"".join(chunks)


async def caught_up(master_broker: Broker, slave_broker: Broker) -> None:
    with trio.fail_after(20):
        await wait_until(
            lambda: slave_broker.store.max_phy_offset == master_broker.store.max_phy_offset
        )


async def assert_replica(master_broker: Broker, slave_broker: Broker) -> None:
    """Same commit-log bytes at the same offsets; same consume queues."""
    await caught_up(master_broker, slave_broker)
    master_store, slave_store = master_broker.store, slave_broker.store
    assert slave_store.min_phy_offset == master_store.min_phy_offset
    assert await commit_log_bytes(slave_store) == await commit_log_bytes(master_store)
    for queue_id in range(4):
        assert slave_store.get_max_offset_in_queue(
            TOPIC, queue_id
        ) == master_store.get_max_offset_in_queue(TOPIC, queue_id)


async def pulled(broker: Broker, queue_id: int) -> list[tuple[int, int, bytes]]:
    """(queue offset, commit-log offset, body) of a whole queue, over PULL_MESSAGE."""
    found: list[tuple[int, int, bytes]] = []
    offset = 0
    async with RemotingClient() as client:
        while True:
            answer = await client.invoke_sync(
                broker.broker_addr, pull_request(TOPIC, queue_id, offset), 10
            )
            if answer.code != ResponseCode.SUCCESS:
                assert answer.code == ResponseCode.PULL_NOT_FOUND, (answer.code, answer.remark)
                return found
            messages = decode_messages(answer.body or b"")
            assert messages
            for message in messages:
                found.append((message.queue_offset, message.commit_log_offset, message.body))
            offset = messages[-1].queue_offset + 1


async def test_slave_replicates_a_send_storm_byte_for_byte(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with master(tmp_path / "m") as m, slave(tmp_path / "s", ha_address(m)) as s:
            stored = await send_storm(m, 120, seed=1)
            async with RemotingClient() as client:
                for queue_id in range(4):
                    answer = await client.invoke_sync(
                        m.broker_addr, delayed_request(queue_id, b"later"), 5
                    )
                    assert answer.code == ResponseCode.SUCCESS, answer.remark
            stored += 4
            # Delivered to TOPIC by the master's schedule service after 1 s.
            with trio.fail_after(10):
                await wait_until(
                    lambda: (
                        sum(m.store.get_max_offset_in_queue(TOPIC, q) for q in range(4)) == stored
                    ),
                    0.05,
                )
            await assert_replica(m, s)
            # The consume queues are built alike, delay queue (deliver times
            # as tags codes) included.
            master_queues = await trio.to_thread.run_sync(consume_queue_files, m)
            assert any(name.startswith("SCHEDULE_TOPIC_XXXX/") for name in master_queues)
            assert await trio.to_thread.run_sync(consume_queue_files, s) == master_queues
            # The slave indexes what it receives as the master indexed it.
            await trio.to_thread.run_sync(m.store._files.index.flush_all)  # type: ignore[union-attr]
            await trio.to_thread.run_sync(s.store._files.index.flush_all)  # type: ignore[union-attr]
            master_index = await trio.to_thread.run_sync(index_files, m)
            assert master_index
            assert await trio.to_thread.run_sync(index_files, s) == master_index
            assert m.store.max_phy_offset > 2 * FILE_SIZE  # several files rolled
            total = 0
            for queue_id in range(4):
                from_slave = await pulled(s, queue_id)
                assert from_slave == await pulled(m, queue_id)
                assert [entry[0] for entry in from_slave] == list(range(len(from_slave)))
                total += len(from_slave)
            assert total == stored
            # The master counts the slave's acknowledgement.
            with trio.fail_after(5):
                await m.ha_service.push2slave_max_offset.wait_value(
                    lambda acked: acked == m.store.max_phy_offset
                )


async def test_slave_refuses_sends(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with master(tmp_path / "m") as m, slave(tmp_path / "s", ha_address(m)) as s:
            async with RemotingClient() as client:
                answer = await client.invoke_sync(s.broker_addr, send_request(TOPIC, 0, b"x"), 5)
            # The store refuses (DefaultMessageStore.putMessage in slave mode).
            assert answer.code == ResponseCode.SERVICE_NOT_AVAILABLE, answer.remark
            assert (answer.remark or "").startswith("service not available now")
            assert s.store.max_phy_offset == 0


async def test_new_slave_starts_at_the_masters_last_file(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with master(tmp_path / "m") as m:
            await send_storm(m, 60, seed=2)
            last_file = m.store.max_phy_offset - m.store.max_phy_offset % FILE_SIZE
            assert last_file > 0
            async with slave(tmp_path / "s", ha_address(m)) as s:
                await caught_up(m, s)
                assert s.store.min_phy_offset == last_file
                master_tail = await m.store.read_commit_log_data(last_file, FILE_SIZE)
                assert await commit_log_bytes(s.store) == master_tail


async def test_sync_master_without_slave_answers_slave_not_available(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with master(tmp_path / "m", brokerRole="SYNC_MASTER") as m:
            async with RemotingClient() as client:
                answer = await client.invoke_sync(m.broker_addr, send_request(TOPIC, 0, b"x"), 5)
            assert answer.code == ResponseCode.SLAVE_NOT_AVAILABLE
            assert m.store.max_phy_offset > 0  # stored, only not replicated


async def test_sync_master_acknowledges_only_what_the_slave_has(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with (
            master(tmp_path / "m", brokerRole="SYNC_MASTER") as m,
            slave(tmp_path / "s", ha_address(m)) as s,
            RemotingClient() as client,
        ):
            with trio.fail_after(10):
                await wait_until(lambda: bool(m.ha_service.connections))
            rng = random.Random(3)
            for n in range(40):
                size = 150 * 1024 if n % 10 == 0 else 1024
                request = send_request(TOPIC, n % 4, rng.randbytes(size))
                answer = await client.invoke_sync(m.broker_addr, request, 10)
                assert answer.code == ResponseCode.SUCCESS, (answer.code, answer.remark)
                # Nothing else sends: the master's end is this message's end.
                assert s.store.max_phy_offset >= m.store.max_phy_offset
            # Concurrent producers: every send answered SUCCESS (send_storm checks).
            await send_storm(m, 60, seed=11)
            assert s.store.max_phy_offset == m.store.max_phy_offset
            await assert_replica(m, s)


async def receive_exactly(stream: trio.SocketStream, size: int) -> bytes:
    received = b""
    while len(received) < size:
        data = await stream.receive_some(size - len(received))
        assert data, "closed"
        received += data
    return received


async def test_sync_master_times_out_when_the_slave_does_not_acknowledge(tmp_path: Path) -> None:
    """A hand-driven slave: its report and the master's frames are checked
    against bytes written out here."""
    with trio.fail_after(30):
        async with master(tmp_path / "m", brokerRole="SYNC_MASTER", syncFlushTimeout=300) as m:
            port = m.settings.store.ha_listen_port
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream, RemotingClient() as client:
                await stream.send_all(b"\x00\x00\x00\x00\x00\x00\x00\x00")
                # An empty master's first frame is a heartbeat at offset 0.
                assert await receive_exactly(stream, 12) == b"\x00" * 8 + b"\x00\x00\x00\x00"
                answer = await client.invoke_sync(
                    m.broker_addr, send_request(TOPIC, 0, b"hello"), 5
                )
                # Stored, only not replicated in time: answered as a send (Java's sendOK).
                assert answer.code == ResponseCode.FLUSH_SLAVE_TIMEOUT
                assert answer.remark is None and "msgId" in (answer.ext_fields or {})
                end = m.store.max_phy_offset
                expected = await m.store.read_commit_log_data(0, end)
                assert expected is not None and len(expected) == end
                # Heartbeats (offset 0, size 0) may come first, then the data.
                while True:
                    header = await receive_exactly(stream, 12)
                    if header != b"\x00" * 12:
                        break
                assert header == b"\x00" * 8 + end.to_bytes(4, "big")
                assert await receive_exactly(stream, end) == expected
                # Acknowledged now: the next send waits for this report.
                await stream.send_all(end.to_bytes(8, "big"))
                with trio.fail_after(5):
                    await m.ha_service.push2slave_max_offset.wait_value(lambda v: v == end)
                # Idle: a heartbeat carrying the next offset every haSendHeartbeatInterval.
                for _ in range(2):
                    with trio.fail_after(2):
                        heartbeat = await receive_exactly(stream, 12)
                    assert heartbeat == end.to_bytes(8, "big") + b"\x00\x00\x00\x00"


async def test_dead_slave_is_closed_by_housekeeping(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with master(tmp_path / "m", haHousekeepingInterval=500) as m:
            stream = await trio.open_tcp_stream("127.0.0.1", m.settings.store.ha_listen_port)
            async with stream:
                await stream.send_all(b"\x00" * 8)
                with trio.fail_after(5):
                    await wait_until(lambda: bool(m.ha_service.connections))
                # Silent from now on: closed within the housekeeping interval.
                with trio.fail_after(5):
                    while await stream.receive_some():
                        pass
                assert not m.ha_service.connections


async def test_slave_resumes_after_its_own_restart(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with master(tmp_path / "m") as m:
            async with slave(tmp_path / "s", ha_address(m)) as s:
                await send_storm(m, 40, seed=4)
                await caught_up(m, s)
            await send_storm(m, 40, seed=5)
            async with slave(tmp_path / "s", ha_address(m)) as s:
                await send_storm(m, 20, seed=6)
                await assert_replica(m, s)
                for queue_id in range(4):
                    assert await pulled(s, queue_id) == await pulled(m, queue_id)


async def test_slave_resumes_after_a_master_restart(tmp_path: Path) -> None:
    port = free_port_triple()
    address = f"127.0.0.1:{port + 1}"
    with trio.fail_after(120):
        async with master(tmp_path / "m", listenPort=port) as m:
            assert m.settings.store.ha_listen_port == port + 1
            async with slave(tmp_path / "s", address) as s:
                await send_storm(m, 40, seed=7)
                await caught_up(m, s)
            first_end = m.store.max_phy_offset
        # The slave starts while the master is down, and keeps running
        # through two master restarts.
        async with slave(tmp_path / "s", address) as s:
            assert s.store.max_phy_offset == first_end
            await trio.sleep(0.5)  # a few refused connection attempts
            async with master(tmp_path / "m", listenPort=port) as m:
                await send_storm(m, 40, seed=8)
                await assert_replica(m, s)
            with trio.fail_after(10):
                assert s.ha_client is not None
                await s.ha_client.connected_to.wait_value(lambda addr: addr is None)
            async with master(tmp_path / "m", listenPort=port) as m:
                await send_storm(m, 20, seed=9)
                await assert_replica(m, s)
                for queue_id in range(4):
                    assert await pulled(s, queue_id) == await pulled(m, queue_id)


async def test_sync_master_answers_slave_not_available_when_the_slave_is_far_behind(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        async with master(
            tmp_path / "m",
            brokerRole="SYNC_MASTER",
            haSlaveFallbehindMax=1000,
            syncFlushTimeout=300,
        ) as m:
            stream = await trio.open_tcp_stream("127.0.0.1", m.settings.store.ha_listen_port)
            async with stream, RemotingClient() as client:
                await stream.send_all(b"\x00" * 8)
                with trio.fail_after(5):
                    await wait_until(lambda: bool(m.ha_service.connections))
                small = await client.invoke_sync(m.broker_addr, send_request(TOPIC, 0, b"x"), 5)
                # Within 1000 bytes of what the slave acknowledged (0): waited, timed out.
                assert small.code == ResponseCode.FLUSH_SLAVE_TIMEOUT
                big = await client.invoke_sync(
                    m.broker_addr, send_request(TOPIC, 0, b"x" * 2000), 5
                )
                assert big.code == ResponseCode.SLAVE_NOT_AVAILABLE
                assert big.remark is None and "msgId" in (big.ext_fields or {})


async def record_bytes(root: Path, bodies: list[bytes]) -> bytes:
    """Commit-log bytes of ``bodies`` as a master stores them from offset 0."""
    async with running_broker(broker_settings(root, **COMMON), timing=None) as broker:
        async with RemotingClient() as client:
            for body in bodies:
                answer = await client.invoke_sync(
                    broker.broker_addr, send_request(TOPIC, 0, body), 5
                )
                assert answer.code == ResponseCode.SUCCESS
        data = await broker.store.read_commit_log_data(0, FILE_SIZE)
        assert data is not None and len(data) == broker.store.max_phy_offset
        return data


async def test_slave_against_a_hand_driven_master(tmp_path: Path) -> None:
    """The slave's reports and its handling of frames at a wrong offset and
    of bytes that are not records, with the master's bytes written here."""
    records = await record_bytes(tmp_path / "source", [b"first", b"second"])
    first_end = int.from_bytes(records[0:4], "big")  # the first record's size
    assert 0 < first_end < len(records)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = listeners[0]
    port = listener.socket.getsockname()[1]
    with trio.fail_after(60):
        async with listener, slave(tmp_path / "s", f"127.0.0.1:{port}") as s:
            stream = await listener.accept()
            async with stream:
                assert await receive_exactly(stream, 8) == b"\x00" * 8
                # The first record, split over two frames.
                await stream.send_all(b"\x00" * 8 + (10).to_bytes(4, "big") + records[:10])
                await stream.send_all(
                    (10).to_bytes(8, "big")
                    + (first_end - 10).to_bytes(4, "big")
                    + records[10:first_end]
                )
                # Reports say what is appended; the last one counts.
                while True:
                    report = int.from_bytes(await receive_exactly(stream, 8), "big")
                    if report == first_end:
                        break
                    assert report in (0, 10)
                assert s.store.get_max_offset_in_queue(TOPIC, 0) == 1
                # A heartbeat at an offset that is not the slave's end: closed.
                await stream.send_all((first_end + 1).to_bytes(8, "big") + b"\x00" * 4)
                with trio.fail_after(5):
                    while await stream.receive_some():
                        pass
            stream = await listener.accept()
            async with stream:
                assert await receive_exactly(stream, 8) == first_end.to_bytes(8, "big")
                # Bytes that are no record: cut off again, connection closed.
                junk = (200).to_bytes(4, "big") + b"\x12\x34\x56\x78" + b"\x00" * 192
                await stream.send_all(
                    first_end.to_bytes(8, "big") + len(junk).to_bytes(4, "big") + junk
                )
                with trio.fail_after(5):
                    while await stream.receive_some():
                        pass
                assert s.store.max_phy_offset == first_end
            stream = await listener.accept()
            async with stream:
                assert await receive_exactly(stream, 8) == first_end.to_bytes(8, "big")
                rest = records[first_end:]
                await stream.send_all(
                    first_end.to_bytes(8, "big") + len(rest).to_bytes(4, "big") + rest
                )
                with trio.fail_after(5):
                    await wait_until(lambda: s.store.max_phy_offset == len(records))
                assert s.store.get_max_offset_in_queue(TOPIC, 0) == 2
                assert [body for _, _, body in await pulled(s, 0)] == [b"first", b"second"]


async def test_slave_learns_its_master_from_the_nameserver(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_namesrv(tmp_path / "ns") as namesrv:
            names = [namesrv_address(namesrv)]
            master_settings = broker_settings(tmp_path / "m", names, **COMMON)
            slave_settings = broker_settings(
                tmp_path / "s", names, brokerId=1, brokerRole="SLAVE", **COMMON
            )
            async with running_broker(master_settings) as m, running_broker(slave_settings) as s:
                await m.topic_config_manager.update_topic_config(
                    TopicConfig(topic_name=TOPIC, read_queue_nums=4, write_queue_nums=4)
                )
                assert s.ha_client is not None
                await s.registration.ha_master_addr.wait_value(lambda addr: addr is not None)
                assert s.registration.ha_master_addr.value == m.settings.ha_server_addr
                await s.ha_client.connected_to.wait_value(lambda addr: addr is not None)
                await send_storm(m, 20, seed=10)
                await assert_replica(m, s)


async def test_slave_restart_drops_a_torn_record(tmp_path: Path) -> None:
    records = await record_bytes(tmp_path / "source", [b"only"])
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = listeners[0]
    port = listener.socket.getsockname()[1]
    with trio.fail_after(60):
        async with listener:
            async with slave(tmp_path / "s", f"127.0.0.1:{port}") as s:
                stream = await listener.accept()
                async with stream:
                    assert await receive_exactly(stream, 8) == b"\x00" * 8
                    await stream.send_all(b"\x00" * 8 + (40).to_bytes(4, "big") + records[:40])
                    while int.from_bytes(await receive_exactly(stream, 8), "big") != 40:
                        pass
                    assert s.store.max_phy_offset == 40
                    assert s.store.get_max_offset_in_queue(TOPIC, 0) == 0
            # Restarted, the slave has cut the torn record and asks from 0.
            async with slave(tmp_path / "s", f"127.0.0.1:{port}") as s:
                assert s.store.max_phy_offset == 0
                stream = await listener.accept()
                async with stream:
                    assert await receive_exactly(stream, 8) == b"\x00" * 8
                    await stream.send_all(b"\x00" * 8 + len(records).to_bytes(4, "big") + records)
                    with trio.fail_after(5):
                        await wait_until(lambda: s.store.get_max_offset_in_queue(TOPIC, 0) == 1)
                    assert [body for _, _, body in await pulled(s, 0)] == [b"only"]


async def test_slave_leaves_a_silent_master_and_connects_again(tmp_path: Path) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = listeners[0]
    port = listener.socket.getsockname()[1]
    with trio.fail_after(30):
        async with (
            listener,
            slave(tmp_path / "s", f"127.0.0.1:{port}", haHousekeepingInterval=500) as s,
        ):
            first = await listener.accept()
            async with first:
                assert await receive_exactly(first, 8) == b"\x00" * 8
                # No frame, no heartbeat: the slave closes within the interval.
                with trio.fail_after(3):
                    while await first.receive_some():
                        pass
            second = await listener.accept()
            async with second:
                assert await receive_exactly(second, 8) == b"\x00" * 8
                assert s.ha_client is not None
                assert s.ha_client.connected_to.value == f"127.0.0.1:{port}"


async def test_slave_keeps_consume_queue_extension_files_like_the_master(tmp_path: Path) -> None:
    ext = {"enableConsumeQueueExt": "true", "mappedFileSizeConsumeQueueExt": str(64 * 1024)}
    with trio.fail_after(60):
        async with (
            master(tmp_path / "m", **ext) as m,
            slave(tmp_path / "s", ha_address(m), **ext) as s,
        ):
            stored = await send_storm(m, 60, seed=3)
            await assert_replica(m, s)
            master_queues = await trio.to_thread.run_sync(consume_queue_files, m)
            assert await trio.to_thread.run_sync(consume_queue_files, s) == master_queues
            total = 0
            for queue_id in range(4):
                from_slave = await pulled(s, queue_id)
                assert from_slave == await pulled(m, queue_id)
                total += len(from_slave)
            assert total == stored
            ext_root = s.settings.store.root_dir / "consumequeue_ext"
            assert any(path.is_file() for path in ext_root.rglob("*"))
