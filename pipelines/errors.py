"""The exceptions of the pipeline language and its runner.

User errors (a bad pipeline, a bad input) are kept apart from runtime errors (a
step that failed while running). Runtime errors carry a stable ``code`` and a
``retryable`` flag, so callers decide on data, never on message text. Every
exception pickles with its fields intact (it may cross an actor boundary).

    PipelineError
    ├── ConfigError            user error: the pipeline or its inputs are wrong
    │   ├── SpecError          YAML/schema problem, with file, line, step and key
    │   ├── TemplateError      unresolved or malformed ``{{...}}`` reference
    │   ├── ConditionError     malformed or unevaluable condition expression
    │   ├── SandboxError       a path escapes the workspace
    │   ├── NestingError       circular nested pipeline, depth or size overrun
    │   └── GenesisError       no valid pipeline after the last repair round
    └── RunError               runtime failure; ``code``, ``retryable``
        ├── StepFailed         a step failed; names the step and its type
        ├── StepTimeout        a step exceeded its ``timeout_s``
        ├── ToolError          a tool could not do its work
        └── ProviderError      an LLM provider call failed (codes below)

Provider codes: ``rate_limited``, ``overloaded``, ``server_error``, ``timeout``,
``connection``, ``invalid_request``, ``auth``, ``content_filtered``,
``stream_interrupted``, ``unavailable``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConditionError",
    "ConfigError",
    "GenesisError",
    "NestingError",
    "PipelineError",
    "ProviderError",
    "RunError",
    "SandboxError",
    "SpecError",
    "StepFailed",
    "StepTimeout",
    "TemplateError",
    "ToolError",
]


class PipelineError(Exception):
    """Root of every error raised by :mod:`pipelines`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from keyword fields so subclasses with extra fields pickle intact.
        return (_rebuild, (type(self), self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message}

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[PipelineError], fields: dict[str, Any]) -> PipelineError:
    return cls(**fields)


# --------------------------------------------------------------------- user errors


class ConfigError(PipelineError):
    """The pipeline, its inputs or a reference in it is wrong; fix the input, do not retry."""


class SpecError(ConfigError):
    """A pipeline document failed to load or validate.

    ``file``, ``line``, ``step`` and ``key`` locate the problem where known; the
    rendered message always carries them so a person sees them in one line.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        step: str | None = None,
        key: str | None = None,
    ) -> None:
        self.detail = message
        self.file = file
        self.line = line
        self.step = step
        self.key = key
        super().__init__(_locate(message, file=file, line=line, step=step, key=key))

    def _fields(self) -> dict[str, Any]:
        return {
            "message": self.detail,
            "file": self.file,
            "line": self.line,
            "step": self.step,
            "key": self.key,
        }


def _locate(
    message: str, *, file: str | None, line: int | None, step: str | None, key: str | None
) -> str:
    where = ""
    if file:
        where = file if line is None else f"{file}:{line}"
    elif line is not None:
        where = f"line {line}"
    parts = [
        p for p in (where, f"step {step!r}" if step else "", f"key {key!r}" if key else "") if p
    ]
    return f"{', '.join(parts)}: {message}" if parts else message


class TemplateError(ConfigError):
    """A ``{{...}}`` template could not be resolved; names the step and the expression."""

    def __init__(self, message: str, *, expression: str = "", step: str | None = None) -> None:
        self.detail = message
        self.expression = expression
        self.step = step
        prefix = f"step {step!r}: " if step else ""
        expr = f" in {{{{{expression}}}}}" if expression else ""
        super().__init__(f"{prefix}{message}{expr}")

    def _fields(self) -> dict[str, Any]:
        return {"message": self.detail, "expression": self.expression, "step": self.step}


class ConditionError(ConfigError):
    """A condition expression is malformed or cannot be evaluated."""

    def __init__(self, message: str, *, expression: str = "", position: int | None = None) -> None:
        self.detail = message
        self.expression = expression
        self.position = position
        at = f" at column {position + 1}" if position is not None else ""
        expr = f" in condition {expression!r}" if expression else ""
        super().__init__(f"{message}{at}{expr}")

    def _fields(self) -> dict[str, Any]:
        return {"message": self.detail, "expression": self.expression, "position": self.position}


class SandboxError(ConfigError):
    """A file path resolves outside the workspace (``..``, absolute paths or symlinks)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(message)

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message, "path": self.path}


class NestingError(ConfigError):
    """A nested pipeline is circular or overruns ``max_depth``/``max_total_steps``."""


class GenesisError(ConfigError):
    """Genesis could not produce a valid pipeline; ``errors`` are the last round's problems.

    ``rounds`` counts the drafts made. The message lists every error, so the
    person reading it sees what the model kept getting wrong.
    """

    def __init__(self, message: str, *, rounds: int = 0, errors: list[str] | None = None) -> None:
        self.detail = message
        self.rounds = rounds
        self.errors = list(errors or [])
        listed = "".join(f"\n  - {e}" for e in self.errors)
        super().__init__(f"{message}; last errors:{listed}" if self.errors else message)

    def _fields(self) -> dict[str, Any]:
        return {"message": self.detail, "rounds": self.rounds, "errors": self.errors}


# ------------------------------------------------------------------ runtime errors


class RunError(PipelineError):
    """A failure while running; ``code`` is stable, ``retryable`` says whether to try again."""

    default_code = "run_failed"

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.retryable = retryable

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code, "retryable": self.retryable}


class StepFailed(RunError):  # noqa: N818 - the name reads as the event, like asyncio.TimeoutError's peers
    """A step failed at run time; ``step`` and ``step_type`` name it, ``cause`` says why."""

    default_code = "step_failed"

    def __init__(
        self,
        message: str,
        *,
        step: str = "",
        step_type: str = "",
        code: str | None = None,
        retryable: bool = False,
    ) -> None:
        self.step = step
        self.step_type = step_type
        self.detail = message
        super().__init__(
            f"step {step!r} ({step_type}) failed: {message}" if step else message,
            code=code,
            retryable=retryable,
        )

    def _fields(self) -> dict[str, Any]:
        return {
            "message": self.detail,
            "step": self.step,
            "step_type": self.step_type,
            "code": self.code,
            "retryable": self.retryable,
        }


class StepTimeout(RunError):  # noqa: N818 - see StepFailed
    """A step ran longer than its ``timeout_s``."""

    default_code = "timeout"

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = True) -> None:
        super().__init__(message, code=code, retryable=retryable)


class ToolError(RunError):
    """A tool could not do its work (bad arguments, missing file, subprocess failure)."""

    default_code = "tool_failed"


class ProviderError(RunError):
    """An LLM provider call failed.

    ``provider`` names the provider, ``retry_after_s`` carries the server's
    Retry-After hint when it gave one. The message never contains credentials.
    """

    default_code = "server_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool = False,
        provider: str = "",
        retry_after_s: float | None = None,
        status: int | None = None,
    ) -> None:
        self.provider = provider
        self.retry_after_s = retry_after_s
        self.status = status
        super().__init__(message, code=code, retryable=retryable)

    def _fields(self) -> dict[str, Any]:
        return {
            **super()._fields(),
            "provider": self.provider,
            "retry_after_s": self.retry_after_s,
            "status": self.status,
        }
