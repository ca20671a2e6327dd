"""evaluate_condition: strings, and/or/not maps, lists, constants and bad shapes."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.errors import ConditionError
from pipelines.expressions import Scope, evaluate_condition

SCOPE = Scope(
    steps={
        "analyze": {"findings": [{"file": "a.py"}]},
        "review": {"success": True},
        "skipped_step": {"success": True, "skipped": True, "reason": "condition false"},
    },
    inputs={"mode": "full", "limit": 0},
    known_steps=frozenset({"analyze", "review", "skipped_step", "later"}),
)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (None, True),
        (True, True),
        (False, False),
        ("analyze.findings.length > 0 and not review.skipped", True),
        ("skipped_step.skipped", True),
        ("not later", True),
        ("later.findings", False),
        ("inputs.limit", False),
        ("inputs.mode == 'full'", True),
        ("{{ steps.review.success }}", True),
        ("  {{inputs.limit}}  ", False),
        ({"and": ["inputs.mode == 'full'", "review.success"]}, True),
        ({"and": ["inputs.mode == 'full'", "inputs.limit"]}, False),
        ({"or": ["inputs.limit", "review.success"]}, True),
        ({"or": ["inputs.limit", False]}, False),
        ({"not": "inputs.limit"}, True),
        ({"not": {"not": True}}, True),
        ({"and": [{"or": [False, "review.success"]}, {"not": "later"}]}, True),
        ({"and": []}, True),
        ({"or": []}, False),
        (["review.success", "inputs.mode == 'full'"], True),
        (["review.success", "inputs.limit"], False),
        ([], True),
        ([True, {"or": [False, ["review.success"]]}], True),
        (("review.success",), True),
    ],
)
def test_conditions(condition: Any, expected: bool) -> None:
    """Strings are expressions, maps combine with and/or/not, lists mean all must hold."""
    assert evaluate_condition(condition, SCOPE) is expected


def test_and_short_circuits() -> None:
    """and stops at the first false condition, so later errors are not reached."""
    assert evaluate_condition({"and": [False, "1 / 0"]}, SCOPE) is False


def test_or_short_circuits() -> None:
    """or stops at the first true condition."""
    assert evaluate_condition({"or": [True, "1 / 0"]}, SCOPE) is True


def test_list_short_circuits() -> None:
    """A list stops at the first false item."""
    assert evaluate_condition(["false", "1 / 0"], SCOPE) is False


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (1, "got number"),
        (2.5, "got number"),
        ({"and": "x", "or": "y"}, "needs exactly one key"),
        ({}, "needs exactly one key"),
        ({"xor": []}, "unknown condition key 'xor'"),
        ({"and": "review.success"}, "'and' needs a list of conditions, got string"),
        ({"or": 3}, "'or' needs a list of conditions, got number"),
        ("", "empty expression"),
        ("a ==", "unexpected end of expression"),
        ("typo > 1", "unknown name 'typo'"),
        ({"not": "1 / 0"}, "division by zero"),
        (["review.success", {"and": [object()]}], "got object"),
        ("{{a}} and {{b}}", "unexpected character '{'"),
    ],
)
def test_bad_conditions(condition: Any, message: str) -> None:
    """Shapes that are not conditions, and failing expressions, are ConditionErrors."""
    with pytest.raises(ConditionError, match=message):
        evaluate_condition(condition, SCOPE)


def test_deeply_nested_condition_maps_are_refused() -> None:
    """A condition map nested beyond the limit is a ConditionError, not a RecursionError."""
    condition: Any = True
    for _ in range(2000):
        condition = {"not": condition}
    with pytest.raises(ConditionError, match="nested too deeply"):
        evaluate_condition(condition, SCOPE)


def test_deeply_nested_condition_lists_are_refused() -> None:
    """A list nested beyond the limit is a ConditionError."""
    condition: Any = True
    for _ in range(100):
        condition = [condition]
    with pytest.raises(ConditionError, match="nested too deeply"):
        evaluate_condition(condition, SCOPE)


def test_comparison_with_unrun_step_is_an_error() -> None:
    """Ordering against a declared-but-not-run step (None) is a type error, not False."""
    with pytest.raises(ConditionError, match="cannot compare null > number"):
        evaluate_condition("later.count > 0", SCOPE)
