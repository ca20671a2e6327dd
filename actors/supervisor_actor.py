"""A Ray actor hosting a :class:`supervision.Supervisor` over named child actors.

The root (``elexirion/app``), ``sessions`` and ``executors`` are such actors.
Children are described by :class:`ChildDef` (a kind name resolved in the actor's
own process, so nothing unpicklable crosses the wire).

Failure semantics: when the hosted supervisor escalates (restart intensity
exceeded) it has already stopped its children in reverse order; this actor then
reports ``"escalated"`` from ``monitor()`` and its parent restarts or escalates in
turn. ``stop()`` shuts the children down in reverse order, each with its timeout.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from actors.base import Supervised
from actors.child import START_TIMEOUT_S, RayChild, ray_child_spec
from pipelines.observability import get_logger
from supervision.child import ChildSpec, ChildType, RestartType
from supervision.errors import SupervisorEscalation
from supervision.supervisor import Strategy, Supervisor, SupervisorConfig, SupervisorEvent

__all__ = ["ChildDef", "SupervisorActorBase"]

_log = get_logger("supervision")


@dataclass(frozen=True, slots=True)
class ChildDef:
    """One child of a supervisor actor: its tree path, actor kind and arguments."""

    id: str
    path: str
    kind: str
    args: tuple[Any, ...] = ()
    restart: RestartType = "permanent"
    type: ChildType = "worker"
    shutdown_timeout_s: float = 10.0
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def start_timeout_s(self) -> float:
        """How long starting may take: a supervisor starts its children one by one, so
        it gets a worker's allowance per descendant (a loaded machine starts a Ray
        worker process in seconds, not milliseconds)."""
        return START_TIMEOUT_S * max(1, _descendants(self))


def _descendants(child: ChildDef) -> int:
    """Actors under a supervisor ChildDef (its args carry its children's ChildDefs)."""
    count = 0
    for arg in child.args:
        if isinstance(arg, list):
            for grandchild in arg:
                if isinstance(grandchild, ChildDef):
                    count += 1 + _descendants(grandchild)
    return count


class SupervisorActorBase(Supervised):
    """Supervises its :class:`ChildDef` children with OTP semantics."""

    def __init__(
        self,
        path: str,
        children: list[ChildDef],
        strategy: Strategy,
        max_restarts: int = 3,
        period_s: float = 5.0,
    ) -> None:
        self._init_supervised(path)
        self._defs = {d.id: d for d in children}
        self._events: list[dict[str, Any]] = []
        self._supervisor = Supervisor(
            path,
            [self._spec(d) for d in children],
            SupervisorConfig(strategy=strategy, max_restarts=max_restarts, period_s=period_s),
            on_event=self._on_event,
        )
        self._runner: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    def _spec(self, d: ChildDef) -> ChildSpec:
        from actors.remote import actor_class

        return ray_child_spec(
            d.id,
            d.path,
            actor_class(d.kind),
            args=d.args,
            restart=d.restart,
            child_type=d.type,
            shutdown_timeout_s=d.shutdown_timeout_s,
            options=d.options,
            start_timeout_s=d.start_timeout_s,
        )

    def _on_event(self, event: SupervisorEvent) -> None:
        record = {
            "supervisor": self.path,
            "kind": event.kind,
            "child": event.child,
            "detail": event.detail,
            "at": time.time(),
        }
        self._events.append(record)
        del self._events[:-200]  # keep the recent history only
        level = (
            "warning"
            if event.kind in ("child_exited", "intensity_exceeded", "start_failed")
            else "info"
        )
        getattr(_log, level)("supervisor_event", **record)

    async def on_ready(self) -> None:
        if self._runner is not None:
            return
        await self._supervisor.start()
        self._runner = asyncio.create_task(self._supervise(), name=f"supervise {self.path}")

    async def _supervise(self) -> None:
        try:
            await self._supervisor.run()
        except SupervisorEscalation as exc:
            _log.error("supervisor_escalated", supervisor=self.path, detail=str(exc))
            self._escalate()

    async def on_stop(self) -> None:
        await self._supervisor.shutdown()
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)

    # --------------------------------------------------------------- queries

    def child_handle(self, child_id: str) -> Any:
        handle = self._supervisor.handle(child_id)
        return handle.handle if isinstance(handle, RayChild) else None

    async def tree(self) -> dict[str, Any]:
        """This supervisor and its children, recursively: path, state, restarts, uptime."""
        now = time.time()
        nodes = []
        for info in self._supervisor.children():
            d = self._defs.get(info.id)
            entry: dict[str, Any] = {
                "id": info.id,
                "path": d.path if d else info.id,
                "kind": d.kind if d else "?",
                "type": info.type,
                "state": info.state,
                "restarts": info.restarts,
            }
            handle = self.child_handle(info.id)
            if handle is not None and info.state == "running":
                try:
                    async with asyncio.timeout(5):
                        if info.type == "supervisor":
                            sub = await handle.tree.remote()
                            entry.update({k: v for k, v in sub.items() if k != "path"})
                        else:
                            entry.update(await handle.info.remote())
                    entry["uptime_s"] = round(now - entry.get("started_at", now), 1)
                except Exception as exc:  # noqa: BLE001 - a child dying mid-query is a state, not an error
                    entry["state"] = f"unreachable ({type(exc).__name__})"
            nodes.append(entry)
        own = await self.info()
        return {**own, "uptime_s": round(now - own["started_at"], 1), "children": nodes}

    async def events(self) -> list[dict[str, Any]]:
        return list(self._events)
