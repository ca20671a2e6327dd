"""A chat turn as a stream of events, whatever runs it (in-process or the tree).

:func:`stream_turn` runs the turn, long-polls the stream hub for its tokens while
it runs, yields ``token`` events as they arrive and the ``response`` event at the
end. If the consumer stops early (the HTTP client went away), the turn is
cancelled and the hub told, so the run stops at its next token batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

__all__ = ["stream_turn"]

Pull = Callable[[str, int, float], Awaitable[dict[str, Any]]]


async def stream_turn(
    key: str,
    turn: Awaitable[dict[str, Any]],
    *,
    pull: Pull,
    cancel_stream: Callable[[str], Awaitable[None]],
    drop_stream: Callable[[str], Awaitable[None]],
    cancel_turn: Callable[[], None] | None = None,
    poll_s: float = 5.0,
) -> AsyncIterator[dict[str, Any]]:
    """Events of one turn: ``token`` (``text``, ``step``)…, then ``response``."""
    task: asyncio.Future[dict[str, Any]] = asyncio.ensure_future(turn)
    cursor = 0
    finished = False
    try:
        while True:
            poll = asyncio.ensure_future(pull(key, cursor, poll_s))
            done, _ = await asyncio.wait({task, poll}, return_when=asyncio.FIRST_COMPLETED)
            if poll not in done:
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await poll
            else:
                page = poll.result()
                cursor = page["cursor"]
                for chunk in page["chunks"]:
                    yield _event(chunk)
            if task in done:
                rest = await pull(key, cursor, 0.0)  # tokens pushed just before the end
                for chunk in rest["chunks"]:
                    yield _event(chunk)
                finished = True
                yield {"event": "response", "response": task.result()}
                return
    finally:
        if not finished:
            if cancel_turn is not None:
                cancel_turn()
            task.cancel()
            with contextlib.suppress(BaseException):
                await cancel_stream(key)
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(BaseException):
            await drop_stream(key)


def _event(chunk: dict[str, Any]) -> dict[str, Any]:
    """A hub chunk as an event: tokens are ``{text, step}``, others carry ``event``."""
    if "event" in chunk:
        return dict(chunk)
    return {"event": "token", "text": chunk["text"], "step": chunk["step"]}
