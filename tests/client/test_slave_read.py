"""Reading from slaves over real sockets: a NameServer, a pyrocket master and
its slave (and a second broker name), and pyrocket's consumer and producer.
A master that finds a consumer far behind points it at the slave; the
consumer follows; once the master is gone, what it had stored is read from
the slave and the producer sends to the other broker name."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from pyrocket.broker.app import Broker
from pyrocket.broker.config import BrokerSettings
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.consumer import PushConsumer
from pyrocket.client.instance import ClientInstance
from pyrocket.client.lite_pull import LitePullConsumer
from pyrocket.client.producer import Producer, new_message
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import PullMessageRequestHeader, PullMessageResponseHeader
from pyrocket.protocol.message import MessageExt
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.test_ha import COMMON, caught_up
from tests.client.helpers import consumer
from tests.namesrv.helpers import address as namesrv_address
from tests.namesrv.helpers import running_namesrv
from tests.remoting.helpers import wait_until

TOPIC = "SlaveReadTopic"
QUEUES = 2


@dataclass(frozen=True, slots=True)
class Pull:
    """One PULL_MESSAGE the consumer sent, and how it was answered."""

    addr: str
    topic: str
    queue_id: int
    code: int
    answer: PullMessageResponseHeader | None
    found: int


class PullRecorder:
    """Wraps a consumer's PULL_MESSAGE call: records where each pull went and
    what came back, and can hold new pulls back while closed."""

    def __init__(self, brokers: BrokerAPI) -> None:
        self.pulls: list[Pull] = []
        self.in_flight = 0
        self._real = brokers.pull_message
        self._open = trio.Event()
        self._open.set()
        brokers.pull_message = self._pull  # type: ignore[method-assign]

    def close(self) -> None:
        self._open = trio.Event()

    def open(self) -> None:
        self._open.set()

    async def _pull(
        self,
        addr: str,
        header: PullMessageRequestHeader,
        timeout: float,  # noqa: ASYNC109
    ) -> RemotingCommand:
        await self._open.wait()
        self.in_flight += 1
        try:
            response = await self._real(addr, header, timeout)
        finally:
            self.in_flight -= 1
        answer = None
        if response.code in (
            ResponseCode.SUCCESS,
            ResponseCode.PULL_NOT_FOUND,
            ResponseCode.PULL_RETRY_IMMEDIATELY,
            ResponseCode.PULL_OFFSET_MOVED,
        ):
            answer = response.decode_header(PullMessageResponseHeader)
        found = 0
        if response.code == ResponseCode.SUCCESS and answer is not None:
            found = answer.next_begin_offset - header.queue_offset
        if header.topic == TOPIC:
            self.pulls.append(
                Pull(addr, header.topic, header.queue_id, response.code, answer, found)
            )
        return response


async def add_topic(*brokers: Broker) -> None:
    # The slave has no copy of its master's topics yet: made by hand here.
    for broker in brokers:
        await broker.topic_config_manager.update_topic_config(
            TopicConfig(topic_name=TOPIC, read_queue_nums=QUEUES, write_queue_nums=QUEUES)
        )


class Stoppable:
    """A broker run in a task of its own, so that it can be stopped while
    the clients opened after it go on."""

    def __init__(self) -> None:
        self._stop = trio.Event()
        self._stopped = trio.Event()

    async def run(self, settings: BrokerSettings, *, task_status: trio.TaskStatus[Broker]) -> None:
        try:
            async with running_broker(settings) as broker:
                task_status.started(broker)
                await self._stop.wait()
        finally:
            self._stopped.set()

    async def stop(self) -> None:
        self._stop.set()
        await self._stopped.wait()


@asynccontextmanager
async def pair(
    root: Path, names: list[str], name: str = "broker-a", **master_extra: Any
) -> AsyncIterator[tuple[Stoppable, Broker, Broker]]:
    """A master and its slave registered with ``names``; the master may be
    stopped alone."""
    slave_settings = broker_settings(
        root / "s",
        names,
        brokerName=name,
        brokerId=1,
        brokerRole="SLAVE",
        slaveReadEnable="true",
        **COMMON,
    )
    master_settings = broker_settings(
        root / "m", names, brokerName=name, **{**COMMON, **master_extra}
    )
    master = Stoppable()
    async with running_broker(slave_settings) as s, trio.open_nursery() as nursery:
        m: Broker = await nursery.start(functools.partial(master.run, master_settings))
        await add_topic(m, s)
        assert s.ha_client is not None
        await s.ha_client.connected_to.wait_value(lambda addr: addr is not None)
        yield master, m, s
        await master.stop()


def bodies(messages: list[MessageExt]) -> list[bytes]:
    return sorted(m.body for m in messages)


async def take(source: PushConsumer, count: int) -> list[MessageExt]:
    return [await source.receive() for _ in range(count)]


async def send_all(producer: Producer, labels: list[str]) -> list[str]:
    """Send one message per label; the broker name each went to."""
    names = []
    for label in labels:
        result = await producer.send(new_message(TOPIC, label.encode()))
        names.append(result.queue.broker_name or "")
    return names


async def test_a_consumer_far_behind_is_sent_to_the_slave(tmp_path: Path) -> None:
    labels = [f"m{i}" for i in range(40)]
    with trio.fail_after(60):
        async with running_namesrv(tmp_path / "ns") as namesrv:
            names = [namesrv_address(namesrv)]
            # Ratio 0: no message counts as in memory, so whoever is behind
            # at all is far behind.
            async with pair(
                tmp_path, names, slaveReadEnable="true", accessMessageInMemoryMaxRatio=0
            ) as (_, m, s):
                async with Producer("slave_read_producer", names, client_ip="127.0.0.1") as p:
                    await send_all(p, labels)
                await caught_up(m, s)
                reader = consumer(names[0], "slave_read_group", TOPIC, pull_batch_size=4)
                recorder = PullRecorder(reader.instance.brokers)
                async with reader:
                    got = await take(reader, len(labels))
    assert bodies(got) == sorted(label.encode() for label in labels)
    from_master = [p for p in recorder.pulls if p.addr == m.broker_addr and p.found]
    from_slave = [p for p in recorder.pulls if p.addr == s.broker_addr and p.found]
    # The master suggests the slave (whichBrokerWhenConsumeSlowly, 1) each
    # time it serves messages, and the queue's next pull goes there.
    assert from_master and all(
        p.answer is not None and p.answer.suggest_which_broker_id == 1 for p in from_master
    )
    for index, pull in enumerate(recorder.pulls):
        if pull in from_master:
            after = [q for q in recorder.pulls[index + 1 :] if q.queue_id == pull.queue_id]
            assert not after or after[0].addr == s.broker_addr
    # The slave serves, and (the consumer being close behind it) sends the
    # consumer back to the group's broker id, the master.
    assert sum(p.found for p in from_slave) > 0
    assert all(p.answer is not None and p.answer.suggest_which_broker_id == 0 for p in from_slave)
    assert sum(p.found for p in from_master) + sum(p.found for p in from_slave) == len(labels)


async def test_the_slave_serves_what_the_master_stored_once_it_is_gone(tmp_path: Path) -> None:
    first = [f"first{i}" for i in range(10)]
    second = [f"second{i}" for i in range(20)]
    third = [f"third{i}" for i in range(10)]
    fast: dict[str, Any] = {"poll_name_server_interval": 0.2, "heartbeat_interval": 1.0}
    with trio.fail_after(90):
        async with running_namesrv(tmp_path / "ns") as namesrv:
            names = [namesrv_address(namesrv)]
            b_settings = broker_settings(tmp_path / "b", names, brokerName="broker-b", **COMMON)
            async with running_broker(b_settings) as b:
                await add_topic(b)
                async with pair(tmp_path / "a", names) as (master_a, m, s):
                    reader = consumer(
                        names[0], "failover_group", TOPIC, broker_suspend_max=0.5, **fast
                    )
                    recorder = PullRecorder(reader.instance.brokers)
                    producer = Producer("failover_producer", names, client_ip="127.0.0.1", **fast)
                    async with producer, reader:
                        sent = await send_all(producer, first)
                        assert set(sent) == {"broker-a", "broker-b"}
                        got_first = await take(reader, len(first))
                        # Hold the consumer's pulls back, and let those held
                        # at the brokers come home empty.
                        recorder.close()
                        await wait_until(lambda: recorder.in_flight == 0)
                        held_back = len(recorder.pulls)
                        sent = await send_all(producer, second)
                        on_a = sent.count("broker-a")
                        assert on_a > 0
                        await caught_up(m, s)
                        await master_a.stop()
                        # The routes now list broker-a's slave alone.
                        await wait_until(
                            lambda: (
                                reader.instance.broker_addrs.get("broker-a") == {1: s.broker_addr}
                            )
                        )
                        await wait_until(
                            lambda: (
                                producer.instance.broker_addrs.get("broker-a") == {1: s.broker_addr}
                            )
                        )
                        recorder.open()
                        got_second = await take(reader, len(second))
                        # Offsets are committed to the slave now (Java's
                        # findBrokerAddressInAdmin), up to its queues' ends.
                        await reader.commit()
                        assert s.data_plane is not None
                        offsets = s.data_plane.consumer_offset_manager
                        assert [
                            offsets.query_offset("failover_group", TOPIC, q) for q in range(QUEUES)
                        ] == [s.store.get_max_offset_in_queue(TOPIC, q) for q in range(QUEUES)]
                        # No master for broker-a: every send goes to broker-b.
                        queues = await producer.publish_queues(TOPIC)
                        assert {q.broker_name for q in queues} == {"broker-b"}
                        assert set(await send_all(producer, third)) == {"broker-b"}
                        got_third = await take(reader, len(third))
    assert bodies(got_first) == sorted(label.encode() for label in first)
    assert bodies(got_second) == sorted(label.encode() for label in second)
    assert bodies(got_third) == sorted(label.encode() for label in third)
    later = recorder.pulls[held_back:]
    served_a = sum(p.found for p in later if p.addr == s.broker_addr)
    assert served_a == on_a
    assert not [p for p in later if p.addr == m.broker_addr and p.found]
    assert b.broker_addr != s.broker_addr


async def slave_only_route(names: list[str], slave: Broker) -> None:
    """Wait until the NameServer lists ``slave`` alone for broker-a."""
    async with ClientInstance(names, client_ip="127.0.0.1") as probe:
        while True:
            await probe.update_route(TOPIC)
            if probe.broker_addrs.get("broker-a") == {1: slave.broker_addr}:
                return
            await trio.sleep(0.05)


async def test_consumers_started_without_a_master_read_the_slave(tmp_path: Path) -> None:
    labels = [f"late{i}" for i in range(10)]
    wanted = sorted(label.encode() for label in labels)
    with trio.fail_after(60):
        async with running_namesrv(tmp_path / "ns") as namesrv:
            names = [namesrv_address(namesrv)]
            async with pair(tmp_path, names) as (master, m, s):
                async with Producer("late_producer", names, client_ip="127.0.0.1") as p:
                    await send_all(p, labels)
                await caught_up(m, s)
                await master.stop()
                await slave_only_route(names, s)
                # QUERY_CONSUMER_OFFSET goes to the slave; a group it has no
                # offset for starts at 0 (the queue's start is in memory).
                pushed = consumer(
                    names[0],
                    "late_push",
                    TOPIC,
                    consume_from=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
                )
                async with pushed:
                    got_push = await take(pushed, len(labels))
                lite = LitePullConsumer(
                    "late_lite", names, client_ip="127.0.0.1", auto_commit=False
                )
                async with lite:
                    await lite.subscribe(TOPIC)
                    got_lite: list[MessageExt] = []
                    while len(got_lite) < len(labels):
                        got_lite += await lite.poll(timeout=1.0)
                    await lite.commit_sync()
                    queues = sorted(
                        await lite.fetch_message_queues(TOPIC), key=lambda q: q.queue_id
                    )
                    committed = [await lite.committed(q) for q in queues]
                ends = [s.store.get_max_offset_in_queue(TOPIC, q.queue_id) for q in queues]
    assert bodies(got_push) == wanted
    assert bodies(got_lite) == wanted
    assert committed == ends and sum(ends) == len(labels)
    assert s.data_plane is not None
    offsets = s.data_plane.consumer_offset_manager
    assert [offsets.query_offset("late_lite", TOPIC, q.queue_id) for q in queues] == ends
