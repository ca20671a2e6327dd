"""Adapting Ray actors to the pure supervisor: :class:`RayChild` is a
:class:`supervision.ChildHandle`, and :func:`ray_child_spec` a :class:`ChildSpec`
whose ``start`` creates the named actor.

How a death is seen: every supervised actor has ``monitor()``, which only returns
when the actor is stopped (``"shutdown"``) or its own supervisor escalates
(``"escalated"``). The supervisor awaits it; when the actor's process dies the
await fails within milliseconds with ``RayActorError`` → ``Exit(ABNORMAL)``.

Restarts are ours, not Ray's: actors are created with ``max_restarts=0``. A
re-create first kills any actor still holding the name (a dead named actor keeps
its name until killed), then creates it afresh; ``__init__`` reloads state from
the store. Handles held elsewhere are re-resolved by :class:`~actors._ray.ActorRef`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import ray
from ray.exceptions import RayActorError

from actors._ray import NAMESPACE, actor_name, kill_named
from supervision.child import ChildHandle, ChildSpec, ChildType, Exit, ExitKind, RestartType

__all__ = ["RayChild", "ray_child_spec"]

#: How long a freshly created actor may take to answer ``ready()``.
START_TIMEOUT_S = 60.0


class RayChild:
    """A running supervised actor, as the supervisor sees it."""

    def __init__(self, path: str, handle: Any) -> None:
        self.path = path
        self.handle = handle
        self._exit: Exit | None = None

    def __repr__(self) -> str:
        return f"RayChild({self.path!r})"

    async def wait_exit(self) -> Exit:
        if self._exit is not None:
            return self._exit
        try:
            outcome = await self.handle.monitor.remote()
        except RayActorError as error:
            self._exit = Exit(ExitKind.ABNORMAL, f"actor died: {_first_line(error)}")
        else:
            kind = ExitKind.ABNORMAL if outcome == "escalated" else ExitKind.SHUTDOWN
            if outcome == "normal":
                kind = ExitKind.NORMAL
            self._exit = Exit(kind, str(outcome))
        return self._exit

    async def stop(self, timeout_s: float) -> Exit:
        """Ask the actor to stop (it stops its own children first), then kill it."""
        if self._exit is None:
            try:
                async with asyncio.timeout(timeout_s):
                    await self.handle.stop.remote()
                self._exit = Exit(ExitKind.SHUTDOWN, "stopped")
            except (TimeoutError, RayActorError) as error:
                kind = ExitKind.SHUTDOWN if isinstance(error, TimeoutError) else ExitKind.ABNORMAL
                self._exit = Exit(
                    kind, "killed after stop timeout" if kind is ExitKind.SHUTDOWN else "died"
                )
        ray.kill(self.handle, no_restart=True)
        return self._exit


def ray_child_spec(
    child_id: str,
    path: str,
    actor_class: Any,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    restart: RestartType = "permanent",
    child_type: ChildType = "worker",
    shutdown_timeout_s: float = 10.0,
    options: Mapping[str, Any] | None = None,
    start_timeout_s: float = START_TIMEOUT_S,
) -> ChildSpec:
    """A ChildSpec whose start creates ``actor_class`` as the named actor ``path``."""

    async def start() -> ChildHandle:
        # A crashed predecessor holds the name until killed; the lookup is a blocking
        # GCS call, kept off the supervisor's event loop.
        await asyncio.to_thread(kill_named, path)
        opts = {
            "name": actor_name(path),
            "namespace": NAMESPACE,
            "num_cpus": 0,
            "max_restarts": 0,
            "max_concurrency": 1000,
            **(options or {}),
        }
        handle = await _create(actor_class, opts, args, dict(kwargs or {}), start_timeout_s)
        return RayChild(path, handle)

    return ChildSpec(
        id=child_id,
        start=start,
        restart=restart,
        shutdown_timeout_s=shutdown_timeout_s,
        type=child_type,
    )


async def _create(
    actor_class: Any,
    options: dict[str, Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    start_timeout_s: float = START_TIMEOUT_S,
) -> Any:
    delay = 0.05
    for _ in range(40):  # the name of a just-killed actor can take a moment to free
        try:
            handle = actor_class.options(**options).remote(*args, **kwargs)
            break
        except ValueError:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
    else:
        raise RuntimeError(f"could not create {options['name']}: the name stays taken")
    try:
        async with asyncio.timeout(start_timeout_s):
            await handle.ready.remote()
    except BaseException:
        ray.kill(handle, no_restart=True)  # a half-started actor must not keep the name
        raise
    return handle


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
