"""Tests of claude_extract post-processing (formats and post-processors)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.errors import ConfigError, StepFailed
from pipelines.runner.extraction import FORMATS, POST_PROCESSORS, extract

REVIEW = """\
# Code Review: `auth.py`

Overall the module is **well structured**. It handles tokens correctly, but a few
issues stand out. See [the OWASP guide](https://owasp.org/www-project-top-ten/).

## Findings

- **SQL injection** in `get_user()`: the query is built with f-strings.
- Passwords are compared with `==`, which is _not_ constant-time.
  - Use `hmac.compare_digest` instead.
- The `__init__` method does network I/O.

## Recommendations

1. Use parameterised queries everywhere.
2. **Consider** adding rate limiting to `login()`.
3. Move network calls out of `__init__`.

```python
def get_user(db, name):
    # parameterised: https://example.com/in-code
    return db.execute("SELECT * FROM users WHERE name = ?", (name,))
```

More at https://docs.python.org/3/library/hmac.html. Also <https://example.com/a_b>.

---

> Should you want more, ask.
"""


def test_every_post_processor_adds_its_key() -> None:
    """All post-processors together add code_blocks, recommendations, links, key_points, summary."""
    result = extract(REVIEW, post_processing=sorted(POST_PROCESSORS))
    assert set(result) == {
        "content",
        "code_blocks",
        "recommendations",
        "links",
        "key_points",
        "summary",
    }
    json.dumps(result)  # JSON-serialisable


def test_no_post_processing_gives_only_content() -> None:
    """Without post_processing the result is just the formatted content."""
    assert extract("hello") == {"content": "hello"}


# --------------------------------------------------------------------------- formats


def test_text_format_removes_markdown_syntax() -> None:
    """fmt=text drops fence markers, #, **, _emphasis_, backticks and rules; keeps code text."""
    content = extract(REVIEW, fmt="text")["content"]
    assert content.startswith("Code Review: auth.py\n\nOverall the module is well structured.")
    assert "the OWASP guide (https://owasp.org/www-project-top-ten/)" in content
    assert "which is not constant-time" in content
    assert "The __init__ method" in content  # a dunder name is not bold
    assert "def get_user(db, name):\n    # parameterised" in content  # code kept verbatim
    assert "Also https://example.com/a_b." in content
    assert "Should you want more, ask." in content
    for syntax in ("```", "**", "## ", "`", "---", "> "):
        assert syntax not in content


@pytest.mark.parametrize(
    ("markdown", "text"),
    [
        ("### Title ###", "Title"),
        ("*italic* and _under_ and ~~gone~~", "italic and under and gone"),
        ("snake_case_name and 2 * 3 * 4", "snake_case_name and 2 * 3 * 4"),
        ("`**not bold**` stays", "**not bold** stays"),
        ("![diagram](d.png)", "diagram"),
        ("[https://x.io](https://x.io)", "https://x.io"),
        ("~~~\ncode\n~~~", "code"),
    ],
)
def test_text_format_inline_cases(markdown: str, text: str) -> None:
    """Inline markdown is removed without touching code spans or identifiers."""
    assert extract(markdown, fmt="text")["content"] == text


def test_markdown_format_is_the_answer_stripped() -> None:
    """fmt=markdown keeps the answer as is, minus surrounding whitespace."""
    assert extract("\n  # Hi\n\n**b**  \n", fmt="markdown")["content"] == "# Hi\n\n**b**"


def test_structured_format_splits_on_headings() -> None:
    """fmt=structured maps each heading to the markdown under it; text before is the preamble."""
    answer = (
        "Intro line.\n# Summary\nAll good.\n## **Details:**\n- a\n"
        "```sh\n# not a heading\n```\n# Summary\nMore."
    )
    sections = extract(answer, fmt="structured")["content"]["sections"]
    assert sections == {
        "preamble": "Intro line.",
        "Summary": "All good.\n\nMore.",
        "Details": "- a\n```sh\n# not a heading\n```",
    }


def test_structured_format_without_headings() -> None:
    """An answer without headings is all preamble; an empty answer has no sections."""
    only_text = extract("just text", fmt="structured")["content"]
    assert only_text == {"sections": {"preamble": "just text"}}
    assert extract("", fmt="structured")["content"] == {"sections": {}}


def test_summary_format_is_the_summary() -> None:
    """fmt=summary puts the generated summary in content."""
    result = extract(REVIEW, fmt="summary", post_processing=["generate_summary"])
    assert result["content"] == result["summary"]
    assert result["content"].startswith("Overall the module is well structured.")


JSON_CASES = [
    ('{"a": 1}', {"a": 1}),
    ('Sure! Here it is:\n```json\n{"a": [1, null]}\n```\nAnything else?', {"a": [1, None]}),
    ("```JSON\n  [1, 2]\n```", [1, 2]),
    ('Result: [{"id": 1}] -- done', [{"id": 1}]),
    ('Use [brackets] or {curly} then {"ok": true} trailing', {"ok": True}),
    ('Example {"x": 1} first, then:\n```json\n{"y": 2}\n```', {"y": 2}),
    ('```\n{"plain": "fence"}\n```', {"plain": "fence"}),
]


@pytest.mark.parametrize(("answer", "value"), JSON_CASES)
def test_json_format_parses_the_first_object_or_array(answer: str, value: object) -> None:
    """fmt=json finds JSON bare, in prose, or in a ```json fence (which wins)."""
    assert extract(answer, fmt="json")["content"] == value


JSON_ERRORS = [
    ('Here:\n```json\n{"a": 1,\n "b": }\n```', "invalid JSON at line 4, column 7: Expecting value"),
    ('Result {"a" 1}', "invalid JSON at line 1, column 13: Expecting ':' delimiter"),
    ('[1, 2,, 3] and {"b": 2}', "invalid JSON at line 1, column 7: Expecting value"),
    ("no json here", "no JSON object or array found"),
    ("", "no JSON object or array found"),
    ('{"a": NaN}', "invalid JSON: NaN is not a JSON value"),
    ("[" * 100_000, "invalid JSON: nested too deeply"),
    ("```json\n```", "invalid JSON at line 2, column 1: Expecting value"),
]


@pytest.mark.parametrize(("answer", "message"), JSON_ERRORS)
def test_json_format_errors_say_what_and_where(answer: str, message: str) -> None:
    """Broken or absent JSON raises StepFailed(extraction_failed) with the reason and position."""
    with pytest.raises(StepFailed) as info:
        extract(answer, fmt="json")
    assert info.value.code == "extraction_failed"
    assert message in str(info.value)


def test_broken_json_fence_is_not_bypassed_by_an_inner_object() -> None:
    """A broken ```json fence is an error, not a reason to return some nested object."""
    with pytest.raises(StepFailed, match="invalid JSON"):
        extract('```json\n{"outer": {"inner": 1},}\n```', fmt="json")


# ------------------------------------------------------------------- post-processors


def test_extract_code_blocks() -> None:
    """Fenced blocks come out with their language ("" when none), unclosed ones run to the end."""
    answer = "```py title=x\nprint(1)\n```\ntext\n````\nnested ```\n````\n~~~rust\nfn main() {}"
    blocks = extract(answer, post_processing=["extract_code_blocks"])["code_blocks"]
    assert blocks == [
        {"language": "py", "code": "print(1)"},
        {"language": "", "code": "nested ```"},
        {"language": "rust", "code": "fn main() {}"},
    ]


def test_extract_code_blocks_from_the_review() -> None:
    """A realistic answer yields its one python block, verbatim."""
    blocks = extract(REVIEW, post_processing=["extract_code_blocks"])["code_blocks"]
    assert [b["language"] for b in blocks] == ["python"]
    assert blocks[0]["code"].splitlines()[0] == "def get_user(db, name):"


def test_extract_recommendations_from_a_section_and_advice_bullets() -> None:
    """Items under a Recommendations heading, plus advice bullets elsewhere, in order."""
    recs = extract(REVIEW, post_processing=["extract_recommendations"])["recommendations"]
    assert recs == [
        "Use hmac.compare_digest instead.",
        "Use parameterised queries everywhere.",
        "Consider adding rate limiting to login().",
        "Move network calls out of __init__.",
    ]


@pytest.mark.parametrize(
    ("answer", "recs"),
    [
        ("**Recommendations:**\n- a\n- b\n\n**Other**\n- c", ["a", "b"]),
        ("I recommend the following:\n1. first\n2. second", ["first", "second"]),
        (
            "## Suggestions\nRefactor it.\nAdd tests.\n## Next\nx",
            ["Refactor it.", "Add tests."],
        ),
        ("## Recommendations\nFor example:\n- keep going\n## Done", ["keep going"]),
        (
            "- Should add docs\n- User input is fine\n- Useful\n* Recommended: pin deps",
            ["Should add docs", "Recommended: pin deps"],
        ),
        ("## Recommendations\n```\n- not this\n```\n- this", ["this"]),
        ("Nothing to suggest here, really", []),
    ],
)
def test_extract_recommendations_cases(answer: str, recs: list[str]) -> None:
    """Sections open on recommend/suggest titles, close on the next heading, and skip code."""
    assert extract(answer, post_processing=["extract_recommendations"])["recommendations"] == recs


def test_extract_links() -> None:
    """Markdown links, autolinks and bare URLs, deduplicated in order; not from code or images."""
    answer = (
        'Read [the docs](https://d.io/x "Docs") and https://d.io/x again.\n'
        "![img](https://img.io/p.png) see (https://w.org/A_(b)), <https://a.io>.\n"
        "Bold **https://b.io/z**; [local](./file.py)\n"
        "```\ncurl https://in.code/\n```"
    )
    links = extract(answer, post_processing=["extract_links"])["links"]
    assert links == [
        {"text": "the docs", "url": "https://d.io/x"},
        {"text": "https://w.org/A_(b)", "url": "https://w.org/A_(b)"},
        {"text": "https://a.io", "url": "https://a.io"},
        {"text": "https://b.io/z", "url": "https://b.io/z"},
        {"text": "local", "url": "./file.py"},
    ]


def test_extract_links_from_the_review() -> None:
    """The review's links come out once each, code-block URLs excluded."""
    links = extract(REVIEW, post_processing=["extract_links"])["links"]
    assert [link["url"] for link in links] == [
        "https://owasp.org/www-project-top-ten/",
        "https://docs.python.org/3/library/hmac.html",
        "https://example.com/a_b",
    ]


def test_extract_key_points() -> None:
    """Top-level bullet and numbered items, cleaned of markup; nested items and code skipped."""
    points = extract(REVIEW, post_processing=["extract_key_points"])["key_points"]
    assert points == [
        "SQL injection in get_user(): the query is built with f-strings.",
        "Passwords are compared with ==, which is not constant-time.",
        "The __init__ method does network I/O.",
        "Use parameterised queries everywhere.",
        "Consider adding rate limiting to login().",
        "Move network calls out of __init__.",
    ]


def test_key_points_are_deduplicated() -> None:
    """A point repeated in the answer is kept once."""
    points = extract("- a\n- b\n- a\n1) c", post_processing=["extract_key_points"])["key_points"]
    assert points == ["a", "b", "c"]


def test_key_points_cap_keeps_each_sections_first_point() -> None:
    """Past 20 points, every heading's first point survives; order stays document order."""
    first = "\n".join(f"- one {i}" for i in range(25))
    answer = f"# One\n{first}\n# Two\n- two 0\n- two 1\n# Three\n- three 0"
    points = extract(answer, post_processing=["extract_key_points"])["key_points"]
    assert len(points) == 20
    assert points[:18] == [f"one {i}" for i in range(18)]
    assert points[18:] == ["two 0", "three 0"]


SUMMARY_TEXT = "First sentence here. Second one is longer than the first! Third? Fourth."


@pytest.mark.parametrize(
    ("limit", "summary"),
    [
        (500, SUMMARY_TEXT),
        (20, "First sentence here."),
        (57, "First sentence here. Second one is longer than the first!"),
        (56, "First sentence here."),
        (15, "First..."),
        (12, "First..."),
        (4, "F..."),
        (3, "Fir"),
    ],
)
def test_summary_boundaries(limit: int, summary: str) -> None:
    """Whole sentences while they fit; else the first is cut on a word with an ellipsis."""
    result = extract(SUMMARY_TEXT, post_processing=["generate_summary"], max_summary_length=limit)
    assert result["summary"] == summary
    assert len(result["summary"]) <= limit


def test_summary_hard_cuts_a_word_longer_than_the_limit() -> None:
    """A first word longer than the limit is cut mid-word rather than emptied."""
    result = extract("a" * 50, post_processing=["generate_summary"], max_summary_length=10)
    assert result["summary"] == "aaaaaaa..."


def test_summary_reads_prose_and_list_items_not_headings_or_code() -> None:
    """Headings and code are skipped; list items count as sentences."""
    answer = "# Title\n\n```\ncode.\n```\n**Summary:**\n- fixed the bug\n- added tests!\n\nDone."
    result = extract(answer, post_processing=["generate_summary"])
    assert result["summary"] == "fixed the bug. added tests! Done."


def test_summary_of_nothing_is_empty() -> None:
    """An empty answer summarises to the empty string."""
    assert extract("", post_processing=["generate_summary"])["summary"] == ""


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"post_processing": ["extract_tables"]}, "unknown post_processing 'extract_tables'"),
        ({"fmt": "yaml"}, "unknown extraction format 'yaml'"),
        ({"max_summary_length": 0}, "max_summary_length must be at least 1"),
    ],
)
def test_bad_configuration_raises_config_error(kwargs: dict[str, object], message: str) -> None:
    """Unknown names and a non-positive summary length are ConfigErrors naming the problem."""
    with pytest.raises(ConfigError, match=message):
        extract("text", **kwargs)  # type: ignore[arg-type]


def test_format_and_post_processor_sets() -> None:
    """FORMATS and POST_PROCESSORS list the names pipeline_ex accepts."""
    assert {"text", "json", "structured", "summary", "markdown"} == FORMATS
    assert "generate_summary" in POST_PROCESSORS
    assert len(POST_PROCESSORS) == 5


# ------------------------------------------------------------------------- property

# Markdown-ish fragments reach the interesting paths far more often than random text.
TOKENS = [*"abc xyz.!?:-*_#`~[]()<>{}\"'0123\n\t>|\\/\r", "https://", "```", "- ", "1. ", "## "]
MARKDOWNISH = st.lists(st.sampled_from(TOKENS), max_size=120).map("".join) | st.text(max_size=200)


@settings(max_examples=200, deadline=None)
@given(text=MARKDOWNISH, fmt=st.sampled_from(sorted(FORMATS)), limit=st.integers(1, 600))
def test_extract_never_raises_on_arbitrary_text(text: str, fmt: str, limit: int) -> None:
    """Any text with every post-processor yields a JSON-able result; only fmt=json may fail."""
    failure: StepFailed | None = None
    try:
        result = extract(
            text,
            fmt=fmt,  # type: ignore[arg-type]
            post_processing=sorted(POST_PROCESSORS),
            max_summary_length=limit,
        )
    except StepFailed as exc:
        failure = exc
    if failure is not None:
        assert fmt == "json"
        assert failure.code == "extraction_failed"
        return
    json.dumps(result)
    assert len(result["summary"]) <= limit
    assert len(result["key_points"]) <= 20
