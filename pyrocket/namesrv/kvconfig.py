"""The NameServer's KV config store (Java's KVConfigManager) and its file.

Namespaces of string keys and values, kept in Java ``HashMap``s (default
capacity, as Java's) so that GET_KVLIST_BY_NAMESPACE and the REGISTER_BROKER
answer list them in Java's order. The file is Java's ``kvConfig.json``
(its format is :mod:`pyrocket.protocol.bodies.kvconfig`)::

    {"configTable":{"ORDER_TOPIC_CONFIG":{"TopicA":"broker-a:4"}}}

Changes apply in memory at once. The table has one writer
(:attr:`KVConfigManager.writer`, run by the NameServer): it writes the whole
table atomically (``<file>.tmp``, ``<file>.bak``, rename, fsync), and every
change waiting for the file when a write starts is answered by that write, so
a flood of PUT_KV_CONFIG costs one table encoding per write, not per request.
Loading a file that does not parse raises ConfigError naming it, and nothing
is overwritten: Java would start empty and replace the damaged file on the
next change.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import trio

from pyrocket.errors import ConfigError, ProtocolError
from pyrocket.logtext import clipped
from pyrocket.persist import CoalescingWriter, file_writer, load_with_backup
from pyrocket.protocol.bodies import KVTable
from pyrocket.protocol.bodies.kvconfig import KVConfigTable, decode_kv_config, encode_kv_config
from pyrocket.protocol.javahash import JavaHashMap

log = logging.getLogger("pyrocket.namesrv")

#: NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG: per-topic order configuration.
NAMESPACE_ORDER_TOPIC_CONFIG: Final = "ORDER_TOPIC_CONFIG"


class KVConfigManager:
    """Namespaced key/value configuration with Java's iteration order."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._table: KVConfigTable = JavaHashMap()
        self._version = 0
        #: The file's one writer (None without a file).
        self.writer: CoalescingWriter | None = (
            None if self.path is None else file_writer(self.path, self.encode, log)
        )

    # ------------------------------------------------------------------
    # Reading and changing

    def put_kv_config(self, namespace: str, key: str, value: str) -> None:
        namespace_table = self._table.get(namespace)
        if namespace_table is None:
            namespace_table = JavaHashMap()
            self._table[namespace] = namespace_table
            log.info("putKVConfig create new Namespace %s", clipped(namespace))
        previous = namespace_table.get(key)
        namespace_table[key] = value
        self._version += 1
        log.info(
            "putKVConfig %s config item, Namespace: %s Key: %s Value: %s",
            "update" if previous is not None else "create new",
            clipped(namespace),
            clipped(key),
            clipped(value),
        )

    def delete_kv_config(self, namespace: str, key: str) -> None:
        namespace_table = self._table.get(namespace)
        if namespace_table is not None and key in namespace_table:
            value = namespace_table[key]
            del namespace_table[key]
            self._version += 1
            log.info(
                "deleteKVConfig delete a config item, Namespace: %s Key: %s Value: %s",
                clipped(namespace),
                clipped(key),
                clipped(value),
            )

    @property
    def version(self) -> int:
        """A counter that changes with every change of the table (it never
        repeats): answers that read the table cache by it."""
        return self._version

    def get_kv_config(self, namespace: str, key: str) -> str | None:
        namespace_table = self._table.get(namespace)
        return None if namespace_table is None else namespace_table.get(key)

    def get_kv_list_by_namespace(self, namespace: str) -> bytes | None:
        """The namespace as a KVTable body, or None if it does not exist (an
        emptied namespace still exists: ``{"table":{}}``)."""
        namespace_table = self._table.get(namespace)
        if namespace_table is None:
            return None
        return KVTable(namespace_table).encode()

    def namespaces(self) -> dict[str, dict[str, str]]:
        """Every namespace and entry, Java order (a copy)."""
        return {ns: dict(entries.items()) for ns, entries in self._table.items()}

    # ------------------------------------------------------------------
    # The file

    def encode(self) -> str:
        """The file content: KVConfigSerializeWrapper as fastjson writes it."""
        return encode_kv_config(self._table)

    def load(self) -> None:
        """Read the file (or its ``.bak`` when the file is missing or empty).

        Raises ConfigError naming the file when it cannot be read or parsed.
        """
        if self.path is None:
            return
        loaded = load_with_backup(self.path, _parse_file)
        if loaded is None:
            return
        # Java reads the file into fresh HashMaps and then copies the outer
        # one into its (empty) table: same order as putAll here.
        self._table.put_all(loaded)
        self._version += 1
        log.info("load KV config table OK, %d namespaces from %s", len(loaded), self.path)

    def request_write(self) -> int | None:
        """Note that the table changed; returns the generation to pass to
        :meth:`wait_written` (None without a file)."""
        return None if self.writer is None else self.writer.request()

    async def wait_written(self, generation: int | None) -> None:
        """Return once a write that includes change ``generation`` is
        durable. Raises PersistError when that write failed."""
        if self.writer is not None and generation is not None:
            await self.writer.wait(generation)

    async def persist(self) -> None:
        """Return once the file holds the table as it is now. Raises
        PersistError when the write failed."""
        await self.wait_written(self.request_write())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The file's writer task, until cancelled (returns at once without
        a file)."""
        if self.writer is None:
            task_status.started()
            return
        await self.writer.run(task_status=task_status)


def _parse_file(text: str) -> KVConfigTable:
    try:
        return decode_kv_config(text)
    except ProtocolError as exc:
        raise ConfigError(str(exc)) from exc
