"""Log hygiene for the transport: bounded text and rate-limited repeats.

Whatever a peer sends can end up in a log line (a remark, a header value, a
frame the decoder refused), and some errors repeat as fast as the loop that
meets them (EMFILE on accept). :func:`clip` and :func:`describe` bound what one
line can carry; :class:`RepeatLimiter` lets the first occurrence of an error
through and then one summary line per interval.
"""

from __future__ import annotations

import logging
from typing import Final

from pyrocket.logtext import DEFAULT_LIMIT, clip
from pyrocket.protocol.command import RemotingCommand

#: Characters of a peer-supplied value kept in one log line.
LOG_VALUE_LIMIT: Final = DEFAULT_LIMIT


def describe(command: RemotingCommand) -> str:
    """A bounded one-line description of ``command`` for logs: code, opaque,
    flag, the clipped remark, the number of header fields and the body size
    (never the body, never every header value)."""
    kind = "response" if command.is_response else ("oneway" if command.is_oneway else "request")
    parts = [f"<{kind} code={command.code} opaque={command.opaque} flag={command.flag}"]
    if command.remark is not None:
        parts.append(f" remark={clip(repr(command.remark))}")
    if command.ext_fields:
        parts.append(f" ext={clip(repr(dict(command.ext_fields)))}")
    if command.body is not None:
        parts.append(f" body={len(command.body)}B")
    parts.append(">")
    return "".join(parts)


class RepeatLimiter:
    """Lets one log line through per ``interval`` seconds for one kind of error.

    :meth:`allow` is given the current time (trio's clock or any monotonic
    one) and answers whether to log now; when it does after a quiet spell,
    :attr:`suppressed` says how many occurrences were held back since the
    last line, so that line can report them.
    """

    __slots__ = ("_next", "interval", "suppressed")

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self.suppressed = 0
        self._next = -float("inf")

    def allow(self, now: float) -> bool:
        if now >= self._next:
            self._next = now + self.interval
            return True
        self.suppressed += 1
        return False

    def log(
        self, logger: logging.Logger, level: int, now: float, message: str, *args: object
    ) -> None:
        """Log ``message % args`` unless held back; a line after held-back
        repeats says how many there were."""
        if not self.allow(now):
            return
        held, self.suppressed = self.suppressed, 0
        if held:
            logger.log(level, message + " (%d more like this suppressed)", *args, held)
        else:
            logger.log(level, message, *args)
