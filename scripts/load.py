"""HTTP load benchmark: N concurrent chat sessions, platform against a bare app.

Every target answers a turn through the real SDK from the same wire-level fake
Anthropic API (``elexirion fake-provider``, 50 ms per call): ``ray`` is ``elexirion
serve --detach`` on a Ray head of our own (``--num-cpus=2``, its own ``--temp-dir``;
Serve proxy → ingress → the tree); ``embedded`` is ``elexirion serve --embedded``
(uvicorn, the platform in-process, no Ray); ``bare`` is the floor, a FastAPI app in
this file run by uvicorn: ``POST /chat`` → ``AsyncAnthropic.messages.create`` → JSON.

N sessions run at once from one aiohttp client, each sending ``--turns`` turns in
sequence (platform: ``POST /api/agent/chat {"message": "what is a race condition?",
"session_id"}``, a general-agent turn: one LLM step), after a warm-up of N one-turn
sessions. Auth: each session is a user with its own API key (made in the store
before the server starts); ``--auth none`` serves ``--no-auth``, where all requests
share the anonymous key's rate limit.

Everything started here is stopped by process group at the end (``--keep`` leaves
it up): Serve by ``serve shutdown``, the Ray head by signalling the ``ray start
--block`` it runs in (never ``ray stop``: that stops every Ray on the machine).

Usage: .venv/bin/python scripts/load.py [--n 100 1000] [--turns 5] [--targets bare
embedded ray] [--auth keys|none] [--latency-ms 50] [--proxy haproxy|python] [--json out.json]
[--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MESSAGE = "what is a race condition?"
TARGETS = ("bare", "embedded", "ray")


@dataclass
class Result:
    target: str
    n: int
    turns: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    provider_calls: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    #: The platform's own ``latency_ms`` of each turn: routing, agent, pipeline, LLM call.
    inner_ms: list[float] = field(default_factory=list, repr=False)

    def pct(self, q: float, inner: bool = False) -> float:
        ordered = sorted(self.inner_ms if inner else self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if not k.endswith("_ms")}
        return row | {
            "turns_per_s": round(self.rate, 1),
            **{f"p{int(q * 100)}_ms": round(self.pct(q), 1) for q in (0.5, 0.95, 0.99)},
            "in_turn_p50_ms": round(self.pct(0.5, inner=True), 1),
        }


# ------------------------------------------------------------------ processes
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """What this run started, each in its own session; stopped by process group."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []
        #: Run first on stop (``serve shutdown``, with its environment), while the
        #: processes still run.
        self.before_stop: list[tuple[list[str], dict[str, str]]] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path
    ) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started.append((name, proc))
        return proc

    def stop(self) -> None:
        import psutil

        for argv, env in self.before_stop:
            with (self.logs / "shutdown.log").open("ab") as log:
                subprocess.run(
                    argv, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=120, check=False
                )
        # Descendants that left their process group (Serve's haproxy starts its own
        # session) would outlive the group signal and hold their ports: note them now.
        strays = []
        for _name, proc in self.started:
            with contextlib.suppress(psutil.Error):
                strays += psutil.Process(proc.pid).children(recursive=True)
        for _name, proc in reversed(self.started):
            _signal_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            _signal_group(proc.pid, signal.SIGKILL)  # stragglers of the group, if any
            proc.wait(timeout=10)
        for stray in strays:
            with contextlib.suppress(psutil.Error):
                stray.kill()
        self.started.clear()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read())


def wait_until(
    ready: Callable[[], object],
    what: str,
    deadline_s: float = 180.0,
    *,
    alive: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Call ``ready`` until it does not raise ``OSError`` (refused, not 200 yet...);
    stops at once if the process ``alive`` that should become ready has exited."""
    end = time.monotonic() + deadline_s
    while True:
        if alive is not None and alive.poll() is not None:
            raise SystemExit(f"{what}: its process exited with {alive.returncode}; see {log}")
        with contextlib.suppress(OSError):
            ready()
            return
        if time.monotonic() > end:
            raise SystemExit(f"{what} not ready after {deadline_s:.0f} s")
        time.sleep(0.2)


def listening(port: int) -> Callable[[], object]:
    return lambda: socket.create_connection(("127.0.0.1", port), 1).close()


# ------------------------------------------------------------------ the bare app
class BareChat(BaseModel):
    message: str
    session_id: str | None = None


def bare_app(provider_url: str) -> Any:
    """``POST /chat``: one call to the provider, its text as JSON (no platform)."""
    import anthropic
    from fastapi import FastAPI

    app = FastAPI()
    client = anthropic.AsyncAnthropic(base_url=provider_url, api_key="anything")

    @app.post("/chat")
    async def chat(body: BareChat) -> dict[str, Any]:
        reply = await client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=1024,
            messages=[{"role": "user", "content": body.message}],
        )
        text = "".join(getattr(block, "text", "") for block in reply.content)
        return {"summary": text, "session_id": body.session_id}

    @app.get("/readyz")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    return app


# ------------------------------------------------------------------ the load
async def drive(
    url: str, n: int, turns: int, *, tag: str, headers: Callable[[int], dict[str, str]]
) -> Result:
    """N sessions at once, each ``turns`` turns in sequence; latency of every 200."""
    import aiohttp

    result = Result(target="", n=n)
    errors: Counter[str] = Counter()
    connector, timeout = aiohttp.TCPConnector(limit=0), aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def session(i: int) -> None:
            body = {"message": MESSAGE, "session_id": f"{tag}-{i}"}
            for _ in range(turns):
                started = time.perf_counter()
                try:
                    async with http.post(url, json=body, headers=headers(i)) as resp:
                        answer, status = await resp.read(), resp.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors[type(exc).__name__] += 1
                    continue
                if status == 200:
                    result.latencies_ms.append((time.perf_counter() - started) * 1000)
                    inner = json.loads(answer).get("latency_ms")
                    if isinstance(inner, int | float):
                        result.inner_ms.append(float(inner))
                else:
                    errors[str(status)] += 1

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for i in range(n):
                group.create_task(session(i))
        result.seconds = time.perf_counter() - started
    result.turns, result.ok, result.errors = n * turns, len(result.latencies_ms), dict(errors)
    return result


async def make_keys(store_url: str, count: int) -> list[str]:
    """One API key per simulated user, written to the store before the server opens it."""
    from serve.http.auth import create_key
    from store.factory import open_store

    store = await open_store(store_url)
    try:
        return [(await create_key(store, f"load-{i}", scopes=("chat",)))[0] for i in range(count)]
    finally:
        await store.close()


# ------------------------------------------------------------------ targets
@dataclass
class Bench:
    """One run's settings: where it works, the provider, auth, turns per session."""

    work: Path
    env: dict[str, str]
    fake: str
    auth: bool
    turns: int
    shards: int = 2
    executors: int = 1

    def start(self, name: str, store: str, procs: Processes) -> str:
        """Start a target (its processes in ``procs``); its URL once ``/readyz`` is 200."""
        port = free_port()
        common = ["--port", str(port), "--store", store, *([] if self.auth else ["--no-auth"])]
        serve = [str(BIN / "elexirion"), "serve"]
        if name == "bare":
            argv = [sys.executable, __file__, "--serve-bare", str(port), "--provider", self.fake]
            procs.start("bare", argv, self.env, self.work)
        elif name == "embedded":
            procs.start(
                "embedded", [*serve, "--embedded", *common], self.env, self.work / "workspace"
            )
        else:
            address = self._ray_head(procs)
            argv = [*serve, "--detach", "--address", address, *common]
            argv += ["--shards", str(self.shards), "--executors", str(self.executors)]
            if procs.start("serve", argv, self.env, self.work / "workspace").wait(600) != 0:
                raise SystemExit(f"elexirion serve failed; see {self.work / 'serve.log'}")
        wait_until(lambda: get_json(f"http://127.0.0.1:{port}/readyz"), name)
        return f"http://127.0.0.1:{port}"

    def _ray_head(self, procs: Processes) -> str:
        """A Ray head of our own (``--block``: it stops its processes when signalled)."""
        gcs, dashboard = free_port(), free_port()
        argv = [str(BIN / "ray"), "start", "--head", "--block", f"--port={gcs}"]
        argv += ["--num-cpus=2", "--disable-usage-stats", f"--temp-dir={self.work / 'ray'}"]
        argv += ["--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}"]
        # `ray start` refuses to run with token auth on and no token yet (a fresh machine):
        # make the token first, as `ray.init` would (kept if one exists).
        token = [str(BIN / "ray"), "get-auth-token", "--generate"]
        subprocess.run(token, env=self.env, capture_output=True, check=True, timeout=60)
        head = procs.start("ray-head", argv, self.env, self.work)
        shutdown = [str(BIN / "serve"), "shutdown", "-y", "-a", f"http://127.0.0.1:{dashboard}"]
        procs.before_stop.append((shutdown, self.env))
        log = self.work / "ray-head.log"
        wait_until(listening(gcs), "Ray GCS", 120, alive=head, log=log)
        wait_until(listening(dashboard), "Ray dashboard", 120, alive=head, log=log)
        return f"127.0.0.1:{gcs}"

    def measure(self, name: str, base: str, n: int, keys: list[str] | None) -> Result:
        """A warm-up (N one-turn sessions), then N sessions of ``turns`` turns."""
        url = base + ("/chat" if name == "bare" else "/api/agent/chat")

        def headers(i: int) -> dict[str, str]:
            return {"Authorization": f"Bearer {keys[i]}"} if keys else {}

        run = f"{name}-{n}-{time.monotonic_ns()}"
        asyncio.run(drive(url, n, 1, tag=f"warm-{run}", headers=headers))
        before = get_json(f"{self.fake}/_fake/stats")["requests"]
        result = asyncio.run(drive(url, n, self.turns, tag=run, headers=headers))
        result.target = name
        result.provider_calls = get_json(f"{self.fake}/_fake/stats")["requests"] - before
        return result


# ------------------------------------------------------------------ report
def report(results: list[Result]) -> list[dict[str, Any]]:
    bare = {r.n: r for r in results if r.target == "bare"}
    head = f"{'target':<9}{'N':>6}{'turns':>7}{'ok':>7}  {'errors':<18}{'turns/s':>9}"
    head += f"{'p50':>8}{'p95':>8}{'p99':>8}{'in-turn':>8}{'LLM/turn':>9}{'p50 +ms':>9}{'tput':>7}"
    print(head)
    rows = []
    for r in results:
        row = r.summary()
        base = bare.get(r.n)
        if base is not None and r.target != "bare" and base.ok:
            row["p50_overhead_ms"] = round(r.pct(0.5) - base.pct(0.5), 1)
            row["throughput_ratio"] = round(r.rate / base.rate, 3) if base.rate else None
        errs = ",".join(f"{k}:{v}" for k, v in sorted(r.errors.items())) or "0"
        over, ratio = row.get("p50_overhead_ms", ""), row.get("throughput_ratio", "")
        print(
            f"{r.target:<9}{r.n:>6}{r.turns:>7}{r.ok:>7}  {errs:<18}{r.rate:>9.1f}"
            f"{r.pct(0.5):>8.1f}{r.pct(0.95):>8.1f}{r.pct(0.99):>8.1f}"
            f"{r.pct(0.5, inner=True):>8.1f}{r.provider_calls / max(1, r.ok):>9.2f}"
            f"{over!s:>9}{ratio!s:>7}"
        )
        rows.append(row)
    print("latencies in ms; in-turn: p50 of the platform's own latency_ms (route, agent, LLM);")
    print("p50 +ms: p50 - bare p50 at the same N; tput: turns/s ÷ bare's at the same N")
    return rows


def settings(auth: bool, latency_ms: float, proxy: str) -> dict[str, Any]:
    from serve.deployment import ServeSettings
    from serve.http.app import HttpConfig

    return {
        "serve": {k: v for k, v in asdict(ServeSettings()).items() if k not in ("host", "port")},
        "proxy": {"haproxy": "HAProxy", "python": "Serve's Python proxy"}[proxy],
        "http": asdict(HttpConfig(auth=auth)),
        "auth": "one key per session" if auth else "--no-auth (one shared anonymous key)",
        "provider_latency_ms": latency_ms,
        "cpus": os.cpu_count(),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--auth", choices=("keys", "none"), default="keys")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--shards", type=int, help="session shards (ray; default: serve's)")
    parser.add_argument("--executors", type=int, help="executors (ray; default: serve's)")
    parser.add_argument(
        "--proxy",
        choices=("haproxy", "python"),
        default="haproxy",
        help="Serve's HTTP proxy for the ray target (haproxy: what `elexirion serve` uses)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="leave the servers running")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--provider", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.serve_bare:  # this process is the bare target
        import uvicorn

        uvicorn.run(bare_app(args.provider), port=args.serve_bare, log_level="warning")
        return
    work = Path(tempfile.mkdtemp(prefix="elx-load-"))
    shutil.copytree(ROOT / "examples" / "sample_project", work / "workspace")
    fake_port = free_port()
    fake = f"http://127.0.0.1:{fake_port}"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env |= {"ANTHROPIC_API_KEY": "anything", "ANTHROPIC_BASE_URL": fake, "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    env["RAY_SERVE_ENABLE_HA_PROXY"] = "1" if args.proxy == "haproxy" else "0"
    from serve.cli_serve import tree_size

    shards, executors = tree_size(args.shards, args.executors)
    bench = Bench(
        work, env, fake, auth=args.auth == "keys", turns=args.turns,
        shards=shards, executors=executors,
    )  # fmt: skip
    config = settings(bench.auth, args.latency_ms, args.proxy)
    config["tree"] = {"shards": shards, "executors": executors}
    print(f"settings: {json.dumps(config)}\nlogs and stores: {work}", flush=True)
    shared = Processes(work)
    running = [shared]  # stopped in reverse order: the provider last
    results: list[Result] = []
    try:
        argv = [str(BIN / "elexirion"), "fake-provider", "--protocol", "anthropic", "--port"]
        argv += [str(fake_port), "--latency-ms", str(args.latency_ms)]
        shared.start("fake-provider", argv, env, work)
        wait_until(lambda: get_json(f"{fake}/_fake/stats"), "fake provider", 60)
        for name in args.targets:
            store = f"sqlite:///{work / f'{name}.db'}"
            with_keys = bench.auth and name != "bare"
            keys = asyncio.run(make_keys(store, max(args.n))) if with_keys else None
            started = time.perf_counter()
            procs = Processes(work)
            running.append(procs)
            base = bench.start(name, store, procs)
            print(f"{name}: up in {time.perf_counter() - started:.1f} s at {base}", flush=True)
            for n in args.n:
                results.append(bench.measure(name, base, n, keys))
                print(f"  N={n}: {results[-1].summary()}", flush=True)
            if not args.keep:
                running.remove(procs)
                procs.stop()
    finally:
        if args.keep:
            groups = [p.pid for procs in running for _, p in procs.started]
            print(f"left running: process groups {groups} (kill -TERM -- -PGID)")
        else:
            for procs in reversed(running):
                procs.stop()
    rows = report(results)
    if args.json:
        args.json.write_text(json.dumps({"settings": config, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
