"""The exceptions of the resilience policies (retry, breaker, rate limits, bulkhead).

Bad settings (a user error, fix the config) are kept apart from policy decisions
taken at run time (the call was refused). Runtime errors carry a stable ``code``
and a ``retryable`` flag, so callers decide on data, never on message text. Every
exception pickles with its fields intact (it may cross an actor boundary).

    SupervisionError
    ├── PolicyConfigError      user error: a policy was built with bad settings
    └── PolicyError            runtime refusal; ``code``, ``retryable``
        ├── CircuitOpenError   ``circuit_open``, not retryable; ``key``, ``retry_in_s``
        ├── RateLimitExceeded  ``rate_limited``, retryable; ``key``, ``retry_after_s``
        └── BulkheadFull       ``overloaded``, retryable; ``key``, ``limit``

``CircuitOpenError`` is not retryable on purpose: retrying against an open breaker
only burns the retry budget; the caller should fall back to the next provider.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BulkheadFull",
    "CircuitOpenError",
    "PolicyConfigError",
    "PolicyError",
    "RateLimitExceeded",
    "SupervisionError",
]


class SupervisionError(Exception):
    """Root of every error raised on purpose by :mod:`supervision`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from keyword fields so subclasses with extra fields pickle intact.
        return (_rebuild, (type(self), self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message}

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[SupervisionError], fields: dict[str, Any]) -> SupervisionError:
    return cls(**fields)


class PolicyConfigError(SupervisionError):
    """A policy was configured with impossible settings (negative rate, zero window...)."""


class PolicyError(SupervisionError):
    """A policy refused a call; ``code`` is stable, ``retryable`` says whether to try again."""

    default_code = "policy_refused"

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.retryable = retryable

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code, "retryable": self.retryable}


class CircuitOpenError(PolicyError):
    """The circuit breaker for ``key`` is open (or its half-open probe slots are taken).

    ``retry_in_s`` is how long until the breaker lets a probe through; ``0.0`` when
    it is half-open and only waits for the probes in flight to finish.
    """

    def __init__(self, key: str, retry_in_s: float) -> None:
        self.key = key
        self.retry_in_s = retry_in_s
        super().__init__(
            f"circuit {key!r} is open; retry in {retry_in_s:.3g}s",
            code="circuit_open",
            retryable=False,
        )

    def _fields(self) -> dict[str, Any]:
        return {"key": self.key, "retry_in_s": self.retry_in_s}


class RateLimitExceeded(PolicyError):  # noqa: N818 - the name reads as the event, like the HTTP 429 it mirrors
    """The rate limit for ``key`` has no room now and the caller could not wait.

    Raised only when the caller asked not to wait or the wait would exceed
    ``max_wait_s``; ``retry_after_s`` is when the request would fit.
    """

    def __init__(self, key: str, retry_after_s: float) -> None:
        self.key = key
        self.retry_after_s = retry_after_s
        super().__init__(
            f"rate limit {key!r} exceeded; retry after {retry_after_s:.3g}s",
            code="rate_limited",
            retryable=True,
        )

    def _fields(self) -> dict[str, Any]:
        return {"key": self.key, "retry_after_s": self.retry_after_s}


class BulkheadFull(PolicyError):  # noqa: N818 - names the state, like queue.Full
    """The bulkhead for ``key`` has ``limit`` calls in flight and its wait queue is full."""

    def __init__(self, key: str, limit: int) -> None:
        self.key = key
        self.limit = limit
        super().__init__(
            f"bulkhead {key!r} is full ({limit} in flight, queue full)",
            code="overloaded",
            retryable=True,
        )

    def _fields(self) -> dict[str, Any]:
        return {"key": self.key, "limit": self.limit}
