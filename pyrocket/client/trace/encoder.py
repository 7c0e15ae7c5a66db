"""The trace text format (Java's ``TraceDataEncoder``), without I/O.

A trace message body is records one after another, each ended by
FIELD_SEPARATOR (char 2), its fields separated by CONTENT_SEPARATOR
(char 1):

* ``Pub``: type, timestamp, regionId, group, topic, msgId, tags, keys,
  storeHost, bodyLength, costTime, msgType ordinal, offsetMsgId, success;
* ``SubBefore`` (one per message): type, timestamp, regionId, group,
  requestId, msgId, retryTimes, keys;
* ``SubAfter`` (one per message): type, requestId, msgId, costTime,
  success, keys, contextCode.

Booleans are ``true``/``false`` and a missing text field (tags or keys of
a message without them) is written ``null``, as Java's StringBuilder does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

RMQ_SYS_TRACE_TOPIC = "RMQ_SYS_TRACE_TOPIC"
CONTENT_SEPARATOR = "\x01"
FIELD_SEPARATOR = "\x02"
#: Java's TraceConstants.GROUP_NAME_PREFIX and TRACE_INSTANCE_NAME.
GROUP_NAME_PREFIX = "_INNER_TRACE_PRODUCER"
TRACE_INSTANCE_NAME = "PID_CLIENT_INNER_TRACE_PRODUCER"


class TraceType(enum.Enum):
    Pub = "Pub"
    SubBefore = "SubBefore"
    SubAfter = "SubAfter"


class MessageType(enum.IntEnum):
    """Java's ``MessageType``; the record holds the ordinal."""

    Normal_Msg = 0
    Trans_Msg_Half = 1
    Trans_msg_Commit = 2
    Delay_Msg = 3


@dataclass(slots=True)
class TraceBean:
    """One message of a record."""

    topic: str = ""
    msg_id: str = ""
    offset_msg_id: str = ""
    tags: str | None = ""
    keys: str | None = ""
    store_host: str = ""
    client_host: str = ""
    store_time: int = 0
    retry_times: int = 0
    body_length: int = 0
    msg_type: MessageType = MessageType.Normal_Msg


@dataclass(slots=True)
class TraceContext:
    """One record (or one per bean for the Sub types)."""

    trace_type: TraceType
    timestamp: int = 0
    region_id: str | None = ""
    group_name: str = ""
    cost_time: int = 0
    success: bool = True
    request_id: str = ""
    context_code: int = 0
    beans: list[TraceBean] = field(default_factory=list)


def _text(value: str | None) -> str:
    return "null" if value is None else value


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _join(fields: list[str]) -> str:
    return CONTENT_SEPARATOR.join(fields) + FIELD_SEPARATOR


def encode_trace(ctx: TraceContext) -> tuple[str, list[str]]:
    """The record text of ``ctx`` and the keys its trace message carries
    (each bean's msgId, and its keys when it has some)."""
    parts: list[str] = []
    if ctx.trace_type is TraceType.Pub and ctx.beans:
        bean = ctx.beans[0]
        parts.append(
            _join(
                [
                    ctx.trace_type.value,
                    str(ctx.timestamp),
                    _text(ctx.region_id),
                    ctx.group_name,
                    bean.topic,
                    bean.msg_id,
                    _text(bean.tags),
                    _text(bean.keys),
                    bean.store_host,
                    str(bean.body_length),
                    str(ctx.cost_time),
                    str(int(bean.msg_type)),
                    bean.offset_msg_id,
                    _bool(ctx.success),
                ]
            )
        )
    elif ctx.trace_type is TraceType.SubBefore:
        for bean in ctx.beans:
            parts.append(
                _join(
                    [
                        ctx.trace_type.value,
                        str(ctx.timestamp),
                        _text(ctx.region_id),
                        ctx.group_name,
                        ctx.request_id,
                        bean.msg_id,
                        str(bean.retry_times),
                        _text(bean.keys),
                    ]
                )
            )
    elif ctx.trace_type is TraceType.SubAfter:
        for bean in ctx.beans:
            parts.append(
                _join(
                    [
                        ctx.trace_type.value,
                        ctx.request_id,
                        bean.msg_id,
                        str(ctx.cost_time),
                        _bool(ctx.success),
                        _text(bean.keys),
                        str(ctx.context_code),
                    ]
                )
            )
    keys: list[str] = []
    for bean in ctx.beans:
        keys.append(bean.msg_id)
        if bean.keys:
            keys.append(bean.keys)
    return "".join(parts), keys


def _decode_one(line: list[str]) -> TraceContext | None:
    kind = line[0]
    if kind == TraceType.Pub.value:
        bean = TraceBean(
            topic=line[4],
            msg_id=line[5],
            tags=line[6],
            keys=line[7],
            store_host=line[8],
            body_length=int(line[9]),
            msg_type=MessageType(int(line[11])),
        )
        ctx = TraceContext(
            TraceType.Pub, int(line[1]), line[2], line[3], cost_time=int(line[10]), beans=[bean]
        )
        if len(line) == 13:
            ctx.success = line[12].lower() == "true"
        elif len(line) == 14:
            bean.offset_msg_id = line[12]
            ctx.success = line[13].lower() == "true"
        return ctx
    if kind == TraceType.SubBefore.value:
        bean = TraceBean(msg_id=line[5], retry_times=int(line[6]), keys=line[7])
        return TraceContext(
            TraceType.SubBefore, int(line[1]), line[2], line[3], request_id=line[4], beans=[bean]
        )
    if kind == TraceType.SubAfter.value:
        bean = TraceBean(msg_id=line[2], keys=line[5])
        return TraceContext(
            TraceType.SubAfter,
            request_id=line[1],
            cost_time=int(line[3]),
            success=line[4].lower() == "true",
            context_code=int(line[6]) if len(line) >= 7 else 0,
            beans=[bean],
        )
    return None


def decode_traces(text: str) -> list[TraceContext]:
    """The records of a trace message body (``decoderFromTraceDataString``;
    records of an unknown type are skipped). Raises ValueError (or
    IndexError) for a record too short or with a bad number."""
    result: list[TraceContext] = []
    for record in text.split(FIELD_SEPARATOR):
        if not record:
            continue
        ctx = _decode_one(record.split(CONTENT_SEPARATOR))
        if ctx is not None:
            result.append(ctx)
    return result
