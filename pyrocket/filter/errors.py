"""Errors of SQL92 selectors."""

from __future__ import annotations

from pyrocket.errors import PyrocketError


class SelectorError(PyrocketError, ValueError):
    """A selector that Java's ``SelectorParser`` refuses (bad syntax, a
    literal out of range, operands that cannot be compared), or one beyond
    pyrocket's limits of length and nesting. The message says what was
    wrong; :attr:`java_class` names the Java exception class it stands for,
    for answers that quote it (``CHECK_CLIENT_CONFIG``'s remark)."""

    def __init__(self, message: str, java_class: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.java_class = java_class or "org.apache.rocketmq.filter.parser.ParseException"

    def java_text(self) -> str:
        """What ``MQFilterException.getMessage()`` gives in Java: the cause's
        ``toString()``."""
        return f"{self.java_class}: {self.message}"


class EvaluationError(PyrocketError):
    """Evaluation that Java aborts with an exception (a property that does
    not convert to the number it is compared with, two non-numeric strings
    compared by order, a boolean compared with a string). Java's broker
    then treats the message as not matching."""


__all__ = ["EvaluationError", "SelectorError"]
