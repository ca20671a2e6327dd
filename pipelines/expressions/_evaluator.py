"""Evaluate parsed expressions against a :class:`Scope`, and conditions made of them.

Runs whenever a step's ``condition`` is checked or a ``{{...}}`` template is
rendered. Nothing here calls ``eval``: the tree from :mod:`._parser` is walked
node by node and only registered functions can be called.

Missing data: in lenient mode (conditions) a key or index absent from an
existing value, or any segment after a ``null``, gives ``None`` — so
``not review.skipped`` works when ``skipped`` is absent. In strict mode
(templates) it raises. Unknown names are an error in both modes.

Every failure is a :class:`~pipelines.errors.ConditionError` carrying the
expression text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipelines.errors import ConditionError
from pipelines.expressions._nodes import (
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
    Unary,
    unparse,
)
from pipelines.expressions._parser import parse
from pipelines.expressions.functions import (
    arithmetic,
    call_function,
    compare,
    contains,
    equal,
    matches,
    truthy,
    type_name,
)
from pipelines.expressions.scope import Scope

__all__ = ["MAX_CONDITION_DEPTH", "evaluate", "evaluate_condition"]

MAX_CONDITION_DEPTH = 64
"""Deepest nesting of ``and``/``or``/``not`` maps and lists in a condition."""

_Missing = object()


def evaluate(expr: Expr | str, scope: Scope, *, strict: bool = False) -> Any:
    """Evaluate ``expr`` (text or a parsed tree) in ``scope``.

    Raises :class:`ConditionError` on syntax errors, unknown names or functions,
    type errors, division by zero and, if ``strict``, unresolved paths.
    """
    tree = parse(expr) if isinstance(expr, str) else expr
    if type(tree) not in _HANDLERS:
        raise ConditionError(f"not an expression: {type(tree).__name__}")
    try:
        return _walk(tree, scope, strict)
    except ConditionError as exc:
        if exc.expression:
            raise
        text = expr if isinstance(expr, str) else unparse(tree)
        raise ConditionError(exc.detail, expression=text, position=exc.position) from exc


def evaluate_condition(
    condition: str | bool | Mapping[str, Any] | Sequence[Any] | None, scope: Scope
) -> bool:
    """Whether ``condition`` holds.

    A string is an expression (one wrapped in ``{{ }}`` is unwrapped); ``{and: [...]}``,
    ``{or: [...]}`` and ``{not: x}`` combine conditions; a list means all must hold;
    ``None`` and ``True`` hold; ``False`` does not. Anything else is a
    :class:`ConditionError`.
    """
    return _condition(condition, scope, 0)


def _condition(condition: object, scope: Scope, depth: int) -> bool:
    if depth > MAX_CONDITION_DEPTH:
        raise ConditionError(
            f"condition nested too deeply (more than {MAX_CONDITION_DEPTH} levels)"
        )
    if condition is None:
        return True
    if isinstance(condition, bool):
        return condition
    if isinstance(condition, str):
        text = condition.strip()
        if text.startswith("{{") and text.endswith("}}") and "{{" not in text[2:]:
            text = text[2:-2]
        return truthy(evaluate(text, scope))
    if isinstance(condition, Mapping):
        if len(condition) != 1:
            keys = sorted(map(str, condition))
            raise ConditionError(
                f"a condition map needs exactly one key (and, or, not), got {keys}"
            )
        ((key, value),) = condition.items()
        if key == "not":
            return not _condition(value, scope, depth + 1)
        if key in ("and", "or"):
            if not isinstance(value, list | tuple):
                raise ConditionError(f"'{key}' needs a list of conditions, got {type_name(value)}")
            results = (_condition(item, scope, depth + 1) for item in value)
            return all(results) if key == "and" else any(results)
        raise ConditionError(f"unknown condition key {key!r}; use and, or or not")
    if isinstance(condition, list | tuple):
        return all(_condition(item, scope, depth + 1) for item in condition)
    raise ConditionError(
        f"a condition must be a string, boolean, map or list, got {type_name(condition)}"
    )


# ---------------------------------------------------------------- the tree walker


def _walk(node: Expr, scope: Scope, strict: bool) -> Any:
    handler = _HANDLERS.get(type(node))
    if handler is None:
        raise ConditionError(f"not an expression: {type(node).__name__}")
    return handler(node, scope, strict)


def _const(node: Const, scope: Scope, strict: bool) -> Any:
    return node.value


def _list(node: ListExpr, scope: Scope, strict: bool) -> Any:
    return [_walk(item, scope, strict) for item in node.items]


def _name(node: Name, scope: Scope, strict: bool) -> Any:
    return scope.resolve(node.name, strict=strict)


def _path(node: Path, scope: Scope, strict: bool) -> Any:
    segments = node.segments
    base = node.base
    start = 0
    if type(base) is Name:
        step = _step_name(base.name, segments[0])
        if step is None:
            value = scope.resolve(base.name, strict=strict)
        else:
            # ``steps.x`` follows the step rules: unknown is an error, not run is None.
            value = scope.step(step, strict=strict)
            start = 1
    else:
        value = _walk(base, scope, strict)
    for i in range(start, len(segments)):
        if value is None and not strict:
            return None
        seg = segments[i]
        key = seg.name if isinstance(seg, Key) else _walk(seg.expr, scope, strict)
        found = _lookup(value, key, isinstance(seg, Key))
        if found is _Missing:
            if strict:
                where = unparse(Path(base, segments[: i + 1]))
                raise ConditionError(f"unresolved reference {where!r}: {_why(value, key)}")
            return None
        value = found
    return value


def _step_name(root: str, first: Key | Index) -> str | None:
    if root != "steps":
        return None
    if isinstance(first, Key):
        return first.name
    if isinstance(first.expr, Const) and isinstance(first.expr.value, str):
        return first.expr.value
    return None


def _lookup(value: Any, key: Any, dotted: bool) -> Any:
    """``value.key`` (``dotted``) or ``value[key]``; ``_Missing`` when there is no such thing."""
    if isinstance(value, Mapping):
        try:
            if key in value:
                return value[key]
        except TypeError:  # unhashable key
            return _Missing
        if dotted and key == "length":
            return len(value)
        return _Missing
    if isinstance(value, list | tuple | str):
        if dotted:
            if key == "length":
                return len(value)
            if not key.isdigit():
                return _Missing
            key = int(key)
        if isinstance(key, int) and not isinstance(key, bool) and -len(value) <= key < len(value):
            return value[key]
    return _Missing


def _why(value: Any, key: Any) -> str:
    if value is None:
        return f"cannot read {key!r} of null"
    if isinstance(value, Mapping):
        return f"no key {key!r}"
    if isinstance(value, list | tuple | str):
        return f"no item {key!r} in a {type_name(value)} of length {len(value)}"
    return f"a {type_name(value)} has no {key!r}"


def _call(node: Call, scope: Scope, strict: bool) -> Any:
    if node.func == "default" and node.args:
        # default(x, fallback) exists to handle a missing x, so x is read leniently.
        first = _walk(node.args[0], scope, False)
        rest = [_walk(arg, scope, strict) for arg in node.args[1:]]
        return call_function(node.func, [first, *rest])
    return call_function(node.func, [_walk(arg, scope, strict) for arg in node.args])


def _unary(node: Unary, scope: Scope, strict: bool) -> Any:
    value = _walk(node.operand, scope, strict)
    if node.op == "not":
        return not truthy(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return -value
    raise ConditionError(f"cannot negate a {type_name(value)}")


def _bool_op(node: BoolOp, scope: Scope, strict: bool) -> Any:
    # Returns a boolean (not the deciding operand) so conditions and templates agree.
    if node.op == "and":
        return all(truthy(_walk(op, scope, strict)) for op in node.operands)
    return any(truthy(_walk(op, scope, strict)) for op in node.operands)


def _between(node: Between, scope: Scope, strict: bool) -> Any:
    value = _walk(node.value, scope, strict)
    low = _walk(node.low, scope, strict)
    high = _walk(node.high, scope, strict)
    return compare(">=", value, low) and compare("<=", value, high)


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "==": equal,
    "!=": lambda a, b: not equal(a, b),
    "<": lambda a, b: compare("<", a, b),
    ">": lambda a, b: compare(">", a, b),
    "<=": lambda a, b: compare("<=", a, b),
    ">=": lambda a, b: compare(">=", a, b),
    "contains": contains,
    "in": lambda a, b: contains(b, a),
    "not in": lambda a, b: not contains(b, a),
    "matches": matches,
    "+": lambda a, b: arithmetic("+", a, b),
    "-": lambda a, b: arithmetic("-", a, b),
    "*": lambda a, b: arithmetic("*", a, b),
    "/": lambda a, b: arithmetic("/", a, b),
    "%": lambda a, b: arithmetic("%", a, b),
}


def _binary(node: Binary, scope: Scope, strict: bool) -> Any:
    return _BINARY[node.op](_walk(node.left, scope, strict), _walk(node.right, scope, strict))


_HANDLERS: dict[type, Callable[[Any, Scope, bool], Any]] = {
    Const: _const,
    ListExpr: _list,
    Name: _name,
    Path: _path,
    Call: _call,
    Unary: _unary,
    BoolOp: _bool_op,
    Between: _between,
    Binary: _binary,
}
