"""Circuit breaker: stop calling a provider that keeps failing, probe it after a cooldown.

States and transitions (``on_transition(key, old, new)`` is called for each):

    CLOSED ──(failure rate >= failure_rate over >= min_calls in window_s,
    │          or consecutive_failures in a row)──────────────────> OPEN
    OPEN ──(cooldown_s elapsed; evaluated lazily when read)───────> HALF_OPEN
    HALF_OPEN ──(half_open_successes successes)───────────────────> CLOSED
    HALF_OPEN ──(any failure; the cooldown starts afresh)─────────> OPEN

A call goes ``acquire()`` → the call → exactly one of ``record_success()``,
``record_failure()`` or ``release()`` (the call ended without a verdict: cancelled,
or an error that says nothing about the provider). ``acquire`` raises
:class:`~supervision.errors.CircuitOpenError` when open, or when half-open with
every probe slot taken; nothing else here raises except a callback.

Outcomes are not tied to the ``acquire`` that admitted them: a call admitted while
closed that ends after the breaker went half-open counts as a probe outcome. That is
deliberate: any real success is evidence of recovery and any real failure evidence
against it. Outcomes arriving while open are dropped (the verdict is already in).
The state machine is synchronous and owns no locks: callers on one event loop (or
one actor) never interleave inside a method.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from supervision.clock import Clock
from supervision.errors import CircuitOpenError, PolicyConfigError

__all__ = ["BreakerConfig", "BreakerRegistry", "BreakerState", "CircuitBreaker", "OnTransition"]


class BreakerState(StrEnum):
    """Where the breaker stands; a ``str``, so it compares to and prints as its value."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


OnTransition = Callable[[str, BreakerState, BreakerState], None]


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When to open, how long to stay open, how to probe; raises :class:`PolicyConfigError`.

    The breaker opens on rate only once ``min_calls`` outcomes are in the rolling
    ``window_s``; ``consecutive_failures`` (``None``: off) opens it sooner when a
    provider is plainly down. Consecutive failures count within the window too.
    """

    window_s: float = 30.0
    min_calls: int = 10
    failure_rate: float = 0.5
    consecutive_failures: int | None = 5
    cooldown_s: float = 15.0
    half_open_probes: int = 1
    half_open_successes: int = 1

    def __post_init__(self) -> None:
        # Comparisons are written so that NaN fails them too.
        if not self.window_s > 0:
            raise PolicyConfigError(f"window_s must be > 0, got {self.window_s}")
        if not 0 < self.failure_rate <= 1:
            raise PolicyConfigError(f"failure_rate must be in (0, 1], got {self.failure_rate}")
        if not self.cooldown_s >= 0:
            raise PolicyConfigError(f"cooldown_s must be >= 0, got {self.cooldown_s}")
        counts = {
            "min_calls": self.min_calls,
            "half_open_probes": self.half_open_probes,
            "half_open_successes": self.half_open_successes,
            "consecutive_failures": self.consecutive_failures,
        }
        for name, value in counts.items():
            if value is None and name == "consecutive_failures":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PolicyConfigError(f"{name} must be an int >= 1, got {value!r}")


class CircuitBreaker:
    """One breaker for one key (e.g. ``"anthropic:claude-sonnet-4-5"``).

    Keeps a deque of ``(timestamp, ok)`` pruned to ``window_s`` with running
    counts, so every operation is O(1) amortised. ``on_transition`` runs
    synchronously after the state has changed; if it raises, the exception reaches
    the caller of the method that caused the transition, the new state stands.
    """

    def __init__(
        self,
        key: str,
        config: BreakerConfig,
        clock: Clock,
        *,
        on_transition: OnTransition | None = None,
    ) -> None:
        self.key = key
        self.config = config
        self._clock = clock
        self._on_transition = on_transition
        self._state = BreakerState.CLOSED
        self._window: deque[tuple[float, bool]] = deque()
        self._failures = 0  # failures in the window
        self._consecutive = 0  # trailing failures in the window
        self._opened_at: float | None = None
        self._probes = 0  # half-open trial calls in flight
        self._probe_successes = 0
        self._transitions = 0

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose cooldown has passed turns half-open here."""
        if self._state is BreakerState.OPEN and self._retry_in(self._clock.now()) <= 0:
            self._probes = 0
            self._probe_successes = 0
            self._move(BreakerState.HALF_OPEN)
        return self._state

    def acquire(self) -> None:
        """Admit a call or raise :class:`CircuitOpenError`; in half-open, take a probe slot."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.OPEN:
            raise CircuitOpenError(self.key, self._retry_in(self._clock.now()))
        if self._probes >= self.config.half_open_probes:
            raise CircuitOpenError(self.key, 0.0)
        self._probes += 1

    def record_success(self) -> None:
        """Count a successful call; in half-open, enough of them close the breaker."""
        state = self.state
        if state is BreakerState.CLOSED:
            self._record(ok=True)
        elif state is BreakerState.HALF_OPEN:
            self._free_probe()
            self._probe_successes += 1
            if self._probe_successes >= self.config.half_open_successes:
                self._close()

    def record_failure(self) -> None:
        """Count a failed call; may open the breaker. Half-open: reopen, with a new cooldown."""
        state = self.state
        if state is BreakerState.CLOSED:
            self._record(ok=False)
            if self._should_open():
                self._open()
        elif state is BreakerState.HALF_OPEN:
            self._free_probe()
            self._open()

    def release(self) -> None:
        """End a call without a verdict; frees its probe slot when half-open, else does nothing."""
        if self.state is BreakerState.HALF_OPEN:
            self._free_probe()

    def snapshot(self) -> dict[str, Any]:
        """Plain data for dashboards: key, state, window counts, opened_at, retry_in_s and
        the number of transitions so far."""
        state = self.state
        now = self._clock.now()
        self._prune(now)
        calls = len(self._window)
        return {
            "key": self.key,
            "state": state.value,
            "failures": self._failures,
            "calls": calls,
            "failure_rate": self._failures / calls if calls else 0.0,
            "opened_at": self._opened_at,
            "retry_in_s": self._retry_in(now) if state is BreakerState.OPEN else 0.0,
            "transitions": self._transitions,
        }

    # ------------------------------------------------------------------ internals

    def _retry_in(self, now: float) -> float:
        if self._opened_at is None:  # only asked while open, where it is always set
            return 0.0
        return max(0.0, self._opened_at + self.config.cooldown_s - now)

    def _record(self, *, ok: bool) -> None:
        now = self._clock.now()
        self._window.append((now, ok))
        if ok:
            self._consecutive = 0
        else:
            self._failures += 1
            self._consecutive += 1
        self._prune(now)

    def _prune(self, now: float) -> None:
        horizon = now - self.config.window_s
        while self._window and self._window[0][0] <= horizon:
            _, ok = self._window.popleft()
            if not ok:
                self._failures -= 1
        # The streak is a suffix of the window, so pruning can only shorten it to fit.
        self._consecutive = min(self._consecutive, len(self._window))

    def _should_open(self) -> bool:
        cfg = self.config
        if cfg.consecutive_failures is not None and self._consecutive >= cfg.consecutive_failures:
            return True
        calls = len(self._window)
        # Divide rather than multiply: 0.3 * 10 is 3.0000000000000004 in floats.
        return calls >= cfg.min_calls and self._failures / calls >= cfg.failure_rate

    def _free_probe(self) -> None:
        # Clamped: a straggler admitted before this half-open spell holds no slot.
        self._probes = max(0, self._probes - 1)

    def _open(self) -> None:
        self._opened_at = self._clock.now()
        self._move(BreakerState.OPEN)

    def _close(self) -> None:
        # A fresh window: failures from before the outage must not reopen it at once.
        self._window.clear()
        self._failures = 0
        self._consecutive = 0
        self._opened_at = None
        self._probes = 0
        self._probe_successes = 0
        self._move(BreakerState.CLOSED)

    def _move(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        self._transitions += 1
        if self._on_transition is not None:
            self._on_transition(self.key, old, new)


class BreakerRegistry:
    """One :class:`CircuitBreaker` per key, created on first use with the shared config."""

    def __init__(
        self, config: BreakerConfig, clock: Clock, *, on_transition: OnTransition | None = None
    ) -> None:
        self.config = config
        self._clock = clock
        self._on_transition = on_transition
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, key: str) -> CircuitBreaker:
        """The breaker for ``key``; the same object on every call."""
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(
                key, self.config, self._clock, on_transition=self._on_transition
            )
            self._breakers[key] = breaker
        return breaker

    def snapshot(self) -> list[dict[str, Any]]:
        """Every breaker's snapshot, sorted by key."""
        return [self._breakers[k].snapshot() for k in sorted(self._breakers)]
