"""MessageStoreConfig: Java keys, defaults, parsing that names bad keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyrocket.broker.store.config import (
    JAVA_KEYS,
    BrokerRole,
    FlushDiskType,
    MessageStoreConfig,
    parse_java_value,
)
from pyrocket.errors import ConfigError
from pyrocket.protocol.command import decode
from tests.vectorset import default_vectors_dir, pair_requests, read_records


def _java_broker_config() -> dict[str, str]:
    """The GET_BROKER_CONFIG answer Java gave in admin-broker (Properties text)."""
    records = read_records(default_vectors_dir() / "admin-broker.jsonl")
    pairs = pair_requests(records)
    for record in records:
        request = pairs.get(record.seq)
        if request is not None and request.code == 26:
            text = (decode(record.frame).body or b"").decode()
            return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    raise AssertionError("no GET_BROKER_CONFIG answer in admin-broker")


def test_java_defaults() -> None:
    config = MessageStoreConfig(store_path_root_dir="/data/store")
    assert config.mapped_file_size_commit_log == 1024**3
    assert config.consume_queue_file_size == 300000 * 20
    assert config.flush_disk_type is FlushDiskType.ASYNC_FLUSH
    assert config.broker_role is BrokerRole.ASYNC_MASTER
    assert config.file_reserved_time == 72
    assert config.delete_when_hours == (4,)
    assert config.max_message_size == 4 * 1024 * 1024
    assert config.delay_levels_ms[:5] == (1000, 5000, 10000, 30000, 60000)
    assert config.delay_levels_ms[-1] == 2 * 3600 * 1000 and len(config.delay_levels_ms) == 18
    assert config.commit_log_dir == Path("/data/store/commitlog")
    assert MessageStoreConfig(store_path_commit_log="/x/cl").commit_log_dir == Path("/x/cl")


def test_every_java_key_broker_config_lists_is_known_and_parses() -> None:
    java = _java_broker_config()
    ours = {key: java[key] for key in JAVA_KEYS if key in java}
    config = MessageStoreConfig.from_java_properties(java)
    # Keys whose Java value is null are absent from Java's answer.
    missing = {key for key in JAVA_KEYS if key not in java}
    assert missing == {"haMasterAddress", "dLegerGroup", "dLegerPeers", "dLegerSelfId"}
    rendered = config.to_java_properties()
    assert {k: rendered[k] for k in ours} == ours
    assert config.mapped_file_size_commit_log == int(java["mappedFileSizeCommitLog"])
    assert config.flush_disk_type is FlushDiskType[java["flushDiskType"]]


def test_from_java_properties_parses_each_type() -> None:
    config = MessageStoreConfig.from_java_properties(
        {
            "storePathRootDir": "/r",
            "flushDiskType": "SYNC_FLUSH",
            "brokerRole": "SLAVE",
            "fileReservedTime": " 48 ",
            "checkCRCOnRecover": "FALSE",
            "flushDelayOffsetInterval": "9999999999",
            "mappedFileSizeConsumeQueue": "1001",
            "brokerName": "broker-a",  # a BrokerConfig key: not ours, ignored
        }
    )
    assert config.store_path_root_dir == "/r"
    assert config.flush_disk_type is FlushDiskType.SYNC_FLUSH
    assert config.broker_role is BrokerRole.SLAVE
    assert config.file_reserved_time == 48
    assert config.check_crc_on_recover is False
    assert config.flush_delay_offset_interval == 9999999999
    assert config.consume_queue_file_size == 1020  # rounded up to whole entries


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("fileReservedTime", "72h", "fileReservedTime=72h: not an integer"),
        (
            "mappedFileSizeCommitLog",
            "4294967296",
            "mappedFileSizeCommitLog=4294967296: out of range",
        ),
        (
            "flushDiskType",
            "sync_flush",
            "flushDiskType=sync_flush: expected one of SYNC_FLUSH, ASYNC_FLUSH",
        ),
        ("checkCRCOnRecover", "yes", "checkCRCOnRecover=yes: expected true or false"),
        ("deleteWhen", "4am", "deleteWhen=4am"),
        ("deleteWhen", "25", "deleteWhen=25: hours are 0 to 23"),
        ("messageDelayLevel", "1s 5x", "messageDelayLevel=1s 5x"),
        ("maxMessageSize", "0", "maxMessageSize=0: must be positive"),
    ],
)
def test_bad_values_name_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        MessageStoreConfig.from_java_properties({key: value})


def test_unknown_key_to_parse_java_value() -> None:
    with pytest.raises(ConfigError, match="brokerName: not a message store setting"):
        parse_java_value("brokerName", "x")


def test_derived_values_follow_java_getters() -> None:
    assert MessageStoreConfig(disk_max_used_space_ratio=99).disk_max_used_space_ratio_clamped == 95
    assert MessageStoreConfig(disk_max_used_space_ratio=1).disk_max_used_space_ratio_clamped == 10
    assert MessageStoreConfig(delete_when="04;12").delete_when_hours == (4, 12)
    assert MessageStoreConfig(message_delay_level="2d 1h").delay_levels_ms == (172800000, 3600000)
    rendered = MessageStoreConfig(store_path_root_dir="/r").to_java_properties()
    assert rendered["storePathCommitLog"] == "/r/commitlog"
    assert rendered["checkCRCOnRecover"] == "true"
    assert rendered["flushDiskType"] == "ASYNC_FLUSH"
    assert "haMasterAddress" not in rendered


@pytest.mark.parametrize(
    ("key", "attribute"),
    [
        ("enableDLegerCommitLog", "enable_d_leger_commit_log"),
        ("transientStorePoolEnable", "transient_store_pool_enable"),
    ],
)
def test_unimplemented_durability_features_are_refused(key: str, attribute: str) -> None:
    with pytest.raises(ConfigError, match=f"^{key}=true: pyrocket does not implement"):
        MessageStoreConfig.from_java_properties({key: "true"})
    with pytest.raises(ConfigError, match=key):
        MessageStoreConfig(**{attribute: True})
    assert getattr(MessageStoreConfig.from_java_properties({key: "false"}), attribute) is False
