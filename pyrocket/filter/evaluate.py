"""Evaluating selectors with the semantics of Java 4.7.0's expression
classes: three-valued logic (None is SQL's unknown), and comparisons that
convert as ``ComparisonExpression.__compare`` does with string conversion
on (the broker's parser always turns it on).

Message properties are strings. A string compared with a number converts to
that number's class (``Integer.valueOf``, ``Long.valueOf``,
``Double.valueOf``), with a boolean by ``Boolean.valueOf``; a conversion
that fails, two strings that are not both numbers under ``>``/``<``, or a
boolean on the left of a string, abort the evaluation (EvaluationError),
which Java's broker takes as "does not match". Doubles order as
``Double.compareTo`` (-0.0 below 0.0, NaN above everything and equal to
itself). A property compared with a string under ``=`` is plain equality.

:func:`compile_tree` turns a tree into nested closures, specialised for the
common ``property <op> number`` shapes.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Final

from pyrocket.filter.errors import EvaluationError
from pyrocket.filter.nodes import (
    And,
    BooleanCast,
    Compare,
    Constant,
    In,
    JavaLong,
    Negate,
    Node,
    Not,
    Or,
    Property,
    Value,
)

Properties = Mapping[str, str]
Evaluator = Callable[[Properties], Value]

_INT_MIN: Final = -(2**31)
_INT_MAX: Final = 2**31 - 1
_LONG_MIN: Final = -(2**63)
_LONG_MAX: Final = 2**63 - 1
_ASCII_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_JAVA_DOUBLE: Final = re.compile(
    r"[+-]?(?:NaN|Infinity"
    r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?"
    r"|0[xX](?:[0-9a-fA-F]+\.?|[0-9a-fA-F]*\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?)"
)
#: What ``String.trim`` strips.
_TRIMMED: Final = "".join(chr(code) for code in range(0x21))


# -- Java's conversions -----------------------------------------------------


def _number_format(text: str) -> EvaluationError:
    return EvaluationError(f'java.lang.NumberFormatException: For input string: "{text}"')


def java_integer(text: str, low: int = _INT_MIN, high: int = _INT_MAX) -> int:
    """``Integer.valueOf`` (or, with the long bounds, ``Long.valueOf``):
    an optional sign and decimal digits (any Unicode decimal digit, as
    ``Character.digit``). Raises EvaluationError where Java throws
    NumberFormatException."""
    if text.isascii():
        if _ASCII_INTEGER.fullmatch(text) is None:
            raise _number_format(text)
        value = int(text)
    else:
        body = text[1:] if text[:1] in ("+", "-") else text
        if not body:
            raise _number_format(text)
        value = 0
        for char in body:
            digit = unicodedata.decimal(char, None)
            if digit is None:
                raise _number_format(text)
            value = value * 10 + digit
        if text[0] == "-":
            value = -value
    if value < low or value > high:
        raise _number_format(text)
    return value


def java_long(text: str) -> JavaLong:
    """``Long.valueOf``. Raises EvaluationError as :func:`java_integer`."""
    return JavaLong(java_integer(text, _LONG_MIN, _LONG_MAX))


def java_double(text: str) -> float:
    """``Double.valueOf``: surrounding control characters and spaces
    trimmed, then a Java floating literal (decimal or hexadecimal, an
    optional ``f``/``d`` suffix), ``NaN`` or ``Infinity``. Raises
    EvaluationError where Java throws NumberFormatException."""
    trimmed = text.strip(_TRIMMED)
    if _JAVA_DOUBLE.fullmatch(trimmed) is None:
        raise _number_format(text)
    body = trimmed.lstrip("+-")
    negative = trimmed.startswith("-")
    if body == "NaN":
        return math.nan
    if body == "Infinity":
        return -math.inf if negative else math.inf
    if body[-1] in "fFdD":
        body = body[:-1]
    value = float.fromhex(body) if body[:2] in ("0x", "0X") else float(body)
    return -value if negative else value


def java_boolean(text: str) -> bool:
    """``Boolean.valueOf``: ``"true"`` in any case."""
    if len(text) != 4:
        return False
    for char, want in zip(text, "true", strict=True):
        if char != want and char.upper() != want.upper() and char.lower() != want:
            return False
    return True


def double_compare(left: float, right: float) -> int:
    """``Double.compare``."""
    if left < right:
        return -1
    if left > right:
        return 1
    if left == right:
        if left != 0:
            return 0
        sign_left, sign_right = math.copysign(1, left), math.copysign(1, right)
        return 0 if sign_left == sign_right else (-1 if sign_left < 0 else 1)
    left_nan, right_nan = left != left, right != right
    if left_nan and right_nan:
        return 0
    return 1 if left_nan else -1


def _order(left: object, right: object) -> int:
    return int((left > right) - (left < right))  # type: ignore[operator]


def java_compare(left: Value, right: Value) -> int:
    """``ComparisonExpression.__compare(left, right, true)`` for non-null
    values. Raises EvaluationError where Java throws."""
    left_type, right_type = type(left), type(right)
    if left_type is right_type:
        if left_type is float:
            return double_compare(left, right)  # type: ignore[arg-type]
        if left_type is str:
            # String.compareTo orders UTF-16 code units.
            if left == right:
                return 0
            return _order(left.encode("utf-16-be"), right.encode("utf-16-be"))  # type: ignore[union-attr]
        return _order(left, right)
    if left_type is bool:
        if right_type is str:
            # Java casts the Boolean to String here: ClassCastException.
            raise EvaluationError(
                "java.lang.ClassCastException: java.lang.Boolean cannot be cast to java.lang.String"
            )
        return -1
    if left_type is int or left_type is JavaLong:
        if right_type is int or right_type is JavaLong:
            return _order(left, right)
        if right_type is float:
            return double_compare(float(left), right)  # type: ignore[arg-type]
        if right_type is str:
            converted = java_integer(right) if left_type is int else java_long(right)  # type: ignore[arg-type]
            return _order(left, converted)
        return -1
    if left_type is float:
        if right_type is int or right_type is JavaLong:
            return double_compare(left, float(right))  # type: ignore[arg-type]
        if right_type is str:
            return double_compare(left, java_double(right))  # type: ignore[arg-type]
        return -1
    # left is a string, right another class
    text: str = left  # type: ignore[assignment]
    if right_type is bool:
        return _order(java_boolean(text), right)
    if right_type is int:
        return _order(java_integer(text), right)
    if right_type is JavaLong:
        return _order(java_long(text), right)
    if right_type is float:
        return double_compare(java_double(text), right)  # type: ignore[arg-type]
    return -1


# -- compiling --------------------------------------------------------------

_TESTS: Final[dict[str, Callable[[int], bool]]] = {
    "==": lambda order: order == 0,
    ">": lambda order: order > 0,
    ">=": lambda order: order >= 0,
    "<": lambda order: order < 0,
    "<=": lambda order: order <= 0,
}


def compile_tree(node: Node) -> Evaluator:
    """A function of the message properties giving ``node``'s value (True,
    False or None for a condition). The function raises EvaluationError
    where Java's evaluation throws."""
    if isinstance(node, Constant):
        value = node.value
        return lambda properties: value
    if isinstance(node, Property):
        name = node.name
        return lambda properties: properties.get(name)
    if isinstance(node, BooleanCast):
        name = node.operand.name

        def boolean_cast(properties: Properties) -> Value:
            # A property value is a string, never a Boolean: FALSE when set.
            return None if properties.get(name) is None else False

        return boolean_cast
    if isinstance(node, Negate):
        return _negate(compile_tree(node.operand))
    if isinstance(node, Not):
        inner = compile_tree(node.operand)

        def negation(properties: Properties) -> Value:
            value = inner(properties)
            return None if value is None else not value

        return negation
    if isinstance(node, And):
        return _and(tuple(compile_tree(operand) for operand in node.operands))
    if isinstance(node, Or):
        return _or(tuple(compile_tree(operand) for operand in node.operands))
    if isinstance(node, In):
        return _in(node)
    return _compare(node)


def _negate(inner: Evaluator) -> Evaluator:
    def negate(properties: Properties) -> Value:
        value = inner(properties)
        kind = type(value)
        if kind is int or kind is float or kind is JavaLong:
            return -value  # type: ignore[operator]
        return None

    return negate


def _and(operands: tuple[Evaluator, ...]) -> Evaluator:
    def conjunction(properties: Properties) -> Value:
        unknown = False
        for operand in operands:
            value = operand(properties)
            if value is None:
                unknown = True
            elif not value:
                return False
        return None if unknown else True

    return conjunction


def _or(operands: tuple[Evaluator, ...]) -> Evaluator:
    def disjunction(properties: Properties) -> Value:
        unknown = False
        for operand in operands:
            value = operand(properties)
            if value is None:
                unknown = True
            elif value:
                return True
        return None if unknown else False

    return disjunction


def _in(node: In) -> Evaluator:
    name, values, negated = node.operand.name, node.values, node.negated

    def membership(properties: Properties) -> Value:
        value = properties.get(name)
        if value is None or type(value) is not str:
            return None
        return (value in values) is not negated

    return membership


def _compare(node: Compare) -> Evaluator:
    test = _TESTS[node.op]
    if node.op == "==":
        return _equal(compile_tree(node.left), compile_tree(node.right))
    left, right = node.left, node.right
    if isinstance(left, Property) and isinstance(right, Constant) and type(right.value) is int:
        return _property_vs_int(left.name, right.value, test)
    left_eval, right_eval = compile_tree(left), compile_tree(right)

    def ordering(properties: Properties) -> Value:
        lv = left_eval(properties)
        if lv is None:
            return None
        rv = right_eval(properties)
        if rv is None:
            return None
        if type(lv) is str and type(rv) is str:
            return test(double_compare(java_double(lv), java_double(rv)))
        return test(java_compare(lv, rv))

    return ordering


def _property_vs_int(name: str, number: int, test: Callable[[int], bool]) -> Evaluator:
    def ordering(properties: Properties) -> Value:
        value = properties.get(name)
        if value is None:
            return None
        if type(value) is not str:
            return test(java_compare(value, number))
        if value.isascii() and value.isdigit():
            converted = int(value)
            if converted > _INT_MAX:
                raise _number_format(value)
        else:
            converted = java_integer(value)
        return test((converted > number) - (converted < number))

    return ordering


def _equal(left_eval: Evaluator, right_eval: Evaluator) -> Evaluator:
    def equality(properties: Properties) -> Value:
        lv = left_eval(properties)
        rv = right_eval(properties)
        if lv is None:
            return True if rv is None else None
        if rv is None:
            return False
        if type(lv) is str and type(rv) is str:
            return lv == rv
        return java_compare(lv, rv) == 0

    return equality


__all__ = [
    "Evaluator",
    "Properties",
    "compile_tree",
    "double_compare",
    "java_boolean",
    "java_compare",
    "java_double",
    "java_integer",
    "java_long",
]
