"""The ``telemetry`` actor: counters and histograms through ``ray.util.metrics``
(so they reach Ray's Prometheus export, prefixed ``ray_``), an in-memory summary
for quick reads, and the raw events written to the store in batches.

Failure semantics: ``record`` acknowledges once the event is in memory; a batch
not yet flushed when the actor dies is lost (telemetry, not user data — every
user turn and run is in the store already). Flushes happen every
``flush_s`` and on stop.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from typing import Any

from actors._ray import ActorRef
from actors.base import Supervised
from actors.batches import Batches
from actors.metrics import MetricsBook
from actors.store_actor import StoreClient
from pipelines.observability import get_logger

__all__ = ["TelemetryActorImpl", "record_event"]

_log = get_logger("telemetry")
_TELEMETRY = ActorRef("telemetry", deadline_s=1.0)  # one ref per process, resolved lazily
_BUCKETS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]


class TelemetryActorImpl(Supervised):
    def __init__(self, path: str, flush_s: float = 1.0) -> None:
        self._init_supervised(path)
        from ray.util import metrics

        self._flush_s = flush_s
        self._store = StoreClient()
        self._pending: list[dict[str, Any]] = []
        self._counts: Counter[tuple[str, str]] = Counter()
        self._latencies: dict[str, list[float]] = defaultdict(list)
        self._agent_outcomes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self._book = MetricsBook()
        self._events_total = metrics.Counter(
            "elexirion_events_total",
            "Telemetry events by kind and outcome",
            tag_keys=("kind", "outcome"),
        )
        self._latency = metrics.Histogram(
            "elexirion_latency_ms",
            "Latency of turns and runs (ms)",
            boundaries=_BUCKETS,
            tag_keys=("kind",),
        )
        self._cost = metrics.Counter(
            "elexirion_cost_usd_total", "LLM cost in USD", tag_keys=("kind",)
        )
        self._flusher: asyncio.Task[None] | None = None

    async def on_ready(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop(), name="telemetry flush")

    async def record(self, events: list[dict[str, Any]]) -> None:
        """Count ``events`` ({kind, outcome, latency_ms?, cost_usd?}); queue them for the store."""
        for event in events:
            kind = str(event.get("kind", "event"))
            outcome = str(event.get("outcome", "ok"))
            self._counts[(kind, outcome)] += 1
            self._events_total.inc(tags={"kind": kind, "outcome": outcome})
            if isinstance(event.get("latency_ms"), int | float):
                self._latency.observe(float(event["latency_ms"]), tags={"kind": kind})
                bucket = self._latencies[kind]
                bucket.append(float(event["latency_ms"]))
                del bucket[:-5000]
            if isinstance(event.get("cost_usd"), int | float) and event["cost_usd"]:
                self._cost.inc(float(event["cost_usd"]), tags={"kind": kind})
            self._book.record(event)
            if kind == "agent" and event.get("agent") and event.get("type"):
                counts = self._agent_outcomes[f"{event['agent']}|{event['type']}"]
                counts[0] += outcome == "ok"
                counts[1] += 1
            self._pending.append({**event, "at": event.get("at", time.time())})

    async def metrics(self) -> dict[str, Any]:
        """The dashboard's numbers (see :class:`actors.metrics.MetricsBook`)."""
        return self._book.snapshot()

    async def agent_success(self) -> dict[str, float]:
        """Success rate per ``"agent|type"`` since this actor started (router input)."""
        return {key: ok / total for key, (ok, total) in self._agent_outcomes.items() if total}

    async def snapshot(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "counts": {f"{k}:{o}": n for (k, o), n in sorted(self._counts.items())}
        }
        for kind, values in self._latencies.items():
            ordered = sorted(values)
            summary[f"{kind}_latency_ms"] = {
                "p50": ordered[len(ordered) // 2],
                "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
                "n": len(ordered),
            }
        return summary

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            from store.models import Event

            await self._store.add_events(
                [
                    Event(
                        id="",
                        kind=str(e.get("kind", "event")),
                        source=str(e.get("source", "")),
                        data=e,
                        created_at=float(e["at"]),
                    )
                    for e in batch
                ]
            )
        except Exception as exc:  # noqa: BLE001 - telemetry must never take the tree down
            _log.warning("telemetry_flush_failed", error=type(exc).__name__, events=len(batch))

    async def on_stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._flush()


#: How long a process gathers events before it sends them to the telemetry actor in
#: one call, and how many it sends at most per call.
SEND_WINDOW_S = 0.02
SEND_MAX = 256


async def _send(batch: list[dict[str, Any]]) -> None:
    try:
        await _TELEMETRY.call("record", batch, retry=False)
    except Exception:  # noqa: BLE001 - telemetry is best effort: see record_event
        _log.debug("telemetry_send_failed", events=len(batch))


def _new_sender() -> Batches[dict[str, Any]]:
    return Batches(_send, window_s=lambda: SEND_WINDOW_S, max_items=lambda: SEND_MAX)


_SENDER = _new_sender()


async def record_event(event: dict[str, Any]) -> None:
    """Queue one event for the telemetry actor (sent within :data:`SEND_WINDOW_S`, with the
    others of that window); never raises and never waits: telemetry is best effort, and a
    process that dies loses at most its last window of events."""
    try:
        _SENDER.add({**event, "at": event.get("at", time.time())})
    except Exception:  # noqa: BLE001 - see the docstring
        return
