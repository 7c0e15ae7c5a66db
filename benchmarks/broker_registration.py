"""Broker control plane costs: building REGISTER_BROKER for a large topic
table (plain and compressed), a full registration round to several
NameServers over loopback, and admin requests answered per second.

Usage: ``python benchmarks/broker_registration.py [--topics N] [--namesrvs K]``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyrocket.broker.app import Broker, serve_broker
from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.outer_api import BrokerIdentity, register_broker_request
from pyrocket.broker.registration import RegistrationTiming
from pyrocket.broker.topic_config import TopicConfigManager
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, encode
from pyrocket.remoting import Connection, RemotingClient, RemotingServer

IDENTITY = BrokerIdentity("DefaultCluster", "127.0.0.1:10911", "broker-a", 0, "127.0.0.1:10912")


def build_times(topics: int) -> dict[str, float]:
    manager = TopicConfigManager(BrokerSettings().broker, Path("/nonexistent/topics.json"))
    for number in range(topics):
        name = f"Topic{number:06d}"
        manager.topic_config_table[name] = TopicConfig(name, 8, 8, 6)
    figures: dict[str, float] = {}
    for compressed in (False, True):
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            request = register_broker_request(
                IDENTITY, manager.build_topic_config_serialize_wrapper(), compressed=compressed
            )
            encode(request)
            samples.append(time.perf_counter() - start)
        key = "compressed" if compressed else "plain"
        figures[f"register_build_{key}_ms"] = round(statistics.median(samples) * 1000, 2)
        assert request.body is not None
        figures[f"register_body_{key}_bytes"] = len(request.body)
    return figures


async def namesrv(*, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    async def ok(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        return RemotingCommand.response(ResponseCode.SUCCESS)

    server = RemotingServer()
    server.register_processor(RequestCode.REGISTER_BROKER, ok)
    server.register_processor(RequestCode.UNREGISTER_BROKER, ok)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        task_status.started(f"127.0.0.1:{port}")


async def live(topics: int, namesrvs: int, root: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    async with trio.open_nursery() as nursery:
        addresses = [await nursery.start(namesrv) for _ in range(namesrvs)]
        settings = BrokerSettings.from_properties(
            {
                "brokerName": "broker-a",
                "brokerIP1": "127.0.0.1",
                "listenPort": "0",
                "namesrvAddr": ";".join(addresses),
                "storePathRootDir": str(root),
                "mappedFileSizeCommitLog": str(1024 * 1024),
            }
        )
        slow = RegistrationTiming(first_delay=3600, period=3600)
        broker: Broker = await nursery.start(
            lambda task_status: serve_broker(
                settings, host="127.0.0.1", timing=slow, task_status=task_status
            )
        )
        table = broker.topic_config_manager.topic_config_table
        for number in range(topics):
            name = f"Topic{number:06d}"
            table[name] = TopicConfig(name, 8, 8, 6)
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            await broker.registration.register_broker_all(False, False, True)
            samples.append(time.perf_counter() - start)
        figures["register_round_ms"] = round(statistics.median(samples) * 1000, 2)

        async with RemotingClient() as client:
            request = RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO)
            count = 0
            start = time.perf_counter()
            while time.perf_counter() - start < 1.0:
                await client.invoke_sync(broker.broker_addr, request, 5)
                count += 1
            figures["runtime_info_qps"] = round(count / (time.perf_counter() - start))
        nursery.cancel_scope.cancel()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topics", type=int, default=10_000)
    parser.add_argument("--namesrvs", type=int, default=3)
    args = parser.parse_args()
    figures = build_times(args.topics)
    with tempfile.TemporaryDirectory() as root:
        figures.update(trio.run(live, args.topics, args.namesrvs, Path(root)))
    figures["topics"] = args.topics
    figures["namesrvs"] = args.namesrvs
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
