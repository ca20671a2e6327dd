"""A canary key set in the environment appears nowhere: logs, errors, CLI output, results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.providers.fakes import FakeProviderServer, FaultPlan

CANARY = "sk-ant-CANARY-7f3e9c1d2b4a5e6f"
GEMINI_CANARY = "AIzaCANARYgemini0123456789abcdef"
OPENAI_CANARY = "sk-CANARY-openai-9a8b7c6d5e4f"


@pytest.fixture(scope="module")
def failing_servers() -> Iterator[dict[str, FakeProviderServer]]:
    """Fakes that reject every key (the OpenAI fake echoes the bearer key in its 401 body)."""
    plan = FaultPlan(error_rate=1.0, errors=("401",))
    running = {
        p: FakeProviderServer(p, plan=plan).start() for p in ("anthropic", "gemini", "openai")
    }
    yield running
    for server in running.values():
        server.stop()


def cli(
    args: list[str], cwd: Path, servers: dict[str, FakeProviderServer]
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        {
            "ANTHROPIC_API_KEY": CANARY,
            "GEMINI_API_KEY": GEMINI_CANARY,
            "OPENAI_API_KEY": OPENAI_CANARY,
            "ANTHROPIC_BASE_URL": servers["anthropic"].base_url,
            "GEMINI_BASE_URL": servers["gemini"].base_url,
            "OPENAI_BASE_URL": servers["openai"].base_url + "/v1",
            "ELEXIRION_LOG_LEVEL": "debug",
            "ELEXIRION_RESILIENCE__RETRY__MAX_ATTEMPTS": "1",
        }
    )
    exe = Path(sys.executable).parent / "elexirion"
    return subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in (CANARY, GEMINI_CANARY, OPENAI_CANARY, CANARY[8:], OPENAI_CANARY[4:]):
            assert secret not in text


def test_providers_command_never_shows_keys(
    failing_servers: dict[str, FakeProviderServer], tmp_path: Path
) -> None:
    """`elexirion providers` says a key is set, and never prints it."""
    done = cli(["providers", "--json"], tmp_path, failing_servers)
    assert done.returncode == 0, done.stderr
    rows = {r["provider"]: r for r in json.loads(done.stdout)}
    assert rows["anthropic"]["key_set"] is True and rows["openai"]["key_set"] is True
    assert rows["anthropic"]["chain"][-1] == "offline"
    table = cli(["providers"], tmp_path, failing_servers)
    assert "anthropic" in table.stdout
    assert_clean(done.stdout, done.stderr, table.stdout, table.stderr)


def test_failed_run_logs_and_errors_never_show_keys(
    failing_servers: dict[str, FakeProviderServer], tmp_path: Path
) -> None:
    """A run whose providers all reject the key logs debug detail and errors, with no key in them."""
    (tmp_path / "p.yaml").write_text(
        "workflow:\n  name: w\n  steps:\n"
        "    - {name: ask, type: llm, provider: openai, prompt: hi, fallback: [anthropic, gemini]}\n"
    )
    done = cli(["run", "p.yaml", "--json"], tmp_path, failing_servers)
    assert done.returncode == 1
    assert "auth" in done.stderr
    assert "provider_attempt" in done.stderr  # the debug log really ran
    assert_clean(done.stdout, done.stderr)
    assert (
        OPENAI_CANARY in failing_servers["openai"].state.keys_seen
    )  # the key did reach the server


def test_successful_run_results_never_show_keys(tmp_path: Path) -> None:
    """Results of a successful run over the wire carry no key."""
    servers = {p: FakeProviderServer(p).start() for p in ("anthropic", "gemini", "openai")}
    try:
        (tmp_path / "p.yaml").write_text(
            "workflow:\n  name: w\n  steps:\n    - {name: ask, type: claude, prompt: hi}\n"
            "    - {name: g, type: gemini, prompt: hi}\n"
        )
        done = cli(["run", "p.yaml", "--json"], tmp_path, servers)
    finally:
        for server in servers.values():
            server.stop()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ask"]["provider"] == "anthropic"
    assert_clean(done.stdout, done.stderr)
