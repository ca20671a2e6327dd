"""Configuration: YAML file + environment, precedence, clear errors, keys kept secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import load_settings
from pipelines.errors import ConfigError

CANARY = "sk-ant-canary-DO-NOT-LEAK-0123456789"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts with no provider variables and an empty working directory."""
    for name in (
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "GEMINI_BASE_URL",
        "OPENAI_BASE_URL",
        "ELEXIRION_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in list(__import__("os").environ):
        if name.startswith("ELEXIRION_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_without_file_or_keys() -> None:
    """No file, no keys: defaults, and no provider has a key."""
    settings = load_settings()
    assert settings.default_provider == "anthropic"
    assert settings.key("anthropic") is None and settings.key("gemini") is None
    assert settings.model_aliases["sonnet"] == "claude-sonnet-4-6"


def test_standard_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Provider keys and base URLs come from their standard variables; GOOGLE_API_KEY also works."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    monkeypatch.setenv("GOOGLE_API_KEY", "g-key-123456")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    settings = load_settings()
    assert settings.key("anthropic") == CANARY
    assert settings.key("gemini") == "g-key-123456"
    assert settings.openai.base_url == "http://127.0.0.1:11434/v1"


def test_yaml_file_and_elexirion_env_precedence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ELEXIRION_* beats the YAML file, which beats defaults; nested keys use __."""
    (tmp_path / "elexirion.yaml").write_text(
        "default_provider: gemini\n"
        "fallback: [gemini, offline]\n"
        "resilience:\n  retry: {max_attempts: 4}\n  breaker: {cooldown_s: 5}\n"
        "openai: {default_model: llama3.1, rate_limit: {requests_per_min: 60}}\n"
    )
    monkeypatch.setenv("ELEXIRION_RESILIENCE__RETRY__MAX_ATTEMPTS", "6")
    settings = load_settings()
    assert settings.default_provider == "gemini" and settings.fallback == ["gemini", "offline"]
    assert settings.resilience.retry.max_attempts == 6
    assert settings.resilience.breaker.cooldown_s == 5
    assert settings.openai.default_model == "llama3.1"
    assert settings.openai.rate_limit.requests_per_min == 60


def test_unknown_setting_is_a_clear_error(tmp_path: Path) -> None:
    """A misspelt setting names the setting and the file."""
    (tmp_path / "elexirion.yaml").write_text("resilience:\n  retyr: {max_attempts: 2}\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "resilience.retyr" in str(info.value) and "elexirion.yaml" in str(info.value)


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    """Broken YAML in the configuration names the file and line."""
    (tmp_path / "elexirion.yaml").write_text("fallback: [gemini\nlog_level: info\n")
    with pytest.raises(ConfigError, match=r"elexirion\.yaml:\d"):
        load_settings()


def test_invalid_value_never_echoes_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A validation error reports the setting, never the input values (which may be keys)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    (tmp_path / "elexirion.yaml").write_text(f"anthropic: {{api_key: {CANARY}, timeout_s: -1}}\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "anthropic.timeout_s" in str(info.value)
    assert CANARY not in str(info.value)


def test_keys_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings repr and dump hide keys."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    settings = load_settings()
    assert CANARY not in repr(settings) and CANARY not in str(settings.model_dump())
    assert CANARY not in settings.model_dump_json()


def test_elexirion_config_pointing_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """ELEXIRION_CONFIG naming a missing file is a clear error."""
    monkeypatch.setenv("ELEXIRION_CONFIG", "/nonexistent/conf.yaml")
    with pytest.raises(ConfigError, match="ELEXIRION_CONFIG"):
        load_settings()
