"""Admission control: may this provider call go ahead, and what came of it.

:class:`LocalAdmission` decides with the breakers and rate limiters of one process.
The actor runtime swaps in an implementation that asks the ``gateway`` actor, so
every executor on every node shares one view of a provider (same protocol).

Contract: every successful :meth:`admit` is followed by exactly one :meth:`settle`
(``success``, ``failure`` for a health failure, or ``release`` for anything that
says nothing about the provider's health, e.g. a bad request or cancellation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

from pipelines.errors import ProviderError
from supervision.breaker import BreakerState
from supervision.errors import CircuitOpenError, RateLimitExceeded

if TYPE_CHECKING:
    from pipelines.providers.resilient import Resilience

__all__ = ["AdmissionControl", "LocalAdmission", "Outcome"]

Outcome = Literal["success", "failure", "release"]


class AdmissionControl(Protocol):
    async def admit(self, provider: str, model: str, tokens: int) -> None:
        """Raises ``ProviderError`` ``circuit_open`` (not retryable) or ``rate_limited``."""
        ...

    async def settle(
        self, provider: str, model: str, *, outcome: Outcome, estimated: int, actual: int
    ) -> None:
        """Record how an admitted call ended."""
        ...


class LocalAdmission:
    """Breakers (per provider and model) and rate limiters (per provider) of one process."""

    def __init__(self, resilience: Resilience) -> None:
        self._res = resilience

    async def admit(self, provider: str, model: str, tokens: int) -> None:
        res = self._res
        breaker = res.breakers.get(f"{provider}:{model}") if res.breakers else None
        if breaker is not None:
            try:
                breaker.acquire()
            except CircuitOpenError as exc:
                res.metrics.count("circuit_open", provider=provider, model=model)
                raise ProviderError(
                    f"{provider}: circuit open for {model}; retry in {exc.retry_in_s:.1f} s",
                    code="circuit_open",
                    provider=provider,
                    retry_after_s=exc.retry_in_s,
                ) from None
        try:
            await res.limiter(provider).acquire(tokens)
        except RateLimitExceeded as exc:
            if breaker is not None:
                breaker.release()
            raise ProviderError(
                f"{provider}: local rate limit; retry in {exc.retry_after_s:.1f} s",
                code="rate_limited",
                retryable=True,
                provider=provider,
                retry_after_s=exc.retry_after_s,
            ) from None

    def lease_s(self, provider: str, model: str, horizon_s: float) -> float:
        """How long a caller may admit calls to ``provider``/``model`` without asking:
        ``horizon_s`` while nothing here would refuse one (no rate limit on the provider,
        its breaker closed), else 0 (ask each time: a limit to share, or probes to count).
        """
        res = self._res
        limit = res.limiter(provider).limit
        if limit.requests_per_min is not None or limit.tokens_per_min is not None:
            return 0.0
        breaker = res.breakers.get(f"{provider}:{model}") if res.breakers else None
        if breaker is not None and breaker.state is not BreakerState.CLOSED:
            return 0.0
        return horizon_s

    async def settle(
        self, provider: str, model: str, *, outcome: Outcome, estimated: int, actual: int
    ) -> None:
        res = self._res
        breaker = res.breakers.get(f"{provider}:{model}") if res.breakers else None
        if breaker is not None:
            if outcome == "success":
                breaker.record_success()
            elif outcome == "failure":
                breaker.record_failure()
            else:
                breaker.release()
        if outcome == "success":
            res.limiter(provider).settle(estimated, actual)
