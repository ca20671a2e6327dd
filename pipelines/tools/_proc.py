"""Run a subprocess with a deadline, killing its whole process group on timeout.

The child starts in a new session so that ``killpg`` reaches everything it
spawned (pytest workers, shells); otherwise a timed-out test suite could leave
orphans holding the workspace. Cancellation of the awaiting task kills the group
too: nothing outlives the step that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessOutcome", "run_process"]

_CHUNK = 64 * 1024
# After a kill, give the pipes this long to reach EOF so the transports close cleanly.
_DRAIN_AFTER_KILL_S = 2.0


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """What a finished (or killed) process left: exit code (None if timed out) and output."""

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    merge_stderr: bool = False,
    keep_tail: int | None = None,
) -> ProcessOutcome:
    """Run ``argv`` in ``cwd``; on ``timeout_s`` kill its process group.

    ``merge_stderr`` folds stderr into stdout; ``keep_tail`` bounds memory by
    keeping only the last bytes of each stream. Raises ``OSError`` (for example
    ``FileNotFoundError``) when the program cannot be started.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    out = bytearray()
    err = bytearray()
    streams: list[tuple[asyncio.StreamReader, bytearray]] = []
    if proc.stdout is not None:
        streams.append((proc.stdout, out))
    if proc.stderr is not None:
        streams.append((proc.stderr, err))
    timed_out = False
    try:
        try:
            async with asyncio.timeout(timeout_s):
                await _drain_all(streams, keep_tail)
                await proc.wait()
        except TimeoutError:
            timed_out = True
            _kill_group(proc)
            await proc.wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_DRAIN_AFTER_KILL_S):
                    await _drain_all(streams, keep_tail)
    finally:
        if proc.returncode is None:  # cancelled from outside: leave nothing running
            _kill_group(proc)
            await proc.wait()
    return ProcessOutcome(
        exit_code=None if timed_out else proc.returncode,
        stdout=bytes(out),
        stderr=bytes(err),
        timed_out=timed_out,
    )


async def _drain_all(
    streams: list[tuple[asyncio.StreamReader, bytearray]], keep_tail: int | None
) -> None:
    async with asyncio.TaskGroup() as group:
        for stream, buffer in streams:
            group.create_task(_drain(stream, buffer, keep_tail))


async def _drain(stream: asyncio.StreamReader, buffer: bytearray, keep_tail: int | None) -> None:
    while chunk := await stream.read(_CHUNK):
        buffer.extend(chunk)
        if keep_tail is not None and len(buffer) > 2 * keep_tail:
            del buffer[:-keep_tail]


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    # The child leads its own session (start_new_session), so its pid is the group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
