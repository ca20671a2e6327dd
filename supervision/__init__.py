"""OTP semantics and resilience policies (pure: no Ray, no I/O).

The policies that wrap every LLM provider call are state machines on an injected
:class:`Clock`: :mod:`~supervision.retry` (backoff, full jitter, Retry-After,
deadline), :mod:`~supervision.breaker` (closed/open/half-open per provider key),
:mod:`~supervision.ratelimit` (requests/min, tokens/min, bulkhead) and
:mod:`~supervision.cache` (TTL + LRU response cache). Errors are drawn in
:mod:`~supervision.errors`; test doubles (:class:`~supervision.testing.FakeClock`)
live in :mod:`supervision.testing`, which is not re-exported here.

Policy state (breaker windows, bucket levels, cache entries) lives in the memory of
its owner, e.g. the gateway actor. If the owner restarts, breakers start closed and
buckets full: that state is only a recent-health hint, rebuilt within one window,
and losing it loses no user data. Nothing here retries on its own except
:func:`retry_call`, and only what its policy allows.
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
from supervision.clock import Clock, SystemClock
from supervision.errors import (
    BulkheadFull,
    CircuitOpenError,
    PolicyConfigError,
    PolicyError,
    RateLimitExceeded,
    SupervisionError,
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

__all__ = [
    "AttemptEvent",
    "BreakerConfig",
    "BreakerRegistry",
    "BreakerState",
    "Bulkhead",
    "BulkheadFull",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "OnTransition",
    "PolicyConfigError",
    "PolicyError",
    "RateLimit",
    "RateLimitExceeded",
    "RateLimiter",
    "RetryDecision",
    "RetryPolicy",
    "RetryReason",
    "RetryableFailure",
    "SupervisionError",
    "SystemClock",
    "TTLCache",
    "TokenBucket",
    "as_failure",
    "decide",
    "request_key",
    "retry_call",
]
