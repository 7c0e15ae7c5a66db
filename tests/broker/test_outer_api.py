"""REGISTER_BROKER, UNREGISTER_BROKER and QUERY_DATA_VERSION as the Java
broker sends them, byte for byte, and sent to several NameServers at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.broker.config import BrokerConfig
from pyrocket.broker.outer_api import (
    BrokerIdentity,
    BrokerOuterAPI,
    query_data_version_request,
    register_broker_request,
    unregister_broker_request,
)
from pyrocket.broker.processors.admin import topic_config_from_header
from pyrocket.broker.topic_config import TopicConfigManager
from pyrocket.errors import ConfigError, ResponseError
from pyrocket.protocol.bodies.topic import (
    DataVersion,
    RegisterBrokerBody,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.checksum import crc32
from pyrocket.protocol.codes import RequestCode, ResponseCode, SerializeType
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.headers import CreateTopicRequestHeader, RegisterBrokerRequestHeader
from pyrocket.protocol.javahash import JavaConcurrentHashMap
from pyrocket.remoting import Connection, RemotingClient, RemotingServer
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv
from tests.remoting.helpers import running_server
from tests.vectorset import Record, read_records

#: A broker identity for the tests that do not read a capture.
IDENTITY = BrokerIdentity("DefaultCluster", "127.0.0.1:10911", "broker-a", 0, "127.0.0.1:10912")
RECORDED_BROKER = BrokerConfig(
    broker_name="broker-a", broker_cluster_name="DefaultCluster", broker_ip1="127.0.0.1"
)
#: What a broker sends its NameServers.
BROKER_TO_NAMESRV = frozenset(
    {RequestCode.REGISTER_BROKER, RequestCode.UNREGISTER_BROKER, RequestCode.QUERY_DATA_VERSION}
)
SCENARIOS = [
    "register-basic",
    "register-compressed",
    "register-two-namesrv",
    "register-query-version",
]


def recorded_identities(records: list[Record]) -> list[tuple[BrokerIdentity, BrokerConfig]]:
    """The identity and config of every Java broker whose REGISTER_BROKER
    requests the capture holds, in the order they first registered."""
    found: dict[str, tuple[BrokerIdentity, BrokerConfig]] = {}
    for record in records:
        if record.code == RequestCode.REGISTER_BROKER:
            header = decode(record.frame).decode_header(RegisterBrokerRequestHeader)
            if header.broker_addr in found:
                continue
            identity = BrokerIdentity(
                header.cluster_name,
                header.broker_addr,
                header.broker_name,
                header.broker_id,
                header.ha_server_addr,
            )
            config = BrokerConfig(
                broker_name=header.broker_name,
                broker_cluster_name=header.cluster_name,
                broker_ip1=header.broker_addr.rsplit(":", 1)[0],
            )
            found[header.broker_addr] = (identity, config)
    if not found:
        pytest.skip("the capture has no REGISTER_BROKER request")
    return list(found.values())


def recorded_identity(records: list[Record]) -> tuple[BrokerIdentity, BrokerConfig]:
    """The identity and config of the first Java broker that registered."""
    return recorded_identities(records)[0]


def of_broker(records: list[Record], identity: BrokerIdentity) -> list[Record]:
    """The requests one broker sent its NameServers, and the operator's
    requests to that broker (told apart by its listen port)."""
    port = int(identity.broker_addr.rsplit(":", 1)[1])
    mine = []
    for record in records:
        if record.server == "java-broker":
            if record.client == "java-mqadmin" and record.server_port == port:
                mine.append(record)
        elif record.client == "java-broker" and record.code in BROKER_TO_NAMESRV:
            fields = decode(record.frame).ext_fields or {}
            if fields.get("brokerAddr") == identity.broker_addr:
                mine.append(record)
    return mine


def recorded_version(record: Record) -> DataVersion:
    """The DataVersion a recorded REGISTER_BROKER carries (normalised by the
    README: it is the broker's start time and change count)."""
    request = decode(record.frame)
    compressed = request.decode_header(RegisterBrokerRequestHeader).compressed
    body = RegisterBrokerBody.decode(request.body or b"", compressed)
    return body.topic_config_serialize_wrapper.data_version


def broker_requests(path: Path) -> list[Record]:
    return [r for r in read_records(path) if r.is_frame and r.is_request and r.sender == "client"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_register_and_unregister_frames_are_javas(vectors_dir: Path, scenario: str) -> None:
    all_records = broker_requests(vectors_dir / f"{scenario}.jsonl")
    checked = 0
    for identity, recorded_broker in recorded_identities(all_records):
        checked += check_broker_frames(of_broker(all_records, identity), identity, recorded_broker)
    expected = sum(
        1 for r in all_records if r.client == "java-broker" and r.code in BROKER_TO_NAMESRV
    )
    assert checked == expected > 0


def check_broker_frames(
    records: list[Record], identity: BrokerIdentity, recorded_broker: BrokerConfig
) -> int:
    """Rebuild one broker's REGISTER/UNREGISTER/QUERY_DATA_VERSION frames from
    its identity and the operator's topic changes; compare byte for byte."""
    topics = TopicConfigManager(recorded_broker, Path("/nonexistent/topics.json"))
    incremental_next: TopicConfig | None = None
    checked = 0
    for record in records:
        request = decode(record.frame)
        if record.code == RequestCode.UPDATE_AND_CREATE_TOPIC:
            # An operator's updateTopic: the broker adds the topic, then
            # registers just that topic (registerIncrementBrokerData).
            config = topic_config_from_header(request.decode_header(CreateTopicRequestHeader))
            assert config.topic_name is not None
            topics.topic_config_table[config.topic_name] = config
            incremental_next = config
            continue
        if record.code == RequestCode.REGISTER_BROKER:
            compressed = request.decode_header(RegisterBrokerRequestHeader).compressed
            version = recorded_version(record)
            if incremental_next is not None:
                table: JavaConcurrentHashMap[str, TopicConfig] = JavaConcurrentHashMap()
                table[incremental_next.topic_name or ""] = incremental_next
                wrapper = TopicConfigSerializeWrapper(table, version)
                incremental_next = None
            else:
                topics.data_version = version
                wrapper = topics.build_topic_config_serialize_wrapper()
            built = register_broker_request(identity, wrapper, compressed=compressed)
        elif record.code == RequestCode.UNREGISTER_BROKER:
            built = unregister_broker_request(identity)
        elif record.code == RequestCode.QUERY_DATA_VERSION:
            version = DataVersion.decode(request.body or b"")
            built = query_data_version_request(identity, version)
        else:
            continue
        assert encode(built.replace(opaque=record.opaque)) == record.frame, record.seq
        checked += 1
    return checked


def test_body_crc_covers_the_compressed_body() -> None:
    topics = TopicConfigManager(RECORDED_BROKER, Path("/nonexistent/topics.json"))
    wrapper = topics.build_topic_config_serialize_wrapper()
    plain = register_broker_request(IDENTITY, wrapper)
    packed = register_broker_request(IDENTITY, wrapper, compressed=True, oneway=True)
    assert packed.is_oneway and not plain.is_oneway
    assert packed.body is not None and plain.body is not None
    assert len(packed.body) < len(plain.body)
    header = packed.decode_header(RegisterBrokerRequestHeader)
    assert header.compressed and header.body_crc32 == crc32(packed.body)
    decoded = RegisterBrokerBody.decode(packed.body, True)
    # Compressed, Java writes a copy of the table (a default-sized map).
    copy: JavaConcurrentHashMap[str, TopicConfig] = JavaConcurrentHashMap()
    for name, config in topics.topic_config_table.items():
        copy[name] = config
    assert list(decoded.topic_config_serialize_wrapper.topic_config_table) == list(copy)


async def test_a_dead_and_a_silent_namesrv_do_not_hold_up_a_live_one(tmp_path: Path) -> None:
    silent_got = trio.Event()

    async def never_answers(conn: Connection, request: RemotingCommand) -> None:
        silent_got.set()
        await trio.sleep_forever()

    silent = RemotingServer()
    silent.register_processor(RequestCode.REGISTER_BROKER, never_answers)
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        dead_addr = f"127.0.0.1:{probe.getsockname()[1]}"  # nothing listens there
    topics = TopicConfigManager(RECORDED_BROKER, Path("/nonexistent/topics.json"))
    with trio.fail_after(10):
        async with (
            recording_namesrv(tmp_path / "ns") as live,
            running_server(silent) as silent_addr,
            RemotingClient() as client,
        ):
            live_addr = live.addr
            api = BrokerOuterAPI(client, f"{dead_addr};{silent_addr};{live_addr}")
            start = trio.current_time()
            outcomes = await api.register_broker_all(
                IDENTITY, topics.build_topic_config_serialize_wrapper(), timeout=0.5
            )
            elapsed = trio.current_time() - start
            assert silent_got.is_set()
            assert live.is_live(IDENTITY.broker_addr)
    by_addr = {o.namesrv_addr: o for o in outcomes}
    assert set(by_addr) == {dead_addr, silent_addr, live_addr}
    assert by_addr[live_addr].ok and by_addr[live_addr].result is not None
    assert not by_addr[dead_addr].ok and not by_addr[silent_addr].ok
    assert "0.5s" in str(by_addr[silent_addr].error)
    # The live one answered before the silent one timed out; the round lasted
    # one timeout, not one per NameServer.
    order = [o.namesrv_addr for o in outcomes]
    assert order.index(live_addr) < order.index(silent_addr)
    assert elapsed < 1.5
    assert live.count(RequestCode.REGISTER_BROKER) == 1


async def test_query_data_version_verdicts(tmp_path: Path) -> None:
    async def refuse(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, "nope")

    failing = RemotingServer()
    failing.register_processor(RequestCode.QUERY_DATA_VERSION, refuse)
    version = DataVersion(5, 1)
    with trio.fail_after(10):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_server(failing) as failing_addr,
            RemotingClient() as client,
        ):
            ns_addr = ns.addr
            api = BrokerOuterAPI(client, [ns_addr, failing_addr, ns_addr])
            assert api.namesrv_addresses == [ns_addr, failing_addr]
            outcomes = {o.namesrv_addr: o for o in await api.need_register(IDENTITY, version)}
            # Never registered there: changed. A non-SUCCESS answer: unchanged (Java).
            assert outcomes[ns_addr].changed and outcomes[ns_addr].ok
            assert not outcomes[failing_addr].changed
            assert isinstance(outcomes[failing_addr].error, ResponseError)
            wrapper = TopicConfigSerializeWrapper({}, version)
            await api.register_broker_all(IDENTITY, wrapper)
            outcomes = {o.namesrv_addr: o for o in await api.need_register(IDENTITY, version)}
            assert not outcomes[ns_addr].changed
            newer = version.next_version(9)
            outcomes = {o.namesrv_addr: o for o in await api.need_register(IDENTITY, newer)}
            assert outcomes[ns_addr].changed
            api.update_namesrv_address_list("127.0.0.1:1")
            (unreachable,) = await api.need_register(IDENTITY, newer, timeout=2)
            assert unreachable.changed and not unreachable.ok
            unregistered = await api.unregister_broker_all(IDENTITY)
            assert not unregistered[0].ok
    assert ns.count(RequestCode.QUERY_DATA_VERSION) == 3


def test_rocketmq_serialized_frames_are_javas(vectors_dir: Path) -> None:
    # Java run with rocketmq.serialize.type=ROCKETMQ: the binary header. The
    # registrations before anything created a topic carry the system topics;
    # a topic created (by an operator or by a send) ends that.
    records = broker_requests(vectors_dir / "serialize-rocketmq.jsonl")
    identity, recorded_broker = recorded_identity(records)
    topics = TopicConfigManager(recorded_broker, Path("/nonexistent/topics.json"))
    creating = {
        RequestCode.UPDATE_AND_CREATE_TOPIC,
        RequestCode.SEND_MESSAGE,
        RequestCode.SEND_MESSAGE_V2,
        RequestCode.SEND_BATCH_MESSAGE,
    }
    checked = expected = 0
    fresh = True
    for record in records:
        if record.code in creating or (
            record.code == RequestCode.REGISTER_BROKER and record.oneway
        ):
            fresh = False
        if record.code == RequestCode.REGISTER_BROKER and fresh:
            topics.data_version = recorded_version(record)
            built = register_broker_request(identity, topics.build_topic_config_serialize_wrapper())
        elif record.code == RequestCode.UNREGISTER_BROKER:
            built = unregister_broker_request(identity)
        else:
            continue
        expected += 1
        wire = built.replace(opaque=record.opaque, serialize_type=SerializeType.ROCKETMQ)
        assert encode(wire) == record.frame, record.seq
        checked += 1
    assert checked == expected > 0


async def test_the_broker_writes_the_configured_serialize_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROCKETMQ_SERIALIZE_TYPE", "ROCKETMQ")
    with trio.fail_after(10):
        async with recording_namesrv(tmp_path / "ns") as ns:
            settings = broker_settings(tmp_path, [ns.addr])
            assert settings.serialize_type is SerializeType.ROCKETMQ
            async with running_broker(settings) as broker:
                assert ns.requests[0].serialize_type is SerializeType.ROCKETMQ
                # The NameServer read the binary header and registered the broker.
                assert ns.is_live(broker.broker_addr)
                assert broker.registration.status(ns.addr).value.registered
                async with RemotingClient() as client:
                    response = await client.invoke_sync(
                        broker.broker_addr,
                        RemotingCommand.request(RequestCode.GET_BROKER_CONFIG),
                        5,
                    )
                assert response.serialize_type is SerializeType.ROCKETMQ
    monkeypatch.setenv("ROCKETMQ_SERIALIZE_TYPE", "XML")
    with pytest.raises(ConfigError, match="ROCKETMQ_SERIALIZE_TYPE"):
        broker_settings(tmp_path, [])
