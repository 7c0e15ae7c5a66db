"""Registration with every NameServer: timing, failures, forceRegister, and
the two-NameServer scenario over real sockets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from pyrocket.broker.config import BrokerConfig, BrokerSettings
from pyrocket.broker.outer_api import BrokerIdentity, NamesrvOutcome
from pyrocket.broker.registration import (
    RegistrationService,
    RegistrationTiming,
    clamp_register_period,
    permission_wrapper,
)
from pyrocket.broker.topic_config import TopicConfigManager
from pyrocket.errors import RemotingConnectError
from pyrocket.namesrv.kvconfig import NAMESPACE_ORDER_TOPIC_CONFIG
from pyrocket.protocol.bodies.topic import (
    DataVersion,
    RegisterBrokerResult,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.codes import RequestCode
from tests.broker.helpers import FAST_TIMING, broker_settings, running_broker
from tests.broker.recording_namesrv import RecordingNameServer, recording_namesrv


def test_period_is_clamped_to_java_bounds() -> None:
    assert clamp_register_period(1000) == 10_000
    assert clamp_register_period(30_000) == 30_000
    assert clamp_register_period(600_000) == 60_000
    timing = RegistrationTiming.from_period_ms(5)
    assert (timing.first_delay, timing.period) == (10.0, 10.0)


def test_a_broker_without_read_or_write_permission_restates_every_topic() -> None:
    table = {"T": TopicConfig("T", 2, 3, 6, order=True, topic_sys_flag=1)}
    wrapper = TopicConfigSerializeWrapper(table, DataVersion(1, 1))
    assert permission_wrapper(wrapper, 6) is wrapper
    restated = permission_wrapper(wrapper, 4)
    assert dict(restated.topic_config_table) == {"T": TopicConfig("T", 2, 3, 4)}
    assert restated.data_version == wrapper.data_version


class FakeOuterAPI:
    """Answers for two NameServers; ``down`` ones fail."""

    def __init__(self) -> None:
        self.namesrv_addresses = ["ns1:9876", "ns2:9876"]
        self.down: set[str] = set()
        self.calls: list[tuple[float, str, bool]] = []
        self.changed = True

    def _outcome(self, addr: str, **fields: Any) -> NamesrvOutcome:
        if addr in self.down:
            return NamesrvOutcome(addr, error=RemotingConnectError(f"connect to {addr} failed"))
        return NamesrvOutcome(addr, **fields)

    async def register_broker_all(
        self, identity: BrokerIdentity, wrapper: TopicConfigSerializeWrapper, *a: Any, **kw: Any
    ) -> list[NamesrvOutcome]:
        self.calls.append((trio.current_time(), "register", kw["oneway"]))
        await trio.lowlevel.checkpoint()
        return [
            self._outcome(a, result=None if kw["oneway"] else RegisterBrokerResult())
            for a in self.namesrv_addresses
        ]

    async def need_register(
        self,
        identity: BrokerIdentity,
        version: DataVersion,
        timeout: float,  # noqa: ASYNC109 (BrokerOuterAPI's signature)
    ) -> list[NamesrvOutcome]:
        self.calls.append((trio.current_time(), "query", False))
        return [self._outcome(a, changed=self.changed) for a in self.namesrv_addresses]

    async def unregister_broker_all(self, identity: BrokerIdentity) -> list[NamesrvOutcome]:
        self.calls.append((trio.current_time(), "unregister", False))
        return [self._outcome(a) for a in self.namesrv_addresses]


def service(tmp_path: Path, api: FakeOuterAPI, **broker: Any) -> RegistrationService:
    settings = BrokerSettings.from_properties({"storePathRootDir": str(tmp_path)})
    config = BrokerConfig(broker_name="broker-a", broker_ip1="127.0.0.1", **broker)
    settings = BrokerSettings.startup_rules(
        config, settings.server, settings.client, settings.store
    )
    topics = TopicConfigManager(config, tmp_path / "topics.json")
    return RegistrationService(api, topics, lambda: settings)  # type: ignore[arg-type]


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_rounds_at_start_then_after_ten_seconds_then_every_period(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeOuterAPI()
    api.down.add("ns2:9876")
    registration = service(tmp_path, api, register_name_server_period=20_000)
    caplog.set_level(logging.DEBUG, logger="pyrocket.broker")
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(registration.run)
        await trio.sleep(71)
        # Oneway registrations after a topic change do not add warnings.
        registration.trigger_oneway()
        registration.trigger_oneway()
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    times = [round(t - start) for t, kind, oneway in api.calls if kind == "register" and not oneway]
    assert times == [0, 10, 30, 50, 70]
    # The two triggers came together: one oneway round serves both.
    assert sum(1 for _, _, oneway in api.calls if oneway) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    # One warning per period for the dead NameServer, never for the live one.
    assert len(warnings) == 5
    assert all("ns2:9876" in r.getMessage() for r in warnings)
    assert registration.status("ns1:9876").value.registrations == 5
    status = registration.status("ns2:9876").value
    assert not status.registered and status.failures == 6 and status.last_error


async def test_force_register_false_asks_first(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    api = FakeOuterAPI()
    registration = service(tmp_path, api, force_register=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(registration.run)  # start-up registers regardless
        api.changed = False
        await trio.sleep(10.5)
        api.changed = True
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    kinds = [kind for _, kind, _ in api.calls]
    assert kinds == ["register", "query", "query", "register"]
    assert registration.rounds.value == 3


async def test_two_namesrvs_one_stopped_and_restarted(tmp_path: Path) -> None:
    # ns2 runs in a cancel scope of its own so that it can be stopped, then
    # comes back on the same port as a fresh NameServer that knows nothing.
    async def serve_ns2(
        port: int, scope: trio.CancelScope, *, task_status: trio.TaskStatus[RecordingNameServer]
    ) -> None:
        with scope:
            async with recording_namesrv(tmp_path / "ns2", port) as ns:
                task_status.started(ns)
                await trio.sleep_forever()

    period = FAST_TIMING.period
    with trio.fail_after(20):
        async with (
            recording_namesrv(tmp_path / "ns1") as ns1,
            trio.open_nursery() as ns2_nursery,
        ):
            first_run = trio.CancelScope()
            ns2: RecordingNameServer = await ns2_nursery.start(serve_ns2, 0, first_run)
            addr1, addr2 = ns1.addr, ns2.addr
            settings = broker_settings(tmp_path, [addr1, addr2])
            async with running_broker(settings, timing=FAST_TIMING) as broker:
                broker_addr = broker.broker_addr
                registration = broker.registration
                assert registration.status(addr1).value.registered
                assert registration.status(addr2).value.registered
                assert ns1.is_live(broker_addr) and ns2.is_live(broker_addr)

                # Stop ns2: the next round still reaches ns1, within one period.
                first_run.cancel()
                await registration.status(addr2).wait_value(lambda s: s.failures >= 1)
                failed_at = trio.current_time()
                seen = ns1.count(RequestCode.REGISTER_BROKER)
                await ns1.wait_for(lambda: ns1.count(RequestCode.REGISTER_BROKER) > seen)
                assert trio.current_time() - failed_at <= period + 0.25
                # ... and every later round does too, while ns2 fails each time.
                # (Counted from the end of a round, none being under way.)
                rounds, _ = await registration.rounds.wait_transition()
                registered = ns1.count(RequestCode.REGISTER_BROKER)
                await registration.rounds.wait_value(lambda n: n >= rounds + 3)
                new_rounds = registration.rounds.value - rounds
                assert ns1.count(RequestCode.REGISTER_BROKER) - registered >= new_rounds
                assert registration.status(addr2).value.failures >= 4
                assert registration.status(addr1).value.registered
                assert ns1.is_live(broker_addr)

                # ns2 comes back on its port: the broker is registered there again.
                ns2 = await ns2_nursery.start(
                    serve_ns2, int(addr2.rsplit(":", 1)[1]), trio.CancelScope()
                )
                assert ns2.addr == addr2 and not ns2.is_live(broker_addr)
                await ns2.wait_for(lambda: ns2.is_live(broker_addr))
                await registration.status(addr2).wait_value(lambda s: s.registered)
                assert ns2.has_topic("TBW102", "broker-a")
            # The broker's shutdown unregistered it from both.
            assert ns1.unregistered == [broker_addr] and ns2.unregistered == [broker_addr]
            assert not ns1.is_live(broker_addr) and not ns2.is_live(broker_addr)
            assert ns1.routes.broker_names() == [] and ns2.routes.broker_names() == []
            ns2_nursery.cancel_scope.cancel()


async def test_registration_carries_the_topic_table_and_follows_order_table(
    tmp_path: Path,
) -> None:
    with trio.fail_after(10):
        async with recording_namesrv(tmp_path / "ns") as ns:
            ns.server.state.kv.put_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, "Ordered", "broker-a:4")
            async with running_broker(broker_settings(tmp_path, [ns.addr])) as broker:
                topics = broker.topic_config_manager
                await topics.update_topic_config(TopicConfig("Ordered", 4, 4, 6))
                await broker.registration.rounds.wait_value(lambda n: n >= 3)
                assert topics.is_order_topic("Ordered")

                def ordered_registered() -> bool:
                    _, body = ns.registrations()[-1]
                    table = body.topic_config_serialize_wrapper.topic_config_table
                    return "Ordered" in table and table["Ordered"].order

                await ns.wait_for(ordered_registered)
                assert ns.has_topic("Ordered", "broker-a")
                header, body = ns.registrations()[-1]
                assert not header.compressed and header.broker_name == "broker-a"
                assert list(body.topic_config_serialize_wrapper.topic_config_table) == list(
                    topics.topic_config_table
                )


async def test_compressed_registration(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with recording_namesrv(tmp_path / "ns") as ns:
            settings = broker_settings(tmp_path, [ns.addr], compressedRegister="true")
            async with running_broker(settings) as broker:
                header, body = ns.registrations()[0]
                assert header.compressed
                table = broker.topic_config_manager.topic_config_table
                assert set(body.topic_config_serialize_wrapper.topic_config_table) == set(table)
                # The NameServer took the compressed table in.
                assert all(ns.has_topic(topic, "broker-a") for topic in table)


async def test_an_auto_created_topic_is_registered_at_once_oneway(tmp_path: Path) -> None:
    slow = RegistrationTiming(first_delay=60, period=60)
    with trio.fail_after(10):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_broker(broker_settings(tmp_path, [ns.addr]), timing=slow) as broker,
        ):
            assert ns.count(RequestCode.REGISTER_BROKER) == 1
            assert not ns.has_topic("AutoTopic", "broker-a")
            await broker.topic_config_manager.create_topic_in_send_message_method(
                "AutoTopic", "TBW102", "127.0.0.1:1", 4, 0
            )
            await ns.wait_for(lambda: ns.count(RequestCode.REGISTER_BROKER) == 2)
            assert ns.requests[-1].is_oneway
            assert ns.has_topic("AutoTopic", "broker-a")


async def test_a_slave_learns_its_master(tmp_path: Path) -> None:
    class MasterAnswering(FakeOuterAPI):
        async def register_broker_all(self, *a: Any, **kw: Any) -> list[NamesrvOutcome]:
            await super().register_broker_all(*a, **kw)
            result = RegisterBrokerResult("127.0.0.1:10912", "127.0.0.1:10911")
            return [NamesrvOutcome("ns1:9876", result=result)]

    api = MasterAnswering()
    settings = BrokerSettings.from_properties(
        {"storePathRootDir": str(tmp_path), "brokerRole": "SLAVE", "brokerId": "1"}
    )
    topics = TopicConfigManager(settings.broker, tmp_path / "topics.json")
    registration = RegistrationService(api, topics, lambda: settings)  # type: ignore[arg-type]
    assert registration.update_master_ha_addr_periodically
    await registration.register_broker_all(True, False, True)
    assert registration.master_addr.value == "127.0.0.1:10911"
    assert registration.ha_master_addr.value == "127.0.0.1:10912"
