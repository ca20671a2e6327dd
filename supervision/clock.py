"""The clock every policy reads time from and sleeps on.

Policies never call :func:`time.monotonic` or :func:`asyncio.sleep` themselves:
they take a :class:`Clock`, so tests drive them with
:class:`supervision.testing.FakeClock` and never wait for real. Production code
passes :class:`SystemClock`. Neither raises; ``sleep`` may be cancelled like any
``await`` (``asyncio.CancelledError`` propagates to the sleeper).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic time in seconds and an async sleep measured on the same clock."""

    def now(self) -> float:
        """Seconds on a monotonic clock; only differences are meaningful."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`asyncio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
