"""The queue of puts waiting behind one whose file is being created
(:mod:`pyrocket.broker.store.append`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from pyrocket.broker.store.model import PutMessageResult


class Waiting:
    """A put queued behind one that waits for a file to be created."""

    __slots__ = ("append", "cancelled", "event", "item", "result")

    def __init__(self, append: Callable[[Any], PutMessageResult], item: object) -> None:
        self.append = append
        self.item = item
        self.event = trio.Event()
        self.result: PutMessageResult | None = None
        self.cancelled = False


def finish_waiting(entry: Waiting, result: PutMessageResult) -> None:
    entry.result = result
    entry.event.set()


def safe_topic(topic: str) -> bool:
    """A topic is also a directory name: refuse anything that is not one."""
    return bool(topic) and topic not in (".", "..") and "/" not in topic and "\0" not in topic
