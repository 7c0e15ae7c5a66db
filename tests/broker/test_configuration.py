"""UPDATE_BROKER_CONFIG's rules: which keys may change at run time, and how
accepted keys are written back into broker.conf."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyrocket.broker.config import BrokerSettings, known_key
from pyrocket.broker.configuration import (
    RUNTIME_KEYS,
    BrokerConfiguration,
    plan_update,
    refusal_reason,
)
from pyrocket.errors import ConfigError
from pyrocket.javaprops import persist_changes, update_properties_text
from pyrocket.protocol.bodies.properties import parse_properties


@pytest.mark.parametrize(
    "key",
    [
        "storePathRootDir",
        "storePathCommitLog",
        "rocketmqHome",
        "messageStorePlugIn",
        "namesrvAddr",
        "brokerIP1",
        "listenPort",
        "brokerRole",
        "brokerName",
        "mappedFileSizeCommitLog",
        "flushDiskType",
        "filterServerNums",
        "aclEnable",
    ],
)
def test_unsafe_keys_are_refused_with_a_remark_naming_them(key: str) -> None:
    plan = plan_update({key: "x", "fileReservedTime": "72"})
    assert key in plan.refused
    assert dict(plan.accepted) == {"fileReservedTime": "72"}
    remark = plan.remark()
    assert remark is not None and key in remark and "fileReservedTime" in remark


def test_unknown_keys_are_refused() -> None:
    assert "not a broker config key" in (refusal_reason("fileReservedTim") or "")


def test_every_runtime_key_is_a_real_key_and_accepted() -> None:
    assert all(known_key(key) for key in RUNTIME_KEYS)
    plan = plan_update(dict.fromkeys(RUNTIME_KEYS, "1"))
    assert not plan.refused and plan.remark() is None


def test_settings_change_and_bad_values_are_named(tmp_path: Path) -> None:
    settings = BrokerSettings.from_properties({"storePathRootDir": str(tmp_path)})
    changed = settings.with_changes({"fileReservedTime": "12", "brokerPermission": "4"})
    assert changed.store.file_reserved_time == 12
    assert changed.broker.broker_permission == 4
    assert settings.store.file_reserved_time == 72
    with pytest.raises(ConfigError, match="fileReservedTime"):
        settings.with_changes({"fileReservedTime": "soon"})


def test_update_bumps_the_config_version(tmp_path: Path) -> None:
    settings = BrokerSettings.from_properties({"storePathRootDir": str(tmp_path)})
    configuration = BrokerConfiguration(settings)
    before = configuration.data_version
    configuration.record_update({"fileReservedTime": "10", "notListed": "1"})
    assert configuration.data_version.counter == before.counter + 1
    listed = configuration.all_configs(settings.with_changes({"fileReservedTime": "10"}))
    assert listed["fileReservedTime"] == "10"
    assert "notListed" not in listed


def test_accepted_keys_are_written_in_place() -> None:
    text = (
        "# my broker\n"
        "brokerName=broker-a\n"
        "fileReservedTime = 48\n"
        "! another comment\n"
        "deleteWhen=04\\\n"
        "  ;12\n"
        "listenPort=10911"
    )
    updated = update_properties_text(
        text, {"fileReservedTime": "72", "deleteWhen": "01", "diskMaxUsedSpaceRatio": "80"}
    )
    assert updated == (
        "# my broker\n"
        "brokerName=broker-a\n"
        "fileReservedTime=72\n"
        "! another comment\n"
        "deleteWhen=01\n"
        "listenPort=10911\n"
        "diskMaxUsedSpaceRatio=80\n"
    )
    assert parse_properties(updated)["deleteWhen"] == "01"


def test_values_are_escaped_for_properties() -> None:
    updated = update_properties_text("", {"k": " a\\b\nc"})
    assert parse_properties(updated) == {"k": " a\\b\nc"}


async def test_persist_changes_keeps_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "broker.conf"
    path.write_text("fileReservedTime=48\n")
    await persist_changes(path, {"fileReservedTime": "72"})
    assert path.read_text() == "fileReservedTime=72\n"
    assert (tmp_path / "broker.conf.bak").read_text() == "fileReservedTime=48\n"
    missing = tmp_path / "new.conf"
    await persist_changes(missing, {"traceOn": "false"})
    assert missing.read_text() == "traceOn=false\n"
