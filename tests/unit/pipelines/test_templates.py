"""Rendering ``{{...}}`` templates: typed whole values, text mixing, recursion, errors."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.errors import TemplateError
from pipelines.expressions import Scope
from pipelines.templates import has_template, render, template_expressions

SCOPE = Scope(
    steps={
        "a": {"n": 21, "items": [1, 2], "info": {"k": "v"}, "nothing": None, "ok": True},
        "s": {"result": {"y": "why"}},
        "my-step": {"text": "dashed"},
    },
    inputs={"code": "x = 1", "ratio": 0.5},
    global_vars={"team": "core"},
    state={"count": 3},
    loop={"file": "src/a.py", "index": 0, "item": "src/a.py"},
    known_steps=frozenset({"a", "s", "my-step", "later"}),
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{steps.a.items}}", [1, 2]),
        ("{{ steps.a.n }}", 21),
        ("{{steps.a.info}}", {"k": "v"}),
        ("{{steps.a.nothing}}", None),
        ("{{steps.a.ok}}", True),
        ("{{inputs.ratio}}", 0.5),
        ("{{\n  steps.a.n\n}}", 21),
        ("{{multiply(steps.a.n, 2)}}", 42),
        ("{{steps.s.result.y}}", "why"),
        ("{{loop.file}}", "src/a.py"),
        ("{{state.count}}", 3),
        ("{{global_vars.team}}", "core"),
        ('{{steps["my-step"].text}}', "dashed"),
        ("{{ steps.a.items.length > 1 }}", True),
    ],
)
def test_whole_value_template_keeps_its_type(template: str, expected: Any) -> None:
    """A string that is exactly one template becomes the value itself, type and all."""
    result = render(template, SCOPE)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("file: {{loop.file}}", "file: src/a.py"),
        ("n={{steps.a.n}}, r={{inputs.ratio}}", "n=21, r=0.5"),
        ("items {{steps.a.items}}", "items [1,2]"),
        ("info {{steps.a.info}}", 'info {"k":"v"}'),
        ("[{{steps.a.nothing}}]", "[]"),
        ("ok={{steps.a.ok}}", "ok=true"),
        ("{{steps.a.n}}{{steps.a.n}}", "2121"),
        (" {{steps.a.n}}", " 21"),
        ("{{steps.a.n}}\n", "21\n"),
        ("team {{ global_vars.team }}!", "team core!"),
    ],
)
def test_mixed_text_renders_values_as_text(template: str, expected: str) -> None:
    """Text around templates makes the result a string; null is empty, containers are JSON."""
    assert render(template, SCOPE) == expected


def test_nested_structures_are_rendered_recursively() -> None:
    """Dicts, lists and tuples are walked; keys and non-string leaves are left as they are."""
    value = {
        "{{steps.a.n}}": "{{steps.a.n}}",
        "list": ["{{loop.file}}", 3, None, {"deep": "x{{state.count}}"}],
        "tuple": ("{{steps.a.items}}",),
        "flag": True,
    }
    assert render(value, SCOPE) == {
        "{{steps.a.n}}": 21,
        "list": ["src/a.py", 3, None, {"deep": "x3"}],
        "tuple": ([1, 2],),
        "flag": True,
    }


@pytest.mark.parametrize(
    "text",
    ["plain text", "", "a { b } c", "unclosed {{ steps.a.n", "stray }} braces", "{ {x} }"],
)
def test_text_without_a_complete_template_is_unchanged(text: str) -> None:
    """Text without a closed {{ ... }} (including an unclosed '{{') is returned as is."""
    assert render(text, SCOPE) == text


def test_plain_strings_are_returned_as_the_same_object() -> None:
    """The fast path returns a string without '{{' untouched (no copy)."""
    text = "no templates here"
    assert render(text, SCOPE) is text


@pytest.mark.parametrize(
    ("template", "expression", "detail"),
    [
        ("{{steps.a.missing}}", "steps.a.missing", "unresolved reference 'steps.a.missing'"),
        ("x {{ steps.s.result.z }} y", "steps.s.result.z", "no key 'z'"),
        ("{{steps.later.out}}", "steps.later.out", "step 'later' has not run"),
        ("{{steps.nope.out}}", "steps.nope.out", "unknown step 'nope'"),
        ("{{typo}}", "typo", "unknown name 'typo'"),
        ("{{loop.missing}}", "loop.missing", "no key 'missing'"),
        ("{{steps.a.items[9]}}", "steps.a.items[9]", "no item 9"),
        ("{{ steps.a.n ==}}", "steps.a.n ==", "unexpected end of expression at column 13"),
        ("{{}}", "", "empty template"),
        ("{{  }}", "", "empty template"),
        ("{{divide(steps.a.n, 0)}}", "divide(steps.a.n, 0)", "division by zero"),
        ("{{nosuch(1)}}", "nosuch(1)", "unknown function 'nosuch'"),
    ],
)
def test_unresolved_templates_name_step_and_expression(
    template: str, expression: str, detail: str
) -> None:
    """Any template problem is a TemplateError naming the step and the expression."""
    with pytest.raises(TemplateError) as info:
        render({"prompt": [template]}, SCOPE, step="summarise")
    error = info.value
    assert error.step == "summarise"
    assert error.expression == expression
    assert detail in error.detail
    assert "step 'summarise'" in str(error)
    if expression:
        assert f"{{{{{expression}}}}}" in str(error)


def test_template_error_pickles() -> None:
    """A TemplateError from rendering survives a pickle round trip with its fields."""
    with pytest.raises(TemplateError) as info:
        render("{{steps.a.missing}}", SCOPE, step="s1")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.step, copy.expression, str(copy)) == ("s1", "steps.a.missing", str(info.value))


def test_default_handles_missing_values_in_templates() -> None:
    """default(x, fallback) is the way to render an optional value."""
    assert render("{{default(steps.a.missing, 'none')}}", SCOPE) == "none"


def test_template_expressions_collects_every_expression() -> None:
    """template_expressions() lists each {{expr}} (stripped) in document order, values only."""
    value = {
        "{{key_not_included}}": "a {{ steps.a.n }} b {{loop.file}}",
        "list": ["{{x}}", ("{{y}}",), 5, "no template", "unclosed {{z"],
    }
    assert template_expressions(value) == ["steps.a.n", "loop.file", "x", "y"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{a}}", True),
        (["x", {"k": "y {{ b }}"}], True),
        ("no braces", False),
        ("unclosed {{ a", False),
        (42, False),
        ({"{{k}}": "v"}, False),
    ],
)
def test_has_template(value: Any, expected: bool) -> None:
    """has_template() is true when some string value holds a closed {{...}}."""
    assert has_template(value) is expected


def test_non_container_values_pass_through() -> None:
    """Numbers, booleans and None are returned unchanged."""
    assert [render(v, SCOPE) for v in (1, 2.5, True, None)] == [1, 2.5, True, None]


def _outcome(value: Any) -> tuple[Any, Exception | None]:
    """Render value with step 'fuzz'; return (result, None) or (None, the TemplateError)."""
    try:
        return render(value, SCOPE, step="fuzz"), None
    except TemplateError as exc:
        return None, exc


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_raises_only_template_errors(text: str) -> None:
    """Rendering any text either succeeds or raises TemplateError, nothing else."""
    result, error = _outcome(text)
    if error is None:
        assert "{{" in text or result is text
    else:
        assert isinstance(error, TemplateError)
        assert error.step == "fuzz"


_PIECES = st.sampled_from(
    ["{{", "}}", "steps.a.n", "loop.file", " + ", "'x'", "(", ")", "[", "]", ".", "1", " "]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=3)), max_size=20).map("".join))
def test_template_like_text_raises_only_template_errors(text: str) -> None:
    """Text built from template fragments renders or raises TemplateError, nothing else."""
    result, error = _outcome({"v": [text]})
    if error is None:
        assert set(result) == {"v"}
    else:
        assert isinstance(error, TemplateError)
