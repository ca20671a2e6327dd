"""Property tests: no input text makes the language raise anything but ConditionError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.errors import ConditionError
from pipelines.expressions import Scope, evaluate, evaluate_condition, parse, unparse

SCOPE = Scope(
    steps={"a": {"n": 2, "items": [1, "x", None], "text": "abc", "m": {"k": 1}}},
    inputs={"limit": 3, "name": "core"},
    state={"flag": True},
    loop={"item": "f.py", "index": 0},
    known_steps=frozenset({"a", "later"}),
)

_TOKENS = [
    "a",
    "steps",
    "inputs",
    "state",
    "loop",
    "later",
    "typo",
    "n",
    "items",
    "text",
    "m",
    "k",
    "limit",
    "length",
    "item",
    "index",
    "flag",
    ".",
    "[",
    "]",
    "(",
    ")",
    ",",
    "0",
    "1",
    "-1",
    "2.5",
    "1e400",
    "'x'",
    '"abc"',
    "'('",
    "''",
    "true",
    "false",
    "null",
    "and",
    "or",
    "not",
    "&&",
    "||",
    "!",
    "==",
    "!=",
    ">",
    "<",
    ">=",
    "<=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "contains",
    "matches",
    "between",
    "in",
    "length",
    "sum",
    "average",
    "min",
    "max",
    "count",
    "round",
    "floor",
    "toNumber",
    "join",
    "default",
    "multiply",
    "divide",
    "keys",
    "isEmpty",
    "any",
    "all",
    "toString",
]
_GRAMMAR_TEXT = st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=25).map(" ".join)
_SETTINGS = settings(max_examples=300, deadline=None)


def _outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, Exception | None]:
    """Run fn; return (result, None) or (None, the ConditionError). Anything else propagates."""
    try:
        return fn(*args, **kwargs), None
    except ConditionError as exc:
        return None, exc


@_SETTINGS
@given(st.text())
def test_parse_arbitrary_text(text: str) -> None:
    """parse() of any text returns a tree that round-trips, or raises ConditionError."""
    tree, error = _outcome(parse, text)
    if error is None:
        assert parse(unparse(tree)) == tree
    else:
        assert isinstance(error, ConditionError)
        assert error.position is not None or "nested too deeply" in error.detail


@_SETTINGS
@given(st.text())
def test_evaluate_condition_arbitrary_text(text: str) -> None:
    """evaluate_condition() of any text gives a bool or raises ConditionError."""
    result, error = _outcome(evaluate_condition, text, SCOPE)
    assert isinstance(result, bool) or isinstance(error, ConditionError)


@_SETTINGS
@given(_GRAMMAR_TEXT)
def test_grammar_built_text(text: str) -> None:
    """Token soup from the language's own vocabulary parses, evaluates, or raises ConditionError."""
    tree, error = _outcome(parse, text)
    if error is not None:
        assert isinstance(error, ConditionError)
        return
    assert parse(unparse(tree)) == tree
    for strict in (False, True):
        _, error = _outcome(evaluate, tree, SCOPE, strict=strict)
        assert error is None or (isinstance(error, ConditionError) and error.expression)
    result, error = _outcome(evaluate_condition, text, SCOPE)
    assert isinstance(result, bool) or isinstance(error, ConditionError)
