"""Limits of the HTTP edge: body size (413), per-key rate (429), turns in flight (503).

:func:`install_limits` sets them up on an app, once, from its
:class:`~serve.http.app.HttpConfig`:

- :class:`BodyLimit`, a pure ASGI middleware: a request whose ``Content-Length``
  exceeds ``max_body_bytes`` is answered 413 before a byte of it is read; a body
  without a length (chunked) is read as it streams, counted, and answered 413 the
  moment it passes the cap (the rest is never read). Below the cap the app sees the
  body unchanged.
- ``app.state.rate_limiter``, a :class:`KeyRateLimiter`: one token bucket per API
  key (``burst`` deep, refilled at ``rate_per_minute``). :func:`serve.http.auth.authorized`
  charges it once per request, after the key is known; over the limit it raises
  :class:`~serve.http.errors.ApiError` 429 ``rate_limited`` with ``Retry-After``.
- ``app.state.inflight``, an :class:`Inflight` counter of chat turns and runs in
  flight. Routes hold a slot with ``async with turn_slot(request):`` (or
  :func:`claim_slot` for a streamed answer); when all ``max_inflight`` are taken it
  raises :class:`~serve.http.platform.Saturated`, which the error handlers answer 503
  with ``Retry-After``. Nothing waits in a queue: a saturated replica says so at once.

Time comes from an injected :class:`~supervision.clock.Clock`
(``app.state.limits_clock``), so tests advance a fake clock instead of sleeping.
The state is per replica and per process: with N replicas a key gets N times the
rate, and nothing survives a restart (buckets start full).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.http.errors import ApiError, error_body
from serve.http.platform import Saturated
from supervision.clock import Clock, SystemClock
from supervision.ratelimit import TokenBucket

__all__ = [
    "SATURATED_RETRY_AFTER_S",
    "BodyLimit",
    "Inflight",
    "KeyRateLimiter",
    "Slot",
    "claim_slot",
    "install_limits",
    "limits_clock",
    "turn_slot",
]

#: What a saturated replica tells clients to wait: turns take seconds, so a second
#: is long enough not to hammer it and short enough not to idle.
SATURATED_RETRY_AFTER_S = 1.0


# ----------------------------------------------------------------- body size


class BodyLimit:
    """Pure ASGI middleware: refuse request bodies over ``max_bytes`` with 413 JSON.

    Only ``http`` scopes are touched. Unparsable ``Content-Length`` → 400. A body
    with a length within the cap passes through untouched (the server enforces the
    length); a body without one is buffered up to the cap and replayed to the app.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                await _refuse(scope, receive, send, 400, "bad_request", "invalid Content-Length")
                return
            if length > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before finishing its request: nobody to answer
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body exceeds the limit of {self.max_bytes} bytes"
        # The unread rest of the body makes the connection unusable for another request.
        await _refuse(
            scope, receive, send, 413, "payload_too_large", message, {"Connection": "close"}
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1").strip()
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once, then the server's messages."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _refuse(  # noqa: PLR0917 - a private helper; every argument is needed
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    response = JSONResponse(error_body(code, message), status_code=status, headers=headers)
    await response(scope, receive, send)


# ------------------------------------------------------------------ rate limit


class KeyRateLimiter:
    """One token bucket per key: ``burst`` requests at once, ``rate_per_minute`` sustained.

    Buckets live in an LRU of at most ``max_keys``; a key evicted and seen again
    starts with a full bucket (a key must be idle the longest of all to be evicted,
    so this forgives only the least active). Raises ``ValueError`` for a rate or
    burst that is not a finite number > 0.
    """

    def __init__(
        self, rate_per_minute: float, burst: int, clock: Clock, *, max_keys: int = 10_000
    ) -> None:
        if not 0 < rate_per_minute < math.inf:
            raise ValueError(f"rate_per_minute must be a finite number > 0, got {rate_per_minute}")
        if not 0 < burst < math.inf:
            raise ValueError(f"burst must be a number > 0, got {burst}")
        self.rate_per_minute = float(rate_per_minute)
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def try_acquire(self, key: str) -> float:
        """Take one request for ``key``: 0.0, or take nothing and return the seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.burst, self.rate_per_minute / 60.0, self._clock)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.try_take(1.0)

    def check(self, key: str, *, label: str | None = None) -> None:
        """Charge one request to ``key``; raises :class:`ApiError` 429 with ``Retry-After``.

        ``label`` (the key's name) appears in the message; the key id does not.
        """
        wait = self.try_acquire(key)
        if wait == 0.0:
            return
        retry = retry_after(wait)
        who = f"API key {label!r}" if label else "this client"
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit exceeded for {who}: {self.rate_per_minute:g} requests per minute, "
            f"{self.burst} at once; retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )


def retry_after(seconds: float) -> int:
    """``Retry-After`` is whole seconds: round up, and never 0 (that invites a hot loop)."""
    return max(1, math.ceil(seconds))


# -------------------------------------------------------------------- in flight


class Slot:
    """One claimed place in an :class:`Inflight`; :meth:`release` is idempotent."""

    def __init__(self, owner: Inflight) -> None:
        self._owner: Inflight | None = owner

    def release(self) -> None:
        """Give the place back (a second call does nothing)."""
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.release_one()

    @property
    def held(self) -> bool:
        return self._owner is not None

    async def __aenter__(self) -> Slot:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class Inflight:
    """Counts chat turns and runs in flight; refuses the one past ``limit``.

    Single event loop only (no lock: claim and release never await).
    Raises ``ValueError`` for ``limit < 1``.
    """

    def __init__(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"max_inflight must be an int >= 1, got {limit!r}")
        self.limit = limit
        self._count = 0

    @property
    def count(self) -> int:
        """Slots held now."""
        return self._count

    def claim(self) -> Slot:
        """A held slot; raises :class:`Saturated` (``retry_after_s``) when all are taken."""
        if self._count >= self.limit:
            raise Saturated(
                f"this server is at capacity ({self.limit} turns in flight); retry shortly",
                retry_after_s=SATURATED_RETRY_AFTER_S,
            )
        self._count += 1
        return Slot(self)

    def release_one(self) -> None:
        """Give one place back; called by :meth:`Slot.release`, not by routes."""
        self._count = max(0, self._count - 1)


def claim_slot(request: Request) -> Slot:
    """Claim a turn slot for a response that outlives the handler (a stream).

    Release it in the stream's ``finally``. Raises :class:`Saturated` when full —
    call it before the response starts, so the client still gets a 503.
    """
    inflight: Inflight = request.app.state.inflight
    return inflight.claim()


@asynccontextmanager
async def turn_slot(request: Request) -> AsyncIterator[Slot]:
    """Hold a turn slot for the block; raises :class:`Saturated` (→ 503) when full."""
    slot = claim_slot(request)
    try:
        yield slot
    finally:
        slot.release()


# ----------------------------------------------------------------------- setup


def limits_clock(app: Any) -> Clock:
    """The clock of the app's limits (and of the API-key cache); the system clock by default."""
    clock = getattr(app.state, "limits_clock", None)
    return clock if clock is not None else SystemClock()


def install_limits(app: FastAPI, config: Any, *, clock: Clock | None = None) -> None:
    """Add the body cap middleware and create ``app.state.rate_limiter`` and ``.inflight``.

    ``config`` is an :class:`~serve.http.app.HttpConfig` (``max_body_bytes``,
    ``rate_per_minute``, ``burst``, ``max_inflight``). Call before the app starts
    serving. Raises ``ValueError`` for a limit that cannot work (negative body cap,
    rate or burst <= 0, ``max_inflight`` < 1), naming the setting.
    """
    if config.max_body_bytes < 0:
        raise ValueError(f"max_body_bytes must be >= 0, got {config.max_body_bytes}")
    app.state.limits_clock = clock if clock is not None else SystemClock()
    app.state.rate_limiter = KeyRateLimiter(
        config.rate_per_minute, config.burst, app.state.limits_clock
    )
    app.state.inflight = Inflight(config.max_inflight)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
