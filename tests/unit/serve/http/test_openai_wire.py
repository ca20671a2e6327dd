"""The OpenAI wire shapes: rendering, sessions, pipeline inputs and answers (no server)."""

from __future__ import annotations

import pytest

from serve.http._openai_wire import answer_text, pipeline_inputs, render_response, session_for
from serve.http.errors import ApiError
from tests.unit.serve.http.openai_fakes import PIPELINES, SUMMARY, analysis, expected_content


def test_render_response_lists_findings_with_locations() -> None:
    """Summary first, then `- file:line [severity rule] message` lines, then recommendations."""
    head, tail = render_response(analysis())
    assert head == SUMMARY
    assert "- app.py:3 [warning F401] unused import os" in tail
    assert "- app.py:58 [error S307] eval of input" in tail
    assert tail.index("**Findings**") < tail.index("**Recommendations**\n1. drop the import")


def test_session_for_header_then_explicit_then_stable_per_user() -> None:
    """The header wins; `session:<id>` is taken as is; other user strings map stably per key."""
    assert session_for(" h1 ", "session:x", "u") == "h1"
    assert session_for(None, "session:abc", "u") == "abc"
    alice = session_for(None, "alice", "u")
    assert alice == session_for(None, "alice", "u")
    assert alice not in {session_for(None, "bob", "u"), session_for(None, "alice", "other")}
    assert session_for(None, None, "u") is None
    assert session_for(None, "  ", "u") is None


# --------------------------------------------------------------- openai SDK
def test_pipeline_inputs_message_and_transcript() -> None:
    """A required text input gets the message, context the transcript; no text input is 422."""
    planning, code_analysis, resize = PIPELINES[2], PIPELINES[1], PIPELINES[3]
    assert pipeline_inputs(planning, "plan it", ["user: hi"]) == {
        "request": "plan it",
        "context": "user: hi",
    }
    assert pipeline_inputs(planning, "plan it", []) == {"request": "plan it"}
    assert pipeline_inputs(code_analysis, "security", ["user: hi"]) == {
        "context": "Earlier in this conversation:\nuser: hi\n\nsecurity"
    }
    with pytest.raises(ApiError, match="takes no text input"):
        pipeline_inputs(resize, "x", [])


def test_answer_text_of_a_run() -> None:
    """The last step with text answers; a structured one is rendered like an agent's answer."""
    structured = {"text": "{...}", **analysis()}
    results = {"review": structured, "draft": {"text": "plain"}, "save": {"written": 1}}
    assert answer_text({"results": results}) == "plain"
    del results["draft"]
    assert answer_text({"results": results}) == expected_content()
    assert answer_text({"results": {"save": {"written": 1}}}) == '{"save": {"written": 1}}'
