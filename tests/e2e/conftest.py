"""Browser tests: the real app served by uvicorn on 127.0.0.1, driven by Debian's Chromium.

:func:`live_app` starts ``create_app(LocalPlatform(...))`` in a background thread
(its own event loop) on a free loopback port, creates an ``admin`` API key and
hands out the login URL. Provider keys are removed from the environment first, so
the agents answer with the offline provider, the same way on every machine.

The tests fail, saying why, when the ``playwright`` package or ``/usr/bin/chromium``
is missing (``.ci/run`` installs Debian's ``chromium``); Playwright's own browser
downloads are never used. Screenshots go to a directory under pytest's temporary root (its path is
printed) and are copied to ``test-artifacts/screenshots/`` in the repository.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from pipelines.providers.registry import KEY_ENV
from serve.http.app import HttpConfig, create_app
from serve.http.auth import create_key
from serve.http.local_platform import LocalPlatform

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "screenshots"
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LiveApp:
    """The running app: where it listens and the link that logs a browser in."""

    base_url: str
    login_url: str
    workspace: Path


def _free_socket() -> socket.socket:
    """A listening socket on a free loopback port (uvicorn serves on it: no port race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server that sets ``started`` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, *, started: threading.Event) -> None:
        super().__init__(config)
        self._started = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._started.set()


class _ServerThread(threading.Thread):
    """Runs the platform and uvicorn on one event loop, in this thread, until stopped."""

    def __init__(self, workspace: Path, db: Path, sock: socket.socket) -> None:
        super().__init__(name="e2e-uvicorn", daemon=True)
        self.workspace = workspace
        self.db = db
        self.sock = sock
        self.ready = threading.Event()
        self.raw_key: str | None = None
        self.error: BaseException | None = None
        self.server: Any = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self.error = exc
        finally:
            self.ready.set()  # also when uvicorn gave up without raising

    async def _serve(self) -> None:
        platform = LocalPlatform(f"sqlite:///{self.db}", workspace=str(self.workspace))
        try:
            await platform.start()
            self.raw_key, _ = await create_key(platform.store, "admin", scopes=("admin", "chat"))
            app = create_app(platform, HttpConfig())
            config = uvicorn.Config(
                app, log_level="warning", lifespan="off", ws="none", http="h11", loop="asyncio"
            )
            self.server = _Server(config, started=self.ready)
            await self.server.serve(sockets=[self.sock])
        finally:
            await platform.close()

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.join(timeout=30)


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The real app on a free 127.0.0.1 port, with the offline provider and an admin key."""
    root = tmp_path_factory.mktemp("live_app")
    # A copy of the sample project as the workspace: a test that confirms a proposed
    # change ("apply the change") then writes to the copy, never to the repository.
    workspace = root / "workspace"
    shutil.copytree(REPO / "examples" / "sample_project", workspace / "examples" / "sample_project")
    with pytest.MonkeyPatch.context() as patch:
        for names in KEY_ENV.values():
            for name in names:
                patch.delenv(name, raising=False)
        sock = _free_socket()
        port = sock.getsockname()[1]
        thread = _ServerThread(workspace, root / "db.sqlite", sock)
        thread.start()
        try:
            if not thread.ready.wait(START_TIMEOUT_S):
                pytest.fail(f"the app did not start within {START_TIMEOUT_S} s")
            if thread.error is not None:
                raise thread.error
            if thread.server is None or not thread.server.started:
                pytest.fail("uvicorn stopped before it served (its log says why)")
            base = f"http://127.0.0.1:{port}"
            yield LiveApp(base, f"{base}/login?token={thread.raw_key}", workspace)
        finally:
            thread.stop()
            sock.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where screenshots go; copied to ``test-artifacts/screenshots/`` at the end."""
    where = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {where}")  # noqa: T201 - the path is the point
    yield where
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in sorted(where.glob("*.png")):
        shutil.copy2(shot, ARTIFACTS / shot.name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (fails when either is missing).

    Module-scoped on purpose: while Playwright's sync API is open, its event loop is
    the main thread's running loop, and pytest-asyncio cannot run async tests then.
    """
    from playwright import sync_api

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        try:
            yield launched
        finally:
            launched.close()
