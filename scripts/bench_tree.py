"""Tree benchmark: start-up, memory, per-turn actor overhead, resident sessions, restarts.

Measures on this machine:
  1. ``elexirion up`` to ready, from no Ray running (includes ``ray start``);
  2. RSS and PSS of the tree's actor processes;
  3. per-turn overhead of the tree (client → shard → store → executors → executor →
     store → shard) over the same pipeline run in-process, zero-latency provider
     (offline), p50/p99;
  4. memory of 10,000 resident sessions in one shard;
  5. restart latency of an idle shard (SIGKILL → the new process answers).

Usage: .venv/bin/python scripts/bench_tree.py [--turns 300] [--sessions 10000]
"""

from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "token")  # before ray is imported: Ray reads it once

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BIN = Path(sys.executable).parent
LIBRARY = Path(__file__).resolve().parents[1] / "pipelines" / "library"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def mem_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB from /proc/<pid>/smaps_rollup."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss, pss


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "elexirion"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


async def per_turn_overhead(turns: int) -> None:
    from actors.app import TreeClient
    from pipelines.loader import load_pipeline
    from pipelines.runner import Runner

    client = TreeClient(shards=4)
    session = f"bench-{uuid.uuid4().hex[:8]}"
    for _ in range(20):  # warm every path
        await client.chat(session, "warm up", turn_id=uuid.uuid4().hex)
    tree_ms = []
    for i in range(turns):
        started = time.perf_counter()
        await client.chat(
            f"{session}-{i % 50}", "How do I structure a Python package?", turn_id=uuid.uuid4().hex
        )
        tree_ms.append((time.perf_counter() - started) * 1000)
    runner = Runner()
    loaded = await asyncio.to_thread(load_pipeline, LIBRARY / "general_chat.yaml")
    local_ms = []
    for _ in range(turns):
        started = time.perf_counter()
        await runner.run(loaded, {"message": "How do I structure a Python package?", "history": ""})
        local_ms.append((time.perf_counter() - started) * 1000)
    print(f"3. one chat turn, offline provider, {turns} sequential turns:")
    print(f"   through the tree  p50 {pct(tree_ms, 0.5):6.2f} ms  p99 {pct(tree_ms, 0.99):6.2f} ms")
    print(
        f"   in-process run    p50 {pct(local_ms, 0.5):6.2f} ms  p99 {pct(local_ms, 0.99):6.2f} ms"
    )
    print(
        f"   tree overhead     p50 {pct(tree_ms, 0.5) - pct(local_ms, 0.5):6.2f} ms  "
        f"p99 {pct(tree_ms, 0.99) - pct(local_ms, 0.99):6.2f} ms"
    )


async def resident_sessions(count: int) -> None:
    import ray

    from actors._ray import ActorRef, lookup

    shard_path = "sessions/shard-0"
    pid = int(ray.get(lookup(shard_path).info.remote())["pid"])
    before = await asyncio.to_thread(mem_kib, pid)
    ref = ActorRef(shard_path)
    gate = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with gate:
            session = f"resident-{i}"
            await ref.call(
                "append", session, "user", f"question {i} about the code base", f"{session}-1"
            )
            await ref.call(
                "append", session, "assistant", f"answer {i}: " + "x" * 200, f"{session}-2"
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    stats = await ref.call("stats")
    after = await asyncio.to_thread(mem_kib, pid)
    grown = after[0] - before[0]
    print(
        f"4. {stats['hot_sessions']} resident sessions (2 turns each) in one shard, "
        f"loaded in {elapsed:.0f} s:"
    )
    print(
        f"   shard RSS {before[0] / 1024:.0f} → {after[0] / 1024:.0f} MiB "
        f"(+{grown / 1024:.1f} MiB, {grown * 1024 / count:.0f} B/session)"
    )


def restart_latency(repeats: int) -> None:
    import ray

    from actors._ray import lookup

    latencies = []
    for _ in range(repeats):
        old = int(ray.get(lookup("sessions/shard-1").info.remote())["pid"])
        killed = time.perf_counter()
        os.kill(old, signal.SIGKILL)
        while True:
            handle = lookup("sessions/shard-1")
            try:
                pid = int(ray.get(handle.info.remote(), timeout=2)["pid"]) if handle else None
            except Exception:  # noqa: BLE001 - restarting
                pid = None
            if pid and pid != old:
                latencies.append(time.perf_counter() - killed)
                break
            time.sleep(0.005)
        time.sleep(1.0)
    print(
        f"5. idle shard restart (SIGKILL → new process answers), {repeats} times: "
        f"p50 {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--restarts", type=int, default=10)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["ELEXIRION_STORE"] = f"sqlite:///{workdir / 'bench.db'}"
    if (
        subprocess.run(
            [str(BIN / "ray"), "status"], capture_output=True, env=env, check=False
        ).returncode
        == 0
    ):
        sys.exit("a Ray cluster is already running here; stop it first (elexirion down --ray)")
    started = time.perf_counter()
    done = cli("up", "--shards", "4", "--executors", "2", env=env)
    up_s = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"elexirion up failed: {done.stderr}")
    first_line = done.stdout.splitlines()[0]
    print(f"1. elexirion up, no Ray running → tree ready: {up_s:.1f} s ({first_line})")
    try:
        import ray

        from actors.app import connect
        from actors.status import status_rows

        connect()
        rows = status_rows() or []
        pids = [r["pid"] for r in rows if r.get("pid")]
        totals = [mem_kib(int(p)) for p in pids]
        rss = sum(t[0] for t in totals) / 1024
        pss = sum(t[1] for t in totals) / 1024
        print(
            f"2. {len(pids)} tree actors: RSS {rss:.0f} MiB, PSS {pss:.0f} MiB "
            f"({pss / max(1, len(pids)):.0f} MiB PSS per actor; Ray's own daemons not counted)"
        )
        asyncio.run(per_turn_overhead(args.turns))
        asyncio.run(resident_sessions(args.sessions))
        restart_latency(args.restarts)
        ray.shutdown()
    finally:
        cli("down", "--ray", env=env)


if __name__ == "__main__":
    main()
