"""Parse expression text into a tree of :mod:`._nodes` (a Pratt parser).

Precedence, lowest first: ``or``/``||``; ``and``/``&&``; prefix ``not``/``!``;
comparisons ``== != > < >= <= contains matches in``, ``not in`` and
``x between lo and hi`` (non-associative: ``a < b < c`` is an error); ``+ -``;
``* / %``; unary ``-``; postfix ``.name``, ``.0``, ``[expr]``; calls ``f(a, b)``
(named functions only, checked against the registry for name and arity).

Chains of ``and``/``or`` and of path segments are flattened, so the tree stays
shallow; parser recursion and tree depth are both capped at :data:`MAX_DEPTH`,
so hostile input gets a :class:`~pipelines.errors.ConditionError`, never a
``RecursionError``. Every syntax error carries the expression and the 0-based
column of the offending token. :func:`parse` is cached: conditions repeat.
"""

from __future__ import annotations

import functools
from typing import Any

from pipelines.errors import ConditionError
from pipelines.expressions._lexer import Kind, Token, tokenize
from pipelines.expressions._nodes import (
    ADD,
    AND,
    CMP,
    MUL,
    NEG,
    NOT,
    OR,
    POSTFIX,
    Between,
    Binary,
    BoolOp,
    Call,
    Const,
    Expr,
    Index,
    Key,
    ListExpr,
    Name,
    Path,
    Segment,
    Unary,
    children,
    tree_depth,
)
from pipelines.expressions.functions import check_call

__all__ = ["MAX_DEPTH", "parse", "references"]

MAX_DEPTH = 64
"""Deepest nesting accepted (parentheses, operands, calls, lists)."""

_COMPARISONS = frozenset({"==", "!=", ">", "<", ">=", "<=", "contains", "matches", "in"})
_INFIX_BP = {
    "or": OR,
    "and": AND,
    **dict.fromkeys(_COMPARISONS, CMP),
    "between": CMP,
    "+": ADD,
    "-": ADD,
    "*": MUL,
    "/": MUL,
    "%": MUL,
    ".": POSTFIX,
    "[": POSTFIX,
    "(": POSTFIX,
}
_CALLABLE_KEYWORDS = frozenset({"contains", "matches", "between", "in"})
_CONSTANTS: dict[str, Any] = {
    "true": True,
    "True": True,
    "false": False,
    "False": False,
    "null": None,
    "None": None,
    "nil": None,
}


def parse(text: str) -> Expr:
    """Parse ``text``; raise :class:`ConditionError` with the column on a syntax error."""
    checked: object = text  # YAML may hand over a number or a map; say so plainly.
    if not isinstance(checked, str):
        raise ConditionError(f"an expression must be a string, got {type(checked).__name__}")
    return _parse_cached(checked)


@functools.lru_cache(maxsize=2048)
def _parse_cached(text: str) -> Expr:
    tokens = tokenize(text)
    if tokens[0].kind is Kind.EOF:
        raise ConditionError("empty expression", expression=text, position=0)
    parser = _Parser(text, tokens)
    expr = parser.expression(0)
    end = parser.peek()
    if end.kind is not Kind.EOF:
        raise parser.error(f"unexpected {_describe(end)}", end)
    if tree_depth(expr) > MAX_DEPTH:
        raise ConditionError(
            f"expression nested too deeply (more than {MAX_DEPTH} levels)",
            expression=text,
            position=0,
        )
    return expr


def _describe(tok: Token) -> str:
    return "end of expression" if tok.kind is Kind.EOF else repr(tok.text)


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind is not Kind.EOF:
            self.i += 1
        return tok

    def error(self, message: str, tok: Token) -> ConditionError:
        return ConditionError(message, expression=self.text, position=tok.pos)

    def expect(self, text: str) -> Token:
        tok = self.peek()
        if tok.text != text or tok.kind not in (Kind.OP, Kind.KEYWORD):
            raise self.error(f"expected {text!r}, found {_describe(tok)}", tok)
        return self.advance()

    def infix_bp(self, tok: Token) -> int:
        if tok.kind is Kind.OP or tok.kind is Kind.KEYWORD:
            if tok.text == "not":
                nxt = self.peek(1)
                return CMP if nxt.kind is Kind.KEYWORD and nxt.text == "in" else 0
            return _INFIX_BP.get(tok.text, 0)
        return 0

    def expression(self, rbp: int) -> Expr:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.error(
                    f"expression nested too deeply (more than {MAX_DEPTH} levels)", self.peek()
                )
            left = self.prefix()
            while True:
                tok = self.peek()
                lbp = self.infix_bp(tok)
                if lbp <= rbp:
                    return left
                left = self.infix(left, self.advance(), lbp)
        finally:
            self.depth -= 1

    def prefix(self) -> Expr:
        tok = self.advance()
        if tok.kind is Kind.NUMBER or tok.kind is Kind.STRING:
            return Const(tok.value)
        if tok.kind is Kind.NAME or (tok.text in _CALLABLE_KEYWORDS and self.peek().text == "("):
            # Keywords such as ``contains`` double as function names: ``contains(a, b)``.
            if self.peek().text == "(" and self.peek().kind is Kind.OP:
                return self.call(tok)
            return Name(tok.text)
        if tok.kind is Kind.KEYWORD:
            if tok.text in _CONSTANTS:
                return Const(_CONSTANTS[tok.text])
            if tok.text == "not":
                return Unary("not", self.expression(NOT))
        elif tok.kind is Kind.OP:
            if tok.text == "-":
                return Unary("-", self.expression(NEG))
            if tok.text == "(":
                inner = self.expression(0)
                self.expect(")")
                return inner
            if tok.text == "[":
                return ListExpr(self.sequence("]"))
        raise self.error(f"unexpected {_describe(tok)}", tok)

    def sequence(self, close: str) -> tuple[Expr, ...]:
        items: list[Expr] = []
        while not (self.peek().kind is Kind.OP and self.peek().text == close):
            items.append(self.expression(0))
            if self.peek().text == "," and self.peek().kind is Kind.OP:
                self.advance()
            elif not (self.peek().kind is Kind.OP and self.peek().text == close):
                raise self.error(
                    f"expected ',' or {close!r}, found {_describe(self.peek())}", self.peek()
                )
        self.advance()
        return tuple(items)

    def call(self, name: Token) -> Expr:
        self.advance()  # the "("
        args = self.sequence(")")
        problem = check_call(name.text, len(args))
        if problem:
            raise self.error(problem, name)
        return Call(name.text, args)

    def infix(self, left: Expr, tok: Token, lbp: int) -> Expr:
        op = tok.text
        if op in ("or", "and"):
            right = self.expression(lbp)
            if isinstance(left, BoolOp) and left.op == op:
                return BoolOp(op, (*left.operands, right))
            return BoolOp(op, (left, right))
        if lbp == CMP:
            return self.comparison(left, tok)
        if op in ("+", "-", "*", "/", "%"):
            return Binary(op, left, self.expression(lbp))
        if op == ".":
            seg_tok = self.advance()
            if seg_tok.kind not in (Kind.NAME, Kind.KEYWORD, Kind.NUMBER):
                raise self.error(f"expected a name after '.', found {_describe(seg_tok)}", seg_tok)
            return _extend(left, Key(seg_tok.text))
        if op == "[":
            index = self.expression(0)
            self.expect("]")
            return _extend(left, Index(index))
        # op == "(": a call on something that is not a plain function name.
        raise self.error("only named functions can be called", tok)

    def comparison(self, left: Expr, tok: Token) -> Expr:
        op = tok.text
        if op == "not":
            self.advance()  # the "in"
            op = "not in"
        if op == "between":
            low = self.expression(CMP)
            self.expect("and")
            result: Expr = Between(left, low, self.expression(CMP))
        else:
            result = Binary(op, left, self.expression(CMP))
        nxt = self.peek()
        if self.infix_bp(nxt) == CMP:
            raise self.error(
                f"comparisons cannot be chained; combine them with 'and' before {nxt.text!r}", nxt
            )
        return result


def _extend(left: Expr, segment: Segment) -> Path:
    if isinstance(left, Path):
        return Path(left.base, (*left.segments, segment))
    return Path(left, (segment,))


def references(expr: Expr | str) -> set[tuple[str, ...]]:
    """The leading identifier paths ``expr`` reads, e.g. ``{("steps", "a", "findings")}``.

    A path stops at its first segment that is not a name or a string literal
    (``a.items[0].x`` gives ``("a", "items")``); a numeric ``.0`` stops it too.
    """
    tree = parse(expr) if isinstance(expr, str) else expr
    found: set[tuple[str, ...]] = set()
    stack: list[Expr] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Name):
            found.add((node.name,))
            continue
        if isinstance(node, Path) and isinstance(node.base, Name):
            found.add((node.base.name, *_static_prefix(node.segments)))
            stack.extend(s.expr for s in node.segments if isinstance(s, Index))
            continue
        stack.extend(children(node))
    return found


def _static_prefix(segments: tuple[Segment, ...]) -> list[str]:
    keys: list[str] = []
    for seg in segments:
        if isinstance(seg, Key) and not seg.name.isdigit():
            keys.append(seg.name)
        elif isinstance(seg, Index) and isinstance(seg.expr, Const) and type(seg.expr.value) is str:
            keys.append(seg.expr.value)
        else:
            break
    return keys
