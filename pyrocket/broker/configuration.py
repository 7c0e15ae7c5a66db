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
comments and order kept) with an atomic write.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import trio

from pyrocket.broker.config import BrokerSettings, known_key, object_properties
from pyrocket.errors import ConfigError, ProtocolError
from pyrocket.persist import write_atomically_async
from pyrocket.protocol.bodies.properties import (
    UpdatePlan,
    parse_properties,
    properties_to_string,
)
from pyrocket.protocol.bodies.topic import DataVersion
from pyrocket.protocol.javahash import JavaConcurrentHashMap

log = logging.getLogger("pyrocket.broker")

#: Keys UPDATE_BROKER_CONFIG may change: read at use time, no paths, no peers,
#: no identity. (Java's own broker accepts every key.)
RUNTIME_KEYS: Final = frozenset(
    {
        # BrokerConfig
        "brokerPermission",
        "autoCreateTopicEnable",
        "autoCreateSubscriptionGroup",
        "longPollingEnable",
        "shortPollingTimeMills",
        "notifyConsumerIdsChangedEnable",
        "slaveReadEnable",
        "transferMsgByHeap",
        "traceOn",
        "rejectTransactionMessage",
        "registerBrokerTimeoutMills",
        "forceRegister",
        "compressedRegister",
        "disableConsumeIfConsumerReadSlowly",
        "consumerFallbehindThreshold",
        "brokerFastFailureEnable",
        "waitTimeMillsInSendQueue",
        "waitTimeMillsInPullQueue",
        "waitTimeMillsInHeartbeatQueue",
        "waitTimeMillsInTransactionQueue",
        "startAcceptSendRequestTimeStamp",
        "filterSupportRetry",
        "enablePropertyFilter",
        "transactionTimeOut",
        "transactionCheckMax",
        "storeReplyMessageEnable",
        "maxDelayTime",
        # MessageStoreConfig
        "fileReservedTime",
        "deleteWhen",
        "diskMaxUsedSpaceRatio",
        "cleanFileForciblyEnable",
        "maxMessageSize",
        "syncFlushTimeout",
        "maxTransferBytesOnMessageInMemory",
        "maxTransferCountOnMessageInMemory",
        "maxTransferBytesOnMessageInDisk",
        "maxTransferCountOnMessageInDisk",
    }
)

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
        self._all: JavaConcurrentHashMap[str, str] = JavaConcurrentHashMap(8)
        for obj in settings.config_objects():
            self._merge(_properties_table(object_properties(obj)))
        # BrokerStartup registers the file's entries after the objects.
        self._merge(_properties_table(settings.file_properties.items()))
        #: Bumped by every update (GET_BROKER_CONFIG's ``version`` field).
        self.data_version = DataVersion()

    def _merge(self, source: Mapping[str, str]) -> None:
        for key, value in source.items():
            self._all[key] = value

    def all_configs(self, settings: BrokerSettings) -> dict[str, str]:
        """Every property (``getAllConfigsFormatString``'s entries), refreshed
        from ``settings`` the way Java re-reads its objects on each call."""
        for obj in settings.config_objects():
            self._merge(_properties_table(object_properties(obj)))
        return dict(self._all.items())

    def format_string(self, settings: BrokerSettings) -> str:
        """GET_BROKER_CONFIG's body text."""
        return properties_to_string(self.all_configs(settings))

    def record_update(self, accepted: Mapping[str, str]) -> None:
        """Note accepted keys (``mergeIfExist``) and bump the version."""
        for key, value in accepted.items():
            if key in self._all:
                self._all[key] = value
        self.data_version = self.data_version.next_version()


def _properties_table(entries: Iterable[tuple[str, str]]) -> JavaConcurrentHashMap[str, str]:
    # A java.util.Properties filled in this order (Java 9+: a ConcurrentHashMap(8)).
    table: JavaConcurrentHashMap[str, str] = JavaConcurrentHashMap(8)
    for key, value in entries:
        table[key] = value
    return table


# ---------------------------------------------------------------------------
# Writing accepted keys back into broker.conf

_WS: Final = " \t\f"


def _escape_value(value: str) -> str:
    out = []
    for index, ch in enumerate(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\f":
            out.append("\\f")
        elif ch == " " and index == 0:
            out.append("\\ ")
        else:
            out.append(ch)
    return "".join(out)


def _ends_continued(line: str) -> bool:
    stripped = line.rstrip("\r\n")
    count = len(stripped) - len(stripped.rstrip("\\"))
    return count % 2 == 1


def update_properties_text(text: str, changes: Mapping[str, str]) -> str:
    """``text`` (a properties file) with each key of ``changes`` set: lines that
    define the key are replaced, missing keys appended; everything else stays."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    written: set[str] = set()
    index = 0
    while index < len(lines):
        first = index
        line = lines[index]
        stripped = line.lstrip(_WS)
        index += 1
        if not stripped.strip() or stripped[0] in "#!":
            out.append(line)
            continue
        while _ends_continued(lines[index - 1]) and index < len(lines):
            index += 1
        logical = "".join(lines[first:index])
        try:
            keys = list(parse_properties(logical))
        except ProtocolError:  # a line Java's loader would reject: leave it alone
            keys = []
        key = keys[0] if keys else None
        if key is not None and key in changes:
            if key not in written:
                out.append(f"{key}={_escape_value(changes[key])}\n")
                written.add(key)
            continue
        out.extend(lines[first:index])
    missing = [key for key in changes if key not in written]
    if missing:
        if out and not out[-1].endswith(("\n", "\r")):
            out.append("\n")
        out.extend(f"{key}={_escape_value(changes[key])}\n" for key in missing)
    return "".join(out)


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return ""


async def persist_changes(path: Path, changes: Mapping[str, str]) -> None:
    """Write ``changes`` into the properties file at ``path`` (atomically, the
    old content kept in ``<path>.bak``). Raises ConfigError if it cannot."""
    try:
        text = await trio.to_thread.run_sync(_read_or_empty, path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read to record the change: {exc}") from exc
    try:
        await write_atomically_async(path, update_properties_text(text, changes))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be written: {exc.strerror or exc}") from exc


__all__ = [
    "IDENTITY_KEYS",
    "PATH_KEYS",
    "RUNTIME_KEYS",
    "BrokerConfiguration",
    "UpdatePlan",
    "persist_changes",
    "plan_update",
    "refusal_reason",
    "update_properties_text",
]
