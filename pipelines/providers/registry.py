"""Which provider serves a step: by name, by configured key, or ``offline``.

A ``claude*`` step asks for ``anthropic``, a ``gemini*`` step for ``gemini``, an
``llm`` step for its ``provider``. When the requested provider has no key
configured (or is not available), the step runs on the next provider of its
fallback chain, ending at ``offline``, and the resolution says why, so the result
can report ``provider: offline`` honestly.

With a :class:`~pipelines.providers.resilient.Resilience`, every resolution is a
:class:`~pipelines.providers.chain.FallbackChain` of resilient providers (retry,
breaker, rate limits, cache). Without one (unit tests, scripted fakes), the
chosen provider is returned as is.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pipelines.errors import ConfigError
from pipelines.providers.base import Provider
from pipelines.providers.offline import OfflineProvider
from pipelines.providers.resilient import DirectProvider, Resilience, ResilientProvider
from supervision.retry import RetryPolicy

__all__ = ["DEFAULT_MODELS", "KEY_ENV", "ProviderRegistry", "Resolution", "canonical_name"]

#: Environment variables that hold each real provider's key, in precedence order.
KEY_ENV: Mapping[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "openai": ("OPENAI_API_KEY",),
}

_ALIASES = {"claude": "anthropic", "google": "gemini"}

#: The model a provider gets when neither the step nor the configuration names one.
DEFAULT_MODELS: Mapping[str, str] = {
    "anthropic": "claude-sonnet-4-6",
    "gemini": "gemini-2.5-flash",
    "openai": "gpt-4o-mini",
}

ProviderFactory = Callable[[], Provider]


def canonical_name(name: str) -> str:
    """``claude`` → ``anthropic``, ``google`` → ``gemini``; other names unchanged."""
    lowered = name.strip().lower()
    return _ALIASES.get(lowered, lowered)


@dataclass(frozen=True, slots=True)
class Resolution:
    """The provider chosen for a request, what was asked for, and why they differ."""

    provider: Provider
    requested: str
    note: str | None = None


class ProviderRegistry:
    """Resolves provider names to instances (or fallback chains); one per runner.

    ``force`` sends every request to one provider (``elexirion run --provider``).
    ``factories`` build real providers lazily, only when their key is configured;
    ``configured`` names the providers that have a key (default: read the
    environment). ``fallback`` is the default chain after the requested provider.
    """

    def __init__(
        self,
        providers: Mapping[str, Provider] | None = None,
        *,
        factories: Mapping[str, ProviderFactory] | None = None,
        env: Mapping[str, str] | None = None,
        configured: Iterable[str] | None = None,
        force: str | None = None,
        resilience: Resilience | None = None,
        fallback: Sequence[str] = ("offline",),
        default_models: Mapping[str, str] | None = None,
    ) -> None:
        self._instances: dict[str, Provider] = {"offline": OfflineProvider()}
        for name, provider in (providers or {}).items():
            self._instances[canonical_name(name)] = provider
        self._factories = {canonical_name(k): v for k, v in (factories or {}).items()}
        env = os.environ if env is None else env
        self._configured = (
            {canonical_name(n) for n in configured}
            if configured is not None
            else {n for n, names in KEY_ENV.items() if any(env.get(v) for v in names)}
        )
        self._force = canonical_name(force) if force else None
        self.resilience = resilience
        self.fallback = tuple(canonical_name(f) for f in fallback)
        self._default_models = dict(default_models or {})
        self._resilient: dict[str, ResilientProvider] = {}
        if self._force and not self._known(self._force):
            raise ConfigError(f"unknown provider {force!r}; known: {', '.join(self.names())}")
        for name in self.fallback:
            if not self._known(name):
                known = ", ".join(self.names())
                raise ConfigError(
                    f"unknown provider {name!r} in the fallback chain; known: {known}"
                )

    def register(self, name: str, provider: Provider) -> None:
        """Add or replace a provider instance under ``name``."""
        key = canonical_name(name)
        self._instances[key] = provider
        self._resilient.pop(key, None)

    def names(self) -> list[str]:
        """Every name this registry can resolve."""
        return sorted({*self._instances, *self._factories, *KEY_ENV})

    def has_key(self, name: str) -> bool:
        """Whether a key for ``name`` is configured (never returns the key)."""
        return canonical_name(name) in self._configured

    def available(self, name: str) -> bool:
        """Whether ``name`` can serve a request now (instance, or factory with its key)."""
        key = canonical_name(name)
        if key in self._instances:
            return True
        return key in self._factories and (key not in KEY_ENV or self.has_key(key))

    def unavailable_reason(self, name: str) -> str:
        key = canonical_name(name)
        if key in KEY_ENV and not self.has_key(key):
            return f"no {' or '.join(KEY_ENV[key])} configured"
        return f"the {key} provider is not available in this build"

    def instance(self, name: str) -> Provider:
        """The raw provider for ``name``; raises ``ConfigError`` when unavailable."""
        key = canonical_name(name)
        if key not in self._instances:
            if not self.available(key):
                raise ConfigError(f"provider {key!r} unavailable: {self.unavailable_reason(key)}")
            self._instances[key] = self._factories[key]()
        return self._instances[key]

    async def aclose(self) -> None:
        """Close the providers this registry created (their HTTP clients); idempotent."""
        for name in list(self._instances):
            closer = getattr(self._instances[name], "aclose", None)
            if name in self._factories and closer is not None:
                await closer()
                del self._instances[name]
                self._resilient.pop(name, None)

    def default_model(self, name: str) -> str | None:
        """The model a provider uses when a request names none (from configuration)."""
        return self._default_models.get(canonical_name(name))

    def chain_for(self, requested: str, fallback: Sequence[str] | None = None) -> list[str]:
        """The provider names a request for ``requested`` will try, in order."""
        if self._force:
            return [self._force]
        wanted = canonical_name(requested)
        if not self._known(wanted):
            raise ConfigError(f"unknown provider {requested!r}; known: {', '.join(self.names())}")
        order = [
            wanted,
            *(canonical_name(f) for f in (fallback if fallback is not None else self.fallback)),
        ]
        chain: list[str] = []
        for name in order:
            if name not in chain and self.available(name):
                chain.append(name)
        if not chain:
            chain.append("offline")
        return chain

    def resolve(
        self,
        requested: str,
        *,
        fallback: Sequence[str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> Resolution:
        """The provider (or chain) for ``requested``; raises ``ConfigError`` for unknown names."""
        wanted = self._force or canonical_name(requested)
        chain = self.chain_for(requested, fallback)
        note = None
        if chain[0] != wanted:
            note = f"{self.unavailable_reason(wanted)}; ran on {chain[0]}"
        if self.resilience is None:
            return Resolution(self.instance(chain[0]), wanted, note)
        from pipelines.providers.chain import FallbackChain, Link

        links = [
            Link(
                self._wrapped(name, self.resilience),
                model=self._default_models.get(name),
                keep_request_model=name == wanted,
            )
            for name in chain
        ]
        return Resolution(
            FallbackChain(links, metrics=self.resilience.metrics, retry=retry), wanted, note
        )

    def _wrapped(self, name: str, resilience: Resilience) -> ResilientProvider | DirectProvider:
        if name == "offline":
            return DirectProvider(self.instance(name))
        if name not in self._resilient:
            self._resilient[name] = ResilientProvider(
                self.instance(name),
                resilience,
                name=name,
                default_model=self._default_models.get(name),
            )
        return self._resilient[name]

    def _known(self, name: str) -> bool:
        return name in self._instances or name in self._factories or name in KEY_ENV
