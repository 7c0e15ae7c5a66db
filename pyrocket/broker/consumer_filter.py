"""SQL92 subscriptions as the broker keeps them (Java's
``ConsumerFilterManager`` and ``ConsumerFilterData``), and the filters a
pull uses with them (``ExpressionMessageFilter``,
``ExpressionForRetryMessageFilter``).

Every consumer heartbeat registers its group's subscriptions here, whatever
``enablePropertyFilter`` says (the pull refuses SQL92 later when it is off,
as Java does): per topic and group, the expression compiled once, with the
client's subscription version. A newer version with a changed expression
replaces the entry; an expression that no longer compiles removes it, so the
next pull gets FILTER_DATA_NOT_EXIST; an older or equal version changes
nothing (except bringing a dead entry of the same version back). Topics a
heartbeat no longer lists, and every topic of a group that went away, are
marked dead, and dead entries are dropped after ``filterDataCleanTimeSpan``.

The table is written to ``consumerFilter.json`` and read back at start
(:mod:`pyrocket.broker.consumer_filter_file`), so that bit maps of messages
stored before a restart still count; it holds at most
:data:`MAX_FILTER_DATA` entries. Parsing
costs a few microseconds per character, so expressions longer than
:data:`INLINE_COMPILE_CHARS` are compiled in a worker thread
(:func:`compile_off_loop`, :func:`precompile`), compiled selectors are kept
by text (the table's ``selectors``), and one heartbeat carries at most
:data:`MAX_HEARTBEAT_SQL_CHARS` characters of SQL92.

A message matches an SQL92 subscription when the expression is TRUE for its
properties; unknown, FALSE, or an evaluation that fails do not match. Each
entry has the bloom-filter positions of ``consumerGroup#topic``; with
``enableCalcFilterBitMap`` and ``enableConsumeQueueExt`` each message stored
after the entry was made carries a bit map
(:mod:`pyrocket.broker.filter_bitmap`), and a pull skips a message whose map
lacks the entry's bits without reading it. Every other candidate is read
from the commit log and evaluated; long polling wakes a held SQL92 pull on
any arrival.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

import trio

from pyrocket.broker.message_filter import ExpressionMessageFilter, is_tag_type
from pyrocket.broker.store.consumequeue_ext import CqExtUnit
from pyrocket.errors import ProtocolError
from pyrocket.filter import SQL92, Selector, SelectorCache, SelectorError, compile_selector
from pyrocket.filter.bloom import BitsArray, BloomFilter, BloomFilterData
from pyrocket.protocol.bodies.client import SubscriptionData
from pyrocket.protocol.message import MessageConst, stored_properties

log = logging.getLogger("pyrocket.broker")

#: Entries (topic and group pairs) the table holds at most.
MAX_FILTER_DATA: Final = 16_384
#: ``MixAll.RETRY_GROUP_TOPIC_PREFIX``.
RETRY_GROUP_TOPIC_PREFIX: Final = "%RETRY%"
#: The Java class of the failures Java meets as a NullPointerException
#: (whose message is null).
NULL_POINTER: Final = "java.lang.NullPointerException"
#: How often dead entries are looked for (ms).
_CLEAN_INTERVAL_MS: Final = 60_000


#: Expressions up to this long are compiled on the event loop (well under a
#: millisecond); longer ones, not already compiled, in a worker thread.
INLINE_COMPILE_CHARS: Final = 512
#: SQL92 expression text one heartbeat may carry, all subscriptions together.
MAX_HEARTBEAT_SQL_CHARS: Final = 256 * 1024

#: What a heartbeat's expressions compiled to, by text.
Compiled = Mapping[str, Selector | SelectorError]


def compile_expression(
    expression_type: str | None, expression: str | None, cache: SelectorCache | None = None
) -> Selector:
    """``FilterFactory.INSTANCE.get(type).compile(expression)``: SQL92 is the
    only type. Raises SelectorError for another type, no expression, or one
    that does not compile."""
    if expression_type != SQL92:
        raise SelectorError(f"no filter of type {expression_type}", NULL_POINTER)
    if expression is None:
        raise SelectorError("no expression", NULL_POINTER)
    return compile_selector(expression, cache)


async def compile_off_loop(
    expression_type: str | None,
    expression: str | None,
    cache: SelectorCache,
    limiter: trio.CapacityLimiter | None = None,
) -> Selector:
    """:func:`compile_expression`, in a worker thread when the expression is
    long and not in ``cache``. Raises SelectorError as it does."""
    selector = compile_inline(expression_type, expression, cache)
    if selector is not None:
        return selector
    return await trio.to_thread.run_sync(
        compile_expression, expression_type, expression, cache, limiter=limiter
    )


def compile_inline(
    expression_type: str | None, expression: str | None, cache: SelectorCache
) -> Selector | None:
    """:func:`compile_expression` when it may run on the event loop (a short
    expression, one in ``cache``, or no SQL92), else None: it is for
    :func:`compile_off_loop`. Raises SelectorError as it does."""
    if (
        expression_type == SQL92
        and expression is not None
        and len(expression) > INLINE_COMPILE_CHARS
        and cache.get(expression) is None
    ):
        return None
    return compile_expression(expression_type, expression, cache)


def _compile_all(texts: list[str], cache: SelectorCache) -> dict[str, Selector | SelectorError]:
    compiled: dict[str, Selector | SelectorError] = {}
    for text in texts:
        try:
            compiled[text] = compile_selector(text, cache)
        except SelectorError as exc:
            compiled[text] = exc
    return compiled


async def precompile(
    subscriptions: Iterable[SubscriptionData],
    cache: SelectorCache,
    limiter: trio.CapacityLimiter | None = None,
) -> Compiled:
    """The SQL92 expressions of a heartbeat's ``subscriptions`` compiled (in
    a worker thread when they are long), for
    :meth:`ConsumerFilterManager.register_all`. Raises SelectorError when
    they hold more than :data:`MAX_HEARTBEAT_SQL_CHARS` characters."""
    texts = {
        sub.sub_string for sub in subscriptions if sub.expression_type == SQL92 and sub.sub_string
    }
    total = sum(len(text) for text in texts)
    if total > MAX_HEARTBEAT_SQL_CHARS:
        raise SelectorError(
            f"the SQL92 subscriptions hold {total} characters, more than the "
            f"{MAX_HEARTBEAT_SQL_CHARS} allowed in one heartbeat",
            "pyrocket.SelectorTooLong",
        )
    if total <= INLINE_COMPILE_CHARS:
        return _compile_all(sorted(texts), cache)
    return await trio.to_thread.run_sync(_compile_all, sorted(texts), cache, limiter=limiter)


@dataclass(slots=True)
class ConsumerFilterData:
    """One group's SQL92 subscription to one topic."""

    consumer_group: str
    topic: str
    expression: str
    expression_type: str
    selector: Selector
    born_time: int
    client_version: int
    dead_time: int = 0
    #: The bit positions of ``consumerGroup#topic`` in the bloom filter.
    bloom_data: BloomFilterData | None = None

    def is_dead(self) -> bool:
        return self.dead_time >= self.born_time

    def is_msg_in_live(self, store_timestamp: int) -> bool:
        """Whether a message was stored after this entry was made (only
        those have a bit for it)."""
        return store_timestamp > self.born_time


def build_filter_data(
    topic: str,
    group: str,
    expression: str | None,
    expression_type: str | None,
    client_version: int,
    now_ms: int,
    compiled: Compiled | None = None,
) -> ConsumerFilterData | None:
    """``ConsumerFilterManager.build``: None for a TAG subscription or an
    expression that does not compile (logged). ``compiled`` holds the
    expression already compiled, when it was."""
    if is_tag_type(expression_type):
        return None
    try:
        done = compiled.get(expression) if compiled and expression is not None else None
        if isinstance(done, SelectorError) and expression_type == SQL92:
            raise done
        if isinstance(done, Selector) and expression_type == SQL92:
            selector = done
        else:
            selector = compile_expression(expression_type, expression)
    except SelectorError as exc:
        log.error(
            "parse error: expr=%.200s, topic=%s, group=%s, error=%s",
            expression,
            topic,
            group,
            exc.java_text(),
        )
        return None
    assert expression is not None and expression_type is not None
    return ConsumerFilterData(
        group, topic, expression, expression_type, selector, now_ms, client_version
    )


class ConsumerFilterManager:
    """The SQL92 subscriptions of every group, by topic. Plain state; the
    clock and the clean-up span are injected."""

    def __init__(
        self,
        now_ms: Callable[[], int],
        clean_time_span_ms: Callable[[], int] = lambda: 24 * 3600 * 1000,
        *,
        max_entries: int = MAX_FILTER_DATA,
        bloom: BloomFilter | None = None,
    ) -> None:
        self._now_ms = now_ms
        self._clean_span = clean_time_span_ms
        self._max_entries = max_entries
        self._by_topic: dict[str, dict[str, ConsumerFilterData]] = {}
        self._entries = 0
        self._last_clean = now_ms()
        #: Compiled selectors by text, shared by everything that compiles.
        self.selectors = SelectorCache()
        #: ``BloomFilter.createByFn(maxErrorRateOfBloomFilter,
        #: expectConsumerNumUseFilter)``; every entry gets the positions of
        #: ``consumerGroup#topic``.
        self.bloom = bloom if bloom is not None else BloomFilter(20, 64)

    def __len__(self) -> int:
        return self._entries

    def now_ms(self) -> int:
        return self._now_ms()

    def table(self) -> Mapping[str, Mapping[str, ConsumerFilterData]]:
        """Every entry, by topic and group (the live table: read, do not keep)."""
        return self._by_topic

    def restore(self, table: Mapping[str, Mapping[str, ConsumerFilterData]]) -> int:
        """Add the entries of ``table`` (a file read at start) where the table
        has none yet, up to the bound; how many were added."""
        added = 0
        for topic, groups in table.items():
            for group, data in groups.items():
                if self._entries >= self._max_entries:
                    return added
                mine = self._by_topic.setdefault(topic, {})
                if group not in mine:
                    mine[group] = data
                    self._entries += 1
                    added += 1
        return added

    def get(self, topic: str, group: str) -> ConsumerFilterData | None:
        groups = self._by_topic.get(topic)
        return groups.get(group) if groups else None

    def by_topic(self, topic: str) -> list[ConsumerFilterData]:
        """Every entry of ``topic``, dead ones too (Java's ``get(topic)``)."""
        groups = self._by_topic.get(topic)
        return list(groups.values()) if groups else []

    def by_group(self, group: str) -> list[ConsumerFilterData]:
        return [data for groups in self._by_topic.values() if (data := groups.get(group))]

    def register_all(
        self,
        group: str,
        subscriptions: Iterable[SubscriptionData],
        compiled: Compiled | None = None,
    ) -> None:
        """A heartbeat of ``group`` with ``subscriptions``: register each,
        and mark dead the group's entries of topics no longer listed.
        ``compiled``: the expressions compiled already (:func:`precompile`);
        others are compiled here."""
        subscriptions = list(subscriptions)
        for subscription in subscriptions:
            self.register(
                subscription.topic or "",
                group,
                subscription.sub_string,
                subscription.expression_type,
                subscription.sub_version,
                compiled,
            )
        listed = {subscription.topic for subscription in subscriptions}
        now = self._now_ms()
        for data in self.by_group(group):
            if data.topic not in listed and not data.is_dead():
                data.dead_time = now
                log.info("Consumer filter changed: %s, make illegal topic dead:%s", group, data)
        self._clean_now_and_then(now)

    def register(
        self,
        topic: str,
        group: str,
        expression: str | None,
        expression_type: str | None,
        client_version: int,
        compiled: Compiled | None = None,
    ) -> bool:
        """One subscription (``FilterDataMapByTopic.register``); True when
        the table now holds it."""
        if is_tag_type(expression_type) or not expression:
            return False
        now = self._now_ms()
        groups = self._by_topic.get(topic)
        old = groups.get(group) if groups is not None else None
        if old is None:
            if self._entries >= self._max_entries:
                self._clean_now_and_then(now, force=True)
                if self._entries >= self._max_entries:
                    log.warning(
                        "consumer filter table full (%d entries): %s of %s not registered",
                        self._entries,
                        topic,
                        group,
                    )
                    return False
            data = build_filter_data(
                topic, group, expression, expression_type, client_version, now, compiled
            )
            if data is None:
                return False
            data.bloom_data = self.bloom.generate(f"{group}#{topic}")
            self._by_topic.setdefault(topic, {})[group] = data
            self._entries += 1
            log.info("New consumer filter registered: %s", data)
            return True
        if client_version <= old.client_version:
            if expression_type != old.expression_type or expression != old.expression:
                log.info(
                    "Ignore consumer(%s:%s) filter, because of version %d <= %d, but maybe info "
                    "changed!old=%s:%.200s, ignored=%s:%.200s",
                    group,
                    topic,
                    client_version,
                    old.client_version,
                    old.expression_type,
                    old.expression,
                    expression_type,
                    expression,
                )
            if client_version == old.client_version and old.is_dead():
                old.dead_time = 0
                return True
            return False
        assert groups is not None
        if expression != old.expression or expression_type != old.expression_type:
            data = build_filter_data(
                topic, group, expression, expression_type, client_version, now, compiled
            )
            if data is None:
                # The new expression does not compile: forget the old one and
                # let the client report the error.
                del groups[group]
                self._entries -= 1
                if not groups:
                    del self._by_topic[topic]
                return False
            data.bloom_data = self.bloom.generate(f"{group}#{topic}")
            groups[group] = data
            log.info("Consumer filter info change, old: %s, new: %s", old, data)
            return True
        old.client_version = client_version
        old.dead_time = 0
        return True

    def unregister(self, group: str) -> None:
        """``group`` has no client left: its entries die."""
        now = self._now_ms()
        for data in self.by_group(group):
            if not data.is_dead():
                log.info("Unregister consumer filter: %s, deadTime: %d", data, now)
                data.dead_time = now

    def clean(self, now: int | None = None) -> int:
        """Drop entries dead for ``filterDataCleanTimeSpan``; how many went."""
        now = self._now_ms() if now is None else now
        span = self._clean_span()
        removed = 0
        for topic, groups in list(self._by_topic.items()):
            for group, data in list(groups.items()):
                if data.is_dead() and now - data.dead_time >= span:
                    log.info("Remove filter consumer %s, died too long!", data)
                    del groups[group]
                    removed += 1
            if not groups:
                del self._by_topic[topic]
        self._entries -= removed
        self._last_clean = now
        return removed

    def _clean_now_and_then(self, now: int, *, force: bool = False) -> None:
        if force or now - self._last_clean >= _CLEAN_INTERVAL_MS:
            self.clean(now)


class PullFilter(Protocol):
    """What a pull's filter offers: the store's two questions
    (:class:`~pyrocket.broker.store.MessageFilter`) and long polling's."""

    @property
    def match_all(self) -> bool: ...

    @property
    def reads_commit_log(self) -> bool: ...

    def is_matched_by_consume_queue(
        self, tags_code: int | None, ext: CqExtUnit | None = None
    ) -> bool: ...

    def is_matched_by_commit_log(self, message: bytes) -> bool: ...

    def matches_arrival(
        self, tags_code: int | None, properties: Mapping[str, str] | None
    ) -> bool: ...


def _properties_matched(selector: Selector, record: bytes) -> bool:
    try:
        properties = stored_properties(record)
    except ProtocolError:
        log.warning("message filter: a stored record's properties do not decode")
        return False
    return selector.matches(properties)


class SqlMessageFilter:
    """A pull's filter for an SQL92 subscription (``filter_data`` None: the
    broker has no expression for it, everything passes, as in Java)."""

    __slots__ = ("bloom", "filter_data", "subscription")

    match_all: Final = False
    codes: Final[frozenset[int]] = frozenset()
    reads_commit_log: Final = True

    def __init__(
        self,
        subscription: SubscriptionData,
        filter_data: ConsumerFilterData | None,
        bloom: BloomFilter | None = None,
    ) -> None:
        self.subscription = subscription
        self.filter_data = filter_data
        #: The table's bloom filter; None: bit maps are not looked at.
        self.bloom = bloom

    def is_matched_by_consume_queue(
        self, tags_code: int | None, ext: CqExtUnit | None = None
    ) -> bool:
        """The bit-map check (``ExpressionMessageFilter.isMatchedByConsumeQueue``):
        False only when the message has a bit map of this filter's size, was
        stored after the entry was made, and lacks one of its bits. A false
        positive is caught by :meth:`is_matched_by_commit_log`."""
        data = self.filter_data
        bloom = self.bloom
        if data is None or bloom is None or data.bloom_data is None or ext is None:
            return True
        if not bloom.is_valid(data.bloom_data) or not data.is_msg_in_live(ext.store_timestamp):
            return True
        bit_map = ext.bit_map
        if bit_map is None or len(bit_map) * 8 != data.bloom_data.bit_num:
            return True
        return bloom.is_hit(data.bloom_data, BitsArray(len(bit_map) * 8, bit_map))

    def is_matched_by_commit_log(self, message: bytes) -> bool:
        if self.filter_data is None:
            return True
        return _properties_matched(self.filter_data.selector, message)

    def matches_arrival(self, tags_code: int | None, properties: Mapping[str, str] | None) -> bool:
        if properties is None or self.filter_data is None:
            return True
        return self.filter_data.selector.matches(properties)


class RetryMessageFilter:
    """A pull's filter of a group's retry topic with ``filterSupportRetry``
    (``ExpressionForRetryMessageFilter``): the tags filter of the retry
    subscription first, then each message against the group's SQL92
    subscription to the topic it came from (its ``RETRY_TOPIC``), when the
    group has one."""

    __slots__ = ("_group", "_lookup", "_tags")

    match_all: Final = False
    reads_commit_log: Final = True

    def __init__(
        self,
        tags: ExpressionMessageFilter,
        group: str,
        lookup: Callable[[str, str], ConsumerFilterData | None],
    ) -> None:
        self._tags = tags
        self._group = group
        self._lookup = lookup

    @property
    def codes(self) -> frozenset[int]:
        return self._tags.codes

    def is_matched_by_consume_queue(
        self, tags_code: int | None, ext: CqExtUnit | None = None
    ) -> bool:
        return self._tags.is_matched_by_consume_queue(tags_code, ext)

    def is_matched_by_commit_log(self, message: bytes) -> bool:
        try:
            properties = stored_properties(message)
        except ProtocolError:
            log.warning("message filter: a stored record's properties do not decode")
            return False
        real_topic = properties.get(MessageConst.PROPERTY_RETRY_TOPIC)
        data = self._lookup(real_topic, self._group) if real_topic is not None else None
        if data is None:
            return True
        return data.selector.matches(properties)

    def matches_arrival(self, tags_code: int | None, properties: Mapping[str, str] | None) -> bool:
        return self._tags.matches_arrival(tags_code, properties)


def is_retry_topic(topic: str) -> bool:
    return topic.startswith(RETRY_GROUP_TOPIC_PREFIX)


__all__ = [
    "INLINE_COMPILE_CHARS",
    "MAX_FILTER_DATA",
    "MAX_HEARTBEAT_SQL_CHARS",
    "NULL_POINTER",
    "Compiled",
    "ConsumerFilterData",
    "ConsumerFilterManager",
    "PullFilter",
    "RetryMessageFilter",
    "SqlMessageFilter",
    "build_filter_data",
    "compile_expression",
    "compile_off_loop",
    "is_retry_topic",
    "precompile",
]
