"""Resilience around provider calls, on a fake clock: retry, breaker, fallback, limits, cache, streams."""

from __future__ import annotations

import json
import random

import pytest

from pipelines.errors import ProviderError
from pipelines.providers.base import CompletionRequest, Usage
from pipelines.providers.registry import ProviderRegistry
from pipelines.providers.resilient import Resilience
from pipelines.testing import FakeProvider, ScriptedResponse
from supervision.breaker import BreakerConfig, BreakerRegistry, BreakerState
from supervision.ratelimit import RateLimit
from supervision.retry import RetryPolicy
from supervision.testing import FakeClock

REQUEST = CompletionRequest.from_prompt("hello", max_tokens=10)


def err(code: str, *, retry_after: float | None = None) -> ProviderError:
    retryable = code in {"rate_limited", "overloaded", "server_error", "timeout", "connection"}
    return ProviderError(f"{code}!", code=code, retryable=retryable, retry_after_s=retry_after)


def make(
    primary: FakeProvider,
    backup: FakeProvider | None = None,
    *,
    retry: RetryPolicy | None = None,
    breaker: BreakerConfig | None = None,
    limits: dict[str, RateLimit] | None = None,
    cache_ttl_s: float | None = None,
) -> tuple[ProviderRegistry, Resilience, FakeClock]:
    clock = FakeClock()
    resilience = Resilience(
        clock=clock,
        retry=retry
        or RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=10.0, jitter="none"),
        rate_limits=limits or {},
        cache_ttl_s=cache_ttl_s,
        rng=random.Random(7),  # noqa: S311 - seeded jitter for repeatable tests
    )
    resilience.breakers = BreakerRegistry(
        breaker or BreakerConfig(min_calls=100, consecutive_failures=None),
        clock,
        on_transition=resilience.on_transition,
    )
    providers = {"anthropic": primary}
    if backup is not None:
        providers["gemini"] = backup
    registry = ProviderRegistry(
        providers,
        env={},
        resilience=resilience,
        fallback=["gemini", "offline"] if backup else ["offline"],
    )
    return registry, resilience, clock


async def test_retry_honours_retry_after_then_succeeds() -> None:
    """A 429 with Retry-After 5 s waits 5 s (a floor over backoff), then the retry answers."""
    primary = FakeProvider([err("rate_limited", retry_after=5.0), "ok"])
    registry, res, clock = make(primary)
    completion = await registry.resolve("anthropic").provider.complete(REQUEST)
    assert completion.text == "ok" and completion.attempts == 2
    assert clock.sleeps == [5.0]
    assert res.metrics.total("retry", provider="anthropic", code="rate_limited") == 1


async def test_backoff_is_exponential_with_cap() -> None:
    """Without Retry-After, waits follow the policy's exponential backoff."""
    primary = FakeProvider([err("server_error"), err("server_error"), err("server_error"), "ok"])
    registry, _, clock = make(
        primary, retry=RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=3.0, jitter="none")
    )
    await registry.resolve("anthropic").provider.complete(REQUEST)
    assert clock.sleeps == [1.0, 2.0, 3.0]


async def test_full_jitter_stays_within_bounds() -> None:
    """With full jitter each wait is within [0, cap]."""
    primary = FakeProvider([err("overloaded")] * 2 + ["ok"])
    registry, _, clock = make(
        primary, retry=RetryPolicy(max_attempts=3, base_delay_s=2.0, max_delay_s=8.0)
    )
    await registry.resolve("anthropic").provider.complete(REQUEST)
    assert 0 <= clock.sleeps[0] <= 2.0 and 0 <= clock.sleeps[1] <= 4.0


async def test_fallback_after_429_retries_exhausted() -> None:
    """A primary that keeps answering 429 is retried, then the chain falls back."""
    primary = FakeProvider([err("rate_limited", retry_after=1.0)] * 3)
    backup = FakeProvider(default="from backup", name="gemini")
    registry, res, clock = make(primary, backup)
    completion = await registry.resolve("anthropic").provider.complete(REQUEST)
    assert completion.text == "from backup" and completion.fallback_from == ("anthropic",)
    assert primary.call_count == 3 and clock.sleeps == [1.0, 2.0]
    assert res.metrics.total("fallback", provider="anthropic") == 1


@pytest.mark.parametrize("code", ["overloaded", "timeout"])
async def test_fallback_on_529_and_timeout(code: str) -> None:
    """Overload (529) and timeouts fall back once retries are used up."""
    primary = FakeProvider([err(code)] * 3)
    backup = FakeProvider(default="backup", name="gemini")
    registry, _, _ = make(primary, backup)
    completion = await registry.resolve("anthropic").provider.complete(REQUEST)
    assert completion.provider == "gemini" and primary.call_count == 3


async def test_non_retryable_falls_back_at_once() -> None:
    """An auth error is not retried: the chain moves on immediately."""
    primary = FakeProvider([err("auth")])
    backup = FakeProvider(default="backup", name="gemini")
    registry, _, clock = make(primary, backup)
    completion = await registry.resolve("anthropic").provider.complete(REQUEST)
    assert completion.provider == "gemini" and primary.call_count == 1 and clock.sleeps == []


async def test_fallback_order_is_the_configured_chain() -> None:
    """Links are tried in order; the last one (offline) always answers."""
    primary = FakeProvider([err("auth")])
    backup = FakeProvider([err("auth")], name="gemini")
    registry, _, _ = make(primary, backup)
    completion = await registry.resolve("anthropic").provider.complete(REQUEST)
    assert completion.provider == "offline"
    assert completion.fallback_from == ("anthropic", "gemini")


async def test_every_link_failing_raises_last_error() -> None:
    """With no link left the caller gets a ProviderError naming the chain."""
    primary = FakeProvider([err("auth")])
    registry, _, _ = make(primary)
    with pytest.raises(ProviderError, match="anthropic"):
        await registry.resolve("anthropic", fallback=[]).provider.complete(REQUEST)


async def test_breaker_opens_skips_primary_then_recovers() -> None:
    """Consecutive failures open the breaker; calls skip the primary until the cooldown, then a probe closes it."""
    primary = FakeProvider([err("server_error")] * 3, default="healthy again")
    backup = FakeProvider(default="backup", name="gemini")
    registry, res, clock = make(
        primary,
        backup,
        retry=RetryPolicy(max_attempts=1),
        breaker=BreakerConfig(min_calls=100, consecutive_failures=3, cooldown_s=30.0),
    )
    chain = registry.resolve("anthropic").provider
    for _ in range(3):
        assert (await chain.complete(REQUEST)).provider == "gemini"
    breaker = res.breakers.get("anthropic:default")  # type: ignore[union-attr]
    assert breaker.state is BreakerState.OPEN
    assert (await chain.complete(REQUEST)).provider == "gemini"
    assert primary.call_count == 3, "an open breaker sends no request"
    clock.advance(30.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert (await chain.complete(REQUEST)).text == "healthy again"
    assert breaker.state is BreakerState.CLOSED
    assert res.metrics.total("breaker_open", provider="anthropic") == 1
    assert res.metrics.total("circuit_open", provider="anthropic") == 1


async def test_breaker_is_per_provider_and_model() -> None:
    """A broken model does not open the breaker of another model of the same provider."""
    primary = FakeProvider(lambda r: err("server_error") if r.model == "bad" else "fine")
    registry, res, _ = make(
        primary,
        retry=RetryPolicy(max_attempts=1),
        breaker=BreakerConfig(min_calls=100, consecutive_failures=2),
    )
    chain = registry.resolve("anthropic", fallback=[]).provider
    for _ in range(2):
        with pytest.raises(ProviderError):
            await chain.complete(CompletionRequest.from_prompt("x", model="bad"))
    assert (await chain.complete(CompletionRequest.from_prompt("x", model="good"))).text == "fine"
    states = {b["key"]: b["state"] for b in res.breakers.snapshot()}  # type: ignore[union-attr]
    assert states == {"anthropic:bad": "open", "anthropic:good": "closed"}


async def test_rate_limiter_waits_on_the_clock() -> None:
    """requests_per_min is enforced: the third call in a burst of two per minute waits ~30 s."""
    primary = FakeProvider(default="ok")
    registry, _, clock = make(primary, limits={"anthropic": RateLimit(requests_per_min=2)})
    chain = registry.resolve("anthropic").provider
    for _ in range(3):
        await chain.complete(REQUEST)
    assert primary.call_count == 3
    assert sum(clock.sleeps) == pytest.approx(30.0, abs=0.01)


async def test_tokens_per_min_limit() -> None:
    """tokens_per_min reserves the prompt estimate plus max_tokens per call."""
    primary = FakeProvider(ScriptedResponse("ok", usage=Usage(5, 5)) for _ in range(2))
    registry, _, clock = make(primary, limits={"anthropic": RateLimit(tokens_per_min=60)})
    chain = registry.resolve("anthropic").provider
    request = CompletionRequest.from_prompt("x" * 80, max_tokens=40)  # ~60 tokens reserved
    await chain.complete(request)
    await chain.complete(request)
    assert clock.sleeps and clock.sleeps[0] > 0


async def test_response_cache_serves_identical_requests() -> None:
    """With a cache TTL, an identical request is answered without a provider call until it expires."""
    primary = FakeProvider(default="cached answer")
    registry, res, clock = make(primary, cache_ttl_s=60.0)
    chain = registry.resolve("anthropic").provider
    await chain.complete(REQUEST)
    await chain.complete(REQUEST)
    assert primary.call_count == 1 and res.metrics.total("cache_hit") == 1
    clock.advance(61.0)
    await chain.complete(REQUEST)
    assert primary.call_count == 2


async def collect(chain: object, request: CompletionRequest) -> tuple[str, object]:
    text, final = "", None
    async for event in chain.stream(request):  # type: ignore[attr-defined]
        text += event.delta
        final = event.completion or final
    return text, final


async def test_stream_dropped_before_first_token_falls_back() -> None:
    """A stream that fails before any text moves to the next provider; text is not duplicated."""
    drop = ScriptedResponse("never shown", stream_error=err("connection"), stream_error_after=0)
    primary = FakeProvider([drop] * 3)
    backup = FakeProvider(default="backup stream", name="gemini", stream_chunk=4)
    registry, _, _ = make(primary, backup)
    text, final = await collect(registry.resolve("anthropic").provider, REQUEST)
    assert text == "backup stream"
    assert final.provider == "gemini" and final.fallback_from == ("anthropic",)  # type: ignore[attr-defined]


async def test_stream_dropped_after_first_token_is_a_clear_error() -> None:
    """After text was delivered a drop is stream_interrupted: no retry, no fallback, no repeated text."""
    drop = ScriptedResponse(
        "first part then more", stream_error=err("connection"), stream_error_after=1
    )
    primary = FakeProvider([drop], stream_chunk=6)
    backup = FakeProvider(default="backup", name="gemini")
    registry, res, _ = make(primary, backup)
    seen: list[str] = []

    async def consume() -> None:
        async for event in registry.resolve("anthropic").provider.stream(REQUEST):
            seen.append(event.delta)

    with pytest.raises(ProviderError) as info:
        await consume()
    assert info.value.code == "stream_interrupted" and not info.value.retryable
    assert "".join(seen) == "first "
    assert primary.call_count == 1 and backup.call_count == 0
    assert res.metrics.total("stream_interrupted") == 1


async def test_attempts_and_fallbacks_are_logged_as_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every failed attempt and the fallback produce structlog JSON lines naming provider and code."""
    from pipelines.observability import configure_logging

    configure_logging(level="info", fmt="json")
    try:
        primary = FakeProvider([err("overloaded")] * 3)
        backup = FakeProvider(default="b", name="gemini")
        registry, _, _ = make(primary, backup)
        await registry.resolve("anthropic").provider.complete(REQUEST)
        lines = [
            json.loads(line)
            for line in capsys.readouterr().err.splitlines()
            if line.startswith("{")
        ]
    finally:
        configure_logging()
    attempts = [e for e in lines if e["event"] == "provider_attempt"]
    assert len(attempts) == 3 and {e["code"] for e in attempts} == {"overloaded"}
    assert [e["reason"] for e in attempts][-1] == "attempts_exhausted"
    assert any(e["event"] == "provider_fallback" and e["to"] == "gemini" for e in lines)
