"""The one way a step talks to an LLM: resolve the provider, call it (with the
tool-use loop when the step allows tools), account cost, shape the result.

Result shape (PIPELINE_FORMAT.md, "Results"): ``text``, ``success``, ``cost``,
``usage``, ``provider``, ``model``, ``latency_ms``, plus ``requested_provider`` and
``note`` when the step ran on another provider than it asked for (e.g. offline
for lack of a key). With an ``output_schema`` the parsed object is under ``data``
and its top-level keys are also merged into the result where they do not clash,
so ``{{steps.review.score}}`` works as in pipeline_ex.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jsonschema

from pipelines.errors import ProviderError, RunError, ToolError
from pipelines.providers.base import Completion, CompletionRequest, Message, ToolCall, ToolSpec
from pipelines.providers.registry import DEFAULT_MODELS
from pipelines.runner.streaming import TOKEN_SINK
from supervision.retry import RetryPolicy, retry_call

if TYPE_CHECKING:
    from pipelines.runner.context import RunState
    from pipelines.runner.engine import Runner

__all__ = ["TOOL_ALIASES", "LlmCall", "call_llm", "resolve_tools"]

#: pipeline_ex / Claude Code tool names mapped to our sandboxed tools.
TOOL_ALIASES: Mapping[str, str] = {
    "read": "read_file",
    "ls": "list_files",
    "glob": "list_files",
    "grep": "search",
    "search": "search",
}

_RESERVED = frozenset(
    {
        "text",
        "success",
        "cost",
        "usage",
        "provider",
        "model",
        "latency_ms",
        "data",
        "finish_reason",
        "requested_provider",
        "note",
        "tool_calls",
        "turns",
        "content",
    }
)


@dataclass(frozen=True, slots=True)
class LlmCall:
    """Everything one LLM step call needs, already rendered."""

    provider: str
    prompt: str
    model: str | None = None
    system: str | None = None
    history: tuple[Message, ...] = ()
    max_tokens: int | None = None
    temperature: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    tools: tuple[str, ...] = ()
    declared_tools: tuple[ToolSpec, ...] = ()  # gemini functions: returned, not run
    max_turns: int = 1
    output_schema: Mapping[str, Any] | None = None
    parse_json: bool = False
    timeout_s: float | None = None
    stream: bool = False
    strict_schema: bool = True
    fallback: tuple[str, ...] | None = (
        None  # provider chain after ``provider``; None: configured default
    )
    retry: RetryPolicy | None = None  # a step's own retry policy (claude_robust)


def resolve_tools(
    allowed: Sequence[str] | None, disallowed: Sequence[str], runner: Runner
) -> tuple[tuple[str, ...], list[str]]:
    """Our tool names for a step's ``allowed_tools``; second item: names we cannot offer."""
    known = set(runner.tools.names())
    chosen: list[str] = []
    unavailable: list[str] = []
    banned = {TOOL_ALIASES.get(d.lower(), d) for d in disallowed}
    for name in allowed or ():
        mapped = name if name in known else TOOL_ALIASES.get(name.lower(), name)
        if mapped in known and mapped not in banned:
            if mapped not in chosen:
                chosen.append(mapped)
        elif mapped not in banned:
            unavailable.append(name)
    return tuple(chosen), unavailable


@dataclass(slots=True)
class _Conversation:
    """What the turns of one LLM step added up to."""

    completion: Completion
    turns: int = 0
    cost: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    executed: list[dict[str, Any]] = field(default_factory=list)


async def call_llm(call: LlmCall, state: RunState, runner: Runner, *, step: str) -> dict[str, Any]:
    """Run ``call``; returns the step result. Raises ``ProviderError``/``RunError``."""
    resolution = runner.providers.resolve(call.provider, fallback=call.fallback, retry=call.retry)
    started = time.perf_counter()
    talk = await _converse(
        call, resolution.provider, resolution.requested, state, runner, step=step
    )
    completion = talk.completion
    result: dict[str, Any] = {
        "success": True,
        "text": completion.text,
        "provider": completion.provider,
        "model": completion.model,
        "cost": round(talk.cost, 8),
        "usage": {
            "input_tokens": talk.input_tokens,
            "output_tokens": talk.output_tokens,
            "total_tokens": talk.input_tokens + talk.output_tokens,
        },
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        "finish_reason": completion.finish_reason,
    }
    if completion.attempts > 1:
        result["attempts"] = completion.attempts
    if completion.fallback_from:
        result["fallback_from"] = list(completion.fallback_from)
    if resolution.requested != completion.provider:
        result["requested_provider"] = resolution.requested
    if resolution.note:
        result["note"] = resolution.note
    if call.declared_tools:
        declared = {t.name for t in call.declared_tools}
        result["function_calls"] = [
            {"id": tc.id, "name": tc.name, "args": dict(tc.arguments)}
            for tc in completion.tool_calls
            if tc.name in declared
        ]
    if call.max_turns > 1:
        result["turns"] = talk.turns
        result["tool_calls"] = talk.executed
    _add_structured(result, call, completion)
    return result


async def _converse(
    call: LlmCall, provider: Any, requested: str, state: RunState, runner: Runner, *, step: str
) -> _Conversation:
    """The tool-use loop: call, run the tools the model asked for, repeat up to max_turns."""
    # A step's own retry policy: the resilient chain applies it per provider; a bare
    # provider (no resilience configured) gets it here, through the same policy code.
    own_retry = call.retry if runner.providers.resilience is None else None
    specs = tuple(_spec(runner.tools.get(name)) for name in call.tools) + call.declared_tools
    messages: list[Message] = [*call.history, Message("user", call.prompt)]
    talk: _Conversation | None = None
    while True:
        request = CompletionRequest(
            messages=tuple(messages),
            system=call.system,
            model=call.model or DEFAULT_MODELS.get(requested),
            max_tokens=call.max_tokens or 4096,
            temperature=call.temperature,
            tools=specs,
            output_schema=call.output_schema,
            timeout_s=call.timeout_s,
            extra=call.extra,
        )
        completion = await _complete(provider, request, runner, step, own_retry)
        state.totals.charge_llm(completion.cost_usd, completion.usage)
        talk = talk or _Conversation(completion)
        talk.completion = completion
        talk.turns += 1
        talk.cost += completion.cost_usd
        talk.input_tokens += completion.usage.input_tokens
        talk.output_tokens += completion.usage.output_tokens
        runnable = [tc for tc in completion.tool_calls if tc.name in call.tools]
        if not runnable or talk.turns >= call.max_turns:
            return talk
        messages.append(Message("assistant", completion.text, tool_calls=completion.tool_calls))
        for tool_call in runnable:
            output = await _run_tool(tool_call, state, runner)
            talk.executed.append({"name": tool_call.name, "arguments": dict(tool_call.arguments)})
            messages.append(Message("tool", output, tool_call_id=tool_call.id))


def _add_structured(result: dict[str, Any], call: LlmCall, completion: Completion) -> None:
    """Parse, validate and merge structured output (``output_schema`` or JSON format)."""
    data = completion.data
    if data is None and (call.output_schema is not None or call.parse_json):
        data = _parse_json(completion.text, required=call.output_schema is not None)
    if call.output_schema is not None:
        errors = _schema_errors(data, call.output_schema)
        if errors and call.strict_schema:
            raise RunError(
                f"model output does not match output_schema: {errors[0]}", code="schema_violation"
            )
        if errors:
            result["validation_errors"] = errors
    if data is not None:
        result["data"] = data
        if isinstance(data, Mapping):
            result.update({k: v for k, v in data.items() if k not in _RESERVED})


def _spec(tool: Any) -> ToolSpec:
    return ToolSpec(tool.name, tool.description, tool.parameters)


async def _complete(
    provider: Any, request: CompletionRequest, runner: Runner, step: str, retry: RetryPolicy | None
) -> Completion:
    if retry is not None:
        attempts = 0

        async def once() -> Completion:
            nonlocal attempts
            attempts += 1
            return await _complete(provider, request, runner, step, None)

        completion = await retry_call(once, retry, clock=runner.clock)
        return dataclasses.replace(completion, attempts=attempts)
    sink = runner.on_token or TOKEN_SINK.get()
    if sink is None:
        answer: Completion = await provider.complete(request)
        return answer
    final: Completion | None = None
    async for event in provider.stream(request):
        if event.delta:
            sink(step, event.delta)
        if event.completion is not None:
            final = event.completion
    if final is None:
        raise ProviderError(
            "stream ended without a final completion", code="stream_interrupted", retryable=True
        )
    return final


async def _run_tool(call: ToolCall, state: RunState, runner: Runner) -> str:
    """A tool's output as JSON text for the model; tool failures are reported to it."""
    try:
        output = await runner.tools.get(call.name).run(call.arguments, state.workspace)
    except (ToolError, RunError) as exc:
        output = {"error": {"code": getattr(exc, "code", "tool_failed"), "message": exc.message}}
    except Exception as exc:  # noqa: BLE001 - e.g. SandboxError: the model must see it, not crash the step
        output = {"error": {"code": "tool_failed", "message": str(exc)}}
    return json.dumps(output, default=str)


def _parse_json(text: str, *, required: bool) -> Any:
    candidate = text.strip()
    if candidate.startswith("```"):
        candidate = candidate.strip("`")
        candidate = candidate.split("\n", 1)[1] if "\n" in candidate else candidate
    try:
        return json.loads(candidate)
    except ValueError:
        start = min((i for i in (candidate.find("{"), candidate.find("[")) if i >= 0), default=-1)
        if start >= 0:
            try:
                return json.JSONDecoder().raw_decode(candidate[start:])[0]
            except ValueError:
                pass
    if required:
        raise RunError("model output is not JSON", code="schema_violation", retryable=True)
    return None


def _schema_errors(data: Any, schema: Mapping[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    found = []
    for error in validator.iter_errors(data):
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        found.append(f"{where}: {error.message}")
    return found[:10]
