"""What became of a message in each consumer group of its topic (Java's
``DefaultMQAdminExtImpl.messageTrackDetail`` and ``consumed``), as a
function over an :class:`~pyrocket.client.admin.Admin`: mqadmin prints these
tracks under a message's detail."""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING

from pyrocket.client.admin.progress import NoConsumeStatsError, examine_consume_stats
from pyrocket.errors import PyrocketError, ResponseError
from pyrocket.protocol.bodies.client import ConsumeType
from pyrocket.protocol.bodies.route import MASTER_ID
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.message import MessageExt

if TYPE_CHECKING:
    from pyrocket.client.admin import Admin


class TrackType(enum.Enum):
    """Java's ``TrackType``."""

    CONSUMED = "CONSUMED"
    CONSUMED_BUT_FILTERED = "CONSUMED_BUT_FILTERED"
    PULL = "PULL"
    NOT_CONSUME_YET = "NOT_CONSUME_YET"
    NOT_ONLINE = "NOT_ONLINE"
    UNKNOWN = "UNKNOWN"


@dataclasses.dataclass(frozen=True, slots=True)
class MessageTrack:
    """One consumer group's relation to a message."""

    consumer_group: str
    track_type: TrackType = TrackType.UNKNOWN
    exception_desc: str | None = None

    def __str__(self) -> str:
        """``MessageTrack.toString()``."""
        return (
            f"MessageTrack [consumerGroup={self.consumer_group}, "
            f"trackType={self.track_type.value}, exceptionDesc={self.exception_desc or 'null'}]"
        )


def _coded(group: str, code: int, text: str | None) -> MessageTrack:
    kind = TrackType.NOT_ONLINE if code == ResponseCode.CONSUMER_NOT_ONLINE else TrackType.UNKNOWN
    return MessageTrack(group, kind, f"CODE:{code} DESC:{text}")


def _simple(group: str, exc: PyrocketError) -> MessageTrack:
    return MessageTrack(group, TrackType.UNKNOWN, f"{type(exc).__name__}: {exc}")


async def consumed(admin: Admin, message: MessageExt, group: str) -> bool:
    """Whether the group's committed offset of the message's queue, on the
    broker that stored it, is past the message; raises as
    :func:`~pyrocket.client.admin.progress.examine_consume_stats` does."""
    stats = await examine_consume_stats(admin, group)
    table = (await admin.cluster_info()).broker_addr_table or {}
    store_host = str(message.store_host)
    for queue, wrapper in stats.offset_table.items():
        if queue.topic != message.topic or queue.queue_id != message.queue_id:
            continue
        data = table.get(queue.broker_name or "")
        if data is None:
            continue
        stored_here = (data.broker_addrs or {}).get(MASTER_ID) == store_host
        if stored_here and wrapper.consumer_offset > message.queue_offset:
            return True
    return False


async def message_track_detail(admin: Admin, message: MessageExt) -> list[MessageTrack]:
    """A track per consumer group of the message's topic; raises ResponseError
    or the remoting errors when the topic's consumers cannot be asked."""
    route = await admin.topic_route(message.topic)
    tracks: list[MessageTrack] = []
    for group in await admin.topic_consumer_groups(route, message.topic):
        try:
            connection = await admin.consumer_connection(group)
        except ResponseError as exc:
            tracks.append(_coded(group, exc.code, exc.remark))
            continue
        except PyrocketError as exc:
            tracks.append(_simple(group, exc))
            continue
        if connection.consume_type is ConsumeType.CONSUME_ACTIVELY:
            tracks.append(MessageTrack(group, TrackType.PULL))
            continue
        if connection.consume_type is not ConsumeType.CONSUME_PASSIVELY:
            tracks.append(MessageTrack(group))
            continue
        try:
            done = await consumed(admin, message, group)
        except NoConsumeStatsError as exc:
            tracks.append(_coded(group, exc.code, str(exc)))
            continue
        except ResponseError as exc:
            tracks.append(_coded(group, exc.code, exc.remark))
            continue
        except PyrocketError as exc:
            tracks.append(_simple(group, exc))
            continue
        if not done:
            tracks.append(MessageTrack(group, TrackType.NOT_CONSUME_YET))
            continue
        kind = TrackType.CONSUMED
        for topic, subscription in connection.subscription_table.items():
            if topic != message.topic:
                continue
            tags = subscription.tags_set
            if tags and message.tags not in tags and "*" not in tags:
                kind = TrackType.CONSUMED_BUT_FILTERED
        tracks.append(MessageTrack(group, kind))
    return tracks


__all__ = ["MessageTrack", "TrackType", "consumed", "message_track_detail"]
