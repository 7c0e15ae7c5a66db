"""The broker's live configuration as operators see it (Java's ``Configuration``):
GET_BROKER_CONFIG's properties and version, and UPDATE_BROKER_CONFIG.

Java keeps one ``java.util.Properties`` with every field of the four config
objects plus every entry of the broker.conf, and lists it in that Properties'
iteration order; :meth:`BrokerConfiguration.all_configs` rebuilds the same
order (a ``ConcurrentHashMap(8)`` filled object by object, then with the
file's entries).

Updates differ from Java on purpose. Java 4.x applies any key an operator
sends, including paths and the address of the NameServer, and rewrites the
whole broker.conf with every property: the configuration-update hole behind
CVE-2023-33246. pyrocket applies only the keys in :data:`RUNTIME_KEYS`,
settings that are read while the broker runs and cannot point it at other
files, programs or peers; every other key is refused with a remark naming it.
Accepted keys are written into the broker.conf in place (other lines,
comments and order kept) with an atomic write
(:func:`pyrocket.javaprops.persist_changes`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from pyrocket.broker.config import CONFIG_CLASSES, BrokerSettings, known_key, object_properties
from pyrocket.javaprops import PropertiesTable, runtime_keys
from pyrocket.protocol.bodies.properties import UpdatePlan, properties_to_string
from pyrocket.protocol.bodies.topic import DataVersion
from pyrocket.remoting.tls import SECRET_TLS_KEYS

log = logging.getLogger("pyrocket.broker")

#: Keys UPDATE_BROKER_CONFIG may change: read at use time, no paths, no peers,
#: no identity (declared ``runtime`` on BrokerConfig and MessageStoreConfig;
#: Java's own broker accepts every key).
RUNTIME_KEYS: Final = runtime_keys(*CONFIG_CLASSES)

#: Keys naming files, directories or code: never changed over the network.
PATH_KEYS: Final = frozenset(
    {
        "rocketmqHome",
        "storePathRootDir",
        "storePathCommitLog",
        "messageStorePlugIn",
        "haMasterAddress",
    }
)

#: Keys naming peers or this broker's identity and addresses.
IDENTITY_KEYS: Final = frozenset(
    {
        "namesrvAddr",
        "fetchNamesrvAddrByAddressServer",
        "brokerIP1",
        "brokerIP2",
        "brokerName",
        "brokerClusterName",
        "brokerId",
        "brokerRole",
        "listenPort",
        "haListenPort",
        "filterServerNums",
        "aclEnable",
        "useTLS",
    }
)


def refusal_reason(key: str) -> str | None:
    """Why UPDATE_BROKER_CONFIG refuses ``key``, or None when it may change."""
    if key in RUNTIME_KEYS:
        return None
    if key in PATH_KEYS:
        return f"{key} names a file, directory or plug-in and cannot be changed remotely"
    if key in IDENTITY_KEYS:
        return (
            f"{key} is part of the broker's identity or network setup; edit broker.conf and restart"
        )
    if not known_key(key):
        return f"{key} is not a broker config key"
    return f"{key} is only read at start; edit broker.conf and restart"


def plan_update(properties: Mapping[str, str]) -> UpdatePlan:
    """Sort requested keys into accepted and refused (with reasons)."""
    return UpdatePlan.of(properties, lambda key, _value: refusal_reason(key))


class BrokerConfiguration:
    """All of a broker's properties, in Java's order, with a version."""

    def __init__(self, settings: BrokerSettings) -> None:
        self._all = PropertiesTable()
        self._merge_objects(settings)
        # BrokerStartup registers the file's entries after the objects
        # (key passwords left out: they are never listed).
        self._all.merge(
            (k, v) for k, v in settings.file_properties.items() if k not in SECRET_TLS_KEYS
        )
        #: Bumped by every update (GET_BROKER_CONFIG's ``version`` field).
        self.data_version = DataVersion()

    def _merge_objects(self, settings: BrokerSettings) -> None:
        for obj in settings.config_objects():
            self._all.merge(object_properties(obj))

    def all_configs(self, settings: BrokerSettings) -> dict[str, str]:
        """Every property (``getAllConfigsFormatString``'s entries), refreshed
        from ``settings`` the way Java re-reads its objects on each call."""
        self._merge_objects(settings)
        return self._all.as_dict()

    def format_string(self, settings: BrokerSettings) -> str:
        """GET_BROKER_CONFIG's body text."""
        return properties_to_string(self.all_configs(settings))

    def record_update(self, accepted: Mapping[str, str]) -> None:
        """Note accepted keys (``mergeIfExist``) and bump the version."""
        self._all.merge_if_exist(accepted)
        self.data_version = self.data_version.next_version()


__all__ = [
    "IDENTITY_KEYS",
    "PATH_KEYS",
    "RUNTIME_KEYS",
    "BrokerConfiguration",
    "UpdatePlan",
    "plan_update",
    "refusal_reason",
]
