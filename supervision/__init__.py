"""OTP semantics and resilience policies (pure: no Ray, no I/O).

Supervision: a :class:`Supervisor` starts the children of its
:class:`ChildSpec` list in order, watches them through the :class:`ChildHandle`
protocol and restarts them per :class:`Strategy` and restart type, within a
restart intensity beyond which it stops its children and escalates to its
parent (:mod:`~supervision.supervisor` for the failure semantics,
:mod:`~supervision.strategy` for the pure decisions, :mod:`~supervision.child`
for the handle contract). ``actors/`` hosts supervisors in Ray actors.

The policies that wrap every LLM provider call are state machines on an injected
:class:`Clock`: :mod:`~supervision.retry` (backoff, full jitter, Retry-After,
deadline), :mod:`~supervision.breaker` (closed/open/half-open per provider key),
:mod:`~supervision.ratelimit` (requests/min, tokens/min, bulkhead) and
:mod:`~supervision.cache` (TTL + LRU response cache). Errors are drawn in
:mod:`~supervision.errors`; test doubles (:class:`~supervision.testing.FakeClock`,
:class:`~supervision.testing.FakeChild`, :class:`~supervision.testing.FakeChildFactory`)
live in :mod:`supervision.testing`, which is not re-exported here.

Policy state (breaker windows, bucket levels, cache entries) lives in the memory of
its owner, e.g. the gateway actor. If the owner restarts, breakers start closed and
buckets full: that state is only a recent-health hint, rebuilt within one window,
and losing it loses no user data. Nothing here retries on its own except
:func:`retry_call`, and only what its policy allows, and supervisors, which
restart children (never the calls in flight to them).
"""

from __future__ import annotations

from supervision.breaker import (
    BreakerConfig,
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
    OnTransition,
)
from supervision.cache import TTLCache, request_key
from supervision.child import (
    ChildHandle,
    ChildInfo,
    ChildSpec,
    ChildState,
    ChildType,
    Exit,
    ExitKind,
    RestartType,
)
from supervision.clock import Clock, SystemClock
from supervision.errors import (
    BulkheadFull,
    ChildNotFound,
    CircuitOpenError,
    PolicyConfigError,
    PolicyError,
    RateLimitExceeded,
    SupervisionError,
    SupervisorError,
    SupervisorEscalation,
    SupervisorStartError,
)
from supervision.ratelimit import Bulkhead, RateLimit, RateLimiter, TokenBucket
from supervision.retry import (
    AttemptEvent,
    RetryableFailure,
    RetryDecision,
    RetryPolicy,
    RetryReason,
    as_failure,
    decide,
    retry_call,
)
from supervision.strategy import (
    RestartIntensity,
    RestartPlan,
    Strategy,
    SupervisorConfig,
    plan_exit,
    should_restart,
)
from supervision.supervisor import EventKind, Supervisor, SupervisorEvent

__all__ = [
    "AttemptEvent",
    "BreakerConfig",
    "BreakerRegistry",
    "BreakerState",
    "Bulkhead",
    "BulkheadFull",
    "ChildHandle",
    "ChildInfo",
    "ChildNotFound",
    "ChildSpec",
    "ChildState",
    "ChildType",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "EventKind",
    "Exit",
    "ExitKind",
    "OnTransition",
    "PolicyConfigError",
    "PolicyError",
    "RateLimit",
    "RateLimitExceeded",
    "RateLimiter",
    "RestartIntensity",
    "RestartPlan",
    "RestartType",
    "RetryDecision",
    "RetryPolicy",
    "RetryReason",
    "RetryableFailure",
    "Strategy",
    "SupervisionError",
    "Supervisor",
    "SupervisorConfig",
    "SupervisorError",
    "SupervisorEscalation",
    "SupervisorEvent",
    "SupervisorStartError",
    "SystemClock",
    "TTLCache",
    "TokenBucket",
    "as_failure",
    "decide",
    "plan_exit",
    "request_key",
    "retry_call",
    "should_restart",
]
