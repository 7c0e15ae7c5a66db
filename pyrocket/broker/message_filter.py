"""Which messages a pull returns (Java's ``ExpressionMessageFilter`` for TAG
subscriptions): a message passes when the subscription is ``*``, is a class
filter, or lists the message's tags hash code. The consume queue keeps each
message's tags code, so filtering never reads the commit log.

A subscription lists at most :data:`MAX_SUBSCRIPTION_TAGS` tags (Java's only
limit is the frame size): parsing and hashing a tag costs a few microseconds
of the event loop, so 100,000 of them would hold up every other client for
a noticeable time, on every pull that carries them. Filters are immutable,
and the one of a pull's own expression is cached by its text, so the pulls of
one consumer parse their expression once.

SQL92 subscriptions are filtered by :mod:`pyrocket.broker.consumer_filter`
(when ``enablePropertyFilter`` is on; the pull processor refuses them
otherwise, as Java does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Final

from pyrocket.broker.store.consumequeue_ext import CqExtUnit
from pyrocket.errors import CommandError
from pyrocket.protocol.bodies.client import SUB_ALL, SubscriptionData
from pyrocket.protocol.javahash import string_hash, to_int32

#: ExpressionType.TAG.
TAG: Final = "TAG"
#: Tags one subscription may list (pyrocket's limit; see docs/deviations.md).
MAX_SUBSCRIPTION_TAGS: Final = 1024
#: What ``String.trim`` strips: every character up to U+0020.
_JAVA_TRIMMED: Final = "".join(chr(code) for code in range(0x21))
#: Tags up to this length have their hash codes cached.
_CACHED_TAG_LENGTH: Final = 64
_uncached_hash: Final = string_hash.__wrapped__


class SubscriptionTooLargeError(CommandError):
    """A subscription listing more than :data:`MAX_SUBSCRIPTION_TAGS` tags."""


def is_tag_type(expression_type: str | None) -> bool:
    """``ExpressionType.isTagType``: TAG or unset."""
    return expression_type is None or expression_type == "" or expression_type == TAG


def check_tag_count(count: int, what: str) -> None:
    """Raise SubscriptionTooLargeError when ``count`` tags are too many."""
    if count > MAX_SUBSCRIPTION_TAGS:
        raise SubscriptionTooLargeError(
            f"{what} lists {count} tags, more than the {MAX_SUBSCRIPTION_TAGS} allowed"
        )


class ExpressionMessageFilter:
    """A pull's filter: for the store (``is_matched_by_consume_queue`` /
    ``is_matched_by_commit_log``) and for long polling (``matches_arrival``).

    ``codes`` (the tags' hash codes, as Java ints) are taken from the
    subscription's ``codeSet`` when not given.
    """

    __slots__ = ("_codes", "_match_all", "subscription")

    def __init__(
        self, subscription: SubscriptionData | None, codes: Iterable[int] | None = None
    ) -> None:
        self.subscription = subscription
        self._match_all = (
            subscription is None
            or subscription.class_filter_mode
            or not is_tag_type(subscription.expression_type)
            or subscription.sub_string == SUB_ALL
        )
        if codes is None:
            codes = subscription.code_set if subscription is not None else ()
        self._codes = frozenset(to_int32(code) for code in codes)

    @property
    def match_all(self) -> bool:
        return self._match_all

    @property
    def reads_commit_log(self) -> bool:
        return False

    @property
    def codes(self) -> frozenset[int]:
        return self._codes

    def is_matched_by_consume_queue(
        self, tags_code: int | None, ext: CqExtUnit | None = None
    ) -> bool:
        # Java compares the stored long's intValue() with the set of ints.
        return self._match_all or tags_code is None or to_int32(tags_code) in self._codes

    def is_matched_by_commit_log(self, message: bytes) -> bool:
        return True

    def matches_arrival(self, tags_code: int | None, properties: Mapping[str, str] | None) -> bool:
        return tags_code is None or self.is_matched_by_consume_queue(tags_code)


def filter_of_subscription(subscription: SubscriptionData) -> ExpressionMessageFilter:
    """The filter of a registered (heartbeat) subscription. Raises
    SubscriptionTooLargeError for one listing too many tags."""
    check_tag_count(len(subscription.code_set), f"the subscription to {subscription.topic}")
    return ExpressionMessageFilter(subscription)


def tag_expression_filter(topic: str, sub_string: str | None) -> ExpressionMessageFilter:
    """The filter of a TAG expression a pull carries (what Java's
    ``FilterAPI.buildSubscriptionData`` gives, without the Java-ordered
    sets only a heartbeat's answer would show). Cached by expression.
    Raises SubscriptionTooLargeError for more than the allowed tags."""
    if not sub_string or sub_string == SUB_ALL:
        return _MATCH_ALL
    # Counting separators is cheap; splitting and hashing is not.
    check_tag_count(sub_string.count("||") + 1, f"the subscription to {topic}")
    return _tags_filter(sub_string)


@lru_cache(maxsize=256)
def _tags_filter(sub_string: str) -> ExpressionMessageFilter:
    codes: set[int] = set()
    for tag in sub_string.split("||"):
        trimmed = tag.strip(_JAVA_TRIMMED)
        if trimmed:
            # Long tags bypass string_hash's cache, which would keep them.
            hasher = string_hash if len(trimmed) <= _CACHED_TAG_LENGTH else _uncached_hash
            codes.add(hasher(trimmed))
    subscription = SubscriptionData(topic=None, sub_string=sub_string, sub_version=0)
    return ExpressionMessageFilter(subscription, codes)


_MATCH_ALL: Final = ExpressionMessageFilter(None)

__all__ = [
    "MAX_SUBSCRIPTION_TAGS",
    "TAG",
    "ExpressionMessageFilter",
    "SubscriptionTooLargeError",
    "check_tag_count",
    "filter_of_subscription",
    "is_tag_type",
    "tag_expression_filter",
]
