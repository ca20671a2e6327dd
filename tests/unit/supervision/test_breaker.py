"""Circuit breaker: every transition, probe slots, the rolling window, callbacks and the registry."""

from __future__ import annotations

from typing import Any

import pytest

from supervision.breaker import BreakerConfig, BreakerRegistry, BreakerState, CircuitBreaker
from supervision.errors import CircuitOpenError, PolicyConfigError
from supervision.testing import FakeClock

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

CONFIG = BreakerConfig(
    window_s=10.0, min_calls=4, failure_rate=0.5, consecutive_failures=3, cooldown_s=5.0
)


def make(**overrides: Any) -> tuple[CircuitBreaker, FakeClock, list[tuple[str, str, str]]]:
    """A breaker on a fresh FakeClock, recording its transitions."""
    clock = FakeClock()
    seen: list[tuple[str, str, str]] = []
    fields = {
        "window_s": CONFIG.window_s,
        "min_calls": CONFIG.min_calls,
        "failure_rate": CONFIG.failure_rate,
        "consecutive_failures": CONFIG.consecutive_failures,
        "cooldown_s": CONFIG.cooldown_s,
        **overrides,
    }
    breaker = CircuitBreaker(
        "p:m",
        BreakerConfig(**fields),
        clock,
        on_transition=lambda key, old, new: seen.append((key, old.value, new.value)),
    )
    return breaker, clock, seen


def feed(breaker: CircuitBreaker, outcomes: str) -> None:
    """Run calls through the breaker: 'S' records a success, 'F' a failure."""
    for outcome in outcomes:
        breaker.acquire()
        if outcome == "S":
            breaker.record_success()
        else:
            breaker.record_failure()


def trip(breaker: CircuitBreaker) -> None:
    feed(breaker, "FFF")
    assert breaker.state is OPEN


# ---------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_s": 0.0},
        {"window_s": float("nan")},
        {"min_calls": 0},
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"consecutive_failures": 0},
        {"cooldown_s": -1.0},
        {"half_open_probes": 0},
        {"half_open_successes": 0},
        {"min_calls": 2.5},
    ],
    ids=repr,
)
def test_bad_settings_raise_config_error(kwargs: dict[str, Any]) -> None:
    """Impossible breaker settings raise PolicyConfigError."""
    with pytest.raises(PolicyConfigError):
        BreakerConfig(**kwargs)


# ------------------------------------------------------------------ closed → open


@pytest.mark.parametrize(
    ("overrides", "outcomes", "expected"),
    [
        ({}, "SFSF", OPEN),  # 2/4 failures at min_calls: the rate is reached
        ({}, "SFS", CLOSED),  # below min_calls the rate alone never opens
        ({}, "SSSF", CLOSED),  # 1/4 is below the rate
        ({}, "FSFS", CLOSED),  # a success never opens it, even at the rate...
        ({}, "FSFSF", OPEN),  # ...the next failure does
        ({"failure_rate": 0.3, "min_calls": 10, "consecutive_failures": None}, "SSSSSSSFFF", OPEN),
        ({}, "FFF", OPEN),  # consecutive failures open even below min_calls
        ({"consecutive_failures": None}, "FFF", CLOSED),  # ...unless disabled
        ({"min_calls": 10}, "FFSFF", CLOSED),  # a success breaks the streak
    ],
    ids=repr,
)
def test_closed_to_open(overrides: dict[str, Any], outcomes: str, expected: BreakerState) -> None:
    """The breaker opens on failure rate (with min_calls) or on consecutive failures."""
    breaker, _, _ = make(**overrides)
    feed(breaker, outcomes)
    assert breaker.state is expected


def test_open_rejects_with_retry_in() -> None:
    """An open breaker refuses calls with its key and the time left in the cooldown."""
    breaker, clock, _ = make()
    trip(breaker)
    clock.advance(2.0)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.acquire()
    assert caught.value.key == "p:m" and caught.value.retry_in_s == 3.0
    assert caught.value.code == "circuit_open" and not caught.value.retryable


def test_outcomes_while_open_are_dropped() -> None:
    """A straggler's outcome arriving while open changes nothing."""
    breaker, _, _ = make()
    trip(breaker)
    before = breaker.snapshot()
    breaker.record_success()
    breaker.record_failure()
    breaker.release()
    assert breaker.snapshot() == before


# ---------------------------------------------------------------- open → half_open


def test_open_turns_half_open_after_cooldown() -> None:
    """After cooldown_s on the clock the breaker reads half-open (lazily) and admits a probe."""
    breaker, clock, seen = make()
    trip(breaker)
    clock.advance(4.999)
    assert breaker.state is OPEN
    clock.advance(0.001)
    assert seen[-1] == ("p:m", "closed", "open")  # nothing happens until someone looks
    assert breaker.state is HALF_OPEN
    assert seen[-1] == ("p:m", "open", "half_open")
    breaker.acquire()


@pytest.mark.parametrize("probes", [1, 2, 3])
def test_half_open_limits_probes(probes: int) -> None:
    """Half-open admits half_open_probes calls at once, then refuses with retry_in_s 0."""
    breaker, clock, _ = make(half_open_probes=probes)
    trip(breaker)
    clock.advance(5.0)
    for _ in range(probes):
        breaker.acquire()
    with pytest.raises(CircuitOpenError) as caught:
        breaker.acquire()
    assert caught.value.retry_in_s == 0.0


def test_release_frees_a_probe_slot() -> None:
    """A probe that ends without a verdict frees its slot for the next caller."""
    breaker, clock, _ = make()
    trip(breaker)
    clock.advance(5.0)
    breaker.acquire()
    with pytest.raises(CircuitOpenError):
        breaker.acquire()
    breaker.release()
    breaker.acquire()
    assert breaker.state is HALF_OPEN


def test_release_while_closed_is_a_no_op() -> None:
    """Releasing in closed state records nothing."""
    breaker, _, _ = make()
    breaker.acquire()
    breaker.release()
    assert breaker.snapshot()["calls"] == 0 and breaker.state is CLOSED


# --------------------------------------------------------------- half_open → ...


@pytest.mark.parametrize("needed", [1, 2, 3])
def test_half_open_closes_after_enough_successes(needed: int) -> None:
    """half_open_successes probe successes close the breaker with a fresh window."""
    breaker, clock, _ = make(half_open_successes=needed)
    trip(breaker)
    clock.advance(5.0)
    for _ in range(needed - 1):
        feed(breaker, "S")
        assert breaker.state is HALF_OPEN
    feed(breaker, "S")
    assert breaker.state is CLOSED
    snap = breaker.snapshot()
    assert (snap["calls"], snap["failures"], snap["opened_at"]) == (0, 0, None)
    feed(breaker, "FF")  # the old streak is gone: two fresh failures do not reopen it
    assert breaker.state is CLOSED


def test_half_open_failure_reopens_with_a_fresh_cooldown() -> None:
    """A failed probe reopens the breaker and the cooldown starts again from that moment."""
    breaker, clock, _ = make()
    trip(breaker)
    clock.advance(5.0)
    breaker.acquire()
    clock.advance(1.0)  # the probe takes a second, then fails at t=6
    breaker.record_failure()
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError) as caught:
        breaker.acquire()
    assert caught.value.retry_in_s == 5.0
    clock.advance(4.0)
    assert breaker.state is OPEN
    clock.advance(1.0)
    assert breaker.state is HALF_OPEN


# ------------------------------------------------------------------ rolling window


def test_rolling_window_forgets_old_failures() -> None:
    """Failures older than window_s no longer count toward the rate."""
    breaker, clock, _ = make(consecutive_failures=None)
    feed(breaker, "FF")
    clock.advance(10.0)  # exactly window_s later: the two failures fall out
    feed(breaker, "SF")  # 1/2 in the window; with the old ones it would be 3/4
    assert breaker.state is CLOSED
    snap = breaker.snapshot()
    assert (snap["calls"], snap["failures"], snap["failure_rate"]) == (2, 1, 0.5)


def test_consecutive_failures_count_within_the_window() -> None:
    """A streak of failures spread beyond window_s does not open the breaker."""
    breaker, clock, _ = make(min_calls=10)
    feed(breaker, "FF")
    clock.advance(11.0)
    feed(breaker, "F")
    assert breaker.state is CLOSED
    feed(breaker, "FF")
    assert breaker.state is OPEN


# ------------------------------------------------------- callbacks and snapshots


def test_on_transition_sees_the_whole_cycle() -> None:
    """on_transition is called with (key, old, new) for every transition, in order."""
    breaker, clock, seen = make()
    trip(breaker)
    clock.advance(5.0)
    feed(breaker, "F")  # probe fails
    clock.advance(5.0)
    feed(breaker, "S")  # probe succeeds
    assert seen == [
        ("p:m", "closed", "open"),
        ("p:m", "open", "half_open"),
        ("p:m", "half_open", "open"),
        ("p:m", "open", "half_open"),
        ("p:m", "half_open", "closed"),
    ]
    assert breaker.snapshot()["transitions"] == 5


def test_snapshot_while_open() -> None:
    """The snapshot reports state, window counts, opening time and time left."""
    breaker, clock, _ = make()
    clock.advance(100.0)
    feed(breaker, "SFF")
    feed(breaker, "F")
    clock.advance(1.5)
    assert breaker.snapshot() == {
        "key": "p:m",
        "state": "open",
        "failures": 3,
        "calls": 4,
        "failure_rate": 0.75,
        "opened_at": 100.0,
        "retry_in_s": 3.5,
        "transitions": 1,
    }


def test_breaker_state_is_a_str() -> None:
    """BreakerState values compare and format as plain strings."""
    state: str = BreakerState.HALF_OPEN
    assert state == "half_open" and f"{BreakerState.OPEN}" == "open"
    assert BreakerState("closed") is BreakerState.CLOSED


# ------------------------------------------------------------------------ registry


def test_registry_gives_one_breaker_per_key() -> None:
    """get() creates a breaker per key once; keys fail independently; snapshot is sorted."""
    clock = FakeClock()
    seen: list[tuple[str, BreakerState, BreakerState]] = []
    registry = BreakerRegistry(
        CONFIG, clock, on_transition=lambda k, old, new: seen.append((k, old, new))
    )
    anthropic = registry.get("anthropic:claude")
    assert registry.get("anthropic:claude") is anthropic
    gemini = registry.get("gemini:flash")
    feed(anthropic, "FFF")
    assert anthropic.state is OPEN and gemini.state is CLOSED
    assert seen == [("anthropic:claude", CLOSED, OPEN)]
    assert [s["key"] for s in registry.snapshot()] == ["anthropic:claude", "gemini:flash"]
    assert [s["state"] for s in registry.snapshot()] == ["open", "closed"]
