"""Engine benchmark: runs/s, per-step overhead, and concurrency of the pipeline runner.

Measures, on a FakeProvider:
  1. runs/s and engine overhead per step (µs) for a 5-step LLM pipeline with a
     zero-latency provider (provider time subtracted);
  2. wall time of N concurrent runs with a 50 ms provider, as a ratio to one run
     (close to 1 means runs overlap instead of queueing).

Usage: .venv/bin/python scripts/bench_engine.py [--runs 2000] [--concurrent 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from pipelines.loader import load_pipeline_text
from pipelines.providers.base import CompletionRequest
from pipelines.providers.registry import ProviderRegistry
from pipelines.runner import MemorySessionStore, Runner
from pipelines.testing import FakeProvider

PIPELINE = """\
workflow:
  name: bench
  steps:
    - {name: s1, type: claude, prompt: "Analyse {{inputs.code}}"}
    - name: s2
      type: claude
      prompt: [{type: static, content: "Refine:"}, {type: previous_response, step: s1}]
    - {name: s3, type: claude, condition: "s2.success", prompt: "Plan after {{steps.s2.text}}"}
    - {name: s4, type: claude, prompt: "Tests for {{inputs.code}}"}
    - {name: s5, type: claude, prompt: "Summary of {{steps.s3.text}} and {{steps.s4.text}}"}
"""
STEPS = 5


def _runner(provider: FakeProvider, workspace: Path) -> Runner:
    return Runner(
        providers=ProviderRegistry({"anthropic": provider}, env={}),
        sessions=MemorySessionStore(),
        workspace_dir=workspace,
        output_dir=workspace / "out",
    )


async def overhead(runs: int, workspace: Path) -> dict[str, float]:
    provider = FakeProvider(default="ok")
    runner = _runner(provider, workspace)
    loaded = load_pipeline_text(PIPELINE)
    for _ in range(50):  # warm caches (parse, templates, pydantic)
        await runner.run(loaded, {"code": "def f(): pass"})
    started = time.perf_counter()
    for _ in range(runs):
        await runner.run(loaded, {"code": "def f(): pass"})
    total = time.perf_counter() - started
    # The fake provider's own cost, measured alone, is not engine overhead.
    request = CompletionRequest.from_prompt("x")
    probe = FakeProvider(default="ok")
    started = time.perf_counter()
    for _ in range(runs * STEPS):
        await probe.complete(request)
    provider_time = time.perf_counter() - started
    return {
        "runs": runs,
        "runs_per_s": runs / total,
        "per_step_us": (total - provider_time) / (runs * STEPS) * 1e6,
        "per_run_ms": total / runs * 1000,
    }


async def concurrency(n: int, latency_s: float, workspace: Path) -> dict[str, float]:
    provider = FakeProvider(default="ok", latency_s=latency_s)
    runner = _runner(provider, workspace)
    loaded = load_pipeline_text(PIPELINE)
    await runner.run(loaded, {"code": "warm"})
    singles = []
    for _ in range(3):
        started = time.perf_counter()
        await runner.run(loaded, {"code": "one"})
        singles.append(time.perf_counter() - started)
    single = statistics.median(singles)
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for i in range(n):
            group.create_task(runner.run(loaded, {"code": f"run {i}"}))
    wall = time.perf_counter() - started
    return {"concurrent": n, "single_s": single, "wall_s": wall, "ratio": wall / single}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        cost = await overhead(args.runs, workspace)
        print(f"5-step pipeline, zero-latency fake provider, {cost['runs']} sequential runs:")
        print(
            f"  {cost['runs_per_s']:.0f} runs/s, {cost['per_run_ms']:.3f} ms per run, "
            f"engine overhead {cost['per_step_us']:.0f} µs per step"
        )
        conc = await concurrency(args.concurrent, args.latency_ms / 1000, workspace)
        print(
            f"{conc['concurrent']:.0f} concurrent runs, {args.latency_ms:.0f} ms fake provider "
            f"({STEPS} sequential LLM steps each):"
        )
        print(
            f"  one run {conc['single_s'] * 1000:.0f} ms, {conc['concurrent']:.0f} runs "
            f"{conc['wall_s'] * 1000:.0f} ms wall, ratio {conc['ratio']:.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
