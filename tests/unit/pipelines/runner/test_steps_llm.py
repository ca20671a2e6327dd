"""LLM step types against the FakeProvider: requests built, results shaped as PIPELINE_FORMAT.md says."""

from __future__ import annotations

import json

import pytest

from pipelines.errors import ProviderError, StepFailed
from pipelines.providers.base import Completion, CompletionRequest, ToolCall, Usage
from pipelines.providers.registry import ProviderRegistry
from pipelines.testing import FakeProvider

from .conftest import FakeSleep, RunPipeline

LLM_KEYS = {"text", "success", "cost", "usage", "provider", "model", "latency_ms"}


async def test_claude_step_sends_prompt_system_and_options(
    run_yaml: RunPipeline, fake: FakeProvider
) -> None:
    """A claude step renders its prompt parts and passes system prompt, model and limits."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: first
              type: test_echo
              value: {note: "from step one"}
            - name: ask
              type: claude
              claude_options:
                model: claude-haiku-4-5
                system_prompt: Be brief.
                append_system_prompt: Cite lines.
                max_tokens: 300
              prompt:
                - {type: static, content: "Question about {{steps.first.note}}"}
                - {type: previous_response, step: first, extract: note}
        """)
    request = fake.requests[0]
    assert request.system == "Be brief.\n\nCite lines."
    assert request.model == "claude-haiku-4-5" and request.max_tokens == 300
    assert "Question about from step one\n\nfrom step one" in request.prompt_text
    assert set(results["ask"]) >= LLM_KEYS and results["ask"]["text"] == "fake answer"


async def test_claude_without_key_runs_offline_and_says_so(
    run_yaml: RunPipeline, make_runner
) -> None:  # type: ignore[no-untyped-def]
    """With no key configured a claude step runs on offline and the result says why."""
    runner = make_runner(providers=ProviderRegistry(env={}))
    results = await run_yaml(
        """\
        workflow:
          name: t
          steps:
            - {name: ask, type: claude, prompt: "Summarise: the cache is cold"}
        """,
        runner=runner,
    )
    assert results["ask"]["provider"] == "offline"
    assert results["ask"]["requested_provider"] == "anthropic"
    assert "ANTHROPIC_API_KEY" in results["ask"]["note"]
    assert "no LLM was called" in results["ask"]["text"]


async def test_claude_multi_turn_tool_loop_runs_our_tools(run_yaml: RunPipeline, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """max_turns > 1 with allowed_tools runs requested tools in the workspace and feeds results back."""
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "notes.txt").write_text("the secret is 42\n")

    def respond(request: CompletionRequest) -> Completion:
        if not any(m.role == "tool" for m in request.messages):
            call = ToolCall("t1", "read_file", {"path": "notes.txt"})
            return Completion("", "fake", "m", finish_reason="tool_calls", tool_calls=(call,))
        tool_output = json.loads(request.messages[-1].content)
        return Completion(f"file says: {tool_output['content'].strip()}", "fake", "m")

    fake = FakeProvider(respond)
    from pipelines.runner import MemoryCheckpointer, Runner

    runner = Runner(
        providers=ProviderRegistry({"anthropic": fake}, env={}),
        workspace_dir=tmp_path / "ws",
        checkpointer=MemoryCheckpointer(),
    )
    results = await run_yaml(
        """\
        workflow:
          name: t
          steps:
            - name: ask
              type: claude
              claude_options: {max_turns: 3, allowed_tools: [Read, Write]}
              prompt: read notes.txt
        """,
        runner=runner,
    )
    assert results["ask"]["text"] == "file says: the secret is 42"
    assert results["ask"]["turns"] == 2
    assert results["ask"]["tool_calls"] == [
        {"name": "read_file", "arguments": {"path": "notes.txt"}}
    ]
    assert results["ask"]["tools_unavailable"] == ["Write"]
    assert [t.name for t in fake.requests[0].tools] == ["read_file"]


async def test_output_schema_data_is_validated_and_merged(run_yaml: RunPipeline) -> None:
    """A structured answer lands under data and its keys are addressable from later steps."""
    fake = FakeProvider([json.dumps({"score": 8, "issues": ["x"]})])
    from pipelines.runner import Runner

    runner = Runner(providers=ProviderRegistry({"anthropic": fake}, env={}))
    results = await run_yaml(
        """\
        workflow:
          name: t
          workspace_dir: ws
          steps:
            - name: rate
              type: claude
              prompt: rate it
              output_schema:
                type: object
                required: [score]
                properties: {score: {type: integer}}
            - name: after
              type: test_echo
              condition: "rate.score > 5"
              value: "{{steps.rate.data.score}}"
        """,
        runner=runner,
    )
    assert results["rate"]["data"] == {"score": 8, "issues": ["x"]}
    assert results["rate"]["score"] == 8 and results["after"]["value"] == 8


async def test_output_schema_violation_fails_the_step(
    run_yaml: RunPipeline, fake: FakeProvider
) -> None:
    """An answer that does not match output_schema fails with code schema_violation."""
    fake.push(json.dumps({"score": "high"}))
    with pytest.raises(StepFailed) as info:
        await run_yaml("""\
            workflow:
              name: t
              steps:
                - name: rate
                  type: claude
                  prompt: rate it
                  output_schema: {type: object, properties: {score: {type: integer}}}
            """)
    assert info.value.code == "schema_violation" and info.value.step == "rate"


async def test_gemini_step_maps_token_budget_and_functions(
    run_yaml: RunPipeline, fake: FakeProvider
) -> None:
    """gemini maps token_budget to sampling keys, declares functions and returns function_calls + content."""
    fake.push(
        Completion(
            "calling",
            "fake",
            "gemini-2.5-pro",
            tool_calls=(ToolCall("c1", "lookup", {"id": 7}),),
            finish_reason="tool_calls",
        )
    )
    results = await run_yaml("""\
        workflow:
          name: t
          gemini_functions:
            lookup:
              description: Look a record up
              parameters: {type: object, properties: {id: {type: integer}}}
          steps:
            - name: g
              type: gemini
              model: gemini-2.5-pro
              token_budget: {max_output_tokens: 256, temperature: 0.2, top_p: 0.9, top_k: 20}
              functions: [lookup]
              prompt: find record 7
        """)
    request = fake.requests[0]
    assert (request.max_tokens, request.temperature) == (256, 0.2)
    assert dict(request.extra) == {"top_p": 0.9, "top_k": 20}
    assert [t.name for t in request.tools] == ["lookup"]
    assert results["g"]["function_calls"] == [{"id": "c1", "name": "lookup", "args": {"id": 7}}]
    assert results["g"]["content"] == "calling"


async def test_gemini_instructor_requires_schema_valid_output(
    run_yaml: RunPipeline, fake: FakeProvider
) -> None:
    """gemini_instructor returns the validated object as content."""
    fake.push(json.dumps({"name": "x", "size": 3}))
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: gi
              type: gemini_instructor
              prompt: describe
              schema: {type: object, required: [name, size], properties: {name: {type: string}, size: {type: integer}}}
        """)
    assert results["gi"]["content"] == {"name": "x", "size": 3}


async def test_llm_step_uses_named_provider(run_yaml: RunPipeline, fake: FakeProvider) -> None:
    """An llm step goes to its provider with its sampling keys."""
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - {name: l, type: llm, provider: fake, model: m1, temperature: 0.1, top_p: 0.5, prompt: hi}
        """)
    assert fake.requests[0].model == "m1" and fake.requests[0].temperature == 0.1
    assert results["l"]["text"] == "fake answer"


async def test_claude_smart_preset_precedence(run_yaml: RunPipeline, fake: FakeProvider) -> None:
    """claude_smart uses the step preset, else defaults.claude_preset; the preset shapes the system prompt."""
    results = await run_yaml("""\
        workflow:
          name: t
          defaults: {claude_preset: analysis}
          steps:
            - {name: a, type: claude_smart, prompt: hi}
            - {name: b, type: claude_smart, preset: chat, prompt: hi}
        """)
    assert results["a"]["preset"] == "analysis" and results["b"]["preset"] == "chat"
    assert "code analyst" in (fake.requests[0].system or "")
    assert "friendly" in (fake.requests[1].system or "")


async def test_claude_session_continues_by_name_across_runs(
    run_yaml: RunPipeline, make_runner, fake: FakeProvider
) -> None:  # type: ignore[no-untyped-def]
    """A claude_session step sends the named conversation's history, also in a later run."""
    runner = make_runner()
    text = """\
        workflow:
          name: t
          steps:
            - name: s
              type: claude_session
              session_config: {session_name: review-1}
              prompt: "{{inputs.msg}}"
        """
    await run_yaml(text, {"msg": "first message"}, runner=runner)
    results = await run_yaml(text, {"msg": "second message"}, runner=runner)
    history = [m.content for m in fake.requests[1].messages]
    assert history == ["first message", "fake answer", "second message"]
    assert results["s"]["session_turns"] == 2


async def test_session_context_part_renders_history(
    run_yaml: RunPipeline, make_runner, fake: FakeProvider
) -> None:  # type: ignore[no-untyped-def]
    """session_context renders the conversation (fix: pipeline_ex rendered nothing)."""
    runner = make_runner()
    await run_yaml(
        """\
        workflow:
          name: t
          steps:
            - {name: s, type: claude_session, session_config: {session_name: chat}, prompt: hello there}
            - name: recap
              type: claude
              prompt:
                - {type: static, content: "Recap:"}
                - {type: session_context, session_id: chat}
        """,
        runner=runner,
    )
    assert "user: hello there\nassistant: fake answer" in fake.requests[1].prompt_text


async def test_claude_extract_post_processing(run_yaml: RunPipeline, fake: FakeProvider) -> None:
    """claude_extract formats the answer and extracts code blocks and links."""
    fake.push("Intro text.\n\n```python\nprint(1)\n```\nSee [docs](https://example.org).")
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: x
              type: claude_extract
              prompt: write code
              extraction_config:
                format: markdown
                post_processing: [extract_code_blocks, extract_links]
        """)
    assert results["x"]["code_blocks"][0]["code"].strip() == "print(1)"
    assert results["x"]["links"][0]["url"] == "https://example.org"


async def test_claude_batch_runs_tasks_and_reports_partial_failure(run_yaml: RunPipeline) -> None:
    """claude_batch runs every task; a failed task is reported, the others succeed."""

    def respond(request: CompletionRequest) -> str:
        if "bad" in request.prompt_text:
            raise ProviderError("invalid", code="invalid_request")
        return f"done: {request.prompt_text}"

    fake = FakeProvider(respond)
    from pipelines.runner import Runner

    results = await run_yaml(
        """\
        workflow:
          name: t
          workspace_dir: ws
          steps:
            - name: b
              type: claude_batch
              batch_config: {max_parallel: 2}
              tasks:
                - {id: one, prompt: good one}
                - {id: two, prompt: bad two}
                - {id: three, prompt: good three}
        """,
        runner=Runner(providers=ProviderRegistry({"anthropic": fake}, env={})),
    )
    batch = results["b"]
    assert batch["failed"] == ["two"] and batch["success"] is False
    assert batch["results"]["one"]["text"] == "done: good one"
    assert batch["results"]["two"]["error"]["code"] == "invalid_request"
    assert "## three" in batch["text"]
    json.dumps(batch)


async def test_parallel_claude_runs_concurrently_with_json_result(run_yaml: RunPipeline) -> None:
    """parallel_claude tasks overlap in time and the result is JSON-serialisable (fix)."""
    fake = FakeProvider(latency_s=0.05, default="ok")
    import time

    from pipelines.runner import Runner

    started = time.perf_counter()
    results = await run_yaml(
        """\
        workflow:
          name: t
          workspace_dir: ws
          steps:
            - name: p
              type: parallel_claude
              parallel_tasks:
                - {id: a, prompt: one}
                - {id: b, prompt: two}
                - {id: c, prompt: three, condition: "false"}
        """,
        runner=Runner(providers=ProviderRegistry({"anthropic": fake}, env={})),
    )
    elapsed = time.perf_counter() - started
    assert fake.call_count == 2 and elapsed < 0.09  # two 50 ms calls overlapped
    assert results["p"]["results"]["c"]["skipped"] is True
    json.dumps(results)


async def test_claude_robust_retries_then_succeeds(
    run_yaml: RunPipeline, sleeper: FakeSleep, fake: FakeProvider
) -> None:
    """claude_robust retries retryable errors with its backoff and reports the attempts."""
    fake.push(
        ProviderError("busy", code="overloaded", retryable=True),
        ProviderError("busy", code="overloaded", retryable=True),
        "finally",
    )
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: r
              type: claude_robust
              prompt: hi
              retry_config: {max_retries: 3, backoff_strategy: exponential, base_delay_ms: 100}
        """)
    assert results["r"]["text"] == "finally" and results["r"]["attempts"] == 3
    assert sleeper.waits == [0.1, 0.2]


async def test_claude_robust_fallback_graceful_degradation(
    run_yaml: RunPipeline, sleeper: FakeSleep, fake: FakeProvider
) -> None:
    """When retries are exhausted the fallback action answers, marked degraded."""
    fake.push(*[ProviderError("down", code="server_error", retryable=True)] * 3)
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - name: r
              type: claude_robust
              prompt: hi
              retry_config: {max_retries: 2, backoff_strategy: linear, base_delay_ms: 10, fallback_action: graceful_degradation}
        """)
    assert results["r"]["degraded"] is True and fake.call_count == 3
    assert results["r"]["error"]["code"] == "server_error"
    assert sleeper.waits == [0.01, 0.02]


async def test_claude_robust_does_not_retry_non_retryable(
    run_yaml: RunPipeline, fake: FakeProvider
) -> None:
    """A non-retryable error without a fallback fails the step at once."""
    fake.push(ProviderError("bad key", code="auth"))
    with pytest.raises(StepFailed) as info:
        await run_yaml("""\
            workflow:
              name: t
              steps:
                - {name: r, type: claude_robust, prompt: hi, retry_config: {max_retries: 5}}
            """)
    assert info.value.code == "auth" and fake.call_count == 1


async def test_llm_usage_and_cost_are_reported(run_yaml: RunPipeline, fake: FakeProvider) -> None:
    """Usage and cost from the provider appear in the step result."""
    fake.push(Completion("x", "fake", "m", usage=Usage(10, 5), cost_usd=0.25))
    results = await run_yaml("""\
        workflow:
          name: t
          steps:
            - {name: c, type: claude, prompt: hi}
        """)
    assert results["c"]["usage"] == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    assert results["c"]["cost"] == 0.25
