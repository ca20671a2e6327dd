"""The supervisor: starts children in order, watches them, restarts them per strategy.

A :class:`Supervisor` carries out the plans of :mod:`supervision.strategy` on
:class:`~supervision.child.ChildHandle` objects. It is plain asyncio on an injected
clock; ``actors/`` hosts it in a Ray actor and adapts Ray handles to the protocol.

Failure semantics:

- **A child dies mid-call.** Callers of the child see what its adapter raises
  (with Ray, ``ActorUnavailableError`` / ``ActorDiedError``); the supervisor does
  not retry their calls. Once it sees the exit it restarts the child per its
  restart type and the strategy; :meth:`Supervisor.handle` returns ``None`` until
  the new instance runs. What the dead instance held only in memory is lost, which
  is why children write state through to the store (ARCHITECTURE.md).
- **Restarts** start *new* children from the spec. Each restart plan counts once
  against the intensity (default: more than 3 in 5 s is too many); exits that
  restart nothing do not count. A start that raises during a restart counts as a
  new failure of that child: the strategy plans again from the current state,
  which counts again, so a child that keeps failing to start ends in escalation.
- **Escalation.** Past the intensity the supervisor stops every child in reverse
  start order (each within its ``shutdown_timeout_s``) and :meth:`Supervisor.run`
  raises :class:`~supervision.errors.SupervisorEscalation`: its parent sees the
  subtree exit abnormally and decides. The supervisor is then closed for good.
- **Own stops are not failures.** Exits of children the supervisor stops itself
  (siblings in a ``one_for_all``/``rest_for_one`` plan, shutdown, escalation,
  ``terminate_child``) are ignored: their watchers are cancelled first, and an
  exit reported for an instance the supervisor no longer holds is stale.
- **One plan at a time.** Exits queue up and are handled one by one under a lock
  that the public operations take too, so a second exit is planned against the
  state the first plan left (an instance already replaced reads as stale).
- **Cancellation.** If :meth:`Supervisor.run` is cancelled, its watcher tasks are
  cancelled with it (they live in its ``TaskGroup``) and the plan in progress
  stops where it was; children keep running and nothing restarts them until
  ``run()`` is called again. The caller owns what remains: :meth:`shutdown` stops
  every child the supervisor still holds. A child whose ``spec.start`` was
  cancelled is unknown to the supervisor; its adapter must not leave it behind.
- **Shutdown** waits for the plan in progress, which starts no further child once
  shutdown is asked for, then stops children in reverse start order and makes
  ``run()`` return. It is idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NoReturn

from supervision.child import ChildHandle, ChildInfo, ChildSpec, ChildState, Exit, ExitKind
from supervision.clock import Clock, SystemClock
from supervision.errors import (
    ChildNotFound,
    PolicyConfigError,
    SupervisorEscalation,
    SupervisorStartError,
)
from supervision.strategy import (
    RestartIntensity,
    RestartPlan,
    Strategy,
    SupervisorConfig,
    plan_exit,
)

# ChildInfo, Strategy and SupervisorConfig are defined with the data they describe
# and re-exported here, where the supervisor's callers look for them.
__all__ = [
    "ChildInfo",
    "EventKind",
    "Strategy",
    "Supervisor",
    "SupervisorConfig",
    "SupervisorEvent",
]

#: ``child_started``: first start (start() or add_child); ``child_exited``: an exit the
#: supervisor did not ask for; ``child_stopped``: one it did (plan, shutdown, escalation,
#: terminate_child).
EventKind = Literal[
    "child_started", "child_exited", "child_stopped", "child_restarted", "child_removed",
    "start_failed", "intensity_exceeded", "shutdown",
]  # fmt: skip
_Report = tuple[str, ChildHandle, Exit]


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """Something a supervisor did or saw, for logs and metrics; ``at`` is its clock reading."""

    supervisor: str
    kind: EventKind
    child: str | None = None
    detail: str = ""
    at: float = 0.0


@dataclass(slots=True)
class _Child:
    spec: ChildSpec
    handle: ChildHandle | None = None
    state: ChildState = "stopped"
    restarts: int = 0
    started_at: float | None = None
    watcher: asyncio.Task[None] | None = None
    streak: int = 0  # consecutive restarts, for the backoff


_DEFAULT_CONFIG = SupervisorConfig()


class Supervisor:
    """Supervises ``specs`` under ``config``; ``on_event`` sees every :class:`SupervisorEvent`.

    Raises :class:`~supervision.errors.PolicyConfigError` for duplicate child ids.
    ``on_event`` must not raise: an exception from it propagates out of the
    operation that emitted the event (from ``run()`` after its watchers stop).
    """

    def __init__(
        self,
        name: str,
        specs: Sequence[ChildSpec],
        config: SupervisorConfig = _DEFAULT_CONFIG,
        *,
        clock: Clock | None = None,
        on_event: Callable[[SupervisorEvent], None] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._on_event = on_event
        self._children: dict[str, _Child] = {}  # insertion order is start order
        for spec in specs:
            if spec.id in self._children:
                raise PolicyConfigError(f"supervisor {name!r}: duplicate child id {spec.id!r}")
            self._children[spec.id] = _Child(spec)
        self._intensity = RestartIntensity(config.max_restarts, config.period_s, clock=self._clock)
        self._lock = asyncio.Lock()
        self._reports: asyncio.Queue[_Report | None] = asyncio.Queue()  # None: shutdown
        self._group: asyncio.TaskGroup | None = None  # run()'s, while it runs
        self._phase: Literal["new", "started", "closed"] = "new"
        self._closing = False
        self._running = False

    async def start(self) -> None:
        """Start the children in order; raise SupervisorStartError if one fails.

        On failure the children already started are stopped in reverse order and
        the supervisor is closed. Calling ``start`` twice raises ``RuntimeError``.
        """
        if self._phase != "new":
            raise RuntimeError(f"supervisor {self.name!r} was already started")
        self._phase = "started"
        async with self._lock:
            for child in list(self._children.values()):
                error = await self._try_start(child)
                if error is not None:
                    await self._stop_all()
                    self._phase = "closed"
                    raise error
                self._emit("child_started", child.spec.id)

    async def run(self) -> None:
        """Supervise until :meth:`shutdown` (return) or escalation (raise SupervisorEscalation).

        Raises ``RuntimeError`` before :meth:`start` or while another ``run()`` is
        active; returns at once if the supervisor is already closed.
        """
        if self._phase == "new":
            raise RuntimeError(f"supervisor {self.name!r}: start() must come before run()")
        if self._running:
            raise RuntimeError(f"supervisor {self.name!r} is already running")
        if self._phase == "closed":
            return
        self._running = True
        failure: Exception | None = None
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                for child in self._children.values():
                    self._watch(child)
                try:
                    await self._supervise()
                except Exception as exc:  # noqa: BLE001 - re-raised below, outside the group, unwrapped
                    failure = exc
                finally:
                    self._group = None
                    for child in self._children.values():
                        self._unwatch(child)
        finally:
            self._running = False
        if failure is not None:
            raise failure

    async def shutdown(self) -> None:
        """Stop every child in reverse start order, each within its timeout; ``run()`` returns."""
        self._closing = True  # a plan in progress starts no further child
        async with self._lock:
            if self.closed:  # another shutdown() or an escalation got there first
                return
            await self._stop_all()
            self._phase = "closed"
            self._emit("shutdown", None)
        self._reports.put_nowait(None)

    @property
    def closed(self) -> bool:
        """True once shut down, escalated or failed to start: it supervises nothing any more."""
        return self._phase == "closed"

    def children(self) -> list[ChildInfo]:
        """Snapshots of the children, in start order."""
        return [
            ChildInfo(c.spec.id, c.spec.type, c.spec.restart, c.state, c.restarts, c.started_at)
            for c in self._children.values()
        ]

    def handle(self, child_id: str) -> ChildHandle | None:
        """The running instance of ``child_id``; ``None`` if unknown or not running now."""
        child = self._children.get(child_id)
        return child.handle if child is not None and child.state == "running" else None

    async def restart_child(self, child_id: str) -> None:
        """Stop ``child_id`` and start it again, alone, whatever the strategy.

        Does not count against the intensity. Raises ChildNotFound; raises
        SupervisorStartError if the supervisor is not running or the start fails
        (the child then stays in the supervisor, stopped).
        """
        async with self._lock:
            child = self._get(child_id)
            self._require_started(child_id)
            await self._stop(child, "restarting")
            error = await self._try_start(child)
            if error is not None:
                child.state = "stopped"  # the requester decides what to do about it
                raise error
            child.restarts += 1
            self._emit("child_restarted", child_id, "on request")

    async def add_child(self, spec: ChildSpec) -> None:
        """Add a child at the end; start it now if the supervisor has started.

        Raises PolicyConfigError for a duplicate id and SupervisorStartError if the
        supervisor is closed or the start fails (the child is then not added).
        """
        async with self._lock:
            if spec.id in self._children:
                raise PolicyConfigError(f"supervisor {self.name!r}: duplicate child id {spec.id!r}")
            child = _Child(spec)
            if self._phase == "new":
                self._children[spec.id] = child  # start() will start it in order
                return
            self._require_started(spec.id)
            error = await self._try_start(child)
            if error is not None:
                raise error  # nothing was added
            self._children[spec.id] = child
            self._emit("child_started", spec.id)

    async def terminate_child(self, child_id: str) -> None:
        """Stop ``child_id`` within its timeout and remove it; raises ChildNotFound."""
        async with self._lock:
            child = self._get(child_id)
            await self._stop(child, "stopped")
            self._remove(child_id)

    # ------------------------------------------------------------------ internals

    async def _supervise(self) -> None:
        while True:
            report = await self._reports.get()
            if report is None or self._phase == "closed":
                return
            async with self._lock:
                await self._on_exit(*report)

    async def _on_exit(self, child_id: str, handle: ChildHandle, exit: Exit) -> None:
        child = self._children.get(child_id)
        if self._phase == "closed" or child is None or child.handle is not handle:
            return  # stale: this instance was stopped or replaced by the supervisor
        child.handle, child.watcher = None, None
        self._emit("child_exited", child_id, _exit_detail(exit))
        if child.started_at is not None and (
            self._clock.now() - child.started_at >= self.config.period_s
        ):
            child.streak = 0  # it ran a whole period: this restart is not a consecutive one
        failure: tuple[str, Exit] | None = (child_id, exit)
        while failure is not None and not self._closing:
            failed_id, cause = failure
            live = [cid for cid, c in self._children.items() if c.state != "stopped"]
            types = {cid: c.spec.restart for cid, c in self._children.items()}
            plan = plan_exit(self.config.strategy, live, failed_id, cause, types)
            failure = await self._carry_out(plan, failed_id, cause)

    async def _carry_out(
        self, plan: RestartPlan, failed_id: str, cause: Exit
    ) -> tuple[str, Exit] | None:
        """Carry out ``plan``; return the next failure if a start in it raised."""
        failed = self._children[failed_id]
        if not plan.start:
            failed.state = "stopped"
            for cid in plan.remove:
                self._remove(cid)
            return None
        if plan.restart_counts and self._intensity.record():
            await self._escalate(failed_id, cause)
        for cid in plan.stop:
            await self._stop(self._children[cid], "restarting")
        for cid in plan.remove:
            self._remove(cid)
        for cid in plan.start:
            self._children[cid].state = "restarting"
        delay = self._backoff(failed)
        if delay > 0:
            await self._clock.sleep(delay)
        for cid in plan.start:
            if self._closing:
                return None  # shutdown() stops what runs and marks the rest stopped
            child = self._children[cid]
            error = await self._try_start(child)
            if error is not None:  # a failed restart is a new failure of that child
                return cid, Exit(ExitKind.ABNORMAL, f"start failed: {error.cause}")
            child.restarts += 1
            self._emit("child_restarted", cid, f"restart {child.restarts}")
        return None

    async def _escalate(self, failed_id: str, cause: Exit) -> NoReturn:
        limit, period = self._intensity.max_restarts, self._intensity.period_s
        self._emit("intensity_exceeded", failed_id, f"more than {limit} restarts in {period:g}s")
        await self._stop_all()
        self._phase = "closed"
        raise SupervisorEscalation(
            self.name, failed_id, _exit_detail(cause), max_restarts=limit, period_s=period
        )

    def _backoff(self, failed: _Child) -> float:
        failed.streak += 1
        return self.config.backoff_s(failed.streak - 1)

    async def _try_start(self, child: _Child) -> SupervisorStartError | None:
        """Start ``child``; if its start raises, report it and return the error to raise."""
        try:
            handle = await child.spec.start()
        except Exception as exc:  # noqa: BLE001 - whatever a start raises is that child's failure
            self._emit("start_failed", child.spec.id, _describe(exc))
            error = SupervisorStartError(child.spec.id, _describe(exc), supervisor=self.name)
            error.__cause__ = exc
            return error
        child.handle, child.state = handle, "running"
        child.started_at = self._clock.now()
        self._watch(child)
        return None

    async def _stop(self, child: _Child, state: ChildState) -> None:
        self._unwatch(child)  # first, so this exit is never read as a failure
        child.state = state
        handle = child.handle
        if handle is None:
            return
        try:
            exit = await handle.stop(child.spec.shutdown_timeout_s)
        except Exception as exc:  # noqa: BLE001 - the handle promised the child is gone; report, go on
            exit = Exit(ExitKind.ABNORMAL, f"stop failed: {_describe(exc)}")
        # Dropped only now: if this await is cancelled, shutdown() can still stop it.
        child.handle = None
        self._emit("child_stopped", child.spec.id, _exit_detail(exit))

    async def _stop_all(self) -> None:
        for child in reversed(list(self._children.values())):
            await self._stop(child, "stopped")

    def _remove(self, child_id: str) -> None:
        self._unwatch(self._children.pop(child_id))
        self._emit("child_removed", child_id)

    def _watch(self, child: _Child) -> None:
        if self._group is not None and child.handle is not None and child.state == "running":
            child.watcher = self._group.create_task(
                self._report(child.spec.id, child.handle), name=f"{self.name}/{child.spec.id}"
            )

    def _unwatch(self, child: _Child) -> None:
        if child.watcher is not None:
            child.watcher.cancel()  # reaped by run()'s TaskGroup
            child.watcher = None

    async def _report(self, child_id: str, handle: ChildHandle) -> None:
        try:
            exit = await handle.wait_exit()
        except Exception as exc:  # noqa: BLE001 - losing sight of a child is treated as its crash
            exit = Exit(ExitKind.ABNORMAL, f"wait_exit failed: {_describe(exc)}")
        self._reports.put_nowait((child_id, handle, exit))

    def _get(self, child_id: str) -> _Child:
        child = self._children.get(child_id)
        if child is None:
            raise ChildNotFound(child_id, supervisor=self.name)
        return child

    def _require_started(self, child_id: str) -> None:
        if self._phase != "started":
            raise SupervisorStartError(
                child_id, f"supervisor is {self._phase}, not running", supervisor=self.name
            )

    def _emit(self, kind: EventKind, child: str | None, detail: str = "") -> None:
        if self._on_event is not None:
            self._on_event(SupervisorEvent(self.name, kind, child, detail, self._clock.now()))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _exit_detail(exit: Exit) -> str:
    return f"{exit.kind}: {exit.reason}" if exit.reason else str(exit.kind)
