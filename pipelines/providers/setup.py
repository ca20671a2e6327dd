"""Building the provider registry from :class:`~pipelines.config.Settings`.

Real providers are created lazily and only for providers with a key; each is
wrapped in the shared resilience policies. The SDK modules are imported only
when their provider is first used, so ``elexirion run`` stays fast offline.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from typing import Any

from pipelines.config import Settings
from pipelines.providers.base import Provider
from pipelines.providers.pricing import PriceTable
from pipelines.providers.registry import DEFAULT_MODELS, ProviderRegistry
from pipelines.providers.resilient import Resilience
from supervision.breaker import BreakerConfig, BreakerRegistry
from supervision.clock import Clock, SystemClock
from supervision.ratelimit import RateLimit
from supervision.retry import RetryPolicy

__all__ = ["build_registry", "build_resilience"]


def build_resilience(
    settings: Settings, *, clock: Clock | None = None, rng: random.Random | None = None
) -> Resilience:
    """The shared policy state configured by ``settings.resilience`` and per-provider limits."""
    clock = clock or SystemClock()
    policy = settings.resilience
    retry = RetryPolicy(
        max_attempts=policy.retry.max_attempts,
        base_delay_s=policy.retry.base_delay_s,
        max_delay_s=policy.retry.max_delay_s,
        deadline_s=policy.retry.deadline_s,
        max_retry_after_s=policy.retry.max_retry_after_s,
    )
    breaker = BreakerConfig(
        window_s=policy.breaker.window_s,
        min_calls=policy.breaker.min_calls,
        failure_rate=policy.breaker.failure_rate,
        consecutive_failures=policy.breaker.consecutive_failures,
        cooldown_s=policy.breaker.cooldown_s,
        half_open_probes=policy.breaker.half_open_probes,
    )
    limits = {
        name: RateLimit(
            requests_per_min=settings.provider(name).rate_limit.requests_per_min,
            tokens_per_min=settings.provider(name).rate_limit.tokens_per_min,
            max_concurrent=settings.provider(name).rate_limit.max_concurrent,
            max_wait_s=settings.provider(name).rate_limit.max_wait_s,
        )
        for name in ("anthropic", "gemini", "openai")
    }
    resilience = Resilience(
        clock=clock,
        retry=retry,
        rate_limits=limits,
        cache_ttl_s=policy.cache.ttl_s if policy.cache.enabled else None,
        cache_entries=policy.cache.max_entries,
        rng=rng or random.Random(),  # noqa: S311 - jitter, not cryptography
    )
    resilience.breakers = BreakerRegistry(breaker, clock, on_transition=resilience.on_transition)
    return resilience


#: (module, class) of each real provider, imported only when first used.
_CLASSES = {
    "anthropic": ("pipelines.providers.anthropic", "AnthropicProvider"),
    "gemini": ("pipelines.providers.gemini", "GeminiProvider"),
    "openai": ("pipelines.providers.openai", "OpenAIProvider"),
}


def _factory(name: str, settings: Settings, prices: PriceTable) -> Callable[[], Provider]:
    def build() -> Provider:
        module, cls = _CLASSES[name]
        conf = settings.provider(name)
        extra: dict[str, Any] = {"aliases": settings.model_aliases} if name == "anthropic" else {}
        provider: Provider = getattr(importlib.import_module(module), cls)(
            api_key=settings.key(name) or "",
            base_url=conf.base_url,
            timeout_s=conf.timeout_s,
            prices=prices,
            default_model=conf.default_model or DEFAULT_MODELS[name],
            **extra,
        )
        return provider

    return build


def build_registry(
    settings: Settings,
    *,
    force: str | None = None,
    clock: Clock | None = None,
    resilience: Resilience | None = None,
) -> ProviderRegistry:
    """A registry with every configured provider behind the resilience policies."""
    prices = PriceTable.load(settings.prices_file) if settings.prices_file else PriceTable.load()
    configured = [name for name in ("anthropic", "gemini", "openai") if settings.key(name)]
    return ProviderRegistry(
        factories={name: _factory(name, settings, prices) for name in _CLASSES},
        configured=configured,
        force=force,
        resilience=resilience or build_resilience(settings, clock=clock),
        fallback=settings.fallback,
        default_models={
            name: settings.provider(name).default_model or DEFAULT_MODELS[name]
            for name in ("anthropic", "gemini", "openai")
        },
    )
