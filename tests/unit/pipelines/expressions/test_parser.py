"""Tokenising and parsing: the tree shapes, precedence, limits and syntax errors."""

from __future__ import annotations

import pytest

from pipelines.errors import ConditionError
from pipelines.expressions import MAX_DEPTH, MAX_LENGTH, parse, references, unparse
from pipelines.expressions._lexer import Kind, tokenize
from pipelines.expressions._nodes import (
    Between,
    Binary,
    BoolOp,
    Call,
    Const,
    Index,
    Key,
    ListExpr,
    Name,
    Path,
    Unary,
    tree_depth,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("3.5", 3.5),
        ("1e3", 1000.0),
        ("2.5E-1", 0.25),
        ("'single'", "single"),
        ('"double"', "double"),
        (r"'a\nb\tc'", "a\nb\tc"),
        (r"'it\'s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'back\\slash'", "back\\slash"),
        (r"'\u00e9'", "é"),
        (r"'\d+'", "\\d+"),
        ("true", True),
        ("True", True),
        ("false", False),
        ("False", False),
        ("null", None),
        ("None", None),
        ("nil", None),
    ],
)
def test_literals(text: str, value: object) -> None:
    """Numbers, both string quotes with escapes, and every boolean/null spelling are literals."""
    tree = parse(text)
    assert tree == Const(value)
    assert type(tree.value) is type(value)


def test_unknown_escape_is_kept_for_regexes() -> None:
    """An escape the lexer does not know keeps its backslash, so '\\d' needs no doubling."""
    assert parse(r"'\w\s'") == Const("\\w\\s")


def test_list_literal_allows_trailing_comma() -> None:
    """[1, 'a',] is a two-element list literal."""
    assert parse("[1, 'a',]") == ListExpr((Const(1), Const("a")))


def test_empty_list_literal() -> None:
    """[] parses to an empty list literal."""
    assert parse("[]") == ListExpr(())


def test_path_segments_are_flattened() -> None:
    """A dotted/indexed chain is one Path node with one segment per step."""
    assert parse("steps.analyze.findings[0].file") == Path(
        Name("steps"),
        (Key("analyze"), Key("findings"), Index(Const(0)), Key("file")),
    )


def test_numeric_dot_segment_is_an_integer_key() -> None:
    """items.0.1 is the path items/0/1, not items followed by the float 0.1."""
    assert parse("items.0.1") == Path(Name("items"), (Key("0"), Key("1")))


def test_keywords_are_allowed_after_a_dot() -> None:
    """Keys named like keywords (a.in, a.true) are plain keys after a dot."""
    assert parse("a.in.true") == Path(Name("a"), (Key("in"), Key("true")))


def test_bracket_access_for_names_with_dashes() -> None:
    """steps["my-step"] reaches a step whose name contains a dash."""
    assert parse('steps["my-step"].ok') == Path(Name("steps"), (Index(Const("my-step")), Key("ok")))


def test_dash_is_minus_not_part_of_a_name() -> None:
    """my-step is my minus step."""
    assert parse("my-step") == Binary("-", Name("my"), Name("step"))


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a or b and c", BoolOp("or", (Name("a"), BoolOp("and", (Name("b"), Name("c")))))),
        ("a || b && c", BoolOp("or", (Name("a"), BoolOp("and", (Name("b"), Name("c")))))),
        ("not a and b", BoolOp("and", (Unary("not", Name("a")), Name("b")))),
        ("!a", Unary("not", Name("a"))),
        ("not a == b", Unary("not", Binary("==", Name("a"), Name("b")))),
        ("a == b + 1", Binary("==", Name("a"), Binary("+", Name("b"), Const(1)))),
        ("1 + 2 * 3", Binary("+", Const(1), Binary("*", Const(2), Const(3)))),
        ("1 - 2 - 3", Binary("-", Binary("-", Const(1), Const(2)), Const(3))),
        ("8 / 4 % 3", Binary("%", Binary("/", Const(8), Const(4)), Const(3))),
        ("-a * 2", Binary("*", Unary("-", Name("a")), Const(2))),
        ("-a.b", Unary("-", Path(Name("a"), (Key("b"),)))),
        ("(1 + 2) * 3", Binary("*", Binary("+", Const(1), Const(2)), Const(3))),
        ("a and b and c", BoolOp("and", (Name("a"), Name("b"), Name("c")))),
        ("a contains 'x'", Binary("contains", Name("a"), Const("x"))),
        ("a matches 'x'", Binary("matches", Name("a"), Const("x"))),
        ("a in [1]", Binary("in", Name("a"), ListExpr((Const(1),)))),
        ("a not in [1]", Binary("not in", Name("a"), ListExpr((Const(1),)))),
        ("a >= 1 + 1", Binary(">=", Name("a"), Binary("+", Const(1), Const(1)))),
    ],
)
def test_precedence(text: str, tree: object) -> None:
    """Operators bind in the documented order: or < and < not < comparison < + < * < unary."""
    assert parse(text) == tree


def test_between_owns_its_and() -> None:
    """In 'x between 1 and 5 and y' the first 'and' belongs to between."""
    assert parse("x between 1 and 5 and y") == BoolOp(
        "and", (Between(Name("x"), Const(1), Const(5)), Name("y"))
    )


def test_between_bounds_take_arithmetic() -> None:
    """Between's bounds are full additive expressions."""
    assert parse("x between a + 1 and b * 2") == Between(
        Name("x"), Binary("+", Name("a"), Const(1)), Binary("*", Name("b"), Const(2))
    )


def test_calls_parse_with_arguments() -> None:
    """f(a, b) is a Call node with its arguments in order."""
    assert parse("multiply(steps.a.n, 2)") == Call(
        "multiply", (Path(Name("steps"), (Key("a"), Key("n"))), Const(2))
    )


def test_keyword_named_function_can_be_called() -> None:
    """contains(x, y) is the function even though 'contains' is also an operator."""
    assert parse("contains(a, 'b')") == Call("contains", (Name("a"), Const("b")))


def test_or_aliases_tokenize_to_keywords() -> None:
    """'||', '&&' and '!' come out of the lexer as the keywords or/and/not."""
    kinds = [(t.kind, t.text) for t in tokenize("a || b && !c")][:-1]
    assert kinds == [
        (Kind.NAME, "a"),
        (Kind.KEYWORD, "or"),
        (Kind.NAME, "b"),
        (Kind.KEYWORD, "and"),
        (Kind.KEYWORD, "not"),
        (Kind.NAME, "c"),
    ]


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", "empty expression", 0),
        ("   ", "empty expression", 0),
        ("a ==", "unexpected end of expression", 4),
        ("a b", "unexpected 'b'", 2),
        ("(a", "expected ')'", 2),
        ("a[1", "expected ']'", 3),
        ("[1 2]", "expected ',' or ']'", 3),
        ("'abc", "unterminated string", 0),
        ("a = 1", "did you mean '=='", 2),
        ("a & b", "did you mean '&&' or 'and'", 2),
        ("a | b", "did you mean '||' or 'or'", 2),
        ("a @ b", "unexpected character '@'", 2),
        ("1 < 2 < 3", "cannot be chained", 6),
        ("a ** 2", "unexpected '*'", 3),
        ("x between 1 or 2", "expected 'and'", 12),
        ("f(1)", "unknown function 'f'", 0),
        ("x + length(1, 2)", "length() takes 1 argument, got 2", 4),
        ("min()", "at least 1 argument", 0),
        ("(a)(1)", "only named functions can be called", 3),
        ("a.", "expected a name after '.'", 2),
        ("a.'x'", "expected a name after '.'", 2),
        ("not", "unexpected end of expression", 3),
        ("and b", "unexpected 'and'", 0),
        ("a not b", "unexpected 'not'", 2),
    ],
)
def test_syntax_errors_carry_expression_and_column(text: str, message: str, position: int) -> None:
    """Every syntax error is a ConditionError naming the expression and the 0-based column."""
    with pytest.raises(ConditionError) as info:
        parse(text)
    assert message in info.value.detail
    assert info.value.position == position
    assert info.value.expression == text
    assert f"column {position + 1}" in str(info.value)


def test_non_string_expression_is_a_condition_error() -> None:
    """parse() of a non-string (e.g. a YAML number) is a ConditionError, not a TypeError."""
    with pytest.raises(ConditionError, match="must be a string"):
        parse(12)  # type: ignore[arg-type]


def test_expression_length_limit() -> None:
    """Text longer than MAX_LENGTH characters is refused."""
    with pytest.raises(ConditionError, match="limit is 4000"):
        parse("1" + " " * MAX_LENGTH)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 70 + "1" + ")" * 70,
        "-" * 70 + "1",
        "not " * 70 + "a",
        "f(" * 70,
        "[" * 70 + "]" * 70,
        "+".join(["1"] * 70),
        "a[" * 70 + "0" + "]" * 70,
    ],
)
def test_nesting_limit_is_a_condition_error(text: str) -> None:
    """Nesting deeper than MAX_DEPTH is a ConditionError, never a RecursionError."""
    with pytest.raises(ConditionError, match="nested too deeply"):
        parse(text)


def test_nesting_just_under_the_limit_parses() -> None:
    """Parentheses nested MAX_DEPTH - 1 deep are fine."""
    depth = MAX_DEPTH - 1
    assert parse("(" * depth + "1" + ")" * depth) == Const(1)


def test_long_paths_and_boolean_chains_stay_shallow() -> None:
    """Flattening keeps a 500-segment path or a 200-clause 'and' within the depth limit."""
    assert tree_depth(parse(".".join(["a"] * 500))) == 2
    assert tree_depth(parse(" and ".join(["a"] * 200))) == 2


def test_parse_is_cached() -> None:
    """Parsing the same text twice returns the very same tree object."""
    assert parse("cached.example > 1") is parse("cached.example > 1")


@pytest.mark.parametrize(
    "text",
    [
        "a.b[0].c",
        "-(1 + 2) * 3",
        "not a and b or c",
        "a or (b or c)",
        "x between 1 + 1 and 5",
        "(a == b) == c",
        "a - (b - c)",
        "'a\\nb\"'",
        "(1).0",
        "'abc'.length",
        "(a + b).c",
        "not -a",
        "-(not a)",
        "a not in [1, 2]",
        "contains(a, 'x')",
        "1e400",
        "a.and.true.0[x]",
        "(x between 1 and 2) == true",
    ],
)
def test_unparse_round_trips(text: str) -> None:
    """unparse() gives text that parses back to the same tree."""
    tree = parse(text)
    assert parse(unparse(tree)) == tree


@pytest.mark.parametrize(
    ("text", "paths"),
    [
        ("analyze.findings.length > 0", {("analyze", "findings", "length")}),
        ("steps.analyze.findings[0].file", {("steps", "analyze", "findings")}),
        ('steps["my-step"].ok', {("steps", "my-step", "ok")}),
        ("items.0.name", {("items",)}),
        ("a[b.c].d", {("a",), ("b", "c")}),
        ("not review.skipped and x", {("review", "skipped"), ("x",)}),
        ("length(steps.a.items) > limit", {("steps", "a", "items"), ("limit",)}),
        ("[1, 2] contains 1", set()),
        ("'abc'.length", set()),
    ],
)
def test_references(text: str, paths: set[tuple[str, ...]]) -> None:
    """references() lists the leading identifier paths, stopping at dynamic or numeric parts."""
    assert references(text) == paths
    assert references(parse(text)) == paths
