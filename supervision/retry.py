"""Retry with capped exponential backoff, full jitter, Retry-After and an overall deadline.

:func:`decide` is the pure state machine: given the policy, the failed attempt and
the clock reading it says whether to try again and after how long.
:func:`retry_call` drives an async callable with it, sleeping on an injected
:class:`~supervision.clock.Clock`.

Failure semantics of :func:`retry_call`:

- a *failure* is an exception that ``is_failure`` maps to a :class:`RetryableFailure`
  (by default: any exception with a ``str`` ``code`` and a ``bool`` ``retryable``,
  which includes ``pipelines.errors.ProviderError`` and every
  :class:`~supervision.errors.PolicyError`); it is retried per :func:`decide`, and
  the last one is re-raised unchanged when the policy stops;
- any other exception propagates at once, unretried;
- ``asyncio.CancelledError`` (and every other ``BaseException``) always propagates,
  whether raised by the call or during the backoff sleep; nothing is retried after.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from supervision.clock import Clock
from supervision.errors import PolicyConfigError

__all__ = [
    "AttemptEvent",
    "RetryDecision",
    "RetryPolicy",
    "RetryReason",
    "RetryableFailure",
    "as_failure",
    "decide",
    "retry_call",
]

T = TypeVar("T")

RetryReason = Literal[
    "retryable", "not_retryable", "attempts_exhausted", "deadline", "retry_after_too_long"
]


class RetryableFailure(Protocol):
    """What the policy looks at in a failure; ``ProviderError`` matches it structurally."""

    @property
    def code(self) -> str: ...

    @property
    def retryable(self) -> bool: ...

    @property
    def retry_after_s(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class _Failure:
    code: str
    retryable: bool
    retry_after_s: float | None


def as_failure(exc: BaseException) -> RetryableFailure | None:
    """The default ``is_failure``: read ``code``/``retryable``/``retry_after_s`` off ``exc``.

    Returns ``None`` (not a failure: propagate) unless ``code`` is a ``str`` and
    ``retryable`` a ``bool``; a missing or non-numeric ``retry_after_s`` reads as ``None``.
    """
    code = getattr(exc, "code", None)
    retryable = getattr(exc, "retryable", None)
    if not isinstance(code, str) or not isinstance(retryable, bool):
        return None
    after = getattr(exc, "retry_after_s", None)
    if isinstance(after, bool) or not isinstance(after, int | float):
        after = None
    return _Failure(code=code, retryable=retryable, retry_after_s=after)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry; raises :class:`PolicyConfigError` on bad settings.

    ``max_attempts`` counts the first attempt. ``deadline_s`` is the overall budget
    measured from the first attempt (``None``: no budget). A Retry-After longer than
    ``max_retry_after_s`` means give up now (so a fallback can take over) rather than
    wait. ``retry_codes`` narrows which ``retryable`` failures are retried (``None``:
    all of them); it never makes a non-retryable failure retryable.
    """

    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    multiplier: float = 2.0
    deadline_s: float | None = 60.0
    jitter: Literal["full", "none"] = "full"
    honor_retry_after: bool = True
    max_retry_after_s: float = 60.0
    retry_codes: frozenset[str] | None = None
    #: ``exponential``: base * multiplier^(n-1); ``linear``: base * n; ``fixed``: base.
    strategy: Literal["exponential", "linear", "fixed"] = "exponential"

    def __post_init__(self) -> None:
        # Comparisons are written so that NaN fails them too.
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise PolicyConfigError(f"max_attempts must be an int, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise PolicyConfigError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not 0 <= self.base_delay_s <= self.max_delay_s < math.inf:
            raise PolicyConfigError(
                "need 0 <= base_delay_s <= max_delay_s < inf, got "
                f"base_delay_s={self.base_delay_s}, max_delay_s={self.max_delay_s}"
            )
        if not 1.0 <= self.multiplier < math.inf:
            raise PolicyConfigError(f"multiplier must be >= 1, got {self.multiplier}")
        if self.deadline_s is not None and not self.deadline_s > 0:
            raise PolicyConfigError(f"deadline_s must be > 0 or None, got {self.deadline_s}")
        if self.strategy not in ("exponential", "linear", "fixed"):
            raise PolicyConfigError(
                f"strategy must be exponential, linear or fixed, got {self.strategy!r}"
            )
        if self.jitter not in ("full", "none"):
            raise PolicyConfigError(f"jitter must be 'full' or 'none', got {self.jitter!r}")
        if not self.max_retry_after_s >= 0:
            raise PolicyConfigError(f"max_retry_after_s must be >= 0, got {self.max_retry_after_s}")
        # Config may hand over any iterable of codes; one bare string would be its letters.
        given: object = self.retry_codes
        if isinstance(given, str):
            raise PolicyConfigError(f"retry_codes must be a set of codes, got {given!r}")
        if self.retry_codes is not None:
            codes = frozenset(self.retry_codes)
            if not all(isinstance(c, str) for c in codes):
                raise PolicyConfigError(
                    f"retry_codes must be strings, got {sorted(map(repr, codes))}"
                )
            object.__setattr__(self, "retry_codes", codes)

    def cap(self, attempt: int) -> float:
        """The top delay after failed attempt ``attempt`` (1-based), per ``strategy``.

        Never more than ``max_delay_s``; raises ``ValueError`` for ``attempt < 1``.
        """
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        if self.base_delay_s == 0:
            return 0.0  # and 0 * inf must not be reached through the overflow branch
        if self.strategy == "fixed":
            return self.base_delay_s
        if self.strategy == "linear":
            return min(self.max_delay_s, self.base_delay_s * attempt)
        try:
            raw = self.base_delay_s * self.multiplier ** (attempt - 1)
        except OverflowError:  # a huge attempt number: the clamp applies anyway
            return self.max_delay_s
        return min(self.max_delay_s, raw)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The delay after failed attempt ``attempt``: uniform in [0, cap] (full jitter) or cap."""
        cap = self.cap(attempt)
        return rng.uniform(0.0, cap) if self.jitter == "full" else cap


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Whether to try again; ``delay_s`` is the wait before it (0.0 when not retrying)."""

    retry: bool
    delay_s: float
    reason: RetryReason


def decide(
    policy: RetryPolicy,
    *,
    attempt: int,
    failure: RetryableFailure,
    started_at: float,
    now: float,
    rng: random.Random,
) -> RetryDecision:
    """Decide what follows failed attempt ``attempt`` (1-based) at clock reading ``now``.

    Checked in this order: not retryable (or code not in ``retry_codes``); attempts
    exhausted; Retry-After beyond ``max_retry_after_s``; the wait would end after
    ``started_at + deadline_s``. A Retry-After is a floor on the jittered backoff.
    The rng is drawn from only when a delay is actually computed.
    """
    if not failure.retryable or (
        policy.retry_codes is not None and failure.code not in policy.retry_codes
    ):
        return RetryDecision(False, 0.0, "not_retryable")
    if attempt >= policy.max_attempts:
        return RetryDecision(False, 0.0, "attempts_exhausted")
    after = failure.retry_after_s if policy.honor_retry_after else None
    if after is not None and math.isnan(after):
        after = None  # a garbled header says nothing
    if after is not None and after > policy.max_retry_after_s:
        return RetryDecision(False, 0.0, "retry_after_too_long")
    delay = policy.backoff(attempt, rng)
    if after is not None:
        delay = max(delay, after)
    if policy.deadline_s is not None and now + delay > started_at + policy.deadline_s:
        return RetryDecision(False, 0.0, "deadline")
    return RetryDecision(True, delay, "retryable")


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """One finished attempt, reported to ``on_attempt``.

    For a failure, ``code`` is its code, ``reason`` the decision's reason and
    ``delay_s`` the wait before the next attempt (``None`` when there is none).
    A success has ``code``, ``delay_s`` and ``reason`` all ``None``.
    """

    attempt: int
    outcome: Literal["success", "failure"]
    code: str | None
    delay_s: float | None
    reason: RetryReason | None


async def retry_call(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    clock: Clock,
    rng: random.Random | None = None,
    is_failure: Callable[[BaseException], RetryableFailure | None] = as_failure,
    on_attempt: Callable[[AttemptEvent], None] | None = None,
) -> T:
    """Await ``fn()`` until it succeeds or :func:`decide` says stop; return its result.

    Sleeps between attempts with ``clock.sleep``. When the policy stops, the last
    failure is re-raised as it was. ``on_attempt`` sees every attempt that succeeded
    or failed with a failure (not exceptions that propagate unretried); an
    exception raised by ``on_attempt`` propagates (it is a bug in the observer).
    """
    # Jitter needs no cryptographic randomness; an unseeded rng spreads clients apart.
    rng = rng if rng is not None else random.Random()  # noqa: S311
    started_at = clock.now()
    attempt = 0
    while True:
        attempt += 1
        try:
            result = await fn()
        except Exception as exc:  # BaseException (cancellation) is never caught
            failure = is_failure(exc)
            if failure is None:
                raise
            decision = decide(
                policy,
                attempt=attempt,
                failure=failure,
                started_at=started_at,
                now=clock.now(),
                rng=rng,
            )
            if on_attempt is not None:
                on_attempt(
                    AttemptEvent(
                        attempt=attempt,
                        outcome="failure",
                        code=failure.code,
                        delay_s=decision.delay_s if decision.retry else None,
                        reason=decision.reason,
                    )
                )
            if not decision.retry:
                raise
            delay = decision.delay_s
        else:
            if on_attempt is not None:
                on_attempt(AttemptEvent(attempt, "success", None, None, None))
            return result
        # Sleep outside the except block so a cancellation here is not chained to the failure.
        await clock.sleep(delay)
