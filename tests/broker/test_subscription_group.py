"""Consumer-group settings: Java's system groups, auto-creation, the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyrocket.broker.config import BrokerConfig
from pyrocket.broker.subscription_group import (
    SubscriptionGroupManager,
    subscription_group_json_path,
)
from pyrocket.errors import ConfigError
from pyrocket.protocol.bodies.admin import SubscriptionGroupConfig


def manager(tmp_path: Path, **config: object) -> SubscriptionGroupManager:
    return SubscriptionGroupManager(
        BrokerConfig(broker_name="b", **config),  # type: ignore[arg-type]
        subscription_group_json_path(tmp_path),
    )


def test_system_groups(tmp_path: Path) -> None:
    groups = manager(tmp_path).subscription_group_table
    assert set(groups) == {
        "TOOLS_CONSUMER",
        "FILTERSRV_CONSUMER",
        "SELF_TEST_C_GROUP",
        "CID_ONS-HTTP-PROXY",
        "CID_ONSAPI_PULL",
        "CID_ONSAPI_PERMISSION",
        "CID_ONSAPI_OWNER",
    }
    assert groups["TOOLS_CONSUMER"] == SubscriptionGroupConfig("TOOLS_CONSUMER")
    assert groups["CID_ONSAPI_PULL"].consume_broadcast_enable


async def test_auto_creation_follows_the_config(tmp_path: Path) -> None:
    on = manager(tmp_path)
    created = await on.find_subscription_group_config("my_group")
    assert created == SubscriptionGroupConfig("my_group")
    assert on.data_version.counter == 1
    assert await on.find_subscription_group_config("my_group") is created
    off = manager(tmp_path / "off", auto_create_subscription_group=False)
    assert await off.find_subscription_group_config("other") is None
    system = await off.find_subscription_group_config("CID_RMQ_SYS_TRANS")
    assert system is not None and system.group_name == "CID_RMQ_SYS_TRANS"


async def test_groups_survive_a_restart_and_a_damaged_file_is_reported(tmp_path: Path) -> None:
    groups = manager(tmp_path)
    await groups.update_subscription_group_config(SubscriptionGroupConfig("g1", retry_max_times=3))
    await groups.update_subscription_group_config(SubscriptionGroupConfig("g2"))
    assert await groups.delete_subscription_group_config("g2")
    assert not await groups.delete_subscription_group_config("g2")
    groups.disable_consume("g1")
    assert not groups.subscription_group_table["g1"].consume_enable
    path = subscription_group_json_path(tmp_path)
    text = path.read_text()
    assert text.startswith('{\n\t"dataVersion":{\n')
    assert '\t"subscriptionGroupTable":{\n' in text

    again = manager(tmp_path)
    again.load()
    assert again.subscription_group_table["g1"].retry_max_times == 3
    assert "g2" not in again.subscription_group_table
    assert again.data_version.counter == 3
    assert again.wrapper().subscription_group_table["g1"].group_name == "g1"

    path.write_text('{"subscriptionGroupTable":[')
    with pytest.raises(ConfigError, match=r"subscriptionGroup\.json"):
        manager(tmp_path).load()
