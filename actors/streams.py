"""Token streams of runs in flight: executors push, the HTTP edge pulls.

:class:`StreamHub` is plain Python (in-process for the embedded platform; the
``streams`` actor in the tree). A stream is keyed by the chat turn id; it holds
chunks ``{"text", "step"}`` in order, a ``done`` flag and a ``cancelled`` flag.
The executor's :class:`TokenForwarder` batches a run's tokens (every
``flush_s``) and learns from each push whether the reader has gone away: then it
cancels the run, so a client that disconnects stops paying for tokens.

Failure semantics: streams are ephemeral. A hub that dies loses the chunks not
yet read — the final answer still arrives through the turn itself — and readers
of a lost stream see it as done.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StreamHub", "TokenForwarder"]


@dataclass(slots=True)
class _Stream:
    chunks: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    cancelled: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    touched: float = field(default_factory=time.monotonic)


class StreamHub:
    """Ordered chunks per key, long-poll reads, cancellation flags; bounded and aged."""

    def __init__(self, *, max_streams: int = 20_000, ttl_s: float = 600.0) -> None:
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        self._max = max_streams
        self._ttl_s = ttl_s

    def _get(self, key: str) -> _Stream:
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream()
            self._trim()
        stream.touched = time.monotonic()
        self._streams.move_to_end(key)
        return stream

    def _trim(self) -> None:
        now = time.monotonic()
        while self._streams and (
            len(self._streams) > self._max
            or now - next(iter(self._streams.values())).touched > self._ttl_s
        ):
            self._streams.popitem(last=False)

    async def push(self, key: str, chunks: list[dict[str, Any]], done: bool = False) -> bool:
        """Append ``chunks``; returns True when the reader cancelled the stream."""
        stream = self._get(key)
        if not stream.cancelled:
            stream.chunks.extend(chunks)
            stream.done = stream.done or done
            stream.changed.set()
        return stream.cancelled

    async def pull(self, key: str, cursor: int = 0, timeout_s: float = 10.0) -> dict[str, Any]:
        """Chunks after ``cursor``, waiting up to ``timeout_s`` for some to arrive."""
        stream = self._get(key)
        if len(stream.chunks) <= cursor and not stream.done:
            stream.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.changed.wait(), timeout_s)
        chunks = stream.chunks[cursor:]
        return {"chunks": chunks, "cursor": cursor + len(chunks), "done": stream.done}

    async def cancel(self, key: str) -> None:
        """The reader is gone: the next push tells the run to stop."""
        stream = self._get(key)
        stream.cancelled = True
        stream.chunks.clear()
        stream.changed.set()

    async def finish(self, key: str) -> None:
        """Mark the stream done (the turn ended) and wake any reader."""
        await self.push(key, [], done=True)

    async def drop(self, key: str) -> None:
        """Forget a stream whose reader has finished with it."""
        self._streams.pop(key, None)

    def stats(self) -> dict[str, int]:
        return {"streams": len(self._streams)}


Push = Callable[[str, list[dict[str, str]]], Awaitable[bool]]


class TokenForwarder:
    """The token sink of one run: batches deltas and pushes them every ``flush_s``.

    ``on_cancel`` is called (once) when a push reports that the reader cancelled.
    """

    def __init__(
        self, key: str, push: Push, on_cancel: Callable[[], None], *, flush_s: float = 0.05
    ) -> None:
        self.key = key
        self._push = push
        self._on_cancel = on_cancel
        self._flush_s = flush_s
        self._buffer: list[dict[str, str]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.cancelled = False

    def __call__(self, step: str, delta: str) -> None:
        if self._buffer and self._buffer[-1]["step"] == step:
            self._buffer[-1] = {"step": step, "text": self._buffer[-1]["text"] + delta}
        else:
            self._buffer.append({"step": step, "text": delta})
        self._wake.set()

    async def __aenter__(self) -> TokenForwarder:
        self._task = asyncio.create_task(self._loop(), name=f"tokens {self.key}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()
            await asyncio.sleep(self._flush_s)

    async def _flush(self) -> None:
        if not self._buffer or self.cancelled:
            return
        batch, self._buffer = self._buffer, []
        try:
            cancelled = await self._push(self.key, batch)
        except Exception:  # noqa: BLE001 - tokens are best effort; the answer still arrives
            return
        if cancelled and not self.cancelled:
            self.cancelled = True
            self._on_cancel()
