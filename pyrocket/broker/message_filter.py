"""Which messages a pull returns (Java's ``ExpressionMessageFilter`` for TAG
subscriptions): a message passes when the subscription is ``*``, is a class
filter, or lists the message's tags hash code. The consume queue keeps each
message's tags code, so filtering never reads the commit log.

SQL92 subscriptions need the broker's property filtering, which pyrocket does
not offer: the pull processor refuses them before a filter is built, as Java
does with ``enablePropertyFilter=false``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pyrocket.protocol.bodies.client import SUB_ALL, SubscriptionData
from pyrocket.protocol.javahash import to_int32

#: ExpressionType.TAG.
TAG: Final = "TAG"


def is_tag_type(expression_type: str | None) -> bool:
    """``ExpressionType.isTagType``: TAG or unset."""
    return expression_type is None or expression_type == "" or expression_type == TAG


class ExpressionMessageFilter:
    """A pull's filter: for the store (``is_matched_by_consume_queue`` /
    ``is_matched_by_commit_log``) and for long polling (``matches_arrival``)."""

    __slots__ = ("_codes", "_match_all", "subscription")

    def __init__(self, subscription: SubscriptionData | None) -> None:
        self.subscription = subscription
        self._match_all = (
            subscription is None
            or subscription.class_filter_mode
            or not is_tag_type(subscription.expression_type)
            or subscription.sub_string == SUB_ALL
        )
        codes = subscription.code_set if subscription is not None else ()
        self._codes = frozenset(to_int32(code) for code in codes)

    def is_matched_by_consume_queue(self, tags_code: int) -> bool:
        # Java compares the stored long's intValue() with the set of ints.
        return self._match_all or to_int32(tags_code) in self._codes

    def is_matched_by_commit_log(self, message: bytes) -> bool:
        return True

    def matches_arrival(self, tags_code: int | None, properties: Mapping[str, str] | None) -> bool:
        return tags_code is None or self.is_matched_by_consume_queue(tags_code)


__all__ = ["TAG", "ExpressionMessageFilter", "is_tag_type"]
