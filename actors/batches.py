"""Items sent in batches: what a process gathers within a short window leaves in one call.

Telemetry events and provider-call outcomes are fire-and-forget and arrive from many
turns at once; one actor call per window instead of one per item is what keeps the
telemetry and gateway actors cheap under load. The caller never waits; a send that
fails is logged by ``send`` itself and the batch is dropped (best effort).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Batches"]

T = TypeVar("T")


class Batches(Generic[T]):
    """Gathers items for ``window_s()`` seconds (at most ``max_items()`` per batch, which
    then leaves at once) and hands each batch to ``send``. The limits are read on every
    add, so a module-level setting changed at run time applies."""

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[None]],
        *,
        window_s: Callable[[], float],
        max_items: Callable[[], int] = lambda: 1_000_000,
    ) -> None:
        self._send = send
        self._window_s = window_s
        self._max_items = max_items
        self._items: list[T] = []
        self._window: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def add(self, item: T) -> None:
        self._items.append(item)
        loop = asyncio.get_running_loop()
        if len(self._items) >= self._max_items():
            batch, self._items = self._items, []
            task = loop.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        elif self._window is None:
            self._window = loop.create_task(self._after_window())

    async def _after_window(self) -> None:
        await asyncio.sleep(self._window_s())
        self._window = None
        batch, self._items = self._items, []
        if batch:
            await self._send(batch)
