"""Property-based conformance of the HTTP API to its own ``/openapi.json`` (issue 6).

Schemathesis generates requests for every operation of the published schema and
sends them, with a valid API key, to the app in this process (ASGI, no socket)
over a :class:`~serve.http.local_platform.LocalPlatform` on a temporary SQLite
store with the offline provider: chat turns are real agent turns, just fast.
Every response must not be a 5xx, must use a status code the schema declares
for the operation, and must match the declared body schema.

The platform lives in the app's lifespan, because schemathesis runs ASGI apps on
an event loop of its own: it starts the lifespan with the first request of a test
and its pytest plugin ends it when the test ends (while the temporary directories
still exist). Each operation therefore gets a fresh platform and store.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from pipelines.providers.registry import ProviderRegistry
from serve.http.app import HttpConfig, create_app
from serve.http.auth import create_key
from serve.http.local_platform import LocalPlatform
from serve.http.platform import Platform

SAMPLE_PROJECT = Path(__file__).parents[4] / "examples" / "sample_project"
#: Schemathesis sends a few hundred requests in a burst; the rate limiter is not under test.
UNLIMITED = HttpConfig(rate_per_minute=1_000_000.0, burst=1_000_000)
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


# Read once, at collection: the schema depends on the routes only, so this app is
# asked for /openapi.json and nothing else. The requests go to ``platform_app``.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(cast(Platform, None)))


@pytest.fixture
def platform_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """The app over a fresh platform; nothing it does can write into the repository."""
    workspace = tmp_path / "workspace"
    shutil.copytree(SAMPLE_PROJECT, workspace)
    # Runs started by the fuzzer resolve relative paths and the user library from here.
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("ELEXIRION_LIBRARY_DIR", str(tmp_path / "library"))
    platform = LocalPlatform(
        f"sqlite:///{tmp_path}/store.db",
        workspace=str(workspace),
        registry_factory=lambda: ProviderRegistry(env={}),
    )
    app = create_app(platform, UNLIMITED)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        await platform.start()
        raw, _key = await create_key(platform.store, "fuzzer", scopes=("chat",))
        app.state.auth_headers = {"Authorization": f"Bearer {raw}"}
        try:
            yield
        finally:
            await platform.close()

    app.router.lifespan_context = lifespan
    # The first request starts the lifespan (so the key exists before any example runs).
    probe = schema["/healthz"]["GET"].Case().call(app=app)
    assert probe.status_code == 200, probe.text
    return app


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[
        # Each example is a request through the whole platform; some are agent turns.
        HealthCheck.too_slow,
        # One platform serves every example of an operation, as a server would.
        HealthCheck.function_scoped_fixture,
    ],
)
def test_every_operation_conforms_to_the_schema(case: Any, platform_app: FastAPI) -> None:
    """Every operation answers generated requests without a 5xx, with declared codes and bodies."""
    case.call_and_validate(app=platform_app, headers=platform_app.state.auth_headers, checks=CHECKS)
