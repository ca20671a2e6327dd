"""Value semantics shared by operators and the function registry.

Operators (``==``, ``<``, ``+``, ``contains``, ``matches``...) and functions
(``length``, ``sum``, ``multiply``...) live here so both agree on types:
numbers are ``int``/``float`` but never ``bool``; ordering works between two
numbers or two strings only; ``+`` also joins two strings or two lists; the
other arithmetic takes numbers only (so ``"a" * 10**9`` cannot build a huge
string). Aggregates treat a missing (``None``) list as empty.

Every failure is a :class:`~pipelines.errors.ConditionError` without an
expression; the evaluator adds the expression text. :func:`call_function`
wraps any ``TypeError``/``ValueError``/``ArithmeticError`` a function lets out
into a ``ConditionError`` naming the function.
"""

from __future__ import annotations

import decimal
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.errors import ConditionError

__all__ = [
    "FUNCTIONS",
    "MAX_MATCH_TEXT",
    "MAX_PATTERN",
    "Function",
    "arithmetic",
    "call_function",
    "check_call",
    "compare",
    "contains",
    "equal",
    "matches",
    "to_text",
    "truthy",
    "type_name",
]

MAX_PATTERN = 500
"""Longest regular expression ``matches`` accepts."""
MAX_MATCH_TEXT = 100_000
"""Longest text ``matches`` searches."""


def type_name(value: Any) -> str:
    """The pipeline-language name of ``value``'s type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def truthy(value: Any) -> bool:
    """Python truthiness: ``None``, ``0``, ``""``, ``[]`` and ``{}`` are false."""
    if value is None or isinstance(value, bool | int | float | str | list | tuple | dict):
        return bool(value)
    try:
        return bool(value)
    except (TypeError, ValueError) as exc:
        raise ConditionError(f"cannot use a {type_name(value)} as a condition: {exc}") from exc


def equal(left: Any, right: Any) -> bool:
    """``==``: Python equality, except that a boolean never equals a number."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    return bool(left == right)


def compare(op: str, left: Any, right: Any) -> bool:
    """``< > <= >=`` between two numbers or two strings; anything else is an error."""
    if not ((_is_number(left) and _is_number(right)) or (type(left) is str and type(right) is str)):
        raise ConditionError(f"cannot compare {type_name(left)} {op} {type_name(right)}")
    if op == "<":
        return bool(left < right)
    if op == ">":
        return bool(left > right)
    if op == "<=":
        return bool(left <= right)
    return bool(left >= right)


def contains(container: Any, item: Any) -> bool:
    """Substring for strings, membership for lists, key for maps; ``null`` contains nothing."""
    if container is None:
        return False
    if isinstance(container, str):
        if not isinstance(item, str):
            raise ConditionError(f"a string cannot contain a {type_name(item)}")
        return item in container
    if isinstance(container, list | tuple):
        return any(equal(element, item) for element in container)
    if isinstance(container, Mapping):
        try:
            return item in container
        except TypeError:  # an unhashable item is never a key
            return False
    raise ConditionError(f"cannot look inside a {type_name(container)}")


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConditionError(f"invalid regular expression {pattern!r}: {exc}") from exc


def matches(text: Any, pattern: Any) -> bool:
    """``re.search(pattern, text)``; ``null`` matches nothing. Sizes are capped."""
    if text is None:
        return False
    if not isinstance(text, str) or not isinstance(pattern, str):
        raise ConditionError(
            "'matches' needs a string and a pattern, "
            f"got {type_name(text)} and {type_name(pattern)}"
        )
    if len(pattern) > MAX_PATTERN:
        raise ConditionError(f"regular expression longer than {MAX_PATTERN} characters")
    if len(text) > MAX_MATCH_TEXT:
        raise ConditionError(f"text to match is longer than {MAX_MATCH_TEXT} characters")
    return _compile(pattern).search(text) is not None


def arithmetic(op: str, left: Any, right: Any) -> Any:
    """``+ - * / %``; ``+`` also concatenates two strings or two lists."""
    if op == "+":
        if type(left) is str and type(right) is str:
            return left + right
        if isinstance(left, list | tuple) and isinstance(right, list | tuple):
            return [*left, *right]
    if not (_is_number(left) and _is_number(right)):
        raise ConditionError(f"cannot apply {op!r} to {type_name(left)} and {type_name(right)}")
    try:
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        if op == "/":
            return left / right
        return left % right
    except ZeroDivisionError as exc:
        raise ConditionError("division by zero") from exc
    except OverflowError as exc:
        raise ConditionError(f"number too large for {op!r}") from exc


def to_text(value: Any) -> str:
    """Text form used by templates and ``toString``: ``null`` is ``""``, maps/lists are JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


# ------------------------------------------------------------------- the functions


def _number(value: Any, what: str = "a number") -> int | float:
    if not _is_number(value):
        raise ConditionError(f"expected {what}, got {type_name(value)}")
    number: int | float = value
    return number


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    raise ConditionError(f"expected a list, got {type_name(value)}")


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ConditionError(f"expected a string, got {type_name(value)}")
    return value


def _length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise ConditionError(f"expected a string, list or map, got {type_name(value)}")


def _count(values: Any, *item: Any) -> int:
    elements = _items(values)
    if not item:
        return len(elements)
    return sum(1 for element in elements if equal(element, item[0]))


def _sum(values: Any) -> int | float:
    total: int | float = 0
    for element in _items(values):
        total = arithmetic("+", total, _number(element, "a list of numbers"))
    return total


def _average(values: Any) -> float:
    elements = _items(values)
    if not elements:
        raise ConditionError("average of an empty list")
    return _sum(elements) / len(elements)


def _extreme(pick: Callable[[list[Any]], Any], *args: Any) -> Any:
    elements = _items(args[0]) if len(args) == 1 else list(args)
    if not elements:
        raise ConditionError("needs at least one value")
    if not (all(_is_number(e) for e in elements) or all(type(e) is str for e in elements)):
        raise ConditionError("values must be all numbers or all strings")
    return pick(elements)


def _fold(op: str) -> Callable[..., Any]:
    def fold(first: Any, *rest: Any) -> Any:
        result = first
        for value in rest:
            result = arithmetic(op, result, value)
        return result

    return fold


def _round(value: Any, digits: Any = 0) -> int | float:
    number = _number(value)
    places = _number(digits, "a whole number of digits")
    if not isinstance(places, int) or not -20 <= places <= 20:
        raise ConditionError("digits must be a whole number between -20 and 20")
    if isinstance(number, int) and places >= 0:
        return number
    # Half away from zero on the decimal text (2.5 -> 3, 1.005 -> 1.01), not banker's rounding.
    with decimal.localcontext() as ctx:
        ctx.prec = 5000
        exact = decimal.Decimal(repr(number) if isinstance(number, float) else number)
        rounded = exact.quantize(decimal.Decimal(1).scaleb(-places), decimal.ROUND_HALF_UP)
    return int(rounded) if places <= 0 else float(rounded)


def _to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        return int(value)
    if _is_number(value):
        number: int | float = value
        return number
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            result = float(text)
        except ValueError:
            result = math.nan
        if math.isfinite(result):
            return result
        raise ConditionError(f"{value[:50]!r} is not a number")
    raise ConditionError(f"cannot convert a {type_name(value)} to a number")


def _to_int(value: Any) -> int:
    return int(_to_number(value))


def _to_float(value: Any) -> float:
    return float(_to_number(value))


def _mapping(value: Any) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise ConditionError(f"expected a map, got {type_name(value)}")


def _join(values: Any, separator: Any = ", ") -> str:
    return _string(separator).join(to_text(element) for element in _items(values))


def _starts_with(text: Any, prefix: Any) -> bool:
    return text is not None and _string(text).startswith(_string(prefix))


def _ends_with(text: Any, suffix: Any) -> bool:
    return text is not None and _string(text).endswith(_string(suffix))


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str | list | tuple | Mapping):
        return len(value) == 0
    return False


@dataclass(frozen=True, slots=True)
class Function:
    """A callable the language exposes, with its arity (``max_args=None``: no limit)."""

    name: str
    impl: Callable[..., Any]
    min_args: int
    max_args: int | None


def _registry(*entries: tuple[str, Callable[..., Any], int, int | None]) -> dict[str, Function]:
    return {name: Function(name, impl, low, high) for name, impl, low, high in entries}


FUNCTIONS: Mapping[str, Function] = _registry(
    ("length", _length, 1, 1),
    ("contains", contains, 2, 2),
    ("startsWith", _starts_with, 2, 2),
    ("endsWith", _ends_with, 2, 2),
    ("any", lambda values: any(truthy(v) for v in _items(values)), 1, 1),
    ("all", lambda values: all(truthy(v) for v in _items(values)), 1, 1),
    ("count", _count, 1, 2),
    ("sum", _sum, 1, 1),
    ("average", _average, 1, 1),
    ("min", lambda *args: _extreme(min, *args), 1, None),
    ("max", lambda *args: _extreme(max, *args), 1, None),
    ("isEmpty", _is_empty, 1, 1),
    ("plus", _fold("+"), 2, None),
    ("add", _fold("+"), 2, None),
    ("multiply", _fold("*"), 2, None),
    ("subtract", lambda a, b: arithmetic("-", a, b), 2, 2),
    ("divide", lambda a, b: arithmetic("/", a, b), 2, 2),
    ("round", _round, 1, 2),
    ("floor", lambda value: math.floor(_number(value)), 1, 1),
    ("ceil", lambda value: math.ceil(_number(value)), 1, 1),
    ("abs", lambda value: abs(_number(value)), 1, 1),
    ("lower", lambda value: _string(value).lower(), 1, 1),
    ("upper", lambda value: _string(value).upper(), 1, 1),
    ("toString", to_text, 1, 1),
    ("str", to_text, 1, 1),
    ("toNumber", _to_number, 1, 1),
    ("int", _to_int, 1, 1),
    ("float", _to_float, 1, 1),
    ("keys", lambda value: list(_mapping(value).keys()), 1, 1),
    ("values", lambda value: list(_mapping(value).values()), 1, 1),
    ("join", _join, 1, 2),
    ("default", lambda value, fallback: fallback if value is None else value, 2, 2),
)


def check_call(name: str, nargs: int) -> str | None:
    """Why ``name(...)`` with ``nargs`` arguments cannot be called, or ``None`` if it can."""
    fn = FUNCTIONS.get(name)
    if fn is None:
        return f"unknown function {name!r}"
    if nargs < fn.min_args or (fn.max_args is not None and nargs > fn.max_args):
        if fn.max_args == fn.min_args:
            wanted = str(fn.min_args)
        elif fn.max_args is None:
            wanted = f"at least {fn.min_args}"
        else:
            wanted = f"{fn.min_args} to {fn.max_args}"
        plural = "" if wanted in ("1", "at least 1") else "s"
        return f"{name}() takes {wanted} argument{plural}, got {nargs}"
    return None


def call_function(name: str, args: list[Any]) -> Any:
    """Call the registered function ``name``; every failure is a :class:`ConditionError`."""
    problem = check_call(name, len(args))
    if problem:
        raise ConditionError(problem)
    try:
        return FUNCTIONS[name].impl(*args)
    except ConditionError as exc:
        raise ConditionError(f"{name}(): {exc.detail}") from exc
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ConditionError(f"{name}(): {exc}") from exc
