"""What the send and reply processors share: the send answer's preceding
fields and status mapping, the send header's decoding, and the remarks
Java gives (:mod:`pyrocket.broker.processors.send`)."""

from __future__ import annotations

import datetime
import functools
import types
from collections.abc import Mapping
from typing import Final

from pyrocket.broker.store import PutMessageStatus
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RESPONSE_FLAG, RemotingCommand
from pyrocket.protocol.headers import SendMessageRequestHeader, SendMessageRequestHeaderV2
from pyrocket.protocol.javahash import hashmap_order
from pyrocket.protocol.message import MessageConst, MessageSysFlag, decode_properties

MESSAGE_ILLEGAL_REMARK: Final = (
    "the message is illegal, maybe msg body or properties length not matched. "
    "msg body length limit 128k, msg properties length limit 32k."
)
#: Statuses under which the message was stored (the send succeeded).
SEND_OK: Final = {
    PutMessageStatus.PUT_OK: ResponseCode.SUCCESS,
    PutMessageStatus.FLUSH_DISK_TIMEOUT: ResponseCode.FLUSH_DISK_TIMEOUT,
    PutMessageStatus.FLUSH_SLAVE_TIMEOUT: ResponseCode.FLUSH_SLAVE_TIMEOUT,
    PutMessageStatus.SLAVE_NOT_AVAILABLE: ResponseCode.SLAVE_NOT_AVAILABLE,
}


#: The sysFlag bits that say a host is IPv6: the store sets them from the
#: hosts; a request may only set those its hosts have.
HOST_FLAGS: Final = MessageSysFlag.HOST_V6_FLAGS


def send_response(
    code: int, remark: str | None = None, ext_fields: Mapping[str, str] | None = None
) -> RemotingCommand:
    return RemotingCommand(code=code, flag=RESPONSE_FLAG, remark=remark, ext_fields=ext_fields)


#: The fields Java adds to every send answer before the header's, in the
#: order its HashMap iterates them.
_PRECEDING_ORDER: Final = tuple(
    hashmap_order([MessageConst.PROPERTY_MSG_REGION, MessageConst.PROPERTY_TRACE_SWITCH])
)


@functools.lru_cache(maxsize=16)
def preceding_fields(region_id: str, trace_on: bool) -> Mapping[str, str]:
    """The preceding fields (built once per setting; read only)."""
    values = {
        MessageConst.PROPERTY_MSG_REGION: region_id,
        MessageConst.PROPERTY_TRACE_SWITCH: "true" if trace_on else "false",
    }
    return types.MappingProxyType({key: values[key] for key in _PRECEDING_ORDER})


def time_human_string(ms: int) -> str:
    """``UtilAll.timeMillisToHumanString2``: local time with milliseconds.
    Years past Python's datetime (9999) are counted out by hand, as Java's
    calendar does, with the local zone's offset of today."""
    try:
        moment = datetime.datetime.fromtimestamp(ms / 1000)
    except (OverflowError, OSError, ValueError):
        offset = datetime.datetime.now().astimezone().utcoffset()
        seconds = ms // 1000 + (int(offset.total_seconds()) if offset is not None else 0)
        days, second = divmod(seconds, 86_400)
        year, month, day = _civil_from_days(days)
        hour, rest = divmod(second, 3600)
        clock = f"{hour:02d}:{rest // 60:02d}:{rest % 60:02d},{ms % 1000:03d}"
        return f"{year:04d}-{month:02d}-{day:02d} {clock}"
    return moment.strftime("%Y-%m-%d %H:%M:%S,") + f"{ms % 1000:03d}"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """The proleptic Gregorian (year, month, day) ``days`` after 1970-01-01."""
    days += 719_468
    era, day_of_era = divmod(days, 146_097)
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


def decode_send_header(
    request: RemotingCommand,
) -> SendMessageRequestHeader | SendMessageRequestHeaderV2:
    """The send header; the generic decoder raises CommandError naming a
    missing or bad field."""
    if request.code == RequestCode.SEND_MESSAGE:
        return request.decode_header(SendMessageRequestHeader)
    return SendMessageRequestHeaderV2.from_ext_fields_fast(request.ext_fields or {})


def parse_properties(text: str | None) -> dict[str, str]:
    return decode_properties(text) if text else {}
