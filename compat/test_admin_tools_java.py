"""The admin calls of rocketmq-dashboard 1.0.0 and rocketmq-exporter, made
through Java 4.7's ``DefaultMQAdminExt`` against a pyrocket NameServer and
broker (docs/compat-tools.md lists them with their request codes).

The cluster holds a topic with keyed messages, a producer and a pyrocket
push consumer group online that has read and committed everything; the Java
program (compat/java/AdminToolsClient.java) makes each call and prints one
verdict line per call, and each is checked here. The second test runs the
same scene on a pyrocket cluster and on a Java one and compares the two.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from compat.java_cluster import JavaCluster, _java_major, free_port
from pyrocket.broker.statsitems import SamplingSchedule
from pyrocket.client.admin import Admin
from pyrocket.client.producer import Producer, new_message
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.message import MessageExt
from tests.client.helpers import consumer, running_up

CLIENT = Path(__file__).with_name("java") / "AdminToolsClient.java"
TOPIC = "DashTopic"
GROUP = "dash_cg"
PRODUCER_GROUP = "dash_pg"
COUNT = 12


def verdicts(output: str) -> dict[str, tuple[str, str]]:
    """``name -> (ok|fail, summary)`` from the program's VERDICT lines."""
    found: dict[str, tuple[str, str]] = {}
    for line in output.splitlines():
        match = re.match(r"VERDICT (\S+) (ok|fail) ?(.*)$", line)
        if match:
            found[match.group(1)] = (match.group(2), match.group(3))
    return found


async def _offsets_committed(admin: Admin) -> bool:
    try:
        stats = await admin.examine_consume_stats(GROUP, TOPIC)
    except PyrocketError:
        return False
    return sum(w.consumer_offset for w in stats.offset_table.values()) == COUNT


async def run_tools(
    java: JavaCluster, ns: str, addr: str, before: Callable[[], None] = lambda: None
) -> tuple[dict[str, tuple[str, str]], list[bytes], str]:
    """Sets the scene on the cluster of NameServer ``ns`` and master
    ``addr``, calls ``before`` and runs the Java program; returns its
    verdicts, the bodies the consumer's direct handler got and the
    consumer's client id."""
    handled: list[bytes] = []

    async def direct(message: MessageExt) -> bool:
        handled.append(message.body)
        return True

    async with Admin([ns]) as admin:
        await admin.update_topic_on_broker(addr, TopicConfig(TOPIC, 4, 4))

        async def routed() -> bool:
            try:
                return bool((await admin.topic_route(TOPIC)).queue_datas)
            except PyrocketError:
                return False

        while not await routed():  # noqa: ASYNC110 (another process registers it)
            await trio.sleep(0.2)
        async with Producer(PRODUCER_GROUP, [ns], client_ip="127.0.0.1") as producer:
            sent = [
                await producer.send(
                    new_message(TOPIC, f"dash{i}".encode(), tags="T", keys=f"KEY{i}")
                )
                for i in range(COUNT)
            ]
            async with consumer(ns, GROUP, TOPIC, direct_handler=direct) as reader:
                for _ in range(COUNT):
                    await reader.receive()
                await reader.commit()
                while not await _offsets_committed(admin):  # noqa: ASYNC110 (the broker commits)
                    await trio.sleep(0.2)
                before()
                target = sent[5]
                args = [ns, addr, TOPIC, GROUP, PRODUCER_GROUP, "KEY5",
                        target.offset_msg_id, target.msg_id]  # fmt: skip
                result = await trio.to_thread.run_sync(
                    lambda: java.run_class(str(CLIENT), args, timeout=240)
                )
                assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-4000:])
                return verdicts(result.stdout), handled, reader.client_id


async def test_dashboard_and_exporter_admin_calls(java: JavaCluster, tmp_path: Path) -> None:
    if _java_major() < 11:
        pytest.skip("running AdminToolsClient.java from source needs Java 11 or newer")
    with trio.fail_after(400):
        async with running_up(tmp_path) as running:
            broker = running.broker
            addr = broker.broker_addr

            def sample() -> None:
                # A sampling a minute on stands in for the broker's task.
                now = broker.now_ms() + 60_000
                broker.stats_manager.sample(SamplingSchedule(now).due(now), now)

            found, handled, client_id = await run_tools(java, running.namesrv_addr, addr, sample)
    # Both direct consumptions reached the handler.
    assert handled == [b"dash5", b"dash5"]
    # No message was sent back, so the broker has no such statistic yet and
    # answers as Java's does.
    assert found.pop("viewBrokerStatsData:SNDBCK_PUT_NUMS") == (
        "fail",
        "org.apache.rocketmq.client.exception.MQClientException: CODE: 1  DESC: "
        f"The stats <SNDBCK_PUT_NUMS> <{TOPIC}@{GROUP}> not exist For more "
        "information, please visit the url, http://rocketmq.apache.org/docs/faq/",
    )
    failed = {k: v for k, v in found.items() if v[0] != "ok"}
    assert not failed, failed
    got = {k: v[1] for k, v in found.items()}
    assert len(got) == 36, sorted(got)
    assert got["examineBrokerClusterInfo"] == (
        f"clusters=[DefaultCluster] brokers=[broker-a] master={addr}"
    )
    assert got["fetchAllTopicList"].startswith("has=true ")
    assert got["getSystemTopicList"] == "hasCluster=true hasBroker=true"
    # A code 4.7 does not know: a Java 4.7 broker leaves it unanswered (the
    # exporter logs the timeout and skips the producer metric); pyrocket
    # answers REQUEST_CODE_NOT_SUPPORTED (docs/deviations.md, Wire and remoting),
    # which the exporter handles the same way.
    assert got["getAllProducerInfo"] == "code=3 remark= request type 328 not supported"
    assert got["examineTopicRouteInfo"] == "brokers=1 readQueues=4"
    assert got["examineTopicStats"] == f"queues=4 maxOffsetSum={COUNT}"
    assert got["getAllTopicGroup"] == "has=true writeQueues=4"
    assert got["createAndUpdateTopicConfig"] == "created=true"
    for name in ("deleteTopicInBroker", "deleteTopicInNameServer", "deleteSubscriptionGroup"):
        assert got[name] == "gone=true", name
    entries, put_total = re.fullmatch(
        r"entries=(\d+) putTotalTodayNow=(\d+)", got["fetchBrokerRuntimeStats"]
    ).groups()  # type: ignore[union-attr]
    assert int(entries) > 20 and int(put_total) >= COUNT
    assert got["getBrokerConfig"] == "brokerName=broker-a"
    for name in ("TOPIC_PUT_NUMS", "GROUP_GET_NUMS", "BROKER_PUT_NUMS", "BROKER_GET_NUMS"):
        assert got[f"viewBrokerStatsData:{name}"] == f"minuteSum={COUNT} daySum={COUNT}", name
    # Sizes are the stored records' bytes, the same for puts and gets.
    put_size = got["viewBrokerStatsData:TOPIC_PUT_SIZE"]
    size = re.fullmatch(r"minuteSum=(\d+) daySum=\1", put_size)
    assert size and int(size.group(1)) > COUNT * 100, put_size
    assert got["viewBrokerStatsData:GROUP_GET_SIZE"] == put_size
    assert got["createAndUpdateSubscriptionGroupConfig"] == "retryMaxTimes=7"
    assert got["getAllSubscriptionGroup"] == "hasGroup=true hasNew=true"
    stats = f"queues=4 consumerOffset={COUNT} brokerOffset={COUNT} diff=0"
    assert got["examineConsumeStats"] == stats
    assert got["examineConsumeStatsTopic"] == stats
    assert got["examineConsumerConnectionInfo"] == (
        f"connections=1 model=CLUSTERING subscribes=[%RETRY%{GROUP}, {TOPIC}] clientId={client_id}"
    )
    # The topic's four queues and its retry topic's one.
    assert got["getConsumerRunningInfo"] == "subscriptions=2 queues=5"
    assert got["getConsumerRunningInfoJstack"] == "subscriptions=2 jstack=text"
    assert got["queryTopicConsumeByWho"] == "hasGroup=true"
    assert got["examineProducerConnectionInfo"] == "connections=1"
    assert got["queryMessage"] == "found=1 keyMatches=true"
    assert got["viewMessage"] == "body=dash5 keys=KEY5"
    assert got["viewMessageByTopic"] == "body=dash5 keys=KEY5"
    assert got["messageTrackDetail"] == f"tracks=1 {GROUP}:CONSUMED"
    assert got["consumeMessageDirectly"] == "result=CR_SUCCESS"
    assert got["consumeMessageDirectlyByTopic"] == "result=CR_SUCCESS"
    assert (
        got["resetOffsetByTimestampOld"]
        == f"queues=4 consumerOffsetSum={COUNT} rollbackOffsetSum=0"
    )
    assert got["resetOffsetByTimestamp"] == "queues=4 offsetSum=0"


def _normalized(found: dict[str, tuple[str, str]], addr: str, client_id: str) -> dict[str, str]:
    """Each verdict with the cluster's own address and client id masked, and
    without the calls whose figures differ between any two clusters: the
    topic count (Java's broker holds more system topics), the runtime
    statistics, the sampled statistics and the 4.9 call (no answer from a
    Java 4.7 broker; docs/deviations.md)."""
    varying = ("fetchBrokerRuntimeStats", "getAllProducerInfo")
    result: dict[str, str] = {}
    for name, (verdict, summary) in found.items():
        if name in varying or (name.startswith("viewBrokerStatsData:") and verdict == "ok"):
            continue
        text = f"{verdict} {summary}".replace(addr, "ADDR").replace(client_id, "CLIENT")
        if name == "fetchAllTopicList":
            text = text.split(" count=")[0]
        result[name] = text
    return result


async def test_same_answers_as_a_java_cluster(java: JavaCluster, tmp_path: Path) -> None:
    if _java_major() < 11:
        pytest.skip("running AdminToolsClient.java from source needs Java 11 or newer")
    with trio.fail_after(600):
        async with running_up(tmp_path / "py") as running:
            addr = running.broker.broker_addr
            found, _, client_id = await run_tools(java, running.namesrv_addr, addr)
            ours = _normalized(found, addr, client_id)
        ns_port, broker_port = free_port(), free_port()
        await trio.to_thread.run_sync(lambda: java.start_namesrv(ns_port))
        ns = f"127.0.0.1:{ns_port}"
        await trio.to_thread.run_sync(lambda: java.start_broker("broker-a", broker_port, ns))
        addr = f"127.0.0.1:{broker_port}"
        found, _, client_id = await run_tools(java, ns, addr)
        theirs = _normalized(found, addr, client_id)
    assert len(ours) == 29, sorted(ours)
    assert ours == theirs
