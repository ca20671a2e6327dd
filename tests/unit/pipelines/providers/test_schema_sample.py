"""sample_instance: a deterministic, schema-valid value for every satisfiable schema."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.errors import ProviderError
from pipelines.providers.schema_sample import resolve_ref, sample_instance

FORMAT_CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER


def check(schema: dict[str, Any], **kwargs: Any) -> Any:
    value = sample_instance(schema, **kwargs)
    jsonschema.validate(value, schema, format_checker=FORMAT_CHECKER)
    return value


CASES: dict[str, dict[str, Any]] = {
    "type list": {"type": ["null", "integer"]},
    "nullable": {"type": "string", "nullable": True, "minLength": 3},
    "object": {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}},
        "required": ["a", "c"],
        "additionalProperties": {"type": "integer"},
    },
    "closed object": {"properties": {"a": {"const": 1}}, "additionalProperties": False},
    "min properties": {"type": "object", "minProperties": 2},
    "array bounds": {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 4},
    "unique enums": {"type": "array", "items": {"enum": ["x", "y", "z"]}, "minItems": 3,
                     "uniqueItems": True},
    "tuple": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}],
              "items": False},
    "contains": {"type": "array", "items": {"type": "integer"}, "contains": {"minimum": 10}},
    "enum": {"enum": ["red", "green"]},
    "const": {"const": {"k": [1, 2]}},
    "lengths": {"type": "string", "minLength": 12, "maxLength": 12},
    "pattern": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
    "pattern alternation": {"type": "string", "pattern": r"^(foo|bar)_[a-z]+\.py$"},
    "negated class": {"type": "string", "pattern": r"^[^a-z0-9]{2}$"},
    "date-time": {"type": "string", "format": "date-time"},
    "email": {"type": "string", "format": "email"},
    "uri": {"type": "string", "format": "uri"},
    "uuid": {"type": "string", "format": "uuid"},
    "ipv4": {"type": "string", "format": "ipv4"},
    "int bounds": {"type": "integer", "minimum": 7, "maximum": 9},
    "exclusive": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "draft4 exclusive": {"$schema": "http://json-schema.org/draft-04/schema#",
                         "type": "integer", "minimum": 5, "exclusiveMinimum": True},
    "negative range": {"type": "integer", "maximum": -10},
    "multipleOf int": {"type": "integer", "minimum": 11, "multipleOf": 5},
    "multipleOf float": {"type": "number", "minimum": 0.25, "multipleOf": 0.1},
    "boolean": {"type": "boolean"},
    "null": {"type": "null"},
    "anyOf": {"anyOf": [{"type": "string", "maxLength": 0, "minLength": 1}, {"type": "integer"}]},
    "oneOf overlap": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
    "allOf": {"allOf": [
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        {"properties": {"n": {"minimum": 4}, "s": {"type": "string"}}, "required": ["s"]},
    ]},
    "not": {"not": {"type": "string"}},
    "ref defs": {"$defs": {"p": {"type": "integer", "minimum": 2}},
                 "type": "object", "properties": {"p": {"$ref": "#/$defs/p"}}, "required": ["p"]},
    "ref definitions": {"definitions": {"s": {"type": "string", "pattern": "^ok"}},
                        "$ref": "#/definitions/s"},
    "recursive": {"$defs": {"node": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
        "$ref": "#/$defs/node"},
    "empty": {},
}  # fmt: skip


@pytest.mark.parametrize("schema", CASES.values(), ids=CASES.keys())
def test_sample_validates(schema: dict[str, Any]) -> None:
    """Each supported keyword yields a value its schema accepts."""
    check(schema)


@pytest.mark.parametrize("schema", CASES.values(), ids=CASES.keys())
def test_sample_is_deterministic(schema: dict[str, Any]) -> None:
    """Same schema, seed and hints: same value."""
    assert sample_instance(schema, seed="s") == sample_instance(schema, seed="s")


def test_seed_varies_sampled_strings() -> None:
    """Different seeds give different free-form strings (still valid)."""
    schema = {"type": "string"}
    assert check(schema, seed="a") != check(schema, seed="b")


def test_hints_are_used_when_valid_and_adapted_otherwise() -> None:
    """Valid hints win; list/object hints are fitted item by item; invalid ones are dropped."""
    schema = {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "maxLength": 5},
            "count": {"type": "integer", "minimum": 0},
            "items": {
                "type": "array",
                "maxItems": 2,
                "items": {
                    "type": "object",
                    "properties": {"file": {"type": "string"}, "kind": {"enum": ["a", "b"]}},
                    "required": ["file", "kind"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["summary", "count", "items"],
    }
    hints = {
        "summary": "far too long",
        "count": -3,
        "items": [{"file": "x.py", "extra": 1}, {"file": "y.py"}, {"file": "z.py"}],
    }
    value = check(schema, hints=hints)
    assert value["summary"] == "far t"
    assert value["count"] == 0
    assert [i["file"] for i in value["items"]] == ["x.py", "y.py"]
    assert check({"type": "string"}, hints={"ignored": 1}).startswith("sample-")


def test_unbuildable_pattern_raises_invalid_request() -> None:
    """A pattern we cannot build a match for raises ProviderError(invalid_request)."""
    with pytest.raises(ProviderError, match="no value found") as info:
        sample_instance({"type": "string", "pattern": "(?=x)y"})
    assert info.value.code == "invalid_request"


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 3, "maximum": 1},
        {"type": "array", "items": {"enum": [1]}, "minItems": 2, "uniqueItems": True},
        {"type": "object", "required": ["a"], "additionalProperties": False},
        {"type": "strng"},
        {"$ref": "https://example.com/schema.json"},
        {"$ref": "#/$defs/missing"},
    ],
)
def test_impossible_or_invalid_schemas_raise(schema: dict[str, Any]) -> None:
    """Unsatisfiable, invalid or non-local-ref schemas raise invalid_request, not garbage."""
    with pytest.raises(ProviderError) as info:
        sample_instance(schema)
    assert info.value.code == "invalid_request"


def test_resolve_ref_follows_json_pointers() -> None:
    """Local refs resolve, with ~1 and ~0 escapes."""
    root = {"$defs": {"a/b": {"type": "integer"}, "c~d": [{"const": 1}]}}
    assert resolve_ref(root, "#/$defs/a~1b") == {"type": "integer"}
    assert resolve_ref(root, "#/$defs/c~0d/0") == {"const": 1}
    assert resolve_ref(root, "#") is root


# ------------------------------------------------------------------ hypothesis

_names = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4))


@st.composite
def _strings(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.integers(0, 6))
    schema: dict[str, Any] = {"type": "string", "minLength": low}
    if draw(st.booleans()):
        schema["maxLength"] = low + draw(st.integers(0, 6))
    choice = draw(st.sampled_from(["", "pattern", "format"]))
    if choice == "pattern":
        schema = {"type": "string", "pattern": draw(st.sampled_from(
            [r"^[a-z]+$", r"^\d{3}$", r"^[A-Z][a-z]*-\d+$", r"x", r"^(ab|cd)+$", r"\w+@\w+"]
        ))}  # fmt: skip
    elif choice == "format":
        fmt = draw(st.sampled_from(["date-time", "email", "uri", "uuid", "ipv4", "date"]))
        schema = {"type": "string", "format": fmt}
    return schema


@st.composite
def _numbers(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["integer", "number"]))
    schema: dict[str, Any] = {"type": kind}
    low = draw(st.one_of(st.none(), st.integers(-50, 50)))
    if low is not None:
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        step = draw(st.sampled_from([1, 2, 3, 5, 0.5]))
        schema["multipleOf"] = step
        if low is not None:
            schema["maximum"] = low + 20  # wide enough to hold a multiple
    elif low is not None and draw(st.booleans()):
        schema["maximum"] = low + draw(st.integers(2, 10))
    return schema


_leaves = st.one_of(
    _strings(),
    _numbers(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(_scalars, min_size=1, max_size=4, unique_by=repr).map(lambda v: {"enum": v}),
    _scalars.map(lambda v: {"const": v}),
)


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    objects = st.builds(
        lambda props, required, closed: {
            "type": "object",
            "properties": props,
            "required": sorted(set(required) & set(props)),
            "additionalProperties": not closed,
        },
        st.dictionaries(_names, children, max_size=4),
        st.lists(_names, max_size=4),
        st.booleans(),
    )
    arrays = st.builds(
        lambda items, low, span: {"type": "array", "items": items, "minItems": low,
                                  "maxItems": low + span},
        children, st.integers(0, 3), st.integers(0, 3),
    )  # fmt: skip
    nullable = children.map(lambda c: {"anyOf": [c, {"type": "null"}]})
    return st.one_of(objects, arrays, nullable)


_schemas = st.recursive(_leaves, _extend, max_leaves=12)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(_schemas, st.text(max_size=8))
def test_generated_schemas_always_get_valid_samples(schema: dict[str, Any], seed: str) -> None:
    """For any schema from a small JSON Schema strategy, the sample validates."""
    value = sample_instance(schema, seed=seed)
    jsonschema.validate(value, schema, format_checker=FORMAT_CHECKER)
    assert sample_instance(schema, seed=seed) == value


def test_pattern_samples_really_match() -> None:
    """Constructed pattern matches pass re.search, like the validator's check."""
    for pattern in (r"^[A-Z]{2,4}_\d+$", r"^v\d+\.\d+\.\d+$", r"^[a-f0-9]{8}$"):
        assert re.search(pattern, sample_instance({"type": "string", "pattern": pattern}))


def test_number_hint_fills_a_string_field() -> None:
    """A numeric hint is written as text where the schema wants a string."""
    schema = {"type": "object", "properties": {"line": {"type": "string"}}, "required": ["line"]}
    assert check(schema, hints={"line": 12}) == {"line": "12"}
