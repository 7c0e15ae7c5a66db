"""SQL92 selectors against the semantics of Java 4.7.0's filter module, case
by case: what parses, what is refused, and what each expression gives for
string-valued message properties (True, False, None for unknown, or an
evaluation Java aborts)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrocket.filter import (
    MAX_DEPTH,
    MAX_LENGTH,
    EvaluationError,
    SelectorError,
    compile_selector,
    parse,
)
from pyrocket.filter.evaluate import double_compare, java_double, java_integer
from pyrocket.filter.nodes import And, Compare, JavaLong, Or, Property

ERROR = "error"

CASES: list[tuple[str, dict[str, str], object]] = [
    # numbers: a property converts to the class of the literal
    ("a > 5", {"a": "7"}, True),
    ("a > 5", {"a": "5"}, False),
    ("a >= 5", {"a": "5"}, True),
    ("a < 5", {"a": "-3"}, True),
    ("a <= 5", {"a": "+5"}, True),
    ("a > 5", {"a": "007"}, True),
    ("a > 5", {"a": "7.5"}, ERROR),  # Integer.valueOf("7.5") throws
    ("a > 5", {"a": "x"}, ERROR),
    ("a > 5", {"a": " 7"}, ERROR),
    ("a > 5", {"a": "3000000000"}, ERROR),  # beyond Integer
    ("a > 3000000000", {"a": "3000000001"}, True),  # a Long literal: Long.valueOf
    ("a > 5.5", {"a": "7"}, True),
    ("a > 5.5", {"a": " 7 "}, True),  # Double.valueOf trims
    ("a > 5.5", {"a": "6e0"}, True),
    ("a > 5.5", {"a": "6d"}, True),
    ("a > 5.5", {"a": "0x1.8p2"}, True),  # 6.0
    ("a > 5.5", {"a": "NaN"}, True),  # Double.compareTo puts NaN on top
    ("a < 5.5", {"a": "-Infinity"}, True),
    ("a > 5.5", {"a": "inf"}, ERROR),
    ("a > 5.5", {"a": "1_0"}, ERROR),
    ("a > 5", {}, None),
    ("a > -5", {"a": "-4"}, True),
    ("a > - -5", {"a": "6"}, True),
    ("-a > 5", {"a": "-7"}, None),  # negating a string gives null
    ("a = 5", {"a": "5"}, True),
    ("a = 5", {"a": "05"}, True),
    ("a = 5", {"a": "five"}, ERROR),
    ("a = 5.0", {"a": "5"}, True),
    ("a = 5.0", {"a": "-0"}, False),
    ("a = 0.5", {"a": ".5"}, True),
    ("a = 1e1", {"a": "10"}, True),
    ("a = 10L", {"a": "10"}, True),
    # two properties: ordered as doubles, equal as strings
    ("a > b", {"a": "10", "b": "9"}, True),
    ("a > b", {"a": "1e1", "b": "9.5"}, True),
    ("a > b", {"a": "x", "b": "9"}, ERROR),
    ("a = b", {"a": "1.0", "b": "1"}, False),
    ("a = b", {"a": "x", "b": "x"}, True),
    ("a > b", {"a": "-0", "b": "0"}, False),
    ("a < b", {"a": "-0.0", "b": "0.0"}, True),  # Double.compareTo
    # strings
    ("a = 'x'", {"a": "x"}, True),
    ("a = 'x'", {"a": "X"}, False),
    ("a <> 'x'", {"a": "y"}, True),
    ("a = 'it''s'", {"a": "it's"}, True),
    ("a = ''", {"a": ""}, True),
    # null handling: lv null gives unknown, rv null gives false
    ("a = 'x'", {}, None),
    ("'x' = a", {}, False),
    ("NOT ('x' = a)", {}, True),
    ("a <> 'x'", {}, None),
    ("a IS NULL", {}, True),
    ("a IS NULL", {"a": ""}, False),
    ("a IS NOT NULL", {"a": ""}, True),
    ("a IS NOT NULL", {}, False),
    ("a = b", {}, True),  # both null: Java's lv == rv
    # booleans
    ("TRUE", {}, True),
    ("FALSE", {}, False),
    ("NULL", {}, None),
    ("NOT NULL", {}, None),
    ("a", {"a": "true"}, False),  # a string is never a Boolean
    ("a", {}, None),
    ("NOT a", {"a": "true"}, True),
    ("a = TRUE", {"a": "TRUE"}, True),
    ("a = TRUE", {"a": "yes"}, False),
    ("a = FALSE", {"a": "x"}, True),  # Boolean.valueOf("x") is false
    ("TRUE = a", {"a": "true"}, ERROR),  # Boolean on the left of a String
    ("1 = TRUE", {}, False),  # only a boolean constant on the left is checked
    ("1 <> TRUE", {}, True),
    ("(a > 1) = TRUE", {"a": "2"}, True),
    ("(a > 1) = (b > 1)", {"a": "2", "b": "0"}, False),
    ("(a > 1) = 5", {"a": "2"}, False),
    # three-valued AND / OR / NOT
    ("a > 1 AND b > 1", {"a": "2"}, None),
    ("a > 1 AND b > 1", {"a": "0"}, False),
    ("a > 1 OR b > 1", {"a": "2"}, True),
    ("a > 1 OR b > 1", {"a": "0"}, None),
    ("NOT (a > 1)", {}, None),
    ("NOT (a > 1)", {"a": "0"}, True),
    ("a > 1 AND b > 1", {"a": "0", "b": "x"}, False),  # stops before b
    ("a > 1 AND b > 1", {"a": "2", "b": "x"}, ERROR),
    ("a > 1 OR b > 1", {"a": "2", "b": "x"}, True),
    ("FALSE AND x > 1 OR TRUE", {"x": "q"}, True),  # AND binds tighter
    ("TRUE OR x > 1 AND FALSE", {"x": "q"}, True),
    ("NOT a = 1 AND TRUE", {"a": "1"}, False),
    # BETWEEN, IN
    ("a BETWEEN 1 AND 10", {"a": "10"}, True),
    ("a BETWEEN 1 AND 10", {"a": "11"}, False),
    ("a BETWEEN 1 AND 10", {"a": "1.5"}, ERROR),
    ("a BETWEEN 1 AND 10", {}, None),
    ("a NOT BETWEEN 1 AND 10", {"a": "0"}, True),
    ("a NOT BETWEEN 1 AND 10", {"a": "5"}, False),
    ("a BETWEEN b AND c", {"a": "2", "b": "1", "c": "3"}, True),
    ("a BETWEEN -5 AND -10", {"a": "-7"}, False),  # negations are not constants
    ("a IN ('x', 'y')", {"a": "y"}, True),
    ("a IN ('x', 'y')", {"a": "z"}, False),
    ("a IN ('x')", {}, None),
    ("a NOT IN ('x', 'y')", {"a": "z"}, True),
    ("a NOT IN ('x', 'y')", {}, None),
    ("a in ('1','2','3','4','5','6')", {"a": "6"}, True),
    # keywords ignore case, identifiers keep it
    ("a between 1 and 2 or B is null", {"a": "9"}, True),
    ("A = 1", {"a": "1"}, None),
    ("a = 1 -- a comment\n AND b IS NULL", {"a": "1"}, True),
    ("a = 1 /* a * comment */ AND b IS NULL", {"a": "1"}, True),
    # Java reads one token past the expression and ignores the rest
    ("a = 1 b c d", {"a": "1"}, True),
    ("a = 1 ) ) #", {"a": "1"}, True),
    ("a = 00", {"a": "0"}, True),  # "0" "0": the second is never parsed
    ("a = 0L", {"a": "0"}, True),
    ("a = 1.5L", {"a": "1.5"}, True),
    ("a = 1 -- no line end", {"a": "1"}, True),  # the dashes are minus signs
    ("+a > 1", {"a": "2"}, True),
    ("$x_1 = 'v'", {"$x_1": "v"}, True),
]


@pytest.mark.parametrize(("text", "properties", "expected"), CASES)
def test_evaluation_follows_java(text: str, properties: dict[str, str], expected: object) -> None:
    selector = compile_selector(text)
    if expected == ERROR:
        with pytest.raises(EvaluationError):
            selector.evaluate(properties)
        assert selector.matches(properties) is False
    else:
        assert selector.evaluate(properties) is expected
        assert selector.matches(properties) is (expected is True)


INVALID = [
    "",
    "   ",
    "a = ",
    "a and between 2 and 10",
    " a between 10 and 0",
    "a BETWEEN 'a' AND 'b'",
    "a BETWEEN NULL AND 1",
    "a > 100000000000000000000000",
    "a > 9223372036854775808",
    "a > 0.0",  # Java refuses floats below Double.MIN_VALUE
    "a > 1e400",
    "a > 'x'",
    "a > TRUE",
    "a > b > c",
    "a = NULL",
    "NULL = a",
    "TRUE = 'x'",
    "NOT 5",
    "NOT 'x' = a",  # NOT binds tighter than =
    "5",
    "'x'",
    "-a",
    "a = 1 AND 5",
    "a != 1",
    "a = 1 #",
    "a = 1 NOT x",
    "a = 1 IS x",
    "a IN (1, 2)",
    "a IN ()",
    "'x' IN ('x')",
    "a = 'unterminated",
    "a = 1 'unterminated",
    "(a = 1",
    "a = 1 /* open",
    "a = .",
    "TRUE = 1",
    "a ⩵ 1",
]


@pytest.mark.parametrize("text", INVALID)
def test_java_refuses_these(text: str) -> None:
    with pytest.raises(SelectorError) as caught:
        compile_selector(text)
    assert caught.value.java_text().startswith(("org.apache", "java.lang"))


def test_literals_are_typed_as_java_types_them() -> None:
    tree = parse("a = 2147483647 AND b = 2147483648 AND c = 5L AND d = 1.5")
    assert isinstance(tree, And)
    values = [op.right.value for op in tree.operands if isinstance(op, Compare)]
    assert type(values[0]) is int and type(values[1]) is JavaLong and type(values[2]) is int
    assert type(values[3]) is float


def test_and_or_chains_stay_flat_and_keep_precedence() -> None:
    tree = parse("a = 1 AND b = 1 AND c = 1 OR d = 1 OR e = 1")
    assert isinstance(tree, Or) and len(tree.operands) == 3
    assert isinstance(tree.operands[0], And) and len(tree.operands[0].operands) == 3
    long_chain = " AND ".join(f"p{i} = 1" for i in range(1000))
    selector = compile_selector(long_chain)
    assert selector.matches({f"p{i}": "1" for i in range(1000)})
    assert not selector.matches({f"p{i}": "1" for i in range(999)} | {"p999": "2"})


def test_identifiers_and_properties() -> None:
    assert parse("ab_c$1") == parse("ab_c$1")
    tree = parse("x")
    assert tree.operand == Property("x")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        "(" * (MAX_DEPTH + 1) + "a = 1" + ")" * (MAX_DEPTH + 1),
        "NOT " * (MAX_DEPTH + 1) + "a = 1",
        "- " * (MAX_DEPTH + 1) + "a > 1",
        "a = 1" + " = 1" * (MAX_DEPTH + 1),
        "a IS NULL" + " IS NULL" * (MAX_DEPTH + 1),
        "(" * 10_000,
    ],
)
def test_deep_selectors_are_refused_clearly(text: str) -> None:
    with pytest.raises(SelectorError, match="nests deeper"):
        parse(text)


def test_long_selectors_are_refused_clearly() -> None:
    with pytest.raises(SelectorError, match="characters long"):
        compile_selector("a = 1 OR " * (MAX_LENGTH // 9) + "a = 1")
    within = "(" * (MAX_DEPTH - 1) + "a = 1" + ")" * (MAX_DEPTH - 1)
    assert compile_selector(within).matches({"a": "1"})


def test_java_number_conversions() -> None:
    assert java_integer("-2147483648") == -(2**31)
    assert java_integer("٣") == 3  # Character.digit takes any decimal digit
    for bad in ("", "+", "-", "1 ", "2147483648", "1.0", "1_0", "0x1"):
        with pytest.raises(EvaluationError):
            java_integer(bad)
    assert java_double("1.") == 1.0
    assert java_double("\t-.5e1f ") == -5.0
    assert java_double("-0x10p0") == -16.0
    for bad in ("", ".", "e5", "1e", "nan", "Inf", "1.5x", "٣"):
        with pytest.raises(EvaluationError):
            java_double(bad)
    assert double_compare(-0.0, 0.0) == -1
    assert double_compare(float("nan"), float("inf")) == 1
    assert double_compare(float("nan"), float("nan")) == 0


FRAGMENTS = [
    "a", "b", "=", "<>", ">", ">=", "<", "<=", "(", ")", ",", "+", "-", "NOT", "AND", "OR",
    "BETWEEN", "IN", "IS", "NULL", "TRUE", "FALSE", "'x'", "''", "'", "1", "2147483648", "1.5",
    ".5", "1e3", "0.0", "5L", "--", "\n", "/*", "*/", "#", " ",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(" ".join) | st.text(max_size=60),
    st.dictionaries(st.sampled_from(["a", "b"]), st.text(max_size=8)),
)
def test_any_text_is_a_selector_or_a_selector_error(text: str, properties: dict[str, str]) -> None:
    try:
        selector = compile_selector(text)
    except SelectorError as exc:
        assert exc.java_text()
        return
    try:
        result = selector.evaluate(properties)
    except EvaluationError:
        assert selector.matches(properties) is False
        return
    assert result in (True, False, None)
    assert selector.matches(properties) is (result is True)
