"""The pipeline runner: executes a validated workflow step by step.

:meth:`Runner.run` binds inputs, restores a checkpoint when one matches, runs
each step (condition → retry → timeout → handler → schema check → output file),
checkpoints after each top-level step, and returns a :class:`RunResult`.

Failure semantics: a step that fails raises :class:`~pipelines.errors.StepFailed`
naming the step and its type (unless ``continue_on_error`` records the failure and
goes on); user errors (:class:`~pipelines.errors.ConfigError`) are never retried
and propagate unchanged. Steps already finished stay in the checkpoint, so a rerun
starts at the failed step. Cancellation propagates untouched.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from pipelines.errors import ConfigError, RunError, StepFailed, StepTimeout
from pipelines.expressions import evaluate_condition
from pipelines.loader import LoadedPipeline
from pipelines.providers.registry import ProviderRegistry
from pipelines.references import strip_braces
from pipelines.runner._inputs import bind_inputs
from pipelines.runner.checkpoint import Checkpoint, Checkpointer, run_key
from pipelines.runner.context import RunState, RunTotals
from pipelines.runner.outputs import write_output
from pipelines.runner.sessions import MemorySessionStore, SessionStore
from pipelines.spec import StepBase, WhileLoopStep, Workflow, iter_steps
from pipelines.templates import render
from pipelines.tools import ToolRegistry, Workspace, default_tools

__all__ = ["RunResult", "Runner", "StepHandler"]

StepHandler = Callable[[Any, RunState, "Runner"], Awaitable[dict[str, Any]]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run produced: ``results`` maps each top-level step name to its result."""

    run_id: str
    pipeline: str
    results: dict[str, Any]
    cost_usd: float = 0.0
    usage: dict[str, int] = field(default_factory=dict)
    duration_ms: float = 0.0
    resumed_at: int | None = None
    steps_run: int = 0


class Runner:
    """Runs pipelines. One runner serves many concurrent runs; it keeps no per-run state.

    ``providers`` resolves LLM providers, ``tools`` the tool registry,
    ``checkpointer`` stores step checkpoints (``None``: a JSON file per run under
    the workflow's ``checkpoint_dir`` or ``.elexirion/checkpoints``), ``sessions``
    the named conversations, ``sleep`` the backoff wait (tests inject a fake).
    """

    def __init__(
        self,
        *,
        providers: ProviderRegistry | None = None,
        tools: ToolRegistry | None = None,
        checkpointer: Checkpointer | None = None,
        sessions: SessionStore | None = None,
        sleep: Sleep = asyncio.sleep,
        workspace_dir: str | Path | None = None,
        output_dir: str | Path | None = None,
        default_provider: str = "anthropic",
        on_token: Callable[[str, str], None] | None = None,
    ) -> None:
        from pipelines.runner.steps import HANDLERS

        self.providers = providers or ProviderRegistry()
        self.tools = tools or default_tools()
        self.checkpointer = checkpointer
        self.sessions: SessionStore = sessions or MemorySessionStore()
        self.sleep = sleep
        self.clock = _SleepClock(sleep)
        self.workspace_dir = Path(workspace_dir) if workspace_dir else None
        self.output_dir = Path(output_dir) if output_dir else None
        self.default_provider = default_provider
        self.on_token = on_token
        self._handlers: Mapping[str, StepHandler] = HANDLERS
        self._responses: OrderedDict[str, dict[str, Any]] = OrderedDict()

    async def aclose(self) -> None:
        """Release provider clients; call once the runner will run nothing more."""
        await self.providers.aclose()

    def remember(self, key: str, result: dict[str, Any]) -> None:
        """Keep a successful LLM result for ``use_cached_response`` fallbacks (LRU)."""
        self._responses[key] = result
        self._responses.move_to_end(key)
        while len(self._responses) > _RESPONSE_CACHE_SIZE:
            self._responses.popitem(last=False)

    def recall(self, key: str) -> dict[str, Any] | None:
        """A result kept by :meth:`remember`, if still cached."""
        return self._responses.get(key)

    # ------------------------------------------------------------------ runs

    async def run(
        self,
        pipeline: LoadedPipeline,
        inputs: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        checkpoint_key: str | None = None,
        fresh: bool = False,
    ) -> RunResult:
        """Run ``pipeline`` with ``inputs``; raises ``ConfigError`` or ``StepFailed``.

        ``checkpoint_key`` checkpoints every step under that key whatever the
        workflow says (the executors use the run id, so a run resumes on another
        executor from its last finished step). ``fresh`` says no checkpoint can
        exist yet (a run id created just now), which saves the lookup.
        """
        started = time.perf_counter()
        workflow = pipeline.workflow
        bound = bind_inputs(workflow, inputs or {})
        totals = RunTotals()
        if workflow.resource_limits and workflow.resource_limits.max_total_steps:
            totals.max_total_steps = workflow.resource_limits.max_total_steps
        state = self.new_state(
            workflow,
            bound,
            base_dir=pipeline.base_dir,
            run_id=run_id or uuid.uuid4().hex,
            totals=totals,
            identity=_identity(pipeline),
        )
        checkpointer, key, fingerprint = self._checkpointing(workflow, bound, checkpoint_key)
        start_at = 0
        if checkpointer is not None and not fresh:
            saved = await checkpointer.load(key)
            if saved is not None and saved.fingerprint == fingerprint:
                state.results.update(saved.results)
                state.variables.update(saved.variables)
                start_at = saved.step_index
        limit = workflow.resource_limits.max_execution_time_s if workflow.resource_limits else None
        async with asyncio.timeout(limit):
            for index in range(start_at, len(workflow.steps)):
                step = workflow.steps[index]
                state.results[step.name] = await self.execute_step(step, state)
                # After the last step the run is done: its checkpoint would only be cleared.
                if checkpointer is not None and index + 1 < len(workflow.steps):
                    await checkpointer.save(
                        Checkpoint(
                            key,
                            workflow.name,
                            fingerprint,
                            index + 1,
                            dict(state.results),
                            dict(state.variables),
                        )
                    )
        if checkpointer is not None and (start_at or len(workflow.steps) > 1):
            await checkpointer.clear(key)  # only a run that saved (or resumed) one has one
        return RunResult(
            run_id=state.run_id,
            pipeline=workflow.name,
            results=dict(state.results),
            cost_usd=round(totals.cost_usd, 8),
            usage=totals.usage.to_dict(),
            duration_ms=(time.perf_counter() - started) * 1000,
            resumed_at=start_at or None,
            steps_run=totals.steps_run,
        )

    def new_state(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any],
        *,
        base_dir: Path,
        run_id: str,
        totals: RunTotals,
        identity: str,
        depth: int = 0,
        stack: tuple[str, ...] = (),
        workspace: Workspace | None = None,
    ) -> RunState:
        """A fresh state for ``workflow`` (top level or nested)."""
        known = frozenset(s.name for s in iter_steps(workflow.steps))
        scope_state = RunState(
            workflow=workflow,
            run_id=run_id,
            inputs=inputs,
            results={},
            variables={},
            workspace=workspace or Workspace(Path.cwd()),
            output_dir=Path.cwd(),
            base_dir=base_dir,
            known_steps=known,
            totals=totals,
            depth=depth,
            stack=(*stack, identity),
        )
        if workspace is None:
            root = self.workspace_dir or Path(
                self._render_setting(workflow.workspace_dir, scope_state)
            )
            scope_state.workspace = Workspace(root, create=True)
        out = self.output_dir or Path(
            self._render_setting(
                workflow.output_dir or workflow.defaults.output_dir or f"./outputs/{workflow.name}",
                scope_state,
            )
        )
        scope_state.output_dir = out
        return scope_state

    def _render_setting(self, value: str, state: RunState) -> str:
        rendered = render(value, state.scope(), step=None)
        return str(rendered)

    def _checkpointing(
        self, workflow: Workflow, inputs: Mapping[str, Any], forced_key: str | None
    ) -> tuple[Checkpointer | None, str, str]:
        if not workflow.checkpoint_enabled and forced_key is None:
            return None, "", ""
        from pipelines.runner.checkpoint import JsonFileCheckpointer

        checkpointer = self.checkpointer or JsonFileCheckpointer(
            workflow.checkpoint_dir or ".elexirion/checkpoints"
        )
        fingerprint = hashlib.sha256(workflow.model_dump_json().encode()).hexdigest()[:16]
        return checkpointer, forced_key or run_key(workflow.name, inputs), fingerprint

    # ----------------------------------------------------------------- steps

    async def execute_steps(self, steps: Sequence[StepBase], state: RunState) -> dict[str, Any]:
        """Run ``steps`` in order in ``state``; returns their results by name."""
        produced: dict[str, Any] = {}
        for step in steps:
            result = await self.execute_step(step, state)
            state.results[step.name] = result
            produced[step.name] = result
        return produced

    async def execute_step(self, step: StepBase, state: RunState) -> dict[str, Any]:
        """Run one step with its condition, retries, timeout, schema check and output file."""
        step_type: str = getattr(step, "type", "?")
        guarded = not isinstance(step, WhileLoopStep) and step.condition is not None
        if guarded and not self.check(step.condition, state):
            return {"success": True, "skipped": True, "reason": "condition was false"}
        state.totals.charge_step(step.name)
        defaults = state.workflow.defaults
        try:
            result = await self._attempts(step, step_type, state)
            if step.output_to_file:
                result = {**result, "output_file": await write_output(step, result, state)}
        except StepFailed as exc:
            if step.continue_on_error or defaults.continue_on_error:
                return {"success": False, "error": {"code": exc.code, "message": exc.message}}
            raise
        return result

    async def _attempts(self, step: StepBase, step_type: str, state: RunState) -> dict[str, Any]:
        handler = self._handlers[step_type]
        retry = step.retry
        attempts = retry.attempts if retry else (2 if state.workflow.defaults.retry_on_error else 1)
        timeout = step.timeout_s or state.workflow.defaults.timeout_seconds
        for attempt in range(1, attempts + 1):
            try:
                async with asyncio.timeout(timeout):
                    result = await handler(step, state, self)
                if step.output_schema is not None and step_type not in _LLM_VALIDATES_ITSELF:
                    _validate_schema(result, step.output_schema)
                return result
            except (ConfigError, StepFailed) as exc:
                if isinstance(exc, StepFailed) and exc.retryable and attempt < attempts:
                    await self._backoff(step, attempt)
                    continue
                raise
            except TimeoutError:
                failure: RunError = StepTimeout(f"no result within {timeout} s")
            except RunError as exc:
                failure = exc
            except Exception as exc:  # noqa: BLE001 - any handler failure must name its step
                failure = RunError(f"{type(exc).__name__}: {exc}", code="internal")
            if attempt < attempts and (failure.retryable or retry is not None):
                await self._backoff(step, attempt)
                continue
            raise StepFailed(
                failure.message,
                step=step.name,
                step_type=step_type,
                code=failure.code,
                retryable=failure.retryable,
            ) from failure
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    async def _backoff(self, step: StepBase, attempt: int) -> None:
        base = step.retry.backoff_s if step.retry else 0.5
        cap = step.retry.max_backoff_s if step.retry else 30.0
        await self.sleep(min(cap, base * 2 ** (attempt - 1)))

    # --------------------------------------------------------------- helpers

    def render(self, value: Any, state: RunState, step: StepBase | None = None) -> Any:
        """Render templates in ``value`` against the state (``TemplateError`` names the step)."""
        return render(value, state.scope(), step=step.name if step else None)

    def check(self, condition: Any, state: RunState) -> bool:
        """Evaluate a condition (``{{...}}`` wrappers allowed, as in pipeline_ex)."""
        return evaluate_condition(_unwrap(condition), state.scope())


_RESPONSE_CACHE_SIZE = 256


class _SleepClock:
    """A :class:`supervision.clock.Clock` whose waits go through the runner's ``sleep``."""

    def __init__(self, sleep: Sleep) -> None:
        self._sleep = sleep

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self._sleep(seconds)


def _identity(pipeline: LoadedPipeline) -> str:
    """A pipeline's identity on the nesting chain: its resolved file path when it has one."""
    candidate = Path(pipeline.source)
    return str(candidate.resolve()) if candidate.is_file() else pipeline.source


_LLM_VALIDATES_ITSELF = frozenset(
    {
        "claude",
        "gemini",
        "llm",
        "claude_smart",
        "claude_session",
        "claude_extract",
        "claude_robust",
        "gemini_instructor",
    }
)


def _unwrap(condition: Any) -> Any:
    if isinstance(condition, str):
        return strip_braces(condition)
    if isinstance(condition, Mapping):
        return {k: _unwrap(v) for k, v in condition.items()}
    if isinstance(condition, list):
        return [_unwrap(c) for c in condition]
    return condition


def _validate_schema(result: Any, schema: Mapping[str, Any]) -> None:
    try:
        jsonschema.validate(result, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
        raise RunError(
            f"result does not match output_schema at {where}: {exc.message}",
            code="schema_violation",
        ) from None
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"output_schema is not a valid JSON Schema: {exc.message}") from None
