"""A recursive-descent parser for SQL92 selectors with the grammar of Java
4.7.0's ``SelectorParser.jj``, and the checks its actions make.

Precedence, loosest first: OR; AND; ``=``, ``<>``, IS [NOT] NULL; ``>``,
``>=``, ``<``, ``<=``, [NOT] BETWEEN, [NOT] IN; unary ``+``, ``-``, NOT;
literals, properties and parentheses. Each level is a left-associative
loop. As in Java, nothing has to follow a complete expression: the parser
reads one token past it (so a lexical error there is still an error) and
ignores the rest.

Java parses without limits (a deep enough expression overflows its stack,
which it reports as an invalid selector). pyrocket refuses selectors longer
than :data:`MAX_LENGTH` characters or nested deeper than :data:`MAX_DEPTH`,
with a SelectorError saying so.
"""

from __future__ import annotations

from typing import Final

from pyrocket.filter.errors import SelectorError
from pyrocket.filter.evaluate import java_compare
from pyrocket.filter.lexer import Kind, Lexer, Token
from pyrocket.filter.nodes import (
    FALSE,
    NULL,
    TRUE,
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
    is_boolean,
    java_double_text,
    java_text,
)

#: Longest selector accepted (characters).
MAX_LENGTH: Final = 16_384
#: Deepest nesting accepted: parentheses, prefix operators and operands of
#: operands (a chain like ``a = b = c`` nests its comparisons) together.
MAX_DEPTH: Final = 64

_INT_MIN: Final = -(2**31)
_INT_MAX: Final = 2**31 - 1
_LONG_MAX: Final = 2**63 - 1
_DOUBLE_MAX: Final = 1.7976931348623157e308
_DOUBLE_MIN: Final = 5e-324
_RUNTIME: Final = "java.lang.RuntimeException"

_ORDERING: Final = {Kind.GT: ">", Kind.GE: ">=", Kind.LT: "<", Kind.LE: "<="}
_COMPARISON_START: Final = frozenset({Kind.NOT, Kind.BETWEEN, Kind.IN, *_ORDERING})
_EQUALITY_START: Final = frozenset({Kind.IS, Kind.EQ, Kind.NE})


def parse(text: str) -> Node:
    """The tree of selector ``text``. Raises SelectorError where Java's
    ``SelectorParser.parse`` throws, and beyond pyrocket's limits."""
    if len(text) > MAX_LENGTH:
        raise SelectorError(
            f"the selector is {len(text)} characters long, more than the {MAX_LENGTH} allowed",
            "pyrocket.SelectorTooLong",
        )
    return _Parser(text).selector()


class _Parser:
    __slots__ = ("_ahead", "_depths", "_lexer", "_nesting")

    def __init__(self, text: str) -> None:
        self._lexer = Lexer(text)
        self._ahead: list[Token] = []
        self._nesting = 0
        # Tree depth of every node built, by identity, to refuse deep trees
        # before anything recurses over them.
        self._depths: dict[int, tuple[Node, int]] = {}

    # -- tokens ---------------------------------------------------------------

    def _peek(self, index: int = 0) -> Token:
        ahead = self._ahead
        while len(ahead) <= index:
            ahead.append(self._lexer.next())
        return ahead[index]

    def _take(self, kind: Kind) -> Token:
        token = self._peek()
        if token.kind is not kind:
            raise self._unexpected(token, kind.value)
        self._ahead.pop(0)
        return token

    def _unexpected(self, token: Token, expected: str) -> SelectorError:
        image = token.kind.value if token.kind is Kind.EOF else f'"{token.image}"'
        return SelectorError(
            f"Encountered {image} at column {token.position + 1}. Was expecting: {expected}"
        )

    # -- tree building --------------------------------------------------------

    def _built(self, node: Node, *children: Node) -> Node:
        depths = self._depths
        depth = 1 + max((depths[id(child)][1] if id(child) in depths else 0) for child in children)
        if depth > MAX_DEPTH:
            raise SelectorError(
                f"the selector nests deeper than the {MAX_DEPTH} levels allowed",
                "pyrocket.SelectorTooDeep",
            )
        depths[id(node)] = (node, depth)
        return node

    def _enter(self) -> None:
        self._nesting += 1
        if self._nesting > MAX_DEPTH:
            raise SelectorError(
                f"the selector nests deeper than the {MAX_DEPTH} levels allowed",
                "pyrocket.SelectorTooDeep",
            )

    @staticmethod
    def _as_boolean(node: Node) -> Node:
        if is_boolean(node):
            return node
        if isinstance(node, Property):
            return BooleanCast(node)
        raise SelectorError(f"Expression will not result in a boolean value: {java_text(node)}")

    def _logic(self, cls: type[And] | type[Or], operands: list[Node]) -> Node:
        # Java pairs each operand with the ones before it, left to right;
        # evaluating the flat list in order decides the same way.
        booleans = tuple(self._as_boolean(operand) for operand in operands)
        return self._built(cls(booleans), *booleans)

    # -- grammar --------------------------------------------------------------

    def selector(self) -> Node:
        return self._as_boolean(self._or())

    def _or(self) -> Node:
        operands = [self._and()]
        while self._peek().kind is Kind.OR:
            self._take(Kind.OR)
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else self._logic(Or, operands)

    def _and(self) -> Node:
        operands = [self._equality()]
        while self._peek().kind is Kind.AND:
            self._take(Kind.AND)
            operands.append(self._equality())
        return operands[0] if len(operands) == 1 else self._logic(And, operands)

    def _equality(self) -> Node:
        left = self._comparison()
        while (kind := self._peek().kind) in _EQUALITY_START:
            if kind is Kind.EQ:
                self._take(Kind.EQ)
                left = self._equal(left, self._comparison())
            elif kind is Kind.NE:
                self._take(Kind.NE)
                equal = self._equal(left, self._comparison())
                left = self._built(Not(equal), equal)
            elif self._peek(1).kind is Kind.NULL:
                self._take(Kind.IS)
                self._take(Kind.NULL)
                left = self._built(Compare("==", left, NULL), left)
            else:
                self._take(Kind.IS)
                self._take(Kind.NOT)
                self._take(Kind.NULL)
                equal = self._built(Compare("==", left, NULL), left)
                left = self._built(Not(equal), equal)
        return left

    def _equal(self, left: Node, right: Node) -> Node:
        for operand in (left, right):
            if isinstance(operand, Constant) and operand.value is None:
                raise SelectorError(f"'{java_text(operand)}' cannot be compared.", _RUNTIME)
        if (
            isinstance(left, Constant)
            and isinstance(right, Constant)
            and is_boolean(left)
            and not is_boolean(right)
        ):
            raise SelectorError(
                f"'{java_text(left)}' cannot be compared with '{java_text(right)}'", _RUNTIME
            )
        return self._built(Compare("==", left, right), left, right)

    def _ordering(self, op: str, left: Node, right: Node) -> Node:
        for operand in (left, right):
            if isinstance(operand, Constant):
                value = operand.value
                if isinstance(value, (int, float)) and type(value) is not bool:
                    continue
                raise SelectorError(f"Value '{java_text(operand)}' cannot be compared.", _RUNTIME)
            if is_boolean(operand):
                raise SelectorError(f"Value '{java_text(operand)}' cannot be compared.", _RUNTIME)
        return self._built(Compare(op, left, right), left, right)

    def _comparison(self) -> Node:
        left = self._unary()
        while (kind := self._peek().kind) in _COMPARISON_START:
            op = _ORDERING.get(kind)
            if op is not None:
                self._take(kind)
                left = self._ordering(op, left, self._unary())
            elif kind is Kind.BETWEEN:
                self._take(Kind.BETWEEN)
                left = self._between(left, negated=False)
            elif kind is Kind.IN:
                self._take(Kind.IN)
                left = self._in(left, negated=False)
            else:
                following = self._peek(1)
                if following.kind is Kind.BETWEEN:
                    self._take(Kind.NOT)
                    self._take(Kind.BETWEEN)
                    left = self._between(left, negated=True)
                elif following.kind is Kind.IN:
                    self._take(Kind.NOT)
                    self._take(Kind.IN)
                    left = self._in(left, negated=True)
                else:
                    raise self._unexpected(following, '"BETWEEN" or "IN"')
        return left

    def _between(self, value: Node, *, negated: bool) -> Node:
        low = self._unary()
        self._take(Kind.AND)
        high = self._unary()
        if negated:
            return self._logic(
                Or, [self._ordering("<", value, low), self._ordering(">", value, high)]
            )
        if isinstance(low, Constant) and isinstance(high, Constant):
            if low.value is None or high.value is None:
                raise SelectorError("Illegal values of between, values can not be null!", _RUNTIME)
            try:
                order = java_compare(high.value, low.value)
            except Exception as exc:
                raise SelectorError(str(exc), _RUNTIME) from exc
            if order < 0:
                raise SelectorError(
                    f"Illegal values of between, left value({_format(low.value)}) must less "
                    f"than or equal to right value({_format(high.value)})",
                    _RUNTIME,
                )
        return self._logic(
            And, [self._ordering(">=", value, low), self._ordering("<=", value, high)]
        )

    def _in(self, value: Node, *, negated: bool) -> Node:
        self._take(Kind.LPAREN)
        items = [self._string()]
        while self._peek().kind is Kind.COMMA:
            self._take(Kind.COMMA)
            items.append(self._string())
        self._take(Kind.RPAREN)
        if not isinstance(value, Property):
            raise SelectorError(
                f"Expected a property for In expression, got: {java_text(value)}", _RUNTIME
            )
        return self._built(In(value, frozenset(items), negated), value)

    def _unary(self) -> Node:
        kind = self._peek().kind
        if kind not in (Kind.PLUS, Kind.MINUS, Kind.NOT):
            return self._primary()
        self._enter()
        try:
            self._take(kind)
            operand = self._unary()
            if kind is Kind.PLUS:
                return operand
            if kind is Kind.MINUS:
                return self._built(Negate(operand), operand)
            boolean = self._as_boolean(operand)
            return self._built(Not(boolean), boolean)
        finally:
            self._nesting -= 1

    def _primary(self) -> Node:
        token = self._peek()
        kind = token.kind
        if kind is Kind.LPAREN:
            self._enter()
            try:
                self._take(Kind.LPAREN)
                inner = self._or()
                self._take(Kind.RPAREN)
                return inner
            finally:
                self._nesting -= 1
        if kind is Kind.ID:
            self._take(Kind.ID)
            return Property(token.image)
        if kind is Kind.STRING:
            return Constant(self._string())
        if kind is Kind.DECIMAL:
            self._take(Kind.DECIMAL)
            return Constant(_decimal(token.image))
        if kind is Kind.FLOAT:
            self._take(Kind.FLOAT)
            return Constant(_floating(token.image))
        if kind is Kind.TRUE:
            self._take(Kind.TRUE)
            return TRUE
        if kind is Kind.FALSE:
            self._take(Kind.FALSE)
            return FALSE
        if kind is Kind.NULL:
            self._take(Kind.NULL)
            return NULL
        raise self._unexpected(token, "a literal, a property or (")

    def _string(self) -> str:
        image = self._take(Kind.STRING).image
        return image[1:-1].replace("''", "'")


def _decimal(image: str) -> int:
    digits = image[:-1] if image[-1] in "lL" else image
    value = int(digits)
    if value > _LONG_MAX:
        raise SelectorError(f'For input string: "{digits}"', "java.lang.NumberFormatException")
    return value if _INT_MIN <= value <= _INT_MAX else JavaLong(value)


def _floating(image: str) -> float:
    value = float(image)
    if value > _DOUBLE_MAX:
        raise SelectorError(f"{image} is greater than {_DOUBLE_MAX!r}", _RUNTIME)
    if value < _DOUBLE_MIN:
        raise SelectorError(f"{image} is less than 4.9E-324", _RUNTIME)
    return value


def _format(value: object) -> str:
    if isinstance(value, float):
        return java_double_text(value)
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


__all__ = ["MAX_DEPTH", "MAX_LENGTH", "parse"]
