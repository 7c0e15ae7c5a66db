"""The tokens of RocketMQ's SQL92 selectors, as the JavaCC grammar of Java
4.7.0 (``SelectorParser.jj``) defines them, read on demand.

Tokens are made only when the parser asks for them, as JavaCC's token
manager does: Java's parser never asks for what follows a complete
expression beyond one token, so text after that is never read (and never
refused). Keywords, identifiers and the exponent letter ignore case; the
longest match wins, and a keyword beats an identifier of the same length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

from pyrocket.filter.errors import SelectorError


class Kind(Enum):
    EOF = "<EOF>"
    NOT = "NOT"
    AND = "AND"
    OR = "OR"
    BETWEEN = "BETWEEN"
    IN = "IN"
    TRUE = "TRUE"
    FALSE = "FALSE"
    NULL = "NULL"
    IS = "IS"
    DECIMAL = "<DECIMAL_LITERAL>"
    FLOAT = "<FLOATING_POINT_LITERAL>"
    STRING = "<STRING_LITERAL>"
    ID = "<ID>"
    EQ = "="
    NE = "<>"
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    PLUS = "+"
    MINUS = "-"


KEYWORDS: Final = {
    kind.value: kind
    for kind in (
        Kind.NOT,
        Kind.AND,
        Kind.OR,
        Kind.BETWEEN,
        Kind.IN,
        Kind.TRUE,
        Kind.FALSE,
        Kind.NULL,
        Kind.IS,
    )
}

#: Only these five characters separate tokens (no other Unicode space).
_SPACE: Final = re.compile(r"[ \t\n\r\f]+")
#: ``--`` comments need their line end; without one ``-`` is an operator.
_LINE_COMMENT: Final = re.compile(r"--[^\n\r]*(?:\r\n|\n|\r)")
_BLOCK_COMMENT: Final = re.compile(r"/\*[^*]*\*+(?:[^*/][^*]*\*+)*/")
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*[lL]?")
_FLOAT: Final = re.compile(
    r"[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+"
)
_STRING: Final = re.compile(r"'(?:''|[^'])*'")
_ID: Final = re.compile(r"[a-zA-Z_$][a-zA-Z0-9_$]*")
_OPERATORS: Final = {
    "<>": Kind.NE,
    ">=": Kind.GE,
    "<=": Kind.LE,
    "=": Kind.EQ,
    ">": Kind.GT,
    "<": Kind.LT,
    "(": Kind.LPAREN,
    ")": Kind.RPAREN,
    ",": Kind.COMMA,
    "+": Kind.PLUS,
    "-": Kind.MINUS,
}


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    image: str
    #: Where the token starts in the text (0-based character index).
    position: int


class Lexer:
    """Splits ``text`` into tokens one at a time (:meth:`next`)."""

    __slots__ = ("_pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._pos = 0

    def next(self) -> Token:
        """The next token (EOF at the end). Raises SelectorError for a
        character no token starts with (Java's TokenMgrError)."""
        text = self.text
        pos = self._skip(self._pos)
        if pos >= len(text):
            self._pos = pos
            return Token(Kind.EOF, "", pos)
        char = text[pos]
        match: re.Match[str] | None
        if char == "'":
            match = _STRING.match(text, pos)
            if match is None:
                raise self._lexical_error(pos)
            return self._take(Kind.STRING, match)
        if char.isascii() and (char.isdigit() or char == "."):
            decimal = _DECIMAL.match(text, pos)
            floating = _FLOAT.match(text, pos)
            if floating is not None and (decimal is None or floating.end() > decimal.end()):
                return self._take(Kind.FLOAT, floating)
            if decimal is not None:
                return self._take(Kind.DECIMAL, decimal)
            raise self._lexical_error(pos)
        match = _ID.match(text, pos)
        if match is not None:
            keyword = KEYWORDS.get(match.group().upper())
            return self._take(keyword if keyword is not None else Kind.ID, match)
        two = text[pos : pos + 2]
        kind = _OPERATORS.get(two) if len(two) == 2 else None
        if kind is not None:
            self._pos = pos + 2
            return Token(kind, two, pos)
        kind = _OPERATORS.get(char)
        if kind is not None:
            self._pos = pos + 1
            return Token(kind, char, pos)
        raise self._lexical_error(pos)

    def _take(self, kind: Kind, match: re.Match[str]) -> Token:
        self._pos = match.end()
        return Token(kind, match.group(), match.start())

    def _skip(self, pos: int) -> int:
        text = self.text
        while True:
            match = (
                _SPACE.match(text, pos)
                or _LINE_COMMENT.match(text, pos)
                or _BLOCK_COMMENT.match(text, pos)
            )
            if match is None:
                return pos
            pos = match.end()

    def _lexical_error(self, pos: int) -> SelectorError:
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return SelectorError(
            f"Lexical error at line {line}, column {column}.  "
            f'Encountered: "{self.text[pos]}" ({ord(self.text[pos])}), after : ""',
            "org.apache.rocketmq.filter.parser.TokenMgrError",
        )


__all__ = ["KEYWORDS", "Kind", "Lexer", "Token"]
