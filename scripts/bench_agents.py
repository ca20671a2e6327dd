"""Agent turns in-process (the embedded backend, offline provider): what a turn costs
on top of the pipeline it runs.

    .venv/bin/python scripts/bench_agents.py [--turns 40]

Prints p50/p95 of: router classification alone, a general turn (one LLM step), an
analysis turn (static analysis + review) and a refactoring follow-up, each with the
pipeline's own duration beside it, so the framework's overhead is the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.agents.local import LocalBackend
from actors.agents.router import Router, default_classifier
from pipelines.providers.registry import ProviderRegistry


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2)


async def main(turns: int) -> dict[str, object]:
    router = Router(default_classifier())
    await router.classify_request("warm up")
    started = []
    for i in range(turns * 10):
        t = time.perf_counter()
        await router.classify_request(f"analyze the code in src/module_{i}.py for security")
        started.append((time.perf_counter() - t) * 1000)
    report: dict[str, object] = {"router_ms": {"p50": pct(started, 0.5), "p95": pct(started, 0.95)}}
    with tempfile.TemporaryDirectory() as tmp:
        backend = LocalBackend(
            f"sqlite:///{tmp}/bench.db",
            workspace=str(Path.cwd()),
            registry_factory=lambda: ProviderRegistry(env={}),
        )
        await backend.chat(None, "hello there")  # warm: store, registry, classifier
        kinds = {
            "general": ("what is a race condition?", None),
            "analysis": ("analyze the code in examples/sample_project/app.py", None),
            "refactoring": ("now refactor it based on that analysis", "analysis"),
        }
        sessions: dict[str, str] = {}
        for kind, (text, after) in kinds.items():
            totals, pipeline = [], []
            for _ in range(turns):
                session = sessions.get(after) if after else None
                answer = await backend.chat(session, text)
                sessions.setdefault(kind, answer["session_id"])
                totals.append(answer["latency_ms"])
                record = await backend._store.get_run(f"{answer['response_id']}-{kind}")
                pipeline.append((record.result or {}).get("duration_ms", 0.0) if record else 0.0)
            overhead = [t - p for t, p in zip(totals, pipeline, strict=True)]
            report[kind] = {
                "turn_ms": {"p50": pct(totals, 0.5), "p95": pct(totals, 0.95)},
                "pipeline_ms_p50": pct(pipeline, 0.5),
                "framework_overhead_ms": {
                    "p50": pct(overhead, 0.5),
                    "mean": round(statistics.fmean(overhead), 2),
                },
            }
        await backend.close()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=40)
    print(json.dumps(asyncio.run(main(parser.parse_args().turns)), indent=2))
