"""Prometheus ``/metrics`` of the broker and the NameServer over real
sockets: after sends and consumes, a scrape parsed with prometheus-client's
parser has rocketmq-exporter's families and labels with the figures the
traffic implies; rates from a controlled clock; bad HTTP requests answered
or dropped without disturbing the server; off unless asked for."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
import trio
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from pyrocket.broker import metrics
from pyrocket.broker.app import Broker
from pyrocket.broker.metrics import BrokerLabels, Rate, broker_registry
from pyrocket.cli import broker as broker_cli
from pyrocket.cli import build_parser
from pyrocket.cli import namesrv as namesrv_cli
from pyrocket.client.producer import Producer, new_message
from pyrocket.errors import ConfigError
from pyrocket.metrics_http import MAX_REQUEST_HEAD
from pyrocket.namesrv.app import NameServer
from pyrocket.namesrv.config import load_config
from tests.broker.helpers import broker_settings, running_broker
from tests.client.helpers import consumer, running_up

TOPIC = "MetricsTopic"
GROUP = "metrics_group"


async def http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` to 127.0.0.1:port, read the answer to EOF."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        data = bytearray()
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


async def scrape(port: int) -> dict[str, list[Sample]]:
    status, headers, body = await http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert int(headers["content-length"]) == len(body)
    return {
        family.name: list(family.samples)
        for family in text_string_to_metric_families(body.decode("utf-8"))
    }


def only(samples: Iterable[Sample], **labels: str) -> Sample:
    found = [s for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (labels, list(samples))
    return found[0]


async def produce(namesrv: str, count: int, start: int = 0) -> int:
    """Send ``count`` messages to TOPIC; their total body size."""
    size = 0
    async with Producer("metrics_producers", [namesrv], client_ip="127.0.0.1") as producer:
        for i in range(start, start + count):
            body = f"metrics message {i}".encode()
            size += len(body)
            await producer.send(new_message(TOPIC, body))
    return size


async def test_a_scrape_reports_what_was_sent_and_consumed(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            broker, ns = running.broker, running.namesrv_addr
            assert broker.metrics_port and running.namesrv.metrics_port
            await produce(ns, 10)
            async with consumer(ns, GROUP, TOPIC) as reader:
                for _ in range(10):
                    await reader.receive()
            # The consumer commits its offsets as it closes; then 4 more arrive.
            await produce(ns, 4, start=10)
            families = await scrape(broker.metrics_port)
            namesrv_families = await scrape(running.namesrv.metrics_port)

    cluster, name = "DefaultCluster", "broker-a"
    me = {"cluster": cluster, "broker": name}
    assert only(families["rocketmq_producer_offset"], **me, topic=TOPIC).value == 14
    consumer_offset = only(families["rocketmq_consumer_offset"], **me, topic=TOPIC, group=GROUP)
    assert consumer_offset.value == 10
    accumulation = only(families["rocketmq_message_accumulation"], **me, topic=TOPIC, group=GROUP)
    assert accumulation.value == 4
    diff = only(families["rocketmq_group_diff"], group=GROUP, topic=TOPIC)
    assert diff.value == 4
    assert set(diff.labels) == {"group", "topic", "countOfOnlineConsumers", "msgModel"}
    assert diff.labels["countOfOnlineConsumers"] == "0"  # it has closed
    # The consumer's retry topic has offsets too (nothing in it).
    retry = only(families["rocketmq_topic_retry_offset"], **me, topic=f"%RETRY%{GROUP}")
    assert retry.value == 0

    # Rates: per-minute statistics, listed for every topic and group that
    # had traffic (their figures over a controlled clock: the next test).
    for family in ("rocketmq_producer_tps", "rocketmq_producer_message_size"):
        assert only(families[family], **me, topic=TOPIC).value >= 0
    for family in ("rocketmq_consumer_tps", "rocketmq_consumer_message_size"):
        assert only(families[family], **me, topic=TOPIC, group=GROUP).value >= 0
    broker_tps = only(families["rocketmq_broker_tps"], cluster=cluster, broker=name)
    assert broker_tps.labels["brokerIP"] == broker.broker_addr
    assert only(families["rocketmq_broker_qps"], cluster=cluster, broker=name).value >= 0
    put_total = families["rocketmq_brokeruntime_msg_put_total_today_now"]
    assert only(put_total, cluster=cluster, brokerIP=broker.broker_addr).value >= 14
    max_offset = families["rocketmq_brokeruntime_commitlog_maxoffset"]
    assert only(max_offset, cluster=cluster).value == broker.store.max_phy_offset > 0
    runtime = only(put_total, cluster=cluster)
    assert runtime.labels["des"] == "V4_7_0" and runtime.labels["brokerHost"] == "127.0.0.1"
    assert families["process_cpu_seconds"] or families["python_info"]

    assert namesrv_families["pyrocket_namesrv_brokers_alive"][0].value == 1
    assert namesrv_families["pyrocket_namesrv_topics"][0].value >= 1
    requests = namesrv_families["pyrocket_namesrv_requests"]
    register = only(requests, request="REGISTER_BROKER")
    assert register.labels["code"] == "103" and register.value >= 1
    routes = only(requests, request="GET_ROUTEINFO_BY_TOPIC").value
    assert routes >= 2  # the producer and the consumer asked for the route
    latency = namesrv_families["pyrocket_namesrv_route_query_seconds"]
    count = only([s for s in latency if s.name.endswith("_count")])
    assert count.value == routes


async def test_rates_are_the_per_minute_statistics(tmp_path: Path) -> None:
    """20 messages put and got, 3 given back, between two samplings 10 s
    apart of a broker clock that moves only when told: 2 per second put and
    got, 0.3 given back."""
    now = [time.time_ns() // 1_000_000]
    with trio.fail_after(60):
        namesrv = NameServer(load_config(None, {"listenPort": "0"}))
        async with trio.open_nursery() as nursery:
            port = await nursery.start(namesrv.serve, "127.0.0.1")
            ns = f"127.0.0.1:{port}"
            settings = broker_settings(tmp_path, [ns], metricsPort=0)
            async with running_broker(settings, now_ms=lambda: now[0]) as broker:
                assert broker.metrics_port
                await produce(ns, 20)
                async with consumer(ns, GROUP, TOPIC) as reader:
                    received = [await reader.receive() for _ in range(20)]
                    for message in received[:3]:  # given back: CONSUMER_SEND_MSG_BACK
                        await reader.reconsume_later(message)
                now[0] += 10_000
                broker.stats_manager.sample(["sample_seconds"], now[0])
                stored = broker.stats.put_size_by_topic[TOPIC]
                families = await scrape(broker.metrics_port)
            nursery.cancel_scope.cancel()
    me = {"cluster": "DefaultCluster", "broker": "broker-a", "topic": TOPIC}
    assert only(families["rocketmq_producer_tps"], **me).value == 2.0
    assert only(families["rocketmq_producer_message_size"], **me).value == stored / 10
    assert only(families["rocketmq_consumer_tps"], **me, group=GROUP).value == 2.0
    size = only(families["rocketmq_consumer_message_size"], **me, group=GROUP).value
    assert size == stored / 10  # the group read back every stored byte
    assert only(families["rocketmq_send_back_nums"], **me, group=GROUP).value == 0.3
    assert only(families["rocketmq_broker_tps"]).value == 2.0
    assert only(families["rocketmq_broker_qps"]).value == 2.0


async def test_bad_requests_do_not_disturb_the_server(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            port = running.broker.metrics_port
            assert port
            # A peer that sends nothing holds its connection only; others are served.
            idle = await trio.open_tcp_stream("127.0.0.1", port)
            async with idle:
                assert (await http(port, b"GET /nothing HTTP/1.1\r\n\r\n"))[0] == 404
                assert (await http(port, b"POST /metrics HTTP/1.1\r\n\r\n"))[0] == 405
                assert (await http(port, b"\x16\x03\x01garbage\r\n\r\n"))[0] == 400
                assert (await http(port, b"GET /metrics\r\n\r\n"))[0] == 400
                huge = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * MAX_REQUEST_HEAD + b"\r\n\r\n"
                assert (await http(port, huge))[0] == 400
                # Closed before the request is complete: nothing to answer.
                half = await trio.open_tcp_stream("127.0.0.1", port)
                await half.send_all(b"GET /metr")
                await half.aclose()
                families = await scrape(port)
            assert "rocketmq_producer_offset" in families
            # The broker itself still answers.
            await produce(running.namesrv_addr, 1)


async def test_metrics_are_off_unless_a_port_is_set(tmp_path: Path) -> None:
    with trio.fail_after(60):
        namesrv = NameServer(load_config(None, {"listenPort": "0"}))
        async with trio.open_nursery() as nursery:
            port = await nursery.start(namesrv.serve, "127.0.0.1")
            settings = broker_settings(tmp_path, [f"127.0.0.1:{port}"])
            assert settings.metrics_port == -1 and namesrv.config.metrics_port == -1
            async with running_broker(settings) as broker:
                assert broker.metrics_port is None and namesrv.metrics_port is None
            nursery.cancel_scope.cancel()


async def test_the_key_turns_it_on_at_the_listen_address(tmp_path: Path) -> None:
    with trio.fail_after(60):
        settings = broker_settings(tmp_path, metricsPort=0)
        assert settings.metrics_port == 0
        async with running_broker(settings) as broker:
            assert broker.metrics_port
            families = await scrape(broker.metrics_port)
            assert "rocketmq_broker_tps" in families


def test_the_key_and_the_flags_are_parsed(tmp_path: Path) -> None:
    assert broker_settings(tmp_path, metricsPort=5557).metrics_port == 5557
    assert broker_settings(tmp_path, metricsPort=-1).metrics_port == -1
    for bad in ("x", "-2", "65536"):
        with pytest.raises(ConfigError, match="metricsPort"):
            broker_settings(tmp_path, metricsPort=bad)
    assert load_config(None, {"metricsPort": "9877"}).metrics_port == 9877
    with pytest.raises(ConfigError, match="metricsPort"):
        load_config(None, {"metricsPort": "70000"})

    parser = build_parser()
    args = parser.parse_args(["broker", "--metrics-port", "0", "--set", "listenPort=0"])
    assert broker_cli.settings_from_args(args).metrics_port == 0
    assert broker_cli.settings_from_args(parser.parse_args(["broker"])).metrics_port == -1
    args = parser.parse_args(["namesrv", "--metrics-port", "5558"])
    assert namesrv_cli.config_from_args(args).metrics_port == 5558
    assert namesrv_cli.config_from_args(parser.parse_args(["namesrv"])).metrics_port == -1
    # A key in the broker.conf turns it on too, and the flag wins over it.
    conf = tmp_path / "broker.conf"
    conf.write_text("metricsPort=6000\nbrokerName=b\n", encoding="utf-8")
    args = parser.parse_args(["broker", "-c", str(conf)])
    assert broker_cli.settings_from_args(args).metrics_port == 6000
    args = parser.parse_args(["broker", "-c", str(conf), "--metrics-port", "6001"])
    assert broker_cli.settings_from_args(args).metrics_port == 6001


class ManyTopics:
    """A :class:`BrokerMetricsSource` with ``count`` topics, each with one group."""

    def __init__(self, count: int) -> None:
        self.count = count

    def labels(self) -> BrokerLabels:
        return BrokerLabels("c", "b", "10.0.0.1", "10.0.0.1:10911", 1)

    def broker_rates(self) -> tuple[float, float]:
        return 1.5, 2.5

    def topic_put_rates(self) -> Mapping[str, Rate]:
        return {f"T{i}": Rate(i, 10 * i) for i in range(self.count)}

    def group_get_rates(self) -> Mapping[tuple[str, str], Rate]:
        return {}

    def send_back_rates(self) -> Mapping[tuple[str, str], float]:
        return {("T0", "G0"): 0.5}

    def topic_names(self) -> list[str]:
        return [f"T{i}" for i in range(self.count)]

    def topic_max_offset(self, topic: str) -> int:
        return int(topic[1:]) * 2

    def offset_keys(self) -> list[tuple[str, str]]:
        return [(f"T{i}", f"G{i}") for i in range(self.count)]

    def group_offsets(self, topic: str, group: str) -> tuple[int, int] | None:
        return int(topic[1:]) * 2, int(topic[1:])

    def online_consumers(self, group: str) -> tuple[int, str]:
        return 1, "1"

    def runtime_figures(self) -> Mapping[str, float]:
        return {}


async def test_a_scrape_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_SERIES", 50)
    registry, collector = broker_registry(ManyTopics(80))
    await collector.refresh()
    families = {
        f.name: f.samples
        for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    assert len(families["rocketmq_producer_offset"]) == 50
    assert only(families["rocketmq_producer_offset"], topic="T7").value == 14
    assert len(families["rocketmq_group_diff"]) == 50
    diff = only(families["rocketmq_group_diff"], topic="T9", group="G9")
    assert diff.value == 9 and diff.labels["countOfOnlineConsumers"] == "1"
    assert diff.labels["msgModel"] == "1"
    assert families["pyrocket_metrics_truncated"][0].value == 1
    # Rates are not walked per queue, so they are all there.
    assert len(families["rocketmq_producer_tps"]) == 80
    assert only(families["rocketmq_broker_qps"]).value == 2.5


async def test_another_source_can_be_plugged_in(tmp_path: Path) -> None:
    def install(broker: Broker) -> None:
        broker.metrics_source = ManyTopics(3)

    with trio.fail_after(60):
        settings = broker_settings(tmp_path, metricsPort=0)
        async with running_broker(settings, install=[install]) as broker:
            assert broker.metrics_port
            families = await scrape(broker.metrics_port)
    tps = families["rocketmq_producer_tps"]
    assert {s.labels["topic"]: s.value for s in tps} == {"T0": 0, "T1": 1, "T2": 2}
    assert only(families["rocketmq_broker_tps"]).labels["brokerIP"] == "10.0.0.1:10911"


async def test_a_scrape_lets_the_loop_run_between_slices() -> None:
    _, collector = broker_registry(ManyTopics(4 * metrics.SLICE))
    turns = 0
    done = False

    async def other_task() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await trio.lowlevel.checkpoint()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other_task)
            await trio.lowlevel.checkpoint()
            before = turns
            await collector.refresh()
            done = True
    # Topics and offsets make 8 slices at least; the other task ran between them.
    assert turns - before >= 7
