"""Log arguments for values whose size a peer decides.

A KV value, a configuration body, a subscription with thousands of tags or a
remark can be megabytes long; logged whole, one request floods the log and
costs the event loop the time to format it. :class:`clipped` wraps such a
value for a ``%s`` argument: it is formatted only if the record is emitted,
and then cut to ``limit`` characters with the length of the rest noted.

    log.info("putKVConfig ... Value: %s", clipped(value))
"""

from __future__ import annotations

from typing import Final

#: Characters of a clipped value that reach the log.
DEFAULT_LIMIT: Final = 256


def clip(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` as text, cut to ``limit`` characters; what was left out is
    counted (characters for text, bytes for bytes)."""
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if len(data) <= limit:
            return repr(data)
        return f"{data[:limit]!r}... ({len(data) - limit} more bytes)"
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


class clipped:  # lower case: it reads as a function in log calls
    """A log argument that formats as :func:`clip` of its value, lazily."""

    __slots__ = ("limit", "value")

    def __init__(self, value: object, limit: int = DEFAULT_LIMIT) -> None:
        self.value = value
        self.limit = limit

    def __str__(self) -> str:
        return clip(self.value, self.limit)

    def __repr__(self) -> str:
        return clip(self.value, self.limit)


__all__ = ["DEFAULT_LIMIT", "clip", "clipped"]
