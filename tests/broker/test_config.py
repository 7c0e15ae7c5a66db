"""broker.conf loading: Java keys, start-up rules, bad values named, and
GET_BROKER_CONFIG's properties in Java's order."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from pyrocket.broker.config import (
    BrokerConfig,
    BrokerSettings,
    NettyClientConfig,
    NettyServerConfig,
    bloom_filter_bits,
    java_key,
    load_broker_settings,
    object_properties,
)
from pyrocket.broker.configuration import BrokerConfiguration, refusal_reason
from pyrocket.broker.store import BrokerRole, FlushDiskType
from pyrocket.errors import ConfigError, PyrocketError
from pyrocket.protocol.bodies.properties import Properties
from tests.vectorset import read_records

BROKER_CONF = """\
# a Java user's broker.conf
brokerClusterName = DefaultCluster
brokerName = broker-b
brokerId = 0
deleteWhen = 04
fileReservedTime = 48
brokerRole = ASYNC_MASTER
flushDiskType = ASYNC_FLUSH
namesrvAddr=127.0.0.1:9876;127.0.0.2:9876
listenPort=10921
brokerIP1=10.0.0.5
registerNameServerPeriod=10000
compressedRegister=true
forceRegister=false
brokerPermission=4
autoCreateTopicEnable=false
defaultTopicQueueNums=4
storePathRootDir={root}
"""


def write_conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broker.conf"
    path.write_text(text.format(root=tmp_path / "store"))
    return path


def test_java_keys_spread_over_every_config_object(tmp_path: Path) -> None:
    settings = load_broker_settings(write_conf(tmp_path, BROKER_CONF))
    broker = settings.broker
    assert broker.broker_cluster_name == "DefaultCluster"
    assert broker.broker_name == "broker-b"
    assert broker.namesrv_addresses == ["127.0.0.1:9876", "127.0.0.2:9876"]
    assert broker.broker_ip1 == "10.0.0.5"
    assert broker.register_name_server_period == 10000
    assert broker.compressed_register is True
    assert broker.force_register is False
    assert broker.broker_permission == 4
    assert broker.auto_create_topic_enable is False
    assert broker.default_topic_queue_nums == 4
    assert settings.server.listen_port == 10921
    assert settings.store.file_reserved_time == 48
    assert settings.store.broker_role is BrokerRole.ASYNC_MASTER
    assert settings.store.flush_disk_type is FlushDiskType.ASYNC_FLUSH
    assert settings.store.store_path_root_dir == str(tmp_path / "store")
    # BrokerStartup: the HA port follows the listen port; the fast port is 2 below.
    assert settings.store.ha_listen_port == 10922
    assert settings.fast_listen_port == 10919
    assert settings.broker_addr == "10.0.0.5:10921"
    assert settings.config_file == tmp_path / "broker.conf"


def test_command_line_overrides_win(tmp_path: Path) -> None:
    path = write_conf(tmp_path, BROKER_CONF)
    settings = load_broker_settings(path, {"namesrvAddr": "10.1.1.1:9876", "listenPort": "10931"})
    assert settings.broker.namesrv_addresses == ["10.1.1.1:9876"]
    assert settings.server.listen_port == 10931
    assert settings.store.ha_listen_port == 10932
    with pytest.raises(ConfigError, match="notAKey"):
        load_broker_settings(path, {"notAKey": "1"})


def test_unknown_keys_are_warned_about_and_kept(tmp_path: Path) -> None:
    warnings: list[str] = []
    path = write_conf(tmp_path, BROKER_CONF + "fooUnknownKey=x\n")
    settings = load_broker_settings(path, warn=warnings.append)
    assert len(warnings) == 1 and "fooUnknownKey" in warnings[0]
    assert settings.file_properties["fooUnknownKey"] == "x"
    # Java lists such keys in GET_BROKER_CONFIG too.
    listed = BrokerConfiguration(settings).all_configs(settings)
    assert listed["fooUnknownKey"] == "x"


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("listenPort=ten", "listenPort"),
        ("brokerId=1.5", "brokerId"),
        ("autoCreateTopicEnable=yes", "autoCreateTopicEnable"),
        ("registerNameServerPeriod=0", "registerNameServerPeriod"),
        ("namesrvAddr=127.0.0.1", "namesrvAddr"),
        ("listenPort=70000", "listenPort"),
        ("fileReservedTime=-1", "fileReservedTime"),
        ("brokerRole=LEADER", "brokerRole"),
        ("defaultTopicQueueNums=99999999999", "defaultTopicQueueNums"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(tmp_path: Path, line: str, key: str) -> None:
    path = write_conf(tmp_path, BROKER_CONF + line + "\n")
    with pytest.raises(ConfigError, match=key):
        load_broker_settings(path)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("enableDLegerCommitLog=true", "enableDLegerCommitLog"),
        ("transientStorePoolEnable=true", "transientStorePoolEnable"),
    ],
)
def test_unimplemented_security_and_durability_features_refuse_to_start(
    tmp_path: Path, line: str, key: str
) -> None:
    path = write_conf(tmp_path, BROKER_CONF + line + "\n")
    with pytest.raises(ConfigError, match=f"^{re.escape(key)}=.*does not implement") as raised:
        load_broker_settings(path)
    assert isinstance(raised.value, PyrocketError)
    # The same on the command line, and through settings built in code.
    on = line.split("=", 1)[1].strip()
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_broker_settings(write_conf(tmp_path, BROKER_CONF), {key: on})


def test_acl_enable_is_parsed_and_accepted(tmp_path: Path) -> None:
    # Acted on by serve_broker, which refuses to start without a good
    # plain_acl.yml (tests/broker/test_acl.py).
    settings = load_broker_settings(write_conf(tmp_path, BROKER_CONF + "aclEnable = TRUE \n"))
    assert settings.broker.acl_enable is True


def test_unimplemented_features_left_off_are_accepted(tmp_path: Path) -> None:
    off = "aclEnable=false\nuseTLS=false\ntls.server.mode=disabled\ntls.enable=false\n"
    off += "enableDLegerCommitLog=false\ntransientStorePoolEnable=false\n"
    settings = load_broker_settings(write_conf(tmp_path, BROKER_CONF + off))
    assert settings.broker.acl_enable is False and settings.client.use_tls is False
    assert settings.store.transient_store_pool_enable is False
    # Settings built in code are refused too.
    with pytest.raises(ConfigError, match="does not implement"):
        dataclasses.replace(BrokerSettings().store, enable_d_leger_commit_log=True)


@pytest.mark.parametrize(
    ("lines", "use_tls"),
    [
        ("", False),
        ("tls.server.mode=enforcing\n", True),
        ("tls.server.mode=permissive\n", False),
        ("tls.server.mode=enforcing\ntls.enable=false\n", False),
        ("tls.enable=true\n", True),
        ("tls.enable=true\nuseTLS=false\n", False),
        ("useTLS=true\n", True),
    ],
)
def test_tls_keys_and_the_brokers_own_connections(
    tmp_path: Path, lines: str, use_tls: bool
) -> None:
    conf = BROKER_CONF + lines + "tls.server.certPath=/c.pem\ntls.server.keyPassword=pw\n"
    settings = load_broker_settings(write_conf(tmp_path, conf))
    assert settings.server.tls.server_cert_path == "/c.pem"
    assert settings.server.server_config().tls == settings.server.tls
    assert settings.client.use_tls is use_tls
    client_tls = settings.client.client_config(settings.server.tls).tls
    assert (client_tls is settings.server.tls) is use_tls
    listed = BrokerConfiguration(settings).all_configs(settings)
    assert listed["tls.server.certPath"] == "/c.pem"
    assert "tls.server.keyPassword" not in listed
    assert refusal_reason("tls.server.certPath") is not None


def test_master_broker_id_is_zero_and_slave_needs_a_positive_one(tmp_path: Path) -> None:
    settings = load_broker_settings(write_conf(tmp_path, BROKER_CONF + "brokerId=3\n"))
    assert settings.broker.broker_id == 0
    slave = BROKER_CONF.replace("ASYNC_MASTER", "SLAVE")
    settings = load_broker_settings(write_conf(tmp_path, slave + "brokerId=2\n"))
    assert settings.broker.broker_id == 2
    with pytest.raises(ConfigError, match="brokerId"):
        load_broker_settings(write_conf(tmp_path, slave))


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.conf"):
        load_broker_settings(tmp_path / "missing.conf")
    bad = tmp_path / "bad.conf"
    bad.write_bytes(b"brokerName=\xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_broker_settings(bad)


def test_java_spelling_of_keys() -> None:
    assert java_key("broker_ip1") == "brokerIP1"
    assert java_key("use_tls") == "useTLS"
    assert java_key("register_broker_timeout_mills") == "registerBrokerTimeoutMills"
    keys = [
        key for key, _ in object_properties(BrokerConfig(rocketmq_home="/rmq", namesrv_addr=None))
    ]
    assert keys[:4] == ["rocketmqHome", "brokerIP1", "brokerIP2", "brokerName"]
    assert "namesrvAddr" not in keys  # null fields are left out, as object2Properties does
    server_keys = [key for key, _ in object_properties(NettyServerConfig())]
    assert server_keys[0] == "listenPort" and "useEpollNativeSelector" in server_keys
    client_keys = [key for key, _ in object_properties(NettyClientConfig())]
    assert client_keys[-1] == "useTLS"


def test_bloom_filter_bits_match_java() -> None:
    # ConsumerFilterManager's defaults (20 %, 32 consumers) give 112 bits.
    assert bloom_filter_bits(20, 32) == 112
    assert bloom_filter_bits(20, 64) % 8 == 0
    assert bloom_filter_bits(1, 32) > bloom_filter_bits(50, 32)


def test_get_broker_config_lists_properties_in_java_order(vectors_dir: Path) -> None:
    # Configure a broker with the properties the recorded Java broker reported,
    # then list them back: same keys, same values, same order, same bytes.
    recorded = [
        r
        for r in read_records(vectors_dir / "admin-broker.jsonl")
        if r.is_response and r.body is not None and r.body.startswith(b"shortPollingTimeMills=")
    ]
    assert len(recorded) == 2
    for record in recorded:
        assert record.body is not None
        properties = Properties.decode(record.body).entries
        settings = BrokerSettings.from_properties(properties)
        text = BrokerConfiguration(settings).format_string(settings)
        assert text.encode() == record.body


def test_store_settings_round_trip_through_properties(tmp_path: Path) -> None:
    settings = load_broker_settings(write_conf(tmp_path, BROKER_CONF))
    listed = dict(object_properties(settings.store))
    assert listed["fileReservedTime"] == "48"
    assert listed["haListenPort"] == "10922"
    assert listed["bitMapLengthConsumeQueueExt"] == "112"
    assert listed["brokerRole"] == "ASYNC_MASTER"


def test_ha_use_tls_is_parsed(tmp_path: Path) -> None:
    assert load_broker_settings(write_conf(tmp_path, BROKER_CONF)).ha_use_tls is False
    path = write_conf(tmp_path, BROKER_CONF + "haUseTLS = TRUE \n")
    assert load_broker_settings(path).ha_use_tls is True
    with pytest.raises(ConfigError, match="haUseTLS"):
        load_broker_settings(write_conf(tmp_path, BROKER_CONF + "haUseTLS=yes\n"))
