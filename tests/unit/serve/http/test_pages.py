"""The web pages and their assets: served with the right types and caching, nothing
loaded from elsewhere, the login link sets the cookie and a bad one explains itself."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from serve.http import pages
from serve.http.app import HttpConfig, create_app
from serve.http.auth import COOKIE_NAME
from serve.http.errors import install_error_handlers
from serve.http.pages import CSP, STATIC_DIR, assets
from store.base import hash_api_key
from store.models import ApiKey

REPO = Path(__file__).resolve().parents[4]
GOOD_KEY = "elx_" + "k" * 43
EXPECTED_ASSETS = {"app.css", "chat.js", "dashboard.js"}
#: Any absolute or protocol-relative URL: the pages must load nothing from elsewhere.
EXTERNAL_URL = re.compile(r"(?i)\b(?:https?|wss?|ftp):/{2}|(?:src|href|action)\s*=\s*[\"']?//")


@dataclass
class StubStore:
    """Knows one API key; counts look-ups."""

    keys: dict[str, ApiKey] = field(default_factory=dict)
    lookups: int = 0

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        self.lookups += 1
        return self.keys.get(key_hash)


@dataclass
class StubPlatform:
    store: StubStore


def stub_platform() -> StubPlatform:
    key = ApiKey(name="admin", key_hash=hash_api_key(GOOD_KEY), prefix=GOOD_KEY[:12])
    return StubPlatform(StubStore({key.key_hash: key}))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The pages router alone, as create_app mounts it (error handlers included)."""
    app = FastAPI()
    app.state.platform = stub_platform()
    app.state.config = HttpConfig()
    install_error_handlers(app)
    app.include_router(pages.router)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.mark.parametrize(("path", "script"), [("/", "chat.js"), ("/dashboard", "dashboard.js")])
async def test_pages_are_html_linking_versioned_assets(
    client: httpx.AsyncClient, path: str, script: str
) -> None:
    """Each page is HTML for phones too, never cached, and links its assets by content hash."""
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    page = response.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    for name in (script, "app.css"):
        assert f'"/static/{name}?v={assets()[name].version}"' in page
    assert 'id="login-notice"' in page and "elexirion serve" in page


async def test_every_asset_has_its_type_and_a_long_cache_when_versioned(
    client: httpx.AsyncClient,
) -> None:
    """With its hash an asset is immutable for a year; without, it is revalidated by ETag."""
    served = {name for name in assets() if not name.endswith(".html")}
    assert served >= EXPECTED_ASSETS
    types = {".css": "text/css", ".js": "text/javascript"}
    for name in served:
        asset = assets()[name]
        response = await client.get(f"/static/{name}", params={"v": asset.version})
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == types[Path(name).suffix]
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["etag"] == asset.etag
        assert response.content == (STATIC_DIR / name).read_bytes()
        plain = await client.get(f"/static/{name}")
        assert plain.headers["cache-control"] == "no-cache"
        again = await client.get(f"/static/{name}", headers={"If-None-Match": asset.etag})
        assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    "path",
    ["/static/nope.js", "/static/chat.html", "/static/..%2Fpages.py", "/static/../pages.py"],
)
async def test_unknown_assets_and_paths_outside_static_are_404(
    client: httpx.AsyncClient, path: str
) -> None:
    """Only the files of serve/http/static are served (pages only at their own paths)."""
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_no_asset_names_an_external_url() -> None:
    """No CDN, font service or any other origin: the pages work offline."""
    for path in sorted(STATIC_DIR.iterdir()):
        text = path.read_text(encoding="utf-8")
        found = EXTERNAL_URL.findall(text)
        assert found == [], f"{path.name} names an external URL: {found}"
        assert "@import" not in text, path.name


def test_assets_use_no_inline_script_or_style_and_no_inner_html() -> None:
    """The CSP allows only our own files; model text is never parsed as HTML."""
    for name in ("chat.html", "dashboard.html"):
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        assert re.findall(r"<script(?![^>]*\bsrc=)", text) == [], name
        assert " style=" not in text and "<style" not in text, name
        assert re.findall(r"\son[a-z]+=", text) == [], f"inline handler in {name}"
    for name in ("chat.js", "dashboard.js"):
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        sinks = re.findall(
            r"\.(?:inner|outer)HTML\s*[+]?=|insertAdjacentHTML\(|document\.write|\beval\(", text
        )
        assert sinks == [], f"{name} parses text as HTML: {sinks}"


def test_pages_link_only_existing_assets() -> None:
    """Every /static/... link of a page names a file that is served."""
    for name in ("chat.html", "dashboard.html"):
        links = re.findall(r'"/static/([^"?]+)', (STATIC_DIR / name).read_text(encoding="utf-8"))
        assert links, name
        assert set(links) <= set(assets()), name


def test_static_files_ship_as_package_data() -> None:
    """pyproject's package data for serve covers every file of serve/http/static."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["serve"]
    shipped = {p for pattern in patterns for p in (REPO / "serve").glob(pattern)}
    assert {p for p in STATIC_DIR.iterdir() if p.is_file()} <= shipped


async def test_login_link_sets_the_cookie_and_goes_to_the_chat(
    client: httpx.AsyncClient,
) -> None:
    """A valid token: 303 to /, an HttpOnly SameSite=Strict cookie, nothing cached."""
    response = await client.get("/login", params={"token": GOOD_KEY})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}={GOOD_KEY};")
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert response.headers["cache-control"] == "no-store"


async def test_login_over_https_marks_the_cookie_secure(client: httpx.AsyncClient) -> None:
    """Behind HTTPS the browser never sends the key in clear."""
    response = await client.get("https://test/login", params={"token": GOOD_KEY})
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]
    plain = await client.get("/login", params={"token": GOOD_KEY})
    assert "Secure" not in plain.headers["set-cookie"]


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"token": "elx_not-a-key"}, 401, "invalid API key"),
        ({}, 400, "has no token"),
    ],
)
async def test_a_bad_login_link_is_a_page_that_explains(
    client: httpx.AsyncClient, params: dict[str, str], status: int, says: str
) -> None:
    """A person followed the link: they get HTML with the status, no cookie, no JSON."""
    response = await client.get("/login", params=params)
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "set-cookie" not in response.headers
    assert says in response.text and f"(HTTP {status})" in response.text
    assert "elx_not-a-key" not in response.text, "the token is not echoed"


async def test_login_page_escapes_the_message(client: httpx.AsyncClient) -> None:
    """The notice page is built from text, never from markup it was given."""
    page = pages._notice(401, "<b>title</b>", "<script>x</script>")
    assert b"<script>x" not in page.body and b"&lt;script&gt;x" in page.body
    assert b"&lt;b&gt;title" in page.body


async def test_logout_clears_the_cookie(client: httpx.AsyncClient) -> None:
    response = await client.get("/logout")
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert response.headers["set-cookie"].startswith(f'{COOKIE_NAME}="";')


async def test_create_app_serves_the_pages() -> None:
    """The pages are part of the real app: / and /dashboard answer without a key."""
    app: Any = create_app(stub_platform())  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        chat = await c.get("/")
        css = await c.get(f"/static/app.css?v={assets()['app.css'].version}")
        sessions = await c.get("/api/sessions")
    assert chat.status_code == 200 and "<title>Elexirion chat</title>" in chat.text
    assert css.status_code == 200
    assert sessions.status_code == 401, "the page's API calls need the login cookie"
