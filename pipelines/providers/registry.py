"""Which provider serves a step: by name, by configured key, or ``offline``.

A ``claude*`` step asks for ``anthropic``, a ``gemini*`` step for ``gemini``, an
``llm`` step for its ``provider``. When the requested provider has no key
configured (or is not available), the step runs on ``offline`` and the
resolution says why, so the result can report ``provider: offline`` honestly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pipelines.errors import ConfigError
from pipelines.providers.base import Provider
from pipelines.providers.offline import OfflineProvider

__all__ = ["KEY_ENV", "ProviderRegistry", "Resolution", "canonical_name"]

#: Environment variables that hold each real provider's key, in precedence order.
KEY_ENV: Mapping[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "openai": ("OPENAI_API_KEY",),
}

_ALIASES = {"claude": "anthropic", "google": "gemini"}

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
    """Resolves provider names to instances; one registry per runner.

    ``force`` sends every request to one provider (``elexirion run --provider``).
    ``factories`` build real providers lazily, only when their key is configured.
    """

    def __init__(
        self,
        providers: Mapping[str, Provider] | None = None,
        *,
        factories: Mapping[str, ProviderFactory] | None = None,
        env: Mapping[str, str] | None = None,
        force: str | None = None,
    ) -> None:
        self._instances: dict[str, Provider] = {"offline": OfflineProvider()}
        for name, provider in (providers or {}).items():
            self._instances[canonical_name(name)] = provider
        self._factories = {canonical_name(k): v for k, v in (factories or {}).items()}
        self._env = os.environ if env is None else env
        self._force = canonical_name(force) if force else None
        if self._force and not self._known(self._force):
            raise ConfigError(f"unknown provider {force!r}; known: {', '.join(self.names())}")

    def register(self, name: str, provider: Provider) -> None:
        """Add or replace a provider instance under ``name``."""
        self._instances[canonical_name(name)] = provider

    def names(self) -> list[str]:
        """Every name this registry can resolve."""
        return sorted({*self._instances, *self._factories, *KEY_ENV})

    def has_key(self, name: str) -> bool:
        """Whether a key for ``name`` is configured (never returns the key)."""
        return any(self._env.get(var) for var in KEY_ENV.get(canonical_name(name), ()))

    def resolve(self, requested: str) -> Resolution:
        """The provider for ``requested``; raises ``ConfigError`` for unknown names."""
        wanted = self._force or canonical_name(requested)
        if wanted in self._instances:
            return Resolution(self._instances[wanted], wanted)
        if wanted in self._factories and (wanted not in KEY_ENV or self.has_key(wanted)):
            instance = self._factories[wanted]()
            self._instances[wanted] = instance
            return Resolution(instance, wanted)
        if wanted in KEY_ENV:
            if self.has_key(wanted):
                note = f"the {wanted} provider is not available in this build; ran offline"
            else:
                note = f"no {' or '.join(KEY_ENV[wanted])} configured; ran offline"
            return Resolution(self._instances["offline"], wanted, note)
        raise ConfigError(f"unknown provider {requested!r}; known: {', '.join(self.names())}")

    def _known(self, name: str) -> bool:
        return name in self._instances or name in self._factories or name in KEY_ENV
