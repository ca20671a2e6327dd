"""Retry policy: backoff bounds, Retry-After, deadline, attempts, codes, and retry_call on a FakeClock."""

# ruff: noqa: S311 - seeded random.Random is the point: jitter must be reproducible here

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.errors import ProviderError
from supervision.errors import PolicyConfigError
from supervision.retry import (
    AttemptEvent,
    RetryableFailure,
    RetryDecision,
    RetryPolicy,
    as_failure,
    decide,
    retry_call,
)
from supervision.testing import FakeClock


@dataclass(eq=False)  # exceptions compare and hash by identity
class Failure(Exception):  # noqa: N818 - a scripted failure, named for what it is
    code: str = "server_error"
    retryable: bool = True
    retry_after_s: float | None = None


class BlockingClock(FakeClock):
    """A FakeClock whose sleep never ends, so a test can cancel a task mid-sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await asyncio.Event().wait()


def script(*outcomes: Any, clock: FakeClock | None = None, took_s: float = 0.0) -> Any:
    """An async callable that raises or returns the given outcomes in turn; counts calls."""
    queue = list(outcomes)

    async def fn() -> Any:
        fn.calls += 1  # type: ignore[attr-defined]
        if clock is not None:
            clock.advance(took_s)
        outcome = queue.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    fn.calls = 0  # type: ignore[attr-defined]
    return fn


NO_JITTER = RetryPolicy(jitter="none", base_delay_s=1.0, multiplier=2.0, max_delay_s=20.0)


# ------------------------------------------------------------------- policy settings


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": 2.5},
        {"max_attempts": True},
        {"base_delay_s": -0.1},
        {"base_delay_s": float("nan")},
        {"base_delay_s": 30.0, "max_delay_s": 20.0},
        {"max_delay_s": float("inf")},
        {"multiplier": 0.5},
        {"deadline_s": 0.0},
        {"deadline_s": -1.0},
        {"jitter": "equal"},
        {"max_retry_after_s": -1.0},
        {"retry_codes": "rate_limited"},
        {"retry_codes": frozenset({1})},
    ],
    ids=repr,
)
def test_bad_settings_raise_config_error(kwargs: dict[str, Any]) -> None:
    """Impossible policy settings raise PolicyConfigError at construction."""
    with pytest.raises(PolicyConfigError):
        RetryPolicy(**kwargs)


def test_retry_codes_accept_any_iterable() -> None:
    """retry_codes given as a list (from config) is stored as a frozenset."""
    policy = RetryPolicy(retry_codes=["timeout"])  # type: ignore[arg-type]
    assert policy.retry_codes == frozenset({"timeout"})


# ------------------------------------------------------------------------- backoff


@pytest.mark.parametrize(
    ("attempt", "cap"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (6, 16.0), (7, 20.0), (50, 20.0), (10**6, 20.0)],
)
def test_cap_grows_by_multiplier_and_clamps(attempt: int, cap: float) -> None:
    """The cap is base * multiplier^(attempt-1), clamped at max_delay_s, even for huge attempts."""
    policy = RetryPolicy()
    assert policy.cap(attempt) == cap
    assert policy.backoff(attempt, random.Random(0)) <= cap


def test_full_jitter_stays_within_zero_and_cap() -> None:
    """With a seeded rng, full-jitter delays spread over [0, cap] and never leave it."""
    policy = RetryPolicy()
    rng = random.Random(1234)
    for attempt in range(1, 10):
        cap = policy.cap(attempt)
        draws = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in draws)
        assert min(draws) < cap * 0.1 and max(draws) > cap * 0.9  # actually jittered


def test_seeded_rng_reproduces_delays() -> None:
    """The same seed gives the same delays."""
    policy = RetryPolicy()
    first = [policy.backoff(a, random.Random(7)) for a in range(1, 6)]
    assert first == [policy.backoff(a, random.Random(7)) for a in range(1, 6)]


def test_no_jitter_is_the_cap() -> None:
    """jitter='none' returns exactly the cap."""
    assert [NO_JITTER.backoff(a, random.Random(0)) for a in (1, 2, 3, 6)] == [1.0, 2.0, 4.0, 20.0]


def test_backoff_attempt_is_one_based() -> None:
    """Attempt 0 is a caller bug and raises ValueError."""
    with pytest.raises(ValueError, match="1-based"):
        NO_JITTER.backoff(0, random.Random(0))


@settings(max_examples=300, database=None, deadline=None)
@given(
    attempt=st.integers(min_value=1, max_value=100_000),
    base=st.floats(min_value=0.0, max_value=10.0),
    extra=st.floats(min_value=0.0, max_value=100.0),
    multiplier=st.floats(min_value=1.0, max_value=10.0),
    jitter=st.sampled_from(["full", "none"]),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_is_always_within_bounds(
    *, attempt: int, base: float, extra: float, multiplier: float, jitter: Any, seed: int
) -> None:
    """For any settings and attempt, 0 <= delay <= min(max_delay, base * multiplier^(n-1))."""
    policy = RetryPolicy(
        base_delay_s=base, max_delay_s=base + extra, multiplier=multiplier, jitter=jitter
    )
    delay = policy.backoff(attempt, random.Random(seed))
    assert 0.0 <= delay <= policy.max_delay_s
    # The uncapped bound, computed in logs so huge attempts do not overflow.
    if base > 0:
        log_raw = math.log(base) + (attempt - 1) * math.log(multiplier)
        if log_raw < math.log(policy.max_delay_s):
            assert delay <= math.exp(log_raw) * (1 + 1e-9)
    else:
        assert delay == 0.0
    if jitter == "none":
        assert delay == policy.cap(attempt)


# -------------------------------------------------------------------------- decide


def _decide(
    policy: RetryPolicy, failure: RetryableFailure, *, attempt: int = 1, now: float = 0.0
) -> RetryDecision:
    return decide(
        policy, attempt=attempt, failure=failure, started_at=0.0, now=now, rng=random.Random(0)
    )


@pytest.mark.parametrize(
    ("policy", "failure", "attempt", "now", "expected"),
    [
        # retryable: the plain backoff
        (NO_JITTER, Failure(), 1, 0.0, RetryDecision(True, 1.0, "retryable")),
        (NO_JITTER, Failure(), 2, 0.0, RetryDecision(True, 2.0, "retryable")),
        # not retryable stops at once, whatever else holds
        (NO_JITTER, Failure(retryable=False), 1, 0.0, RetryDecision(False, 0.0, "not_retryable")),
        (NO_JITTER, Failure(retryable=False), 3, 0.0, RetryDecision(False, 0.0, "not_retryable")),
        # attempts exhausted: max_attempts counts the first attempt
        (NO_JITTER, Failure(), 3, 0.0, RetryDecision(False, 0.0, "attempts_exhausted")),
        # Retry-After is a floor on the backoff...
        (NO_JITTER, Failure(retry_after_s=3.0), 1, 0.0, RetryDecision(True, 3.0, "retryable")),
        (NO_JITTER, Failure(retry_after_s=0.5), 2, 0.0, RetryDecision(True, 2.0, "retryable")),
        # ...unless ignored by the policy
        (
            RetryPolicy(jitter="none", base_delay_s=1.0, honor_retry_after=False),
            Failure(retry_after_s=300.0),
            1,
            0.0,
            RetryDecision(True, 1.0, "retryable"),
        ),
        # a Retry-After beyond max_retry_after_s means give up (fall back) now
        (
            NO_JITTER,
            Failure(retry_after_s=60.5),
            1,
            0.0,
            RetryDecision(False, 0.0, "retry_after_too_long"),
        ),
        (NO_JITTER, Failure(retry_after_s=60.0), 1, 0.0, RetryDecision(True, 60.0, "retryable")),
        # a garbled (NaN) Retry-After is ignored
        (
            NO_JITTER,
            Failure(retry_after_s=float("nan")),
            1,
            0.0,
            RetryDecision(True, 1.0, "retryable"),
        ),
        # deadline: stop before the sleep would cross started_at + deadline_s (60)
        (NO_JITTER, Failure(), 2, 58.0, RetryDecision(True, 2.0, "retryable")),
        (NO_JITTER, Failure(), 2, 58.5, RetryDecision(False, 0.0, "deadline")),
        (NO_JITTER, Failure(retry_after_s=30.0), 1, 31.0, RetryDecision(False, 0.0, "deadline")),
        # no deadline: any wait is fine
        (
            RetryPolicy(jitter="none", base_delay_s=1.0, deadline_s=None),
            Failure(),
            1,
            1e9,
            RetryDecision(True, 1.0, "retryable"),
        ),
        # retry_codes narrows, never widens
        (
            RetryPolicy(jitter="none", retry_codes=frozenset({"rate_limited"})),
            Failure(code="server_error"),
            1,
            0.0,
            RetryDecision(False, 0.0, "not_retryable"),
        ),
        (
            RetryPolicy(jitter="none", retry_codes=frozenset({"rate_limited"})),
            Failure(code="rate_limited"),
            1,
            0.0,
            RetryDecision(True, 0.5, "retryable"),
        ),
        (
            RetryPolicy(jitter="none", retry_codes=frozenset({"rate_limited"})),
            Failure(code="rate_limited", retryable=False),
            1,
            0.0,
            RetryDecision(False, 0.0, "not_retryable"),
        ),
    ],
)
def test_decide_table(
    policy: RetryPolicy, failure: Failure, attempt: int, now: float, expected: RetryDecision
) -> None:
    """decide() gives the expected verdict, delay and reason for each case."""
    assert _decide(policy, failure, attempt=attempt, now=now) == expected


def test_retry_after_floors_a_jittered_delay() -> None:
    """With full jitter, a Retry-After still bounds the delay from below."""
    policy = RetryPolicy(base_delay_s=10.0, max_delay_s=20.0)
    delays = [
        decide(
            policy,
            attempt=1,
            failure=Failure(retry_after_s=4.0),
            started_at=0.0,
            now=0.0,
            rng=random.Random(seed),
        ).delay_s
        for seed in range(50)
    ]
    assert all(4.0 <= d <= 10.0 for d in delays) and any(d > 4.0 for d in delays)


# ----------------------------------------------------------------------- as_failure


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (Failure("timeout", True, 2.0), ("timeout", True, 2.0)),
        (
            ProviderError("x", code="rate_limited", retryable=True, retry_after_s=1),
            ("rate_limited", True, 1),
        ),
        (ProviderError("x", code="auth"), ("auth", False, None)),
        (ValueError("plain"), None),
        (Failure(code=5), None),  # type: ignore[arg-type]
        (Failure(retryable="yes"), None),  # type: ignore[arg-type]
        (
            Failure(retry_after_s=True),
            ("server_error", True, None),
        ),  # a bool is no number of seconds
        (Failure(retry_after_s="soon"), ("server_error", True, None)),  # type: ignore[arg-type]
    ],
    ids=repr,
)
def test_as_failure_reads_code_and_retryable(exc: BaseException, expected: Any) -> None:
    """Only exceptions with a str code and a bool retryable are failures; odd Retry-After reads as None."""
    failure = as_failure(exc)
    got = None if failure is None else (failure.code, failure.retryable, failure.retry_after_s)
    assert got == expected


# ----------------------------------------------------------------------- retry_call


async def test_retry_call_sleeps_the_decided_delays_and_returns() -> None:
    """Two retryable failures then success: sleeps 1 s and 2 s on the clock, returns the value."""
    clock = FakeClock()
    fn = script(Failure(), Failure(), "ok")
    assert await retry_call(fn, NO_JITTER, clock=clock) == "ok"
    assert clock.sleeps == [1.0, 2.0] and clock.now() == 3.0 and fn.calls == 3


async def test_retry_call_with_jitter_sleeps_what_decide_says() -> None:
    """With full jitter, the sleeps are exactly the seeded rng's draws within each cap."""
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=4)
    twin = random.Random(99)
    expected = [policy.backoff(a, twin) for a in (1, 2, 3)]
    fn = script(Failure(), Failure(), Failure(), 42)
    assert await retry_call(fn, policy, clock=clock, rng=random.Random(99)) == 42
    assert clock.sleeps == expected


async def test_retry_call_reraises_the_last_failure_when_exhausted() -> None:
    """After max_attempts failures, the last failure itself is raised."""
    clock = FakeClock()
    last = Failure(code="overloaded")
    fn = script(Failure(), Failure(), last)
    with pytest.raises(Failure) as caught:
        await retry_call(fn, NO_JITTER, clock=clock)
    assert caught.value is last and fn.calls == 3 and clock.sleeps == [1.0, 2.0]


@pytest.mark.parametrize(
    "exc",
    [Failure(retryable=False), ValueError("a bug, not a failure")],
    ids=["not_retryable", "not_a_failure"],
)
async def test_retry_call_stops_at_once(exc: Exception) -> None:
    """A non-retryable failure or a non-failure exception propagates on the first attempt."""
    clock = FakeClock()
    fn = script(exc, "never")
    with pytest.raises(type(exc)):
        await retry_call(fn, NO_JITTER, clock=clock)
    assert fn.calls == 1 and clock.sleeps == []


async def test_retry_call_stops_before_crossing_the_deadline() -> None:
    """Calls taking 1 s each with deadline 5 s: one retry (t=3), then the 4 s wait would end past 5."""
    clock = FakeClock()
    policy = RetryPolicy(jitter="none", base_delay_s=2.0, deadline_s=5.0, max_attempts=10)
    events: list[AttemptEvent] = []
    fn = script(Failure(), Failure(), "late", clock=clock, took_s=1.0)
    with pytest.raises(Failure):
        await retry_call(fn, policy, clock=clock, on_attempt=events.append)
    assert clock.sleeps == [2.0] and fn.calls == 2 and events[-1].reason == "deadline"


async def test_retry_call_honours_provider_retry_after() -> None:
    """A ProviderError's Retry-After is waited out before the retry (default failure reader)."""
    clock = FakeClock()
    fn = script(ProviderError("429", code="rate_limited", retryable=True, retry_after_s=3.0), "ok")
    assert await retry_call(fn, RetryPolicy(jitter="none"), clock=clock) == "ok"
    assert clock.sleeps == [3.0]


async def test_retry_call_gives_up_on_a_long_retry_after() -> None:
    """A Retry-After beyond max_retry_after_s raises at once so a fallback can take over."""
    clock = FakeClock()
    exc = ProviderError("529", code="overloaded", retryable=True, retry_after_s=120.0)
    with pytest.raises(ProviderError):
        await retry_call(script(exc, "ok"), RetryPolicy(), clock=clock)
    assert clock.sleeps == []


async def test_retry_call_custom_failure_reader() -> None:
    """is_failure decides what counts as a failure, here a bare TimeoutError."""
    clock = FakeClock()

    def timeouts(exc: BaseException) -> RetryableFailure | None:
        return Failure(code="timeout") if isinstance(exc, TimeoutError) else None

    fn = script(TimeoutError(), "ok")
    assert await retry_call(fn, NO_JITTER, clock=clock, is_failure=timeouts) == "ok"
    assert clock.sleeps == [1.0]


async def test_cancelled_error_from_the_call_propagates() -> None:
    """CancelledError raised by the call is never retried."""
    clock = FakeClock()
    fn = script(asyncio.CancelledError(), "never")
    with pytest.raises(asyncio.CancelledError):
        await retry_call(fn, NO_JITTER, clock=clock)
    assert fn.calls == 1 and clock.sleeps == []


async def test_cancellation_during_backoff_propagates() -> None:
    """Cancelling the task while it sleeps between attempts ends it without another attempt."""
    clock = BlockingClock()
    fn = script(Failure(), "never")
    task = asyncio.create_task(retry_call(fn, NO_JITTER, clock=clock))
    await asyncio.wait_for(clock.sleeping.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fn.calls == 1 and clock.sleeps == [1.0]


async def test_on_attempt_reports_every_attempt() -> None:
    """on_attempt sees each failure with its code, delay and reason, then the success."""
    clock = FakeClock()
    events: list[AttemptEvent] = []
    fn = script(Failure(code="timeout"), Failure(code="overloaded", retry_after_s=5.0), "ok")
    await retry_call(fn, NO_JITTER, clock=clock, on_attempt=events.append)
    assert events == [
        AttemptEvent(1, "failure", "timeout", 1.0, "retryable"),
        AttemptEvent(2, "failure", "overloaded", 5.0, "retryable"),
        AttemptEvent(3, "success", None, None, None),
    ]


async def test_on_attempt_reports_the_final_failure() -> None:
    """The failure that ends the run is reported with no delay and the stopping reason."""
    clock = FakeClock()
    events: list[AttemptEvent] = []
    fn = script(Failure(code="auth", retryable=False))
    with pytest.raises(Failure):
        await retry_call(fn, NO_JITTER, clock=clock, on_attempt=events.append)
    assert events == [AttemptEvent(1, "failure", "auth", None, "not_retryable")]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("exponential", [0.1, 0.2, 0.4]), ("linear", [0.1, 0.2, 0.3]), ("fixed", [0.1, 0.1, 0.1])],
)
def test_strategy_shapes_the_delay_cap(strategy: str, expected: list[float]) -> None:
    """exponential doubles, linear adds base per attempt, fixed stays at base."""
    policy = RetryPolicy(base_delay_s=0.1, strategy=strategy, jitter="none")  # type: ignore[arg-type]
    assert [round(policy.cap(n), 6) for n in (1, 2, 3)] == expected


def test_unknown_strategy_is_a_config_error() -> None:
    """A misspelt strategy is refused when the policy is built."""
    with pytest.raises(PolicyConfigError):
        RetryPolicy(strategy="sometimes")  # type: ignore[arg-type]
