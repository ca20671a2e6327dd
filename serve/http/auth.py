"""API keys at the HTTP edge: who is calling (:class:`Principal`) and may they.

Keys are ``elx_`` plus 32 random bytes (256 bits) in URL-safe base64. The raw key
is returned once, by :func:`create_key`; the store keeps only its hash
(:func:`store.base.hash_api_key`) and a 12-character prefix to tell keys apart in
lists. Nothing here logs, echoes or stores a raw key.

:func:`authorized` is the FastAPI dependency of every ``/api`` and ``/v1`` route:

- ``config.auth`` off (``--no-auth``, loopback only): every request is
  :data:`ANONYMOUS`.
- otherwise the key comes from ``Authorization: Bearer <key>``, else from the
  ``elexirion_key`` cookie set by the login page. None → 401 ``unauthorized``
  "missing API key"; a malformed header → 401 "malformed Authorization header";
  an unknown *or* revoked key → 401 "invalid API key" (one message for both, so a
  caller cannot tell a revoked key from a made-up one). Every 401 carries
  ``WWW-Authenticate: Bearer``. The store unreachable → 503 ``unavailable``.
- a found key is cached in-process for :data:`KEY_CACHE_TTL_S` (5 s), so a busy
  client does not cost a store query per request. Revocation therefore takes effect
  within 5 s on every replica (:meth:`KeyCache.forget` makes it immediate in this
  one). Unknown keys are never cached: a key created a moment ago works at once.
- then one request is charged to the key's rate limit
  (:class:`serve.http.limits.KeyRateLimiter`, 429), and the principal is kept in
  ``request.state.principal``.

The login cookie is HttpOnly (page scripts cannot read it) and SameSite=Strict
(no other site can make the browser send it, which is the CSRF defence).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from pipelines.observability import get_logger
from serve.http.errors import ApiError, error_body
from serve.http.limits import limits_clock
from store.base import hash_api_key
from store.errors import AlreadyExists, StoreUnavailable
from store.models import ApiKey
from supervision.clock import Clock

__all__ = [
    "ADMIN_KEY_NAME",
    "ANONYMOUS",
    "COOKIE_NAME",
    "KEY_CACHE_TTL_S",
    "KeyCache",
    "KeyNameTaken",
    "Principal",
    "authorized",
    "create_key",
    "ensure_admin_key",
    "generate_key",
    "is_loopback",
    "key_cache",
    "key_prefix",
    "login_response",
    "login_url",
    "logout_response",
    "require_scope",
]

_log = get_logger("http.auth")

COOKIE_NAME: Final = "elexirion_key"
ADMIN_KEY_NAME: Final = "admin"
KEY_CACHE_TTL_S: Final = 5.0
_KEY_PREFIX: Final = "elx_"
_PREFIX_LEN: Final = 12
# Far longer than any key we issue; longer input is refused without hashing it.
_MAX_KEY_LEN: Final = 256
_COOKIE_MAX_AGE_S: Final = 30 * 24 * 3600
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SCOPE = re.compile(r"[a-z][a-z0-9_.:-]{0,31}")
_RESERVED_NAMES = frozenset({"anonymous"})

_MISSING = "missing API key: send Authorization: Bearer <key>"
_MALFORMED = "malformed Authorization header: send Authorization: Bearer <key>"
_INVALID = "invalid API key"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: an API key (``key_id``) or, without auth, anonymous."""

    key_id: str | None
    name: str
    scopes: tuple[str, ...]

    @property
    def user_id(self) -> str:
        """The owner of sessions and runs: the key's name (a re-issued key keeps them)."""
        return self.name

    @property
    def rate_key(self) -> str:
        """Whose bucket the rate limiter charges."""
        return self.key_id or self.name

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


#: The caller when auth is off. Auth may be off only on a loopback address, where
#: the caller is the machine's own user, so it holds every scope.
ANONYMOUS: Final = Principal(key_id=None, name="anonymous", scopes=("admin", "chat"))


class KeyNameTaken(ValueError):  # noqa: N818 - names the outcome, like store's AlreadyExists
    """A non-revoked API key already has this name."""


# --------------------------------------------------------------------- keys


def generate_key() -> str:
    """A new raw API key: ``elx_`` and 256 random bits."""
    return _KEY_PREFIX + secrets.token_urlsafe(32)


def key_prefix(raw: str) -> str:
    """The first 12 characters: enough to tell keys apart in a list, useless to an attacker."""
    return raw[:_PREFIX_LEN]


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid key name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if name in _RESERVED_NAMES:
        raise ValueError(f"the key name {name!r} is reserved (it names unauthenticated callers)")


async def create_key(
    store: Any, name: str, scopes: Iterable[str] = ("chat",)
) -> tuple[str, ApiKey]:
    """Create and store a key; returns ``(raw key, stored record)``. The raw key is not kept.

    Raises ``ValueError`` for a bad name or scope, :class:`KeyNameTaken` when a
    non-revoked key has this name, store errors as the store raises them.
    """
    _check_name(name)
    scope_list = list(dict.fromkeys(scopes))
    for scope in scope_list:
        if not _SCOPE.fullmatch(scope):
            raise ValueError(f"invalid scope {scope!r}: use lower-case letters, digits, '_', '-'")
    raw = generate_key()
    key = ApiKey(name=name, key_hash=hash_api_key(raw), prefix=key_prefix(raw), scopes=scope_list)
    try:
        await store.create_api_key(key)
    except AlreadyExists:
        raise KeyNameTaken(
            f"an active API key named {name!r} already exists; revoke it first "
            f"(elexirion keys revoke {name}) or choose another name"
        ) from None
    _log.info("api_key_created", name=name, prefix=key.prefix, scopes=scope_list)
    return raw, key


async def ensure_admin_key(store: Any) -> str | None:
    """Create the ``admin`` key (scopes admin, chat) unless an active one exists.

    Returns the new raw key (show it once), or ``None`` when there already is one —
    also when another process created it concurrently.
    """
    keys = await store.list_api_keys()
    if any(k.name == ADMIN_KEY_NAME and k.revoked_at is None for k in keys):
        return None
    try:
        raw, _ = await create_key(store, ADMIN_KEY_NAME, ("admin", "chat"))
    except KeyNameTaken:
        return None
    return raw


def login_url(base_url: str, raw_key: str) -> str:
    """The one-time login link printed by ``elexirion serve`` (``/login?token=...``)."""
    return f"{base_url.rstrip('/')}/login?token={quote(raw_key, safe='')}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is loopback, where --no-auth is allowed."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


# -------------------------------------------------------------------- cache


class KeyCache:
    """Principals of recently found keys by key hash, for ``ttl_s``; at most ``max_entries``.

    Only hashes are kept, never raw keys. Not thread-safe (one event loop).
    """

    def __init__(
        self, clock: Clock, *, ttl_s: float = KEY_CACHE_TTL_S, max_entries: int = 1024
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        expires_at, principal = entry
        if self._clock.now() >= expires_at:
            del self._entries[key_hash]
            return None
        self._entries.move_to_end(key_hash)
        return principal

    def put(self, key_hash: str, principal: Principal) -> None:
        self._entries[key_hash] = (self._clock.now() + self.ttl_s, principal)
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, name: str | None = None) -> None:
        """Drop the entries of the key called ``name`` (all entries when ``None``)."""
        if name is None:
            self._entries.clear()
            return
        for key_hash in [h for h, (_, p) in self._entries.items() if p.name == name]:
            del self._entries[key_hash]


def key_cache(app: Any) -> KeyCache:
    """The app's :class:`KeyCache`, created on first use with the limits clock."""
    cache: KeyCache | None = getattr(app.state, "key_cache", None)
    if cache is None:
        cache = KeyCache(limits_clock(app))
        app.state.key_cache = cache
    return cache


# ---------------------------------------------------------------- requests


def _unauthorized(message: str, *, invalid: bool = False) -> ApiError:
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def _presented_key(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized(_MALFORMED)
        return token
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        return cookie
    raise _unauthorized(_MISSING)


async def _find(store: Any, key_hash: str) -> ApiKey | None:
    """The active key with this hash, or ``None``; 503 when the store cannot answer."""
    try:
        key: ApiKey | None = await store.find_api_key(key_hash)
    except StoreUnavailable:
        raise ApiError(
            503,
            "unavailable",
            "cannot check the API key now: the store is unavailable",
            headers={"Retry-After": "1"},
        ) from None
    return key


def _principal_of(key: ApiKey) -> Principal:
    return Principal(key_id=key.id, name=key.name, scopes=tuple(key.scopes))


async def _lookup(request: Request, raw: str) -> Principal:
    if len(raw) > _MAX_KEY_LEN:
        raise _unauthorized(_INVALID, invalid=True)
    cache = key_cache(request.app)
    key_hash = hash_api_key(raw)
    principal = cache.get(key_hash)
    if principal is not None:
        return principal
    key = await _find(request.app.state.platform.store, key_hash)
    if key is None:
        _log.info("http_auth_rejected", reason="invalid_key", path=request.url.path)
        raise _unauthorized(_INVALID, invalid=True)
    principal = _principal_of(key)
    cache.put(key_hash, principal)
    return principal


async def authorized(request: Request) -> Principal:
    """FastAPI dependency: the request's :class:`Principal`, rate limit charged.

    Raises :class:`ApiError` 401 (no, malformed, unknown or revoked key), 429 (over
    the key's rate, with ``Retry-After``), 503 (store unreachable). Runs once per
    request: a second call returns the principal already found.
    """
    found = getattr(request.state, "principal", None)
    if isinstance(found, Principal):
        return found
    if not request.app.state.config.auth:
        principal = ANONYMOUS
    else:
        try:
            raw = _presented_key(request)
        except ApiError:
            _log.info("http_auth_rejected", reason="no_key", path=request.url.path)
            raise
        principal = await _lookup(request, raw)
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        limiter.check(principal.rate_key, label=principal.name)
    request.state.principal = principal
    return principal


def require_scope(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency like :func:`authorized` that also needs ``scope`` (403 ``forbidden``)."""

    async def scoped(request: Request) -> Principal:
        principal = await authorized(request)
        if not principal.has_scope(scope):
            raise ApiError(403, "forbidden", f"this API key lacks the {scope!r} scope")
        return principal

    return scoped


# ------------------------------------------------------------------- login


async def login_response(raw_key: str, store: Any, *, secure: bool = False) -> Response:
    """Answer ``GET /login?token=<key>``: set the login cookie and redirect (303) to ``/``.

    An unknown or revoked key → 401 JSON, no cookie. ``secure`` marks the cookie
    HTTPS-only (pass ``request.url.scheme == "https"``). The response forbids
    caching and referrers, so the token in the URL goes no further.
    """
    valid = 0 < len(raw_key) <= _MAX_KEY_LEN
    key = await _find(store, hash_api_key(raw_key)) if valid else None
    if key is None:
        _log.info("http_login_rejected", reason="invalid_key")
        return JSONResponse(
            error_body("unauthorized", _INVALID),
            status_code=401,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        raw_key,
        max_age=_COOKIE_MAX_AGE_S,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    _log.info("http_login", name=key.name)
    return response


def logout_response(redirect_to: str = "/") -> Response:
    """Clear the login cookie and redirect (303) to ``redirect_to``."""
    response = RedirectResponse(redirect_to, status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    response.headers["Cache-Control"] = "no-store"
    return response
