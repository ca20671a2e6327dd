"""The pure decision core of a supervisor: what to do when a child exits, and when to give up.

:func:`plan_exit` turns one exit into a :class:`RestartPlan` (which siblings to
stop, which children to start, which leave for good); :class:`RestartIntensity`
counts restarts in a sliding window on an injected clock; :class:`SupervisorConfig`
holds the settings, including the restart backoff formula. Nothing here awaits or
touches a child: :class:`~supervision.supervisor.Supervisor` carries the plans out.

The rules are OTP's, with one deliberate difference: an unsolicited ``SHUTDOWN``
exit (someone stopped the child in order, outside its supervisor) never restarts,
not even a ``permanent`` child. Such a child stays in the supervisor, stopped,
until :meth:`~supervision.supervisor.Supervisor.restart_child` brings it back.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from supervision.child import Exit, ExitKind, RestartType
from supervision.clock import Clock
from supervision.errors import PolicyConfigError

__all__ = [
    "STRATEGIES",
    "RestartIntensity",
    "RestartPlan",
    "Strategy",
    "SupervisorConfig",
    "plan_exit",
    "should_restart",
]

#: ``one_for_one`` restarts the failed child; ``one_for_all`` every child;
#: ``rest_for_one`` the failed child and the children started after it.
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]

STRATEGIES: tuple[Strategy, ...] = ("one_for_one", "one_for_all", "rest_for_one")


@dataclass(frozen=True, slots=True)
class RestartPlan:
    """What follows one exit, to be carried out in field order.

    ``stop`` lists the siblings to stop first, in reverse start order; ``start``
    the children to (re)start, in start order; ``remove`` the children that leave
    the supervisor for good. ``restart_counts`` says whether the exit counts
    against the restart intensity (it does exactly when something restarts).
    """

    stop: tuple[str, ...]
    start: tuple[str, ...]
    remove: tuple[str, ...]
    restart_counts: bool


def should_restart(restart: RestartType, exit: Exit) -> bool:
    """Whether a child of this restart type comes back after ``exit``.

    ``permanent``: after ``NORMAL`` or ``ABNORMAL``; ``transient``: only after
    ``ABNORMAL``; ``temporary``: never. A ``SHUTDOWN`` exit never restarts.
    """
    if exit.kind is ExitKind.SHUTDOWN or restart == "temporary":
        return False
    if restart == "transient":
        return exit.kind is ExitKind.ABNORMAL
    return True


def plan_exit(
    strategy: Strategy,
    order: Sequence[str],
    failed: str,
    exit: Exit,
    restart_types: Mapping[str, RestartType],
) -> RestartPlan:
    """Plan what follows the exit of ``failed`` among the live children ``order``.

    ``order`` is the start order of the children the plan may touch (the
    supervisor leaves out children it holds stopped); ``restart_types`` must
    cover every id in it. If ``failed`` does not restart, no sibling is touched
    and a ``temporary`` or ``transient`` child is removed (a ``permanent`` one
    stays, stopped). Otherwise the strategy picks the siblings to stop and start
    again; ``temporary`` siblings that it stops are removed instead of restarted.
    Raises ``ValueError`` for an unknown strategy or a ``failed`` not in ``order``,
    ``KeyError`` for an id missing from ``restart_types``.
    """
    ids = tuple(order)
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    if failed not in ids:
        raise ValueError(f"child {failed!r} is not among {ids}")
    failed_type = restart_types[failed]
    if not should_restart(failed_type, exit):
        leaves = failed_type != "permanent"
        return RestartPlan(
            stop=(), start=(), remove=(failed,) if leaves else (), restart_counts=False
        )
    if strategy == "one_for_one":
        affected: tuple[str, ...] = ()
    elif strategy == "one_for_all":
        affected = tuple(child for child in ids if child != failed)
    else:
        affected = ids[ids.index(failed) + 1 :]
    kept = {child for child in affected if restart_types[child] != "temporary"}
    return RestartPlan(
        stop=tuple(reversed(affected)),
        start=tuple(child for child in ids if child == failed or child in kept),
        remove=tuple(child for child in affected if child not in kept),
        restart_counts=True,
    )


def _check_intensity(max_restarts: int, period_s: float) -> None:
    if isinstance(max_restarts, bool) or not isinstance(max_restarts, int):
        raise PolicyConfigError(f"max_restarts must be an int, got {max_restarts!r}")
    if max_restarts < 0:
        raise PolicyConfigError(f"max_restarts must be >= 0, got {max_restarts}")
    if not 0 < period_s < math.inf:  # written so that NaN fails too
        raise PolicyConfigError(f"period_s must be finite and > 0, got {period_s}")


class RestartIntensity:
    """Restarts in a sliding window: more than ``max_restarts`` within ``period_s`` is too many.

    A restart recorded at ``t`` counts while ``now - t < period_s`` on ``clock``.
    Raises :class:`~supervision.errors.PolicyConfigError` for a negative or
    non-integer ``max_restarts`` or a ``period_s`` that is not finite and > 0.
    """

    def __init__(self, max_restarts: int = 3, period_s: float = 5.0, *, clock: Clock) -> None:
        _check_intensity(max_restarts, period_s)
        self.max_restarts = max_restarts
        self.period_s = period_s
        self._clock = clock
        self._times: deque[float] = deque()

    def record(self) -> bool:
        """Record a restart now; True when that makes more than ``max_restarts`` in the window."""
        now = self._clock.now()
        self._forget_before(now)
        self._times.append(now)
        return len(self._times) > self.max_restarts

    def recent(self) -> int:
        """How many recorded restarts are still inside the window."""
        self._forget_before(self._clock.now())
        return len(self._times)

    def _forget_before(self, now: float) -> None:
        while self._times and now - self._times[0] >= self.period_s:
            self._times.popleft()


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """Strategy, restart intensity and restart backoff; bad values raise PolicyConfigError.

    More than ``max_restarts`` restarts within ``period_s`` escalate. The wait
    before a restart is :meth:`backoff_s` of the failed child's streak of
    consecutive restarts; a child that ran for ``period_s`` or longer before it
    failed starts a new streak.
    """

    strategy: Strategy = "one_for_one"
    max_restarts: int = 3
    period_s: float = 5.0
    restart_backoff_s: float = 0.0
    restart_backoff_max_s: float = 5.0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise PolicyConfigError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        _check_intensity(self.max_restarts, self.period_s)
        if not 0 <= self.restart_backoff_s <= self.restart_backoff_max_s < math.inf:
            raise PolicyConfigError(
                "need 0 <= restart_backoff_s <= restart_backoff_max_s < inf, got "
                f"{self.restart_backoff_s} and {self.restart_backoff_max_s}"
            )

    def backoff_s(self, streak: int) -> float:
        """The wait before a restart that follows ``streak`` consecutive ones (0 for the first).

        ``restart_backoff_s * 2**streak`` capped at ``restart_backoff_max_s``; 0.0
        when the backoff is off.
        """
        if self.restart_backoff_s <= 0:
            return 0.0
        # The exponent is clamped: 2.0**1100 overflows, and the cap applies long before.
        return min(self.restart_backoff_max_s, self.restart_backoff_s * 2.0 ** min(streak, 64))
