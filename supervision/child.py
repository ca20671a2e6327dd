"""What a supervisor supervises: the child handle protocol, exits and child specs.

A :class:`ChildSpec` says how to start a child and how to treat its exits; starting
it yields a :class:`ChildHandle`, the only thing the supervisor knows of a running
child. ``actors/`` adapts Ray actor handles to the protocol; tests use
:class:`supervision.testing.FakeChild`. Nothing here does I/O.

Contract of a handle (what the supervisor relies on):

- ``wait_exit`` returns once the child has ended and may be cancelled without
  touching the child. A crash reads ``ABNORMAL`` with a reason, an exit of the
  child's own accord ``NORMAL``. If ``wait_exit`` raises, the supervisor has lost
  sight of the child and treats that as an ``ABNORMAL`` exit.
- ``stop`` is idempotent, asks for an orderly stop and force-kills the child once
  ``timeout_s`` has passed on the adapter's clock, so it returns after about
  ``timeout_s`` at most. The supervisor trusts that bound; it has no kill of its own.
  If ``stop`` raises, the supervisor drops the handle anyway, so an adapter must
  make sure the child is gone before raising (Ray: ``ray.kill``).
- ``spec.start`` returns a new, running child or raises; it is never handed an
  old instance to revive, because a restarted child starts from fresh state.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from supervision.errors import PolicyConfigError

__all__ = [
    "ChildHandle",
    "ChildInfo",
    "ChildSpec",
    "ChildState",
    "ChildType",
    "Exit",
    "ExitKind",
    "RestartType",
]

#: OTP restart types: ``permanent`` always restarts, ``transient`` only after an
#: abnormal exit, ``temporary`` never (see :func:`supervision.strategy.should_restart`).
RestartType = Literal["permanent", "transient", "temporary"]
#: A worker does the work; a supervisor child is itself the root of a subtree.
ChildType = Literal["worker", "supervisor"]
#: Where a child is in its supervisor: ``restarting`` from the moment a restart
#: plan takes it down until its new instance runs.
ChildState = Literal["running", "restarting", "stopped"]

_RESTART_TYPES = ("permanent", "transient", "temporary")
_CHILD_TYPES = ("worker", "supervisor")


class ExitKind(StrEnum):
    """How a child ended: of its own accord, stopped on request, or failed."""

    NORMAL = "normal"
    SHUTDOWN = "shutdown"
    ABNORMAL = "abnormal"


@dataclass(frozen=True, slots=True)
class Exit:
    """One end of one child instance; ``reason`` says why in words (crash message, "killed")."""

    kind: ExitKind
    reason: str = ""


@runtime_checkable
class ChildHandle(Protocol):
    """A running child as the supervisor sees it (see the module docstring for the contract)."""

    async def wait_exit(self) -> Exit:
        """Return how the child ended, once it has; at once if it is already dead."""
        ...

    async def stop(self, timeout_s: float) -> Exit:
        """Stop the child in order, killing it after ``timeout_s``; return how it ended."""
        ...


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start one child and how its supervisor treats its exits.

    ``start`` creates a new running child on every call and raises on failure.
    ``shutdown_timeout_s`` is passed to :meth:`ChildHandle.stop`. Raises
    :class:`~supervision.errors.PolicyConfigError` on an empty id, an unknown
    restart or child type, or a negative or non-finite timeout.
    """

    id: str
    start: Callable[[], Awaitable[ChildHandle]]
    restart: RestartType = "permanent"
    shutdown_timeout_s: float = 5.0
    type: ChildType = "worker"

    def __post_init__(self) -> None:
        if not self.id:
            raise PolicyConfigError("a child spec needs a non-empty id")
        if self.restart not in _RESTART_TYPES:
            raise PolicyConfigError(
                f"child {self.id!r}: restart must be one of {_RESTART_TYPES}, got {self.restart!r}"
            )
        if self.type not in _CHILD_TYPES:
            raise PolicyConfigError(
                f"child {self.id!r}: type must be one of {_CHILD_TYPES}, got {self.type!r}"
            )
        # Written so that NaN fails too.
        if not 0 <= self.shutdown_timeout_s < math.inf:
            raise PolicyConfigError(
                f"child {self.id!r}: shutdown_timeout_s must be finite and >= 0, "
                f"got {self.shutdown_timeout_s}"
            )


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """A snapshot of one supervised child, as ``elexirion status`` prints it.

    ``restarts`` counts the successful restarts of this child (by its
    supervisor's plans or on request); ``started_at`` is the supervisor's clock
    reading at the latest start, ``None`` before the first.
    """

    id: str
    type: ChildType
    restart: RestartType
    state: ChildState
    restarts: int
    started_at: float | None
