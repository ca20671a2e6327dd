"""The /api routes over the in-process platform, served by uvicorn on loopback: SSE
streaming of real tokens, and a client that disconnects cancels its run."""

from __future__ import annotations

import asyncio
import json
import queue
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from pipelines.providers.base import CompletionRequest, StreamEvent
from pipelines.providers.registry import ProviderRegistry
from pipelines.testing import FakeProvider
from serve.http.app import HttpConfig, create_app
from serve.http.auth import create_key
from serve.http.local_platform import LocalPlatform

SAMPLE = Path(__file__).resolve().parents[4] / "examples" / "sample_project"
WAIT_S = 30.0


class StallingProvider(FakeProvider):
    """Streams one token, then waits forever: only a cancellation ends the call."""

    def __init__(self) -> None:
        super().__init__(default="fine")
        self.closed = threading.Event()
        self.streams = 0

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:  # type: ignore[override]
        self.streams += 1
        yield StreamEvent(delta="first-token ")
        try:
            await asyncio.Event().wait()
        finally:
            self.closed.set()


@dataclass
class Served:
    base: str
    key: str
    platform: LocalPlatform
    provider: StallingProvider
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT_S)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    workspace = tmp_path / "ws"
    shutil.copytree(SAMPLE, workspace)
    provider = StallingProvider()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ready: queue.Queue[Any] = queue.Queue()
    holder: dict[str, Any] = {}

    async def main() -> None:
        platform = await LocalPlatform(
            f"sqlite:///{tmp_path / 'api.db'}",
            workspace=str(workspace),
            registry_factory=lambda: ProviderRegistry({"anthropic": provider}, env={}),
        ).start()
        raw, _ = await create_key(platform.store, "tester")
        server = uvicorn.Server(
            uvicorn.Config(create_app(platform, HttpConfig()), log_level="warning", lifespan="off")
        )
        holder["server"] = server
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        ready.put((platform, raw, asyncio.get_running_loop()))
        await serving
        await platform.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    platform, raw, loop = ready.get(timeout=WAIT_S)
    try:
        yield Served(f"http://127.0.0.1:{port}", raw, platform, provider, loop)
    finally:
        holder["server"].should_exit = True
        thread.join(WAIT_S)
        sock.close()


def test_stream_sends_routed_tokens_and_response(tmp_path: Path) -> None:
    """A streaming general turn on the offline provider: routed, tokens, response."""
    workspace = tmp_path / "ws"
    shutil.copytree(SAMPLE, workspace)

    async def scenario() -> str:
        platform = await LocalPlatform(
            f"sqlite:///{tmp_path / 'o.db'}",
            workspace=str(workspace),
            registry_factory=lambda: ProviderRegistry(env={}),
        ).start()
        raw, _ = await create_key(platform.store, "tester")
        app = create_app(platform, HttpConfig())
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://t"
            ) as http:
                response = await http.post(
                    "/api/agent/chat",
                    json={"message": "what is a race condition?", "stream": True},
                    headers={"Authorization": f"Bearer {raw}"},
                )
                return response.text
        finally:
            await platform.close()

    text = asyncio.run(scenario())
    kinds = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert kinds[0] == "routed" and kinds[-1] == "response" and "token" in kinds
    routed = json.loads(text.split("event: routed\ndata: ", 1)[1].split("\n", 1)[0])
    final = json.loads(text.rsplit("event: response\ndata: ", 1)[1].split("\n", 1)[0])
    assert routed["agent"] == "general" and routed["response_id"] == final["response_id"]


def test_disconnect_cancels_the_run(served: Served) -> None:
    """The client reads the first token and hangs up: the provider stream is closed,
    the run is recorded as cancelled, and the session gets no assistant turn."""
    headers = {"Authorization": f"Bearer {served.key}"}
    routed: dict[str, Any] = {}
    with (
        httpx.Client(base_url=served.base, headers=headers, timeout=WAIT_S) as http,
        http.stream(
            "POST",
            "/api/agent/chat",
            json={"message": "what is a race condition?", "stream": True},
        ) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and not routed:
                routed = json.loads(line[6:])
            if "first-token" in line:
                break
    assert served.provider.closed.wait(WAIT_S), "the provider stream was not closed"
    run_id = f"{routed['response_id']}-general"
    deadline = time.monotonic() + WAIT_S
    while (record := served.call(served.platform.store.get_run(run_id))).status != "failed":
        assert time.monotonic() < deadline, record
        time.sleep(0.02)
    assert record.error["code"] == "cancelled"
    session = served.call(served.platform.session(routed["session_id"]))
    assert [t["role"] for t in session["turns"]] == ["user"]
    assert served.provider.streams == 1, "the fallback agent must not start paying again"


def test_errors_raised_in_an_actor_reach_the_client_without_the_remote_traceback() -> None:
    """Ray re-raises an actor's ValueError/LookupError as a subclass whose text is the
    remote traceback; the client sees only the original message."""
    from serve.http.errors import client_message

    class RemoteValueError(ValueError):  # shaped like RayTaskError(ValueError)
        def __init__(self, cause: BaseException) -> None:
            super().__init__('ray::SessionShard.handle_request()\n  File "x.py", line 3')
            self.cause = cause

    assert client_message(RemoteValueError(ValueError("message: too long"))) == "message: too long"
    assert client_message(LookupError("no session 'abc'")) == "no session 'abc'"
    assert client_message(KeyError("no run 'r1'")) == "no run 'r1'"
