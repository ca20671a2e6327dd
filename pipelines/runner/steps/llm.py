"""Handlers of the single-call LLM step types: claude, claude_smart, claude_session,
claude_extract, gemini, gemini_instructor and llm."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pipelines.providers.base import Message, ToolSpec
from pipelines.runner.extraction import extract
from pipelines.runner.prompt import build_prompt
from pipelines.runner.steps._llm_call import LlmCall, call_llm, resolve_tools
from pipelines.spec import (
    ClaudeExtractStep,
    ClaudeOptions,
    ClaudeSessionStep,
    ClaudeSmartStep,
    ClaudeStep,
    GeminiInstructorStep,
    GeminiStep,
    LlmStep,
)
from pipelines.spec.llm import TokenBudget

if TYPE_CHECKING:
    from pipelines.runner.context import RunState
    from pipelines.runner.engine import Runner

__all__ = ["PRESET_OPTIONS", "claude_call", "claude_options_call"]

#: What each claude_smart preset means (pipeline_ex's OptionBuilder presets).
PRESET_OPTIONS: dict[str, dict[str, Any]] = {
    "development": {
        "max_turns": 5,
        "tools": ["read_file", "list_files", "search", "static_analysis"],
        "system": "You are a helpful software development assistant.",
    },
    "production": {
        "max_turns": 3,
        "tools": ["read_file"],
        "system": "You are a careful assistant in a production workflow. Be precise.",
    },
    "analysis": {
        "max_turns": 5,
        "tools": ["read_file", "list_files", "search", "static_analysis"],
        "system": "You are a meticulous code analyst. Cite file:line for every finding.",
    },
    "chat": {"max_turns": 1, "tools": [], "system": "You are a friendly, concise assistant."},
    "test": {"max_turns": 1, "tools": [], "system": "You are a test assistant."},
}


def fallback_for(step: Any, state: RunState) -> tuple[str, ...] | None:
    """The step's ``fallback`` chain, else ``defaults.fallback``, else None (configured default)."""
    chain = getattr(step, "fallback", None)
    if chain is None:
        chain = state.workflow.defaults.fallback
    return tuple(chain) if chain is not None else None


def _system(options: ClaudeOptions, base: str | None = None) -> str | None:
    parts = [options.system_prompt or base, options.append_system_prompt]
    text = "\n\n".join(p for p in parts if p)
    return text or None


def claude_options_call(
    options: ClaudeOptions,
    prompt: str,
    state: RunState,
    runner: Runner,
    *,
    step: Any,
    base_system: str | None = None,
    preset_tools: list[str] | None = None,
    preset_turns: int | None = None,
    history: tuple[Message, ...] = (),
) -> LlmCall:
    """An :class:`LlmCall` for a Claude step from its ``claude_options`` and defaults."""
    defaults = state.workflow.defaults
    options = effective_options(options, state)
    allowed = options.allowed_tools if options.allowed_tools is not None else preset_tools
    tools, _ = resolve_tools(allowed, options.disallowed_tools, runner)
    max_turns = (
        options.max_turns
        if "max_turns" in options.model_fields_set
        else (preset_turns or options.max_turns)
    )
    timeout = options.timeout_ms / 1000 if options.timeout_ms else None
    output_format = (
        options.output_format
        if "output_format" in options.model_fields_set
        else (defaults.claude_output_format or options.output_format)
    )
    return LlmCall(
        fallback=fallback_for(step, state),
        provider="anthropic",
        prompt=prompt,
        model=options.model or defaults.claude_model or defaults.model,
        system=_system(options, base_system),
        history=history,
        max_tokens=options.max_tokens or defaults.max_tokens,
        temperature=options.temperature
        if options.temperature is not None
        else defaults.temperature,
        tools=tools if max_turns > 1 else (),
        max_turns=max_turns,
        output_schema=step.output_schema,
        parse_json=output_format == "json",
        timeout_s=timeout,
    )


async def claude_call(
    step: Any, options: ClaudeOptions, state: RunState, runner: Runner, **kwargs: Any
) -> dict[str, Any]:
    """Build the prompt, then call Claude with ``options``."""
    prompt = await build_prompt(step.prompt, state, step=step.name, sessions=runner.sessions)
    call = claude_options_call(options, prompt, state, runner, step=step, **kwargs)
    result = await call_llm(call, state, runner, step=step.name)
    _, unavailable = resolve_tools(options.allowed_tools, options.disallowed_tools, runner)
    if unavailable:
        result["tools_unavailable"] = unavailable
    return result


def effective_options(options: ClaudeOptions, state: RunState) -> ClaudeOptions:
    """The step's options over ``defaults.claude_options``; keys the step sets win."""
    base = state.workflow.defaults.claude_options
    if base is None:
        return options
    merged = {**base.model_dump(exclude_unset=True), **options.model_dump(exclude_unset=True)}
    return ClaudeOptions.model_validate(merged)


async def run_claude(step: ClaudeStep, state: RunState, runner: Runner) -> dict[str, Any]:
    return await claude_call(step, step.claude_options, state, runner)


def preset_for(step: ClaudeSmartStep | ClaudeExtractStep, state: RunState) -> str:
    """Preset precedence: step → defaults.claude_preset → environment → development."""
    if step.preset:
        return step.preset
    if state.workflow.defaults.claude_preset:
        return state.workflow.defaults.claude_preset
    env_mode = os.environ.get("ELEXIRION_ENV") or (
        state.workflow.environment.mode if state.workflow.environment else None
    )
    return env_mode if env_mode in PRESET_OPTIONS else "development"


async def run_claude_smart(
    step: ClaudeSmartStep, state: RunState, runner: Runner
) -> dict[str, Any]:
    preset = preset_for(step, state)
    table = PRESET_OPTIONS[preset]
    result = await claude_call(
        step,
        step.claude_options,
        state,
        runner,
        base_system=table["system"],
        preset_tools=table["tools"],
        preset_turns=table["max_turns"],
    )
    result["preset"] = preset
    return result


async def run_claude_session(
    step: ClaudeSessionStep, state: RunState, runner: Runner
) -> dict[str, Any]:
    config = step.session_config
    name = str(runner.render(config.session_name, state, step))
    history = tuple(await runner.sessions.history(name))
    if config.max_turns:
        history = history[-2 * config.max_turns :]
    prompt = await build_prompt(step.prompt, state, step=step.name, sessions=runner.sessions)
    call = claude_options_call(
        step.claude_options, prompt, state, runner, step=step, history=history
    )
    result = await call_llm(call, state, runner, step=step.name)
    if config.persist:
        await runner.sessions.append(
            name, [Message("user", prompt), Message("assistant", result["text"])]
        )
    result["session_name"] = name
    result["session_turns"] = len(history) // 2 + 1
    return result


async def run_claude_extract(
    step: ClaudeExtractStep, state: RunState, runner: Runner
) -> dict[str, Any]:
    preset = PRESET_OPTIONS[preset_for(step, state)] if step.preset else None
    result = await claude_call(
        step,
        step.claude_options,
        state,
        runner,
        base_system=preset["system"] if preset else None,
    )
    config = step.extraction_config
    extracted = extract(
        result["text"],
        fmt=config.format,
        post_processing=config.post_processing,
        max_summary_length=config.max_summary_length,
    )
    result.update(extracted)
    result["extraction_format"] = config.format
    return result


def _merged_budget(step: TokenBudget | None, default: TokenBudget | None) -> TokenBudget | None:
    """Field-wise: keys the step sets win, the rest come from defaults.gemini_token_budget."""
    if step is None or default is None:
        return step or default
    return default.model_copy(update=step.model_dump(exclude_unset=True))


def _gemini_call(
    step: GeminiStep | GeminiInstructorStep,
    prompt: str,
    state: RunState,
    schema: dict[str, Any] | None,
    *,
    strict: bool = True,
) -> LlmCall:
    defaults = state.workflow.defaults
    budget = _merged_budget(step.token_budget, defaults.gemini_token_budget)
    extra = {}
    if budget and budget.top_p is not None:
        extra["top_p"] = budget.top_p
    if budget and budget.top_k is not None:
        extra["top_k"] = budget.top_k
    declared: tuple[ToolSpec, ...] = ()
    if isinstance(step, GeminiStep):
        declared = tuple(
            ToolSpec(
                name,
                state.workflow.gemini_functions[name].description,
                state.workflow.gemini_functions[name].parameters,
            )
            for name in step.functions
        )
    return LlmCall(
        fallback=fallback_for(step, state),
        provider="gemini",
        prompt=prompt,
        model=step.model or defaults.gemini_model or defaults.model,
        max_tokens=(budget.max_output_tokens if budget else None) or defaults.max_tokens,
        temperature=budget.temperature
        if budget and budget.temperature is not None
        else defaults.temperature,
        extra=extra,
        declared_tools=declared,
        output_schema=schema,
        strict_schema=strict,
    )


async def run_gemini(step: GeminiStep, state: RunState, runner: Runner) -> dict[str, Any]:
    prompt = await build_prompt(step.prompt, state, step=step.name, sessions=runner.sessions)
    call = _gemini_call(step, prompt, state, step.output_schema)
    result = await call_llm(call, state, runner, step=step.name)
    result["content"] = result["text"]  # pipeline_ex's key for gemini output
    return result


def instructor_schema(step: GeminiInstructorStep, state: RunState) -> dict[str, Any]:
    """output_schema, else pipeline_ex's schema, else the first function's parameters."""
    schema = step.output_schema or step.schema_
    if schema is None:
        schema = dict(state.workflow.gemini_functions[step.functions[0]].parameters)
    return schema


async def run_gemini_instructor(
    step: GeminiInstructorStep, state: RunState, runner: Runner
) -> dict[str, Any]:
    prompt = await build_prompt(step.prompt, state, step=step.name, sessions=runner.sessions)
    schema = instructor_schema(step, state)
    call = _gemini_call(step, prompt, state, schema, strict=step.validation_mode == "strict")
    result = await call_llm(call, state, runner, step=step.name)
    result["content"] = result.get("data")
    return result


async def run_llm(step: LlmStep, state: RunState, runner: Runner) -> dict[str, Any]:
    defaults = state.workflow.defaults
    prompt = await build_prompt(step.prompt, state, step=step.name, sessions=runner.sessions)
    extra = {k: v for k, v in (("top_p", step.top_p), ("top_k", step.top_k)) if v is not None}
    call = LlmCall(
        fallback=fallback_for(step, state),
        provider=step.provider or defaults.provider or runner.default_provider,
        prompt=prompt,
        model=step.model or defaults.model,
        system=step.system_prompt,
        max_tokens=step.max_tokens or defaults.max_tokens,
        temperature=step.temperature if step.temperature is not None else defaults.temperature,
        extra=extra,
        output_schema=step.output_schema,
        stream=step.stream,
    )
    return await call_llm(call, state, runner, step=step.name)
