"""The fake and the system clock honour the Clock protocol."""

from __future__ import annotations

import asyncio

import pytest

from supervision.clock import Clock, SystemClock
from supervision.testing import FakeClock


def test_both_clocks_satisfy_the_protocol() -> None:
    """FakeClock and SystemClock are structurally Clocks."""
    assert isinstance(FakeClock(), Clock) and isinstance(SystemClock(), Clock)


def test_fake_clock_moves_only_when_told() -> None:
    """Time starts where asked and moves only by advance()."""
    clock = FakeClock(start=100.0)
    assert clock.now() == 100.0
    clock.advance(2.5)
    assert clock.now() == 102.5


def test_fake_clock_refuses_to_go_back() -> None:
    """A negative advance is a bug in the test and raises ValueError."""
    with pytest.raises(ValueError, match="cannot go back"):
        FakeClock().advance(-1.0)


async def test_fake_sleep_records_and_advances() -> None:
    """sleep() records each wait in order and moves time by it at once."""
    clock = FakeClock()
    await clock.sleep(1.5)
    await clock.sleep(0.25)
    await clock.sleep(-3.0)
    assert clock.sleeps == [1.5, 0.25, -3.0]
    assert clock.now() == 1.75


async def test_fake_sleep_yields_to_other_tasks() -> None:
    """sleep() lets another ready task run before it returns."""
    clock = FakeClock()
    ran = asyncio.Event()

    async def other() -> None:
        ran.set()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(other())
        await clock.sleep(0.0)
        assert ran.is_set()


async def test_system_clock_is_monotonic() -> None:
    """SystemClock never goes back, and a zero sleep returns."""
    clock = SystemClock()
    first = clock.now()
    await clock.sleep(0)
    assert clock.now() >= first
