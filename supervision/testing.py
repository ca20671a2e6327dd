"""Test doubles shipped with the package, in the spirit of trio's ``MockClock``.

:class:`FakeClock` implements :class:`~supervision.clock.Clock` with time that
only moves when a test says so (:meth:`FakeClock.advance`) or when code sleeps on
it (the sleep returns at once, having moved time forward). Tests therefore
assert exact waits and never sleep for real.

:class:`FakeChild` is a scripted :class:`~supervision.child.ChildHandle`: a test
crashes it or lets it exit, and a child whose orderly stop hangs is force-killed
once its timeout has passed on the fake clock. :class:`FakeChildFactory` builds
child specs whose ``start`` creates fake children (or fails on request) and keeps
one ordered log of starts, stops and kills.
"""

from __future__ import annotations

import asyncio

from supervision.child import ChildHandle, ChildSpec, Exit, ExitKind, RestartType

__all__ = ["FakeChild", "FakeChildFactory", "FakeClock"]


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


class FakeChild:
    """A scripted child process implementing :class:`~supervision.child.ChildHandle`.

    ``stopped`` is set when :meth:`stop` ended it (in order or by a kill),
    ``killed`` when its orderly stop hung past the timeout. ``log`` receives
    ``("stop", id)`` and ``("kill", id)`` entries; sleeps go to ``clock``.
    """

    def __init__(
        self,
        id: str,
        *,
        stop_hangs: bool = False,
        clock: FakeClock | None = None,
        log: list[tuple[str, str]] | None = None,
    ) -> None:
        self.id = id
        self.stop_hangs = stop_hangs
        self.stopped = False
        self.killed = False
        self._clock = clock if clock is not None else FakeClock()
        self._log = log if log is not None else []
        self._exit: Exit | None = None
        self._ended = asyncio.Event()
        self._stopping = False

    @property
    def alive(self) -> bool:
        """True until the child has exited, crashed, or been stopped or killed."""
        return self._exit is None

    @property
    def exit(self) -> Exit | None:
        """How it ended, or ``None`` while it runs."""
        return self._exit

    def crash(self, reason: str = "crashed") -> None:
        """End it abnormally now (no effect on a dead child)."""
        self._end(Exit(ExitKind.ABNORMAL, reason))

    def exit_normally(self) -> None:
        """End it of its own accord now (no effect on a dead child)."""
        self._end(Exit(ExitKind.NORMAL))

    async def wait_exit(self) -> Exit:
        """Return how it ended, once it has; cancelling the wait leaves the child alone."""
        await self._ended.wait()
        return self._final()

    async def stop(self, timeout_s: float) -> Exit:
        """Stop it (``SHUTDOWN``) or, if the stop hangs, kill it after ``timeout_s`` on the clock.

        Idempotent: a dead child returns its exit at once, and a second call while
        a stop is in progress waits for the same end.
        """
        if self._exit is not None:
            return self._exit
        if self._stopping:
            return await self.wait_exit()
        self._stopping = True
        self._log.append(("stop", self.id))
        if self.stop_hangs:
            # The orderly stop never completes; the FakeClock sleep stands for the timeout.
            await self._clock.sleep(timeout_s)
            if self._exit is None:
                self.stopped = self.killed = True
                self._log.append(("kill", self.id))
                self._end(Exit(ExitKind.ABNORMAL, f"killed after {timeout_s:g}s"))
            return self._final()
        await asyncio.sleep(0)  # a real stop is a remote call: let other tasks run meanwhile
        if self._exit is None:
            self.stopped = True
            self._end(Exit(ExitKind.SHUTDOWN))
        return self._final()

    def _end(self, exit: Exit) -> None:
        if self._exit is None:
            self._exit = exit
            self._ended.set()

    def _final(self) -> Exit:
        if self._exit is None:  # _ended is only ever set together with _exit
            raise RuntimeError(f"fake child {self.id!r} signalled an exit it does not have")
        return self._exit


class FakeChildFactory:
    """spec.start factories that create FakeChilds and record the order of starts/stops.

    ``events`` logs ``("start" | "stop" | "kill", id)`` in order; a start that
    fails on request is logged in ``failed_starts`` instead and raises
    ``RuntimeError``. Children sleep on ``clock`` (a new FakeClock by default).
    """

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock if clock is not None else FakeClock()
        self.events: list[tuple[str, str]] = []
        self.failed_starts: list[str] = []
        self._instances: dict[str, list[FakeChild]] = {}
        self._failures: dict[str, int] = {}

    def spec(
        self,
        id: str,
        *,
        restart: RestartType = "permanent",
        fail_starts: int = 0,
        stop_hangs: bool = False,
        shutdown_timeout_s: float = 5.0,
    ) -> ChildSpec:
        """A spec whose ``start`` makes a FakeChild named ``id``; the next ``fail_starts`` raise."""
        self._failures[id] = fail_starts

        async def start() -> ChildHandle:
            await asyncio.sleep(0)  # creating a real child is a remote call
            return self._start(id, stop_hangs)

        return ChildSpec(id, start, restart=restart, shutdown_timeout_s=shutdown_timeout_s)

    def fail_next_starts(self, id: str, count: int = 1) -> None:
        """Make the next ``count`` starts of ``id`` raise."""
        self._failures[id] = count

    def current(self, id: str) -> FakeChild:
        """The latest instance of ``id``; raises ``KeyError`` if it never started."""
        return self._instances[id][-1]

    def instances(self, id: str) -> list[FakeChild]:
        """Every instance of ``id`` ever started, oldest first."""
        return list(self._instances.get(id, []))

    @property
    def starts(self) -> list[str]:
        """Ids of the successful starts, in order."""
        return [id for kind, id in self.events if kind == "start"]

    @property
    def stops(self) -> list[str]:
        """Ids of the children asked to stop while alive, in order (killed ones included)."""
        return [id for kind, id in self.events if kind == "stop"]

    @property
    def kills(self) -> list[str]:
        """Ids of the children force-killed after their stop timed out, in order."""
        return [id for kind, id in self.events if kind == "kill"]

    def _start(self, id: str, stop_hangs: bool) -> FakeChild:
        if self._failures.get(id, 0) > 0:
            self._failures[id] -= 1
            self.failed_starts.append(id)
            raise RuntimeError(f"fake start of {id!r} failed")
        child = FakeChild(id, stop_hangs=stop_hangs, clock=self.clock, log=self.events)
        self._instances.setdefault(id, []).append(child)
        self.events.append(("start", id))
        return child
