"""The function registry: results, arity, and errors that never escape as Python exceptions."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.errors import ConditionError
from pipelines.expressions import FUNCTIONS, Scope, evaluate
from pipelines.expressions.functions import call_function, check_call, to_text

SCOPE = Scope(
    inputs={
        "nums": [3, 1, 2],
        "words": ["b", "a"],
        "flags": [True, False],
        "empty": [],
        "m": {"a": 1, "b": 2},
        "text": "Hello",
        "none": None,
    }
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("length(inputs.nums)", 3),
        ("length('abc')", 3),
        ("length(inputs.m)", 2),
        ("length(inputs.none)", 0),
        ("contains(inputs.nums, 2)", True),
        ("contains('abc', 'd')", False),
        ("startsWith(inputs.text, 'He')", True),
        ("startsWith(inputs.none, 'He')", False),
        ("endsWith(inputs.text, 'lo')", True),
        ("endsWith('abc', 'b')", False),
        ("any(inputs.flags)", True),
        ("any(inputs.empty)", False),
        ("any(inputs.none)", False),
        ("all(inputs.flags)", False),
        ("all([1, 'x'])", True),
        ("all(inputs.empty)", True),
        ("count(inputs.nums)", 3),
        ("count([1, 2, 1], 1)", 2),
        ("count([1, true], 1)", 1),
        ("count(inputs.none)", 0),
        ("sum(inputs.nums)", 6),
        ("sum([0.5, 1])", 1.5),
        ("sum(inputs.empty)", 0),
        ("average(inputs.nums)", 2.0),
        ("min(inputs.nums)", 1),
        ("max(inputs.nums)", 3),
        ("min(4, 2, 8)", 2),
        ("max(4, 2.5)", 4),
        ("max(inputs.words)", "b"),
        ("min([7])", 7),
        ("isEmpty(inputs.empty)", True),
        ("isEmpty(inputs.none)", True),
        ("isEmpty('')", True),
        ("isEmpty(inputs.m)", False),
        ("isEmpty(0)", False),
        ("plus(1, 2)", 3),
        ("add(1, 2, 3)", 6),
        ("add('a', 'b')", "ab"),
        ("multiply(6, 7)", 42),
        ("multiply(2, 3, 4)", 24),
        ("subtract(10, 4)", 6),
        ("divide(10, 4)", 2.5),
        ("round(2.5)", 3),
        ("round(-2.5)", -3),
        ("round(2.4)", 2),
        ("round(1.005, 2)", 1.01),
        ("round(1234, -2)", 1200),
        ("round(7)", 7),
        ("floor(2.7)", 2),
        ("floor(-2.5)", -3),
        ("ceil(2.1)", 3),
        ("abs(-4)", 4),
        ("abs(-1.5)", 1.5),
        ("lower(inputs.text)", "hello"),
        ("upper('a')", "A"),
        ("toString(12)", "12"),
        ("str(true)", "true"),
        ("str(null)", ""),
        ("toString(inputs.nums)", "[3,1,2]"),
        ("toString(inputs.m)", '{"a":1,"b":2}'),
        ("toNumber('42')", 42),
        ("toNumber(' 4.5 ')", 4.5),
        ("toNumber(3)", 3),
        ("toNumber(true)", 1),
        ("int('7')", 7),
        ("int(7.9)", 7),
        ("int('7.9')", 7),
        ("float('2')", 2.0),
        ("float(2)", 2.0),
        ("keys(inputs.m)", ["a", "b"]),
        ("values(inputs.m)", [1, 2]),
        ("keys(inputs.none)", []),
        ("join(inputs.words, '-')", "b-a"),
        ("join([1, null, true])", "1, , true"),
        ("default(inputs.none, 'x')", "x"),
        ("default(inputs.missing, 'x')", "x"),
        ("default(0, 'x')", 0),
        ("length(inputs.nums) > 2 and max(inputs.nums) == 3", True),
    ],
)
def test_functions(text: str, expected: Any) -> None:
    """Every registered function gives the documented result."""
    result = evaluate(text, SCOPE)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("length(5)", "length(): expected a string, list or map, got number"),
        ("startsWith(1, 'a')", "startsWith(): expected a string, got number"),
        ("any('abc')", "any(): expected a list, got string"),
        ("sum(['a'])", "sum(): expected a list of numbers, got string"),
        ("sum([true])", "sum(): expected a list of numbers, got boolean"),
        ("average(inputs.empty)", "average(): average of an empty list"),
        ("average(inputs.none)", "average(): average of an empty list"),
        ("min(inputs.empty)", "min(): needs at least one value"),
        ("max([1, 'a'])", "max(): values must be all numbers or all strings"),
        ("multiply('a', 1000000000)", "multiply(): cannot apply '*' to string and number"),
        ("divide(1, 0)", "divide(): division by zero"),
        ("round('a')", "round(): expected a number, got string"),
        ("round(1.5, 0.5)", "round(): digits must be a whole number"),
        ("round(1, 99)", "round(): digits must be a whole number between -20 and 20"),
        ("round(1e999)", "round():"),
        ("floor(1e999)", "floor():"),
        ("ceil(1e999 - 1e999)", "ceil():"),
        ("int(1e999)", "int():"),
        ("lower(1)", "lower(): expected a string, got number"),
        ("toNumber('abc')", "toNumber(): 'abc' is not a number"),
        ("toNumber('nan')", "toNumber(): 'nan' is not a number"),
        ("toNumber([1])", "toNumber(): cannot convert a list to a number"),
        ("keys([1])", "keys(): expected a map, got list"),
        ("join(inputs.words, 1)", "join(): expected a string, got number"),
        ("abs('x')", "abs(): expected a number, got string"),
        ("contains(1, 1)", "contains(): cannot look inside a number"),
    ],
)
def test_function_errors_are_condition_errors(text: str, message: str) -> None:
    """Function failures, including Python TypeError/ValueError/Overflow, name the function."""
    with pytest.raises(ConditionError) as info:
        evaluate(text, SCOPE)
    assert message in info.value.detail
    assert info.value.expression == text


def test_min_max_mixed_args() -> None:
    """min/max over several arguments refuse to mix strings and numbers."""
    with pytest.raises(ConditionError, match="all numbers or all strings"):
        evaluate("min(1, 'a')", SCOPE)


@pytest.mark.parametrize(
    ("name", "nargs", "problem"),
    [
        ("length", 0, "length() takes 1 argument, got 0"),
        ("count", 3, "count() takes 1 to 2 arguments, got 3"),
        ("add", 1, "add() takes at least 2 arguments, got 1"),
        ("subtract", 3, "subtract() takes 2 arguments, got 3"),
        ("eval", 1, "unknown function 'eval'"),
        ("__import__", 1, "unknown function '__import__'"),
        ("length", 1, None),
        ("max", 9, None),
    ],
)
def test_arity_checks(name: str, nargs: int, problem: str | None) -> None:
    """check_call() reports unknown functions and wrong argument counts."""
    assert check_call(name, nargs) == problem


def test_call_function_checks_arity_at_run_time() -> None:
    """call_function() refuses a wrong argument count even for hand-built calls."""
    with pytest.raises(ConditionError, match="takes 2 arguments"):
        call_function("subtract", [1])


def test_registry_holds_the_documented_functions() -> None:
    """Every function named in the pipeline format is registered."""
    documented = (
        "length contains startsWith endsWith any all count sum average min max isEmpty "
        "plus multiply add subtract divide round floor ceil abs lower upper toString str "
        "toNumber int float keys values join default"
    )
    assert set(documented.split()) <= set(FUNCTIONS)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.5, "2.5"),
        ("s", "s"),
        ([1, "a"], '[1,"a"]'),
        ({"k": [1]}, '{"k":[1]}'),
        (("t",), '["t"]'),
        ({"é": 1}, '{"é":1}'),
    ],
)
def test_to_text(value: Any, text: str) -> None:
    """to_text(): null is empty, booleans lower-case, containers compact JSON."""
    assert to_text(value) == text
