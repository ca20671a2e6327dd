"""Coalescer: calls that meet a batch in flight travel together; each hears its own outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.batches import Coalescer, outcome


class Wire:
    """A ``send`` whose batches wait until the test releases them."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.gates: list[asyncio.Event] = []
        self.fail_with: Exception | None = None

    async def send(self, items: list[Any]) -> list[tuple[bool, Any]]:
        self.batches.append(list(items))
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return [
            (False, ValueError(f"bad {item}")) if str(item).startswith("bad") else (True, item * 2)
            for item in items
        ]

    def release(self, index: int) -> None:
        self.gates[index].set()


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_an_idle_call_leaves_at_once_alone() -> None:
    wire = Wire()
    batches = Coalescer(wire.send)
    call = asyncio.create_task(batches.submit(21))
    await _turns()
    assert wire.batches == [[21]]  # no window: it did not wait for company
    wire.release(0)
    assert await call == 42


async def test_calls_meeting_a_batch_in_flight_leave_together_next() -> None:
    wire = Wire()
    batches = Coalescer(wire.send)
    first = asyncio.create_task(batches.submit(1))
    await _turns()
    rest = [asyncio.create_task(batches.submit(n)) for n in (2, 3, 4)]
    await _turns()
    assert wire.batches == [[1]]  # the others wait for the one in flight
    wire.release(0)
    await _turns()
    assert wire.batches == [[1], [2, 3, 4]]
    wire.release(1)
    assert [await first, *[await t for t in rest]] == [2, 4, 6, 8]


async def test_a_failing_item_raises_for_its_caller_alone() -> None:
    wire = Wire()
    batches = Coalescer(wire.send)
    blocker = asyncio.create_task(batches.submit(0))
    await _turns()
    good = asyncio.create_task(batches.submit(5))
    bad = asyncio.create_task(batches.submit("bad-x"))
    await _turns()
    wire.release(0)
    await _turns()
    wire.release(1)
    assert await good == 10
    with pytest.raises(ValueError, match="bad bad-x"):
        await bad
    assert await blocker == 0


async def test_a_failed_send_reaches_every_caller_of_its_batch_and_the_next_batch_goes() -> None:
    wire = Wire()
    batches = Coalescer(wire.send)
    doomed = [asyncio.create_task(batches.submit(n)) for n in (1, 2)]
    await _turns()
    assert wire.batches == [[1]]
    wire.fail_with = ConnectionError("store gone")
    wire.release(0)
    await _turns()
    wire.release(1)
    for task in doomed:
        with pytest.raises(ConnectionError, match="store gone"):
            await task
    wire.fail_with = None
    later = asyncio.create_task(batches.submit(7))
    await _turns()
    wire.release(2)
    assert await later == 14


async def test_a_caller_cancelled_while_waiting_is_not_sent() -> None:
    wire = Wire()
    batches = Coalescer(wire.send)
    blocker = asyncio.create_task(batches.submit(1))
    await _turns()
    gone = asyncio.create_task(batches.submit(2))
    kept = asyncio.create_task(batches.submit(3))
    await _turns()
    gone.cancel()
    await _turns()
    wire.release(0)
    await _turns()
    assert wire.batches == [[1], [3]]
    wire.release(1)
    assert (await blocker, await kept) == (2, 6)


async def test_batches_hold_at_most_max_items_and_the_queue_drains() -> None:
    wire = Wire()
    batches = Coalescer(wire.send, max_items=3)
    calls = [asyncio.create_task(batches.submit(n)) for n in range(8)]
    await _turns()
    for index in range(4):
        wire.release(index)
        await _turns()
    assert wire.batches == [[0], [1, 2, 3], [4, 5, 6], [7]]
    assert [await c for c in calls] == [2 * n for n in range(8)]


async def test_more_batches_in_flight_when_allowed() -> None:
    wire = Wire()
    batches = Coalescer(wire.send, max_in_flight=2)
    calls = [asyncio.create_task(batches.submit(n)) for n in range(4)]
    await _turns()
    assert wire.batches == [[0], [1]]
    wire.release(1)
    await _turns()
    assert wire.batches == [[0], [1], [2, 3]]
    wire.release(0)
    wire.release(2)
    assert [await c for c in calls] == [0, 2, 4, 6]


async def test_a_send_that_miscounts_its_outcomes_fails_the_batch() -> None:
    gate = asyncio.Event()

    async def one_outcome(items: list[int]) -> list[tuple[bool, Any]]:
        await gate.wait()
        return [(True, 1)]

    batches = Coalescer(one_outcome)
    first = asyncio.create_task(batches.submit(1))
    await _turns()
    pair = [asyncio.create_task(batches.submit(n)) for n in (2, 3)]
    await _turns()
    gate.set()
    assert await first == 1
    for task in pair:
        with pytest.raises(RuntimeError, match="1 outcomes for a batch of 2"):
            await task


async def test_outcome_wraps_results_and_exceptions() -> None:
    async def boom() -> None:
        raise KeyError("k")

    async def fine() -> int:
        return 3

    assert await outcome(fine()) == (True, 3)
    ok, error = await outcome(boom())
    assert ok is False and isinstance(error, KeyError)
