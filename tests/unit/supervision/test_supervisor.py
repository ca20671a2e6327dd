"""The Supervisor driven by FakeChilds on a FakeClock: order, strategies, intensity, shutdown, trees."""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from supervision import errors
from supervision.child import ChildHandle, ChildSpec, Exit, ExitKind
from supervision.supervisor import Supervisor, SupervisorConfig, SupervisorEvent
from supervision.testing import FakeChildFactory, FakeClock


class Recorder:
    """An on_event observer that tests can wait on (with a real-time safety timeout)."""

    def __init__(self) -> None:
        self.events: list[SupervisorEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: SupervisorEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def children(self, kind: str, supervisor: str | None = None) -> list[str | None]:
        return [
            e.child
            for e in self.events
            if e.kind == kind and (supervisor is None or e.supervisor == supervisor)
        ]

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    async def count(self, kind: str, n: int, supervisor: str | None = None) -> None:
        await self.until(lambda: len(self.children(kind, supervisor)) >= n)


@pytest.fixture
def factory() -> FakeChildFactory:
    return FakeChildFactory(FakeClock())


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def make(
    factory: FakeChildFactory, recorder: Recorder, specs: Sequence[ChildSpec], **config: Any
) -> Supervisor:
    return Supervisor(
        "sup", specs, SupervisorConfig(**config), clock=factory.clock, on_event=recorder
    )


@asynccontextmanager
async def supervising(sup: Supervisor) -> AsyncIterator[asyncio.Task[None]]:
    """Start ``sup``, run it in a task, and shut it down and reap the task on the way out."""
    await sup.start()
    task = asyncio.create_task(sup.run())
    try:
        yield task
    finally:
        await sup.shutdown()
        async with asyncio.timeout(5):
            await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is never logged


def abc(factory: FakeChildFactory, **kwargs: Any) -> list[ChildSpec]:
    return [factory.spec(c, **kwargs) for c in "abc"]


# ---------------------------------------------------------------------- start


async def test_start_starts_children_in_order(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """start() starts every child in spec order and reports each as running."""
    factory.clock.advance(7.0)
    sup = make(factory, recorder, abc(factory))
    async with supervising(sup):
        assert factory.starts == ["a", "b", "c"]
        assert [(i.id, i.state, i.restarts, i.started_at) for i in sup.children()] == [
            ("a", "running", 0, 7.0),
            ("b", "running", 0, 7.0),
            ("c", "running", 0, 7.0),
        ]
        assert recorder.children("child_started") == ["a", "b", "c"]
        assert sup.handle("b") is factory.current("b") and sup.handle("zz") is None


async def test_start_failure_rolls_back_in_reverse(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """A failing start stops the started children in reverse order and raises SupervisorStartError."""
    specs = [
        factory.spec("a"),
        factory.spec("b"),
        factory.spec("c", fail_starts=1),
        factory.spec("d"),
    ]
    sup = make(factory, recorder, specs)
    with pytest.raises(errors.SupervisorStartError) as info:
        await sup.start()
    assert info.value.child_id == "c" and info.value.supervisor == "sup"
    assert "fake start of 'c' failed" in info.value.cause
    assert isinstance(info.value.__cause__, RuntimeError)
    assert factory.starts == ["a", "b"] and factory.stops == ["b", "a"]
    assert sup.closed and {i.state for i in sup.children()} == {"stopped"}
    await sup.run()  # a closed supervisor returns at once


async def test_run_before_start_and_twice_is_refused(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """run() needs start() first and refuses a second concurrent run()."""
    sup = make(factory, recorder, abc(factory))
    with pytest.raises(RuntimeError, match="start"):
        await sup.run()
    async with supervising(sup):
        await asyncio.sleep(0)  # let run() begin
        with pytest.raises(RuntimeError, match="already running"):
            await sup.run()
        with pytest.raises(RuntimeError, match="already started"):
            await sup.start()


def test_duplicate_child_ids_are_a_config_error(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """Two specs with one id are refused at construction."""
    with pytest.raises(errors.PolicyConfigError, match="duplicate child id 'a'"):
        make(factory, recorder, [factory.spec("a"), factory.spec("a")])


# ----------------------------------------------------------------- strategies


@pytest.mark.parametrize(
    ("strategy", "stops", "restarted"),
    [
        ("one_for_one", [], ["b"]),
        ("one_for_all", ["c", "a"], ["a", "b", "c"]),
        ("rest_for_one", ["c"], ["b", "c"]),
    ],
    ids=["one_for_one", "one_for_all", "rest_for_one"],
)
async def test_strategy_restart_order(
    factory: FakeChildFactory,
    recorder: Recorder,
    strategy: str,
    stops: list[str],
    restarted: list[str],
) -> None:
    """A crash of the middle child stops siblings in reverse order and restarts in start order."""
    sup = make(factory, recorder, abc(factory), strategy=strategy)
    async with supervising(sup):
        factory.current("b").crash("boom")
        await recorder.count("child_restarted", len(restarted))
        assert factory.stops == stops
        assert factory.starts == ["a", "b", "c", *restarted]
        assert recorder.children("child_exited") == ["b"]  # own stops are not failures
        assert {i.id: i.restarts for i in sup.children()} == {c: int(c in restarted) for c in "abc"}
        assert all(i.state == "running" for i in sup.children())


async def test_temporary_child_crash_removes_it(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """A temporary child that crashes leaves the supervisor; siblings are untouched."""
    specs = [factory.spec("a"), factory.spec("t", restart="temporary"), factory.spec("c")]
    sup = make(factory, recorder, specs, strategy="one_for_all")
    async with supervising(sup):
        factory.current("t").crash()
        await recorder.count("child_removed", 1)
        assert [i.id for i in sup.children()] == ["a", "c"]
        assert factory.starts == ["a", "t", "c"] and factory.stops == []


@pytest.mark.parametrize(
    ("restart", "how", "restarted"),
    [
        ("transient", "exit_normally", False),
        ("transient", "crash", True),
        ("permanent", "exit_normally", True),
        ("permanent", "crash", True),
    ],
    ids=["transient-normal", "transient-abnormal", "permanent-normal", "permanent-abnormal"],
)
async def test_restart_types(
    factory: FakeChildFactory, recorder: Recorder, restart: str, how: str, restarted: bool
) -> None:
    """transient restarts only after a crash (else it is removed); permanent restarts always."""
    sup = make(factory, recorder, [factory.spec("a"), factory.spec("x", restart=restart)])  # type: ignore[arg-type]
    async with supervising(sup):
        getattr(factory.current("x"), how)()
        await recorder.count("child_restarted" if restarted else "child_removed", 1)
        assert factory.starts == ["a", "x", "x"] if restarted else ["a", "x"]
        assert [i.id for i in sup.children()] == ["a", "x"] if restarted else ["a"]


async def test_unsolicited_shutdown_keeps_a_permanent_child_stopped(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """A permanent child stopped in order from outside stays stopped until restart_child."""
    sup = make(factory, recorder, abc(factory))
    async with supervising(sup):
        await factory.current("b").stop(1.0)
        await recorder.count("child_exited", 1)
        assert [i.state for i in sup.children()] == ["running", "stopped", "running"]
        assert sup.handle("b") is None
        await sup.restart_child("b")
        assert sup.handle("b") is factory.current("b") and factory.current("b").alive


async def test_state_is_restarting_while_the_restart_runs(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """ChildInfo.state reads 'restarting' from the plan's start until the new instance runs."""
    seen: list[str] = []
    inner = factory.spec("a")

    async def start() -> ChildHandle:
        seen.append(sup.children()[0].state)
        return await inner.start()

    sup = make(factory, recorder, [dataclasses.replace(inner, start=start)])
    async with supervising(sup):
        factory.current("a").crash()
        await recorder.count("child_restarted", 1)
        assert seen == ["stopped", "restarting"]
        assert sup.children()[0].state == "running" and sup.children()[0].restarts == 1


# ---------------------------------------------------------- intensity, backoff


async def test_intensity_exceeded_stops_all_in_reverse_and_escalates(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """The restart past max_restarts stops every child in reverse order and run() escalates."""
    sup = make(factory, recorder, [*abc(factory), factory.spec("d")], max_restarts=2)
    async with supervising(sup) as task:
        for n in (1, 2):
            factory.current("b").crash(f"crash {n}")
            await recorder.count("child_restarted", n)
        factory.current("b").crash("crash 3")
        with pytest.raises(errors.SupervisorEscalation) as info:
            async with asyncio.timeout(5):
                await task
    assert factory.stops == ["d", "c", "a"]  # b is already dead
    assert (info.value.supervisor, info.value.child_id, info.value.code) == (
        "sup",
        "b",
        "escalated",
    )
    assert info.value.reason == "abnormal: crash 3" and info.value.max_restarts == 2
    assert sup.closed and {i.state for i in sup.children()} == {"stopped"}
    assert recorder.children("intensity_exceeded") == ["b"]
    assert recorder.children("shutdown") == []  # the later shutdown() had nothing to do


async def test_exits_that_restart_nothing_do_not_count(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """Removed children do not use up the intensity: only restarts count."""
    specs = [factory.spec(f"t{n}", restart="temporary") for n in range(3)]
    sup = make(factory, recorder, [*specs, factory.spec("p")], max_restarts=0)
    async with supervising(sup) as task:
        for n in range(3):
            factory.current(f"t{n}").crash()
        await recorder.count("child_removed", 3)
        assert not task.done() and [i.id for i in sup.children()] == ["p"]


async def test_restart_backoff_doubles_on_the_fake_clock(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """Consecutive restarts wait 1, 2, 3 (capped) s on the clock; a long run resets the streak."""
    sup = make(
        factory,
        recorder,
        [factory.spec("a")],
        max_restarts=10,
        period_s=100.0,
        restart_backoff_s=1.0,
        restart_backoff_max_s=3.0,
    )
    async with supervising(sup):
        for n in range(1, 5):
            factory.current("a").crash()
            await recorder.count("child_restarted", n)
        assert factory.clock.sleeps == [1.0, 2.0, 3.0, 3.0]
        factory.clock.advance(100.0)
        factory.current("a").crash()
        await recorder.count("child_restarted", 5)
        assert factory.clock.sleeps[-1] == 1.0


async def test_failed_restart_is_retried_then_recovers(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """A restart whose start raises counts as a failure and is tried again."""
    sup = make(factory, recorder, abc(factory), max_restarts=3)
    async with supervising(sup) as task:
        factory.fail_next_starts("b", 2)
        factory.current("b").crash()
        await recorder.count("child_restarted", 1)
        assert recorder.children("start_failed") == ["b", "b"]
        assert factory.starts == ["a", "b", "c", "b"] and not task.done()
        # The crash and both failed starts used up the 3 restarts: one more escalates.
        factory.current("a").crash()
        with pytest.raises(errors.SupervisorEscalation):
            async with asyncio.timeout(5):
                await task


async def test_failed_restarts_eventually_escalate(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """A child that keeps failing to start exhausts the intensity and escalates."""
    sup = make(factory, recorder, abc(factory), max_restarts=2)
    async with supervising(sup) as task:
        factory.fail_next_starts("b", 100)
        factory.current("b").crash()
        with pytest.raises(errors.SupervisorEscalation) as info:
            async with asyncio.timeout(5):
                await task
    assert factory.failed_starts == ["b", "b"] and factory.stops == ["c", "a"]
    assert info.value.child_id == "b" and "start failed" in info.value.reason


async def test_failed_sibling_start_replans_one_for_all(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """Under one_for_all a sibling that fails to restart makes the whole set restart again."""
    sup = make(factory, recorder, abc(factory), strategy="one_for_all")
    async with supervising(sup):
        factory.current("a").crash()
        factory.fail_next_starts("b", 1)
        await recorder.count("child_restarted", 4)  # a once in vain, then a, b, c
        await recorder.until(lambda: all(i.state == "running" for i in sup.children()))
        assert factory.starts == ["a", "b", "c", "a", "a", "b", "c"]
        assert factory.stops == ["c", "b", "a"]


# --------------------------------------------------------------- concurrency


async def test_simultaneous_crashes_one_for_one_are_both_handled(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """Two children crashing at once are each restarted, one plan after the other."""
    sup = make(factory, recorder, abc(factory))
    async with supervising(sup):
        factory.current("a").crash()
        factory.current("c").crash()
        await recorder.count("child_restarted", 2)
        assert factory.starts == ["a", "b", "c", "a", "c"]
        assert recorder.children("child_exited") == ["a", "c"]


async def test_second_plan_sees_the_first_plans_state(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """Under one_for_all a sibling's simultaneous crash is absorbed by the first plan, not replanned."""
    sup = make(factory, recorder, abc(factory), strategy="one_for_all", max_restarts=1)
    async with supervising(sup) as task:
        factory.current("a").crash()
        factory.current("b").crash()
        await recorder.count("child_restarted", 3)
        await sup.shutdown()
        async with asyncio.timeout(5):
            await task  # no escalation: the stale exit of b was never a second restart
    assert factory.starts == ["a", "b", "c", "a", "b", "c"]
    assert recorder.children("child_exited") == ["a"]


async def test_cancelled_run_leaves_no_task_and_children_to_shutdown(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """Cancelling run() cancels its watchers; children stay up until shutdown() stops them."""
    sup = make(factory, recorder, abc(factory))
    await sup.start()
    task = asyncio.create_task(sup.run())
    factory.current("a").crash()
    await recorder.count("child_restarted", 1)  # run() is supervising
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert all(factory.current(c).alive for c in "abc")
    factory.current("b").crash()  # nobody watches now
    await asyncio.sleep(0)
    assert factory.starts == ["a", "b", "c", "a"]
    await sup.shutdown()
    assert factory.stops == ["c", "a"]


async def test_wait_exit_failure_counts_as_a_crash(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """A handle whose wait_exit raises is treated as crashed and restarted; a failing stop is survived."""

    class Broken:
        async def wait_exit(self) -> Exit:
            raise ConnectionError("lost the actor")

        async def stop(self, timeout_s: float) -> Exit:
            raise ConnectionError("lost the actor")

    starts: list[int] = []

    async def start() -> ChildHandle:
        starts.append(1)
        if len(starts) == 1:
            return Broken()
        return await factory.spec("x").start()

    sup = make(factory, recorder, [ChildSpec("x", start)])
    async with supervising(sup):
        await recorder.count("child_restarted", 1)
        assert "wait_exit failed: ConnectionError" in recorder.events[1].detail
        await sup.restart_child("x")
    broken = Supervisor("b", [ChildSpec("x", lambda: _ready(Broken()))], on_event=recorder)
    await broken.start()
    await broken.shutdown()
    assert "stop failed: ConnectionError" in recorder.events[-2].detail


async def _ready(handle: Any) -> ChildHandle:
    return handle  # type: ignore[no-any-return]


# -------------------------------------------------------------- shutdown, ops


async def test_shutdown_reverse_order_kills_hanging_child_after_timeout(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """shutdown() stops children in reverse order; a hanging one is killed after its timeout."""
    specs = [
        factory.spec("a"),
        factory.spec("b", stop_hangs=True, shutdown_timeout_s=2.0),
        factory.spec("c"),
    ]
    sup = make(factory, recorder, specs)
    async with supervising(sup) as task:
        await sup.shutdown()
        async with asyncio.timeout(5):
            await task
        await sup.shutdown()  # idempotent
    assert factory.stops == ["c", "b", "a"] and factory.kills == ["b"]
    assert factory.clock.sleeps == [2.0] and factory.clock.now() == 2.0
    assert factory.instances("b")[0].killed
    assert recorder.children("shutdown") == [None]
    assert "killed after 2s" in [e for e in recorder.events if e.child == "b"][-1].detail


async def test_restart_terminate_and_add_child(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """restart_child restarts one child uncounted; terminate_child removes; add_child appends."""
    sup = make(factory, recorder, abc(factory), strategy="rest_for_one", max_restarts=1)
    async with supervising(sup) as task:
        await sup.restart_child("b")
        assert factory.stops == ["b"] and factory.starts == ["a", "b", "c", "b"]
        await sup.restart_child("b")
        assert sup.children()[1].restarts == 2
        assert factory.stops == ["b", "b"] and factory.starts == ["a", "b", "c", "b", "b"]
        await sup.terminate_child("c")
        await sup.add_child(factory.spec("d"))
        assert [i.id for i in sup.children()] == ["a", "b", "d"]
        assert factory.stops == ["b", "b", "c"] and factory.starts[-1] == "d"
        for missing in (sup.restart_child("c"), sup.terminate_child("c")):
            with pytest.raises(errors.ChildNotFound, match="no child 'c' in supervisor 'sup'"):
                await missing
        with pytest.raises(errors.PolicyConfigError):
            await sup.add_child(factory.spec("a"))
        with pytest.raises(errors.SupervisorStartError):
            await sup.add_child(factory.spec("e", fail_starts=1))
        assert [i.id for i in sup.children()] == ["a", "b", "d"]
        # Two requested restarts used none of the one allowed: this crash restarts a, b, d.
        factory.current("a").crash()
        await recorder.count("child_restarted", 5)
        assert factory.starts[-3:] == ["a", "b", "d"] and not task.done()
    with pytest.raises(errors.SupervisorStartError, match="closed"):
        await sup.add_child(factory.spec("f"))


async def test_children_added_before_start_start_in_order(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """add_child before start() queues the child to start last, in order."""
    sup = make(factory, recorder, [factory.spec("a")])
    await sup.add_child(factory.spec("b"))
    async with supervising(sup):
        assert factory.starts == ["a", "b"]


async def test_failed_restart_child_leaves_it_stopped(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """A restart_child whose start raises reports SupervisorStartError and keeps the child stopped."""
    sup = make(factory, recorder, abc(factory))
    async with supervising(sup):
        factory.fail_next_starts("a", 1)
        with pytest.raises(errors.SupervisorStartError):
            await sup.restart_child("a")
        assert sup.children()[0].state == "stopped" and sup.handle("a") is None


# -------------------------------------------------------------- nested trees


class SupervisorChild:
    """A ChildHandle over an in-process child Supervisor: its run() is the child's life."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self._run = asyncio.create_task(
            supervisor.run()
        )  # owned here: reaped by stop()/wait_exit()

    async def wait_exit(self) -> Exit:
        await asyncio.wait({self._run})  # cancelling this wait leaves the subtree running
        return self._exit()

    async def stop(self, timeout_s: float) -> Exit:
        await self.supervisor.shutdown()
        await asyncio.wait({self._run})
        return self._exit()

    def _exit(self) -> Exit:
        error = None if self._run.cancelled() else self._run.exception()
        if error is None:
            return Exit(ExitKind.SHUTDOWN)
        return Exit(ExitKind.ABNORMAL, str(error))


async def test_child_supervisor_escalation_is_an_abnormal_exit_the_parent_restarts(
    factory: FakeChildFactory, recorder: Recorder
) -> None:
    """A child supervisor that escalates exits abnormally; its parent restarts the subtree."""
    agents_specs = [factory.spec("router"), factory.spec("code")]

    async def start_agents() -> ChildHandle:
        sub = Supervisor(
            "agents",
            agents_specs,
            SupervisorConfig(strategy="rest_for_one", max_restarts=1),
            clock=factory.clock,
            on_event=recorder,
        )
        await sub.start()
        return SupervisorChild(sub)

    agents = ChildSpec("agents", start_agents, type="supervisor")
    app = Supervisor("app", [factory.spec("store"), agents], clock=factory.clock, on_event=recorder)
    async with supervising(app):
        factory.current("router").crash()
        await recorder.count("child_restarted", 2, supervisor="agents")
        factory.current("router").crash()
        await recorder.count("child_restarted", 1, supervisor="app")
        exited = [e for e in recorder.events if e.supervisor == "app" and e.kind == "child_exited"]
        assert [e.child for e in exited] == ["agents"]
        assert exited[0].detail.startswith("abnormal: supervisor 'agents' exceeded 1 restarts")
        assert factory.starts == ["store", "router", "code", "router", "code", "router", "code"]
        assert [(i.id, i.type, i.restarts) for i in app.children()] == [
            ("store", "worker", 0),
            ("agents", "supervisor", 1),
        ]
    assert factory.stops == ["code", "code", "code", "router", "store"]


# ------------------------------------------------------------------- pickling


SUPERVISOR_ERRORS = [
    errors.SupervisorError("subtree failed", code="custom", retryable=True),
    errors.SupervisorStartError("router", "RuntimeError: no GPU", supervisor="agents"),
    errors.SupervisorEscalation("agents", "router", "abnormal: boom", max_restarts=3, period_s=5.0),
    errors.SupervisorEscalation("agents", None, "", max_restarts=0, period_s=0.5),
    errors.ChildNotFound("shard-9", supervisor="sessions"),
]


def test_every_supervisor_error_class_is_covered() -> None:
    """The round-trip list covers every SupervisorError class the errors module exports."""
    exported = {getattr(errors, name) for name in errors.__all__}
    supervisor_classes = {c for c in exported if issubclass(c, errors.SupervisorError)}
    assert supervisor_classes == {type(e) for e in SUPERVISOR_ERRORS}


@pytest.mark.parametrize("exc", SUPERVISOR_ERRORS, ids=lambda e: type(e).__name__)
def test_supervisor_errors_round_trip(exc: errors.SupervisorError) -> None:
    """Each supervisor exception keeps its type, message and fields through pickle."""
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc) and str(copy) == str(exc)
    assert copy.__dict__ == exc.__dict__


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (SUPERVISOR_ERRORS[1], "start_failed"),
        (SUPERVISOR_ERRORS[2], "escalated"),
        (SUPERVISOR_ERRORS[4], "child_not_found"),
    ],
    ids=["start", "escalation", "not-found"],
)
def test_supervisor_errors_are_runtime_and_not_retryable(
    exc: errors.SupervisorError, code: str
) -> None:
    """Supervisor errors carry a stable code, are not retryable, and are not config errors."""
    assert (exc.code, exc.retryable) == (code, False)
    assert isinstance(exc, errors.SupervisorError) and not isinstance(exc, errors.PolicyConfigError)


def test_exits_and_events_pickle() -> None:
    """Exit and SupervisorEvent cross actor boundaries intact."""
    for value in (
        Exit(ExitKind.ABNORMAL, "boom"),
        SupervisorEvent("app", "child_exited", "a", "x", 1.5),
    ):
        assert pickle.loads(pickle.dumps(value)) == value
