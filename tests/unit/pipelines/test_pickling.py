"""Everything that may cross an actor boundary pickles with its fields intact."""

from __future__ import annotations

import pickle

import pytest

from pipelines import errors
from pipelines.providers.base import (
    Completion,
    CompletionRequest,
    Message,
    ToolCall,
    ToolSpec,
    Usage,
)
from pipelines.runner import Checkpoint, RunResult

EXCEPTIONS = [
    errors.PipelineError("root"),
    errors.ConfigError("bad config"),
    errors.GenesisError("no valid pipeline", rounds=4, errors=["a.yaml:3: bad"]),
    errors.SpecError("bad key", file="p.yaml", line=3, step="s", key="k"),
    errors.TemplateError("unresolved", expression="steps.a.b", step="s"),
    errors.ConditionError("syntax", expression="1 >", position=2),
    errors.SandboxError("escape", path="../x"),
    errors.NestingError("cycle"),
    errors.RunError("failed", code="x", retryable=True),
    errors.StepFailed("boom", step="s", step_type="claude", code="timeout", retryable=True),
    errors.StepTimeout("slow"),
    errors.ToolError("tool", code="not_found"),
    errors.ProviderError(
        "429",
        code="rate_limited",
        retryable=True,
        provider="anthropic",
        retry_after_s=1.5,
        status=429,
    ),
]


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_exceptions_round_trip(exc: errors.PipelineError) -> None:
    """Each exception keeps its type, message and every field through pickle."""
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc) and str(copy) == str(exc)
    assert copy.__dict__ == exc.__dict__


def test_every_exception_class_is_covered() -> None:
    """The round-trip list covers every exception class the module exports."""
    exported = {getattr(errors, name) for name in errors.__all__}
    assert exported == {type(e) for e in EXCEPTIONS}


def test_messages_and_results_round_trip() -> None:
    """Requests, completions, checkpoints and run results pickle unchanged."""
    values = [
        CompletionRequest(
            messages=(Message("user", "hi", tool_calls=(ToolCall("1", "f", {"a": 1}),)),),
            tools=(ToolSpec("f", "d", {"type": "object"}),),
            output_schema={"type": "object"},
        ),
        Completion(
            "t", "p", "m", usage=Usage(1, 2), tool_calls=(ToolCall("1", "f", {}),), data={"k": [1]}
        ),
        Checkpoint("key", "pipe", "fp", 2, {"a": {"text": "x"}}, {"v": 1}),
        RunResult("id", "pipe", {"a": {"success": True}}, 0.5, {"total_tokens": 3}),
    ]
    for value in values:
        assert pickle.loads(pickle.dumps(value)) == value
