"""Provider resilience benchmark against wire-level fake servers in separate processes.

  (a) overhead of the resilience layer (retry + breaker + limits + fallback chain)
      over a direct SDK call, at 50 ms server latency and 200 concurrent calls:
      p50/p99 of each and the difference;
  (b) 30% injected 429/529/500 on the primary with a healthy fallback: success
      rate and provider attempts per request;
  (c) time from the primary going fully down to its breaker opening, under load.

Usage: .venv/bin/python scripts/bench_providers.py [--calls 2000] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx

from pipelines.config import load_settings
from pipelines.observability import configure_logging
from pipelines.providers.base import CompletionRequest
from pipelines.providers.setup import build_registry
from supervision.breaker import BreakerRegistry, BreakerState

KEY = "bench-key-not-a-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_fake(protocol: str, latency_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    exe = Path(sys.executable).parent / "elexirion"
    proc = subprocess.Popen(
        [
            str(exe),
            "fake-provider",
            "--protocol",
            protocol,
            "--port",
            str(port),
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/_fake/stats", timeout=0.5)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"fake {protocol} server did not start")


def set_plan(base: str, **plan: Any) -> None:
    httpx.post(base + "/_fake/plan", json=plan, timeout=5).raise_for_status()


def server_requests(base: str) -> int:
    return int(httpx.get(base + "/_fake/stats", timeout=5).json()["requests"])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(
    call: Callable[[], Awaitable[Any]], calls: int, concurrency: int
) -> tuple[list[float], int]:
    """Run ``calls`` calls with ``concurrency`` in flight; latencies (ms) of successes, failures."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    failures = 0

    async def one() -> None:
        nonlocal failures
        async with gate:
            started = time.perf_counter()
            try:
                await call()
            except Exception:  # noqa: BLE001 - a benchmark counts failures of any kind
                failures += 1
                return
            latencies.append((time.perf_counter() - started) * 1000)

    async with asyncio.TaskGroup() as group:
        for _ in range(calls):
            group.create_task(one())
    return latencies, failures


def registry_for(anthropic_base: str, gemini_base: str, **resilience: Any) -> Any:
    os.environ.update(
        {
            "ANTHROPIC_API_KEY": KEY,
            "GEMINI_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": anthropic_base,
            "GEMINI_BASE_URL": gemini_base,
        }
    )
    settings = load_settings(
        fallback=["anthropic", "gemini", "offline"],
        anthropic={"rate_limit": {"max_concurrent": 1000}, "default_model": "claude-haiku-4-5"},
        gemini={"rate_limit": {"max_concurrent": 1000}},
        resilience=resilience,
    )
    return build_registry(settings)


async def overhead(anthropic_base: str, gemini_base: str, calls: int, concurrency: int) -> None:
    request = CompletionRequest.from_prompt(
        "benchmark prompt", model="claude-haiku-4-5", max_tokens=64
    )
    # Same client settings as our AnthropicProvider: SDK defaults, SDK retries off.
    client = anthropic.AsyncAnthropic(api_key=KEY, base_url=anthropic_base, max_retries=0)

    async def direct() -> None:
        await client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "benchmark prompt"}],
        )

    registry = registry_for(anthropic_base, gemini_base)
    timed = _Timed(registry.instance("anthropic"))
    registry.register("anthropic", timed)  # same provider object, its calls timed
    chain = registry.resolve("anthropic").provider
    added: list[float] = []

    async def resilient() -> None:
        started = time.perf_counter()
        await chain.complete(request)
        total = (time.perf_counter() - started) * 1000
        added.append(total - timed.last_ms.get())

    for fn in (direct, resilient):  # warm connections and caches
        await load(fn, concurrency, concurrency)
    rows = []
    for name, fn in (
        ("direct SDK", direct),
        ("resilient chain", resilient),
        ("direct SDK", direct),
        ("resilient chain", resilient),
    ):
        latencies, failures = await load(fn, calls, concurrency)
        rows.append((name, pct(latencies, 0.5), pct(latencies, 0.99), failures))
    await client.close()
    await registry.aclose()
    print(f"(a) {calls} calls, {concurrency} concurrent, fake latency 50 ms:")
    for name, p50, p99, failures in rows:
        print(f"    {name:16s} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  failures {failures}")
    direct_p50 = statistics.median([r[1] for r in rows if r[0] == "direct SDK"])
    res_p50 = statistics.median([r[1] for r in rows if r[0] == "resilient chain"])
    direct_p99 = statistics.median([r[2] for r in rows if r[0] == "direct SDK"])
    res_p99 = statistics.median([r[2] for r in rows if r[0] == "resilient chain"])
    print(
        f"    end-to-end difference: p50 {res_p50 - direct_p50:+.2f} ms, "
        f"p99 {res_p99 - direct_p99:+.2f} ms (noise: the client process is CPU-bound here)"
    )
    print(
        f"    time inside the resilience layer per call (total minus the provider call): "
        f"p50 {pct(added, 0.5):.3f} ms, p99 {pct(added, 0.99):.3f} ms"
    )


class _Timed:
    """Wraps a provider and records, per task, how long its own call took."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.last_ms: contextvars.ContextVar[float] = contextvars.ContextVar("last_ms", default=0.0)

    async def complete(self, request: CompletionRequest) -> Any:
        started = time.perf_counter()
        try:
            return await self.inner.complete(request)
        finally:
            self.last_ms.set((time.perf_counter() - started) * 1000)

    def stream(self, request: CompletionRequest) -> Any:
        return self.inner.stream(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def faults(
    anthropic_base: str,
    gemini_base: str,
    calls: int,
    concurrency: int,
    *,
    breaker: dict[str, Any],
    label: str,
) -> None:
    set_plan(
        anthropic_base,
        latency_ms=5,
        error_rate=0.3,
        errors=["429", "529", "500"],
        retry_after_s=0.05,
    )
    set_plan(gemini_base, latency_ms=5)
    before = server_requests(anthropic_base), server_requests(gemini_base)
    registry = registry_for(
        anthropic_base,
        gemini_base,
        breaker=breaker,
        retry={"base_delay_s": 0.02, "max_delay_s": 0.2, "max_attempts": 3},
    )
    chain = registry.resolve("anthropic").provider
    request = CompletionRequest.from_prompt("fault benchmark", max_tokens=32)
    latencies, failures = await load(lambda: chain.complete(request), calls, concurrency)
    after = server_requests(anthropic_base), server_requests(gemini_base)
    attempts = (after[0] - before[0]) + (after[1] - before[1])
    metrics = registry.resilience.metrics
    opened = metrics.total("breaker_open")
    await registry.aclose()
    print(f"(b) {calls} calls, 30% 429/529/500 on the primary, healthy fallback, {label}:")
    print(
        f"    success {len(latencies) / calls * 100:.2f}% ({failures} failed), "
        f"provider attempts per request {attempts / calls:.3f}, "
        f"fallbacks {metrics.total('fallback')} (breaker opened {opened}x), "
        f"p50 {pct(latencies, 0.5):.1f} ms, "
        f"p99 {pct(latencies, 0.99):.1f} ms"
    )


async def breaker_opening(anthropic_base: str, gemini_base: str, rate_per_s: float) -> None:
    set_plan(anthropic_base, latency_ms=20)
    set_plan(gemini_base, latency_ms=20)
    registry = registry_for(anthropic_base, gemini_base, retry={"max_attempts": 1})
    chain = registry.resolve("anthropic").provider
    request = CompletionRequest.from_prompt("breaker benchmark", max_tokens=32)
    opened = asyncio.Event()
    opened_at: list[float] = []
    resilience = registry.resilience
    original = resilience.on_transition

    def on_transition(key: str, old: Any, new: Any) -> None:
        original(key, old, new)
        if new is BreakerState.OPEN and not opened_at:
            opened_at.append(time.perf_counter())
            opened.set()

    resilience.breakers = BreakerRegistry(
        resilience.breakers.config, resilience.clock, on_transition=on_transition
    )

    async def traffic() -> None:
        async with asyncio.TaskGroup() as group:
            while not opened.is_set():
                group.create_task(_quiet(chain.complete(request)))
                await asyncio.sleep(1 / rate_per_s)

    producer = asyncio.create_task(traffic())
    await asyncio.sleep(1.0)  # healthy traffic first
    set_plan(anthropic_base, latency_ms=20, error_rate=1.0, errors=["500"])
    down_at = time.perf_counter()
    await asyncio.wait_for(opened.wait(), timeout=60)
    await producer
    await registry.aclose()
    print(
        f"(c) primary fully down at {rate_per_s:.0f} req/s: breaker open after "
        f"{(opened_at[0] - down_at) * 1000:.0f} ms"
    )


async def _quiet(call: Awaitable[Any]) -> None:
    with contextlib.suppress(Exception):  # failures are what this load provokes
        await call


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    configure_logging(level="error")  # the fault runs log every fallback; keep the figures readable
    procs = []
    try:
        a_proc, a_base = start_fake("anthropic", 50)
        g_proc, g_base = start_fake("gemini", 50)
        procs = [a_proc, g_proc]
        await overhead(a_base, g_base, args.calls, args.concurrency)
        await faults(a_base, g_base, args.calls, 50, breaker={}, label="default breaker")
        await faults(
            a_base,
            g_base,
            args.calls,
            50,
            label="a breaker that opens at 5 in a row",
            breaker={"consecutive_failures": 5, "min_calls": 10},
        )
        await breaker_opening(a_base, g_base, rate_per_s=50)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
