"""One provider under the resilience policies: rate limit → bulkhead → circuit
breaker (per provider and model) → retry with backoff → optional response cache.

Failure semantics, per call:

- the breaker is open: ``ProviderError(code="circuit_open")`` at once, no request
  made (the fallback chain moves on);
- a retryable failure (429, 529/503, 5xx, timeout, connection) is retried per the
  :class:`~supervision.retry.RetryPolicy`, honouring Retry-After as a floor;
  non-retryable failures (auth, invalid request, content filter) are raised at once;
- every failure that says something about the provider's health (retryable codes)
  is recorded on the breaker; others release its probe slot;
- a stream is retried only before its first token; after that the failure is
  raised and the caller must not replay it (text would be duplicated);
- cancellation propagates untouched and frees the breaker slot.

The policies are pure (``supervision/``) and run on an injected clock, so tests
drive them on a fake clock with no sleeping.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import ProviderError
from pipelines.observability import ProviderMetrics, get_logger
from pipelines.providers._errors import RETRYABLE_CODES
from pipelines.providers.admission import AdmissionControl, LocalAdmission, Outcome
from pipelines.providers.base import Completion, CompletionRequest, Provider, StreamEvent
from supervision.breaker import BreakerRegistry
from supervision.cache import TTLCache, request_key
from supervision.clock import Clock, SystemClock
from supervision.ratelimit import Bulkhead, RateLimit, RateLimiter
from supervision.retry import RetryPolicy, decide

__all__ = ["DirectProvider", "Resilience", "ResilientProvider"]

_log = get_logger("providers")


@dataclass
class Resilience:
    """Shared policy state for every provider of one process.

    Breakers, limiters and the cache live here so every step (and every chain)
    sees one view of a provider's health.
    """

    clock: Clock = field(default_factory=SystemClock)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breakers: BreakerRegistry | None = None
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    cache_ttl_s: float | None = None
    cache_entries: int = 1024
    metrics: ProviderMetrics = field(default_factory=ProviderMetrics)
    rng: random.Random = field(default_factory=random.Random)
    #: Who admits calls: ``None`` means this process's breakers and limiters
    #: (:attr:`admit` holds the one in force).
    admission: AdmissionControl | None = None
    _limiters: dict[str, RateLimiter] = field(default_factory=dict)
    _bulkheads: dict[str, Bulkhead] = field(default_factory=dict)
    _cache: TTLCache[Completion] | None = None

    def __post_init__(self) -> None:
        from supervision.breaker import BreakerConfig

        if self.breakers is None:
            self.breakers = BreakerRegistry(
                BreakerConfig(), self.clock, on_transition=self.on_transition
            )
        if self.cache_ttl_s:
            self._cache = TTLCache(self.cache_ttl_s, self.clock, max_entries=self.cache_entries)
        self.admit: AdmissionControl = self.admission or LocalAdmission(self)

    def on_transition(self, key: str, old: Any, new: Any) -> None:
        """Breaker transitions are logged and counted (``breaker_open`` ...)."""
        provider, _, model = key.partition(":")
        self.metrics.count(f"breaker_{new.value}", provider=provider, model=model)
        _log.warning("breaker_transition", key=key, old=old.value, new=new.value)

    def limiter(self, provider: str) -> RateLimiter:
        if provider not in self._limiters:
            limit = self.rate_limits.get(provider, RateLimit())
            self._limiters[provider] = RateLimiter(provider, limit, self.clock)
        return self._limiters[provider]

    def bulkhead(self, provider: str) -> Bulkhead | None:
        limit = self.rate_limits.get(provider, RateLimit()).max_concurrent
        if limit is None:
            return None
        if provider not in self._bulkheads:
            self._bulkheads[provider] = Bulkhead(provider, limit)
        return self._bulkheads[provider]

    @property
    def cache(self) -> TTLCache[Completion] | None:
        return self._cache


def _estimate_tokens(request: CompletionRequest) -> int:
    # ~4 characters per token, plus the answer budget: a conservative reservation.
    return (
        len(request.prompt_text) // 4
        + ((request.system and len(request.system) // 4) or 0)
        + request.max_tokens
    )


def _cache_key(provider: str, model: str, request: CompletionRequest) -> str:
    payload = {
        "provider": provider,
        "model": model,
        "system": request.system,
        "messages": [dataclasses.asdict(m) for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "tools": [dataclasses.asdict(t) for t in request.tools],
        "schema": request.output_schema,
        "extra": dict(request.extra),
    }
    return request_key(json.loads(json.dumps(payload, default=str)))


class DirectProvider:
    """A provider that needs no policies: ``offline`` is local, deterministic and
    never rate limited, so it skips admission (no gateway round trip per call)."""

    def __init__(self, provider: Provider, *, name: str | None = None) -> None:
        self.inner = provider
        self.name = name or provider.name

    def __repr__(self) -> str:
        return f"DirectProvider({self.name!r})"

    async def complete(
        self, request: CompletionRequest, *, retry: RetryPolicy | None = None
    ) -> Completion:
        del retry  # nothing to retry: it cannot fail transiently
        return await self.inner.complete(request)

    def stream(
        self, request: CompletionRequest, *, retry: RetryPolicy | None = None
    ) -> AsyncIterator[StreamEvent]:
        del retry
        return self.inner.stream(request)


class ResilientProvider:
    """``provider`` with the policies of ``resilience`` applied to every call."""

    def __init__(
        self,
        provider: Provider,
        resilience: Resilience,
        *,
        name: str | None = None,
        default_model: str | None = None,
    ) -> None:
        self.inner = provider
        self.name = name or provider.name  # the registry's name: breakers and limits key on it
        self.resilience = resilience
        self.default_model = default_model

    def __repr__(self) -> str:
        return f"ResilientProvider({self.name!r})"

    def _model(self, request: CompletionRequest) -> str:
        return request.model or self.default_model or "default"

    async def complete(
        self, request: CompletionRequest, *, retry: RetryPolicy | None = None
    ) -> Completion:
        """One call with retries; raises ``ProviderError`` (``circuit_open`` when refused)."""
        res = self.resilience
        model = self._model(request)
        cache = res.cache
        cache_key = _cache_key(self.name, model, request) if cache is not None else ""
        if cache is not None:
            hit = cache.get(cache_key)
            if hit is not None:
                res.metrics.count("cache_hit", provider=self.name, model=model)
                return hit
        policy = retry or res.retry
        started = res.clock.now()
        attempt = 0
        while True:
            attempt += 1
            try:
                completion = await self._attempt(request, model)
            except ProviderError as failure:
                await self._after_failure(policy, failure, attempt, started, model)
                continue
            res.metrics.count("attempt_ok", provider=self.name, model=model)
            result = dataclasses.replace(completion, attempts=attempt)
            if cache is not None:
                cache.put(cache_key, result)
            return result

    async def _after_failure(
        self,
        policy: RetryPolicy,
        failure: ProviderError,
        attempt: int,
        started: float,
        model: str,
        *,
        stream: bool = False,
    ) -> None:
        """Log and count a failed attempt; sleep before the next one or re-raise."""
        res = self.resilience
        decision = decide(
            policy,
            attempt=attempt,
            failure=failure,
            started_at=started,
            now=res.clock.now(),
            rng=res.rng,
        )
        res.metrics.count("attempt_failed", provider=self.name, model=model, code=failure.code)
        _log.info(
            "provider_attempt",
            provider=self.name,
            model=model,
            attempt=attempt,
            outcome="failure",
            code=failure.code,
            retry=decision.retry,
            delay_s=round(decision.delay_s, 3),
            reason=decision.reason,
            stream=stream,
        )
        if not decision.retry:
            raise failure
        res.metrics.count("retry", provider=self.name, model=model, code=failure.code)
        await res.clock.sleep(decision.delay_s)

    async def _attempt(self, request: CompletionRequest, model: str) -> Completion:
        res = self.resilience
        estimate = _estimate_tokens(request)
        await res.admit.admit(self.name, model, estimate)
        try:
            bulkhead = res.bulkhead(self.name)
            if bulkhead is None:
                completion = await self.inner.complete(request)
            else:
                async with bulkhead:
                    completion = await self.inner.complete(request)
        except BaseException as error:
            await self._settle(model, error, estimate, 0)
            raise
        await self._settle(model, None, estimate, completion.usage.total_tokens)
        return completion

    async def _settle(
        self, model: str, error: BaseException | None, estimated: int, actual: int
    ) -> None:
        """Health failures count against the provider; anything else only frees the slot."""
        if error is None:
            outcome: Outcome = "success"
        elif isinstance(error, ProviderError) and error.code in RETRYABLE_CODES:
            outcome = "failure"
        else:
            outcome = "release"
        await self.resilience.admit.settle(
            self.name, model, outcome=outcome, estimated=estimated, actual=actual
        )

    async def stream(
        self, request: CompletionRequest, *, retry: RetryPolicy | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Deltas then the final completion; retried only while nothing was yielded."""
        res = self.resilience
        model = self._model(request)
        policy = retry or res.retry
        started = res.clock.now()
        attempt = 0
        while True:
            attempt += 1
            delivered = False
            estimate = _estimate_tokens(request)
            final: Completion | None = None
            try:
                await res.admit.admit(self.name, model, estimate)
                try:
                    async for event in self.inner.stream(request):
                        delivered = delivered or bool(event.delta)
                        final = event.completion
                        yield (
                            event
                            if final is None
                            else StreamEvent(
                                event.delta, dataclasses.replace(final, attempts=attempt)
                            )
                        )
                except BaseException as error:
                    await self._settle(model, error, estimate, 0)
                    raise
                actual = final.usage.total_tokens if final is not None else 0
                await self._settle(model, None, estimate, actual)
                res.metrics.count("attempt_ok", provider=self.name, model=model)
                return
            except ProviderError as failure:
                if delivered or failure.code == "circuit_open":
                    res.metrics.count(
                        "attempt_failed", provider=self.name, model=model, code=failure.code
                    )
                    raise
                await self._after_failure(policy, failure, attempt, started, model, stream=True)
