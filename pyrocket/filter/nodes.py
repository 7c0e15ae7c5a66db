"""The parsed form of a selector: a small tree of frozen nodes, one class per
kind of Java expression object the grammar's actions build.

Constants hold Java's values as Python ones: None (NULL), bool, int
(``Integer``), :class:`JavaLong` (``Long``: a literal outside the int range,
kept apart because a string compared with it converts with
``Long.valueOf``, not ``Integer.valueOf``), float (``Double``) and str.
``AND`` / ``OR`` chains are kept flat (evaluation is the same as Java's
left-nested pairs, operand by operand, stopping at the first deciding one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


class JavaLong(int):
    """A Java ``Long`` value (an int that converts strings as a long)."""

    __slots__ = ()

    def __neg__(self) -> JavaLong:
        return JavaLong(-int(self))

    def __repr__(self) -> str:
        return f"{int(self)}L"


Value = None | bool | int | float | str


@dataclass(frozen=True, slots=True)
class Constant:
    value: Value


@dataclass(frozen=True, slots=True)
class Property:
    name: str


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class BooleanCast:
    """A bare property used as a condition (``UnaryExpression.createBooleanCast``)."""

    operand: Property


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


#: Comparison operators; "==" is Java's doCreateEqual (``=`` and IS NULL).
COMPARISONS: Final = ("==", ">", ">=", "<", "<=")


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class In:
    operand: Property
    values: frozenset[str]
    negated: bool


Node = Constant | Property | Negate | Not | BooleanCast | And | Or | Compare | In

TRUE: Final = Constant(True)
FALSE: Final = Constant(False)
NULL: Final = Constant(None)


def is_boolean(node: Node) -> bool:
    """Whether Java's object for ``node`` is a ``BooleanExpression``
    (TRUE, FALSE and NULL are; other constants, properties and negations
    are not)."""
    if isinstance(node, Constant):
        return node.value is None or type(node.value) is bool
    return not isinstance(node, (Property, Negate))


def java_double_text(value: float) -> str:
    """``Double.toString`` for the values selectors hold (close enough for
    error messages: Java's shortest-digits form with its ``E`` notation)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    magnitude = abs(value)
    if magnitude == 0 or 1e-3 <= magnitude < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    exponent = f"{value:.16e}".partition("e")[2]
    # The shortest repr's digits, written as d.dddE<n>.
    digits = repr(magnitude).replace(".", "").split("e")[0].strip("0") or "0"
    fraction = digits[1:] or "0"
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[0]}.{fraction}E{int(exponent)}"


def java_text(node: Node) -> str:
    """The ``toString()`` of Java's object for ``node`` (used in messages)."""
    if isinstance(node, Constant):
        value = node.value
        if value is None:
            return "NULL"
        if type(value) is bool:
            return "TRUE" if value else "FALSE"
        if isinstance(value, str):
            return "'" + value.replace("'", "''") + "'"
        if isinstance(value, float):
            return java_double_text(value)
        return str(int(value))
    if isinstance(node, Property):
        return node.name
    if isinstance(node, Negate):
        return f"(- {java_text(node.operand)})"
    if isinstance(node, Not):
        return f"(NOT {java_text(node.operand)})"
    if isinstance(node, BooleanCast):
        return java_text(node.operand)
    if isinstance(node, (And, Or)):
        symbol = " && " if isinstance(node, And) else " || "
        text = java_text(node.operands[0])
        for operand in node.operands[1:]:
            text = f"({text}{symbol}{java_text(operand)})"
        return text
    if isinstance(node, Compare):
        return f"({java_text(node.left)} {node.op} {java_text(node.right)})"
    symbol = "NOT IN" if node.negated else "IN"
    return f"{java_text(node.operand)} {symbol} ( {', '.join(sorted(node.values))} )"


__all__ = [
    "COMPARISONS",
    "FALSE",
    "NULL",
    "TRUE",
    "And",
    "BooleanCast",
    "Compare",
    "Constant",
    "In",
    "JavaLong",
    "Negate",
    "Node",
    "Not",
    "Or",
    "Property",
    "Value",
    "is_boolean",
    "java_text",
]
