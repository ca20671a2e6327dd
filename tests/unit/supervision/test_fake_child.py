"""The shipped fakes: FakeChild honours the ChildHandle contract; FakeChildFactory logs in order."""

from __future__ import annotations

import asyncio

import pytest

from supervision.child import ChildHandle, Exit, ExitKind
from supervision.testing import FakeChild, FakeChildFactory, FakeClock


def test_fake_child_is_a_child_handle() -> None:
    """FakeChild satisfies the ChildHandle protocol structurally."""
    assert isinstance(FakeChild("a"), ChildHandle)


async def test_crash_resolves_wait_exit_abnormally() -> None:
    """crash() ends the child; wait_exit returns ABNORMAL with the reason."""
    child = FakeChild("a")
    waiter = asyncio.create_task(child.wait_exit())
    await asyncio.sleep(0)
    assert child.alive and not waiter.done()
    child.crash("boom")
    async with asyncio.timeout(5):
        assert await waiter == Exit(ExitKind.ABNORMAL, "boom")
    assert child.exit == Exit(ExitKind.ABNORMAL, "boom")
    assert not child.alive


async def test_exit_normally_and_later_crash_is_ignored() -> None:
    """exit_normally() reads NORMAL; a crash after the end changes nothing."""
    child = FakeChild("a")
    child.exit_normally()
    child.crash()
    assert await child.wait_exit() == Exit(ExitKind.NORMAL)


async def test_stop_is_orderly_and_idempotent() -> None:
    """stop() ends a live child with SHUTDOWN, logs one stop, and repeats return the same exit."""
    log: list[tuple[str, str]] = []
    child = FakeChild("a", log=log)
    assert await child.stop(1.0) == Exit(ExitKind.SHUTDOWN)
    assert await child.stop(1.0) == Exit(ExitKind.SHUTDOWN)
    assert (child.stopped, child.killed, child.alive) == (True, False, False)
    assert log == [("stop", "a")]
    assert await child.wait_exit() == Exit(ExitKind.SHUTDOWN)


async def test_stop_of_a_dead_child_returns_its_exit() -> None:
    """Stopping a crashed child returns the crash at once and logs no stop."""
    log: list[tuple[str, str]] = []
    child = FakeChild("a", log=log)
    child.crash("gone")
    assert await child.stop(1.0) == Exit(ExitKind.ABNORMAL, "gone")
    assert log == [] and not child.stopped


async def test_hanging_stop_is_killed_after_timeout_on_the_fake_clock() -> None:
    """A stop that hangs is force-killed once its timeout has passed on the FakeClock."""
    clock = FakeClock()
    log: list[tuple[str, str]] = []
    child = FakeChild("a", stop_hangs=True, clock=clock, log=log)
    async with asyncio.timeout(5):
        first, second = await asyncio.gather(child.stop(2.5), child.stop(2.5))
    assert first == second == Exit(ExitKind.ABNORMAL, "killed after 2.5s")
    assert child.killed and child.stopped and not child.alive
    assert clock.sleeps == [2.5] and clock.now() == 2.5
    assert log == [("stop", "a"), ("kill", "a")]


async def test_cancelling_wait_exit_leaves_the_child_alive() -> None:
    """Cancelling wait_exit does not touch the child."""
    child = FakeChild("a")
    waiter = asyncio.create_task(child.wait_exit())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert child.alive


async def test_factory_starts_children_and_logs_in_order() -> None:
    """spec().start makes a new FakeChild per call; events log starts, stops and kills in order."""
    factory = FakeChildFactory()
    a = factory.spec("a", restart="transient", shutdown_timeout_s=1.5)
    b = factory.spec("b", stop_hangs=True)
    assert (a.restart, a.shutdown_timeout_s, a.type) == ("transient", 1.5, "worker")
    first = await a.start()
    second = await a.start()
    assert first is not second and factory.current("a") is second
    assert factory.instances("a") == [first, second]
    await (await b.start()).stop(1.0)
    await second.stop(1.0)
    assert factory.events == [
        ("start", "a"),
        ("start", "a"),
        ("start", "b"),
        ("stop", "b"),
        ("kill", "b"),
        ("stop", "a"),
    ]
    assert (factory.starts, factory.stops, factory.kills) == (["a", "a", "b"], ["b", "a"], ["b"])
    assert factory.clock.now() == 1.0


async def test_factory_fails_the_requested_starts() -> None:
    """fail_starts and fail_next_starts make that many starts raise, then starts succeed."""
    factory = FakeChildFactory()
    spec = factory.spec("a", fail_starts=2)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="fake start of 'a' failed"):
            await spec.start()
    await spec.start()
    factory.fail_next_starts("a")
    with pytest.raises(RuntimeError):
        await spec.start()
    assert factory.failed_starts == ["a", "a", "a"] and factory.starts == ["a"]


def test_current_of_a_child_never_started_is_a_key_error() -> None:
    """current() names only children that have started."""
    with pytest.raises(KeyError):
        FakeChildFactory().current("nobody")
