"""Items sent in batches, so that many turns at once cost one actor call, not one each.

- :class:`Batches` (fire and forget): what a process gathers within a short window
  leaves in one call. Telemetry events and provider-call outcomes go this way. The
  caller never waits; a send that fails is logged by ``send`` itself and the batch is
  dropped (best effort).
- :class:`Coalescer` (request and reply): a call goes out at once when no batch is in
  flight; calls that arrive while one is travel together in the next, and each caller
  gets its own result or its own exception. Idle, it adds no latency; busy, it turns
  many small store calls into one (an actor call costs ~0.8 ms of CPU on its two ends
  whatever it carries).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["Batches", "Coalescer", "outcome"]

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


class Coalescer(Generic[T]):
    """Sends items through ``send`` in batches of at most ``max_items``, with at most
    ``max_in_flight`` batches travelling at once; :meth:`submit` returns the item's
    own outcome.

    ``send(items)`` returns one ``(ok, value)`` per item, in order: ``ok`` false makes
    ``value`` (an exception) raise for that item's caller alone. An exception raised
    by ``send`` itself reaches every caller of the batch. A caller cancelled while its
    item waits takes the item out of the next batch; one cancelled while the batch
    travels just does not hear the outcome. State is per event loop: a client used
    from a new loop starts afresh.
    """

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[list[tuple[bool, Any]]]],
        *,
        max_items: int = 64,
        max_in_flight: int = 1,
    ) -> None:
        self._send = send
        self.max_items = max_items
        self.max_in_flight = max_in_flight
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[tuple[T, asyncio.Future[Any]]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._queue, self._in_flight, self._tasks = loop, [], 0, set()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((item, future))
        if self._in_flight < self.max_in_flight:
            self._launch(loop)
        return await future

    def _launch(self, loop: asyncio.AbstractEventLoop) -> None:
        live = [entry for entry in self._queue if not entry[1].done()]  # cancelled: not sent
        batch, self._queue = live[: self.max_items], live[self.max_items :]
        if not batch:
            return
        self._in_flight += 1
        task = loop.create_task(self._fly(batch, loop))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fly(
        self, batch: list[tuple[T, asyncio.Future[Any]]], loop: asyncio.AbstractEventLoop
    ) -> None:
        try:
            try:
                outcomes = await self._send([item for item, _ in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"{len(outcomes)} outcomes for a batch of {len(batch)}")
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        finally:
            if loop is self._loop:
                self._in_flight -= 1
                if self._queue and self._in_flight < self.max_in_flight:
                    self._launch(loop)


async def outcome(awaitable: Awaitable[Any]) -> tuple[bool, Any]:
    """``(True, result)`` or ``(False, exception)``: one item's outcome in a batch."""
    try:
        return True, await awaitable
    except Exception as exc:  # noqa: BLE001 - the item's own caller raises it
        return False, exc
