"""Test doubles shipped with the package, in the spirit of trio's ``MockClock``.

:class:`FakeClock` implements :class:`~supervision.clock.Clock` with time that
only moves when a test says so (:meth:`FakeClock.advance`) or when code sleeps on
it (the sleep returns at once, having moved time forward). Tests therefore
assert exact waits and never sleep for real.
"""

from __future__ import annotations

import asyncio

__all__ = ["FakeClock"]


class FakeClock:
    """A manual monotonic clock; ``sleeps`` records every wait asked of it, in order."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward; raises :class:`ValueError` for a negative step (time is monotonic)."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds}s)")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the wait, move time forward by it, and yield to the loop once.

        A negative wait is recorded as asked but moves time by nothing, the way
        :func:`asyncio.sleep` treats it. Yielding once lets other ready tasks run,
        so concurrent code still interleaves as it would on a real clock.
        """
        self.sleeps.append(seconds)
        self._now += max(0.0, seconds)
        await asyncio.sleep(0)


# Later: FakeChild (a scripted ChildHandle for the supervisor state machine).
