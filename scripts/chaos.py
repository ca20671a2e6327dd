"""Chaos run: concurrent sessions chat through the tree while actors are killed.

Starts a local Ray and the tree (or joins a running one with --address), runs
N sessions sending turns for T seconds, and every K seconds SIGKILLs a random
actor (session shard, executor, gateway, telemetry; the store with --kill-store).
Then checks the store: every acknowledged turn must be there.

Prints: turns acknowledged, acknowledged turns missing from the store, requests
failed (by error), restart latency p50/p99 (kill → the re-created actor answers).

Usage: .venv/bin/python scripts/chaos.py [--sessions 50] [--duration 60] [--kill-every 5]
"""

from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "token")  # before ray is imported: Ray reads it once

import argparse
import asyncio
import os
import random
import signal
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import ray

from actors._ray import lookup
from actors.app import TreeClient, connect, start_tree, stop_tree
from actors.config import TreeConfig
from store.sqlite import SqliteStore


def pid_of(path: str) -> int | None:
    handle = lookup(path)
    if handle is None:
        return None
    try:
        return int(ray.get(handle.info.remote(), timeout=5)["pid"])
    except Exception:  # noqa: BLE001 - mid-restart: no answer yet
        return None


async def kill_and_time(path: str) -> float | None:
    """SIGKILL the actor at ``path``; seconds until a new process answers under the same name."""
    old = await asyncio.to_thread(pid_of, path)
    if old is None:
        return None
    killed = time.perf_counter()
    os.kill(old, signal.SIGKILL)
    while time.perf_counter() - killed < 30:
        new = await asyncio.to_thread(pid_of, path)
        if new is not None and new != old:
            return time.perf_counter() - killed
        await asyncio.sleep(0.01)
    return None


async def session_loop(
    client: TreeClient,
    session: str,
    until: float,
    *,
    acked: list[tuple[str, str]],
    failures: Counter[str],
    latencies: list[float],
    think_s: float = 0.0,
) -> None:
    n = 0
    while time.monotonic() < until:
        turn = uuid.uuid4().hex
        started = time.perf_counter()
        try:
            await client.chat(session, f"message {n} from {session}", turn_id=turn)
        except Exception as exc:  # noqa: BLE001 - a chaos run counts every failure by type
            failures[type(exc).__name__] += 1
        else:
            acked.append((session, turn))
            latencies.append((time.perf_counter() - started) * 1000)
        n += 1
        if think_s:
            await asyncio.sleep(think_s)


async def killer(
    targets: list[str],
    until: float,
    every_s: float,
    *,
    restarts: list[float],
    kills: Counter[str],
    rng: random.Random,
) -> None:
    while time.monotonic() + every_s < until:
        await asyncio.sleep(every_s)
        target = rng.choice(targets)
        latency = await kill_and_time(target)
        kills[target.split("/")[-1].rstrip("0123456789-")] += 1
        if latency is not None:
            restarts.append(latency)


async def run(args: argparse.Namespace, config: TreeConfig, db: Path) -> None:
    client = TreeClient(shards=config.shards)
    targets = [f"sessions/shard-{i}" for i in range(config.shards)]
    targets += [f"executors/executor-{i}" for i in range(config.executors)] + [
        "gateway",
        "telemetry",
    ]
    if args.kill_store:
        targets.append("store")
    acked: list[tuple[str, str]] = []
    failures: Counter[str] = Counter()
    latencies: list[float] = []
    restarts: list[float] = []
    kills: Counter[str] = Counter()
    until = time.monotonic() + args.duration
    sessions = [f"chaos-{uuid.uuid4().hex[:10]}" for _ in range(args.sessions)]
    async with asyncio.TaskGroup() as group:
        for session in sessions:
            group.create_task(
                session_loop(
                    client,
                    session,
                    until,
                    acked=acked,
                    failures=failures,
                    latencies=latencies,
                    think_s=args.think_ms / 1000,
                )
            )
        rng = random.Random(args.seed)  # noqa: S311 - picks chaos victims, not secrets
        group.create_task(
            killer(targets, until, args.kill_every, restarts=restarts, kills=kills, rng=rng)
        )
    store = SqliteStore(db)
    missing = 0
    try:
        by_session: dict[str, set[str]] = {}
        for session in sessions:
            by_session[session] = {t.turn_id for t in await store.turns(session)}
        for session, turn in acked:
            if (
                f"{turn}:user" not in by_session[session]
                or f"{turn}:assistant" not in by_session[session]
            ):
                missing += 1
    finally:
        await store.close()
    total = len(acked) + sum(failures.values())
    print(
        f"{args.sessions} sessions (think {args.think_ms:.0f} ms) for {args.duration:.0f} s, "
        f"a kill every {args.kill_every:.0f} s "
        f"({sum(kills.values())} kills: {dict(kills)})"
    )
    print(f"turns acknowledged:                 {len(acked)}")
    print(f"acknowledged turns missing in store: {missing}")
    print(f"requests failed:                    {sum(failures.values())} {dict(failures) or ''}")
    print(f"success rate:                       {len(acked) / total * 100 if total else 0:.2f}%")
    if latencies:
        ordered = sorted(latencies)
        print(
            f"turn latency ms:                    p50 {ordered[len(ordered) // 2]:.1f}, "
            f"p99 {ordered[int(len(ordered) * 0.99) - 1]:.1f}"
        )
    if restarts:
        ordered = sorted(restarts)
        p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] if len(ordered) >= 100 else ordered[-1]
        print(
            f"restart latency s:                  p50 {statistics.median(ordered):.3f}, "
            f"p99 {p99:.3f} (max of {len(ordered)} when fewer than 100)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--kill-every", type=float, default=5.0)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--executors", type=int, default=2)
    parser.add_argument("--kill-store", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="pause between a session's turns (0: each session sends back to back)",
    )
    args = parser.parse_args()
    db = Path(tempfile.mkdtemp()) / "chaos.db"
    config = TreeConfig(
        store_url=f"sqlite:///{db}",
        shards=args.shards,
        executors=args.executors,
        spread_executors=False,
    )
    ray.init(
        num_cpus=2,
        namespace="elexirion",
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
    )
    try:
        connect()
        started = time.perf_counter()
        start_tree(config)
        print(f"tree up in {time.perf_counter() - started:.1f} s")
        asyncio.run(run(args, config, db))
        stop_tree()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
