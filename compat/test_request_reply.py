"""Java request-reply through a pyrocket broker (skipped without
ROCKETMQ_HOME): a Java ``DefaultMQProducer.request`` (the plain and the
callback form) answered by a Java consumer replying with
``MessageUtil.createReplyMessage`` and ``producer.send``; then pyrocket's
``Producer.request`` answered by that Java replier, and Java requests
answered by a pyrocket replier (``create_reply_message``).

The Java side is ``compat/java/RequestReplyClient.java`` in source-file
mode (Java 11 or newer) with a Java NameServer; the pyrocket broker runs in
this test's trio loop.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from compat.java_cluster import JavaCluster, JavaProcess, _java_major, free_port
from compat.test_broker_control import (
    TIMING,
    cluster_rows,
    mqadmin,
    pyrocket_broker,
    settings,
    wait_for_route,
)
from compat.test_broker_control import start_namesrv as start_java_namesrv
from pyrocket.client import Producer, PushConsumer, create_reply_message, new_message
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from pyrocket.protocol.message import MessageConst
from tests.broker.helpers import stored_in_topic
from tests.remoting.helpers import wait_until

CLIENT = Path(__file__).with_name("java") / "RequestReplyClient.java"
JAVA_TOPIC = "CompatRequestTopic"
PY_TOPIC = "CompatPyReplierTopic"
REPLY_TOPIC = "DefaultCluster_REPLY_TOPIC"
COUNT = 10


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def java_requests(java: JavaCluster, ns: str, topic: str) -> list[dict[str, object]]:
    result = await trio.to_thread.run_sync(
        lambda: java.run_class(
            str(CLIENT), ["request", ns, topic, str(COUNT), "30000"], timeout=300
        )
    )
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    return json_lines(result.stdout)


def check_replies(lines: list[dict[str, object]], topic: str) -> None:
    *replies, done = lines
    assert done == {"done": COUNT}, lines
    assert replies == [
        {"i": i, "body": f"pong:ping {i}", "topic": REPLY_TOPIC, "correlated": True}
        for i in range(COUNT)
    ], f"requests to {topic}"


async def create_topic(java: JavaCluster, ns: str, broker_addr: str, topic: str) -> None:
    await mqadmin(java, "updateTopic", "-n", ns, "-b", broker_addr, "-t", topic)
    await wait_for_route(java, ns, topic, broker_addr)


async def start_java_replier(java: JavaCluster, ns: str) -> JavaProcess:
    process = java.spawn_class(
        "java-replier", str(CLIENT), ["reply", ns, JAVA_TOPIC, "compat_java_repliers", "280"]
    )
    await trio.to_thread.run_sync(lambda: process.wait_for_output(r"(?m)^ready$", 90))
    return process


async def pyrocket_replier(ns: str, task_status: trio.TaskStatus[None]) -> None:
    consumer = PushConsumer(
        "compat_py_repliers",
        [ns],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        rebalance_interval=1.0,
    )
    consumer.subscribe(PY_TOPIC, "*")
    async with (
        consumer,
        Producer("compat_py_reply_producers", [ns], client_ip="127.0.0.1") as producer,
    ):
        task_status.started()
        async for message in consumer:
            await producer.send(create_reply_message(message, b"pong:" + message.body))


async def test_java_request_reply_through_a_pyrocket_broker(
    java: JavaCluster, tmp_path: Path
) -> None:
    if _java_major() < 11:
        pytest.skip("running RequestReplyClient.java from source needs Java 11 or newer")
    ns_port = free_port()
    await start_java_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    with trio.fail_after(600):
        async with pyrocket_broker(settings(tmp_path, ns, free_port())) as broker:
            await trio.sleep(TIMING.first_delay)
            assert cluster_rows(await mqadmin(java, "clusterList", "-n", ns), "pybroker")
            # The reply topic is one of the broker's own (TopicConfigManager).
            await wait_for_route(java, ns, REPLY_TOPIC, broker.broker_addr)
            for topic in (JAVA_TOPIC, PY_TOPIC):
                await create_topic(java, ns, broker.broker_addr, topic)

            # Java requester, Java replier.
            replier = await start_java_replier(java, ns)
            check_replies(await java_requests(java, ns, JAVA_TOPIC), JAVA_TOPIC)
            await wait_until(lambda: len(json_lines(replier.output())) >= COUNT, 0.2)
            sent = json_lines(replier.output())
            assert len(sent) >= COUNT and all(line.get("status") == "SEND_OK" for line in sent)
            assert {line["replyTopic"] for line in sent} == {REPLY_TOPIC}
            # storeReplyMessageEnable: every reply is stored as well.
            assert await stored_in_topic(broker, REPLY_TOPIC, COUNT) >= COUNT

            # pyrocket requester, Java replier.
            async with Producer("compat_py_requesters", [ns], client_ip="127.0.0.1") as producer:
                for i in range(3):
                    reply = await producer.request(new_message(JAVA_TOPIC, f"py {i}".encode()), 30)
                    assert reply.body == f"pong:py {i}".encode()
                    assert reply.topic == REPLY_TOPIC
                    assert MessageConst.PROPERTY_PUSH_REPLY_TIME in reply.properties

            # Java requester, pyrocket replier.
            async with trio.open_nursery() as nursery:
                await nursery.start(pyrocket_replier, ns)
                check_replies(await java_requests(java, ns, PY_TOPIC), PY_TOPIC)
                nursery.cancel_scope.cancel()
