"""Handlers of the multi-call LLM steps: claude_batch, parallel_claude, claude_robust.

Fan-out runs in ``asyncio.TaskGroup`` under a semaphore (structured concurrency:
no task outlives its step). Per-task failures are reported in the result, never
dropped; the step itself fails only when every task failed.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, RunError, StepFailed
from pipelines.runner.prompt import build_prompt
from pipelines.runner.steps._llm_call import call_llm
from pipelines.runner.steps.llm import claude_options_call
from pipelines.spec import ClaudeBatchStep, ClaudeRobustStep, ParallelClaudeStep
from supervision.retry import RetryPolicy

if TYPE_CHECKING:
    from pipelines.runner.context import RunState
    from pipelines.runner.engine import Runner

__all__ = ["run_claude_batch", "run_claude_robust", "run_parallel_claude"]

#: pipeline_ex retry condition names mapped to our error codes.
_RETRY_CONDITIONS: dict[str, frozenset[str]] = {
    "timeout": frozenset({"timeout"}),
    "rate_limit": frozenset({"rate_limited"}),
    "rate_limited": frozenset({"rate_limited"}),
    "api_error": frozenset({"server_error", "overloaded"}),
    "server_error": frozenset({"server_error"}),
    "overloaded": frozenset({"overloaded"}),
    "network_error": frozenset({"connection"}),
    "connection": frozenset({"connection"}),
    "temporary_failure": frozenset({"server_error", "overloaded", "timeout", "connection"}),
}


async def _fan_out(
    jobs: dict[str, Callable[[], Awaitable[dict[str, Any]]]], limit: int, task_timeout: float | None
) -> dict[str, dict[str, Any]]:
    gate = asyncio.Semaphore(limit)
    results: dict[str, dict[str, Any]] = {}

    async def one(key: str, job: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        async with gate:
            try:
                async with asyncio.timeout(task_timeout):
                    results[key] = await job()
            except TimeoutError:
                results[key] = _failure("timeout", f"no result within {task_timeout} s")
            except ConfigError:
                raise  # a broken task spec fails the step: it is the author's error
            except RunError as exc:
                results[key] = _failure(exc.code, exc.message)

    async with asyncio.TaskGroup() as group:
        for key, job in jobs.items():
            group.create_task(one(key, job))
    return {key: results[key] for key in jobs}


def _failure(code: str, message: str) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message}}


def _summarise(results: dict[str, dict[str, Any]], step: Any, state: RunState) -> dict[str, Any]:
    failed = [key for key, r in results.items() if not r.get("success")]
    if results and len(failed) == len(results):
        first = results[failed[0]]["error"]
        raise StepFailed(
            f"all {len(results)} tasks failed; first: {first['message']}",
            step=step.name,
            step_type=step.type,
            code=first["code"],
        )
    del state
    return {
        "success": not failed,
        "results": results,
        "failed": failed,
        "cost": round(sum(r.get("cost", 0.0) for r in results.values()), 8),
    }


async def run_claude_batch(
    step: ClaudeBatchStep, state: RunState, runner: Runner
) -> dict[str, Any]:
    """Each task is one Claude call; ``consolidate_results`` joins their texts."""

    def job(task: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
        async def go() -> dict[str, Any]:
            prompt = await build_prompt(
                task.prompt, state, step=f"{step.name}.{task.id}", sessions=runner.sessions
            )
            options = task.claude_options or step.claude_options
            call = claude_options_call(options, prompt, state, runner, step=step)
            return await call_llm(call, state, runner, step=f"{step.name}.{task.id}")

        return go

    config = step.batch_config
    results = await _fan_out(
        {t.id: job(t) for t in step.tasks}, config.max_parallel, config.timeout_per_task
    )
    summary = _summarise(results, step, state)
    summary["tasks"] = len(step.tasks)
    if config.consolidate_results:
        summary["text"] = "\n\n".join(
            f"## {key}\n{r['text']}" for key, r in results.items() if r.get("success")
        )
    return summary


async def run_parallel_claude(
    step: ParallelClaudeStep, state: RunState, runner: Runner
) -> dict[str, Any]:
    """Independent tasks run concurrently; a task whose ``condition`` is false is skipped."""

    def job(task: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
        async def go() -> dict[str, Any]:
            if task.condition is not None and not runner.check(task.condition, state):
                return {"success": True, "skipped": True, "reason": "condition was false"}
            prompt = await build_prompt(
                task.prompt, state, step=f"{step.name}.{task.id}", sessions=runner.sessions
            )
            call = claude_options_call(
                task.claude_options or _default_options(), prompt, state, runner, step=step
            )
            return await call_llm(call, state, runner, step=f"{step.name}.{task.id}")

        return go

    results = await _fan_out({t.id: job(t) for t in step.parallel_tasks}, step.max_parallel, None)
    summary = _summarise(results, step, state)
    # pipeline_ex exposes each task's result under its id (extract: "<task id>").
    summary.update({key: r for key, r in results.items() if key not in summary})
    return summary


def _default_options() -> Any:
    from pipelines.spec import ClaudeOptions

    return ClaudeOptions()


async def run_claude_robust(
    step: ClaudeRobustStep, state: RunState, runner: Runner
) -> dict[str, Any]:
    """The call under a :class:`RetryPolicy` built from ``retry_config``; when it is
    exhausted (and the provider chain with it) ``fallback_action`` answers."""
    config = step.retry_config
    prompt = await build_prompt(step.prompt, state, step=step.name, sessions=runner.sessions)
    codes = frozenset().union(
        *(_RETRY_CONDITIONS.get(c, frozenset({c})) for c in config.retry_conditions)
    )
    policy = RetryPolicy(
        max_attempts=config.max_retries + 1,
        base_delay_s=config.base_delay_ms / 1000,
        max_delay_s=max(config.max_delay_ms, config.base_delay_ms) / 1000,
        strategy=config.backoff_strategy,
        jitter="none",  # pipeline_ex's schedules are deterministic
        deadline_s=None,
        retry_codes=codes or None,
    )
    call = replace(
        claude_options_call(step.claude_options, prompt, state, runner, step=step), retry=policy
    )
    try:
        result = await call_llm(call, state, runner, step=step.name)
    except RunError as exc:
        if config.fallback_action is None:
            raise
        return await _fallback(
            step=step, call=call, prompt=prompt, error=exc, state=state, runner=runner
        )
    result.setdefault("attempts", 1)
    runner.remember(_cache_key(step.name, prompt), result)
    return result


def _cache_key(step: str, prompt: str) -> str:
    return f"robust:{step}:{hashlib.sha256(prompt.encode()).hexdigest()[:24]}"


async def _fallback(
    *,
    step: ClaudeRobustStep,
    call: Any,
    prompt: str,
    error: RunError,
    state: RunState,
    runner: Runner,
) -> dict[str, Any]:
    action = step.retry_config.fallback_action
    base = {
        "fallback_action": action,
        "error": {"code": error.code, "message": error.message},
    }
    if action == "simplified_prompt":
        short = prompt[: max(200, len(prompt) // 3)]
        try:
            simpler = replace(call, prompt=short, tools=(), max_turns=1, retry=None)
            result = await call_llm(simpler, state, runner, step=step.name)
        except RunError as exc:
            raise StepFailed(
                f"simplified prompt failed too: {exc.message}",
                step=step.name,
                step_type=step.type,
                code=exc.code,
            ) from exc
        return {**result, **base, "degraded": True}
    if action == "use_cached_response":
        cached = runner.recall(_cache_key(step.name, prompt))
        if cached is not None:
            return {**cached, **base, "degraded": True, "cached": True}
    message = (
        "The assistant is temporarily unavailable; this is an emergency response, not an answer."
        if action == "emergency_response"
        else f"Degraded result: the model could not be reached ({error.code})."
    )
    return {
        "success": True,
        "degraded": True,
        "text": message,
        "provider": "none",
        "model": "none",
        "cost": 0.0,
        "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
        "latency_ms": 0.0,
        **base,
    }
