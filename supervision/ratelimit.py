"""Client-side rate limits (requests/min, tokens/min) and a concurrency bulkhead per provider key.

:class:`TokenBucket` is the pure primitive. :class:`RateLimiter` combines a request
bucket and an LLM-token bucket and makes callers wait on an injected clock.
:class:`Bulkhead` caps calls in flight.

Failure semantics:

- :meth:`RateLimiter.acquire` raises :class:`~supervision.errors.RateLimitExceeded`
  (retryable, with ``retry_after_s``) only when the caller said ``wait=False`` or the
  wait would exceed ``max_wait_s``; then nothing is taken from the buckets.
- Waiting callers *reserve* their share when they arrive (the buckets may go into
  debt) and then sleep until the reservation is covered. That makes waiting first
  come, first served with exactly one sleep each, no thundering herd. A caller
  cancelled while waiting gets its reservation refunded; the call never happened.
- :meth:`RateLimiter.settle` charges the difference between estimated and actual
  tokens after the call; an overrun puts the bucket into debt, so later callers wait.
- :class:`Bulkhead` raises :class:`~supervision.errors.BulkheadFull` (retryable) at
  once when every slot is busy and ``max_queue`` callers already wait.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from types import TracebackType

from supervision.clock import Clock
from supervision.errors import BulkheadFull, PolicyConfigError, RateLimitExceeded

__all__ = ["Bulkhead", "RateLimit", "RateLimiter", "TokenBucket"]

# Float slack when comparing tokens, relative to capacity: refilling for exactly the
# computed wait must count as enough, even after rounding.
_SLACK = 1e-9


def _positive(name: str, value: float) -> None:
    # Written so that NaN fails too.
    if not 0 < value < math.inf:
        raise PolicyConfigError(f"{name} must be a finite number > 0, got {value}")


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``refill_per_s``; starts full.

    A request for more than ``capacity`` is not an error and never waits forever:
    it needs a full bucket, then takes its whole ``amount``, leaving the bucket in
    debt by the excess, so the long-run rate stays honest (later takers wait for the
    debt to be repaid). Raises :class:`PolicyConfigError` for a capacity or rate that
    is not a finite number > 0, :class:`ValueError` for a negative amount.
    """

    def __init__(self, capacity: float, refill_per_s: float, clock: Clock) -> None:
        _positive("capacity", capacity)
        _positive("refill_per_s", refill_per_s)
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self._clock = clock
        self._tokens = self.capacity
        self._updated_at = clock.now()

    @property
    def available(self) -> float:
        """Tokens in the bucket now; negative while in debt."""
        self._refill()
        return self._tokens

    def wait_time(self, amount: float = 1.0) -> float:
        """Seconds until ``amount`` could be taken (0.0: now); takes nothing."""
        if amount < 0:
            raise ValueError(f"amount must be >= 0, got {amount}")
        self._refill()
        shortfall = min(amount, self.capacity) - self._tokens
        if shortfall <= _SLACK * max(1.0, self.capacity):
            return 0.0
        return shortfall / self.refill_per_s

    def try_take(self, amount: float = 1.0) -> float:
        """Take ``amount`` and return 0.0, or take nothing and return the seconds to wait."""
        wait = self.wait_time(amount)
        if wait == 0.0:
            self._tokens -= amount
        return wait

    def adjust(self, delta: float) -> None:
        """Give tokens back (``delta > 0``, capped at capacity) or charge them (into debt too)."""
        self._refill()
        self._tokens = min(self.capacity, self._tokens + delta)

    def _refill(self) -> None:
        now = self._clock.now()
        elapsed = max(0.0, now - self._updated_at)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_s)
        self._updated_at = now


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The limits of one provider key; ``None``: unlimited. Raises :class:`PolicyConfigError`."""

    requests_per_min: float | None = None
    tokens_per_min: float | None = None
    max_concurrent: int | None = None
    max_wait_s: float = 30.0

    def __post_init__(self) -> None:
        if self.requests_per_min is not None:
            _positive("requests_per_min", self.requests_per_min)
        if self.tokens_per_min is not None:
            _positive("tokens_per_min", self.tokens_per_min)
        mc = self.max_concurrent
        if mc is not None and (isinstance(mc, bool) or not isinstance(mc, int) or mc < 1):
            raise PolicyConfigError(f"max_concurrent must be an int >= 1 or None, got {mc!r}")
        if not self.max_wait_s >= 0:
            raise PolicyConfigError(f"max_wait_s must be >= 0, got {self.max_wait_s}")


class RateLimiter:
    """Requests/min and tokens/min for one provider key, each a bucket holding one minute's worth.

    ``request_bucket``/``token_bucket`` are ``None`` when that limit is unset.
    ``max_concurrent`` is not enforced by :meth:`acquire` (it has no matching
    release); it builds :attr:`bulkhead`, which the caller enters around the call.
    """

    def __init__(self, key: str, limit: RateLimit, clock: Clock) -> None:
        self.key = key
        self.limit = limit
        self._clock = clock
        self.request_bucket: TokenBucket | None = None
        self.token_bucket: TokenBucket | None = None
        if limit.requests_per_min is not None:
            rpm = limit.requests_per_min
            self.request_bucket = TokenBucket(rpm, rpm / 60.0, clock)
        if limit.tokens_per_min is not None:
            tpm = limit.tokens_per_min
            self.token_bucket = TokenBucket(tpm, tpm / 60.0, clock)
        self.bulkhead: Bulkhead | None = (
            Bulkhead(key, limit.max_concurrent) if limit.max_concurrent is not None else None
        )

    async def acquire(self, tokens: int = 0, *, wait: bool = True) -> float:
        """Take one request and ``tokens`` estimated LLM tokens; return the seconds waited.

        Raises :class:`RateLimitExceeded` (nothing taken) when there is no room now
        and ``wait`` is false, or the wait would exceed ``max_wait_s``; ``ValueError``
        for negative ``tokens``. Cancellation while waiting refunds the reservation.
        """
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        charges: list[tuple[TokenBucket, float]] = []
        if self.request_bucket is not None:
            charges.append((self.request_bucket, 1.0))
        if self.token_bucket is not None and tokens > 0:
            charges.append((self.token_bucket, float(tokens)))
        needed = max((bucket.wait_time(amount) for bucket, amount in charges), default=0.0)
        if needed > 0 and (not wait or needed > self.limit.max_wait_s):
            raise RateLimitExceeded(self.key, needed)
        # Reserve now, in arrival order; no await happens between the check and this.
        for bucket, amount in charges:
            bucket.adjust(-amount)
        if needed == 0:
            return 0.0
        started = self._clock.now()
        try:
            await self._clock.sleep(needed)
        except BaseException:
            # Cancelled (or interrupted) while waiting: the call will not happen.
            for bucket, amount in charges:
                bucket.adjust(amount)
            raise
        return self._clock.now() - started

    def settle(self, estimated: int, actual: int) -> None:
        """After the call, charge ``actual - estimated`` tokens (a refund when negative)."""
        if estimated < 0 or actual < 0:
            raise ValueError(f"token counts must be >= 0, got {estimated=}, {actual=}")
        if self.token_bucket is not None:
            self.token_bucket.adjust(estimated - actual)


class Bulkhead:
    """At most ``limit`` calls in flight (``async with``); at most ``max_queue`` waiting.

    ``max_queue=None`` lets any number wait; ``0`` rejects whenever all slots are
    busy. Waiters are admitted first come, first served (``asyncio.Semaphore``).
    A waiter cancelled in the queue leaves it and takes no slot. Like the semaphore
    under it, a bulkhead belongs to the event loop that first waits on it.
    Raises :class:`PolicyConfigError` for ``limit < 1`` or ``max_queue < 0``.
    """

    def __init__(self, key: str, limit: int, *, max_queue: int | None = None) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise PolicyConfigError(f"limit must be an int >= 1, got {limit!r}")
        if max_queue is not None and (
            isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 0
        ):
            raise PolicyConfigError(f"max_queue must be an int >= 0 or None, got {max_queue!r}")
        self.key = key
        self.limit = limit
        self.max_queue = max_queue
        self._semaphore = asyncio.Semaphore(limit)
        self._in_flight = 0
        self._queued = 0

    @property
    def in_flight(self) -> int:
        """Calls holding a slot now."""
        return self._in_flight

    @property
    def queued(self) -> int:
        """Callers waiting for a slot now."""
        return self._queued

    async def __aenter__(self) -> Bulkhead:
        # Queued waiters count as ahead of us even if a slot was just freed for them.
        must_wait = self._in_flight >= self.limit or self._queued > 0
        if must_wait and self.max_queue is not None and self._queued >= self.max_queue:
            raise BulkheadFull(self.key, self.limit)
        self._queued += 1
        try:
            await self._semaphore.acquire()
        finally:
            self._queued -= 1
        self._in_flight += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._in_flight -= 1
        self._semaphore.release()
