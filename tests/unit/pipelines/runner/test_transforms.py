"""Tests of the data_transform operation models and of apply_operations."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from pipelines.errors import ConditionError, StepFailed
from pipelines.runner.transforms import apply_operations
from pipelines.spec.transforms import (
    AggregateOperation,
    FilterOperation,
    JoinOperation,
    MapOperation,
    TransformOperation,
)

OPERATIONS = TypeAdapter(list[TransformOperation])

# A stand-in for the runner's safe evaluator: each expression the tests use, by hand.
EXPRESSIONS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "severity == 'error'": lambda n: n["severity"] == "error",
    "upper(name)": lambda n: n["name"].upper(),
    "score * 2": lambda n: n["score"] * 2,
    "value > 1": lambda n: n["value"] > 1,
    "item * 10": lambda n: n["item"] * 10,
    "value == 'high'": lambda n: n["value"] == "high",
    "uppercase": lambda n: "evaluated",
}


def evaluate(expression: str, names: Mapping[str, Any]) -> Any:
    return EXPRESSIONS[expression](names)


def run(data: Any, *ops: dict[str, Any], resolve: Callable[[Any], Any] | None = None) -> Any:
    operations = OPERATIONS.validate_python(list(ops))
    if resolve is None:
        return apply_operations(data, operations, evaluate=evaluate)
    return apply_operations(data, operations, evaluate=evaluate, resolve=resolve)


FINDINGS = [
    {"file": "a.py", "line": 3, "severity": "error", "score": 0.9, "name": "x"},
    {"file": "b.py", "line": 7, "severity": "warning", "score": 0.4, "name": "y"},
    {"file": "a.py", "line": 9, "severity": "error", "score": 0.7, "name": "z"},
]
USERS = [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}]
ORDERS = [{"user_id": 2, "total": 5}, {"user_id": 3, "total": 7}, {"user_id": 1, "total": 9}]

# ------------------------------------------------------------------------ the models

VALID_SPECS = [
    ({"operation": "filter", "condition": "x > 1"}, "FilterOperation"),
    ({"operation": "filter", "field": "s", "op": "==", "value": None}, "FilterOperation"),
    ({"operation": "filter", "field": "s", "condition": "value == 'a'"}, "FilterOperation"),
    ({"operation": "map", "field": "n", "expression": "upper(n)"}, "MapOperation"),
    ({"operation": "map", "expression": "item * 10"}, "MapOperation"),
    ({"operation": "map", "mapping": {"a": "b"}}, "MapOperation"),
    ({"operation": "map", "field": "p", "mapping": {"1": "high"}}, "MapOperation"),
    ({"operation": "map", "fields": ["a"]}, "MapOperation"),
    (
        {"operation": "aggregate", "function": "average", "field": "s", "as": "avg"},
        "AggregateOperation",
    ),
    ({"operation": "group_by", "field": "c"}, "GroupByOperation"),
    ({"operation": "sort", "field": "p", "order": "desc"}, "SortOperation"),
    ({"operation": "join", "right_source": [], "join_key": "id"}, "JoinOperation"),
    ({"operation": "limit", "count": 0}, "LimitOperation"),
    ({"operation": "unique"}, "UniqueOperation"),
]


@pytest.mark.parametrize(("raw", "model"), VALID_SPECS)
def test_valid_specs_load_as_their_model(raw: dict[str, Any], model: str) -> None:
    """Each operation form of the format loads as its own model."""
    assert type(OPERATIONS.validate_python([raw])[0]).__name__ == model


INVALID_SPECS = [
    ({"operation": "filter"}, "filter needs 'condition'"),
    ({"operation": "filter", "field": "s", "op": "=="}, "filter needs 'condition'"),
    ({"operation": "filter", "condition": "x", "op": "==", "value": 1}, "not both"),
    ({"operation": "filter", "field": "s", "op": "~=", "value": 1}, "'=='"),
    ({"operation": "map"}, "map needs exactly one of"),
    ({"operation": "map", "mapping": {"a": "b"}, "fields": ["a"]}, "map needs exactly one of"),
    ({"operation": "map", "field": "f", "fields": ["a"]}, "takes no 'field'"),
    ({"operation": "map", "mapping": {"a": 1}}, "values must be strings"),
    ({"operation": "aggregate", "function": "median"}, "'sum'"),
    ({"operation": "group_by"}, "Field required"),
    ({"operation": "sort", "field": "p", "order": "up"}, "'asc' or 'desc'"),
    (
        {"operation": "join", "right_source": [], "how": "outer", "join_key": "id"},
        "'inner' or 'left'",
    ),
    ({"operation": "join", "right_source": []}, "join needs 'left_field'"),
    ({"operation": "limit", "count": -1}, "greater than or equal to 0"),
    ({"operation": "pivot"}, "does not match any of the expected tags"),
    ({"operation": "sort", "field": "p", "reverse": True}, "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("raw", "fragment"), INVALID_SPECS)
def test_invalid_specs_are_rejected_with_a_clear_message(
    raw: dict[str, Any], fragment: str
) -> None:
    """A malformed operation fails validation with a message saying what is wrong."""
    with pytest.raises(ValidationError) as info:
        OPERATIONS.validate_python([raw])
    assert fragment in str(info.value)


def test_as_is_accepted_by_alias_and_by_name() -> None:
    """`as` (a Python keyword) loads from YAML as `as` and from code as `as_`."""
    from_yaml = OPERATIONS.validate_python([{"operation": "aggregate", "as": "total"}])[0]
    assert isinstance(from_yaml, AggregateOperation)
    assert from_yaml.as_ == "total"
    assert AggregateOperation(operation="aggregate", as_="total").key == "total"


def test_aggregate_key_defaults_to_function_and_function_to_sum() -> None:
    """Without `as` the result key is the function's name; the function defaults to sum."""
    assert AggregateOperation(operation="aggregate").key == "sum"


def test_value_mapping_keys_are_stored_as_json_text() -> None:
    """YAML's `1: high` (an int key) is stored as "1", `true: yes` as "true"."""
    ints = MapOperation.model_validate({"operation": "map", "field": "p", "mapping": {1: "h"}})
    bools = MapOperation.model_validate({"operation": "map", "field": "p", "mapping": {True: "y"}})
    assert (ints.mapping, bools.mapping) == ({"1": "h"}, {"true": "y"})


def test_join_keys_default_to_each_other() -> None:
    """join_key names both sides; a lone left_field or right_field names the other too."""
    by_key = JoinOperation(operation="join", right_source=[], join_key="id")
    assert (by_key.left_key, by_key.right_key) == ("id", "id")
    one_side = JoinOperation(operation="join", right_source=[], left_field="uid")
    assert (one_side.left_key, one_side.right_key) == ("uid", "uid")


def test_models_are_frozen() -> None:
    """A loaded operation is a value: assigning to it fails."""
    op = FilterOperation(operation="filter", condition="x")
    with pytest.raises(ValidationError):
        op.condition = "y"


def test_operations_have_a_json_schema() -> None:
    """The union produces a JSON Schema (published for editors), with `as` under its alias."""
    schema = OPERATIONS.json_schema(by_alias=True)
    defs = schema["$defs"]
    assert "as" in defs["AggregateOperation"]["properties"]
    assert set(schema["items"]["discriminator"]["mapping"]) >= {"filter", "map", "join"}


# ------------------------------------------------------------------------ operations

APPLY_CASES: list[tuple[str, Any, list[dict[str, Any]], Any]] = [
    (
        "filter by condition",
        FINDINGS,
        [{"operation": "filter", "condition": "severity == 'error'"}],
        [FINDINGS[0], FINDINGS[2]],
    ),
    (
        "filter scalars by condition on value",
        [1, 2, 3],
        [{"operation": "filter", "condition": "value > 1"}],
        [2, 3],
    ),
    (
        "filter with field and condition binds value (pipeline_ex)",
        [{"p": "high"}, {"p": "low"}],
        [{"operation": "filter", "field": "p", "condition": "value == 'high'"}],
        [{"p": "high"}],
    ),
    (
        "filter ==",
        FINDINGS,
        [{"operation": "filter", "field": "file", "op": "==", "value": "b.py"}],
        [FINDINGS[1]],
    ),
    (
        "filter !=",
        FINDINGS,
        [{"operation": "filter", "field": "file", "op": "!=", "value": "a.py"}],
        [FINDINGS[1]],
    ),
    (
        "filter >",
        FINDINGS,
        [{"operation": "filter", "field": "score", "op": ">", "value": 0.7}],
        [FINDINGS[0]],
    ),
    (
        "filter >=",
        FINDINGS,
        [{"operation": "filter", "field": "score", "op": ">=", "value": 0.7}],
        [FINDINGS[0], FINDINGS[2]],
    ),
    (
        "filter <",
        FINDINGS,
        [{"operation": "filter", "field": "line", "op": "<", "value": 7}],
        [FINDINGS[0]],
    ),
    (
        "filter <=",
        FINDINGS,
        [{"operation": "filter", "field": "line", "op": "<=", "value": 7}],
        [FINDINGS[0], FINDINGS[1]],
    ),
    (
        "filter contains on strings",
        FINDINGS,
        [{"operation": "filter", "field": "severity", "op": "contains", "value": "warn"}],
        [FINDINGS[1]],
    ),
    (
        "filter contains on lists",
        [{"tags": ["a", "b"]}, {"tags": ["c"]}, {"tags": None}],
        [{"operation": "filter", "field": "tags", "op": "contains", "value": "c"}],
        [{"tags": ["c"]}],
    ),
    (
        "filter in",
        FINDINGS,
        [{"operation": "filter", "field": "line", "op": "in", "value": [3, 9]}],
        [FINDINGS[0], FINDINGS[2]],
    ),
    (
        "filter treats a missing field as null",
        [{"s": 1}, {}, {"s": None}],
        [{"operation": "filter", "field": "s", "op": "==", "value": None}],
        [{}, {"s": None}],
    ),
    (
        "filter: null never orders",
        [{"s": 1}, {}, {"s": None}],
        [{"operation": "filter", "field": "s", "op": "<", "value": 5}],
        [{"s": 1}],
    ),
    (
        "filter on a dotted path",
        [{"meta": {"ok": True}}, {"meta": {"ok": False}}],
        [{"operation": "filter", "field": "meta.ok", "op": "==", "value": True}],
        [{"meta": {"ok": True}}],
    ),
    (
        "map expression sets a field",
        [{"name": "ann"}],
        [{"operation": "map", "field": "name", "expression": "upper(name)"}],
        [{"name": "ANN"}],
    ),
    (
        "map expression adds a new field",
        [{"score": 2}],
        [{"operation": "map", "field": "double", "expression": "score * 2"}],
        [{"score": 2, "double": 4}],
    ),
    (
        "map expression on a dotted path writes a nested copy",
        [{"score": 2, "meta": {"a": 1}}],
        [{"operation": "map", "field": "meta.double", "expression": "score * 2"}],
        [{"score": 2, "meta": {"a": 1, "double": 4}}],
    ),
    (
        "map expression without field replaces the item",
        [1, 2],
        [{"operation": "map", "expression": "item * 10"}],
        [10, 20],
    ),
    (
        "map renames keys in place",
        [{"a": 1, "b": 2, "c": 3}],
        [{"operation": "map", "mapping": {"a": "x"}}],
        [{"x": 1, "b": 2, "c": 3}],
    ),
    (
        "map rename onto an existing key replaces it",
        [{"a": 1, "b": 2}],
        [{"operation": "map", "mapping": {"a": "b"}}],
        [{"b": 1}],
    ),
    (
        "map projects onto fields, omitting missing ones",
        [{"file": "a", "line": 1, "x": 0}, {"file": "b"}],
        [{"operation": "map", "fields": ["file", "line"]}],
        [{"file": "a", "line": 1}, {"file": "b"}],
    ),
    (
        "map translates a field's values (pipeline_ex)",
        [{"p": 1}, {"p": "2"}, {"p": 9}, {}],
        [{"operation": "map", "field": "p", "mapping": {1: "high", "2": "medium"}}],
        [{"p": "high"}, {"p": "medium"}, {"p": 9}, {}],
    ),
    (
        "map keyword uppercase (pipeline_ex)",
        [{"n": "ab"}, {"n": 3}],
        [{"operation": "map", "field": "n", "expression": "uppercase"}],
        [{"n": "AB"}, {"n": 3}],
    ),
    (
        "map keyword defers to a field of that name",
        [{"uppercase": 1, "n": "ab"}],
        [{"operation": "map", "field": "n", "expression": "uppercase"}],
        [{"uppercase": 1, "n": "evaluated"}],
    ),
    (
        "aggregate sum",
        FINDINGS,
        [{"operation": "aggregate", "function": "sum", "field": "line"}],
        {"sum": 19},
    ),
    (
        "aggregate average with as",
        FINDINGS,
        [{"operation": "aggregate", "function": "average", "field": "line", "as": "mean"}],
        {"mean": 19 / 3},
    ),
    (
        "aggregate count items",
        FINDINGS,
        [{"operation": "aggregate", "function": "count"}],
        {"count": 3},
    ),
    (
        "aggregate count skips missing and null fields",
        [{"s": 1}, {}, {"s": None}],
        [{"operation": "aggregate", "function": "count", "field": "s"}],
        {"count": 1},
    ),
    (
        "aggregate min",
        FINDINGS,
        [{"operation": "aggregate", "function": "min", "field": "score"}],
        {"min": 0.4},
    ),
    (
        "aggregate max",
        FINDINGS,
        [{"operation": "aggregate", "function": "max", "field": "file"}],
        {"max": "b.py"},
    ),
    (
        "aggregate first",
        FINDINGS,
        [{"operation": "aggregate", "function": "first", "field": "line"}],
        {"first": 3},
    ),
    (
        "aggregate last",
        FINDINGS,
        [{"operation": "aggregate", "function": "last", "field": "line"}],
        {"last": 9},
    ),
    (
        "aggregate unique keeps first-seen order",
        FINDINGS,
        [{"operation": "aggregate", "function": "unique", "field": "file"}],
        {"unique": ["a.py", "b.py"]},
    ),
    ("aggregate sum of scalars", [1, 2.5], [{"operation": "aggregate"}], {"sum": 3.5}),
    ("aggregate sum of nothing", [], [{"operation": "aggregate", "field": "x"}], {"sum": 0}),
    (
        "aggregate average of nothing is null",
        [],
        [{"operation": "aggregate", "function": "average"}],
        {"average": None},
    ),
    (
        "aggregate max of nothing is null",
        [],
        [{"operation": "aggregate", "function": "max"}],
        {"max": None},
    ),
    (
        "group_by string values",
        FINDINGS,
        [{"operation": "group_by", "field": "file"}],
        {"a.py": [FINDINGS[0], FINDINGS[2]], "b.py": [FINDINGS[1]]},
    ),
    (
        "group_by keys non-strings by their JSON text",
        [{"k": 1}, {"k": True}, {"k": None}, {"k": 1.5}],
        [{"operation": "group_by", "field": "k"}],
        {"1": [{"k": 1}], "true": [{"k": True}], "null": [{"k": None}], "1.5": [{"k": 1.5}]},
    ),
    (
        "sort asc is stable",
        [{"p": 2, "i": 0}, {"p": 1, "i": 1}, {"p": 2, "i": 2}],
        [{"operation": "sort", "field": "p"}],
        [{"p": 1, "i": 1}, {"p": 2, "i": 0}, {"p": 2, "i": 2}],
    ),
    (
        "sort desc is stable",
        [{"p": 2, "i": 0}, {"p": 1, "i": 1}, {"p": 2, "i": 2}],
        [{"operation": "sort", "field": "p", "order": "desc"}],
        [{"p": 2, "i": 0}, {"p": 2, "i": 2}, {"p": 1, "i": 1}],
    ),
    (
        "sort puts nulls last ascending",
        [{"p": None}, {"p": 2}, {"p": 1}],
        [{"operation": "sort", "field": "p"}],
        [{"p": 1}, {"p": 2}, {"p": None}],
    ),
    (
        "sort puts nulls last descending",
        [{"p": None}, {"p": 1}, {"p": 2}],
        [{"operation": "sort", "field": "p", "order": "desc"}],
        [{"p": 2}, {"p": 1}, {"p": None}],
    ),
    (
        "join inner nests the match under as",
        ORDERS,
        [
            {
                "operation": "join",
                "right_source": USERS,
                "left_field": "user_id",
                "right_field": "id",
                "as": "user",
                "how": "inner",
            }
        ],
        [
            {"user_id": 2, "total": 5, "user": USERS[1]},
            {"user_id": 1, "total": 9, "user": USERS[0]},
        ],
    ),
    (
        "join left keeps unmatched items with a null match",
        ORDERS[:2],
        [
            {
                "operation": "join",
                "right_source": USERS,
                "left_field": "user_id",
                "right_field": "id",
                "as": "user",
            }
        ],
        [{"user_id": 2, "total": 5, "user": USERS[1]}, {"user_id": 3, "total": 7, "user": None}],
    ),
    (
        "join without as merges the match, right wins (pipeline_ex)",
        [{"id": 1, "name": "old", "x": 0}, {"id": 5}],
        [{"operation": "join", "right_source": USERS, "join_key": "id"}],
        [{"id": 1, "name": "ann", "x": 0}, {"id": 5}],
    ),
    (
        "join against a single object",
        [{"id": 1}],
        [
            {
                "operation": "join",
                "right_source": {"id": 1, "v": 2},
                "join_key": "id",
                "how": "inner",
            }
        ],
        [{"id": 1, "v": 2}],
    ),
    (
        "join takes the first match and matches by JSON value",
        [{"k": [1, 2]}],
        [
            {
                "operation": "join",
                "right_source": [{"k": [1, 2], "n": 1}, {"k": [1, 2], "n": 2}],
                "join_key": "k",
                "as": "m",
            }
        ],
        [{"k": [1, 2], "m": {"k": [1, 2], "n": 1}}],
    ),
    ("limit", [1, 2, 3], [{"operation": "limit", "count": 2}], [1, 2]),
    ("limit beyond the end", [1], [{"operation": "limit", "count": 5}], [1]),
    (
        "unique by field, first wins",
        FINDINGS,
        [{"operation": "unique", "field": "file"}],
        [FINDINGS[0], FINDINGS[1]],
    ),
    (
        "unique whole items",
        [{"a": 1, "b": 2}, {"b": 2, "a": 1}, 3, 3],
        [{"operation": "unique"}],
        [{"a": 1, "b": 2}, 3],
    ),
    (
        "unique tolerates keys JSON cannot sort",
        [{1: "a", "b": 2}, {1: "a", "b": 2}],
        [{"operation": "unique"}],
        [{1: "a", "b": 2}],
    ),
    (
        "operations chain in order",
        FINDINGS,
        [
            {"operation": "filter", "condition": "severity == 'error'"},
            {"operation": "sort", "field": "score"},
            {"operation": "map", "fields": ["file", "line"]},
            {"operation": "limit", "count": 1},
        ],
        [{"file": "a.py", "line": 9}],
    ),
    ("no operations return the input", {"a": 1}, [], {"a": 1}),
]


@pytest.mark.parametrize(
    ("data", "ops", "expected"), [c[1:] for c in APPLY_CASES], ids=[c[0] for c in APPLY_CASES]
)
def test_operations(data: Any, ops: list[dict[str, Any]], expected: Any) -> None:
    """Each operation form gives the documented result, without mutating its input."""
    before = copy.deepcopy(data)
    assert run(data, *ops) == expected
    assert data == before


def test_filter_value_and_right_source_go_through_resolve() -> None:
    """Templates in `value` and `right_source` are rendered by the resolve callback."""
    scope = {"{{inputs.min}}": 0.5, "{{steps.users.result}}": USERS}
    resolved = run(
        [{"score": 0.9, "id": 2}, {"score": 0.1, "id": 1}],
        {"operation": "filter", "field": "score", "op": ">", "value": "{{inputs.min}}"},
        {
            "operation": "join",
            "right_source": "{{steps.users.result}}",
            "join_key": "id",
            "as": "u",
        },
        resolve=lambda v: scope.get(v, v) if isinstance(v, str) else v,
    )
    assert resolved == [{"score": 0.9, "id": 2, "u": USERS[1]}]


def test_expressions_see_item_fields_and_item() -> None:
    """Object items expose their fields plus `item`; other items are `item` and `value`."""
    seen: list[dict[str, Any]] = []

    def recording(expression: str, names: Mapping[str, Any]) -> Any:
        seen.append(dict(names))
        return True

    ops = OPERATIONS.validate_python([{"operation": "filter", "condition": "x"}])
    apply_operations([{"a": 1}, 5], ops, evaluate=recording)
    assert seen == [{"item": {"a": 1}, "a": 1}, {"item": 5, "value": 5}]


def test_an_item_field_named_item_wins_over_the_whole_item() -> None:
    """A field literally called `item` is what the name `item` means."""
    seen: list[Any] = []
    ops = OPERATIONS.validate_python([{"operation": "filter", "condition": "x"}])
    apply_operations([{"item": 7}], ops, evaluate=lambda e, n: seen.append(n["item"]))
    assert seen == [7]


def test_evaluator_pipeline_errors_pass_through_with_a_note() -> None:
    """A ConditionError from the evaluator is re-raised as is, noting operation and item."""

    def broken(expression: str, names: Mapping[str, Any]) -> Any:
        raise ConditionError("unknown name 'sev'", expression=expression)

    ops = OPERATIONS.validate_python([{"operation": "filter", "condition": "sev == 1"}])
    with pytest.raises(ConditionError) as info:
        apply_operations([{"a": 1}], ops, evaluate=broken)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "operation 0 (filter)" in notes
    assert "item 0" in notes


ERROR_CASES: list[tuple[str, Any, list[dict[str, Any]], str]] = [
    (
        "filter on an object",
        {"a": 1},
        [{"operation": "filter", "condition": "x"}],
        "operation 0 (filter): needs a list, got an object",
    ),
    (
        "map on a string",
        "abc",
        [{"operation": "map", "fields": ["a"]}],
        "operation 0 (map): needs a list, got a string",
    ),
    (
        "sort after group_by",
        FINDINGS,
        [{"operation": "group_by", "field": "file"}, {"operation": "sort", "field": "line"}],
        "operation 1 (sort): needs a list, got an object (group_by and aggregate return an object",
    ),
    (
        "limit on null",
        None,
        [{"operation": "limit", "count": 1}],
        "operation 0 (limit): needs a list, got null",
    ),
    (
        "sort with a missing field",
        [{"priority": 1}, {"priority": 2}, {"priority": 3}, {}],
        [{"operation": "sort", "field": "priority"}],
        "operation 0 (sort): field 'priority' missing in item 3",
    ),
    (
        "sort incomparable values",
        [{"p": 1}, {"p": "high"}],
        [{"operation": "sort", "field": "p"}],
        "operation 0 (sort): cannot compare values of field 'p': integer, string",
    ),
    (
        "sort scalars",
        [3, 1],
        [{"operation": "sort", "field": "p"}],
        "item 0 is an integer, not an object with field 'p'",
    ),
    (
        "filter ordering a string against a number",
        [{"s": "0.9"}],
        [{"operation": "filter", "field": "s", "op": ">", "value": 0.5}],
        "operation 0 (filter): cannot apply '>' to a string and a float in item 0",
    ),
    (
        "filter contains on a number",
        [{"s": 5}],
        [{"operation": "filter", "field": "s", "op": "contains", "value": 5}],
        "cannot apply 'contains' to an integer and an integer in item 0",
    ),
    (
        "filter in a number",
        [{"s": 5}],
        [{"operation": "filter", "field": "s", "op": "in", "value": 5}],
        "cannot apply 'in' to an integer and an integer in item 0",
    ),
    (
        "filter by field on scalars",
        [1],
        [{"operation": "filter", "field": "s", "op": "==", "value": 1}],
        "item 0 is an integer, not an object",
    ),
    (
        "map a field of a scalar item",
        [{"name": "a"}, "b"],
        [{"operation": "map", "field": "name", "expression": "upper(name)"}],
        "operation 0 (map): item 1 is a string, not an object with field 'name'",
    ),
    (
        "map rename on a scalar",
        [[1]],
        [{"operation": "map", "mapping": {"a": "b"}}],
        "item 0 is a list, not an object",
    ),
    (
        "an expression failing on an item",
        [{"name": "a"}, {"nom": "b"}],
        [{"operation": "map", "field": "name", "expression": "upper(name)"}],
        "operation 0 (map): expression 'upper(name)' failed on item 1",
    ),
    (
        "aggregate sum of a string",
        [{"score": 1}, {"score": "2"}],
        [{"operation": "aggregate", "field": "score"}],
        "operation 0 (aggregate): field 'score' in item 1 is a string, not a number",
    ),
    (
        "aggregate average of booleans",
        [True],
        [{"operation": "aggregate", "function": "average"}],
        "the item in item 0 is a boolean, not a number",
    ),
    (
        "aggregate min of mixed",
        [1, "a"],
        [{"operation": "aggregate", "function": "min"}],
        "cannot compare values of integer, string",
    ),
    (
        "aggregate with field on scalars",
        [1],
        [{"operation": "aggregate", "field": "x"}],
        "item 0 is an integer, not an object with field 'x'",
    ),
    (
        "aggregate on an object",
        {"a": 1},
        [{"operation": "aggregate"}],
        "operation 0 (aggregate): needs a list",
    ),
    (
        "group_by a list value",
        [{"k": [1]}],
        [{"operation": "group_by", "field": "k"}],
        "operation 0 (group_by): field 'k' in item 0 is a list; cannot group by it",
    ),
    (
        "group_by a missing field",
        [{"k": 1}, {}],
        [{"operation": "group_by", "field": "k"}],
        "field 'k' missing in item 1",
    ),
    (
        "join an unresolved template",
        [{"id": 1}],
        [{"operation": "join", "right_source": "{{steps.nope}}", "join_key": "id"}],
        "operation 0 (join): right_source is a string, not a list (did its template resolve?)",
    ),
    (
        "join right items that are not objects",
        [{"id": 1}],
        [{"operation": "join", "right_source": [1], "join_key": "id"}],
        "right_source item 0 is an integer, not an object",
    ),
    (
        "join right item missing its key",
        [{"id": 1}],
        [{"operation": "join", "right_source": [{"x": 1}], "join_key": "id"}],
        "field 'id' missing in right_source item 0",
    ),
    (
        "join left item missing its key",
        [{"x": 1}],
        [{"operation": "join", "right_source": USERS, "join_key": "id"}],
        "operation 0 (join): field 'id' missing in item 0",
    ),
    (
        "unique with a missing field",
        [{"f": 1}, {}],
        [{"operation": "unique", "field": "f"}],
        "operation 0 (unique): field 'f' missing in item 1",
    ),
]


@pytest.mark.parametrize(
    ("data", "ops", "message"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_data_errors_raise_step_failed(data: Any, ops: list[dict[str, Any]], message: str) -> None:
    """Data that does not fit raises StepFailed(code=transform_failed) naming operation and item."""
    with pytest.raises(StepFailed) as info:
        run(data, *ops)
    assert info.value.code == "transform_failed"
    assert not info.value.retryable
    assert message in str(info.value)
