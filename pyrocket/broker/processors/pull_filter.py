"""The pull processor's subscription parsing and its small answers: the
filter a pull's own subscription asks for, the refusals of an expression
that does not parse, the OFFSET_MOVED_EVENT body, and resolving an answer
that may still be awaited (:mod:`pyrocket.broker.processors.pull`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Final, TypeAlias

from pyrocket.broker.message_filter import (
    ExpressionMessageFilter,
    SubscriptionTooLargeError,
    check_tag_count,
    is_tag_type,
    tag_expression_filter,
)
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import MessageQueue, OffsetMovedEvent, SubscriptionData
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RESPONSE_FLAG, RemotingCommand
from pyrocket.protocol.headers import PullMessageRequestHeader, PullMessageResponseHeader

log = logging.getLogger("pyrocket.broker")

_EMPTY: Final[dict[str, str]] = {}
#: A pull's answer: now (None: held, or answered already) or to be awaited.
PullReply: TypeAlias = RemotingCommand | Awaitable[RemotingCommand | None] | None


def pull_response(
    code: int, remark: str | None = None, header: PullMessageResponseHeader | None = None
) -> RemotingCommand:
    # A PULL answer always has the header object (extFields {} when unset).
    return RemotingCommand(
        code=code,
        flag=RESPONSE_FLAG,
        remark=remark,
        ext_fields=_EMPTY if header is None else header.to_ext_fields(),
    )


def parse_failed(header: PullMessageRequestHeader, exc: Exception) -> RemotingCommand:
    log.warning(
        "Parse the consumer's subscription[%.200s] failed, group: %s: %s",
        header.subscription,
        header.consumer_group,
        exc,
    )
    return pull_response(
        ResponseCode.SUBSCRIPTION_PARSE_FAILED, "parse the consumer's subscription failed"
    )


async def resolved(reply: PullReply) -> RemotingCommand | None:
    """A processor's answer, awaited when it is not ready yet."""
    if reply is None or isinstance(reply, RemotingCommand):
        return reply
    return await reply


def no_property_filter(expression_type: str | None) -> RemotingCommand:
    # Java's answer with enablePropertyFilter=false.
    remark = f"The broker does not support consumer to filter message by {expression_type}"
    return pull_response(ResponseCode.SYSTEM_ERROR, remark)


class SubscriptionParseError(PyrocketError, ValueError):
    """A subscription expression Java's FilterAPI refuses."""


def build_subscription(
    topic: str, sub_string: str | None, expression_type: str | None
) -> SubscriptionData:
    """``FilterAPI.build``: the subscription a pull request carries. Raises
    SubscriptionParseError where Java throws, and for more tags than
    :data:`~pyrocket.broker.message_filter.MAX_SUBSCRIPTION_TAGS`."""
    if is_tag_type(expression_type):
        check_tag_expression(topic, sub_string)
        return SubscriptionData.for_expression(topic, sub_string, 0)
    if not sub_string:
        raise SubscriptionParseError(f"Expression can't be null! {expression_type}")
    return SubscriptionData(
        topic=topic, sub_string=sub_string, sub_version=0, expression_type=expression_type
    )


def check_tag_expression(topic: str, sub_string: str | None) -> None:
    if sub_string and sub_string != "*":
        try:
            check_tag_count(sub_string.count("||") + 1, f"the subscription to {topic}")
        except SubscriptionTooLargeError as exc:
            raise SubscriptionParseError(str(exc)) from exc
        if not sub_string.replace("||", ""):
            # Only separators: String.split drops the trailing empty parts,
            # leaving none, and Java throws "subString split error".
            raise SubscriptionParseError("subString split error")


def request_filter(
    topic: str, sub_string: str | None, expression_type: str | None
) -> ExpressionMessageFilter:
    """The filter of the subscription a pull carries: what
    :func:`build_subscription` accepts, parsed once per expression text.
    Raises SubscriptionParseError as it does."""
    if is_tag_type(expression_type):
        check_tag_expression(topic, sub_string)
        return tag_expression_filter(topic, sub_string)
    return ExpressionMessageFilter(build_subscription(topic, sub_string, expression_type))


def offset_moved_event_body(group: str, queue: MessageQueue, request: int, new: int) -> bytes:
    """``OffsetMovedEvent``'s JSON."""
    return OffsetMovedEvent(
        consumer_group=group, message_queue=queue, offset_request=request, offset_new=new
    ).encode()
