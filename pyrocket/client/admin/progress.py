"""A consumer group's progress as mqadmin's ``consumerProgress`` and
``updateTopicPerm`` see it (Java's ``DefaultMQAdminExtImpl.examineConsumeStats``
and the route walk of ``UpdateTopicPermSubCommand``), as functions over an
:class:`~pyrocket.client.admin.Admin`.

Failures raise :class:`~pyrocket.client.admin.AdminError`, ResponseError
with a broker's code and remark, or the remoting errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from pyrocket.client.admin.walks import RETRY_GROUP_TOPIC_PREFIX, AdminError, select_broker_addr
from pyrocket.client.calls import invoke_checked
from pyrocket.protocol.bodies.admin import ConsumeStats, OffsetWrapper
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.route import MASTER_ID, TopicRouteData
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers.admin import GetConsumeStatsRequestHeader

if TYPE_CHECKING:
    from pyrocket.client.admin import Admin

#: DefaultMQAdminExtImpl waits three times its timeout for consume stats.
CONSUME_STATS_TIMEOUT: Final = 15.0

#: What mqadmin says of a group no broker has offsets of.
NO_CONSUME_STATS: Final = (
    "Not found the consumer group consume stats, because return offset table is empty, "
    "maybe the consumer not consume any message"
)


class NoConsumeStatsError(AdminError):
    """No broker has offsets of the group (Java's MQClientException with
    CONSUMER_NOT_ONLINE)."""

    code: Final = ResponseCode.CONSUMER_NOT_ONLINE


async def consume_stats_of(admin: Admin, addr: str, group: str, topic: str | None) -> ConsumeStats:
    """GET_CONSUME_STATS from one broker (``topic`` None: every topic of the group)."""
    request = RemotingCommand.request(
        RequestCode.GET_CONSUME_STATS, GetConsumeStatsRequestHeader(group, topic)
    )
    response = await invoke_checked(admin.client, addr, request, CONSUME_STATS_TIMEOUT)
    return ConsumeStats.decode(response.body or b"{}")


async def examine_consume_stats(admin: Admin, group: str, topic: str | None = None) -> ConsumeStats:
    """A group's offsets on every broker of its retry topic's route, merged,
    with their consume TPS summed; raises NoConsumeStatsError when no broker
    has any."""
    route = await admin.topic_route(RETRY_GROUP_TOPIC_PREFIX + group)
    table: dict[MessageQueue, OffsetWrapper] = {}
    tps = 0.0
    for data in route.broker_datas or ():
        addr = select_broker_addr(data)
        if addr is None:
            continue
        stats = await consume_stats_of(admin, addr, group, topic)
        table.update(stats.offset_table)
        tps += stats.consume_tps
    if not table:
        raise NoConsumeStatsError(NO_CONSUME_STATS)
    return ConsumeStats(offset_table=table, consume_tps=tps)


def master_broker_name(route: TopicRouteData, addr: str) -> str | None:
    """The name of the broker of a route whose master is at ``addr`` (None:
    ``addr`` is no master of the route)."""
    for data in route.broker_datas or ():
        for broker_id, broker_addr in (data.broker_addrs or {}).items():
            if broker_addr == addr and broker_id == MASTER_ID:
                return data.broker_name
    return None


__all__ = [
    "CONSUME_STATS_TIMEOUT",
    "NO_CONSUME_STATS",
    "NoConsumeStatsError",
    "consume_stats_of",
    "examine_consume_stats",
    "master_broker_name",
]
