"""Evaluation: operators, name resolution, strict and lenient paths, error reporting."""

from __future__ import annotations

import dataclasses
import re
import timeit
from typing import Any

import pytest

from pipelines.errors import ConditionError, ConfigError
from pipelines.expressions import Scope, evaluate, parse, truthy
from pipelines.expressions._nodes import Binary, Const, Path, Unary

SCOPE = Scope(
    steps={
        "analyze": {"findings": [{"file": "a.py", "line": 3}, {"file": "b.py", "line": 9}]},
        "review": {"success": True, "score": 7},
        "my-step": {"ok": True},
        "skipped": {"success": True, "skipped": True, "reason": "condition false"},
    },
    inputs={"code": "print(1)", "limit": 5, "tags": ["x", "y"]},
    global_vars={"team": "core"},
    state={"counter": 3, "review": "state wins"},
    loop={"file": "c.py", "index": 1, "item": "c.py", "parent": {"file": "outer.py"}},
    known_steps=frozenset({"analyze", "review", "my-step", "skipped", "later"}),
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # equality never fails, and booleans are not numbers
        ("1 == 1", True),
        ("1 == 1.0", True),
        ("1 != 2", True),
        ("'a' == 'a'", True),
        ("'1' == 1", False),
        ("true == 1", False),
        ("false == 0", False),
        ("null == null", True),
        ("null != 0", True),
        ("[1, 2] == [1, 2]", True),
        ("'a' != 1", True),
        # ordering between numbers or strings
        ("2 > 1", True),
        ("1 < 2.5", True),
        ("2 >= 2", True),
        ("2 <= 1", False),
        ("'abc' < 'abd'", True),
        # arithmetic
        ("1 + 2", 3),
        ("'a' + 'b'", "ab"),
        ("[1] + [2]", [1, 2]),
        ("5 - 7", -2),
        ("6 * 7", 42),
        ("7 / 2", 3.5),
        ("7 % 3", 1),
        ("-3 + 1", -2),
        ("- -3", 3),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 2 - 3", 5),
        ("1e308 * 10", float("inf")),
        # boolean logic returns booleans
        ("true and false", False),
        ("true && 1", True),
        ("false or 0", False),
        ("0 || 'x'", True),
        ("not 0", True),
        ("!''", True),
        ("not [1]", False),
        ("false and 1 / 0", False),
        ("true or 1 / 0", True),
        # contains / in / matches / between
        ("'hello' contains 'ell'", True),
        ("[1, 2] contains 2", True),
        ("[1, 2] contains true", False),
        ("inputs contains 'code'", True),
        ("null contains 'x'", False),
        ("'x' in inputs.tags", True),
        ("'z' not in inputs.tags", True),
        ("'ell' in 'hello'", True),
        ("'x' in null", False),
        ("'abc123' matches '\\d+$'", True),
        ("'abc' matches '^b'", False),
        ("null matches 'x'", False),
        ("3 between 1 and 5", True),
        ("1 between 1 and 5", True),
        ("5 between 1 and 5", True),
        ("6 between 1 and 5", False),
        ("'b' between 'a' and 'c'", True),
        ("3 between 1 and 5 and false", False),
        # postfix on literals
        ("'abc'.length", 3),
        ("[1, 2, 3][-1]", 3),
        ("'abc'[0]", "a"),
        ("[[1, 2]][0][1]", 2),
    ],
)
def test_operators(text: str, expected: Any) -> None:
    """Each operator gives the documented result, with Python-like numbers and strings."""
    result = evaluate(text, SCOPE)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("'a' > 1", "cannot compare string > number"),
        ("null > 1", "cannot compare null > number"),
        ("true < 2", "cannot compare boolean < number"),
        ("[1] < [2]", "cannot compare list < list"),
        ("'a' - 'b'", "cannot apply '-' to string and string"),
        ("'a' * 1000000000", "cannot apply '*' to string and number"),
        ("[1] * 3", "cannot apply '*' to list and number"),
        ("'a' + 1", "cannot apply '+' to string and number"),
        ("1 / 0", "division by zero"),
        ("1 % 0", "division by zero"),
        ("-'a'", "cannot negate a string"),
        ("'abc' contains 1", "a string cannot contain a number"),
        ("5 contains 1", "cannot look inside a number"),
        ("1 matches 'x'", "'matches' needs a string"),
        ("'x' matches 1", "'matches' needs a string"),
        ("'x' matches '('", "invalid regular expression"),
        ("'x' matches '" + "a" * 501 + "'", "longer than 500"),
        ("'x' between 1 and 2", "cannot compare string >= number"),
        ("nobody > 1", "unknown name 'nobody'"),
        ("steps.nobody", "unknown step 'nobody'"),
    ],
)
def test_errors_name_the_expression(text: str, message: str) -> None:
    """Type errors, bad regexes, division by zero and unknown names are ConditionErrors."""
    with pytest.raises(ConditionError) as info:
        evaluate(text, SCOPE)
    assert message in info.value.detail
    assert info.value.expression == text
    assert repr(text) in str(info.value)


def test_matches_refuses_huge_text() -> None:
    """'matches' refuses to search text longer than 100 000 characters."""
    scope = Scope(inputs={"big": "a" * 100_001})
    with pytest.raises(ConditionError, match="longer than 100000"):
        evaluate("inputs.big matches 'a'", scope)


def test_matches_uses_search_semantics() -> None:
    """'matches' finds the pattern anywhere (re.search), not only at the start."""
    assert evaluate("'xxabc' matches 'abc'", SCOPE) is True


def test_error_on_a_parsed_tree_shows_its_source() -> None:
    """Evaluating an already parsed tree still names the expression in the error."""
    with pytest.raises(ConditionError) as info:
        evaluate(parse("inputs.limit / 0"), SCOPE)
    assert info.value.expression == "inputs.limit / 0"


def test_hand_built_tree_is_evaluated() -> None:
    """evaluate() accepts a tree built from the node classes."""
    tree = Binary("+", Const(1), Unary("-", Const(3)))
    assert evaluate(tree, SCOPE) == -2


def test_non_expression_object_is_rejected() -> None:
    """An object that is not a node is a ConditionError, not a KeyError."""
    with pytest.raises(ConditionError, match="not an expression"):
        evaluate(42, SCOPE)  # type: ignore[arg-type]


# ----------------------------------------------------------------- name resolution


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("steps.analyze.findings[0].file", "a.py"),
        ("steps.analyze.findings.1.line", 9),
        ("analyze.findings.length", 2),
        ("analyze.findings[-1].file", "b.py"),
        ('steps["my-step"].ok', True),
        ("inputs.limit", 5),
        ("inputs['code']", "print(1)"),
        ("global_vars.team", "core"),
        ("state.counter", 3),
        ("counter", 3),
        ("loop.file", "c.py"),
        ("file", "c.py"),
        ("index", 1),
        ("loop.parent.file", "outer.py"),
        ("review", "state wins"),
        ("steps.review.score", 7),
        ("later", None),
        ("steps.later", None),
        ("skipped.skipped", True),
        ("inputs.tags.length", 2),
        ("inputs.code.length", 8),
        ("inputs.length", 3),
        ("inputs[inputs.tags[0] + 'x'] == null", True),
    ],
)
def test_name_resolution(text: str, expected: Any) -> None:
    """Roots address their maps; bare names look in state, loop, steps, then declared steps."""
    assert evaluate(text, SCOPE) == expected


def test_dot_length_prefers_a_real_key() -> None:
    """.length is the key 'length' when the map has one, len() otherwise."""
    scope = Scope(inputs={"m": {"length": "long"}, "n": {"a": 1}})
    assert evaluate("inputs.m.length", scope) == "long"
    assert evaluate("inputs.n.length", scope) == 1


def test_numeric_dot_segment_reads_string_keys_of_maps() -> None:
    """.0 on a map reads the key '0' (JSON keys are strings)."""
    assert evaluate("inputs.m.0", Scope(inputs={"m": {"0": "zero"}})) == "zero"


@pytest.mark.parametrize(
    "text",
    [
        "review.skipped",
        "steps.review.missing.deeper",
        "inputs.nothing",
        "analyze.findings[5].file",
        "analyze.findings[-3]",
        "analyze.findings['x']",
        "analyze.findings.x",
        "inputs.limit.x",
        "inputs[[1]]",
        "loop.nothing",
        "later.anything.at.all",
        "steps.later.x",
        "inputs.code[true]",
    ],
)
def test_lenient_missing_paths_are_none(text: str) -> None:
    """In lenient mode (conditions) a missing key or index inside a value gives None."""
    assert evaluate(text, SCOPE) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("steps.review.missing", "'steps.review.missing': no key 'missing'"),
        ("steps.review.missing.deeper", "'steps.review.missing': no key 'missing'"),
        ("analyze.findings[5]", "no item 5 in a list of length 2"),
        ("inputs.limit.x", "a number has no 'x'"),
        ("later", "step 'later' has not run"),
        ("steps.later.x", "step 'later' has not run"),
        ("loop.nothing", "no key 'nothing'"),
    ],
)
def test_strict_missing_paths_raise(text: str, reason: str) -> None:
    """In strict mode (templates) an unresolved path is a ConditionError saying why."""
    with pytest.raises(ConditionError) as info:
        evaluate(text, SCOPE, strict=True)
    assert reason in info.value.detail


def test_strict_null_value_cannot_be_dereferenced() -> None:
    """In strict mode reading a key of a null value is an error naming the path."""
    scope = Scope(inputs={"x": None})
    assert evaluate("inputs.x", scope, strict=True) is None
    with pytest.raises(ConditionError, match="cannot read 'y' of null"):
        evaluate("inputs.x.y", scope, strict=True)


@pytest.mark.parametrize("strict", [False, True])
def test_unknown_names_fail_in_both_modes(strict: bool) -> None:
    """A name that is no root, variable, loop binding or declared step is always an error."""
    with pytest.raises(ConditionError, match="unknown name 'typo'"):
        evaluate("typo.findings", SCOPE, strict=strict)


def test_default_reads_its_first_argument_leniently() -> None:
    """default(x, fallback) in strict mode tolerates a missing x but not an unknown name."""
    assert evaluate("default(steps.review.missing, 'n/a')", SCOPE, strict=True) == "n/a"
    assert evaluate("default(steps.review.score, 0)", SCOPE, strict=True) == 7
    with pytest.raises(ConditionError, match="unknown name"):
        evaluate("default(typo, 0)", SCOPE, strict=True)


def test_no_attribute_access_on_python_objects() -> None:
    """Paths never reach Python attributes such as __class__ of non-container values."""
    scope = Scope(inputs={"obj": object()})
    assert evaluate("inputs.obj.__class__", scope) is None
    with pytest.raises(ConditionError):
        evaluate("inputs.obj.__class__", scope, strict=True)


def test_scope_child_replaces_fields() -> None:
    """Scope.child() returns a copy with the given fields replaced, the original untouched."""
    child = SCOPE.child(loop={"file": "z.py"})
    assert evaluate("loop.file", child) == "z.py"
    assert evaluate("loop.file", SCOPE) == "c.py"
    assert child.steps is SCOPE.steps
    with pytest.raises(dataclasses.FrozenInstanceError):
        SCOPE.loop = {}  # type: ignore[misc]


def test_empty_scope_defaults() -> None:
    """A default Scope has empty maps, so roots evaluate to {}."""
    assert evaluate("inputs", Scope()) == {}
    assert evaluate("loop.x", Scope()) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (0, False),
        (0.0, False),
        ("", False),
        ([], False),
        ({}, False),
        ((), False),
        (1, True),
        ("0", True),
        ([0], True),
        ({"a": 1}, True),
        (object(), True),
    ],
)
def test_truthy(value: Any, expected: bool) -> None:
    """truthy() follows Python truthiness."""
    assert truthy(value) is expected


def test_truthy_wraps_objects_that_refuse_bool() -> None:
    """A value whose __bool__ raises is reported as a ConditionError."""

    class Ambiguous:
        def __bool__(self) -> bool:
            raise ValueError("ambiguous")

    with pytest.raises(ConditionError, match="ambiguous"):
        truthy(Ambiguous())


def test_condition_error_is_a_config_error() -> None:
    """Evaluation errors are user errors (ConfigError), so runners do not retry them."""
    with pytest.raises(ConfigError):
        evaluate("1 / 0", SCOPE)


def test_simple_comparison_is_fast() -> None:
    """A parsed simple comparison evaluates in well under 50 µs (a few µs normally)."""
    tree = parse("analyze.findings.length > 0")
    per_call = min(timeit.repeat(lambda: evaluate(tree, SCOPE), number=2000, repeat=3)) / 2000
    assert per_call < 50e-6


def test_regex_cache_reuses_compiled_patterns() -> None:
    """Repeated 'matches' with one pattern compiles it once."""
    from pipelines.expressions.functions import _compile

    _compile.cache_clear()
    for _ in range(3):
        evaluate("'abc' matches 'b+c'", SCOPE)
    assert _compile.cache_info().misses == 1
    assert isinstance(_compile("b+c"), re.Pattern)


def test_path_node_on_a_call_result() -> None:
    """Postfix access works on any value, e.g. keys(m)[0]."""
    scope = Scope(inputs={"m": {"k": 1}})
    assert evaluate("keys(inputs.m)[0]", scope) == "k"
    assert isinstance(parse("keys(inputs.m)[0]"), Path)
