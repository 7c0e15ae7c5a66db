"""The broker's topic table (Java's ``TopicConfigManager``).

The table is a ``ConcurrentHashMap(1024)`` in Java; it is kept here as a
:class:`~pyrocket.protocol.javahash.JavaConcurrentHashMap` of the same
capacity, because its iteration order is the order of the topics in
REGISTER_BROKER, GET_ALL_TOPIC_CONFIG and ``topics.json``. A new manager holds
the system topics a Java 4.7 broker creates, in Java's order; :meth:`load`
adds what ``<storePathRootDir>/config/topics.json`` holds. Every change bumps
the table's :class:`DataVersion` (which the NameServer compares, see
QUERY_DATA_VERSION) and rewrites ``topics.json`` atomically, in the
tab-indented layout Java's ``ConfigManager`` writes, so either broker can read
the other's file. The table has one writer (``writer``, run by the broker):
changes that wait for the file at the same time share one write.

The ``create_topic_*`` helpers are what the message path uses: a producer
sending to an unknown topic (created from TBW102's settings), a consumer's
retry topic, the transaction topics. When they create a topic they call
``on_topic_created`` so that the broker re-registers (Java:
``registerBrokerAll(false, true, true)``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

from pyrocket.broker.config import BrokerConfig
from pyrocket.errors import ProtocolError
from pyrocket.persist import PersistError, file_writer, load_with_backup
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies.topic import (
    PERM_INHERIT,
    PERM_READ,
    PERM_WRITE,
    DataVersion,
    KVTable,
    TopicConfig,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.javahash import JavaConcurrentHashMap, JavaHashSet

log = logging.getLogger("pyrocket.broker")

#: MixAll's topic names.
SELF_TEST_TOPIC: Final = "SELF_TEST_TOPIC"
AUTO_CREATE_TOPIC_KEY_TOPIC: Final = "TBW102"
BENCHMARK_TOPIC: Final = "BenchmarkTest"
OFFSET_MOVED_EVENT: Final = "OFFSET_MOVED_EVENT"
REPLY_TOPIC_POSTFIX: Final = "REPLY_TOPIC"
RMQ_SYS_TRANS_HALF_TOPIC: Final = "RMQ_SYS_TRANS_HALF_TOPIC"
RMQ_SYS_TRANS_OP_HALF_TOPIC: Final = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
TRANS_CHECK_MAX_TIME_TOPIC: Final = "TRANS_CHECK_MAX_TIME_TOPIC"
RETRY_GROUP_TOPIC_PREFIX: Final = "%RETRY%"
DLQ_GROUP_TOPIC_PREFIX: Final = "%DLQ%"

#: TopicSysFlag bits.
FLAG_UNIT: Final = 1 << 0
FLAG_UNIT_SUB: Final = 1 << 1

#: TopicValidator's rules.
VALID_TOPIC_PATTERN: Final = "^[%|a-zA-Z0-9_-]+$"
TOPIC_MAX_LENGTH: Final = 127
_VALID_TOPIC = re.compile(r"[%|a-zA-Z0-9_-]+")


def build_sys_flag(unit: bool, has_unit_sub: bool) -> int:
    """``TopicSysFlag.buildSysFlag``."""
    return (FLAG_UNIT if unit else 0) | (FLAG_UNIT_SUB if has_unit_sub else 0)


def topic_error(topic: str) -> str | None:
    """``TopicValidator.validateTopic``: the SYSTEM_ERROR remark for a topic a
    broker refuses to create, or None for a valid name."""
    if not topic.strip():
        return "The specified topic is blank."
    if not _VALID_TOPIC.fullmatch(topic):
        return (
            f"The specified topic contains illegal characters, allowing only {VALID_TOPIC_PATTERN}"
        )
    if len(topic) > TOPIC_MAX_LENGTH:
        return "The specified topic is longer than topic max length."
    if topic == AUTO_CREATE_TOPIC_KEY_TOPIC:
        return "The specified topic is conflict with AUTO_CREATE_TOPIC_KEY_TOPIC."
    return None


def perm_to_string(perm: int) -> str:
    """``PermName.perm2String``: ``RW-``, ``R-X``, ..."""
    return (
        ("R" if perm & PERM_READ else "-")
        + ("W" if perm & PERM_WRITE else "-")
        + ("X" if perm & PERM_INHERIT else "-")
    )


def topics_json_path(store_path_root_dir: str | Path) -> Path:
    """``BrokerPathConfigHelper.getTopicConfigPath``."""
    return Path(store_path_root_dir) / "config" / "topics.json"


def system_topics(config: BrokerConfig) -> list[TopicConfig]:
    """The topics Java's TopicConfigManager constructor creates, in its order."""
    cluster = config.broker_cluster_name
    topics = [TopicConfig(SELF_TEST_TOPIC, read_queue_nums=1, write_queue_nums=1)]
    if config.auto_create_topic_enable:
        topics.append(
            TopicConfig(
                AUTO_CREATE_TOPIC_KEY_TOPIC,
                read_queue_nums=config.default_topic_queue_nums,
                write_queue_nums=config.default_topic_queue_nums,
                perm=PERM_INHERIT | PERM_READ | PERM_WRITE,
            )
        )
    topics.append(TopicConfig(BENCHMARK_TOPIC, read_queue_nums=1024, write_queue_nums=1024))
    cluster_perm = PERM_INHERIT | (PERM_READ | PERM_WRITE if config.cluster_topic_enable else 0)
    topics.append(TopicConfig(cluster, perm=cluster_perm))
    broker_perm = PERM_INHERIT | (PERM_READ | PERM_WRITE if config.broker_topic_enable else 0)
    topics.append(
        TopicConfig(config.broker_name, read_queue_nums=1, write_queue_nums=1, perm=broker_perm)
    )
    topics.append(TopicConfig(OFFSET_MOVED_EVENT, read_queue_nums=1, write_queue_nums=1))
    if config.trace_topic_enable:
        topics.append(
            TopicConfig(config.msg_trace_topic_name, read_queue_nums=1, write_queue_nums=1)
        )
    topics.append(
        TopicConfig(f"{cluster}_{REPLY_TOPIC_POSTFIX}", read_queue_nums=1, write_queue_nums=1)
    )
    return topics


def _parse_topics_json(text: str) -> TopicConfigSerializeWrapper:
    parsed = fastjson.loads(text)
    wrapper = TopicConfigSerializeWrapper.from_json(parsed, "topics.json")
    for name, config in wrapper.topic_config_table.items():
        if config.topic_name is not None and config.topic_name != name:
            raise ProtocolError(f"topics.json: entry {name!r} holds topic {config.topic_name!r}")
    return wrapper


class TopicConfigManager:
    """The topic table, its version and ``topics.json``.

    ``config`` is read at each use (``auto_create_topic_enable``), so pass a
    callable returning the current BrokerConfig when it can change at run
    time. ``now_ms`` stamps data versions.
    """

    def __init__(
        self,
        config: BrokerConfig | Callable[[], BrokerConfig],
        path: Path,
        *,
        on_topic_created: Callable[[], None] | None = None,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self._config = config if callable(config) else (lambda: config)
        self.path = path
        #: Called after a ``create_topic_*`` helper or a unit-flag change
        #: (the broker registers again, oneway).
        self.on_topic_created = on_topic_created
        self._now_ms = now_ms
        self.topic_config_table: JavaConcurrentHashMap[str, TopicConfig] = JavaConcurrentHashMap(
            1024
        )
        self.system_topic_list: JavaHashSet[str] = JavaHashSet()
        self.data_version = DataVersion() if now_ms is None else DataVersion(now_ms(), 0)
        #: The table's one writer; the broker runs :meth:`CoalescingWriter.run`.
        self.writer = file_writer(str(path), lambda: self.encode(pretty=True), log)
        for topic in system_topics(self._config()):
            assert topic.topic_name is not None
            self.system_topic_list.add(topic.topic_name)
            self.topic_config_table[topic.topic_name] = topic

    # -- loading and persisting ---------------------------------------------

    def load(self) -> None:
        """Add the topics of ``topics.json`` (or its ``.bak`` when the file is
        missing or empty) and take its data version. Blocking.

        Raises ConfigError naming the file when it cannot be read or parsed;
        the file is left as it is.
        """
        wrapper = load_with_backup(self.path, _parse_topics_json)
        if wrapper is None:
            return
        # fastjson reads the table into a fresh ConcurrentHashMap before putAll.
        staged: JavaConcurrentHashMap[str, TopicConfig] = JavaConcurrentHashMap()
        for name, config in wrapper.topic_config_table.items():
            staged[name] = config
        for name, config in staged.items():
            self.topic_config_table[name] = config
            log.info("load exist local topic, %s", config)
        self.data_version = wrapper.data_version

    def encode(self, pretty: bool = False) -> str:
        """The table as fastjson writes ``TopicConfigSerializeWrapper``
        (GET_ALL_TOPIC_CONFIG's body; pretty for ``topics.json``)."""
        wrapper = self.build_topic_config_serialize_wrapper()
        if pretty:
            return fastjson.dumps_pretty(wrapper)
        return fastjson.dumps(wrapper.to_json())

    async def persist(self) -> None:
        """Return once ``topics.json`` holds the table as it is now (written
        atomically, the previous one kept as ``.bak``). Concurrent changes
        share one write (:attr:`writer`). Failures are logged, as in Java;
        the table in memory stays and the next change writes it again."""
        with contextlib.suppress(PersistError):
            await self.writer.commit()

    def _next_version(self) -> None:
        now = self._now_ms() if self._now_ms is not None else None
        self.data_version = self.data_version.next_version(now)

    def bump_data_version(self) -> None:
        """A new data version without a table change (the broker's permission
        changed: every topic's effective permission did)."""
        self._next_version()

    def _created(self) -> None:
        if self.on_topic_created is not None:
            self.on_topic_created()

    # -- queries ------------------------------------------------------------

    def select_topic_config(self, topic: str) -> TopicConfig | None:
        return self.topic_config_table.get(topic)

    def is_system_topic(self, topic: str) -> bool:
        return topic in self.system_topic_list

    def is_order_topic(self, topic: str) -> bool:
        config = self.topic_config_table.get(topic)
        return config is not None and config.order

    def build_topic_config_serialize_wrapper(self) -> TopicConfigSerializeWrapper:
        """The live table with its version (encode it before awaiting anything)."""
        return TopicConfigSerializeWrapper(self.topic_config_table, self.data_version)

    # -- changes ------------------------------------------------------------

    async def update_topic_config(self, config: TopicConfig) -> None:
        """Create or replace a topic (UPDATE_AND_CREATE_TOPIC); the caller
        registers the change with the NameServers."""
        name = config.topic_name
        if name is None:
            raise ValueError("a topic config needs a name")
        old = self.topic_config_table.get(name)
        self.topic_config_table[name] = config
        if old is not None:
            log.info("update topic config, old:[%s] new:[%s]", old, config)
        else:
            log.info("create new topic [%s]", config)
        self._next_version()
        await self.persist()

    async def delete_topic_config(self, topic: str) -> bool:
        """Remove a topic; False when there was none."""
        old = self.topic_config_table.pop(topic, None)
        if old is None:
            log.warning("delete topic config failed, topic: %s not exists", topic)
            return False
        log.info("delete topic config OK, topic: %s", old)
        self._next_version()
        await self.persist()
        return True

    async def update_order_topic_config(self, order_table: KVTable | None) -> None:
        """Set each topic's ``order`` flag from the NameServer's
        ORDER_TOPIC_CONFIG table (topics in it are ordered, others not)."""
        if order_table is None:
            return
        ordered = set(order_table.table)
        changed = False
        for topic, config in list(self.topic_config_table.items()):
            want = topic in ordered
            if config.order != want:
                self.topic_config_table[topic] = dataclasses.replace(config, order=want)
                changed = True
                log.info("update order topic config, topic=%s, order=%s", topic, want)
        if changed:
            self._next_version()
            await self.persist()

    async def create_topic_in_send_message_method(
        self,
        topic: str,
        default_topic: str,
        remote_address: str,
        client_default_topic_queue_nums: int,
        topic_sys_flag: int,
    ) -> TopicConfig | None:
        """A producer sends to an unknown topic: create it from ``default_topic``
        (TBW102) if that one is inheritable. Returns the topic's config, or
        None when it cannot be created."""
        existing = self.topic_config_table.get(topic)
        if existing is not None:
            return existing
        default_config = self.topic_config_table.get(default_topic)
        created: TopicConfig | None = None
        if default_config is not None:
            if (
                default_topic == AUTO_CREATE_TOPIC_KEY_TOPIC
                and not self._config().auto_create_topic_enable
            ):
                # Java strips TBW102's inherit bit in memory when auto-creation is off.
                default_config = dataclasses.replace(default_config, perm=PERM_READ | PERM_WRITE)
                self.topic_config_table[default_topic] = default_config
            if default_config.perm & PERM_INHERIT:
                queue_nums = max(
                    0, min(client_default_topic_queue_nums, default_config.write_queue_nums)
                )
                created = TopicConfig(
                    topic,
                    read_queue_nums=queue_nums,
                    write_queue_nums=queue_nums,
                    perm=default_config.perm & ~PERM_INHERIT,
                    topic_filter_type=default_config.topic_filter_type,
                    topic_sys_flag=topic_sys_flag,
                )
            else:
                log.warning(
                    "Create new topic failed, because the default topic[%s] has no perm [%d] "
                    "producer:[%s]",
                    default_topic,
                    default_config.perm,
                    remote_address,
                )
        else:
            log.warning(
                "Create new topic failed, because the default topic[%s] not exist. producer:[%s]",
                default_topic,
                remote_address,
            )
        if created is None:
            return None
        log.info(
            "Create new topic by default topic:[%s] config:[%s] producer:[%s]",
            default_topic,
            created,
            remote_address,
        )
        self.topic_config_table[topic] = created
        self._next_version()
        await self.persist()
        self._created()
        return created

    async def create_topic_in_send_message_back_method(
        self, topic: str, client_default_topic_queue_nums: int, perm: int, topic_sys_flag: int
    ) -> TopicConfig:
        """Create ``topic`` (a retry or DLQ topic, a transaction topic) if
        missing; returns its config."""
        existing = self.topic_config_table.get(topic)
        if existing is not None:
            return existing
        created = TopicConfig(
            topic,
            read_queue_nums=client_default_topic_queue_nums,
            write_queue_nums=client_default_topic_queue_nums,
            perm=perm,
            topic_sys_flag=topic_sys_flag,
        )
        log.info("create new topic %s", created)
        self.topic_config_table[topic] = created
        self._next_version()
        await self.persist()
        self._created()
        return created

    async def create_topic_of_tran_check_max_time(
        self, client_default_topic_queue_nums: int, perm: int
    ) -> TopicConfig:
        """TRANS_CHECK_MAX_TIME_TOPIC, created on first use."""
        return await self.create_topic_in_send_message_back_method(
            TRANS_CHECK_MAX_TIME_TOPIC, client_default_topic_queue_nums, perm, 0
        )

    async def update_topic_unit_flag(self, topic: str, unit: bool) -> None:
        config = self.topic_config_table.get(topic)
        if config is None:
            return
        flag = config.topic_sys_flag | FLAG_UNIT if unit else config.topic_sys_flag & ~FLAG_UNIT
        self.topic_config_table[topic] = dataclasses.replace(config, topic_sys_flag=flag)
        self._next_version()
        await self.persist()
        self._created()

    async def update_topic_unit_sub_flag(self, topic: str, has_unit_sub: bool) -> None:
        config = self.topic_config_table.get(topic)
        if config is None:
            return
        flag = config.topic_sys_flag | FLAG_UNIT_SUB if has_unit_sub else config.topic_sys_flag
        self.topic_config_table[topic] = dataclasses.replace(config, topic_sys_flag=flag)
        self._next_version()
        await self.persist()
        self._created()


__all__ = [
    "AUTO_CREATE_TOPIC_KEY_TOPIC",
    "BENCHMARK_TOPIC",
    "DLQ_GROUP_TOPIC_PREFIX",
    "OFFSET_MOVED_EVENT",
    "RETRY_GROUP_TOPIC_PREFIX",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "SELF_TEST_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "TopicConfigManager",
    "build_sys_flag",
    "perm_to_string",
    "system_topics",
    "topic_error",
    "topics_json_path",
]
