"""A bounded parser/evaluator for CountDown answers: ``+ - * /``, parentheses and integer literals.

Contract
--------
:func:`parse_expression` turns a string into a :class:`ParsedExpression` (the integer literals in order and
the exact value as a :class:`fractions.Fraction`) or raises :class:`ExpressionError`. It never calls
``eval``/``exec`` and its cost is bounded on any input:

- the string is rejected before tokenising if longer than ``MAX_CHARS``;
- at most ``MAX_TOKENS`` tokens, at most ``MAX_DEPTH`` nested parentheses / unary signs, at most
  ``MAX_LITERAL_DIGITS`` digits per literal;
- every intermediate numerator and denominator must fit in ``MAX_BITS`` bits;
- the evaluator is iterative (shunting-yard), so nesting never reaches Python's recursion limit.

Grammar (Python's, restricted to what the CountDown prompt allows)::

    expr   := term (("+" | "-") term)*
    term   := factor (("*" | "/") factor)*
    factor := ("+" | "-") factor | NUMBER | "(" expr ")"
    NUMBER := ASCII digits, no leading zero unless all zeros (Python 3 rejects "05")

Whitespace is space, tab and form feed anywhere, and carriage return inside parentheses — exactly what
Python's ``eval`` accepts on one line. Anything else (``**``, ``//``, ``.``, letters, unicode digits such as
``'١٢'``, control characters, implicit multiplication ``2(3)``) is an error. Division by zero is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

MAX_CHARS = 10_000
MAX_TOKENS = 1_000
MAX_DEPTH = 200  # Python's own parser refuses more than 200 nested parentheses
MAX_LITERAL_DIGITS = 64
MAX_BITS = 4_096

_WS = frozenset(" \t\f")
_DIGITS = frozenset("0123456789")
_BINARY_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_UNARY_PRECEDENCE = 3  # binds tighter than * and / (as in Python); right-associative


class ExpressionError(ValueError):
    """The text is not a well-formed, bounded ``+ - * /`` expression (or it divides by zero)."""


@dataclass(frozen=True)
class ParsedExpression:
    """An expression's integer literals (in order of appearance) and its exact value."""

    literals: tuple[int, ...]
    value: Fraction


def tokenize(text: str) -> list[str | int]:
    """Split ``text`` into ints and the one-character tokens ``+ - * / ( )``; raise on anything else."""
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"expression longer than {MAX_CHARS} characters")
    tokens: list[str | int] = []
    depth = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _WS or (ch == "\r" and depth > 0):
            i += 1
            continue
        if ch in _DIGITS:
            j = i + 1
            while j < n and text[j] in _DIGITS:
                j += 1
            literal = text[i:j]
            if j - i > MAX_LITERAL_DIGITS:
                raise ExpressionError(f"integer literal longer than {MAX_LITERAL_DIGITS} digits")
            if len(literal) > 1 and literal[0] == "0" and literal.strip("0"):
                raise ExpressionError(f"leading zero in integer literal {literal!r}")
            tokens.append(int(literal))
            i = j
        elif ch in "+-*/()":
            if ch in "*/" and i + 1 < n and text[i + 1] == ch:
                raise ExpressionError(f"operator {ch * 2!r} is not allowed")
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth = max(0, depth - 1)
            tokens.append(ch)
            i += 1
        else:
            raise ExpressionError(f"character {ch!r} at position {i} is not allowed")
        if len(tokens) > MAX_TOKENS:
            raise ExpressionError(f"more than {MAX_TOKENS} tokens")
    return tokens


def _check_size(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > MAX_BITS or value.denominator.bit_length() > MAX_BITS:
        raise ExpressionError(f"intermediate value exceeds {MAX_BITS} bits")
    return value


def _apply(op: str, values: list[Fraction]) -> None:
    if op == "u-":
        values[-1] = -values[-1]
        return
    if op == "u+":
        return
    if len(values) < 2:  # pragma: no cover - guarded by the parser's state machine
        raise ExpressionError("missing operand")
    right = values.pop()
    left = values.pop()
    if op == "+":
        result = left + right
    elif op == "-":
        result = left - right
    elif op == "*":
        result = left * right
    else:
        if right == 0:
            raise ExpressionError("division by zero")
        result = left / right
    values.append(_check_size(result))


def evaluate_tokens(tokens: list[str | int]) -> Fraction:
    """Evaluate a token list with the shunting-yard algorithm (iterative; bounded depth)."""
    values: list[Fraction] = []
    ops: list[str] = []
    expect_operand = True
    depth = 0
    for tok in tokens:
        if expect_operand:
            if isinstance(tok, int):
                values.append(_check_size(Fraction(tok)))
                expect_operand = False
            elif tok == "(":
                ops.append("(")
                depth += 1
            elif tok in ("+", "-"):
                ops.append("u" + tok)
                depth += 1
            else:
                raise ExpressionError(f"expected a number or '(' but found {tok!r}")
            if depth > MAX_DEPTH:
                raise ExpressionError(f"nesting deeper than {MAX_DEPTH}")
            continue
        # expecting an operator or ')'
        if tok == ")":
            while ops and ops[-1] != "(":
                op = ops.pop()
                if op.startswith("u"):
                    depth -= 1
                _apply(op, values)
            if not ops:
                raise ExpressionError("unbalanced ')'")
            ops.pop()
            depth -= 1
        elif isinstance(tok, str) and tok in _BINARY_PRECEDENCE:
            prec = _BINARY_PRECEDENCE[tok]
            while ops and ops[-1] != "(":
                top = ops[-1]
                top_prec = _UNARY_PRECEDENCE if top.startswith("u") else _BINARY_PRECEDENCE[top]
                if top_prec < prec:
                    break
                ops.pop()
                if top.startswith("u"):
                    depth -= 1
                _apply(top, values)
            ops.append(tok)
            expect_operand = True
        else:
            raise ExpressionError(f"expected an operator or ')' but found {tok!r}")
    if expect_operand:
        raise ExpressionError("expression is empty or ends with an operator")
    while ops:
        op = ops.pop()
        if op == "(":
            raise ExpressionError("unbalanced '('")
        _apply(op, values)
    if len(values) != 1:  # pragma: no cover - guarded by the state machine
        raise ExpressionError("malformed expression")
    return values[0]


def parse_expression(text: str) -> ParsedExpression:
    """Tokenise and evaluate ``text``; raise :class:`ExpressionError` if it is not a valid bounded expression."""
    tokens = tokenize(text)
    literals = tuple(t for t in tokens if isinstance(t, int))
    return ParsedExpression(literals=literals, value=evaluate_tokens(tokens))
