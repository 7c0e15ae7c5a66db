"""Each message's filter bit map (Java's ``CommitLogDispatcherCalcBitMap``,
on with ``enableCalcFilterBitMap``): every SQL92 subscription to the
message's topic is evaluated against its properties, and the bloom-filter
positions of those that match are set. The store keeps the map in the
consume-queue extension files, so a pull of an SQL92 subscriber skips
messages whose map lacks its bits without reading the commit log.

The store indexes messages as it appends them, on the event loop, so the
work per message is bounded: a topic with more than
:data:`MAX_FILTERS_PER_MESSAGE` subscriptions, or whose expressions hold
more than :data:`MAX_EXPRESSION_CHARS` characters together, gets no bit map
(its pulls evaluate every message, as without bit maps). Like Java, the map
is only kept when ``enableConsumeQueueExt`` is on; otherwise nothing is
computed (Java computes it and drops it), and the broker logs so at start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from pyrocket.broker.consumer_filter import ConsumerFilterManager

log = logging.getLogger("pyrocket.broker")

#: SQL92 subscriptions of one topic evaluated per message at most.
MAX_FILTERS_PER_MESSAGE: Final = 64
#: Characters of SQL92 text of one topic evaluated per message at most.
MAX_EXPRESSION_CHARS: Final = 16 * 1024


class FilterBitMapCalculator:
    """``(topic, properties) -> bit map`` for the store, from the consumer
    filter table."""

    __slots__ = ("_manager", "_too_many")

    def __init__(self, manager: ConsumerFilterManager) -> None:
        self._manager = manager
        #: Topics already logged as having too many filters (bounded).
        self._too_many: set[str] = set()

    def __call__(self, topic: str, properties: Mapping[str, str]) -> bytes | None:
        filters = self._manager.by_topic(topic)
        if not filters:
            return None
        if (
            len(filters) > MAX_FILTERS_PER_MESSAGE
            or sum(len(data.expression) for data in filters) > MAX_EXPRESSION_CHARS
        ):
            if topic not in self._too_many and len(self._too_many) < 1024:
                self._too_many.add(topic)
                log.warning(
                    "topic %s has %d SQL92 subscriptions, more than a bit map is computed for",
                    topic,
                    len(filters),
                )
            return None
        bloom = self._manager.bloom
        bits = bloom.new_bits()
        for data in filters:
            if data.bloom_data is None or not bloom.is_valid(data.bloom_data):
                log.error("consumer filter %s#%s has no bloom data", data.consumer_group, topic)
                continue
            if data.selector.matches(properties):
                bloom.hash_to(data.bloom_data, bits)
        return bits.to_bytes()
