"""The answers the transport gives on its own when no processor answers
(busy, request code not supported, processor failed), with the remark texts
of Java's NettyRemotingAbstract."""

from __future__ import annotations

from typing import Final

from pyrocket.errors import PyrocketError
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RemotingCommand

#: Remark of the SYSTEM_BUSY answer to a processor that rejects requests.
REJECT_REQUEST_REMARK: Final = "[REJECTREQUEST]system busy, start flow control for a while"
#: Remark of the SYSTEM_BUSY answer when a connection has too many requests in flight.
OVERLOAD_REMARK: Final = "[OVERLOAD]system busy, start flow control for a while"


def not_supported_remark(code: int) -> str:
    """Java's remark for a request code nobody processes (leading space included)."""
    return f" request type {code} not supported"


def error_remark(exc: BaseException) -> str:
    """The SYSTEM_ERROR remark for an exception raised by a processor.

    pyrocket's own errors carry a message meant for the peer and are sent as
    they are; anything else is named by its type, like Java's
    ``Throwable.toString()``.
    """
    if isinstance(exc, PyrocketError):
        return str(exc) or type(exc).__name__
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def system_response(code: ResponseCode, remark: str) -> RemotingCommand:
    """A response the transport sends on its own (busy, unsupported, error)."""
    return RemotingCommand.response(code, remark)
