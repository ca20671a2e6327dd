"""The web pages: the chat at ``/``, the dashboard at ``/dashboard``, the login and
logout links, and their assets under ``/static/``.

Everything the pages load is served from :data:`STATIC_DIR` (no CDN, so the pages
work offline); the pages themselves are static HTML whose scripts call the JSON API
with the login cookie. Nothing here checks a key: a visitor without the cookie gets
the page, its first API call answers 401 and the page says to open the login link
that ``elexirion serve`` printed.

Caching: a page links each asset as ``/static/NAME?v=HASH`` (the first hex digits of
its SHA-256), and an asset asked for with its current hash is cached for a year
(``immutable``); without the hash it is revalidated (``ETag``). Pages are never
cached. Every page and asset carries a Content-Security-Policy that allows this
origin only, so a page cannot load or send anything elsewhere.

Errors: an unknown asset is a JSON 404 like any API error; a bad or missing login
token is a small HTML page with the status (a person opened it in a browser).
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from serve.http.app import platform_of
from serve.http.errors import ApiError

__all__ = ["CSP", "STATIC_DIR", "Asset", "assets", "router"]

router = APIRouter(include_in_schema=False)

#: Where the pages and their scripts and styles live (shipped as package data).
STATIC_DIR = Path(__file__).parent / "static"

#: Same origin only; no inline script or style, so injected markup could not run.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
#: Pages are served at their own paths, not under /static.
_PAGES = {"chat": "chat.html", "dashboard": "dashboard.html"}
_ONE_YEAR = 365 * 24 * 3600
_ASSET_LINK = re.compile(r'"/static/([\w.-]+)"')


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of :data:`STATIC_DIR`, read once per process."""

    name: str
    body: bytes
    media_type: str
    #: First 16 hex digits of the body's SHA-256: the ``?v=`` of the page's links.
    version: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


@functools.cache
def assets() -> dict[str, Asset]:
    """Every servable file of :data:`STATIC_DIR` by name (read at first use, then kept)."""
    found: dict[str, Asset] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        media_type = _MEDIA_TYPES.get(path.suffix)
        if not path.is_file() or media_type is None:
            continue
        body = path.read_bytes()
        version = hashlib.sha256(body).hexdigest()[:16]
        found[path.name] = Asset(path.name, body, media_type, version)
    return found


def _security_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        # The login link carries the key in its query: never send it on as a referrer.
        "Referrer-Policy": "no-referrer",
    }


@functools.cache
def _page_html(name: str) -> str:
    """A page with each ``"/static/NAME"`` link versioned by the asset's hash."""
    known = assets()
    text = known[name].body.decode("utf-8")

    def versioned(match: re.Match[str]) -> str:
        asset = known.get(match.group(1))
        return f'"/static/{asset.name}?v={asset.version}"' if asset else match.group(0)

    return _ASSET_LINK.sub(versioned, text)


def _page(name: str) -> HTMLResponse:
    headers = {**_security_headers(), "Cache-Control": "no-cache"}
    return HTMLResponse(_page_html(name), headers=headers)


@router.get("/")
async def chat_page() -> HTMLResponse:
    """The chat: sessions, streamed replies, findings, next actions, feedback."""
    return _page(_PAGES["chat"])


@router.get("/dashboard")
async def dashboard_page() -> HTMLResponse:
    """The dashboard: polls ``/api/metrics`` every 2 s and draws it."""
    return _page(_PAGES["dashboard"])


@router.get("/static/{name}")
async def static_asset(request: Request, name: str, v: str | None = None) -> Response:
    """A script, stylesheet or image of the pages; 404 for anything else."""
    asset = assets().get(name)
    if asset is None or name in _PAGES.values():
        raise ApiError(404, "not_found", f"no asset named {name!r}")
    headers = {**_security_headers(), "ETag": asset.etag}
    if v == asset.version:
        headers["Cache-Control"] = f"public, max-age={_ONE_YEAR}, immutable"
    else:
        headers["Cache-Control"] = "no-cache"
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/login")
async def login(request: Request, token: str = "") -> Response:
    """Validate ``token`` (an API key), set the login cookie and go to the chat.

    A missing or refused token answers a short HTML page with the status, since
    a person opened the link in a browser.
    """
    if not token:
        return _notice(
            400,
            "This login link has no token",
            "Open the full link that elexirion serve printed when it started; "
            "it ends in /login?token= followed by the key.",
        )
    from serve.http.auth import login_response

    try:
        # Over HTTPS the cookie is marked Secure (the browser never sends it in clear).
        secure = request.url.scheme == "https"
        store = platform_of(request.app).store
        response = await login_response(token, store, secure=secure)
    except ApiError as exc:
        return _notice(exc.status, "This login link does not work", exc.message)
    if response.status_code >= 400:
        return _notice(response.status_code, "This login link does not work", _message(response))
    return response


@router.get("/logout")
async def logout() -> Response:
    """Clear the login cookie (the auth module's response: back to the page)."""
    from serve.http.auth import logout_response

    return logout_response()


def _message(response: Response) -> str:
    """The ``error.message`` of a JSON error response, else its status phrase."""
    try:
        body = json.loads(bytes(response.body))
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"the server answered {response.status_code}"


def _notice(status: int, title: str, text: str) -> HTMLResponse:
    """A minimal page (same stylesheet) for a person who followed a bad link."""
    css = assets().get("app.css")
    href = f"/static/app.css?v={css.version}" if css else "/static/app.css"
    body = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)} · Elexirion</title>\n"
        f'<link rel="stylesheet" href="{href}">\n</head>\n<body>\n'
        '<header class="topbar"><h1>Elexirion</h1></header>\n'
        f'<main class="notice error" role="alert"><h2>{html.escape(title)}</h2>\n'
        f"<p>{html.escape(text)} (HTTP {status})</p>\n"
        '<p><a href="/">Back to the chat</a></p></main>\n</body>\n</html>\n'
    )
    headers = {**_security_headers(), "Cache-Control": "no-store"}
    return HTMLResponse(body, status_code=status, headers=headers)
