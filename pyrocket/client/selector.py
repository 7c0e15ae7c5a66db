"""How a consumer picks the messages of a topic (Java's ``MessageSelector``):
by tags (``"TagA || TagB"``, ``"*"`` for all) or by an SQL92 expression over
message properties, which the broker evaluates (it must run with
``enablePropertyFilter=true``)::

    consumer.subscribe("TopicTest", MessageSelector.by_sql("a > 5 AND b = 'x'"))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pyrocket.client.instance import ClientError, ClientInstance
from pyrocket.errors import PyrocketError, ResponseError
from pyrocket.protocol.bodies.client import SubscriptionData

#: ExpressionType.TAG and ExpressionType.SQL92.
TAG: Final = "TAG"
SQL92: Final = "SQL92"


@dataclass(frozen=True, slots=True)
class MessageSelector:
    """A tag expression or an SQL92 one (make them with :meth:`by_tag` and
    :meth:`by_sql`)."""

    expression_type: str
    expression: str

    @classmethod
    def by_sql(cls, sql: str) -> MessageSelector:
        """Messages whose properties make ``sql`` TRUE. The broker checks
        the expression when the consumer starts."""
        return cls(SQL92, sql)

    @classmethod
    def by_tag(cls, tags: str) -> MessageSelector:
        """Messages tagged with one of ``tags`` (``||``-separated; ``*``: all)."""
        return cls(TAG, tags)

    def subscription(self, topic: str) -> SubscriptionData:
        """``FilterAPI.build``: the subscription to ``topic``. Raises
        ValueError for an empty SQL92 expression, as Java does."""
        if self.expression_type == TAG:
            return SubscriptionData.for_expression(topic, self.expression)
        if not self.expression:
            raise ValueError(f"Expression can't be null! {self.expression_type}")
        return SubscriptionData(
            topic=topic, sub_string=self.expression, expression_type=self.expression_type
        )


async def check_client_in_broker(
    instance: ClientInstance,
    group: str,
    subscriptions: Iterable[SubscriptionData],
    timeout: float,  # noqa: ASYNC109
) -> None:
    """Java's ``checkClientInBroker``: a broker of each non-TAG
    subscription's topic must accept the expression (CHECK_CLIENT_CONFIG),
    else the consumer does not start. Raises ClientError (``code``: the
    broker's answer) for a refusal or a failed check."""
    for subscription in subscriptions:
        if subscription.expression_type in (None, "", TAG):
            continue
        topic = subscription.topic or ""
        addr = instance.any_broker_addr(topic)
        if addr is None:
            continue
        try:
            await instance.brokers.check_client_config(
                addr, group, instance.client_id, subscription, timeout=timeout
            )
        except ResponseError as exc:
            raise ClientError(
                f"the broker {addr} refuses the {subscription.expression_type} "
                f"subscription to {topic}: code {exc.code}, {exc.remark}",
                exc.code,
            ) from exc
        except PyrocketError as exc:
            raise ClientError(
                f"Check client in broker error, maybe because you use "
                f"{subscription.expression_type} to filter message, but server has not "
                f"been upgraded to support: {exc}"
            ) from exc


__all__ = ["SQL92", "TAG", "MessageSelector", "check_client_in_broker"]
