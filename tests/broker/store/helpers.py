"""Builders shared by the store tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyrocket.broker.store import BrokerMessage, GetMessageStatus, MessageStore, MessageStoreConfig
from pyrocket.protocol.message import HostPort, MessageExt, decode_messages, java_properties

BORN = HostPort.of("10.1.2.3", 50000)
STORE = HostPort.of("127.0.0.1", 10911)
#: Small files so that tests roll commit-log and consume-queue files often.
SMALL_COMMIT_LOG = 64 * 1024
SMALL_CONSUME_QUEUE = 20 * 64


def small_config(root: Path, **overrides: Any) -> MessageStoreConfig:
    settings: dict[str, Any] = {
        "store_path_root_dir": str(root),
        "mapped_file_size_commit_log": SMALL_COMMIT_LOG,
        "mapped_file_size_consume_queue": SMALL_CONSUME_QUEUE,
        "max_message_size": 16 * 1024,
    }
    settings.update(overrides)
    return MessageStoreConfig(**settings)


def message(
    topic: str = "TopicTest",
    queue_id: int = 0,
    body: bytes = b"hello",
    *,
    tags: str | None = "TagA",
    keys: str | None = None,
    extra: Mapping[str, str] | None = None,
    **fields: Any,
) -> BrokerMessage:
    entries: list[tuple[str, str]] = []
    if keys is not None:
        entries.append(("KEYS", keys))
    if tags is not None:
        entries.append(("TAGS", tags))
    entries.extend((extra or {}).items())
    fields.setdefault("born_host", BORN)
    fields.setdefault("store_host", STORE)
    return BrokerMessage(topic, queue_id, body, java_properties(entries), **fields)


async def read_queue(store: MessageStore, topic: str, queue_id: int) -> list[MessageExt]:
    """Every message of a queue, read 32 at a time from offset 0; the read
    must end where the queue does (or find an empty queue)."""
    found: list[MessageExt] = []
    offset = 0
    while True:
        result = await store.get_message("group", topic, queue_id, offset, 32)
        assert result is not None
        if result.status is not GetMessageStatus.FOUND:
            assert result.status is GetMessageStatus.OFFSET_OVERFLOW_ONE or offset == 0
            return found
        found.extend(decode_messages(result.body()))
        offset = result.next_begin_offset
