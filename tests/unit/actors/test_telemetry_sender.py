"""record_event: events leave the process in batches, never block, never raise."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors import telemetry


class FakeTelemetry:
    def __init__(self, *, fail: bool = False) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail = fail

    async def call(self, method: str, batch: list[dict[str, Any]], retry: bool = True) -> None:
        assert method == "record" and retry is False
        if self.fail:
            raise ConnectionError("telemetry is down")
        self.batches.append(batch)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTelemetry:
    fake = FakeTelemetry()
    monkeypatch.setattr(telemetry, "_TELEMETRY", fake)
    monkeypatch.setattr(telemetry, "_SENDER", telemetry._new_sender())
    monkeypatch.setattr(telemetry, "SEND_WINDOW_S", 0.001)
    return fake


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.002)


async def test_events_of_one_window_travel_in_one_call(fake: FakeTelemetry) -> None:
    for i in range(5):
        await telemetry.record_event({"kind": "turn", "n": i})
    assert fake.batches == []  # nothing waited on the actor
    await _settle()
    assert [[e["n"] for e in batch] for batch in fake.batches] == [[0, 1, 2, 3, 4]]
    assert all(isinstance(e["at"], float) for e in fake.batches[0])  # stamped when recorded


async def test_a_full_batch_leaves_at_once(
    fake: FakeTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telemetry, "SEND_MAX", 4)
    for i in range(6):
        await telemetry.record_event({"kind": "run", "n": i})
    await asyncio.sleep(0)  # the full batch's send starts without waiting for the window
    assert [len(b) for b in fake.batches] == [4]
    await _settle()
    assert [len(b) for b in fake.batches] == [4, 2]


async def test_telemetry_down_loses_events_quietly(
    fake: FakeTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.fail = True
    await telemetry.record_event({"kind": "turn"})
    await _settle()
    fake.fail = False
    await telemetry.record_event({"kind": "turn", "after": True})
    await _settle()
    assert fake.batches == [[{"kind": "turn", "after": True, "at": fake.batches[0][0]["at"]}]]
