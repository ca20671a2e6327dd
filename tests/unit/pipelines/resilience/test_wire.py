"""The whole stack over the wire: settings → registry → resilient chain → real SDKs → fake servers."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from pipelines.config import load_settings
from pipelines.loader import load_pipeline
from pipelines.providers.fakes import FakeProviderServer, FaultPlan, Reply
from pipelines.providers.setup import build_registry
from pipelines.runner import MemorySessionStore, Runner
from supervision.testing import FakeClock

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "pipeline_ex"
KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-test-key-000000",
    "GEMINI_API_KEY": "gm-test-key-000000",
    "OPENAI_API_KEY": "sk-test-openai-000000",
}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, FakeProviderServer]]:
    running = {p: FakeProviderServer(p).start() for p in ("anthropic", "gemini", "openai")}
    yield running
    for server in running.values():
        server.stop()


@pytest.fixture
def env(
    servers: dict[str, FakeProviderServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, FakeProviderServer]:
    """Keys and base URLs point every provider at its fake; fresh scripts and plans."""
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", servers["anthropic"].base_url)
    monkeypatch.setenv("GEMINI_BASE_URL", servers["gemini"].base_url)
    monkeypatch.setenv("OPENAI_BASE_URL", servers["openai"].base_url + "/v1")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    for server in servers.values():
        server.state.script.clear()
        server.state.requests.clear()
        server.state.set_plan(FaultPlan())
    return servers


@pytest.fixture
async def make_runner() -> AsyncIterator[Callable[..., Runner]]:
    """Runners whose provider clients are closed when the test ends."""
    made: list[Runner] = []

    def build(clock: FakeClock | None = None, **settings: object) -> Runner:
        registry = build_registry(load_settings(**settings), clock=clock or FakeClock())
        made.append(Runner(providers=registry, sessions=MemorySessionStore()))
        return made[-1]

    yield build
    for runner in made:
        await runner.aclose()


def write(text: str) -> Path:
    path = Path.cwd() / "p.yaml"
    path.write_text(text)
    return path


async def test_claude_step_over_the_wire(
    make_runner: Callable[..., Runner], env: dict[str, FakeProviderServer]
) -> None:
    """A claude step reaches the Anthropic fake through the real SDK; usage and cost come back."""
    env["anthropic"].state.push(
        Reply("a real-looking answer", input_tokens=1000, output_tokens=200)
    )
    result = await make_runner().run(
        load_pipeline(
            write(
                "workflow:\n  name: w\n  steps:\n    - {name: ask, type: claude, prompt: hi, claude_options: {model: sonnet}}\n"
            )
        )
    )
    ask = result.results["ask"]
    assert ask["provider"] == "anthropic" and ask["text"] == "a real-looking answer"
    assert ask["usage"]["input_tokens"] == 1000
    assert ask["cost"] == pytest.approx((1000 * 3 + 200 * 15) / 1_000_000)
    assert env["anthropic"].state.requests[0].body["model"] == "claude-sonnet-4-6"


async def test_fallback_anthropic_down_to_gemini(
    make_runner: Callable[..., Runner], env: dict[str, FakeProviderServer]
) -> None:
    """With Anthropic answering 529, retries run on the fake clock, then Gemini answers."""
    env["anthropic"].state.set_plan(FaultPlan(error_rate=1.0, errors=("529",)))
    clock = FakeClock()
    result = await make_runner(clock).run(
        load_pipeline(
            write("workflow:\n  name: w\n  steps:\n    - {name: ask, type: claude, prompt: hi}\n")
        )
    )
    ask = result.results["ask"]
    assert ask["provider"] == "gemini" and ask["fallback_from"] == ["anthropic"]
    assert env["anthropic"].state.request_count == 3 and len(clock.sleeps) == 2


async def test_per_step_fallback_chain(
    make_runner: Callable[..., Runner], env: dict[str, FakeProviderServer]
) -> None:
    """A step's own fallback list replaces the configured chain."""
    env["anthropic"].state.set_plan(FaultPlan(error_rate=1.0, errors=("401",)))
    result = await make_runner().run(
        load_pipeline(
            write(
                "workflow:\n  name: w\n  steps:\n    - {name: ask, type: claude, prompt: hi, fallback: [openai]}\n"
            )
        )
    )
    assert result.results["ask"]["provider"] == "openai"
    assert env["gemini"].state.request_count == 0


async def test_gemini_and_openai_llm_steps(
    make_runner: Callable[..., Runner], env: dict[str, FakeProviderServer]
) -> None:
    """gemini and llm(openai) steps run over the wire with structured output."""
    result = await make_runner().run(
        load_pipeline(
            write("""\
workflow:
  name: w
  steps:
    - name: g
      type: gemini
      prompt: describe
      token_budget: {max_output_tokens: 100, temperature: 0.1}
    - name: o
      type: llm
      provider: openai
      prompt: rate it
      output_schema: {type: object, required: [score], properties: {score: {type: integer}}}
""")
        )
    )
    assert result.results["g"]["provider"] == "gemini" and result.results["g"]["content"]
    assert isinstance(result.results["o"]["score"], int)
    body = env["gemini"].state.requests[0].body
    assert body["generationConfig"]["maxOutputTokens"] == 100


@pytest.mark.parametrize(
    "name", ["feature_tour", "robust_and_smart", "loops_and_state", "nested_parent"]
)
async def test_pipeline_ex_workflows_run_unchanged_against_fakes(
    make_runner: Callable[..., Runner], env: dict[str, FakeProviderServer], name: str
) -> None:
    """pipeline_ex workflows with claude, gemini and claude_robust steps run against the fake servers."""
    for file in FIXTURES.glob("*.yaml"):
        shutil.copy(file, Path.cwd() / file.name)
    (Path.cwd() / "workspace").mkdir()
    (Path.cwd() / "workspace" / "README.md").write_text("# demo\n")
    result = await make_runner().run(load_pipeline(Path.cwd() / f"{name}.yaml"))
    assert all(r.get("success") or r.get("skipped") for r in result.results.values())
    assert "offline" not in str(result.results)
    assert env["anthropic"].state.request_count + env["gemini"].state.request_count > 0


async def test_claude_robust_over_the_wire_retries_then_degrades(
    make_runner: Callable[..., Runner], env: dict[str, FakeProviderServer]
) -> None:
    """claude_robust's retry_config drives retries against the fake; when every provider fails, graceful degradation answers."""
    for server in env.values():
        server.state.set_plan(FaultPlan(error_rate=1.0, errors=("500",)))
    clock = FakeClock()
    result = await make_runner(clock, fallback=["anthropic"]).run(
        load_pipeline(
            write("""\
workflow:
  name: w
  steps:
    - name: r
      type: claude_robust
      prompt: hi
      fallback: []
      retry_config: {max_retries: 2, backoff_strategy: linear, base_delay_ms: 100, fallback_action: graceful_degradation}
""")
        )
    )
    assert result.results["r"]["degraded"] is True
    assert env["anthropic"].state.request_count == 3
    assert clock.sleeps == [0.1, 0.2]


async def test_claude_multi_turn_tool_loop_over_the_wire(
    make_runner: Callable[..., Runner], env: dict[str, FakeProviderServer]
) -> None:
    """A claude step with max_turns and allowed_tools runs our sandboxed tool and sends the result back as a tool_result."""
    (Path.cwd() / "ws").mkdir()
    (Path.cwd() / "ws" / "notes.txt").write_text("deploy on fridays: never\n")
    env["anthropic"].state.push(
        Reply(tool_calls=(("read_file", {"path": "notes.txt"}),)),
        Reply("The notes say: never deploy on Fridays."),
    )
    result = await make_runner().run(
        load_pipeline(
            write("""\
workflow:
  name: w
  workspace_dir: ws
  steps:
    - name: ask
      type: claude
      claude_options: {max_turns: 3, allowed_tools: [Read]}
      prompt: What do the notes say?
""")
        )
    )
    ask = result.results["ask"]
    assert ask["text"] == "The notes say: never deploy on Fridays." and ask["turns"] == 2
    second = env["anthropic"].state.requests[1].body["messages"]
    tool_result = second[-1]["content"][0]
    assert tool_result["type"] == "tool_result" and "fridays: never" in str(tool_result["content"])
    assert [t["name"] for t in env["anthropic"].state.requests[0].body["tools"]] == ["read_file"]
