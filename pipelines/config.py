"""Configuration: an optional ``elexirion.yaml`` plus the environment.

Precedence, highest first: keyword arguments, ``ELEXIRION_*`` variables
(``ELEXIRION_RESILIENCE__RETRY__MAX_ATTEMPTS=5``), the providers' standard
variables (``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY``/``GOOGLE_API_KEY``,
``OPENAI_API_KEY``, ``ANTHROPIC_BASE_URL``, ``GEMINI_BASE_URL``,
``OPENAI_BASE_URL``), the YAML file (``ELEXIRION_CONFIG`` or ``./elexirion.yaml``),
then defaults. With no key at all, everything runs on ``offline``.

Keys are :class:`~pydantic.SecretStr`: they never appear in a repr, a log line or
``elexirion providers``. A bad file is a :class:`~pipelines.errors.ConfigError`
naming the file, the line and the setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pipelines._yaml_source import parse_yaml
from pipelines.errors import ConfigError, SpecError

__all__ = [
    "BreakerSettings",
    "CacheSettings",
    "ProviderSettings",
    "RateLimitSettings",
    "ResilienceSettings",
    "RetrySettings",
    "Settings",
    "load_settings",
]

DEFAULT_ALIASES = {
    "haiku": "claude-haiku-4-5",
    "sonnet": "claude-sonnet-4-6",
    "opus": "claude-opus-4-6",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimitSettings(_Strict):
    """Per-provider limits; ``None`` means unlimited."""

    requests_per_min: float | None = Field(default=None, gt=0)
    tokens_per_min: float | None = Field(default=None, gt=0)
    max_concurrent: int | None = Field(default=64, ge=1)
    max_wait_s: float = Field(default=30.0, ge=0)


class ProviderSettings(_Strict):
    """One provider: key, endpoint, default model, timeout and limits."""

    api_key: SecretStr | None = None
    base_url: str | None = None
    default_model: str | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)


class RetrySettings(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=20)
    base_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=20.0, ge=0)
    deadline_s: float | None = Field(default=60.0, gt=0)
    max_retry_after_s: float = Field(default=60.0, ge=0)


class BreakerSettings(_Strict):
    """Defaults tolerate a provider's usual error noise (30% errors do not open it;
    retries absorb them) and open within ~10 failed calls when it is down."""

    window_s: float = Field(default=30.0, gt=0)
    min_calls: int = Field(default=20, ge=1)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    consecutive_failures: int | None = Field(default=10, ge=1)
    cooldown_s: float = Field(default=15.0, gt=0)
    half_open_probes: int = Field(default=1, ge=1)


class CacheSettings(_Strict):
    enabled: bool = False
    ttl_s: float = Field(default=300.0, gt=0)
    max_entries: int = Field(default=1024, ge=1)


class ResilienceSettings(_Strict):
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)


class Settings(BaseSettings):
    """Everything configurable about providers and their resilience."""

    model_config = SettingsConfigDict(
        env_prefix="ELEXIRION_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    default_provider: str = "anthropic"
    #: Tried in order after a step's own provider fails; ``offline`` always answers.
    fallback: list[str] = Field(
        default_factory=lambda: ["anthropic", "gemini", "openai", "offline"]
    )
    model_aliases: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ALIASES))
    anthropic: ProviderSettings = Field(default_factory=ProviderSettings)
    gemini: ProviderSettings = Field(default_factory=ProviderSettings)
    openai: ProviderSettings = Field(default_factory=ProviderSettings)
    resilience: ResilienceSettings = Field(default_factory=ResilienceSettings)
    prices_file: Path | None = None
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "warning"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        del dotenv_settings, file_secret_settings  # not used: one file, the environment
        return (init_settings, env_settings, _StandardEnv(settings_cls), _YamlFile(settings_cls))

    def provider(self, name: str) -> ProviderSettings:
        """Settings of ``anthropic``, ``gemini`` or ``openai``."""
        value = getattr(self, name, None)
        if not isinstance(value, ProviderSettings):
            raise ConfigError(f"no settings for provider {name!r}")
        return value

    def key(self, name: str) -> str | None:
        """The key of a provider, for building its client only (never log it)."""
        secret = self.provider(name).api_key
        return secret.get_secret_value() if secret else None


# Standard variables the provider SDKs and their users already know.
_STANDARD_ENV: dict[str, tuple[str, ...]] = {
    "anthropic.api_key": ("ANTHROPIC_API_KEY",),
    "gemini.api_key": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "openai.api_key": ("OPENAI_API_KEY",),
    "anthropic.base_url": ("ANTHROPIC_BASE_URL",),
    "gemini.base_url": ("GEMINI_BASE_URL",),
    "openai.base_url": ("OPENAI_BASE_URL",),
}


class _StandardEnv(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for dotted, names in _STANDARD_ENV.items():
            value = next((os.environ[n] for n in names if os.environ.get(n)), None)
            if value is not None:
                section, key = dotted.split(".")
                found.setdefault(section, {})[key] = value
        return found


class _YamlFile(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _config_path()
        if path is None:
            return {}
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
        data, _ = parse_yaml(text, source=str(path))
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise SpecError("configuration must be a mapping of settings", file=str(path), line=1)
        return dict(data)


def _config_path() -> Path | None:
    explicit = os.environ.get("ELEXIRION_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"ELEXIRION_CONFIG points at {explicit}, which is not a file")
        return path
    local = Path("elexirion.yaml")
    return local if local.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`; raises ``ConfigError`` naming the bad setting (never its value)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"{where}: {err['msg']}")
        source = _config_path()
        origin = f" (from {source} and the environment)" if source else " (from the environment)"
        raise ConfigError("invalid configuration" + origin + ": " + "; ".join(problems)) from None
