"""API keys at the HTTP edge: 401s that leak nothing, cache TTL for revocation, cookie login."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import structlog
from fastapi import Depends, FastAPI, Response

from serve.http.app import HttpConfig
from serve.http.auth import (
    ANONYMOUS,
    COOKIE_NAME,
    KEY_CACHE_TTL_S,
    KeyCache,
    KeyNameTaken,
    Principal,
    authorized,
    create_key,
    ensure_admin_key,
    generate_key,
    is_loopback,
    key_cache,
    key_prefix,
    login_response,
    login_url,
    logout_response,
    require_scope,
)
from serve.http.errors import install_error_handlers
from serve.http.limits import install_limits
from store.base import hash_api_key
from store.factory import open_store
from supervision.testing import FakeClock


@dataclass
class StubPlatform:
    store: Any


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Any]:
    opened = await open_store(f"sqlite:///{tmp_path}/s.db")
    yield opened
    await opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=100.0)


def build_app(store: Any, clock: FakeClock, config: HttpConfig | None = None) -> FastAPI:
    config = config or HttpConfig()
    app = FastAPI()
    app.state.platform = StubPlatform(store)
    app.state.config = config
    install_error_handlers(app)
    install_limits(app, config, clock=clock)

    @app.get("/api/me")
    async def me(principal: Annotated[Principal, Depends(authorized)]) -> dict[str, Any]:
        return {"name": principal.name, "user_id": principal.user_id, "scopes": principal.scopes}

    @app.get("/api/admin")
    async def admin(
        principal: Annotated[Principal, Depends(require_scope("admin"))],
    ) -> dict[str, str]:
        return {"name": principal.name}

    @app.get("/login")
    async def login(token: str = "") -> Response:
        return await login_response(token, store)

    @app.get("/logout")
    async def logout() -> Response:
        return logout_response()

    return app


@pytest.fixture
async def client(store: Any, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(store, clock)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event at any level, restored afterwards."""
    old = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as entries:
            yield entries
    finally:
        structlog.configure(**old)


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


# ---------------------------------------------------------------- keys


def test_generated_keys_are_long_random_and_prefixed() -> None:
    """Keys are elx_ + 256 random bits; the prefix shown in lists is their first 12 chars."""
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    raw = keys.pop()
    assert raw.startswith("elx_") and len(raw) >= 4 + 43
    assert key_prefix(raw) == raw[:12]


async def test_create_key_stores_only_the_hash(store: Any) -> None:
    """The raw key is returned once; the stored record holds its hash and prefix only."""
    raw, key = await create_key(store, "ci-bot", ["chat", "runs"])
    (stored,) = await store.list_api_keys()
    assert stored.key_hash == hash_api_key(raw) == key.key_hash
    assert stored.prefix == raw[:12] and stored.scopes == ["chat", "runs"]
    assert raw not in repr(stored)


async def test_create_key_refuses_bad_names_and_taken_names(store: Any) -> None:
    """Bad names, reserved names and a second active key of one name are refused clearly."""
    await create_key(store, "alice")
    with pytest.raises(KeyNameTaken, match="active API key named 'alice' already exists"):
        await create_key(store, "alice")
    with pytest.raises(ValueError, match="invalid key name"):
        await create_key(store, "has space")
    with pytest.raises(ValueError, match="reserved"):
        await create_key(store, "anonymous")
    with pytest.raises(ValueError, match="invalid scope 'Bad Scope'"):
        await create_key(store, "bob", ["Bad Scope"])


async def test_ensure_admin_key_creates_one_only_when_none_is_active(store: Any) -> None:
    """The first call creates the admin key; later calls do nothing until it is revoked."""
    raw = await ensure_admin_key(store)
    assert raw is not None
    assert await ensure_admin_key(store) is None
    (key,) = await store.list_api_keys()
    assert key.name == "admin" and key.scopes == ["admin", "chat"]
    assert await store.revoke_api_key("admin")
    again = await ensure_admin_key(store)
    assert again is not None and again != raw


def test_login_url_and_loopback() -> None:
    """The printed login URL carries the key as a query token; loopback hosts are recognised."""
    assert (
        login_url("http://127.0.0.1:8000/", "elx_a-b")
        == "http://127.0.0.1:8000/login?token=elx_a-b"
    )
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.4", "example.com", "::"))  # noqa: S104 - data, nothing binds


def test_key_cache_expires_and_stays_bounded() -> None:
    """Entries live ttl_s on the clock; the least recently used go past max_entries."""
    clock = FakeClock()
    cache = KeyCache(clock, ttl_s=5.0, max_entries=2)
    alice = Principal("1", "alice", ("chat",))
    cache.put("h1", alice)
    clock.advance(4.9)
    assert cache.get("h1") == alice
    clock.advance(0.1)
    assert cache.get("h1") is None
    for n in range(3):
        cache.put(f"k{n}", alice)
    assert len(cache) == 2 and cache.get("k0") is None
    cache.forget("alice")
    assert len(cache) == 0


# ------------------------------------------------------------- requests


async def test_no_key_is_401_with_challenge(client: httpx.AsyncClient) -> None:
    """Without a key: 401 unauthorized, WWW-Authenticate: Bearer, a message saying what to send."""
    r = await client.get("/api/me")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {
        "error": {
            "code": "unauthorized",
            "message": "missing API key: send Authorization: Bearer <key>",
        }
    }


async def test_malformed_header_is_401(client: httpx.AsyncClient) -> None:
    """A non-Bearer or empty Authorization header is a 401 naming the expected form."""
    for header in ("Basic dXNlcjpwdw==", "Bearer", "Bearer   "):
        r = await client.get("/api/me", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.json()["error"]["message"].startswith("malformed Authorization header")


async def test_unknown_and_revoked_keys_get_the_same_401(
    client: httpx.AsyncClient, store: Any, clock: FakeClock
) -> None:
    """A made-up key and a revoked one are indistinguishable: same status, body and headers."""
    raw, _ = await create_key(store, "alice")
    await store.revoke_api_key("alice")
    made_up = await client.get("/api/me", headers=bearer(generate_key()))
    revoked = await client.get("/api/me", headers=bearer(raw))
    too_long = await client.get("/api/me", headers=bearer("x" * 5000))
    for r in (made_up, revoked, too_long):
        assert r.status_code == 401
        assert r.json() == {"error": {"code": "unauthorized", "message": "invalid API key"}}
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert made_up.content == revoked.content


async def test_valid_key_is_200_with_its_principal(client: httpx.AsyncClient, store: Any) -> None:
    """A valid key authenticates as its name; sessions are owned by that name."""
    raw, _ = await create_key(store, "alice", ["chat"])
    r = await client.get("/api/me", headers=bearer(raw))
    assert r.status_code == 200
    assert r.json() == {"name": "alice", "user_id": "alice", "scopes": ["chat"]}


async def test_revoked_key_stops_working_within_the_cache_ttl(
    client: httpx.AsyncClient, store: Any, clock: FakeClock
) -> None:
    """A cached key keeps working until the TTL ends, then revocation shows: 401."""
    raw, _ = await create_key(store, "alice")
    assert (await client.get("/api/me", headers=bearer(raw))).status_code == 200
    assert await store.revoke_api_key("alice")
    clock.advance(KEY_CACHE_TTL_S - 0.5)
    assert (await client.get("/api/me", headers=bearer(raw))).status_code == 200
    clock.advance(0.5)
    r = await client.get("/api/me", headers=bearer(raw))
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid API key"


async def test_forget_makes_revocation_immediate(store: Any, clock: FakeClock) -> None:
    """KeyCache.forget(name) drops a revoked key from this replica's cache at once."""
    app = build_app(store, clock)
    raw, _ = await create_key(store, "alice")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        assert (await c.get("/api/me", headers=bearer(raw))).status_code == 200
        await store.revoke_api_key("alice")
        key_cache(app).forget("alice")
        assert (await c.get("/api/me", headers=bearer(raw))).status_code == 401


async def test_cookie_authenticates_and_header_wins(client: httpx.AsyncClient, store: Any) -> None:
    """The login cookie authenticates; an explicit Authorization header takes precedence."""
    alice, _ = await create_key(store, "alice")
    bob, _ = await create_key(store, "bob")
    r = await client.get("/api/me", headers={"Cookie": f"{COOKIE_NAME}={alice}"})
    assert r.status_code == 200 and r.json()["name"] == "alice"
    r = await client.get("/api/me", headers={"Cookie": f"{COOKIE_NAME}={alice}", **bearer(bob)})
    assert r.json()["name"] == "bob"


async def test_auth_off_is_anonymous(store: Any, clock: FakeClock) -> None:
    """With auth off every request is the anonymous principal, with or without a key."""
    app = build_app(store, clock, HttpConfig(auth=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        r = await c.get("/api/me")
        assert r.status_code == 200 and r.json()["name"] == ANONYMOUS.name == "anonymous"
        assert (await c.get("/api/me", headers=bearer("junk"))).json()["name"] == "anonymous"


async def test_missing_scope_is_403(client: httpx.AsyncClient, store: Any) -> None:
    """A key without the scope a route needs gets 403 naming the scope."""
    chat, _ = await create_key(store, "alice", ["chat"])
    admin, _ = await create_key(store, "root", ["admin", "chat"])
    r = await client.get("/api/admin", headers=bearer(chat))
    assert r.status_code == 403
    assert r.json()["error"] == {
        "code": "forbidden",
        "message": "this API key lacks the 'admin' scope",
    }
    assert (await client.get("/api/admin", headers=bearer(admin))).status_code == 200


async def test_store_unavailable_is_503_not_401(store: Any, clock: FakeClock) -> None:
    """When the store cannot answer, the client is told to retry, not that its key is bad."""
    raw, _ = await create_key(store, "alice")
    app = build_app(store, clock)
    await store.close()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        r = await c.get("/api/me", headers=bearer(raw))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "unavailable"


# ---------------------------------------------------------------- login


async def test_login_sets_a_strict_httponly_cookie_and_redirects(
    client: httpx.AsyncClient, store: Any
) -> None:
    """GET /login?token=KEY: 303 to / with an HttpOnly SameSite=Strict cookie that then works."""
    raw, _ = await create_key(store, "admin", ["admin", "chat"])
    r = await client.get("/login", params={"token": raw})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}={raw};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    me = await client.get("/api/me")  # the client kept the cookie
    assert me.status_code == 200 and me.json()["name"] == "admin"


async def test_login_with_a_bad_token_is_401_without_cookie(client: httpx.AsyncClient) -> None:
    """An invalid login token gets a JSON 401 and no cookie."""
    for token in ("", generate_key()):
        r = await client.get("/login", params={"token": token})
        assert r.status_code == 401 and "set-cookie" not in r.headers
        assert r.json()["error"] == {"code": "unauthorized", "message": "invalid API key"}


async def test_logout_clears_the_cookie(client: httpx.AsyncClient, store: Any) -> None:
    """Logout expires the cookie; the next API call is unauthenticated."""
    raw, _ = await create_key(store, "admin")
    await client.get("/login", params={"token": raw})
    r = await client.get("/logout")
    assert r.status_code == 303 and f'{COOKIE_NAME}=""' in r.headers["set-cookie"]
    assert "Max-Age=0" in r.headers["set-cookie"]
    assert (await client.get("/api/me")).status_code == 401


# ---------------------------------------------------------------- leaks


async def test_keys_never_appear_in_responses_or_logs(
    client: httpx.AsyncClient,
    store: Any,
    logs: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Neither a valid, revoked nor made-up key is echoed in a response or written to a log."""
    caplog.set_level(logging.DEBUG)
    good, _ = await create_key(store, "alice")
    gone, _ = await create_key(store, "bob")
    await store.revoke_api_key("bob")
    bogus = generate_key()
    responses = [
        await client.get("/api/me", headers=bearer(good)),
        await client.get("/api/me", headers=bearer(gone)),
        await client.get("/api/me", headers=bearer(bogus)),
        await client.get("/api/me", headers={"Cookie": f"{COOKIE_NAME}={bogus}"}),
        await client.get("/login", params={"token": bogus}),
        await client.get("/api/admin", headers=bearer(good)),
    ]
    assert logs, "the auth path logs its decisions (without keys)"
    captured = capsys.readouterr()
    # httpx (the test's client) logs the URLs it requests; only the server side counts.
    server_logs = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    text = "\n".join(
        [repr(logs), *server_logs, captured.out, captured.err]
        + [r.text + repr(dict(r.headers)) for r in responses]
    )
    for raw in (good, gone, bogus):
        assert raw not in text
        assert hash_api_key(raw) not in text
