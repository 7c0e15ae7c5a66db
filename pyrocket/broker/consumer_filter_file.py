"""``<storePathRootDir>/config/consumerFilter.json``: the SQL92 subscription
table of :class:`~pyrocket.broker.consumer_filter.ConsumerFilterManager` as
Java 4.7.0's ``ConsumerFilterManager`` writes and reads it.

The file is the manager object as fastjson writes it (tab-indented, bean
properties in name order): ``filterDataByTopic`` maps each topic to its
``groupFilterData`` (group to entry) and ``topic``; an entry carries
``bloomFilterData`` (``bitNum``, ``bitPos``), ``bornTime``,
``clientVersion``, ``consumerGroup``, ``dead`` (fastjson writes ``isDead()``
too), ``deadTime``, ``expression``, ``expressionType`` and ``topic``.
Writing first drops entries dead for ``filterDataCleanTimeSpan``, as Java's
``encode`` does.

Loading does what Java's ``decode`` does: each entry keeps its birth time
(so bit maps of messages stored before the restart still prune pulls), an
entry that was alive is taken as dead since 30 s ago (its group revives it
with its next heartbeat of the same version), and when any entry's bloom
positions do not fit the broker's bloom filter (its settings changed), the
whole file is ignored. An entry whose expression no longer compiles is
dropped with a log line (Java keeps it without a compiled expression, and
that group's pulls then go unfiltered; see docs/deviations.md).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

import trio

from pyrocket.broker.consumer_filter import (
    ConsumerFilterData,
    ConsumerFilterManager,
    compile_expression,
)
from pyrocket.filter import SelectorCache, SelectorError
from pyrocket.filter.bloom import BloomFilter, BloomFilterData
from pyrocket.persist import PersistError, file_writer, load_with_backup
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies._bean import BOOL, INT, LONG, STR, Bean, bean, list_of, map_of, prop
from pyrocket.protocol.javahash import JavaConcurrentHashMap

log = logging.getLogger("pyrocket.broker")

#: How long before the load an entry that was alive is taken to have died (ms).
DEAD_BEFORE_LOAD_MS: Final = 30_000
#: How often the table is written (s), as Java's fixed ten-second schedule.
PERSIST_INTERVAL: Final = 10.0


def consumer_filter_json_path(store_path_root_dir: str | Path) -> Path:
    """``BrokerPathConfigHelper.getConsumerFilterPath``."""
    return Path(store_path_root_dir) / "config" / "consumerFilter.json"


@dataclass(frozen=True, slots=True)
class _BloomForm(Bean):
    bit_num: int = prop("bitNum", INT, default=0)
    bit_pos: tuple[int, ...] | None = prop("bitPos", list_of(INT), default=None)


@dataclass(frozen=True, slots=True)
class _EntryForm(Bean):
    bloom_filter_data: _BloomForm | None = prop("bloomFilterData", bean(_BloomForm))
    born_time: int = prop("bornTime", LONG, default=0)
    client_version: int = prop("clientVersion", LONG, default=0)
    consumer_group: str | None = prop("consumerGroup", STR)
    dead: bool = prop("dead", BOOL, default=False)
    dead_time: int = prop("deadTime", LONG, default=0)
    expression: str | None = prop("expression", STR)
    expression_type: str | None = prop("expressionType", STR)
    topic: str | None = prop("topic", STR)


@dataclass(frozen=True, slots=True)
class _TopicForm(Bean):
    group_filter_data: Mapping[str, _EntryForm] = prop(
        "groupFilterData", map_of(STR, bean(_EntryForm)), factory=dict
    )
    topic: str | None = prop("topic", STR)


@dataclass(frozen=True, slots=True)
class _FileForm(Bean):
    filter_data_by_topic: Mapping[str, _TopicForm] = prop(
        "filterDataByTopic", map_of(STR, bean(_TopicForm)), factory=dict
    )


def _entry_form(data: ConsumerFilterData) -> _EntryForm:
    bloom = data.bloom_data
    return _EntryForm(
        bloom_filter_data=(
            None if bloom is None else _BloomForm(bloom.bit_num, tuple(bloom.bit_positions))
        ),
        born_time=data.born_time,
        client_version=data.client_version,
        consumer_group=data.consumer_group,
        dead=data.is_dead(),
        dead_time=data.dead_time,
        expression=data.expression,
        expression_type=data.expression_type,
        topic=data.topic,
    )


def encode_table(table: Mapping[str, Mapping[str, ConsumerFilterData]]) -> str:
    """The file's text for ``table`` (topic to group to entry), in the
    iteration order Java's concurrent maps would have."""
    topics: JavaConcurrentHashMap[str, _TopicForm] = JavaConcurrentHashMap(256)
    for topic, groups in table.items():
        entries: JavaConcurrentHashMap[str, _EntryForm] = JavaConcurrentHashMap()
        for group, data in groups.items():
            entries[group] = _entry_form(data)
        topics[topic] = _TopicForm(entries, topic)
    return fastjson.dumps_pretty(_FileForm(topics))


def parse_file(text: str) -> _FileForm:
    """The file's content; raises ProtocolError when it is not the file."""
    return _FileForm.from_json(fastjson.loads(text), "consumerFilter.json")


def decode_table(
    form: _FileForm, bloom: BloomFilter, now_ms: int, cache: SelectorCache | None = None
) -> dict[str, dict[str, ConsumerFilterData]]:
    """The entries to start with, per the rules of the module; empty when
    the bloom filter changed."""
    table: dict[str, dict[str, ConsumerFilterData]] = {}
    for topic, by_group in form.filter_data_by_topic.items():
        for group, entry in by_group.group_filter_data.items():
            positions = entry.bloom_filter_data
            bloom_data = (
                None
                if positions is None
                else BloomFilterData(tuple(positions.bit_pos or ()), positions.bit_num)
            )
            if bloom_data is None or not bloom.is_valid(bloom_data):
                log.info(
                    "consumerFilter.json: the bloom filter changed; ignoring every entry "
                    "(bit maps made before are not used)"
                )
                return {}
            try:
                selector = compile_expression(entry.expression_type, entry.expression, cache)
            except SelectorError as exc:
                log.error(
                    "consumerFilter.json: %s of %s does not compile (%s); entry dropped",
                    group,
                    topic,
                    exc.java_text(),
                )
                continue
            assert entry.expression is not None and entry.expression_type is not None
            dead_time = entry.dead_time
            if dead_time == 0:
                dead_time = max(now_ms - DEAD_BEFORE_LOAD_MS, entry.born_time)
            data = ConsumerFilterData(
                consumer_group=entry.consumer_group or group,
                topic=entry.topic or topic,
                expression=entry.expression,
                expression_type=entry.expression_type,
                selector=selector,
                born_time=entry.born_time,
                client_version=entry.client_version,
                dead_time=dead_time,
                bloom_data=bloom_data,
            )
            table.setdefault(topic, {})[group] = data
    return table


class ConsumerFilterFile:
    """``consumerFilter.json`` of one broker's
    :class:`~pyrocket.broker.consumer_filter.ConsumerFilterManager`: read at
    start, written every :data:`PERSIST_INTERVAL` s and at shutdown (encoded
    on the event loop, written atomically in a worker thread)."""

    def __init__(self, manager: ConsumerFilterManager, path: Path) -> None:
        self.manager = manager
        self.path = path
        self.writer = file_writer(str(path), self.encode, log)

    def encode(self) -> str:
        """The file's text now (dead entries past the clean span dropped first)."""
        self.manager.clean()
        return encode_table(self.manager.table())

    def load(self) -> None:
        """Start from the file (or its ``.bak``), if there is one. Blocking.
        Raises ConfigError naming a damaged file."""
        form = load_with_backup(self.path, parse_file)
        if form is None:
            return
        manager = self.manager
        table = decode_table(form, manager.bloom, manager.now_ms(), manager.selectors)
        restored = manager.restore(table)
        if restored:
            log.info("consumerFilter.json: %d consumer filter entries loaded", restored)

    async def persist(self) -> None:
        """Write the table now; a failure is logged (the next round retries)."""
        with contextlib.suppress(PersistError):
            await self.writer.commit()

    async def run(self, host: Any = None) -> NoReturn:
        """Write the table every :data:`PERSIST_INTERVAL` s, until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.writer.run)
            while True:
                await trio.sleep(PERSIST_INTERVAL)
                await self.persist()


__all__ = [
    "DEAD_BEFORE_LOAD_MS",
    "PERSIST_INTERVAL",
    "ConsumerFilterFile",
    "consumer_filter_json_path",
    "decode_table",
    "encode_table",
    "parse_file",
]
