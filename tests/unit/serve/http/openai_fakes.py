"""A fake Platform and a real uvicorn server for the OpenAI-compatible edge's tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import uvicorn
from fastapi import FastAPI

from actors.agents.models import AgentResponse, Finding
from serve.http._openai_wire import render_response
from serve.http.app import HttpConfig, create_app
from serve.http.auth import Principal, authorized
from serve.http.platform import Platform

__all__ = [
    "PIPELINES",
    "PRINCIPAL",
    "SUMMARY",
    "TOKENS",
    "WAIT_S",
    "FakePlatform",
    "Server",
    "analysis",
    "build_app",
    "expected_content",
    "serving",
    "wait_for",
]

PRINCIPAL = Principal(key_id="key1", name="tester", scopes=("chat",))
SUMMARY = "Found 2 problems in app.py."
TOKENS = ["Found ", "2 problems ", "in app.py."]
WAIT_S = 10.0


def analysis() -> dict[str, Any]:
    response = AgentResponse(
        type="analysis",
        agent="analysis",
        summary=SUMMARY,
        findings=[
            Finding(
                message="unused import os", file="app.py", line=3, severity="warning", rule="F401"
            ),
            Finding(message="eval of input", file="app.py", line=58, severity="error", rule="S307"),
        ],
        recommendations=["drop the import", "parse with int()"],
        response_id="resp123",
    )
    return response.model_dump(mode="json")


PIPELINES = [
    {
        "name": "general_chat",
        "inputs": {
            "message": {"type": "string", "required": True},
            "history": {"type": "string", "required": False, "default": ""},
        },
    },
    {
        "name": "code_analysis",
        "inputs": {
            "path": {"type": "string", "required": False, "default": "."},
            "context": {"type": "string", "required": False, "default": ""},
        },
    },
    {
        "name": "planning",
        "inputs": {
            "request": {"type": "string", "required": True},
            "context": {"type": "string", "required": False, "default": ""},
        },
    },
    {"name": "resize", "inputs": {"width": {"type": "integer", "required": True}}},
]


class FakePlatform:
    """The Platform methods the OpenAI routes use, canned; records every call.

    ``hang`` stops the event stream after its first token until the reader goes away;
    ``fail_stream`` raises after the first token; ``run_status`` is how runs end.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.tokens = list(TOKENS)
        self.hang = False
        self.fail_stream = False
        self.run_status = "succeeded"
        self.polls = 0
        self.closed = threading.Event()
        self.close_reason = ""
        self.sessions = {"theirs": {"id": "theirs", "user_id": "someone-else"}}

    async def chat(self, message: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("chat", message, kwargs))
        return {**analysis(), "session_id": kwargs.get("session_id") or "new-session"}

    async def chat_events(self, message: str, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        self.calls.append(("chat_events", message, kwargs))
        try:
            yield {"event": "routed", "agent": "analysis", "confidence": 0.9}
            for text in self.tokens:
                yield {"event": "token", "text": text, "step": "summary"}
                if self.hang:
                    await asyncio.Event().wait()
                if self.fail_stream:
                    raise ValueError("the agent refused the input")
            session = kwargs.get("session_id") or "new-session"
            yield {"event": "response", "response": {**analysis(), "session_id": session}}
        except BaseException as exc:
            self.close_reason = type(exc).__name__
            raise
        finally:
            self.closed.set()

    async def session(self, session_id: str) -> dict[str, Any]:
        if session_id not in self.sessions:
            raise LookupError(f"no session {session_id!r}")
        return self.sessions[session_id]

    async def session_owner(self, session_id: str) -> str | None:
        return (await self.session(session_id)).get("user_id")

    async def pipelines(self) -> list[dict[str, Any]]:
        return PIPELINES

    async def start_run(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("start_run", name, inputs))
        return {"run_id": "run1", "pipeline": name, "status": "running"}

    async def run(self, run_id: str) -> dict[str, Any]:
        self.polls += 1
        if self.polls < 3:
            return {"run_id": run_id, "status": "running"}
        if self.run_status != "succeeded":
            error = {"code": "step_failed", "message": "provider down"}
            return {"run_id": run_id, "status": self.run_status, "error": error}
        results = {
            "draft": {"text": "a first draft"},
            "answer": {"text": "the pipeline's answer"},
            "save": {"written": 1},
        }
        return {"run_id": run_id, "status": "succeeded", "result": {"results": results}}


@dataclass
class Server:
    app: FastAPI
    platform: FakePlatform
    base: str


def build_app(platform: FakePlatform) -> FastAPI:
    """The whole HTTP app over the fake, its API-key check replaced by a fixed principal."""
    app = create_app(cast(Platform, platform), HttpConfig())
    app.dependency_overrides[authorized] = lambda: PRINCIPAL
    return app


def expected_content() -> str:
    head, tail = render_response(analysis())
    return f"{head}\n\n{tail}"


def wait_for(predicate: Any, timeout: float = WAIT_S) -> bool:
    """Poll ``predicate`` on a short event wait, bounded by ``timeout``."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.01)
    return True


@contextmanager
def serving(platform: FakePlatform) -> Iterator[Server]:
    """The app over ``platform`` served by uvicorn on a free loopback port (own thread)."""
    app = build_app(platform)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    assert wait_for(lambda: uv.started or not thread.is_alive()) and uv.started, "no uvicorn"
    try:
        yield Server(app, platform, f"http://127.0.0.1:{port}")
    finally:
        uv.should_exit = True
        thread.join(WAIT_S)
        sock.close()
