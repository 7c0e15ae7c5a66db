"""Random selectors against a reference model written apart from
pyrocket.filter: the test draws a tree of its own, renders it as text,
and evaluates the tree directly over tagged values, with the property
conversions tabulated by hand, while pyrocket parses the text and runs its
compiled closures. Both must agree on every property map: TRUE, FALSE,
unknown, or an evaluation Java aborts; and on which selectors Java refuses
at parse time."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pyrocket.filter import EvaluationError, SelectorError, compile_selector

NAMES = ["a", "b", "c"]

#: Property text -> (Integer.valueOf, Long.valueOf, Double.valueOf,
#: Boolean.valueOf); None where Java throws NumberFormatException.
POOL: dict[str, tuple[int | None, int | None, float | None, bool]] = {
    "0": (0, 0, 0.0, False),
    "7": (7, 7, 7.0, False),
    "-3": (-3, -3, -3.0, False),
    "+5": (5, 5, 5.0, False),
    "007": (7, 7, 7.0, False),
    "10": (10, 10, 10.0, False),
    "2147483648": (None, 2147483648, 2147483648.0, False),
    "3000000000": (None, 3000000000, 3000000000.0, False),
    "99999999999999999999": (None, None, 1e20, False),
    "1.5": (None, None, 1.5, False),
    "-0.0": (None, None, -0.0, False),
    " 7": (None, None, 7.0, False),
    "1e3": (None, None, 1000.0, False),
    "NaN": (None, None, math.nan, False),
    "x": (None, None, None, False),
    "": (None, None, None, False),
    "true": (None, None, None, True),
    "TRUE": (None, None, None, True),
    "it's": (None, None, None, False),
}


class Abort(Exception):
    """Java's evaluation throws."""


# -- drawing trees ------------------------------------------------------------

LITERALS = [
    ("int", 0, "0"),
    ("int", 5, "5"),
    ("int", 7, "7"),
    ("int", 10, "10"),
    ("long", 3000000000, "3000000000"),
    ("long", 2147483648, "2147483648"),
    ("double", 1.5, "1.5"),
    ("double", 7.0, "7.0"),
    ("double", 2.5, "25e-1"),
    ("double", 1000.0, ".1E4"),
]
STRINGS = ["x", "7", "it's", "", "true"]

props = st.sampled_from(NAMES).map(lambda name: ("prop", name))
numbers = st.sampled_from(LITERALS).map(lambda lit: ("lit", *lit))
strings = st.sampled_from(STRINGS).map(lambda text: ("lit", "str", text, None))
numeric = st.one_of(props, numbers, st.tuples(st.just("neg"), st.one_of(props, numbers)))
constants = st.sampled_from([True, False, None]).map(lambda value: ("const", value))


def _conditions(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    operand = st.one_of(numeric, strings, inner, constants.filter(lambda c: c[1] is not None))
    return st.one_of(
        st.tuples(st.just("not"), inner),
        st.tuples(st.just("and"), inner, inner),
        st.tuples(st.just("or"), inner, inner),
        st.tuples(st.just("cmp"), st.sampled_from([">", ">=", "<", "<="]), numeric, numeric),
        st.tuples(st.just("cmp"), st.sampled_from(["=", "<>"]), operand, operand),
        st.tuples(st.just("between"), numeric, numeric, numeric, st.booleans()),
        st.tuples(
            st.just("in"),
            props,
            st.lists(st.sampled_from(STRINGS), min_size=1, max_size=6),
            st.booleans(),
        ),
        st.tuples(st.just("isnull"), st.one_of(numeric, strings, inner), st.booleans()),
    )


conditions = st.recursive(
    st.one_of(constants, props.map(lambda p: ("cast", p))), _conditions, max_leaves=12
)
property_maps = st.dictionaries(st.sampled_from(NAMES), st.sampled_from(sorted(POOL)))


def render(node: Any) -> str:
    kind = node[0]
    if kind == "prop":
        return node[1]
    if kind == "lit":
        if node[1] == "str":
            return "'" + node[2].replace("'", "''") + "'"
        return node[3]
    if kind == "const":
        return {True: "TRUE", False: "FALSE", None: "NULL"}[node[1]]
    if kind == "cast":
        return render(node[1])
    if kind == "neg":
        return f"-{render(node[1])}"
    if kind == "not":
        return f"NOT ({render(node[1])})"
    if kind in ("and", "or"):
        return f"({render(node[1])}) {kind.upper()} ({render(node[2])})"
    if kind == "cmp":
        return f"({render(node[2])}) {node[1]} ({render(node[3])})"
    if kind == "between":
        word = "NOT BETWEEN" if node[4] else "BETWEEN"
        return f"({render(node[1])}) {word} ({render(node[2])}) AND ({render(node[3])})"
    if kind == "in":
        items = ", ".join("'" + item.replace("'", "''") + "'" for item in node[2])
        return f"{render(node[1])} {'NOT IN' if node[3] else 'IN'} ({items})"
    assert kind == "isnull"
    return f"({render(node[1])}) IS {'NOT ' if node[2] else ''}NULL"


# -- what Java refuses at parse time --------------------------------------------


def _is_bool_constant(node: Any) -> bool:
    return node[0] == "const"


def refused(node: Any) -> bool:
    kind = node[0]
    if kind in ("not", "cast", "in"):
        return kind != "cast" and kind != "in" and refused(node[1])
    if kind in ("and", "or"):
        return refused(node[1]) or refused(node[2])
    if kind == "isnull":
        return refused(node[1])
    if kind == "cmp":
        left, right = node[2], node[3]
        if refused(left) or refused(right):
            return True
        if node[1] in ("=", "<>"):
            if ("const", None) in (left, right):
                return True  # NULL cannot be compared
            # a TRUE / FALSE literal on the left of a non-boolean literal
            return _is_bool_constant(left) and right[0] == "lit"
        return False
    if kind == "between":
        if not node[4] and node[2][0] == "lit" and node[3][0] == "lit":
            low = _reference_value(node[2])
            high = _reference_value(node[3])
            return java_compare(high, low) < 0
        return False
    return False


# -- the reference evaluator ------------------------------------------------------


def _reference_value(node: Any) -> tuple[str, Any]:
    return (node[1], node[2])


def _convert(text: str, kind: str) -> tuple[str, Any]:
    integer, long, double, boolean = POOL[text]
    table = {"int": integer, "long": long, "double": double, "bool": boolean}
    value = table[kind]
    if value is None:
        raise Abort(f"{text!r} is not a {kind}")
    return (kind, value)


def _double_order(x: float, y: float) -> int:
    def key(value: float) -> tuple[int, float]:
        if math.isnan(value):
            return (2, 0.0)
        if value == 0:
            return (1, math.copysign(1, value) * 1e-300)
        return (1, value)

    kx, ky = key(x), key(y)
    return (kx > ky) - (kx < ky)


RANK = {"int": 1, "long": 2, "double": 3}


def java_compare(left: tuple[str, Any], right: tuple[str, Any]) -> int:
    lk, rk = left[0], right[0]
    if lk == "str" and rk != "str":
        left = _convert(left[1], rk)
        lk = rk
    elif rk == "str" and lk != "str":
        if lk == "bool":
            raise Abort("ClassCastException")
        right = _convert(right[1], lk)
        rk = lk
    if lk in RANK and rk in RANK:
        wider = max(lk, rk, key=RANK.__getitem__)
        if wider == "double":
            return _double_order(float(left[1]), float(right[1]))
        return (left[1] > right[1]) - (left[1] < right[1])
    if lk != rk:
        return -1
    if lk == "str":
        return 0 if left[1] == right[1] else 1
    return (left[1] > right[1]) - (left[1] < right[1])


def value(node: Any, properties: dict[str, str]) -> tuple[str, Any] | None:
    kind = node[0]
    if kind == "prop":
        text = properties.get(node[1])
        return None if text is None else ("str", text)
    if kind == "lit":
        return (node[1], node[2])
    if kind == "cast":
        # A bare property is a condition only where a condition is expected.
        return value(node[1], properties)
    if kind == "neg":
        inner = value(node[1], properties)
        if inner is None or inner[0] not in RANK:
            return None
        return (inner[0], -inner[1])
    result = truth(node, properties)
    return None if result is None else ("bool", result)


def ordering(op: str, left: Any, right: Any, properties: dict[str, str]) -> bool | None:
    lv = value(left, properties)
    if lv is None:
        return None
    rv = value(right, properties)
    if rv is None:
        return None
    if lv[0] == "str" and rv[0] == "str":
        lv, rv = _convert(lv[1], "double"), _convert(rv[1], "double")
    order = java_compare(lv, rv)
    return {">": order > 0, ">=": order >= 0, "<": order < 0, "<=": order <= 0}[op]


def equality(left: Any, right: Any, properties: dict[str, str]) -> bool | None:
    lv, rv = value(left, properties), value(right, properties)
    if lv is None and rv is None:
        return True
    if lv is None:
        return None
    if rv is None:
        return False
    return java_compare(lv, rv) == 0


def _not(result: bool | None) -> bool | None:
    return None if result is None else not result


def truth(node: Any, properties: dict[str, str]) -> bool | None:
    kind = node[0]
    if kind == "const":
        return node[1]  # type: ignore[no-any-return]
    if kind == "cast":
        return None if node[1][1] not in properties else False
    if kind == "not":
        return _not(truth(node[1], properties))
    if kind == "and":
        first = truth(node[1], properties)
        if first is False:
            return False
        second = truth(node[2], properties)
        if second is False:
            return False
        return None if None in (first, second) else True
    if kind == "or":
        first = truth(node[1], properties)
        if first is True:
            return True
        second = truth(node[2], properties)
        if second is True:
            return True
        return None if None in (first, second) else False
    if kind == "cmp":
        if node[1] == "=":
            return equality(node[2], node[3], properties)
        if node[1] == "<>":
            return _not(equality(node[2], node[3], properties))
        return ordering(node[1], node[2], node[3], properties)
    if kind == "between":
        subject, low, high, negated = node[1:]
        if negated:
            return truth(
                ("or", ("raw", "<", subject, low), ("raw", ">", subject, high)), properties
            )
        return truth(("and", ("raw", ">=", subject, low), ("raw", "<=", subject, high)), properties)
    if kind == "raw":
        return ordering(node[1], node[2], node[3], properties)
    if kind == "in":
        text = properties.get(node[1][1])
        if text is None:
            return None
        return (text in node[2]) != node[3]
    assert kind == "isnull"
    inner = value(node[1], properties)
    return (inner is None) != node[2]


def expected(node: Any, properties: dict[str, str]) -> object:
    try:
        return truth(node, properties)
    except Abort:
        return "abort"


@settings(max_examples=600, deadline=None)
@given(conditions, st.lists(property_maps, min_size=1, max_size=6))
def test_pyrocket_agrees_with_the_reference(tree: Any, maps: list[dict[str, str]]) -> None:
    text = render(tree)
    if refused(tree):
        try:
            compile_selector(text)
        except SelectorError:
            return
        raise AssertionError(f"{text!r} should be refused")
    selector = compile_selector(text)
    for properties in maps:
        try:
            got: object = selector.evaluate(properties)
        except EvaluationError:
            got = "abort"
        assert got == expected(tree, properties), (text, properties)
