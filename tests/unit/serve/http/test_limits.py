"""Limits of the HTTP edge: 413 body cap, 429 per-key rate, 503 turns in flight, 422 fields."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel

from serve.http.app import HttpConfig
from serve.http.auth import Principal, authorized, create_key
from serve.http.errors import install_error_handlers
from serve.http.limits import (
    BodyLimit,
    Inflight,
    KeyRateLimiter,
    claim_slot,
    install_limits,
    turn_slot,
)
from serve.http.platform import Saturated
from store.factory import open_store
from supervision.testing import FakeClock


@dataclass
class StubPlatform:
    store: Any


@dataclass
class Turns:
    """What the test routes saw: bodies received, and gates holding turns open."""

    bodies: list[bytes] = field(default_factory=list)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


class Message(BaseModel):
    message: str
    max_tokens: int = 100


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Any]:
    opened = await open_store(f"sqlite:///{tmp_path}/s.db")
    yield opened
    await opened.close()


def build_app(store: Any, clock: FakeClock, config: HttpConfig, turns: Turns) -> FastAPI:
    app = FastAPI()
    app.state.platform = StubPlatform(store)
    app.state.config = config
    install_error_handlers(app)
    install_limits(app, config, clock=clock)

    @app.get("/api/me")
    async def me(principal: Annotated[Principal, Depends(authorized)]) -> dict[str, str]:
        return {"name": principal.name}

    @app.post("/api/echo")
    async def echo(
        request: Request, _: Annotated[Principal, Depends(authorized)]
    ) -> dict[str, int]:
        body = await request.body()
        turns.bodies.append(body)
        return {"bytes": len(body)}

    @app.post("/api/chat")
    async def chat(body: Message, _: Annotated[Principal, Depends(authorized)]) -> dict[str, str]:
        return {"echo": body.message}

    @app.post("/api/turn")
    async def turn(request: Request, fail: bool = False) -> dict[str, int]:
        async with turn_slot(request):
            turns.entered.set()
            await turns.release.wait()
            if fail:
                raise RuntimeError("the turn failed")
        return {"in_flight": request.app.state.inflight.count}

    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
def turns() -> Turns:
    return Turns()


async def make_client(app: FastAPI, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


# ------------------------------------------------------------------ 413


async def test_body_over_the_cap_by_content_length_is_413_unread(
    store: Any, clock: FakeClock, turns: Turns
) -> None:
    """A Content-Length above the cap is refused with 413 JSON before the app sees it."""
    app = build_app(store, clock, HttpConfig(auth=False, max_body_bytes=100), turns)
    async with await make_client(app) as c:
        ok = await c.post("/api/echo", content=b"x" * 100)
        big = await c.post("/api/echo", content=b"x" * 101)
    assert ok.status_code == 200 and ok.json() == {"bytes": 100}
    assert big.status_code == 413
    assert big.json() == {
        "error": {
            "code": "payload_too_large",
            "message": "request body exceeds the limit of 100 bytes",
        }
    }
    assert turns.bodies == [b"x" * 100]


async def test_chunked_body_over_the_cap_is_413_without_reading_the_rest(
    store: Any, clock: FakeClock, turns: Turns
) -> None:
    """A body without a length is counted as it streams; past the cap: 413, rest unread."""
    app = build_app(store, clock, HttpConfig(auth=False, max_body_bytes=100), turns)
    sent: list[int] = []

    async def chunks(n: int, size: int = 30) -> AsyncIterator[bytes]:
        for i in range(n):
            sent.append(i)
            yield b"y" * size

    async with await make_client(app) as c:
        big = await c.post("/api/echo", content=chunks(10))
        assert big.status_code == 413
        assert big.json()["error"]["code"] == "payload_too_large"
        assert len(sent) == 4  # 120 bytes: the fourth chunk crossed the cap
        sent.clear()
        ok = await c.post("/api/echo", content=chunks(3))
    assert ok.status_code == 200 and ok.json() == {"bytes": 90}
    assert turns.bodies == [b"y" * 90]


async def test_invalid_content_length_is_400() -> None:
    """An unparsable Content-Length is a 400 JSON error, and the app is never called."""
    called: list[bool] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        called.append(True)

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", b"-5")]}
    await BodyLimit(inner, max_bytes=10)(scope, receive, send)
    assert not called
    assert sent[0]["status"] == 400
    assert b'"code":"bad_request"' in sent[1]["body"]


async def test_validation_error_names_the_field(store: Any, clock: FakeClock, turns: Turns) -> None:
    """A body failing validation is 422 naming the field."""
    app = build_app(store, clock, HttpConfig(auth=False), turns)
    async with await make_client(app) as c:
        r = await c.post("/api/chat", json={"message": "hi", "max_tokens": "many"})
        missing = await c.post("/api/chat", json={})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request"
    assert r.json()["error"]["message"].startswith("max_tokens:")
    assert missing.json()["error"]["message"].startswith("message:")


# ------------------------------------------------------------------ 429


async def test_rate_limit_429_after_burst_then_refills(
    store: Any, clock: FakeClock, turns: Turns
) -> None:
    """Past the burst a key gets 429 with Retry-After; the bucket refills on the clock."""
    config = HttpConfig(rate_per_minute=60, burst=3)
    app = build_app(store, clock, config, turns)
    alice, _ = await create_key(store, "alice")
    bob, _ = await create_key(store, "bob")
    auth = {"Authorization": f"Bearer {alice}"}
    async with await make_client(app) as c:
        codes = [(await c.get("/api/me", headers=auth)).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        limited = await c.get("/api/me", headers=auth)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "1"
        assert limited.json()["error"]["code"] == "rate_limited"
        assert "API key 'alice'" in limited.json()["error"]["message"]
        # Another key has its own bucket.
        other = await c.get("/api/me", headers={"Authorization": f"Bearer {bob}"})
        assert other.status_code == 200
        clock.advance(1.0)
        assert (await c.get("/api/me", headers=auth)).status_code == 200
        assert (await c.get("/api/me", headers=auth)).status_code == 429


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    """Retry-After rounds the wait up to whole seconds, never below 1."""
    clock = FakeClock()
    limiter = KeyRateLimiter(6, 1, clock)  # one request per 10 s
    limiter.check("k")
    clock.advance(0.5)
    with pytest.raises(Exception, match="retry in 10 s") as caught:
        limiter.check("k")
    assert caught.value.headers == {"Retry-After": "10"}  # type: ignore[attr-defined]
    clock.advance(9.4)
    assert limiter.try_acquire("k") == pytest.approx(0.1)


def test_rate_limiter_keeps_a_bounded_lru_of_buckets() -> None:
    """At most max_keys buckets are kept; the least recently used goes first."""
    limiter = KeyRateLimiter(60, 1, FakeClock(), max_keys=2)
    limiter.try_acquire("a")
    limiter.try_acquire("b")
    limiter.try_acquire("a")
    limiter.try_acquire("c")
    assert len(limiter) == 2
    assert limiter.try_acquire("a") > 0  # "a" kept its (empty) bucket; "b" was evicted
    assert limiter.try_acquire("b") == 0.0


def test_bad_limits_are_refused_by_name() -> None:
    """Limits that cannot work fail at install time, naming the setting."""
    with pytest.raises(ValueError, match="rate_per_minute"):
        install_limits(FastAPI(), HttpConfig(rate_per_minute=0))
    with pytest.raises(ValueError, match="max_inflight"):
        install_limits(FastAPI(), HttpConfig(max_inflight=0))
    with pytest.raises(ValueError, match="max_body_bytes"):
        install_limits(FastAPI(), HttpConfig(max_body_bytes=-1))


# ------------------------------------------------------------------ 503


async def test_turns_past_max_inflight_get_503_with_retry_after(
    store: Any, clock: FakeClock, turns: Turns
) -> None:
    """With every slot taken the next turn is 503 saturated + Retry-After; freed, it runs."""
    app = build_app(store, clock, HttpConfig(auth=False, max_inflight=1), turns)
    async with await make_client(app) as c, asyncio.TaskGroup() as tg:
        first = tg.create_task(c.post("/api/turn"))
        await asyncio.wait_for(turns.entered.wait(), timeout=5)
        busy = await c.post("/api/turn")
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["error"]["code"] == "saturated"
        assert "1 turns in flight" in busy.json()["error"]["message"]
        turns.release.set()
    assert first.result().status_code == 200
    assert app.state.inflight.count == 0
    async with await make_client(app) as c:
        assert (await c.post("/api/turn")).json() == {"in_flight": 0}


async def test_slot_is_released_when_the_turn_fails(
    store: Any, clock: FakeClock, turns: Turns
) -> None:
    """A turn that raises gives its slot back (500 to the client, no stack trace)."""
    app = build_app(store, clock, HttpConfig(auth=False, max_inflight=1), turns)
    turns.release.set()
    # Starlette re-raises after answering 500 (for the server to log); the client got the 500.
    async with await make_client(app, raise_app_exceptions=False) as c:
        r = await c.post("/api/turn", params={"fail": "true"})
        assert r.status_code == 500 and "the turn failed" not in r.text
        assert app.state.inflight.count == 0
        assert (await c.post("/api/turn")).status_code == 200


def test_inflight_slots_release_once() -> None:
    """Slots count claims; releasing twice frees one place, and a full counter raises."""
    inflight = Inflight(2)
    one, two = inflight.claim(), inflight.claim()
    with pytest.raises(Saturated) as caught:
        inflight.claim()
    assert caught.value.retry_after_s == 1.0
    one.release()
    one.release()
    assert inflight.count == 1 and not one.held and two.held
    with pytest.raises(ValueError, match="max_inflight"):
        Inflight(0)


async def test_claim_slot_for_streams(store: Any, clock: FakeClock, turns: Turns) -> None:
    """claim_slot hands a held slot to code that releases it later (a streamed answer)."""
    app = build_app(store, clock, HttpConfig(max_inflight=1), turns)
    request = Request({"type": "http", "app": app, "headers": []})
    slot = claim_slot(request)
    with pytest.raises(Saturated):
        claim_slot(request)
    async with slot:
        pass
    assert app.state.inflight.count == 0
