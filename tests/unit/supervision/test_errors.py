"""The supervision exception tree: codes, retryability and pickling with fields."""

from __future__ import annotations

import pickle

import pytest

from supervision import errors
from supervision.retry import as_failure

EXCEPTIONS = [
    errors.SupervisionError("root"),
    errors.PolicyConfigError("window_s must be > 0"),
    errors.PolicyError("refused", code="custom", retryable=True),
    errors.CircuitOpenError("anthropic:claude-sonnet-4-5", 7.5),
    errors.RateLimitExceeded("gemini:flash", retry_after_s=2.25),
    errors.SupervisorError("subtree failed", code="custom", retryable=True),
    errors.SupervisorStartError("router", "RuntimeError: no GPU", supervisor="agents"),
    errors.SupervisorEscalation("agents", "router", "abnormal: boom", max_restarts=3, period_s=5.0),
    errors.ChildNotFound("shard-9", supervisor="sessions"),
    errors.BulkheadFull("openai:gpt", limit=8),
]


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_exceptions_round_trip(exc: errors.SupervisionError) -> None:
    """Each exception keeps its type, message and every field through pickle."""
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc) and str(copy) == str(exc)
    assert copy.__dict__ == exc.__dict__


def test_every_exception_class_is_covered() -> None:
    """The round-trip list covers every exception class the module exports."""
    exported = {getattr(errors, name) for name in errors.__all__}
    assert exported == {type(e) for e in EXCEPTIONS}


@pytest.mark.parametrize(
    ("exc", "code", "retryable"),
    [
        (errors.CircuitOpenError("k", 1.0), "circuit_open", False),
        (errors.RateLimitExceeded("k", 1.0), "rate_limited", True),
        (errors.BulkheadFull("k", 2), "overloaded", True),
        (errors.PolicyError("x"), "policy_refused", False),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_codes_and_retryability(exc: errors.PolicyError, code: str, retryable: bool) -> None:
    """Runtime refusals carry their stable code and retryable flag."""
    assert (exc.code, exc.retryable) == (code, retryable)


def test_tree_separates_config_from_runtime_errors() -> None:
    """Config errors and runtime refusals share the root but not each other."""
    for cls in (errors.CircuitOpenError, errors.RateLimitExceeded, errors.BulkheadFull):
        assert issubclass(cls, errors.PolicyError)
        assert not issubclass(cls, errors.PolicyConfigError)
    assert issubclass(errors.PolicyConfigError, errors.SupervisionError)
    assert not issubclass(errors.PolicyConfigError, errors.PolicyError)


def test_fields_are_in_the_message() -> None:
    """Messages name the key and the wait, so logs are readable without the fields."""
    assert "'a:b'" in str(errors.CircuitOpenError("a:b", 3.0)) and "3s" in str(
        errors.CircuitOpenError("a:b", 3.0)
    )
    assert "retry after 2.5s" in str(errors.RateLimitExceeded("a:b", 2.5))


def test_policy_errors_read_as_retry_failures() -> None:
    """The default failure reader sees code, retryable and Retry-After on policy errors."""
    failure = as_failure(errors.RateLimitExceeded("k", 4.0))
    assert failure is not None
    assert (failure.code, failure.retryable, failure.retry_after_s) == ("rate_limited", True, 4.0)
    breaker = as_failure(errors.CircuitOpenError("k", 4.0))
    assert breaker is not None and breaker.retryable is False and breaker.retry_after_s is None
