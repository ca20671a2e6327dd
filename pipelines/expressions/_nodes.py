"""The expression tree: frozen dataclass nodes, their precedence and source form.

:mod:`._parser` builds these nodes and :mod:`._evaluator` walks them. Nodes are
immutable and hashable, so parsed trees can be cached and shared. :func:`unparse`
renders a tree back to text with only the parentheses it needs
(``parse(unparse(e)) == e``); error messages use it to show a path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ADD",
    "AND",
    "ATOM",
    "CMP",
    "MUL",
    "NEG",
    "NOT",
    "OR",
    "POSTFIX",
    "Between",
    "Binary",
    "BoolOp",
    "Call",
    "Const",
    "Expr",
    "Index",
    "Key",
    "ListExpr",
    "Name",
    "Path",
    "Segment",
    "Unary",
    "children",
    "tree_depth",
    "unparse",
]

# Binding powers, lowest first; the parser and unparse share them.
OR, AND, NOT, CMP, ADD, MUL, NEG, POSTFIX, ATOM = 10, 20, 30, 40, 50, 60, 70, 80, 90
_BINARY_PRECEDENCE = {"+": ADD, "-": ADD, "*": MUL, "/": MUL, "%": MUL}


@dataclass(frozen=True, slots=True)
class Const:
    """A literal number, string, boolean or null."""

    value: Any


@dataclass(frozen=True, slots=True)
class ListExpr:
    """A list literal ``[a, b]``."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Name:
    """A bare identifier, resolved against the :class:`Scope`."""

    name: str


@dataclass(frozen=True, slots=True)
class Key:
    """A path segment written ``.name`` or ``.0``."""

    name: str


@dataclass(frozen=True, slots=True)
class Index:
    """A path segment written ``[expr]``."""

    expr: Expr


Segment = Key | Index


@dataclass(frozen=True, slots=True)
class Path:
    """``base`` followed by one or more segments: ``a.b[0].c``."""

    base: Expr
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class Call:
    """A call of a registered function."""

    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Unary:
    """``not x`` or ``-x``."""

    op: str
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    """A comparison or arithmetic operator applied to two operands."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``and``/``or`` over two or more operands, short-circuiting."""

    op: str
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Between:
    """``value between low and high``, both bounds inclusive."""

    value: Expr
    low: Expr
    high: Expr


Expr = Const | ListExpr | Name | Path | Call | Unary | Binary | BoolOp | Between


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``expr`` (index expressions included)."""
    if isinstance(expr, ListExpr):
        return expr.items
    if isinstance(expr, Path):
        return (expr.base, *(s.expr for s in expr.segments if isinstance(s, Index)))
    if isinstance(expr, Call):
        return expr.args
    if isinstance(expr, Unary):
        return (expr.operand,)
    if isinstance(expr, Binary):
        return (expr.left, expr.right)
    if isinstance(expr, BoolOp):
        return expr.operands
    if isinstance(expr, Between):
        return (expr.value, expr.low, expr.high)
    return ()


def tree_depth(expr: Expr) -> int:
    """How many levels deep ``expr`` is (a leaf is 1)."""
    # Iterative, so a deep tree cannot overflow the stack while being measured.
    deepest = 0
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children(node))
    return deepest


def _precedence(expr: Expr) -> int:
    if isinstance(expr, BoolOp):
        return OR if expr.op == "or" else AND
    if isinstance(expr, Unary):
        return NOT if expr.op == "not" else NEG
    if isinstance(expr, Between):
        return CMP
    if isinstance(expr, Binary):
        return _BINARY_PRECEDENCE.get(expr.op, CMP)
    if isinstance(expr, Path):
        return POSTFIX
    return ATOM


def _wrap(expr: Expr, minimum: int) -> str:
    text = unparse(expr)
    return f"({text})" if _precedence(expr) < minimum else text


def unparse(expr: Expr) -> str:
    """Render ``expr`` back to source text; ``parse(unparse(e)) == e``."""
    if isinstance(expr, Const):
        return _literal(expr.value)
    if isinstance(expr, Name):
        return expr.name
    if isinstance(expr, ListExpr):
        return "[" + ", ".join(unparse(item) for item in expr.items) + "]"
    if isinstance(expr, Call):
        return expr.func + "(" + ", ".join(unparse(arg) for arg in expr.args) + ")"
    if isinstance(expr, Path):
        base = expr.base
        numeric = isinstance(base, Const) and type(base.value) in (int, float)
        text = f"({unparse(base)})" if numeric else _wrap(base, POSTFIX)
        for seg in expr.segments:
            text += f".{seg.name}" if isinstance(seg, Key) else f"[{unparse(seg.expr)}]"
        return text
    if isinstance(expr, Unary):
        level = _precedence(expr)
        sep = " " if expr.op == "not" else ""
        return f"{expr.op}{sep}{_wrap(expr.operand, level)}"
    if isinstance(expr, BoolOp):
        level = _precedence(expr)
        parts = [_wrap(expr.operands[0], level)]
        parts += [_wrap(op, level + 1) for op in expr.operands[1:]]
        return f" {expr.op} ".join(parts)
    if isinstance(expr, Between):
        value, low, high = (_wrap(e, CMP + 1) for e in (expr.value, expr.low, expr.high))
        return f"{value} between {low} and {high}"
    level = _precedence(expr)
    # Comparisons do not chain, so both sides need parentheses at equal precedence.
    left_min = level + 1 if level == CMP else level
    return f"{_wrap(expr.left, left_min)} {expr.op} {_wrap(expr.right, level + 1)}"


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "1e999"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)
