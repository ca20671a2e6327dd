"""The exceptions of the resilience policies and of the supervisors.

Bad settings (a user error, fix the config) are kept apart from decisions and
failures at run time (a call was refused, a supervisor gave up). Runtime errors
carry a stable ``code`` and a ``retryable`` flag, so callers decide on data, never
on message text. Every exception pickles with its fields intact (it may cross an
actor boundary).

    SupervisionError
    ├── PolicyConfigError          user error: a policy, child spec or supervisor
    │                              was built with bad settings
    ├── PolicyError                runtime refusal; ``code``, ``retryable``
    │   ├── CircuitOpenError       ``circuit_open``, not retryable; ``key``, ``retry_in_s``
    │   ├── RateLimitExceeded      ``rate_limited``, retryable; ``key``, ``retry_after_s``
    │   └── BulkheadFull           ``overloaded``, retryable; ``key``, ``limit``
    └── SupervisorError            runtime failure of a supervisor; ``code``, ``retryable``
        ├── SupervisorStartError   ``start_failed``, not retryable; ``child_id``,
        │                          ``cause``, ``supervisor``
        ├── SupervisorEscalation   ``escalated``, not retryable; ``supervisor``,
        │                          ``child_id``, ``reason``, ``max_restarts``, ``period_s``
        └── ChildNotFound          ``child_not_found``, not retryable; ``child_id``,
                                   ``supervisor``

``CircuitOpenError`` is not retryable on purpose: retrying against an open breaker
only burns the retry budget; the caller should fall back to the next provider.
Supervisor errors are not retryable either: whether a failed subtree comes back is
its parent supervisor's decision, bounded by the parent's restart intensity; a
retry loop around it would multiply restarts past that bound.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BulkheadFull",
    "ChildNotFound",
    "CircuitOpenError",
    "PolicyConfigError",
    "PolicyError",
    "RateLimitExceeded",
    "SupervisionError",
    "SupervisorError",
    "SupervisorEscalation",
    "SupervisorStartError",
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


class SupervisorError(SupervisionError):
    """A supervisor failed at run time; ``code`` is stable, ``retryable`` is data."""

    default_code = "supervisor_failed"

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.retryable = retryable

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code, "retryable": self.retryable}


class SupervisorStartError(SupervisorError):
    """Child ``child_id`` could not be started; ``cause`` describes the error it raised.

    Raised by ``Supervisor.start`` (after the children already started were stopped
    in reverse order), ``add_child`` and ``restart_child``, and by those two when
    the supervisor is not running (``cause`` says so).
    """

    def __init__(self, child_id: str, cause: str, *, supervisor: str = "") -> None:
        self.child_id = child_id
        self.cause = cause
        self.supervisor = supervisor
        where = f" in supervisor {supervisor!r}" if supervisor else ""
        super().__init__(
            f"child {child_id!r}{where} failed to start: {cause}",
            code="start_failed",
            retryable=False,
        )

    def _fields(self) -> dict[str, Any]:
        return {"child_id": self.child_id, "cause": self.cause, "supervisor": self.supervisor}


class SupervisorEscalation(SupervisorError):  # noqa: N818 - names the OTP event: the failure goes up a level
    """Supervisor ``supervisor`` exceeded its restart intensity and stopped all its children.

    ``child_id`` and ``reason`` describe the failure that tipped it over. Raised
    from ``Supervisor.run``; the parent sees the subtree exit abnormally.
    """

    def __init__(
        self,
        supervisor: str,
        child_id: str | None,
        reason: str,
        *,
        max_restarts: int,
        period_s: float,
    ) -> None:
        self.supervisor = supervisor
        self.child_id = child_id
        self.reason = reason
        self.max_restarts = max_restarts
        self.period_s = period_s
        super().__init__(
            f"supervisor {supervisor!r} exceeded {max_restarts} restarts in {period_s:g}s "
            f"(last failure: child {child_id!r}, {reason}); its children are stopped",
            code="escalated",
            retryable=False,
        )

    def _fields(self) -> dict[str, Any]:
        return {
            "supervisor": self.supervisor,
            "child_id": self.child_id,
            "reason": self.reason,
            "max_restarts": self.max_restarts,
            "period_s": self.period_s,
        }


class ChildNotFound(SupervisorError):  # noqa: N818 - names the state, like FileNotFoundError's stem
    """The supervisor has no child ``child_id`` (never added, or removed since)."""

    def __init__(self, child_id: str, *, supervisor: str = "") -> None:
        self.child_id = child_id
        self.supervisor = supervisor
        where = f" in supervisor {supervisor!r}" if supervisor else ""
        super().__init__(f"no child {child_id!r}{where}", code="child_not_found", retryable=False)

    def _fields(self) -> dict[str, Any]:
        return {"child_id": self.child_id, "supervisor": self.supervisor}
