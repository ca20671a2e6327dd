"""Shared machinery of the wire-level fake provider servers.

Each protocol module (``anthropic``, ``gemini``, ``openai``) builds a Starlette app
that speaks that API's real request/response and SSE formats, so the official
SDKs work against it unchanged via ``base_url``. This module holds what they share:

- :class:`FaultPlan`: latency and random error injection (``429``, ``529``,
  ``500``, ``503``, ``401``, ``400``, ``timeout`` = never answer in time,
  ``malformed`` = a 200 with a broken body, ``drop`` = a stream cut after its first
  chunk, ``drop_before`` = a stream cut before any content, ``content_filter`` = the
  API's own "blocked by safety/content policy" answer);
- :class:`Reply` and :class:`FakeServerState`: scripted replies and faults served in
  order before the defaults, and a record of every request (headers with keys
  redacted), for tests;
- :class:`FakeProviderServer`: runs an app with uvicorn in a background thread on
  127.0.0.1 (port 0 picks a free port), as a context manager.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FAULTS",
    "FakeProviderServer",
    "FakeServerState",
    "FaultPlan",
    "RecordedRequest",
    "Reply",
]

#: Every fault kind a plan or a script may name.
FAULTS = frozenset(
    {
        "429",
        "529",
        "500",
        "503",
        "401",
        "400",
        "timeout",
        "malformed",
        "drop",
        "drop_before",
        "content_filter",
    }
)

_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})


@dataclass(frozen=True, slots=True)
class Reply:
    """A scripted answer: text, tool calls ``(name, arguments)``, optional usage."""

    text: str = ""
    tool_calls: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish: str | None = None  # protocol-specific stop reason override


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Random faults: each request fails with ``error_rate`` probability, the kind
    drawn uniformly from ``errors``; every answer waits ``latency_ms`` first."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    errors: tuple[str, ...] = ("429", "529", "500", "timeout")
    retry_after_s: float | None = 1.0
    timeout_s: float = 30.0  # how long a "timeout" fault keeps the request hanging
    seed: int | None = None
    stream_chunk_delay_ms: float = 0.0

    def __post_init__(self) -> None:
        unknown = set(self.errors) - FAULTS
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {sorted(FAULTS)}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server saw it (secret headers redacted)."""

    path: str
    headers: Mapping[str, str]
    body: Any
    received_at: float


@dataclass
class FakeServerState:
    """Mutable state of one fake server: plan, script, and what it received."""

    plan: FaultPlan = field(default_factory=FaultPlan)
    script: deque[Reply | str] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    keys_seen: list[str] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.plan.seed is not None:
            self._rng.seed(self.plan.seed)

    def push(self, *items: Reply | str) -> None:
        """Queue replies or fault kinds (``"429"``, ``"drop"``...) served next, in order."""
        with self._lock:
            for item in items:
                if isinstance(item, str) and item not in FAULTS:
                    raise ValueError(f"unknown fault {item!r}; known: {sorted(FAULTS)}")
                self.script.append(item)

    def set_plan(self, plan: FaultPlan) -> None:
        """Replace the fault plan (e.g. take the provider fully down mid-test)."""
        with self._lock:
            self.plan = plan
            if plan.seed is not None:
                self._rng.seed(plan.seed)

    def record(self, path: str, headers: Mapping[str, str], body: Any) -> None:
        clean = {
            k: ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()
        }
        key = _key_from(headers)
        with self._lock:
            self.requests.append(RecordedRequest(path, clean, body, time.time()))
            if key:
                self.keys_seen.append(key)

    def next_action(self) -> Reply | str | None:
        """What to do with the next request: a scripted item, a random fault, or None (default)."""
        with self._lock:
            if self.script:
                return self.script.popleft()
            plan = self.plan
            if plan.error_rate and plan.errors and self._rng.random() < plan.error_rate:
                return self._rng.choice(plan.errors)
        return None

    @property
    def request_count(self) -> int:
        return len(self.requests)


def _key_from(headers: Mapping[str, str]) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("x-api-key", "x-goog-api-key", "api-key"):
        if lowered.get(name):
            return lowered[name]
    auth = lowered.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


async def wait_latency(plan: FaultPlan) -> None:
    """Sleep the plan's latency (shared by every protocol)."""
    if plan.latency_ms > 0:
        await asyncio.sleep(plan.latency_ms / 1000)


AppFactory = Callable[[FakeServerState], Any]


def control_routes(state: FakeServerState) -> list[Any]:
    """``POST /_fake/plan`` replaces the fault plan (JSON fields of :class:`FaultPlan`);
    ``GET /_fake/stats`` reports the request count. For benchmarks and chaos runs that
    drive a fake in another process; a real API has no such routes."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def set_plan(request: Request) -> JSONResponse:
        try:
            fields = await request.json()
            if "errors" in fields:
                fields["errors"] = tuple(fields["errors"])
            state.set_plan(FaultPlan(**fields))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> JSONResponse:
        del request
        return JSONResponse({"requests": state.request_count})

    return [Route("/_fake/plan", set_plan, methods=["POST"]), Route("/_fake/stats", stats)]


class FakeProviderServer:
    """Run a fake provider app on 127.0.0.1 in a background thread.

    >>> with FakeProviderServer("anthropic") as server:   # doctest: +SKIP
    ...     client = AsyncAnthropic(base_url=server.base_url, api_key="test")
    """

    def __init__(
        self,
        protocol: str,
        *,
        port: int = 0,
        plan: FaultPlan | None = None,
        script: Sequence[Reply | str] = (),
    ) -> None:
        from pipelines.providers.fakes import app_factory

        self.protocol = protocol
        self.state = FakeServerState(plan=plan or FaultPlan())
        self.state.push(*script)
        self._app = app_factory(protocol)(self.state)
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.servers:
            raise RuntimeError("the fake server is not running")
        sockets = self._server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeProviderServer:
        import uvicorn

        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=self._port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name=f"fake-{self.protocol}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"fake {self.protocol} server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
