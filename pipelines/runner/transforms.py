"""Apply ``data_transform`` operations (:mod:`pipelines.spec.transforms`) to data.

:func:`apply_operations` runs the operations in order, each on the previous one's
output, and never mutates its input (step results are shared with other steps).
It is pure: expressions are evaluated by the ``evaluate`` callback the runner
passes in (the safe evaluator bound to the run scope), and templates inside
operation values (``filter``'s ``value``, ``join``'s ``right_source``) by ``resolve``.

Names an expression sees: for an object item, its fields plus ``item`` (the
whole item; a field of that name wins); for any other item, ``item`` and
``value``. A ``filter`` with both ``field`` and ``condition`` (pipeline_ex's
form) also binds ``value`` to that field's value.

Fields are looked up as a key, else as a dotted path (``a.b.c``). A missing
field is an error where it decides an item's place (``sort``, ``group_by``,
``join``, ``unique``); where a value is tested or rewritten it counts as absent:
``filter`` compares it as null, ``aggregate`` skips it, ``map`` leaves the item
as is (``fields`` omits it).

Every operation except ``aggregate`` and ``group_by`` needs a list; those two
return an object, so they must come last among the list operations.

Errors: data that does not fit (wrong type, missing field, incomparable values)
raises :class:`pipelines.errors.StepFailed` with ``code="transform_failed"`` and
a message naming the operation (0-based index, as in ``operations[i]``) and the
item (0-based). Errors the ``evaluate``/``resolve`` callbacks raise as
:class:`pipelines.errors.PipelineError` pass through unchanged, with a note
naming the operation; their ``TypeError``/``ValueError``/``LookupError``/
``ArithmeticError`` become ``StepFailed``.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, assert_never

from pipelines.errors import PipelineError, StepFailed
from pipelines.spec.transforms import (
    AggregateOperation,
    FilterOperation,
    GroupByOperation,
    JoinOperation,
    LimitOperation,
    MapOperation,
    SortOperation,
    TransformOperation,
    UniqueOperation,
)

__all__ = ["ItemEvaluator", "Resolver", "apply_operations"]

ItemEvaluator = Callable[[str, Mapping[str, Any]], Any]
"""``(expression, names) -> value``: the runner's safe evaluator, names from the item."""

Resolver = Callable[[Any], Any]
"""Renders the templates inside an operation value against the run scope."""

ERROR_CODE = "transform_failed"

# Errors a sloppy evaluator may leak on odd data; anything else is a bug and propagates.
_DATA_ERRORS = (TypeError, ValueError, LookupError, ArithmeticError)

# pipeline_ex's two keyword expressions, kept so its workflows run unchanged.
_LEGACY_EXPRESSIONS: dict[str, Callable[[str], str]] = {
    "uppercase": str.upper,
    "lowercase": str.lower,
}


class _Missing(Enum):
    MISSING = "missing"


_MISSING = _Missing.MISSING


def _identity(value: Any) -> Any:
    return value


def apply_operations(
    data: Any,
    operations: Sequence[TransformOperation],
    *,
    evaluate: ItemEvaluator,
    resolve: Resolver = _identity,
) -> Any:
    """Apply ``operations`` to ``data`` in order and return the result.

    Raises :class:`StepFailed` (``code="transform_failed"``) when the data does not
    fit an operation; see the module docstring for the rules.
    """
    for index, operation in enumerate(operations):
        at = _At(index, operation.operation)
        try:
            data = _apply(data, operation, at, evaluate, resolve)
        except PipelineError as exc:
            if not isinstance(exc, StepFailed) or exc.code != ERROR_CODE:
                exc.add_note(f"in data_transform operation {index} ({operation.operation})")
            raise
    return data


@dataclass(frozen=True, slots=True)
class _At:
    """Where we are, for error messages."""

    index: int
    kind: str

    def fail(self, detail: str) -> StepFailed:
        return StepFailed(f"operation {self.index} ({self.kind}): {detail}", code=ERROR_CODE)


def _apply(
    data: Any, op: TransformOperation, at: _At, evaluate: ItemEvaluator, resolve: Resolver
) -> Any:
    match op:
        case FilterOperation():
            return _filter(_as_list(data, at), op, at, evaluate, resolve)
        case MapOperation():
            return [
                _map_item(item, pos, op, at, evaluate)
                for pos, item in enumerate(_as_list(data, at))
            ]
        case AggregateOperation():
            return {op.key: _aggregate(_as_list(data, at), op, at)}
        case GroupByOperation():
            groups: dict[str, list[Any]] = {}
            for pos, item in enumerate(_as_list(data, at)):
                key = _group_key(_required(item, op.field, pos, at), op.field, pos, at)
                groups.setdefault(key, []).append(item)
            return groups
        case SortOperation():
            return _sort(_as_list(data, at), op, at)
        case JoinOperation():
            return _join(_as_list(data, at), op, at, resolve)
        case LimitOperation():
            return _as_list(data, at)[: op.count]
        case UniqueOperation():
            seen: set[str] = set()
            kept: list[Any] = []
            for pos, item in enumerate(_as_list(data, at)):
                value = item if op.field is None else _required(item, op.field, pos, at)
                if (key := _canonical(value)) not in seen:
                    seen.add(key)
                    kept.append(item)
            return kept
        case _:
            assert_never(op)


# ----------------------------------------------------------------------- operations


def _filter(
    items: list[Any], op: FilterOperation, at: _At, evaluate: ItemEvaluator, resolve: Resolver
) -> list[Any]:
    if op.condition is not None:
        kept = []
        for pos, item in enumerate(items):
            extra: dict[str, Any] = {}
            if op.field is not None and isinstance(item, dict):
                found = _lookup(item, op.field)
                extra["value"] = None if found is _MISSING else found
            if _call(evaluate, op.condition, _names(item, extra), pos, at):
                kept.append(item)
        return kept
    # The model guarantees field and op are set when there is no condition.
    field, comparison = op.field or "", op.op or "=="
    expected = resolve(op.value)
    kept = []
    for pos, item in enumerate(items):
        actual = _lookup(_object(item, field, pos, at), field)
        if _compare(comparison, None if actual is _MISSING else actual, expected, pos, at):
            kept.append(item)
    return kept


def _compare(comparison: str, actual: Any, expected: Any, pos: int, at: _At) -> bool:
    if comparison == "==":
        return bool(actual == expected)
    if comparison == "!=":
        return bool(actual != expected)
    try:
        if comparison == "in":
            return expected is not None and actual in expected
        if actual is None or expected is None:
            return False  # null neither orders nor contains
        if comparison == "contains":
            if isinstance(actual, str | list | dict):
                return expected in actual
            raise TypeError(f"{_a(actual)} cannot contain anything")
        return bool(_ORDERING[comparison](actual, expected))
    except TypeError as exc:
        detail = f"cannot apply {comparison!r} to {_a(actual)} and {_a(expected)}"
        raise at.fail(f"{detail} in item {pos}") from exc


_ORDERING: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def _map_item(item: Any, pos: int, op: MapOperation, at: _At, evaluate: ItemEvaluator) -> Any:
    if op.expression is not None:
        if op.field is None:
            return _call(evaluate, op.expression, _names(item), pos, at)
        obj = _object(item, op.field, pos, at)
        legacy = _LEGACY_EXPRESSIONS.get(op.expression)
        if legacy is not None and op.expression not in obj:
            current = _lookup(obj, op.field)
            return _assign(obj, op.field, legacy(current)) if isinstance(current, str) else obj
        return _assign(obj, op.field, _call(evaluate, op.expression, _names(item), pos, at))
    if op.fields is not None:
        obj = _object(item, "", pos, at)
        picked = {f: _lookup(obj, f) for f in op.fields}
        return {f: v for f, v in picked.items() if v is not _MISSING}
    mapping = op.mapping or {}
    if op.field is not None:  # pipeline_ex: translate the field's values
        obj = _object(item, op.field, pos, at)
        current = _lookup(obj, op.field)
        if current is _MISSING:
            return obj
        # The spec stores non-string keys as their JSON text, so match on the same text.
        key = current if isinstance(current, str) else _canonical(current)
        return _assign(obj, op.field, mapping[key]) if key in mapping else obj
    obj = _object(item, "", pos, at)
    # A renamed key replaces an existing key of the same name, at the renamed key's place.
    targets = {new for old, new in mapping.items() if old in obj}
    renamed: dict[str, Any] = {}
    for key, value in obj.items():
        if key in mapping:
            renamed[mapping[key]] = value
        elif key not in targets:
            renamed[key] = value
    return renamed


def _aggregate(items: list[Any], op: AggregateOperation, at: _At) -> Any:
    values: list[tuple[int, Any]] = []
    for pos, item in enumerate(items):
        if op.field is None:
            values.append((pos, item))
            continue
        value = _lookup(_object(item, op.field, pos, at), op.field)
        if value is not _MISSING and value is not None:
            values.append((pos, value))
    plain = [v for _, v in values]
    match op.function:
        case "count":
            return len(plain)
        case "first":
            return plain[0] if plain else None
        case "last":
            return plain[-1] if plain else None
        case "unique":
            firsts: dict[str, Any] = {}
            for value in plain:
                firsts.setdefault(_canonical(value), value)
            return list(firsts.values())
        case "sum" | "average":
            for pos, value in values:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    what = f"field {op.field!r}" if op.field else "the item"
                    raise at.fail(f"{what} in item {pos} is {_a(value)}, not a number")
            if op.function == "sum":
                return sum(plain)
            return sum(plain) / len(plain) if plain else None
        case "min" | "max":
            if not plain:
                return None
            try:
                return min(plain) if op.function == "min" else max(plain)
            except TypeError as exc:
                kinds = sorted({_kind(v) for v in plain})
                raise at.fail(f"cannot compare values of {', '.join(kinds)}") from exc
        case _:
            assert_never(op.function)


def _sort(items: list[Any], op: SortOperation, at: _At) -> list[Any]:
    keyed: list[tuple[Any, Any]] = []
    nulls: list[Any] = []
    for pos, item in enumerate(items):
        value = _required(item, op.field, pos, at)
        if value is None:
            nulls.append(item)
        else:
            keyed.append((value, item))
    try:
        # list.sort stays stable with reverse=True, so equal keys keep input order.
        keyed.sort(key=lambda pair: pair[0], reverse=op.order == "desc")
    except TypeError as exc:
        kinds = sorted({_kind(value) for value, _ in keyed})
        detail = f"cannot compare values of field {op.field!r}: {', '.join(kinds)}"
        raise at.fail(detail) from exc
    return [item for _, item in keyed] + nulls


def _join(items: list[Any], op: JoinOperation, at: _At, resolve: Resolver) -> list[Any]:
    right = resolve(op.right_source)
    if isinstance(right, dict):
        right = [right]  # pipeline_ex joins against a single object too
    if not isinstance(right, list):
        hint = " (did its template resolve?)" if isinstance(right, str) else ""
        raise at.fail(f"right_source is {_a(right)}, not a list{hint}")
    index: dict[str, Any] = {}
    for pos, candidate in enumerate(right):
        if not isinstance(candidate, dict):
            raise at.fail(f"right_source item {pos} is {_a(candidate)}, not an object")
        value = _lookup(candidate, op.right_key)
        if value is _MISSING:
            raise at.fail(f"field {op.right_key!r} missing in right_source item {pos}")
        index.setdefault(_canonical(value), candidate)  # the first match wins
    joined: list[Any] = []
    for pos, item in enumerate(items):
        obj = _object(item, op.left_key, pos, at)
        partner = index.get(_canonical(_required(obj, op.left_key, pos, at)))
        if partner is None and op.how == "inner":
            continue
        if op.as_ is not None:
            joined.append({**obj, op.as_: partner})
        else:
            joined.append({**obj, **(partner or {})})
    return joined


# -------------------------------------------------------------------------- helpers


def _as_list(data: Any, at: _At) -> list[Any]:
    if isinstance(data, list):
        return data
    hint = " (group_by and aggregate return an object, so they go last)"
    raise at.fail(f"needs a list, got {_a(data)}{hint if isinstance(data, dict) else ''}")


def _object(item: Any, field: str, pos: int, at: _At) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    wanted = f" with field {field!r}" if field else ""
    raise at.fail(f"item {pos} is {_a(item)}, not an object{wanted}")


def _required(item: Any, field: str, pos: int, at: _At) -> Any:
    value = _lookup(_object(item, field, pos, at), field)
    if value is _MISSING:
        raise at.fail(f"field {field!r} missing in item {pos}")
    return value


def _lookup(obj: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (a key, else a dotted path), or ``_MISSING``."""
    if path in obj:
        return obj[path]
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _assign(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``obj`` with ``path`` set; a dotted path writes into nested copies."""
    head, dot, rest = path.partition(".")
    if not dot or path in obj:
        return {**obj, path: value}
    inner = obj.get(head)
    return {**obj, head: _assign(inner if isinstance(inner, dict) else {}, rest, value)}


def _names(item: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if isinstance(item, dict):
        return {"item": item, **(extra or {}), **item}
    return {"item": item, "value": item}


def _call(
    evaluate: ItemEvaluator, expression: str, names: Mapping[str, Any], pos: int, at: _At
) -> Any:
    try:
        return evaluate(expression, names)
    except PipelineError as exc:
        exc.add_note(f"evaluating {expression!r} on item {pos}")
        raise
    except _DATA_ERRORS as exc:
        raise at.fail(f"expression {expression!r} failed on item {pos}: {exc}") from exc


def _group_key(value: Any, field: str, pos: int, at: _At) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    raise at.fail(f"field {field!r} in item {pos} is {_a(value)}; cannot group by it")


def _canonical(value: Any) -> str:
    """A hashable stand-in for a JSON value: equal JSON, equal text."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    except (TypeError, ValueError):  # mixed-type keys cannot be sorted; cycles
        return repr(value)


def _kind(value: Any) -> str:
    """The JSON-ish name of a value's type, for messages."""
    if value is None:
        return "null"
    names = {dict: "object", list: "list", str: "string", bool: "boolean", int: "integer"}
    return names.get(type(value), type(value).__name__)


def _a(value: Any) -> str:
    kind = _kind(value)
    if kind == "null":
        return kind
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
