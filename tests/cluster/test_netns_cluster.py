"""A pyrocket cluster across network namespaces: two NameServers, two
master/slave pairs (broker-a SYNC_MASTER, broker-b ASYNC_MASTER), a producer
(this test, in a namespace of its own) and a push consumer (a child process
in another), every server a ``python -m pyrocket`` child in its namespace,
all on one bridge. Partitions are blackhole routes between two namespaces,
so established connections hang as they do when a network splits.

1. Every message acknowledged is delivered.
2. A slave cut from its SYNC_MASTER: sends to that master are answered
   FLUSH_SLAVE_TIMEOUT while the replication connection still stands, then
   SLAVE_NOT_AVAILABLE once the master gives it up; healed, the slave
   catches up and the two commit logs are byte-identical.
3. A master cut from one NameServer (run alongside 2 and 4): the other
   NameServer lists it throughout, the cut one drops it once its
   registration expires, and lists it again after healing.
4. The consumer cut from broker-a's master while it reads that broker from
   the slave (the master suggests the slave, as Java's does for a consumer
   behind): it goes on reading from the slave, and pulls from the master
   again after healing.

Java 4.7.0's client does not move a pull to a slave because the master
failed to answer it; only the broker's suggestion does. So in 4, a queue
whose next pull was to go to the master at the cut waits for the healing
(as a Java consumer's would), while the queues pointed at the slave go on.
Delay and loss (``tc netem``) run where the kernel has sch_netem, and skip
otherwise.

The test takes 30 to 90 s on a busy 2-core machine (most of it starting
the seven Python processes; the NameServer expiry is bounded below by the
broker's 10 s registration period), so it is marked ``slow``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from pyrocket.client.instance import ClientInstance
from pyrocket.client.messages import new_message
from pyrocket.client.producer import Producer
from pyrocket.client.sending import SendResult, SendStatus
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.topic import TopicConfig
from tests.cluster.netns import Network, netem_problem, netns_problem, network, sockets_in
from tests.cluster.processes import ConsumerEvents, Processes

pytestmark = pytest.mark.slow

TOPIC: Final = "NetnsTopic"
QUEUES: Final = 4
CLUSTER: Final = "NetnsCluster"
GROUP: Final = "netns_consumer"
LABELS: Final = ("ns1", "ns2", "ma", "sa", "mb", "sb", "producer", "consumer")
#: Whole-test bound (s).
TEST_TIMEOUT: Final = 180
#: The NameServers drop a broker silent for 15 s (Java: 120 s, fixed); the
#: brokers register every 10 s (Java's lower bound; its default is 30 s), so
#: a live broker never expires.
EXPIRY_S: Final = 15.0
REGISTER_PERIOD_S: Final = 10.0
NAMESRV_SETTINGS: Final = {
    "brokerChannelExpiredTimeMillis": str(int(EXPIRY_S * 1000)),
    "scanNotActiveBrokerDelayMillis": "1000",
    "scanNotActiveBrokerIntervalMillis": "1000",
}
ROLES: Final = {"ma": "SYNC_MASTER", "sa": "SLAVE", "mb": "ASYNC_MASTER", "sb": "SLAVE"}
#: How long the consumer is cut from broker-a's master (s).
CONSUMER_CUT_S: Final = 7.0
SYNC_FLUSH_TIMEOUT_MS: Final = 1500
HA_HOUSEKEEPING_MS: Final = 3000
#: The consumer's options (seconds): quick route and heartbeat rounds, held
#: pulls answered within 3 s and given up after 5 s.
CONSUMER_OPTIONS: Final = {
    "poll_name_server_interval": 1.0,
    "heartbeat_interval": 1.0,
    "rebalance_interval": 2.0,
    "persist_interval": 1.0,
    "broker_suspend_max": 3.0,
    "timeout_when_suspend": 5.0,
    "pull_batch_size": 8,
}


@dataclass
class Cluster:
    net: Network
    procs: Processes
    root: Path
    namesrv: list[str] = field(default_factory=list)
    #: Broker address by member label (ma, sa, mb, sb).
    brokers: dict[str, str] = field(default_factory=dict)

    def store(self, label: str) -> Path:
        return self.root / label / "store"


def broker_conf(cluster: Cluster, label: str) -> dict[str, str]:
    member = cluster.net[label]
    pair, role = label[1], label[0]
    conf = {
        "brokerClusterName": CLUSTER,
        "brokerName": f"broker-{pair}",
        "brokerId": "0" if role == "m" else "1",
        "brokerRole": ROLES[label],
        "brokerIP1": member.ip,
        "brokerIP2": member.ip,
        "listenPort": "10911",
        "namesrvAddr": ";".join(cluster.namesrv),
        "storePathRootDir": str(cluster.store(label)),
        "mappedFileSizeCommitLog": str(512 * 1024),
        "mappedFileSizeConsumeQueue": str(20 * 1000),
        "flushDiskType": "ASYNC_FLUSH",
        "haSendHeartbeatInterval": "500",
        "haHousekeepingInterval": str(HA_HOUSEKEEPING_MS),
        "syncFlushTimeout": str(SYNC_FLUSH_TIMEOUT_MS),
        "slaveReadEnable": "true",
        "registerNameServerPeriod": str(int(REGISTER_PERIOD_S * 1000)),
    }
    if pair == "a":
        # Every consumer counts as far behind: broker-a's master and slave
        # suggest the slave whenever they hand out messages.
        conf["accessMessageInMemoryMaxRatio"] = "0"
    if role == "s":
        conf["haMasterAddress"] = f"{cluster.net['m' + pair].ip}:10912"
    return conf


async def start_cluster(
    net: Network, procs: Processes, root: Path, nursery: trio.Nursery
) -> tuple[Cluster, ConsumerEvents]:
    """Both NameServers, then the four brokers and the consumer."""
    cluster = Cluster(net, procs, root)
    for label in ("ns1", "ns2"):
        cluster.namesrv.append(await procs.namesrv(label, net[label], NAMESRV_SETTINGS))
    for label in ("ns1", "ns2"):
        await procs.booted(label)
    events = await start_consumer(cluster, nursery)
    for label in ("ma", "mb", "sa", "sb"):
        cluster.brokers[label] = await procs.broker(label, net[label], broker_conf(cluster, label))
    for label in ("ma", "mb", "sa", "sb"):
        await procs.booted(label)
    with trio.fail_after(30):
        await events.started.wait()
    return cluster, events


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float) -> float:
    """Seconds until ``check()`` holds (polled); fails naming ``what`` after ``within``."""
    begin = trio.current_time()
    with trio.move_on_after(within):
        while True:
            if await check():
                return trio.current_time() - begin
            await trio.sleep(0.2)
    raise AssertionError(f"{what}: not within {within}s")


async def route_addrs(probe: ClientInstance, namesrv: str, broker: str) -> dict[int, str]:
    """``broker``'s addresses in ``TOPIC``'s route as ``namesrv`` has it
    (none when it lists no such broker). Raises PyrocketError."""
    route = await probe.namesrv.get_route_info(TOPIC, addr=namesrv)
    for data in route.broker_datas or ():
        if data.broker_name == broker:
            return dict(data.broker_addrs or {})
    return {}


async def max_offset(probe: ClientInstance, addr: str) -> int:
    info = await probe.brokers.get_broker_runtime_info(addr)
    return int(info["commitLogMaxOffset"])


def commit_log(store: Path, size: int) -> bytes:
    files = sorted((store / "commitlog").iterdir())
    return b"".join(path.read_bytes() for path in files)[:size]


class Sender:
    """The producer, and every answer it got (by message key)."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.results: dict[str, SendResult] = {}
        self.sent_at: dict[str, float] = {}
        self.failures: dict[str, Exception] = {}

    async def send(self, key: str, broker: str | None = None) -> SendResult | None:
        message = new_message(TOPIC, key.encode() * 20, keys=key)
        self.sent_at[key] = time.time()
        try:
            if broker is None:
                result = await self.producer.send(message)
            else:
                result = await self.producer.send_orderly(message, broker, pick_broker)
        except (PyrocketError, ValueError) as exc:
            self.failures[key] = exc
            return None
        self.results[key] = result
        return result

    def acknowledged(self, status: SendStatus | None = SendStatus.SEND_OK) -> set[str]:
        return {key for key, r in self.results.items() if status is None or r.status is status}


def pick_broker(queues: Sequence[MessageQueue], _message: object, broker: object) -> MessageQueue:
    mine = [q for q in queues if q.broker_name == broker]
    return mine[int(time.monotonic_ns() // 1000) % len(mine)]


async def delivered(events: ConsumerEvents, keys: set[str], within: float) -> float:
    async def all_there() -> bool:
        return keys <= events.keys()

    try:
        return await eventually(all_there, "delivery", within)
    except AssertionError:
        missing = sorted(keys - events.keys())
        raise AssertionError(
            f"{len(missing)} acknowledged message(s) never delivered: {missing[:10]}"
        ) from None


# ----------------------------------------------------------------------
# Scenarios


async def steady_state(
    cluster: Cluster, sender: Sender, events: ConsumerEvents, probe: ClientInstance
) -> dict[str, float]:
    # Routes list the slave once it registered, which can be before its HA
    # connection to the SYNC_MASTER is up; until then the master answers
    # SLAVE_NOT_AVAILABLE (as Java's does). One message replicated says the
    # pair is ready.
    master, slave = cluster.brokers["ma"], cluster.brokers["sa"]
    warm = await sender.send("s1-warm-up", broker="broker-a")
    assert warm is not None, sender.failures

    async def replicated() -> bool:
        try:
            size = await max_offset(probe, master)
            return size > 0 and size == await max_offset(probe, slave)
        except PyrocketError:
            return False

    await eventually(replicated, "broker-a's slave connected to its master", 20)
    keys = [f"s1-{i}" for i in range(40)]
    for key in keys:
        await sender.send(key)
    assert not sender.failures
    assert {sender.results[k].status for k in keys} == {SendStatus.SEND_OK}
    assert {sender.results[k].queue.broker_name for k in keys} == {"broker-a", "broker-b"}
    took = await delivered(events, set(keys), 30)
    return {"s1_delivery_s": took}


async def slave_cut_from_master(
    cluster: Cluster, sender: Sender, probe: ClientInstance
) -> dict[str, float]:
    net, master, slave = cluster.net, cluster.brokers["ma"], cluster.brokers["sa"]
    await eventually(
        lambda: _same_offset(probe, master, slave), "broker-a's slave in step before the cut", 20
    )
    net.cut("sa", "ma")
    begin = trio.current_time()
    statuses: list[SendStatus] = []
    # Until the master gives the silent slave up (its HA housekeeping
    # interval), a send waits syncFlushTimeout for the slave and is answered
    # FLUSH_SLAVE_TIMEOUT; then at once SLAVE_NOT_AVAILABLE. Either way the
    # message is stored on the master.
    for i in range(8):
        result = await sender.send(f"s2-cut-{i}", broker="broker-a")
        assert result is not None, sender.failures
        assert result.queue.broker_name == "broker-a"
        statuses.append(result.status)
    assert statuses[0] is SendStatus.FLUSH_SLAVE_TIMEOUT, statuses
    assert statuses[-1] is SendStatus.SLAVE_NOT_AVAILABLE, statuses
    assert set(statuses) == {SendStatus.FLUSH_SLAVE_TIMEOUT, SendStatus.SLAVE_NOT_AVAILABLE}
    ahead = await max_offset(probe, master) - await max_offset(probe, slave)
    assert ahead > 0
    net.heal("sa", "ma")
    healed = trio.current_time()
    caught_up = await eventually(
        lambda: _same_offset(probe, master, slave), "broker-a's slave catching up", 30
    )
    # Sends to broker-a are SEND_OK again once the slave is back.
    result = await sender.send("s2-healed", broker="broker-a")
    assert result is not None and result.status is SendStatus.SEND_OK, result
    await eventually(lambda: _same_offset(probe, master, slave), "the last send replicated", 10)
    size = await max_offset(probe, master)

    async def identical() -> bool:
        return commit_log(cluster.store("ma"), size) == commit_log(cluster.store("sa"), size)

    await eventually(identical, "byte-identical commit logs", 10)
    return {
        "s2_partition_s": healed - begin,
        "s2_catch_up_s": caught_up,
        "s2_flush_slave_timeouts": float(statuses.count(SendStatus.FLUSH_SLAVE_TIMEOUT)),
        "s2_commit_log_bytes": float(size),
    }


async def _same_offset(probe: ClientInstance, master: str, slave: str) -> bool:
    try:
        return await max_offset(probe, master) == await max_offset(probe, slave)
    except PyrocketError:
        return False


async def broker_cut_from_namesrv(
    cluster: Cluster, probe: ClientInstance, figures: dict[str, float]
) -> None:
    net = cluster.net
    ns1, ns2 = cluster.namesrv
    master, slave = cluster.brokers["mb"], cluster.brokers["sb"]
    assert (await route_addrs(probe, ns1, "broker-b")).get(0) == master
    net.cut("mb", "ns1")

    async def dropped() -> bool:
        assert (await route_addrs(probe, ns2, "broker-b")).get(0) == master
        return 0 not in await route_addrs(probe, ns1, "broker-b")

    gone = await eventually(dropped, "the cut NameServer dropping broker-b's master", 30)
    # Its slave still registers there, so broker-b stays in the route.
    assert await route_addrs(probe, ns1, "broker-b") == {1: slave}
    # Dropped by the expiry scan (its connection never closed): not before
    # its last registration (about a period before the cut) plus the
    # expiry, nor long after the expiry.
    assert f"broker {master} expired" in cluster.procs.log("ns1", tail=1 << 20)
    assert EXPIRY_S - REGISTER_PERIOD_S - 3 <= gone <= EXPIRY_S + 5, gone
    net.heal("mb", "ns1")

    async def back() -> bool:
        assert (await route_addrs(probe, ns2, "broker-b")).get(0) == master
        return (await route_addrs(probe, ns1, "broker-b")).get(0) == master

    returned = await eventually(back, "broker-b's master back at the healed NameServer", 30)
    figures["s3_dropped_after_s"] = gone
    figures["s3_back_after_s"] = returned


async def consumer_cut_from_master(
    cluster: Cluster, sender: Sender, events: ConsumerEvents
) -> dict[str, float]:
    net = cluster.net
    master, slave = cluster.brokers["ma"], cluster.brokers["sa"]
    stop = trio.Event()
    count = 0

    async def keep_sending() -> None:
        nonlocal count
        while not stop.is_set():
            await sender.send(f"s4-{count}", broker="broker-a")
            count += 1
            await trio.sleep(0.1)

    def served_by(addr: str, since: float) -> list[dict[str, Any]]:
        return [p for p in events.pulls if p["pull"] == addr and p["t"] >= since and p.get("found")]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(keep_sending)
        begin = time.time()

        async def reading_the_slave() -> bool:
            return bool(served_by(slave, begin))

        await eventually(reading_the_slave, "the consumer reading broker-a's slave", 20)
        net.cut("consumer", "ma")
        cut_at = time.time()
        # Longer than a held pull and the client's wait for it, so that
        # pulls the master was holding at the cut have failed meanwhile.
        await trio.sleep(CONSUMER_CUT_S)
        healed_at = time.time()
        # Broker-a's messages sent during the cut were read from the slave.
        late = {
            k for k, t in sender.sent_at.items() if k.startswith("s4-") and cut_at < t < healed_at
        }
        read_late = {e["msg"] for e in events.messages if e["t"] < healed_at} & late
        from_slave = served_by(slave, cut_at)
        net.heal("consumer", "ma")
        stop.set()
    assert late & sender.acknowledged()
    assert read_late and len(from_slave) >= 3, (len(late), len(read_late), len(from_slave))
    # No pull the master answered reached the consumer while it was cut off
    # (one second for answers on their way at the cut).
    answered = [
        p for p in events.pulls
        if p["pull"] == master and "code" in p and cut_at + 1 < p["t"] < healed_at
    ]  # fmt: skip
    assert not answered, answered[:3]

    async def back_to_master() -> bool:
        return any(p["pull"] == master and "code" in p and p["t"] > healed_at for p in events.pulls)

    returned = await eventually(back_to_master, "the consumer pulling from the master again", 30)
    return {
        "s4_partition_s": healed_at - cut_at,
        "s4_back_to_master_s": returned,
        "s4_sent": float(count),
        "s4_sent_during_cut": float(len(late)),
        "s4_read_from_slave_during_cut": float(len(read_late)),
        "s4_queues_read_from_slave_during_cut": float(len({p["queue"] for p in from_slave})),
    }


# ----------------------------------------------------------------------


@pytest.fixture
def namespaces() -> None:
    """Skips the test, with the reason, where namespaces cannot be made."""
    problem = netns_problem()
    if problem is not None:
        pytest.skip(problem)


@pytest.fixture
def netem() -> None:
    """Skips the test, with the reason, where ``tc netem`` is missing."""
    problem = netem_problem()
    if problem is not None:
        pytest.skip(problem)


@pytest.mark.usefixtures("namespaces")
async def test_partitions_heal_and_acknowledged_messages_are_delivered(tmp_path: Path) -> None:
    figures: dict[str, float] = {}
    begin = time.monotonic()
    with network(LABELS) as net, sockets_in(net["producer"]):
        with trio.fail_after(TEST_TIMEOUT):
            async with Processes(tmp_path) as procs, trio.open_nursery() as nursery:
                cluster, events = await start_cluster(net, procs, tmp_path, nursery)
                figures["boot_s"] = time.monotonic() - begin
                await run_scenarios(cluster, events, figures)
                nursery.cancel_scope.cancel()
    figures["total_s"] = time.monotonic() - begin
    print("netns cluster figures:", {k: round(v, 2) for k, v in figures.items()})


async def run_scenarios(
    cluster: Cluster, events: ConsumerEvents, figures: dict[str, float]
) -> None:
    net = cluster.net
    client_ip = net["producer"].ip
    async with ClientInstance(cluster.namesrv, client_ip=client_ip) as probe:
        topic = TopicConfig(topic_name=TOPIC, read_queue_nums=QUEUES, write_queue_nums=QUEUES)
        for addr in cluster.brokers.values():
            await probe.brokers.create_topic(addr, topic)

        async def routes_complete() -> bool:
            want = {
                "broker-a": {0: cluster.brokers["ma"], 1: cluster.brokers["sa"]},
                "broker-b": {0: cluster.brokers["mb"], 1: cluster.brokers["sb"]},
            }
            try:
                for ns in cluster.namesrv:
                    for name, addrs in want.items():
                        if await route_addrs(probe, ns, name) != addrs:
                            return False
            except PyrocketError:  # TOPIC_NOT_EXIST until the masters register it
                return False
            return True

        await eventually(routes_complete, "both pairs in both NameServers' routes", 30)
        producer = Producer(
            "netns_producer",
            cluster.namesrv,
            client_ip=client_ip,
            poll_name_server_interval=1.0,
            heartbeat_interval=1.0,
        )
        async with producer:
            sender = Sender(producer)
            figures.update(await steady_state(cluster, sender, events, probe))
            # Scenario 3 waits for an expiry: it runs alongside 2 and 4,
            # which it does not touch (other members, other links).
            async with trio.open_nursery() as nursery:
                nursery.start_soon(broker_cut_from_namesrv, cluster, probe, figures)
                figures.update(await slave_cut_from_master(cluster, sender, probe))
                figures.update(await consumer_cut_from_master(cluster, sender, events))
            # Nothing acknowledged is lost: every SEND_OK, and every message
            # stored without its slave, reaches the consumer.
            assert not sender.failures, sender.failures
            figures["final_delivery_s"] = await delivered(events, sender.acknowledged(None), 40)
            figures["acknowledged"] = float(len(sender.acknowledged()))
            figures["delivered_distinct"] = float(len(events.keys()))
            figures["deliveries"] = float(len(events.messages))


def _consumer_spec(cluster: Cluster) -> str:
    return json.dumps(
        {
            "namesrv": cluster.namesrv,
            "group": GROUP,
            "topic": TOPIC,
            "client_ip": cluster.net["consumer"].ip,
            "options": CONSUMER_OPTIONS,
        }
    )


async def start_consumer(cluster: Cluster, nursery: trio.Nursery) -> ConsumerEvents:
    """The consumer child in its namespace, its events read in ``nursery``;
    it waits for the topic's route by itself."""
    cluster.procs.start(
        "consumer",
        cluster.net["consumer"],
        ["-m", "tests.cluster.consumer_child", _consumer_spec(cluster)],
    )
    events = ConsumerEvents()
    nursery.start_soon(events.read, cluster.root / "consumer" / "stdout")
    return events


@pytest.mark.usefixtures("netem")
async def test_delay_and_loss_on_the_links(tmp_path: Path) -> None:
    """netem: 40 ms (±10 ms) delay and 5 % loss on the broker's and the
    consumer's links; every send is acknowledged and delivered."""
    labels = ("ns1", "mb", "producer", "consumer")
    with network(labels) as net, sockets_in(net["producer"]):
        with trio.fail_after(TEST_TIMEOUT):
            async with Processes(tmp_path) as procs, trio.open_nursery() as nursery:
                cluster = Cluster(net, procs, tmp_path)
                cluster.namesrv.append(await procs.namesrv("ns1", net["ns1"], NAMESRV_SETTINGS))
                await procs.booted("ns1")
                addr = await procs.broker("mb", net["mb"], broker_conf(cluster, "mb"))
                await procs.booted("mb")
                net.netem("mb", "delay", "40ms", "10ms", "loss", "5%")
                net.netem("consumer", "delay", "20ms", "loss", "5%")
                async with ClientInstance(cluster.namesrv, client_ip=net["producer"].ip) as probe:
                    topic = TopicConfig(
                        topic_name=TOPIC, read_queue_nums=QUEUES, write_queue_nums=QUEUES
                    )
                    await probe.brokers.create_topic(addr, topic)

                    async def routed() -> bool:
                        try:
                            found = await route_addrs(probe, cluster.namesrv[0], "broker-b")
                        except PyrocketError:  # TOPIC_NOT_EXIST until registered
                            return False
                        return found == {0: addr}

                    await eventually(routed, "the broker in the route", 30)
                events = await start_consumer(cluster, nursery)
                with trio.fail_after(30):
                    await events.started.wait()
                producer = Producer("netns_producer", cluster.namesrv, client_ip=net["producer"].ip)
                async with producer:
                    sender = Sender(producer)
                    keys = [f"netem-{i}" for i in range(30)]
                    for key in keys:
                        await sender.send(key)
                    assert not sender.failures, sender.failures
                    assert sender.acknowledged() == set(keys)
                    await delivered(events, set(keys), 60)
                nursery.cancel_scope.cancel()
