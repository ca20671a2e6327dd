"""Ray plumbing shared by every actor shell: names, handles that survive restarts,
and the monitor method a supervisor watches.

Failure semantics of :class:`ActorRef`: a call on an actor that died raises
``ActorDiedError``/``ActorUnavailableError``; the ref drops its handle, looks the
name up again (the supervisor re-creates the actor under the same name within
~0.5 s) and retries, up to ``deadline_s``. Only idempotent calls may use
:meth:`ActorRef.call` with retries (every mutating call in the tree carries an
idempotency key: turn id, run id).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import RayActorError

__all__ = [
    "NAMESPACE",
    "ActorRef",
    "actor_name",
    "kill_named",
    "lookup",
    "node_id",
]

NAMESPACE = "elexirion"


def actor_name(path: str) -> str:
    """The Ray actor name of a tree path: ``elexirion/sessions/shard-0``."""
    return f"{NAMESPACE}/{path}"


def lookup(path: str) -> Any | None:
    """The live handle of ``path``, or None when no such actor exists."""
    try:
        return ray.get_actor(actor_name(path), namespace=NAMESPACE)
    except ValueError:
        return None


def kill_named(path: str) -> bool:
    """Kill the actor at ``path`` if one exists (frees its name for a re-create)."""
    handle = lookup(path)
    if handle is None:
        return False
    ray.kill(handle, no_restart=True)
    return True


def node_id() -> str:
    """The id of the node this process runs on."""
    return str(ray.get_runtime_context().get_node_id())


class ActorRef:
    """A named actor that may be restarted: re-resolves its handle after a death."""

    def __init__(self, path: str, *, deadline_s: float = 10.0) -> None:
        self.path = path
        self.deadline_s = deadline_s
        self._handle: Any | None = None

    def __repr__(self) -> str:
        return f"ActorRef({self.path!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Handles are per process: ship only the path, resolve on arrival.
        return (ActorRef, (self.path,), {"deadline_s": self.deadline_s})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.deadline_s = state["deadline_s"]
        self._handle = None

    def handle(self) -> Any:
        if self._handle is None:
            self._handle = lookup(self.path)
            if self._handle is None:
                raise ActorMissing(self.path)
        return self._handle

    async def call(self, method: str, *args: Any, retry: bool = True, **kwargs: Any) -> Any:
        """``await handle.method.remote(...)``; with ``retry`` (idempotent calls only)
        a dead actor is looked up again and the call re-sent until ``deadline_s``."""
        deadline = time.monotonic() + self.deadline_s
        delay = 0.02
        while True:
            try:
                return await getattr(self.handle(), method).remote(*args, **kwargs)
            except (RayActorError, ActorMissing) as error:
                self._handle = None
                if not retry or time.monotonic() + delay > deadline:
                    raise
                del error
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)

    def call_sync(self, method: str, *args: Any, timeout_s: float = 60.0, **kwargs: Any) -> Any:
        """Blocking variant for drivers (CLI); same retry rules."""
        deadline = time.monotonic() + self.deadline_s
        delay = 0.05
        while True:
            try:
                ref = getattr(self.handle(), method).remote(*args, **kwargs)
                return ray.get(ref, timeout=timeout_s)
            except (RayActorError, ActorMissing):
                self._handle = None
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)


class ActorMissing(LookupError):  # noqa: N818 - reads as the condition, like KeyError
    """No actor is registered under the path (yet): the tree is not up, or restarting."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no actor at {actor_name(path)!r}; is the tree up (`elexirion up`)?")
        self.path = path

    def __reduce__(self) -> tuple[Callable[..., ActorMissing], tuple[str]]:
        return (ActorMissing, (self.path,))
