"""The broker's consumer-group settings (Java's ``SubscriptionGroupManager``).

Like the topic table: a ``ConcurrentHashMap(1024)`` modelled by
:class:`~pyrocket.protocol.javahash.JavaConcurrentHashMap`, seeded with the
groups a Java 4.7 broker creates, loaded from and persisted to
``<storePathRootDir>/config/subscriptionGroup.json`` (tab-indented, atomic
writes), with a :class:`DataVersion` bumped on every change. The message path
asks :meth:`SubscriptionGroupManager.find_subscription_group_config`, which
creates unknown groups when ``autoCreateSubscriptionGroup`` is on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pyrocket.broker.config import BrokerConfig
from pyrocket.persist import PersistError, file_writer, load_with_backup
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies._bean import STR as STR_KIND
from pyrocket.protocol.bodies._bean import Bean, bean, map_of, prop
from pyrocket.protocol.bodies.admin import SubscriptionGroupConfig, SubscriptionGroupWrapper
from pyrocket.protocol.bodies.topic import DataVersion
from pyrocket.protocol.javahash import JavaConcurrentHashMap

log = logging.getLogger("pyrocket.broker")

#: MixAll's group names.
TOOLS_CONSUMER_GROUP: Final = "TOOLS_CONSUMER"
FILTERSRV_CONSUMER_GROUP: Final = "FILTERSRV_CONSUMER"
SELF_TEST_CONSUMER_GROUP: Final = "SELF_TEST_C_GROUP"
ONS_HTTP_PROXY_GROUP: Final = "CID_ONS-HTTP-PROXY"
CID_ONSAPI_PULL_GROUP: Final = "CID_ONSAPI_PULL"
CID_ONSAPI_PERMISSION_GROUP: Final = "CID_ONSAPI_PERMISSION"
CID_ONSAPI_OWNER_GROUP: Final = "CID_ONSAPI_OWNER"
CID_RMQ_SYS_PREFIX: Final = "CID_RMQ_SYS_"


def is_sys_consumer_group(group: str) -> bool:
    """``MixAll.isSysConsumerGroup``."""
    return group.startswith(CID_RMQ_SYS_PREFIX)


def subscription_group_json_path(store_path_root_dir: str | Path) -> Path:
    """``BrokerPathConfigHelper.getSubscriptionGroupPath``."""
    return Path(store_path_root_dir) / "config" / "subscriptionGroup.json"


def system_groups() -> list[SubscriptionGroupConfig]:
    """The groups Java's SubscriptionGroupManager creates, in its order."""
    plain = [TOOLS_CONSUMER_GROUP, FILTERSRV_CONSUMER_GROUP, SELF_TEST_CONSUMER_GROUP]
    broadcast = [
        ONS_HTTP_PROXY_GROUP,
        CID_ONSAPI_PULL_GROUP,
        CID_ONSAPI_PERMISSION_GROUP,
        CID_ONSAPI_OWNER_GROUP,
    ]
    groups = [SubscriptionGroupConfig(name) for name in plain]
    groups += [SubscriptionGroupConfig(name, consume_broadcast_enable=True) for name in broadcast]
    return groups


@dataclass(frozen=True, slots=True)
class _FileForm(Bean):
    """subscriptionGroup.json: the manager object as fastjson writes it."""

    data_version: DataVersion = prop("dataVersion", bean(DataVersion), factory=DataVersion)
    subscription_group_table: Mapping[str, SubscriptionGroupConfig] = prop(
        "subscriptionGroupTable", map_of(STR_KIND, bean(SubscriptionGroupConfig)), factory=dict
    )


def _parse(text: str) -> _FileForm:
    return _FileForm.from_json(fastjson.loads(text), "subscriptionGroup.json")


class SubscriptionGroupManager:
    """Consumer groups, their version and ``subscriptionGroup.json``."""

    def __init__(
        self,
        config: BrokerConfig | Callable[[], BrokerConfig],
        path: Path,
        *,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self._config = config if callable(config) else (lambda: config)
        self.path = path
        self._now_ms = now_ms
        self.subscription_group_table: JavaConcurrentHashMap[str, SubscriptionGroupConfig] = (
            JavaConcurrentHashMap(1024)
        )
        self.data_version = DataVersion() if now_ms is None else DataVersion(now_ms(), 0)
        #: The table's one writer; the broker runs :meth:`CoalescingWriter.run`.
        self.writer = file_writer(str(path), lambda: self.encode(pretty=True), log)
        for group in system_groups():
            assert group.group_name is not None
            self.subscription_group_table[group.group_name] = group

    def load(self) -> None:
        """Add the groups of ``subscriptionGroup.json`` (or its ``.bak``).
        Blocking. Raises ConfigError naming a damaged file."""
        loaded = load_with_backup(self.path, _parse)
        if loaded is None:
            return
        staged: JavaConcurrentHashMap[str, SubscriptionGroupConfig] = JavaConcurrentHashMap()
        for name, group in loaded.subscription_group_table.items():
            staged[name] = group
        for name, group in staged.items():
            self.subscription_group_table[name] = group
        self.data_version = loaded.data_version

    def wrapper(self) -> SubscriptionGroupWrapper:
        """GET_ALL_SUBSCRIPTIONGROUP_CONFIG's body (the live table)."""
        return SubscriptionGroupWrapper(self.subscription_group_table, self.data_version)

    def encode(self, pretty: bool = False) -> str:
        form = _FileForm(self.data_version, self.subscription_group_table)
        return fastjson.dumps_pretty(form) if pretty else fastjson.dumps(form.to_json())

    async def persist(self) -> None:
        """Return once ``subscriptionGroup.json`` holds the table as it is
        now; concurrent changes share one write (:attr:`writer`). Failures
        are logged; the next change writes the table again."""
        with contextlib.suppress(PersistError):
            await self.writer.commit()

    def _next_version(self) -> None:
        now = self._now_ms() if self._now_ms is not None else None
        self.data_version = self.data_version.next_version(now)

    async def update_subscription_group_config(self, group: SubscriptionGroupConfig) -> None:
        """Create or replace a group's settings."""
        assert group.group_name is not None
        old = self.subscription_group_table.get(group.group_name)
        self.subscription_group_table[group.group_name] = group
        if old is not None:
            log.info("update subscription group config, old: %s new: %s", old, group)
        else:
            log.info("create new subscription group, %s", group)
        self._next_version()
        await self.persist()

    def disable_consume(self, group_name: str) -> None:
        """Stop a group from consuming (in memory, as Java does)."""
        old = self.subscription_group_table.get(group_name)
        if old is not None:
            self.subscription_group_table[group_name] = dataclasses.replace(
                old, consume_enable=False
            )
            self._next_version()

    async def find_subscription_group_config(self, group: str) -> SubscriptionGroupConfig | None:
        """A group's settings, created with defaults when unknown and
        ``autoCreateSubscriptionGroup`` is on (or it is a system group)."""
        found = self.subscription_group_table.get(group)
        if found is not None:
            return found
        if not (self._config().auto_create_subscription_group or is_sys_consumer_group(group)):
            return None
        created = SubscriptionGroupConfig(group)
        self.subscription_group_table[group] = created
        log.info("auto create a subscription group, %s", created)
        self._next_version()
        await self.persist()
        return created

    async def delete_subscription_group_config(self, group_name: str) -> bool:
        """Remove a group; False when there was none."""
        old = self.subscription_group_table.pop(group_name, None)
        if old is None:
            log.warning(
                "delete subscription group failed, subscription groupName: %s not exist",
                group_name,
            )
            return False
        log.info("delete subscription group OK, subscription group:%s", old)
        self._next_version()
        await self.persist()
        return True


__all__ = [
    "SubscriptionGroupManager",
    "is_sys_consumer_group",
    "subscription_group_json_path",
    "system_groups",
]
