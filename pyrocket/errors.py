"""The one error hierarchy of pyrocket.

Everything pyrocket raises on purpose derives from :class:`PyrocketError`.
Foreign errors (construct, json, OSError) are converted exactly once, where
they enter, with ``raise ... from exc`` so the cause stays visible.
"""

from __future__ import annotations


class PyrocketError(Exception):
    """Root of every error pyrocket raises deliberately."""


class ProtocolError(PyrocketError):
    """Bytes that are not a valid RocketMQ frame, header or body.

    ``offset`` is the position in the input where the problem was found, when
    it is known; ``what`` is the bare description without the position.
    """

    def __init__(self, what: str, offset: int | None = None) -> None:
        self.what = what
        self.offset = offset
        super().__init__(what if offset is None else f"{what} (at byte {offset})")


class LocalProtocolError(ProtocolError, ValueError):
    """A value of ours that does not fit its wire field: the failure is in
    what this side tried to encode, not in bytes a peer sent. (Also a
    ValueError, which is what such a value is.)"""


class CommandError(PyrocketError):
    """A well-formed command whose header does not fit its request code.

    Servers answer these with SYSTEM_ERROR and the message as remark, and keep
    the connection open (Java's RemotingCommandException).
    """


class RemotingError(PyrocketError):
    """A failure of the transport rather than of the peer's answer."""


class RemotingTimeoutError(RemotingError):
    """No response arrived within the caller's timeout."""


class ConnectionClosedError(RemotingError):
    """The connection went away before the call completed."""


class RemotingConnectError(RemotingError):
    """A connection to the address could not be established."""


class RemotingTooMuchRequestError(RemotingError):
    """No permit was free for another asynchronous or oneway call."""


class ResponseError(PyrocketError):
    """The peer answered with a response code other than the one expected."""

    def __init__(self, code: int, remark: str | None) -> None:
        self.code = code
        self.remark = remark
        super().__init__(f"response code {code}: {remark or ''}".rstrip(": "))


class ConfigError(PyrocketError):
    """A configuration file or option that cannot be used; names the key."""
