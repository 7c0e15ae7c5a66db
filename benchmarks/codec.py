"""Codec throughput: frames per second, one core, for three typical frames.

    python benchmarks/codec.py [--seconds 0.5]

(a) a GET_ROUTEINFO_BY_TOPIC request (JSON header; ROCKETMQ header too),
(b) a REGISTER_BROKER request with 100 topics (plain JSON body),
(c) a GET_ROUTEINFO_BY_TOPIC answer with 4 brokers.

For each: ``decode`` is frame bytes -> RemotingCommand and ``encode`` the
reverse; ``typed_decode`` adds the typed header and body (what a server does
with a request), ``typed_encode`` starts from the typed header and body. The
last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyrocket.protocol.bodies import (
    BrokerData,
    DataVersion,
    QueueData,
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
    TopicRouteData,
)
from pyrocket.protocol.checksum import crc32
from pyrocket.protocol.codes import RequestCode, ResponseCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.headers import (
    GetRouteInfoRequestHeader,
    RegisterBrokerRequestHeader,
)
from pyrocket.protocol.javahash import JavaConcurrentHashMap, JavaHashMap


def rate(work: Callable[[], Any], seconds: float) -> float:
    """Calls per second: the best of three timed runs of about ``seconds``."""
    count = 1
    while True:  # find a batch size that takes a measurable time
        start = time.perf_counter()
        for _ in range(count):
            work()
        elapsed = time.perf_counter() - start
        if elapsed > 0.05:
            break
        count *= 2
    batch = max(1, int(count * seconds / elapsed))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(batch):
            work()
        best = min(best, time.perf_counter() - start)
    return batch / best


def route_request(serialize: SerializeType) -> tuple[Callable[[], Any], ...]:
    header = GetRouteInfoRequestHeader("TopicTest")

    def typed_encode() -> bytes:
        command = RemotingCommand.request(
            RequestCode.GET_ROUTEINFO_BY_TOPIC, header, opaque=42, serialize_type=serialize
        )
        return encode(command)

    frame = typed_encode()
    command = decode(frame)
    return (
        lambda: decode(frame),
        lambda: encode(command),
        lambda: decode(frame).decode_header(GetRouteInfoRequestHeader),
        typed_encode,
    )


def register_request() -> tuple[Callable[[], Any], ...]:
    table: JavaConcurrentHashMap[str, TopicConfig] = JavaConcurrentHashMap(1024)
    for index in range(100):
        name = f"BenchTopic{index:03d}"
        table[name] = TopicConfig(name, 8, 8, 6)
    body = RegisterBrokerBody(TopicConfigSerializeWrapper(table, DataVersion(1795278982181, 7)))

    def typed_encode() -> bytes:
        data = body.encode()
        header = RegisterBrokerRequestHeader(
            broker_name="broker-a",
            broker_addr="127.0.0.1:10911",
            cluster_name="DefaultCluster",
            ha_server_addr="127.0.0.1:10912",
            broker_id=0,
            body_crc32=crc32(data),
        )
        return encode(RemotingCommand.request(RequestCode.REGISTER_BROKER, header, body=data))

    frame = typed_encode()
    command = decode(frame)

    def typed_decode() -> tuple[Any, ...]:
        request = decode(frame)
        header = request.decode_header(RegisterBrokerRequestHeader)
        assert request.body is not None
        return header, RegisterBrokerBody.decode(request.body, header.compressed)

    return (lambda: decode(frame), lambda: encode(command), typed_decode, typed_encode)


def route_response() -> tuple[Callable[[], Any], ...]:
    names = ["broker-a", "broker-b", "broker-c", "broker-d"]
    brokers = []
    for index, name in enumerate(names):
        addrs: JavaHashMap[int, str] = JavaHashMap()
        addrs[0] = f"127.0.0.1:{10911 + 20 * index}"
        addrs[1] = f"127.0.0.1:{10921 + 20 * index}"
        brokers.append(BrokerData("DefaultCluster", name, addrs))
    route = TopicRouteData(
        queue_datas=tuple(QueueData(name, 8, 8, 6, 0) for name in names),
        broker_datas=tuple(brokers),
        filter_server_table={},
    )

    def typed_encode() -> bytes:
        answer = RemotingCommand.response(ResponseCode.SUCCESS, body=route.encode())
        return encode(answer.replace(opaque=42))

    frame = typed_encode()
    command = decode(frame)

    def typed_decode() -> TopicRouteData:
        answer = decode(frame)
        assert answer.body is not None
        return TopicRouteData.decode(answer.body)

    return (lambda: decode(frame), lambda: encode(command), typed_decode, typed_encode)


CASES = {
    "route_request": lambda: route_request(SerializeType.JSON),
    "route_request_rocketmq": lambda: route_request(SerializeType.ROCKETMQ),
    "register_100_topics": register_request,
    "route_response_4_brokers": route_response,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="per timed run")
    args = parser.parse_args()
    figures: dict[str, int] = {}
    for case, build in CASES.items():
        works = build()
        labels = ("decode", "encode", "typed_decode", "typed_encode")
        for label, work in zip(labels, works, strict=True):
            fps = rate(work, args.seconds)
            figures[f"{case}_{label}_fps"] = round(fps)
            print(f"{case:26} {label:13} {fps:>12,.0f} frames/s  {1e6 / fps:8.2f} us/frame")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
