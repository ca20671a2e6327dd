"""Token buckets, the per-provider rate limiter and the bulkhead, all on a FakeClock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from supervision.errors import BulkheadFull, PolicyConfigError, RateLimitExceeded
from supervision.ratelimit import Bulkhead, RateLimit, RateLimiter, TokenBucket
from supervision.testing import FakeClock


class BlockingClock(FakeClock):
    """A FakeClock whose sleep never ends, so a test can cancel a task mid-wait."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await asyncio.Event().wait()


async def until(predicate: Callable[[], bool]) -> None:
    """Let other tasks run until ``predicate`` holds (yields to the loop; never sleeps)."""
    for _ in range(100):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


# ---------------------------------------------------------------------- TokenBucket


@pytest.mark.parametrize(
    ("capacity", "refill"),
    [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.0), (float("nan"), 1.0), (1.0, float("inf"))],
    ids=repr,
)
def test_bucket_rejects_bad_settings(capacity: float, refill: float) -> None:
    """Capacity and refill must be finite numbers > 0."""
    with pytest.raises(PolicyConfigError):
        TokenBucket(capacity, refill, FakeClock())


def test_bucket_refills_over_fake_time() -> None:
    """A drained bucket refills at refill_per_s and never beyond capacity."""
    clock = FakeClock()
    bucket = TokenBucket(10.0, 2.0, clock)
    assert bucket.try_take(10.0) == 0.0 and bucket.available == 0.0
    clock.advance(2.5)
    assert bucket.available == 5.0
    clock.advance(100.0)
    assert bucket.available == 10.0


@pytest.mark.parametrize(
    ("take", "expected_wait", "left"),
    [(1.0, 0.0, 3.0), (4.0, 0.0, 0.0), (5.0, 0.5, 4.0), (7.0, 1.5, 4.0)],
)
def test_try_take_takes_or_says_how_long(take: float, expected_wait: float, left: float) -> None:
    """try_take takes and returns 0, or takes nothing and returns the seconds to wait."""
    clock = FakeClock()
    bucket = TokenBucket(10.0, 2.0, clock)
    bucket.try_take(6.0)
    assert bucket.try_take(take) == expected_wait
    assert bucket.available == left


def test_waiting_the_returned_time_is_enough() -> None:
    """After advancing exactly the returned wait, the take succeeds despite float rounding."""
    clock = FakeClock()
    bucket = TokenBucket(7.0, 1.0 / 3.0, clock)
    bucket.try_take(7.0)
    for amount in (0.1, 1.0, 2.7, 7.0):
        wait = bucket.try_take(amount)
        assert wait > 0
        clock.advance(wait)
        assert bucket.try_take(amount) == 0.0


def test_amount_beyond_capacity_needs_a_full_bucket_then_goes_into_debt() -> None:
    """A take larger than capacity waits for a full bucket, then takes it all (debt)."""
    clock = FakeClock()
    bucket = TokenBucket(10.0, 1.0, clock)
    bucket.try_take(4.0)
    assert bucket.try_take(15.0) == 4.0  # until full, not forever
    clock.advance(4.0)
    assert bucket.try_take(15.0) == 0.0
    assert bucket.available == -5.0
    assert bucket.try_take(1.0) == 6.0


def test_adjust_refunds_up_to_capacity_and_charges_into_debt() -> None:
    """adjust() gives back (capped at capacity) or charges (below zero)."""
    bucket = TokenBucket(10.0, 1.0, FakeClock())
    bucket.adjust(5.0)
    assert bucket.available == 10.0
    bucket.adjust(-13.0)
    assert bucket.available == -3.0


def test_negative_amount_is_a_bug() -> None:
    """A negative take raises ValueError."""
    with pytest.raises(ValueError, match=">= 0"):
        TokenBucket(1.0, 1.0, FakeClock()).try_take(-1.0)


# ---------------------------------------------------------------------- RateLimiter


@pytest.mark.parametrize(
    "kwargs",
    [
        {"requests_per_min": 0.0},
        {"tokens_per_min": -5.0},
        {"max_concurrent": 0},
        {"max_concurrent": 1.5},
        {"max_wait_s": -1.0},
        {"max_wait_s": float("nan")},
    ],
    ids=repr,
)
def test_rate_limit_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    """Impossible limits raise PolicyConfigError."""
    with pytest.raises(PolicyConfigError):
        RateLimit(**kwargs)


async def test_unlimited_never_waits() -> None:
    """With no limits set, acquire returns 0 at once, whatever the tokens."""
    clock = FakeClock()
    limiter = RateLimiter("p", RateLimit(), clock)
    assert [await limiter.acquire(10**9) for _ in range(5)] == [0.0] * 5
    assert clock.sleeps == [] and limiter.bulkhead is None


async def test_requests_per_min_is_enforced() -> None:
    """60 requests/min: a burst of 60 passes, the 61st waits one second on the clock."""
    clock = FakeClock()
    limiter = RateLimiter("p", RateLimit(requests_per_min=60), clock)
    for _ in range(60):
        assert await limiter.acquire() == 0.0
    assert await limiter.acquire() == 1.0
    assert clock.sleeps == [1.0] and clock.now() == 1.0


async def test_tokens_per_min_is_enforced() -> None:
    """600 tokens/min: after 600 tokens, 100 more wait 10 s; requests are unlimited."""
    clock = FakeClock()
    limiter = RateLimiter("p", RateLimit(tokens_per_min=600), clock)
    assert await limiter.acquire(600) == 0.0
    assert await limiter.acquire(0) == 0.0  # no tokens asked, nothing to wait for
    assert await limiter.acquire(100) == 10.0
    assert clock.sleeps == [10.0]


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [(50, 2.0), (400, 10.0)],  # requests bind (1 more at 0.5/s), then tokens (100 more at 10/s)
)
async def test_both_limits_wait_for_the_slower(tokens: int, expected: float) -> None:
    """With both limits, the wait is the longer of the two."""
    clock = FakeClock()
    limiter = RateLimiter("p", RateLimit(requests_per_min=30, tokens_per_min=600), clock)
    for _ in range(30):
        await limiter.acquire(10)  # drains requests, 300 tokens left
    assert await limiter.acquire(tokens) == expected
    assert clock.sleeps == [expected]


async def test_waiters_are_served_one_refill_each() -> None:
    """Concurrent waiters reserve in arrival order and each sleeps exactly once."""
    clock = FakeClock()
    limiter = RateLimiter("p", RateLimit(requests_per_min=60), clock)
    for _ in range(60):
        await limiter.acquire()
    order: list[int] = []

    async def caller(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    async with asyncio.TaskGroup() as tg:
        for i in range(3):
            tg.create_task(caller(i))
    assert order == [0, 1, 2]
    assert clock.sleeps == [1.0, 1.0, 1.0] and clock.now() == 3.0


async def test_no_wait_raises_with_retry_after() -> None:
    """wait=False with no room raises RateLimitExceeded(retry_after_s) and takes nothing."""
    clock = FakeClock()
    limiter = RateLimiter("anthropic", RateLimit(requests_per_min=60), clock)
    for _ in range(60):
        await limiter.acquire(wait=False)
    clock.advance(0.25)
    with pytest.raises(RateLimitExceeded) as caught:
        await limiter.acquire(wait=False)
    assert caught.value.key == "anthropic" and caught.value.retry_after_s == pytest.approx(0.75)
    assert caught.value.retryable and caught.value.code == "rate_limited"
    assert clock.sleeps == []
    clock.advance(0.75)
    assert await limiter.acquire(wait=False) == 0.0  # nothing was taken by the refusal


@pytest.mark.parametrize(("max_wait", "raises"), [(9.9, True), (10.0, False)])
async def test_max_wait_bounds_the_wait(max_wait: float, raises: bool) -> None:
    """A wait longer than max_wait_s raises at once instead of sleeping; equal is fine."""
    clock = FakeClock()
    limiter = RateLimiter("p", RateLimit(tokens_per_min=600, max_wait_s=max_wait), clock)
    await limiter.acquire(600)
    if raises:
        with pytest.raises(RateLimitExceeded) as caught:
            await limiter.acquire(100)
        assert caught.value.retry_after_s == 10.0 and clock.sleeps == []
        assert limiter.token_bucket is not None and limiter.token_bucket.available == 0.0
    else:
        assert await limiter.acquire(100) == 10.0


@pytest.mark.parametrize(
    ("estimated", "actual", "left"),
    [(100, 100, 500.0), (100, 300, 300.0), (100, 900, -300.0), (300, 100, 500.0)],
)
async def test_settle_charges_the_difference(estimated: int, actual: int, left: float) -> None:
    """settle() charges actual - estimated (into debt), or refunds up to capacity."""
    clock = FakeClock()
    limiter = RateLimiter("p", RateLimit(tokens_per_min=600), clock)
    await limiter.acquire(estimated)
    limiter.settle(estimated, actual)
    assert limiter.token_bucket is not None and limiter.token_bucket.available == left


async def test_settle_overrun_makes_later_callers_wait() -> None:
    """An overrun settled after the call delays the next acquire accordingly."""
    clock = FakeClock()
    limiter = RateLimiter("p", RateLimit(tokens_per_min=600), clock)
    await limiter.acquire(500)
    limiter.settle(500, 700)  # 100 tokens of debt
    assert await limiter.acquire(50) == 15.0


async def test_cancelled_waiter_gets_its_reservation_back() -> None:
    """Cancelling a caller mid-wait refunds what it reserved; the call never happened."""
    clock = BlockingClock()
    limiter = RateLimiter("p", RateLimit(requests_per_min=60, tokens_per_min=600), clock)
    await limiter.acquire(600)
    assert limiter.token_bucket is not None and limiter.request_bucket is not None
    task = asyncio.create_task(limiter.acquire(120))
    await asyncio.wait_for(clock.sleeping.wait(), timeout=5)
    assert limiter.token_bucket.available == -120.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.token_bucket.available == 0.0
    assert limiter.request_bucket.available == 59.0
    assert clock.sleeps == [12.0]


async def test_negative_tokens_is_a_bug() -> None:
    """acquire(tokens < 0) raises ValueError."""
    with pytest.raises(ValueError, match=">= 0"):
        await RateLimiter("p", RateLimit(), FakeClock()).acquire(-1)


def test_max_concurrent_builds_a_bulkhead() -> None:
    """max_concurrent becomes the limiter's bulkhead, keyed like the limiter."""
    limiter = RateLimiter("p", RateLimit(max_concurrent=4), FakeClock())
    assert limiter.bulkhead is not None
    assert (limiter.bulkhead.key, limiter.bulkhead.limit) == ("p", 4)


# ------------------------------------------------------------------------ Bulkhead


@pytest.mark.parametrize(
    ("limit", "max_queue"), [(0, None), (True, None), (1, -1), (1, 1.5)], ids=repr
)
def test_bulkhead_rejects_bad_settings(limit: Any, max_queue: Any) -> None:
    """limit must be an int >= 1 and max_queue an int >= 0 or None."""
    with pytest.raises(PolicyConfigError):
        Bulkhead("p", limit, max_queue=max_queue)


async def test_bulkhead_caps_concurrency() -> None:
    """With limit 2, four callers run at most two at a time; the rest queue, then all finish."""
    bulkhead = Bulkhead("p", 2)
    gate = asyncio.Event()
    peak = 0
    done: list[int] = []

    async def call(i: int) -> None:
        nonlocal peak
        async with bulkhead:
            peak = max(peak, bulkhead.in_flight)
            await gate.wait()
            done.append(i)

    async with asyncio.TaskGroup() as tg:
        for i in range(4):
            tg.create_task(call(i))
        await until(lambda: bulkhead.in_flight == 2 and bulkhead.queued == 2)
        gate.set()
    assert peak == 2 and sorted(done) == [0, 1, 2, 3]
    assert (bulkhead.in_flight, bulkhead.queued) == (0, 0)


@pytest.mark.parametrize("max_queue", [0, 1, 3])
async def test_bulkhead_rejects_when_the_queue_is_full(max_queue: int) -> None:
    """Once max_queue callers wait, the next raises BulkheadFull at once."""
    bulkhead = Bulkhead("p", 1, max_queue=max_queue)
    gate = asyncio.Event()

    async def call() -> None:
        async with bulkhead:
            await gate.wait()

    async with asyncio.TaskGroup() as tg:
        for _ in range(1 + max_queue):
            tg.create_task(call())
        await until(lambda: bulkhead.in_flight == 1 and bulkhead.queued == max_queue)
        with pytest.raises(BulkheadFull) as caught:
            async with bulkhead:
                pytest.fail("a full bulkhead admitted a caller")
        assert (caught.value.key, caught.value.limit, caught.value.code) == ("p", 1, "overloaded")
        gate.set()


async def test_cancelled_waiter_leaves_the_queue() -> None:
    """A queued caller that is cancelled takes no slot and frees its queue place."""
    bulkhead = Bulkhead("p", 1, max_queue=1)
    gate = asyncio.Event()

    async def call() -> None:
        async with bulkhead:
            await gate.wait()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(call())
        waiter = tg.create_task(call())
        await until(lambda: bulkhead.queued == 1)
        waiter.cancel()
        await until(waiter.done)
        assert (bulkhead.in_flight, bulkhead.queued) == (1, 0)
        tg.create_task(call())  # the queue place is free again
        await until(lambda: bulkhead.queued == 1)
        gate.set()
    assert (bulkhead.in_flight, bulkhead.queued) == (0, 0)


async def test_error_inside_releases_the_slot() -> None:
    """An exception in the guarded block still frees the slot and propagates."""
    bulkhead = Bulkhead("p", 1, max_queue=0)
    with pytest.raises(RuntimeError, match="boom"):
        async with bulkhead:
            raise RuntimeError("boom")
    async with bulkhead:
        assert bulkhead.in_flight == 1
