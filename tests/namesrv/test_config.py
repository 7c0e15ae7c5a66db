"""NameServer configuration: Java property names, files, overrides, updates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pyrocket.errors import ConfigError
from pyrocket.namesrv.app import server_config
from pyrocket.namesrv.config import (
    PROPERTIES,
    RUNTIME_KEYS,
    Configuration,
    NamesrvConfig,
    load_config,
    plan_update,
    property_for,
    refusal_reason,
    save_properties,
)
from pyrocket.remoting.tls import TlsMode


def test_every_property_maps_to_a_config_attribute() -> None:
    fields = {f.name for f in dataclasses.fields(NamesrvConfig)}
    for prop in PROPERTIES:
        assert prop.attr in fields, prop
    prop = property_for("serverChannelMaxIdleTimeSeconds")
    assert prop is not None and prop.attr == "server_channel_max_idle_time_seconds"
    assert property_for("brokerName") is None


def test_defaults_are_javas(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ROCKETMQ_HOME", "/opt/rocketmq")
    config = NamesrvConfig()
    assert config.listen_port == 9876
    assert config.kv_config_path == str(tmp_path / "namesrv" / "kvConfig.json")
    assert config.config_store_path == str(tmp_path / "namesrv" / "namesrv.properties")
    assert config.rocketmq_home == "/opt/rocketmq"
    assert config.broker_channel_expired_time_millis == 120_000
    assert (
        config.scan_not_active_broker_delay_millis,
        config.scan_not_active_broker_interval_millis,
    ) == (5_000, 10_000)


def test_a_java_config_file_is_read_and_becomes_the_config_store(tmp_path: Path) -> None:
    conf = tmp_path / "namesrv.properties"
    conf.write_text(
        "# comment\n"
        "listenPort = 19876\n"
        "kvConfigPath=/data/kv.json\n"
        "orderMessageEnable=TRUE\n"
        "serverChannelMaxIdleTimeSeconds: 30\n"
        "someOtherKey=kept\n"
    )
    config = load_config(conf, {"listenPort": "29876"})
    assert config.listen_port == 29876
    assert config.kv_config_path == "/data/kv.json"
    assert config.order_message_enable is True
    assert config.server_channel_max_idle_time_seconds == 30
    assert config.config_store_path == str(conf)
    assert config.file_properties["someOtherKey"] == "kept"
    assert server_config(config).channel_max_idle_seconds == 30.0
    listed = Configuration(config).all_configs(config)
    assert listed["someOtherKey"] == "kept"
    assert listed["listenPort"] == "29876"
    assert listed["configStorePath"] == str(conf)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("listenPort=abc", "listenPort"),
        ("orderMessageEnable=yes", "orderMessageEnable"),
        ("serverWorkerThreads=99999999999999999999", "serverWorkerThreads"),
    ],
)
def test_a_bad_value_in_the_file_names_the_file_and_key(
    tmp_path: Path, line: str, key: str
) -> None:
    conf = tmp_path / "namesrv.properties"
    conf.write_text(line + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(conf)
    assert str(conf) in str(caught.value)
    assert key in str(caught.value)


def test_unknown_override_keys_and_missing_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="brokerName: not a NameServer property"):
        load_config(None, {"brokerName": "x"})
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "absent.properties")


def test_rocketmq_home_unset_is_left_out_of_the_listing() -> None:
    config = NamesrvConfig(rocketmq_home=None)
    assert "rocketmqHome" not in Configuration(config).all_configs(config)


def test_updates_accept_only_runtime_keys() -> None:
    assert {"orderMessageEnable"} == RUNTIME_KEYS
    plan = plan_update(
        {
            "orderMessageEnable": "true",
            "configStorePath": "/etc/cron.d/x",
            "rocketmqHome": "/tmp",
            "serverWorkerThreads": "16",
            "nonsense": "1",
        }
    )
    assert dict(plan.accepted) == {"orderMessageEnable": "true"}
    assert set(plan.refused) == {
        "configStorePath",
        "rocketmqHome",
        "serverWorkerThreads",
        "nonsense",
    }
    assert "cannot be changed remotely" in plan.refused["configStorePath"]
    assert "only read at start" in plan.refused["serverWorkerThreads"]
    remark = plan.remark()
    assert remark is not None and remark.endswith("(applied: orderMessageEnable)")
    assert plan_update({"orderMessageEnable": "false"}).remark() is None


def test_save_properties_rewrites_in_place(tmp_path: Path) -> None:
    conf = tmp_path / "namesrv.properties"
    conf.write_text(
        "# keep me\n"
        "listenPort=9876\n"
        "kvConfigPath=/a/very/long/\\\n"
        "    orderMessageEnable=false\n"
        "orderMessageEnable = false\n"
    )
    save_properties(conf, {"orderMessageEnable": "true", "productEnvName": "dev"})
    assert conf.read_text() == (
        "# keep me\n"
        "listenPort=9876\n"
        "kvConfigPath=/a/very/long/\\\n"
        "    orderMessageEnable=false\n"
        "orderMessageEnable=true\n"
        "productEnvName=dev\n"
    )
    config = load_config(conf)
    assert config.order_message_enable is True
    assert config.kv_config_path == "/a/very/long/orderMessageEnable=false"
    save_properties(tmp_path / "new.properties", {"orderMessageEnable": "true"})
    assert (tmp_path / "new.properties").read_text() == "orderMessageEnable=true\n"


def test_tls_keys_are_read_from_the_file_and_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "namesrv.properties"
    path.write_text(
        "listenPort=9877\ntls.server.mode=enforcing\ntls.server.certPath=/c.pem\n"
        "tls.server.keyPassword=secret\nuseTLS=true\n"
    )
    config = load_config(path, {"tls.server.keyPath": "/k.pem"})
    assert config.listen_port == 9877
    assert config.tls.server_mode is TlsMode.ENFORCING
    assert (config.tls.server_cert_path, config.tls.server_key_path) == ("/c.pem", "/k.pem")
    assert config.server_config().tls == config.tls
    # Listed by GET_NAMESRV_CONFIG as Java lists file entries, but no password.
    listed = Configuration(config).all_configs(config)
    assert listed["tls.server.mode"] == "enforcing"
    assert "tls.server.keyPassword" not in listed
    with pytest.raises(ConfigError, match=r"tls\.server\.mode"):
        load_config(None, {"tls.server.mode": "on"})


def test_tls_keys_cannot_change_at_run_time() -> None:
    reason = refusal_reason("tls.server.mode", "disabled")
    assert reason is not None and "only read at start" in reason
