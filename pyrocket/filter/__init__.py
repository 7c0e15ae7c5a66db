"""SQL92 message selectors, as Java 4.7.0's ``rocketmq-filter`` module
defines them: a consumer subscribes with an expression over message
properties (``a > 5 AND b IN ('x', 'y')``) and the broker delivers the
messages for which it is TRUE.

Sans-I/O and self-contained (it imports only the error root):
:mod:`~pyrocket.filter.lexer` reads tokens, :mod:`~pyrocket.filter.parser`
builds the tree of :mod:`~pyrocket.filter.nodes` with Java's grammar and
checks, :mod:`~pyrocket.filter.evaluate` evaluates it with Java's
three-valued logic and conversions::

    selector = compile_selector("a > 5 AND b IS NOT NULL")
    selector.matches({"a": "7", "b": "x"})    # True
    selector.evaluate({"a": "7"})            # False (None: unknown)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

from pyrocket.filter.errors import EvaluationError, SelectorError
from pyrocket.filter.evaluate import Evaluator, Properties, compile_tree
from pyrocket.filter.nodes import Node, Value
from pyrocket.filter.parser import MAX_DEPTH, MAX_LENGTH, parse

#: ExpressionType.SQL92.
SQL92: Final = "SQL92"


class Selector:
    """A compiled selector. Immutable; safe to share."""

    __slots__ = ("_evaluate", "text", "tree")

    def __init__(self, text: str, tree: Node) -> None:
        self.text = text
        self.tree = tree
        self._evaluate: Evaluator = compile_tree(tree)

    def evaluate(self, properties: Properties) -> Value:
        """True, False or None (unknown). Raises EvaluationError where
        Java's evaluation throws."""
        return self._evaluate(properties)

    def matches(self, properties: Properties) -> bool:
        """What Java's broker decides for a message with ``properties``:
        True only when the selector evaluates to TRUE (unknown and failed
        evaluations do not match)."""
        try:
            return self._evaluate(properties) is True
        except EvaluationError:
            return False

    def __repr__(self) -> str:
        return f"Selector({self.text!r})"


class SelectorCache:
    """The last ``size`` selectors compiled, by text (Java's parser keeps
    100). Safe to use from threads."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._selectors: OrderedDict[str, Selector] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> Selector | None:
        with self._lock:
            selector = self._selectors.get(text)
            if selector is not None:
                self._selectors.move_to_end(text)
            return selector

    def compile(self, text: str) -> Selector:
        """The selector of ``text``, compiled unless kept. Raises
        SelectorError as :func:`parse` does (failures are not kept)."""
        selector = self.get(text)
        if selector is not None:
            return selector
        selector = Selector(text, parse(text))
        with self._lock:
            self._selectors[text] = selector
            self._selectors.move_to_end(text)
            while len(self._selectors) > self._size:
                self._selectors.popitem(last=False)
        return selector


def compile_selector(text: str, cache: SelectorCache | None = None) -> Selector:
    """The selector of ``text``, kept in ``cache`` when given. Raises
    SelectorError where Java's ``SelectorParser`` refuses it, and beyond
    :data:`MAX_LENGTH` / :data:`MAX_DEPTH`."""
    if cache is None:
        return Selector(text, parse(text))
    return cache.compile(text)


__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "SQL92",
    "EvaluationError",
    "Selector",
    "SelectorCache",
    "SelectorError",
    "compile_selector",
    "parse",
]
